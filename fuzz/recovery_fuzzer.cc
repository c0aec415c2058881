// recovery_fuzzer: a writer over a MemEnv loses power at input-chosen points;
// the reopened store must show what the reference model (model/model.h) allows.
//
// Input grammar:
//   input := cfg:u8 op*
//   cfg   bits 0-1: key hash (XXH3 64 bits, OCaml 30 bits, 2 bits,
//                   16-bit prefix)
//         bits 2-3: log_size - 1
//         bit 4:    LRU on
//         bit 5:    overcommit throttle
//         bit 6:    the tiered layout
//         bit 7:    every reopen switches layouts (converting the store)
//   op    := o:u8 [args]      kind = o & 15, a = o >> 4
//     0-4  replace key a%8 with a fresh value
//     5    a < 8: replace key a with overcommit; a >= 8: filter, keeping
//          (k, v) iff bit (a&3) of k[0]^v[7] is set (a&4: iff it is clear)
//     6    flush
//     7    flush with fsync
//     8    merge, awaited
//     9    try_merge, awaited
//     10   clear
//     11   close and reopen; after errors also a power loss (seed: next byte)
//          before the reopen is checked again; a bit 0: the reopened writer
//          (and later ones) toggles Options::log_checksums
//     12   CrashAfter(n): n = a, or the next byte when a == 15
//     13   crash now: Restart(seed: next byte, a bit 0: drop all unsynced,
//          a bit 1: no torn write, a bit 2: overwrites overtake appends,
//          a bit 3: with log checksums on, a power cut that persists 64-byte
//          pages in any order), reopen, check
//     14   merge held at its start while (a&3)+1 overcommit replaces (and, if
//          a&4, a flush with fsync) go to log_async, then released and
//          awaited
//     15   a < 8: inject an IO error into the next write/sync/rename/remove
//          (a&3 picks; skip = next byte % 8; a&4: permanently)
//          a >= 8: fail the next merge at one of its hook points (a&3)
//   After the last op: crash now (seed 0).
//
// Every binding is a fresh value (a counter), so "nothing never written
// appears" and "durable writes survive" are exact checks. While every operation
// has succeeded the writer is compared with the model after each op (Find, Mem,
// Iter). Merges are always awaited (or held at a hook), so each input replays
// deterministically.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "data/schema.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/store_util.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/mem_env.h"
#include "model/model.h"

namespace kvindex {
namespace fuzz {
namespace {

constexpr char kRoot[] = "/r";
constexpr int kKeys = 8;

// Holds a merge at kMergeBefore while closed; fails the merge at an armed
// point.
class Hooks {
 public:
  absl::Status OnHook(HookPoint p) {
    absl::MutexLock l(&mu_);
    if (p == HookPoint::kMergeBefore) {
      mu_.Await(absl::Condition(
          +[](bool* closed) { return !*closed; }, &closed_));
    }
    if (fail_at_.has_value() && *fail_at_ == p) {
      fail_at_.reset();
      return absl::InternalError("recovery_fuzzer: injected merge failure");
    }
    return absl::OkStatus();
  }
  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
  }
  void Open() {
    absl::MutexLock l(&mu_);
    closed_ = false;
  }
  void FailAt(HookPoint p) {
    absl::MutexLock l(&mu_);
    fail_at_ = p;
  }
  void Reset() {
    absl::MutexLock l(&mu_);
    fail_at_.reset();
    closed_ = false;
  }

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<HookPoint> fail_at_ ABSL_GUARDED_BY(mu_);
};

class Driver {
 public:
  explicit Driver(uint8_t cfg) {
    schema_ = OpSchema(cfg);
    options_ = OpOptions(cfg, &env_, /*lru_size=*/2);
    options_.layout = (cfg >> 6) & 1 ? Layout::kTiered : Layout::kSingleFile;
    switch_layouts_ = (cfg >> 7) & 1;
    options_.test_hook = [this](HookPoint p) { return hooks_.OnHook(p); };
    keys_ = OpKeys(kKeys);
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, options_);
    FUZZ_CHECK_OK(idx.status(), "opening a new store");
    index_ = *std::move(idx);
  }

