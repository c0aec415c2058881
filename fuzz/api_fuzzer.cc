// api_fuzzer: operations decoded from the input run against RawIndex over a
// MemEnv and against the reference model (model/model.h); every observation is
// compared.
//
// Input grammar:
//   input := cfg:u8 op*
//   cfg   bits 0-1: key hash (XXH3 64 bits, OCaml 30 bits, 2 bits,
//                   16-bit prefix)
//         bits 2-3: log_size - 1
//         bit 4:    LRU on
//         bit 5:    overcommit throttle
//         bit 6:    background merges run freely (else each op awaits them)
//         bit 7:    the writer is opened through an InstanceCache (clones
//                   allowed)
//   op    := o:u8 [args]      kind = o & 31, a = o >> 5 (0..7)
//     0-5, 26-28  replace key a
//     6   replace key a, overcommit
//     7   find key a
//     8   mem key a
//     9   iter
//     10  flush (a&1: fsync, a&2: no callback)
//     11  merge
//     12  try_merge
//     13  await_merge
//     14  clear
//     15  filter: keep (k, v) iff bit (a&3) of k[0]^v[7] is set (a&4: iff
//         clear)
//     16  close (a&1: immediately), check the closed handle refuses
//         everything, reopen
//     17  open read-only instance a&1 (closing it first if open)
//     18  sync read-only instance a&1
//     19  find key (next byte % 8) through read-only instance a&1
//     20  iter through read-only instance a&1
//     21  close read-only instance a&1
//     22  misuse: wrong sizes, writes on readers, sync on the writer -> the
//         documented error codes, nothing changes
//     23  is_merging (writer: a bool; reader: kFailedPrecondition)
//     24  flush callback check: replace + flush, the callback ran exactly once
//     25  clone: with a cache, open a second writer handle (or close it)
//     29  as 16, reopening in the other layout (single file <-> tiered: the
//         open converts the store)
//     30  find every key and compare (a full writer check)
//     31  interleave a reader's open/sync with the end of a merge (see
//         Interleave; one more byte)
//
// Read-only instances must show, after each open/sync, the writer's state at
// some position in the model's [flushed, maybe-flushed] range, never going
// back, and keep showing exactly that (snapshot isolation) until their next
// sync.
#include <atomic>
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
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "data/schema.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/store_util.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "model/model.h"

namespace kvindex {
namespace fuzz {
namespace {

constexpr char kRoot[] = "/a";
constexpr int kKeys = 8;

// Holds the writer's merge thread at one hook point while closed.
class Gate {
 public:
  absl::Status OnHook(HookPoint p) {
    absl::MutexLock l(&mu_);
    if (p == HookPoint::kCloseAbortSignalled ||
        p == HookPoint::kClearAbortSignalled) {
      // A clear or close(immediately) cancels the held merge: let it see that.
      held_.reset();
      return absl::OkStatus();
    }
    if (held_.has_value() && *held_ == p) {
      reached_ = true;
      mu_.Await(absl::Condition(
          +[](std::optional<HookPoint>* held) { return !held->has_value(); },
          &held_));
    }
    return absl::OkStatus();
  }
  void Hold(HookPoint p) {
    absl::MutexLock l(&mu_);
    held_ = p;
    reached_ = false;
  }
  void Release() {
    absl::MutexLock l(&mu_);
    held_.reset();
  }
  // Blocks until the merge thread is held (spinning would take the CPU from
  // the merge thread it waits for).
  void AwaitReached() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(&reached_));
  }