  void Step(FuzzInput& in) {
    const uint8_t o = in.U8();
    const int kind = o & 15;
    const int a = o >> 4;
    switch (kind) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        Replace(a % kKeys, false);
        break;
      case 5:
        if (a < kKeys) {
          Replace(a, true);
        } else {
          Filter(a);
        }
        break;
      case 6:
      case 7: {
        FlushOptions fo;
        fo.with_fsync = kind == 7;
        FUZZ_LOG("flush fsync=", fo.with_fsync);
        model_.Flush(fo.with_fsync, Outcome(index_->Flush(fo)));
        break;
      }
      case 8: {
        FUZZ_LOG("merge");
        model_.Merge(Outcome(index_->Merge()));
        Await();
        break;
      }
      case 9: {
        FUZZ_LOG("try_merge");
        model_.TryMerge(Outcome(index_->TryMerge()));
        Await();
        break;
      }
      case 10:
        FUZZ_LOG("clear");
        model_.Clear(Outcome(index_->Clear()));
        break;
      case 11:
        CloseAndReopen(in, /*toggle_log_checksums=*/(a & 1) != 0);
        break;
      case 12: {
        const uint64_t n = a == 15 ? in.U8() : a;
        FUZZ_LOG("crash after ", n, " mutations");
        env_.CrashAfter(n);
        break;
      }
      case 13: {
        CrashOptions co;
        co.seed = in.U8();
        co.keep_unsynced_prefix = !(a & 1);
        co.tear_last_write = !(a & 2);
        co.overwrites_overtake_appends = (a & 4) != 0;
        // Only a store that keeps log checksums survives such a power cut
        // without phantoms (docs/design.md §11.2).
        co.pages_in_any_order = (a & 8) != 0 && options_.log_checksums;
        co.page_size = 64;
        // The seed's top bit also picks directories that persist their
        // operations in any order (a file system without a journal).
        co.dir_ops_in_any_order = (co.seed & 0x80) != 0;
        CrashAndRecover(co);
        break;
      }
      case 14:
        HeldMerge(in, a);
        break;
      default:
        Inject(in, a);
        break;
    }
    Observe("after op");
  }

  void Finish() {
    CrashOptions co;
    co.seed = 0;
    CrashAndRecover(co);
  }

 private:
  model::Outcome Outcome(const absl::Status& s) {
    // After a failure, an operation that may have taken effect, whether it
    // succeeded or failed in turn (a filter that fails after its commit),
    // breaks the history's order: the failed operation before it may not
    // have taken effect at all (a failed filter leaves the writer working,
    // unchanged). From here to the next reopen nothing more counts as flushed
    // or durable, and recovery is checked key by key only. Only a writer's
    // refusal (kFailedPrecondition) is sure to have done nothing.
    if (failed_ && !absl::IsFailedPrecondition(s)) {
      if (!mixed_) {
        FUZZ_LOG(s.ok() ? "  (success" : "  (another failure",
                 " after a failure: per-key checks only)");
      }
      mixed_ = true;
    }
    if (s.ok()) return failed_ ? model::Outcome::kFailed : model::Outcome::kOk;
    FUZZ_LOG("  -> ", Describe(s));
    FUZZ_CHECK(!s.message().empty(), "error without a message");
    failed_ = true;
    return model::Outcome::kFailed;
  }

  void Replace(int k, bool overcommit) {
    const std::string v = OpValue(++counter_);
    FUZZ_LOG("replace ", k, " = ", counter_, overcommit ? " (overcommit)" : "");
    model_.Replace(keys_[k], v, overcommit,
                   Outcome(index_->Replace(keys_[k], v, overcommit)));
    if (!overcommit) Await();
  }

  void Filter(int a) {
    const KeepByBit keep(a);
    FUZZ_LOG("filter bit ", keep.bit(), keep.inverted() ? " inverted" : "");
    const absl::Status s = index_->Filter(keep);
    model_.Filter([&keep](const std::string& k,
                          const std::string& v) { return keep(k, v); },
                  Outcome(s));
  }

  void Await() {
    const absl::Status s = index_->AwaitMerge();
    model_.AwaitMerge();
    // A failed background merge (IO error, crash, injected hook failure) must
    // leave the view intact: observations go on; the next write reports the
    // failure.
    if (!s.ok()) {
      FUZZ_LOG("  merge -> ", Describe(s));
      merge_failed_ = true;
    }
  }

  void HeldMerge(FuzzInput& in, int a) {
    FUZZ_LOG("held merge");
    hooks_.Close();
    model_.Merge(Outcome(index_->Merge()));
    const int writes = (a & 3) + 1;
    for (int i = 0; i < writes; ++i) Replace(in.U8() % kKeys, true);
    if (a & 4) {
      FlushOptions fo;
      fo.with_fsync = true;
      model_.Flush(true, Outcome(index_->Flush(fo)));
    }
    Observe("during a held merge");
    hooks_.Open();
    Await();
  }

  void Inject(FuzzInput& in, int a) {
    if (a >= 8) {
      static constexpr HookPoint kPoints[4] = {
          HookPoint::kMergeBefore, HookPoint::kMergeAfterFirstEntry,
          HookPoint::kMergeAfterClear, HookPoint::kMergeAfter};
      FUZZ_LOG("fail next merge at hook ", a & 3);
      hooks_.FailAt(kPoints[a & 3]);
      return;
    }
    static constexpr uint32_t kMasks[4] = {kOpWrite, kOpSync, kOpRename,
                                           kOpRemove | kOpSyncDir};
    uint32_t mask = kMasks[a & 3];
    const uint64_t skip = in.U8() % 8;
    FUZZ_LOG("inject error: mask ", mask, " skip ", skip,
             (a & 4) ? " forever" : " once");
    env_.InjectError(mask, skip, (a & 4) ? -1 : 1,
                     absl::InternalError("EIO (injected)"));
    injected_ = true;
  }

  // Checks the writer's view: what Find and Mem show of each key agrees with
  // Iter's first visit of it, and the bindings shown have the schema's sizes.
  // Fills *visits_out with Iter's visits; false if an operation failed on the
  // way (then the view is not checked).
  bool CheckView(const RawIndex& index, const char* what,
                 model::Visits* visits_out) {
    absl::StatusOr<Visits> visits = IterAll(index);
    if (!visits.ok()) {
      FUZZ_LOG(what, ": iter -> ", Describe(visits.status()));
      return false;
    }
    for (const std::string& k : keys_) {
      std::string v;
      absl::StatusOr<bool> found = FindValue(index, k, &v);
      if (!found.ok()) return false;
      const std::string* shown = FirstVisit(*visits, k);
      FUZZ_CHECK(*found == (shown != nullptr) && (!*found || v == *shown),
                 absl::StrCat(what, ": Find(", Hex(k), ") = ",
                              *found ? Hex(v) : "absent", " but Iter shows ",
                              shown == nullptr ? "nothing" : Hex(*shown)));
      absl::StatusOr<bool> mem = index.Mem(k);
      FUZZ_CHECK(!mem.ok() || *mem == *found, "Mem != Find");
    }
    for (const auto& kv : *visits) {
      if (FirstVisit(*visits, kv.first) != &kv.second) continue;  // not shown
      FUZZ_CHECK(
          kv.first.size() == kOpKeySize && kv.second.size() == kOpValueSize,
          "binding of the wrong size");
    }
    *visits_out = *std::move(visits);
    return true;
  }

  // The writer's view as a map, checked as CheckView checks it; nullopt if an
  // operation failed on the way.
  std::optional<model::Map> Snapshot(const RawIndex& index, const char* what,
                                     model::Visits* visits_out) {
    if (!CheckView(index, what, visits_out)) return std::nullopt;
    return FirstVisits(*visits_out);
  }

  void Observe(const char* what) {
    if (failed_ || env_.crashed() || index_ == nullptr) return;
    model::Visits visits;
    if (!CheckView(*index_, what, &visits)) return;
    // Every binding visited exactly once, with its value (a second visit is
    // wrong whatever value it carries: no set of older values is needed).
    const std::string bad = model::CheckIterVisits(model_.Bindings(), visits);
    FUZZ_CHECK(bad.empty(), absl::StrCat(what, ": ", bad));
  }