 private:
  absl::Mutex mu_;
  std::optional<HookPoint> held_ ABSL_GUARDED_BY(mu_);
  bool reached_ ABSL_GUARDED_BY(mu_) = false;
};

void ExpectCode(const absl::Status& s, absl::StatusCode code,
                const char* what) {
  FUZZ_CHECK(s.code() == code, absl::StrCat(what, ": expected code ",
                                            absl::StatusCodeToString(code),
                                            ", got ", Describe(s)));
  if (code != absl::StatusCode::kInvalidArgument) {
    FUZZ_CHECK(
        absl::StrContains(s.message(), kRoot),
        absl::StrCat(what, ": error does not name the store: ", Describe(s)));
  }
}

struct Reader {
  std::unique_ptr<RawIndex> index;
  model::Map snapshot;      // what it showed at its last open/sync
  size_t min_position = 0;  // the earliest history position it may be at
};

class Driver {
 public:
  explicit Driver(uint8_t cfg) {
    schema_ = OpSchema(cfg);
    options_ = OpOptions(cfg, &env_, /*lru_size=*/3);
    background_ = (cfg >> 6) & 1;
    if ((cfg >> 7) & 1) options_.cache = &cache_;
    options_.flush_callback = [this] { callbacks_.fetch_add(1); };
    options_.test_hook = [this](HookPoint p) { return gate_.OnHook(p); };
    keys_ = OpKeys(kKeys);
  }

  ~Driver() {
    // Readers and clones before the writer; all before the env and the cache.
    readers_.clear();
    clone_.reset();
    writer_.reset();
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, options_);
    FUZZ_CHECK_OK(idx.status(), "opening a new store");
    writer_ = *std::move(idx);
  }