  void CloseAndReopen(FuzzInput& in, bool toggle_log_checksums) {
    FUZZ_LOG("close and reopen",
             toggle_log_checksums ? ", toggling log checksums" : "");
    // A writer that refuses writes after an IO error cannot make anything
    // durable at close: Close must say so (raw_index.h). Probe with a flush
    // first.
    bool refusing = false;
    if (failed_) {
      const absl::Status probe = index_->Flush();
      refusing = probe.code() == absl::StatusCode::kFailedPrecondition;
      model_.Flush(false, Outcome(probe));
    }
    const absl::Status closed = index_->Close();
    FUZZ_CHECK(
        !refusing || !closed.ok(),
        "Close() returned OK although the writer refuses writes after an "
        "IO error (unflushed writes are lost)");
    model_.Close(Outcome(closed));
    index_.reset();
    if (toggle_log_checksums) options_.log_checksums = !options_.log_checksums;
    if (!failed_) {
      // A clean close made everything durable: the reopened writer shows
      // exactly the model's state, and that state is the new durable base.
      Restart(Open("reopen after close", Check::kExact));
      return;
    }
    // After IO errors, without a power loss: the files hold state(p) for some p
    // in [D, H]. Unsynced parts of them may still go, so power is lost
    // afterwards and what survives is checked again before the model restarts
    // from it.
    env_.ClearInjectedErrors();
    injected_ = false;
    if (!env_.crashed()) {
      Open("reopen after errors", Check::kCrashRule);
      index_.reset();
    }
    CrashOptions co;
    co.seed = in.U8();
    env_.Restart(co);
    Restart(Open("reopen after errors and power loss", Check::kCrashRule));
  }

  void CrashAndRecover(const CrashOptions& co) {
    FUZZ_LOG("crash and recover: seed ", co.seed, " keep_prefix ",
             co.keep_unsynced_prefix, " tear ", co.tear_last_write,
             " overwrites overtake appends ", co.overwrites_overtake_appends,
             " pages in any order ", co.pages_in_any_order,
             " directory operations in any order ", co.dir_ops_in_any_order);
    hooks_.Reset();
    if (index_ != nullptr) (void)index_->AwaitMerge();
    env_.Restart(co);
    env_.ClearInjectedErrors();
    injected_ = false;
    index_.reset();  // its files are dead: closing fails quietly
    Restart(Open("recovery", Check::kCrashRule));
  }

  // Verbose mode: every file of the store with its header and size.
  void DumpStore(const char* when) {
    if (!Verbose()) return;
    FUZZ_LOG("  files ", when, ":");
    for (const std::string& path : env_.ListFiles()) {
      absl::StatusOr<std::string> c = env_.Contents(path);
      if (!c.ok()) continue;
      auto be64 = [&](size_t at) {
        uint64_t v = 0;
        for (size_t i = 0; i < 8 && at + i < c->size(); ++i) {
          v = (v << 8) | static_cast<unsigned char>((*c)[at + i]);
        }
        return v;
      };
      FUZZ_LOG("    ", path, ": ", c->size(), " bytes, offset ", be64(0),
               " generation ", be64(16), " fan ", be64(24));
    }
  }

  enum class Check { kExact, kCrashRule };