  void Step(FuzzInput& in) {
    const uint8_t o = in.U8();
    const int kind = o & 31;
    const int a = o >> 5;
    switch (kind) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 26:
      case 27:
      case 28:
        Replace(a, false);
        break;
      case 29:
        CloseAndReopen(a & 1, /*switch_layout=*/true);
        break;
      case 6:
        Replace(a, true);
        break;
      case 7:
        CheckFind(*writer_, a, model_.Find(keys_[a]), "writer find");
        break;
      case 8:
        CheckMem(a);
        break;
      case 9:
        CheckIter();
        break;
      case 10:
        Flush(a);
        break;
      case 11:
        FUZZ_LOG("merge");
        FUZZ_CHECK_OK(writer_->Merge(), "Merge");
        model_.Merge();
        MaybeAwait();
        break;
      case 12:
        FUZZ_LOG("try_merge");
        FUZZ_CHECK_OK(writer_->TryMerge(), "TryMerge");
        model_.TryMerge();
        MaybeAwait();
        break;
      case 13:
        Await();
        break;
      case 14:
        FUZZ_LOG("clear");
        FUZZ_CHECK_OK(writer_->Clear(), "Clear");
        model_.Clear();
        break;
      case 15:
        Filter(a);
        break;
      case 16:
        CloseAndReopen(a & 1, /*switch_layout=*/false);
        break;
      case 17:
        OpenReader(a & 1);
        break;
      case 18:
        SyncReader(a & 1);
        break;
      case 19:
        ReaderFind(a & 1, in.U8() % kKeys);
        break;
      case 20:
        ReaderIter(a & 1);
        break;
      case 21:
        FUZZ_LOG("close reader ", a & 1);
        if (readers_.count(a & 1)) {
          FUZZ_CHECK_OK(readers_[a & 1].index->Close(), "reader Close");
          readers_.erase(a & 1);
          model_.CloseReadOnly(a & 1);
        }
        break;
      case 22:
        Misuse(a);
        break;
      case 23:
        IsMerging();
        break;
      case 24:
        CallbackCheck(a);
        break;
      case 25:
        Clone();
        break;
      case 30:
        CheckAll("full check");
        break;
      default:
        Interleave(a, in.U8());
        break;
    }
  }

  void Finish() {
    Await();
    CheckAll("at the end");
    for (auto& r : readers_) ReaderIter(r.first);
    CloseAndReopen(false, /*switch_layout=*/false);
    for (int id = 0; id < 2; ++id) {
      OpenReader(id);
    }
  }

 private:
  void Replace(int k, bool overcommit) {
    const std::string v = OpValue(++counter_);
    FUZZ_LOG("replace ", k, " = ", counter_, overcommit ? " (overcommit)" : "");
    FUZZ_CHECK_OK(writer_->Replace(keys_[k], v, overcommit), "Replace");
    model_.Replace(keys_[k], v, overcommit);
    if (!overcommit) MaybeAwait();
  }

  void MaybeAwait() {
    if (!background_) Await();
  }

  void Await() {
    const absl::Status s = writer_->AwaitMerge();
    if (!s.ok()) {
      FUZZ_CHECK(s.code() == absl::StatusCode::kAborted &&
                     model_.merge_may_have_aborted(),
                 "AwaitMerge: " + Describe(s));
    }
    model_.AwaitMerge();
  }

  void Flush(int a) {
    FlushOptions fo;
    fo.with_fsync = a & 1;
    fo.no_callback = a & 2;
    FUZZ_LOG("flush fsync=", fo.with_fsync, " no_callback=", fo.no_callback);
    FUZZ_CHECK_OK(writer_->Flush(fo), "Flush");
    model_.Flush(fo.with_fsync);
  }

  void Filter(int a) {
    const KeepByBit keep(a);
    FUZZ_LOG("filter bit ", keep.bit(), keep.inverted() ? " inverted" : "");
    FUZZ_CHECK_OK(writer_->Filter(keep), "Filter");
    model_.Filter([&keep](const std::string& k, const std::string& v) {
      return keep(k, v);
    });
  }

  void CheckFind(const RawIndex& index, int k,
                 const std::optional<std::string>& expected, const char* what) {
    std::string v;
    absl::StatusOr<bool> found = FindValue(index, keys_[k], &v);
    FUZZ_CHECK(found.ok(), absl::StrCat(what, ": ", Describe(found.status())));
    FUZZ_CHECK(*found == expected.has_value() && (!*found || v == *expected),
               absl::StrCat(what, ": Find(key ", k, ") = ",
                            *found ? model::Quote(v) : "absent", ", expected ",
                            expected ? model::Quote(*expected) : "absent"));
  }

  void CheckMem(int k) {
    absl::StatusOr<bool> mem = writer_->Mem(keys_[k]);
    FUZZ_CHECK(mem.ok() && *mem == model_.Mem(keys_[k]),
               absl::StrCat("Mem(key ", k, ")"));
  }

  void CheckIter() {
    absl::StatusOr<Visits> visits = IterAll(*writer_);
    FUZZ_CHECK_OK(visits.status(), "Iter");
    // Every binding visited exactly once, with its value (a second visit is
    // wrong whatever value it carries: no set of older values is needed).
    const std::string bad = model::CheckIterVisits(model_.Bindings(), *visits);
    FUZZ_CHECK(bad.empty(), bad);
  }

  void CheckAll(const char* what) {
    for (int k = 0; k < kKeys; ++k) {
      CheckFind(*writer_, k, model_.Find(keys_[k]), what);
    }
    CheckIter();
  }

  void CloseAndReopen(bool immediately, bool switch_layout) {
    if (switch_layout) {
      options_.layout = options_.layout == Layout::kTiered ? Layout::kSingleFile
                                                           : Layout::kTiered;
    }
    FUZZ_LOG("close and reopen, immediately=", immediately, " layout=",
             options_.layout == Layout::kTiered ? "tiered" : "single_file");
    clone_.reset();
    FUZZ_CHECK_OK(writer_->Close(immediately), "Close");
    model_.Close();
    // A closed handle refuses everything and closes again quietly.
    const std::string& k = keys_[0];
    const std::string v = OpValue(0);
    ExpectCode(writer_->Replace(k, v), absl::StatusCode::kFailedPrecondition,
               "Replace on a closed handle");
    char buf[kOpValueSize];
    ExpectCode(writer_->Find(k, buf).status(),
               absl::StatusCode::kFailedPrecondition,
               "Find on a closed handle");
    ExpectCode(writer_->Mem(k).status(), absl::StatusCode::kFailedPrecondition,
               "Mem on a closed handle");
    ExpectCode(writer_->Flush(), absl::StatusCode::kFailedPrecondition,
               "Flush on a closed handle");
    ExpectCode(writer_->Clear(), absl::StatusCode::kFailedPrecondition,
               "Clear on a closed handle");
    ExpectCode(writer_->Merge(), absl::StatusCode::kFailedPrecondition,
               "Merge on a closed handle");
    ExpectCode(writer_->Iter([](absl::string_view, absl::string_view) {}),
               absl::StatusCode::kFailedPrecondition,
               "Iter on a closed handle");
    FUZZ_CHECK_OK(writer_->Close(), "second Close");
    writer_.reset();

    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, options_);
    FUZZ_CHECK_OK(idx.status(), "reopen");
    writer_ = *std::move(idx);
    model_.Reopen();
    CheckAll("after reopen");
  }

  // What an instance shows: first visits of Iter, cross-checked with Find.
  model::Map Shown(const RawIndex& index, const char* what) {
    absl::StatusOr<Visits> visits = IterAll(index);
    FUZZ_CHECK(visits.ok(),
               absl::StrCat(what, ": Iter: ", Describe(visits.status())));
    model::Map shown = FirstVisits(*visits);
    for (int k = 0; k < kKeys; ++k) {
      auto it = shown.find(keys_[k]);
      CheckFind(index, k,
                it == shown.end() ? std::nullopt
                                  : std::optional<std::string>(it->second),
                what);
    }
    const std::string bad = model::CheckIterVisits(shown, *visits);
    FUZZ_CHECK(bad.empty(), absl::StrCat(what, ": ", bad));
    return shown;
  }

  // After an open or a sync: the reader shows state(p), F <= p <= H, p not
  // earlier than it was before.
  void CheckReaderPosition(int id, Reader& r, const char* what) {
    r.snapshot = Shown(*r.index, what);
    const std::pair<size_t, size_t> range = model_.ReadOnlyRange(id);
    const size_t lo = std::max(range.first, r.min_position);
    std::vector<size_t> at = model_.Matching(r.snapshot, lo, range.second);
    if (at.empty()) {
      // Explain with the model's own rules over the allowed range.
      std::string why = model_.ExplainRange(r.snapshot, lo, range.second, true);
      if (why.empty()) why = "no matching position";
      FUZZ_CHECK(false,
                 absl::StrCat(what, ": reader ", id, " shows ",
                              model::ShowMap(r.snapshot),
                              ", allowed positions [", lo, ", ", range.second,
                              "] (was at >= ", r.min_position, "):\n", why));
    }
    r.min_position = at.front();
  }

  void OpenReader(int id) {
    FUZZ_LOG("open reader ", id);
    readers_.erase(id);
    Options ro = options_;
    ro.readonly = true;
    ro.cache = nullptr;  // each reader its own instance
    ro.flush_callback = nullptr;
    ro.test_hook = [this](HookPoint p) { return ReaderHook(p); };
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, ro);
    FUZZ_CHECK_OK(idx.status(), "read-only open");
    model_.OpenReadOnly(id);
    Reader& r = readers_[id];
    r.index = *std::move(idx);
    r.min_position = 0;
    CheckReaderPosition(id, r, "reader after open");
  }

  void SyncReader(int id) {
    if (!readers_.count(id)) return;
    FUZZ_LOG("sync reader ", id);
    Reader& r = readers_[id];
    FUZZ_CHECK_OK(r.index->Sync(), "Sync");
    model_.Sync(id);
    CheckReaderPosition(id, r, "reader after sync");
  }

  void ReaderFind(int id, int k) {
    if (!readers_.count(id)) return;
    const Reader& r = readers_[id];
    auto it = r.snapshot.find(keys_[k]);
    CheckFind(*r.index, k,
              it == r.snapshot.end() ? std::nullopt
                                     : std::optional<std::string>(it->second),
              "reader find (snapshot since its last sync)");
  }

  void ReaderIter(int id) {
    if (!readers_.count(id)) return;
    const Reader& r = readers_[id];
    const model::Map now = Shown(*r.index, "reader iter");
    FUZZ_CHECK(now == r.snapshot,
               absl::StrCat("reader ", id, " changed without a sync: now ",
                            model::ShowMap(now), ", at its last sync ",
                            model::ShowMap(r.snapshot)));
  }

  void Misuse(int a) {
    FUZZ_LOG("misuse ", a);
    const std::string& k = keys_[a];
    ExpectCode(writer_->Replace(k.substr(1), OpValue(1)),
               absl::StatusCode::kInvalidArgument, "Replace with a short key");
    ExpectCode(writer_->Replace(k, OpValue(1) + "x"),
               absl::StatusCode::kInvalidArgument, "Replace with a long value");
    char buf[kOpValueSize + 1];
    ExpectCode(writer_->Find(k + "x", buf).status(),
               absl::StatusCode::kInvalidArgument, "Find with a long key");
    ExpectCode(writer_->Sync(), absl::StatusCode::kFailedPrecondition,
               "Sync on the writer");
    for (auto& entry : readers_) {
      RawIndex& r = *entry.second.index;
      ExpectCode(r.Replace(k, OpValue(1)),
                 absl::StatusCode::kFailedPrecondition, "Replace on a reader");
      ExpectCode(r.Flush(), absl::StatusCode::kFailedPrecondition,
                 "Flush on a reader");
      ExpectCode(r.Clear(), absl::StatusCode::kFailedPrecondition,
                 "Clear on a reader");
      ExpectCode(r.Merge(), absl::StatusCode::kFailedPrecondition,
                 "Merge on a reader");
      ExpectCode(r.TryMerge(), absl::StatusCode::kFailedPrecondition,
                 "TryMerge on a reader");
      ExpectCode(
          r.Filter([](absl::string_view, absl::string_view) { return true; }),
          absl::StatusCode::kFailedPrecondition, "Filter on a reader");
    }
    // Opening a second writer on the store (without the shared cache) is
    // refused.
    Options second = options_;
    second.cache = nullptr;
    absl::StatusOr<std::unique_ptr<RawIndex>> other =
        RawIndex::Open(kRoot, schema_, second);
    ExpectCode(other.status(), absl::StatusCode::kUnavailable,
               "a second writer");
    Options fresh_ro = options_;
    fresh_ro.readonly = true;
    fresh_ro.fresh = true;
    fresh_ro.cache = nullptr;
    other = RawIndex::Open(kRoot, schema_, fresh_ro);
    FUZZ_CHECK(!other.ok(), "fresh read-only open must be refused");
  }

  void IsMerging() {
    absl::StatusOr<bool> m = writer_->IsMerging();
    FUZZ_CHECK_OK(m.status(), "IsMerging");
    if (!model_.merge_may_run()) {
      FUZZ_CHECK(!*m, "IsMerging true while no merge can run");
    }
    for (auto& entry : readers_) {
      ExpectCode(entry.second.index->IsMerging().status(),
                 absl::StatusCode::kFailedPrecondition,
                 "IsMerging on a reader");
    }
  }

  void CallbackCheck(int a) {
    // With no merge running, one replace + flush writes one batch: one callback
    // (none with no_callback).
    Await();
    const std::string v = OpValue(++counter_);
    FUZZ_CHECK_OK(writer_->Replace(keys_[a], v, /*overcommit=*/true),
                  "Replace");
    model_.Replace(keys_[a], v, true);
    const int before = callbacks_.load();
    FlushOptions fo;
    fo.no_callback = (counter_ & 1) != 0;
    FUZZ_CHECK_OK(writer_->Flush(fo), "Flush");
    model_.Flush(false);
    const int calls = callbacks_.load() - before;
    FUZZ_CHECK(calls == (fo.no_callback ? 0 : 1),
               absl::StrCat("flush of one record called the callback ", calls,
                            " times (no_callback=", fo.no_callback, ")"));
    const int again = callbacks_.load();
    FUZZ_CHECK_OK(writer_->Flush(), "Flush");
    FUZZ_CHECK(callbacks_.load() == again,
               "flush of an empty buffer called back");
  }

  void Clone() {
    if (options_.cache == nullptr) return;
    if (clone_ != nullptr) {
      FUZZ_LOG("close clone");
      FUZZ_CHECK_OK(clone_->Close(), "clone Close");
      clone_.reset();
      CheckAll("after closing a clone");
      return;
    }
    FUZZ_LOG("open clone");
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(kRoot, schema_, options_);
    FUZZ_CHECK_OK(idx.status(), "clone open");
    clone_ = *std::move(idx);
    for (int k = 0; k < kKeys; ++k) {
      CheckFind(*clone_, k, model_.Find(keys_[k]), "clone find");
    }
  }

  // A reader opens or syncs while the writer's merge is held at kMergeBefore
  // (with writes in log_async) or inside its commit (kMergeCommitted: output
  // committed, log not reset; kMergeAfterClear: log reset); when
  // the reader reaches one of its sync hook points, the merge is released and
  // runs to its end. So every interleaving of a sync with the end of a merge is
  // reproducible.
  //   a bit 0: hold at kMergeAfterClear (else kMergeBefore); a bit 1: reader
  //   id; a bit 2: afterwards the writer closes immediately (aborting the merge
  //   if it
  //            is still held at its start) and reopens
  //   b bits 0-1: writes while held at kMergeBefore; bits 2-3: the reader's
  //   point; bit 4: in the commit, hold at kMergeCommitted
  void Interleave(int a, uint8_t b) {
    static constexpr HookPoint kReaderPoints[4] = {
        HookPoint::kSyncReloadLogAsync, HookPoint::kSyncBeforeOffsetRead,
        HookPoint::kSyncAfterOffsetRead, HookPoint::kSyncReloadLog};
    const bool in_commit = a & 1;
    const HookPoint commit_point =
        (b & 16) ? HookPoint::kMergeCommitted : HookPoint::kMergeAfterClear;
    const int id = (a >> 1) & 1;
    Await();
    if (clone_ != nullptr) {
      // Closing a handle waits for the merge: no clone while one is held.
      FUZZ_CHECK_OK(clone_->Close(), "clone Close");
      clone_.reset();
    }
    FUZZ_LOG("interleave: merge held ",
             !in_commit ? "at its start"
             : commit_point == HookPoint::kMergeCommitted
                 ? "at its commit, before its log reset"
                 : "in its commit, after its log reset",
             ", reader ", id, " released at its point ", (b >> 2) & 3);
    gate_.Hold(in_commit ? commit_point : HookPoint::kMergeBefore);
    FUZZ_CHECK_OK(writer_->Merge(), "Merge");
    model_.Merge();
    if (!in_commit) {
      for (int i = 0; i < (b & 3); ++i) {
        const std::string v = OpValue(++counter_);
        const int k = static_cast<int>((counter_ * 5) % kKeys);
        FUZZ_CHECK_OK(writer_->Replace(keys_[k], v, /*overcommit=*/true),
                      "Replace");
        model_.Replace(keys_[k], v, true);
      }
      FUZZ_CHECK_OK(writer_->Flush(), "Flush");
      model_.Flush(false);
    } else {
      // Merge() created log_async before starting the merge thread, unless
      // there was nothing to merge. The thread then stops inside its commit,
      // holding the merge lock (and after the log reset the writer's lock):
      // wait until it is there, and touch only the reader meanwhile.
      absl::StatusOr<bool> started =
          env_.FileExists(StorePath(kRoot, "log_async"));
      if (started.ok() && *started) gate_.AwaitReached();
    }
    release_at_ = kReaderPoints[(b >> 2) & 3];
    if (readers_.count(id)) {
      SyncReader(id);
    } else {
      OpenReader(id);
    }
    release_at_.reset();
    if (a & 4) {
      CloseAndReopen(/*immediately=*/true, /*switch_layout=*/false);
      return;
    }
    gate_.Release();
    Await();
  }

  absl::Status ReaderHook(HookPoint p) {
    if (release_at_.has_value() && *release_at_ == p) {
      FUZZ_LOG("  reader at its point: the merge runs to its end");
      release_at_.reset();
      gate_.Release();
      (void)writer_->AwaitMerge();
    }
    return absl::OkStatus();
  }

  MemEnv env_;
  InstanceCache cache_;
  Gate gate_;
  std::optional<HookPoint> release_at_;
  Schema schema_;
  Options options_;
  bool background_ = false;
  std::atomic<int> callbacks_{0};
  std::unique_ptr<RawIndex> writer_;
  std::unique_ptr<RawIndex> clone_;
  std::map<int, Reader> readers_;
  model::IndexModel model_;
  std::vector<std::string> keys_;
  uint64_t counter_ = 0;
};

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvindex::fuzz::RunDriver<kvindex::fuzz::Driver>(data, size, 300);
}