  // Opens the writer and checks what it shows against the model: exactly its
  // state, or the crash rule. Returns what it shows.
  model::Map Open(const char* what, Check check) {
    if (switch_layouts_) {
      options_.layout = options_.layout == Layout::kTiered ? Layout::kSingleFile
                                                           : Layout::kTiered;
      // Converting to one data file merges at open: no merge may be held or
      // failed there by the hooks of the ops before.
      hooks_.Reset();
    }
    DumpStore("before the open");
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, options_);
    if (!idx.ok() || env_.crashed()) {
      // Faults still armed (an injected error, a pending crash point) may hit
      // the open itself: a clear error, or an instance that then lost power.
      // Without them, after the power loss, it must work.
      FUZZ_LOG(what, ": open under faults -> ", Describe(idx.status()),
               env_.crashed() ? " (crashed)" : "");
      FUZZ_CHECK(injected_ || env_.crashed(),
                 absl::StrCat(what, ": open failed: ", Describe(idx.status())));
      if (!idx.ok()) CheckStoreError(idx.status(), kRoot, what);
      idx = absl::UnknownError("dropped");
      env_.ClearInjectedErrors();
      injected_ = false;
      if (env_.crashed()) env_.Restart(CrashOptions());
      DumpStore("after the failed open");
      idx = RawIndex::Open(kRoot, schema_, options_);
      // A crash point still armed may also hit this open: power is lost again,
      // and the open after that must work.
      if (env_.crashed()) {
        FUZZ_LOG(what, ": the retried open lost power too");
        idx = absl::UnknownError("dropped");
        env_.Restart(CrashOptions());
        idx = RawIndex::Open(kRoot, schema_, options_);
      }
    }
    FUZZ_CHECK(idx.ok(),
               absl::StrCat(what, ": open failed: ", Describe(idx.status())));
    // A crash point still pending would hit the checks below: disarm it.
    env_.CrashAfter(~uint64_t{0});
    index_ = *std::move(idx);
    failed_ = false;
    merge_failed_ = false;
    model::Visits visits;
    std::optional<model::Map> shown = Snapshot(*index_, what, &visits);
    FUZZ_CHECK(shown.has_value(),
               absl::StrCat(what, ": reads fail after reopen"));
    FUZZ_LOG(what, ": ", model::ShowMap(*shown));
    const std::string bad =
        check == Check::kExact
            ? (*shown == model_.Bindings()
                   ? ""
                   : "reopened " + model::ShowMap(*shown) + ", expected " +
                         model::ShowMap(model_.Bindings()))
            : model_.CheckRecovered(*shown, /*prefix=*/!mixed_);
    FUZZ_CHECK(bad.empty(), absl::StrCat(what, ": ", bad));
    // Iter visits each shown binding exactly once.
    const std::string iter_bad = model::CheckIterVisits(*shown, visits);
    FUZZ_CHECK(iter_bad.empty(), absl::StrCat(what, ": ", iter_bad));
    return *shown;
  }

  // The open writer shows `shown` and it is durable: restart the model from it,
  // after checking that a read-only instance opened now sees exactly the same.
  void Restart(const model::Map& shown) {
    model_ = model::IndexModel();
    mixed_ = false;
    for (const auto& kv : shown) model_.Replace(kv.first, kv.second, true);
    model_.Flush(true);

    Options ro = options_;
    ro.readonly = true;
    ro.test_hook = nullptr;
    absl::StatusOr<std::unique_ptr<RawIndex>> reader =
        RawIndex::Open(kRoot, schema_, ro);
    FUZZ_CHECK(reader.ok(),
               "read-only open after recovery: " + Describe(reader.status()));
    model::Visits ro_visits;
    std::optional<model::Map> ro_shown =
        Snapshot(**reader, "read-only after recovery", &ro_visits);
    FUZZ_CHECK(ro_shown.has_value() && *ro_shown == shown,
               absl::StrCat("read-only instance shows ",
                            ro_shown ? model::ShowMap(*ro_shown) : "an error",
                            ", writer shows ", model::ShowMap(shown)));
  }

  MemEnv env_;
  Schema schema_;
  Options options_;
  bool switch_layouts_ = false;
  Hooks hooks_;
  std::unique_ptr<RawIndex> index_;
  model::IndexModel model_;
  std::vector<std::string> keys_;
  uint64_t counter_ = 0;
  bool failed_ = false;        // an operation failed since the last (re)open
  bool injected_ = false;      // IO errors may still be armed in the env
  bool merge_failed_ = false;  // AwaitMerge reported an error since then
  bool mixed_ = false;  // an operation that may have taken effect followed
                        // a failed one (see Outcome)
};

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // At most ~200 operations per run.
  return kvindex::fuzz::RunDriver<kvindex::fuzz::Driver>(data, size, 200);
}
