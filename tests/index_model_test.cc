// Model-based stateful property tests: random command sequences drive a
// RawIndex over MemEnv and model::IndexModel (model/model.h) side by side, and
// every observation of the index is checked against what the model allows.
// Small key and value pools make keys repeat, 2- or 8-bit hashes make them
// collide, and log_size 1..8 makes merges run all the time in the background.
//
// Properties (each a gtest test): the writer alone; plus read-only instances;
// plus power loss (MemEnv::Restart, torn writes, crashes in the middle of
// operations); plus injected IO errors. A crash or an IO error ends with the
// writer reopened, checked against the model's crash rule, then rewritten to
// the model's durable state (the model adopts it too), so that sequences can go
// on deterministically.
//
// Counterexamples print the configuration and the command list (show()), plus
// the first and last failure explanations seen (a shrunk case that depends on
// background-merge timing may not fail again when it is printed).
// Default: a fixed seed per property and 500 cases; RC_PARAMS overrides
// ("seed=7 max_success=50"), KVINDEX_SOAK=1 (--config=soak) runs 20000.
//
// The IndexModelRegressionTest tests at the end replay, deterministically, the
// bugs the properties found.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/mem_env.h"
#include "model/model.h"
#include "rapidcheck.h"
#include "rapidcheck/state.h"
#include "tests/index_model_util.h"

namespace kvindex {
namespace index_model_test {
namespace {

using model::IndexModel;
using model::Outcome;

constexpr char kRoot[] = "/store";

// --- Configuration of one test case ------------------------------------------

struct Config {
  int hash_bits = 8;
  uint64_t log_size = 4;
  size_t lru_size = 0;
  Throttle throttle = Throttle::kBlockWrites;
  // The writer's layout at the start; with switch_layouts, every reopen of
  // the writer (after a close or a crash) converts the store to the other one.
  Layout layout = Layout::kSingleFile;
  bool switch_layouts = false;
};

void showValue(const Config& c, std::ostream& os) {
  os << "Config{hash_bits=" << c.hash_bits << ", log_size=" << c.log_size
     << ", lru_size=" << c.lru_size << ", throttle="
     << (c.throttle == Throttle::kBlockWrites ? "block_writes"
                                              : "overcommit_memory")
     << ", layout=" << (c.layout == Layout::kTiered ? "tiered" : "single_file")
     << ", switch_layouts=" << c.switch_layouts << "}";
}

rc::Gen<Config> GenConfig() {
  return rc::gen::apply(
      [](int bits, int log_size, size_t lru, bool overcommit, int layout) {
        Config c;
        c.hash_bits = bits;
        c.log_size = static_cast<uint64_t>(log_size);
        c.lru_size = lru;
        c.throttle =
            overcommit ? Throttle::kOvercommitMemory : Throttle::kBlockWrites;
        // 0: single file, 1: tiered, 2 and 3: either, switching at reopens.
        c.layout = layout % 2 == 1 ? Layout::kTiered : Layout::kSingleFile;
        c.switch_layouts = layout >= 2;
        return c;
      },
      rc::gen::element(2, 8), Uniform(1, 9),
      rc::gen::element<size_t>(0, 1, 4, 1000), rc::gen::arbitrary<bool>(),
      rc::gen::inRange(0, 4));
}

// --- The system under test ---------------------------------------------------

struct Reader {
  std::unique_ptr<RawIndex> index;
  model::Map snapshot;      // what it showed right after its last sync
  size_t min_position = 0;  // lowest history position that snapshot can be
};

class Sut {
 public:
  explicit Sut(const Config& config)
      : config_(config),
        schema_(TestSchema(config.hash_bits)),
        layout_(config.layout) {
    Options options = WriterOptions();
    options.fresh = true;
    auto w = RawIndex::Open(kRoot, schema_, options);
    if (!w.ok()) Fail("opening the writer: " + w.status().ToString());
    writer = *std::move(w);
  }
  ~Sut() {
    readers.clear();
    writer.reset();
  }

  Options WriterOptions() {
    Options o;
    o.env = &env;
    o.log_size = config_.log_size;
    o.lru_size = config_.lru_size;
    o.throttle = config_.throttle;
    o.layout = layout_;
    return o;
  }
  // Called before each reopen of the writer.
  void NextLayout() {
    if (!config_.switch_layouts) return;
    layout_ =
        layout_ == Layout::kTiered ? Layout::kSingleFile : Layout::kTiered;
  }
  Options ReaderOptions() {
    Options o = WriterOptions();
    o.readonly = true;
    return o;
  }
  const Schema& schema() const { return schema_; }

  MemEnv env;  // declared first: outlives every index
  std::unique_ptr<RawIndex> writer;
  std::map<int, Reader> readers;

 private:
  Config config_;
  Schema schema_;
  Layout layout_;
};

using Cmd = rc::state::Command<IndexModel, Sut>;
using CmdPtr = std::shared_ptr<const Cmd>;

// --- Assertion helpers -------------------------------------------------------

void AssertCode(const absl::Status& s, absl::StatusCode code,
                const std::string& what) {
  if (s.code() != code) {
    Fail(what + ": expected " + absl::StatusCodeToString(code) + ", got " +
         s.ToString());
  }
}

template <typename T>
T ValueOrFail(absl::StatusOr<T> r, const std::string& what) {
  if (!r.ok()) Fail(what + ": " + r.status().ToString());
  return *std::move(r);
}

void CheckAllBindings(const RawIndex& index, const model::Map& expected,
                      const std::string& what) {
  const model::Map got = ValueOrFail(ReadAll(index), what + ": find");
  if (got != expected) {
    Fail(what + ": index shows " + model::ShowMap(got) + ", model expects " +
         model::ShowMap(expected));
  }
}

void ReopenWriter(Sut& sut, const std::string& what) {
  sut.NextLayout();
  auto w = RawIndex::Open(kRoot, sut.schema(), sut.WriterOptions());
  if (!w.ok()) Fail(what + ": reopening the writer: " + w.status().ToString());
  sut.writer = *std::move(w);
}

// Rewrites the writer's bindings to `target` and makes them durable.
void Normalize(Sut& sut, const model::Map& target) {
  const model::Map now =
      ValueOrFail(ReadAll(*sut.writer), "normalize: reading back");
  std::set<std::string> drop;
  for (const auto& [k, v] : now) {
    if (!target.count(k)) drop.insert(k);
  }
  if (!drop.empty()) {
    AssertOk(sut.writer->Filter([&](absl::string_view k, absl::string_view) {
      return drop.count(std::string(k)) == 0;
    }),
             "normalize: filter");
  }
  for (const auto& [k, v] : target) {
    auto it = now.find(k);
    if (it != now.end() && it->second == v) continue;
    AssertOk(sut.writer->Replace(k, v, /*overcommit=*/true),
             "normalize: replace");
  }
  FlushOptions fsync;
  fsync.with_fsync = true;
  AssertOk(sut.writer->Flush(fsync), "normalize: flush");
  CheckAllBindings(*sut.writer, target, "normalize");
}

// Reads a reader's whole view right after it synced and checks it against the
// range [F, H] the model records for the sync (taken from s0: run() sees the
// model before apply()).
void TakeSnapshot(const IndexModel& s0, Sut& sut, int id, bool first) {
  Reader& r = sut.readers.at(id);
  const std::string what = "read-only #" + std::to_string(id);
  const model::Map snap = ValueOrFail(ReadAll(*r.index), what + ": find");
  const size_t lo = s0.flushed(), hi = s0.maybe_flushed();
  const std::string why = s0.ExplainRange(snap, lo, hi, /*prefix=*/true);
  if (!why.empty()) Fail(what + " after sync: " + why);
  const std::vector<size_t> at = s0.Matching(snap, lo, hi);
  if (!first && at.back() < r.min_position) {
    Fail(what + " went back in time: " + model::ShowMap(snap) +
         " is at most state(" + std::to_string(at.back()) +
         ") but an earlier sync showed at least state(" +
         std::to_string(r.min_position) + ")");
  }
  r.snapshot = snap;
  r.min_position = at.front();
}

// --- Writes used inside crash and fault commands -----------------------------

struct WriteOp {
  enum Kind {
    kReplace,
    kReplaceOvercommit,
    kFlush,
    kFlushFsync,
    kMerge,
    kAwaitMerge,
    kTryMerge,
    kClear,
    kFilter,
    kClose,
  };
  Kind kind = kReplace;
  std::string key, value;
  KeepPredicate keep;
};

std::ostream& operator<<(std::ostream& os, const WriteOp& op) {
  switch (op.kind) {
    case WriteOp::kReplace:
      return os << "replace " << op.key << "=" << op.value;
    case WriteOp::kReplaceOvercommit:
      return os << "replace " << op.key << "=" << op.value << " overcommit";
    case WriteOp::kFlush:
      return os << "flush";
    case WriteOp::kFlushFsync:
      return os << "flush+fsync";
    case WriteOp::kMerge:
      return os << "merge";
    case WriteOp::kAwaitMerge:
      return os << "await_merge";
    case WriteOp::kTryMerge:
      return os << "try_merge";
    case WriteOp::kClear:
      return os << "clear";
    case WriteOp::kFilter:
      return os << "filter(" << op.keep << ")";
    case WriteOp::kClose:
      return os << "close";
  }
  return os;
}

rc::Gen<WriteOp> GenWriteOp(bool with_close) {
  return rc::gen::exec([with_close] {
    WriteOp op;
    op.kind = *rc::gen::weightedElement<WriteOp::Kind>({
        {8, WriteOp::kReplace},
        {4, WriteOp::kReplaceOvercommit},
        {2, WriteOp::kFlush},
        {2, WriteOp::kFlushFsync},
        {1, WriteOp::kMerge},
        {1, WriteOp::kAwaitMerge},
        {1, WriteOp::kTryMerge},
        {1, WriteOp::kClear},
        {1, WriteOp::kFilter},
        {with_close ? 1u : 0u, WriteOp::kClose},
    });
    op.key = *GenKey();
    op.value = *GenValue();
    op.keep = *GenKeepPredicate();
    return op;
  });
}

absl::Status RunOp(const WriteOp& op, RawIndex& w) {
  FlushOptions fsync;
  fsync.with_fsync = true;
  switch (op.kind) {
    case WriteOp::kReplace:
      return w.Replace(op.key, op.value);
    case WriteOp::kReplaceOvercommit:
      return w.Replace(op.key, op.value, /*overcommit=*/true);
    case WriteOp::kFlush:
      return w.Flush();
    case WriteOp::kFlushFsync:
      return w.Flush(fsync);
    case WriteOp::kMerge:
      return w.Merge();
    case WriteOp::kAwaitMerge:
      return w.AwaitMerge();
    case WriteOp::kTryMerge:
      return w.TryMerge();
    case WriteOp::kClear:
      return w.Clear();
    case WriteOp::kFilter: {
      const KeepPredicate keep = op.keep;
      return w.Filter([keep](absl::string_view k, absl::string_view v) {
        return keep(std::string(k), std::string(v));
      });
    }
    case WriteOp::kClose:
      return w.Close();
  }
  return absl::InternalError("unknown op");
}

void ApplyOp(const WriteOp& op, IndexModel* m, Outcome o) {
  switch (op.kind) {
    case WriteOp::kReplace:
      return m->Replace(op.key, op.value, false, o);
    case WriteOp::kReplaceOvercommit:
      return m->Replace(op.key, op.value, true, o);
    case WriteOp::kFlush:
      return m->Flush(false, o);
    case WriteOp::kFlushFsync:
      return m->Flush(true, o);
    case WriteOp::kMerge:
      return m->Merge(o);
    case WriteOp::kAwaitMerge:
      if (o == Outcome::kOk) m->AwaitMerge();
      return;
    case WriteOp::kTryMerge:
      return m->TryMerge(o);
    case WriteOp::kClear:
      return m->Clear(o);
    case WriteOp::kFilter:
      return m->Filter(op.keep, o);
    case WriteOp::kClose:
      return m->Close(o);
  }
}

// --- Writer commands ---------------------------------------------------------

class ReplaceCmd : public Cmd {
 public:
  explicit ReplaceCmd(const IndexModel&)
      : key_(*GenKey()),
        value_(*GenValue()),
        overcommit_(*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {}
  void apply(IndexModel& m) const override {
    m.Replace(key_, value_, overcommit_);
  }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(sut.writer->Replace(key_, value_, overcommit_), "replace");
  }
  void show(std::ostream& os) const override {
    os << "Replace(" << key_ << ", " << value_
       << (overcommit_ ? ", overcommit)" : ")");
  }

 private:
  std::string key_, value_;
  bool overcommit_;
};

class FindCmd : public Cmd {
 public:
  explicit FindCmd(const IndexModel&) : key_(*GenKey()) {}
  void run(const IndexModel& s0, Sut& sut) const override {
    char value[kValueSize];
    const bool found = ValueOrFail(sut.writer->Find(key_, value), "find");
    const std::optional<std::string> want = s0.Find(key_);
    const std::optional<std::string> got =
        found ? std::optional<std::string>(std::string(value, kValueSize))
              : std::nullopt;
    if (got != want) {
      Fail("find " + key_ + ": index " + (got ? model::Quote(*got) : "absent") +
           ", model " + (want ? model::Quote(*want) : "absent"));
    }
    const bool mem = ValueOrFail(sut.writer->Mem(key_), "mem");
    if (mem != want.has_value()) Fail("mem " + key_ + " disagrees with model");
  }
  void show(std::ostream& os) const override { os << "Find(" << key_ << ")"; }

 private:
  std::string key_;
};

class CheckAllCmd : public Cmd {
 public:
  void run(const IndexModel& s0, Sut& sut) const override {
    CheckAllBindings(*sut.writer, s0.Bindings(), "find all");
  }
  void show(std::ostream& os) const override { os << "FindAll()"; }
};

class IterCmd : public Cmd {
 public:
  void run(const IndexModel& s0, Sut& sut) const override {
    const model::Visits visits = ValueOrFail(IterAll(*sut.writer), "iter");
    const std::string why =
        model::CheckIterVisits(s0.Bindings(), visits, s0.ValuesSinceClear());
    if (!why.empty()) Fail("writer " + why);
  }
  void show(std::ostream& os) const override { os << "Iter()"; }
};

class FilterCmd : public Cmd {
 public:
  explicit FilterCmd(const IndexModel&) : keep_(*GenKeepPredicate()) {}
  void apply(IndexModel& m) const override { m.Filter(keep_); }
  void run(const IndexModel& s0, Sut& sut) const override {
    std::mutex mu;
    std::vector<std::pair<std::string, std::string>> calls;
    const KeepPredicate keep = keep_;
    AssertOk(sut.writer->Filter([&](absl::string_view k, absl::string_view v) {
      std::lock_guard<std::mutex> lock(mu);
      calls.emplace_back(std::string(k), std::string(v));
      return keep(std::string(k), std::string(v));
    }),
             "filter");
    // Only the newest binding of each key may be considered.
    for (const auto& [k, v] : calls) {
      if (s0.Find(k) != v) {
        Fail("filter called keep(" + model::Quote(k) + ", " + model::Quote(v) +
             ") but the binding is " +
             (s0.Find(k) ? model::Quote(*s0.Find(k)) : "absent"));
      }
    }
  }
  void show(std::ostream& os) const override {
    os << "Filter(" << keep_ << ")";
  }

 private:
  KeepPredicate keep_;
};

class ClearCmd : public Cmd {
 public:
  void apply(IndexModel& m) const override { m.Clear(); }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(sut.writer->Clear(), "clear");
  }
  void show(std::ostream& os) const override { os << "Clear()"; }
};

class FlushCmd : public Cmd {
 public:
  explicit FlushCmd(const IndexModel&) : fsync_(*rc::gen::arbitrary<bool>()) {}
  void apply(IndexModel& m) const override { m.Flush(fsync_); }
  void run(const IndexModel&, Sut& sut) const override {
    FlushOptions o;
    o.with_fsync = fsync_;
    AssertOk(sut.writer->Flush(o), "flush");
  }
  void show(std::ostream& os) const override {
    os << "Flush(" << (fsync_ ? "fsync" : "") << ")";
  }

 private:
  bool fsync_;
};

class MergeCmd : public Cmd {
 public:
  explicit MergeCmd(const IndexModel&) : await_(*rc::gen::arbitrary<bool>()) {}
  void apply(IndexModel& m) const override {
    m.Merge();
    if (await_) m.AwaitMerge();
  }
  void run(const IndexModel& s0, Sut& sut) const override {
    AssertOk(sut.writer->Merge(), "merge");
    if (!await_) return;
    IndexModel after = s0;
    after.Merge();
    const absl::Status s = sut.writer->AwaitMerge();
    if (!s.ok() && !(after.merge_may_have_aborted() && absl::IsAborted(s))) {
      Fail("await_merge after merge: " + s.ToString());
    }
  }
  void show(std::ostream& os) const override {
    os << (await_ ? "Merge() + AwaitMerge()" : "Merge()");
  }

 private:
  bool await_;
};

class TryMergeCmd : public Cmd {
 public:
  void apply(IndexModel& m) const override { m.TryMerge(); }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(sut.writer->TryMerge(), "try_merge");
  }
  void show(std::ostream& os) const override { os << "TryMerge()"; }
};

class AwaitMergeCmd : public Cmd {
 public:
  void apply(IndexModel& m) const override { m.AwaitMerge(); }
  void run(const IndexModel& s0, Sut& sut) const override {
    const absl::Status s = sut.writer->AwaitMerge();
    if (!s.ok() && !(s0.merge_may_have_aborted() && absl::IsAborted(s))) {
      Fail("await_merge: " + s.ToString());
    }
    const bool merging = ValueOrFail(sut.writer->IsMerging(), "is_merging");
    if (merging) Fail("is_merging is true right after await_merge");
  }
  void show(std::ostream& os) const override { os << "AwaitMerge()"; }
};

class CloseReopenCmd : public Cmd {
 public:
  explicit CloseReopenCmd(const IndexModel&)
      : immediately_(*rc::gen::arbitrary<bool>()), key_(*GenKey()) {}
  void apply(IndexModel& m) const override {
    m.Close();
    m.Reopen();
  }
  void run(const IndexModel& s0, Sut& sut) const override {
    AssertOk(sut.writer->Close(immediately_), "close");
    char value[kValueSize];
    AssertCode(sut.writer->Find(key_, value).status(),
               absl::StatusCode::kFailedPrecondition, "find after close");
    AssertCode(sut.writer->Replace(key_, "v000"),
               absl::StatusCode::kFailedPrecondition, "replace after close");
    AssertOk(sut.writer->Close(), "second close");
    sut.writer.reset();
    ReopenWriter(sut, "close and reopen");
    CheckAllBindings(*sut.writer, s0.Bindings(), "after close and reopen");
  }
  void show(std::ostream& os) const override {
    os << "Close(" << (immediately_ ? "immediately" : "") << ") + Reopen()";
  }

 private:
  bool immediately_;
  std::string key_;
};

class MisuseCmd : public Cmd {
 public:
  explicit MisuseCmd(const IndexModel&)
      : kind_(*Uniform(0, 3)), key_(*GenKey()) {}
  void run(const IndexModel&, Sut& sut) const override {
    switch (kind_) {
      case 0:
        AssertCode(sut.writer->Replace(key_ + "x", "v000"),
                   absl::StatusCode::kInvalidArgument, "replace, 9-byte key");
        break;
      case 1:
        AssertCode(sut.writer->Replace(key_, "v00"),
                   absl::StatusCode::kInvalidArgument, "replace, 3-byte value");
        break;
      default:
        AssertCode(sut.writer->Sync(), absl::StatusCode::kFailedPrecondition,
                   "sync on the writer");
    }
  }
  void show(std::ostream& os) const override {
    static const char* const kNames[] = {"Replace(9-byte key)",
                                         "Replace(3-byte value)", "Sync()"};
    os << "Misuse(" << kNames[kind_] << ")";
  }

 private:
  int kind_;
  std::string key_;
};

// --- Read-only instances -----------------------------------------------------

constexpr int kMaxReaders = 3;

class OpenReaderCmd : public Cmd {
 public:
  explicit OpenReaderCmd(const IndexModel& m) : id_(*Uniform(0, kMaxReaders)) {
    RC_PRE(!m.HasReadOnly(id_));
  }
  void checkPreconditions(const IndexModel& m) const override {
    RC_PRE(!m.HasReadOnly(id_));
  }
  void apply(IndexModel& m) const override { m.OpenReadOnly(id_); }
  void run(const IndexModel& s0, Sut& sut) const override {
    auto r = RawIndex::Open(kRoot, sut.schema(), sut.ReaderOptions());
    if (!r.ok()) Fail("opening read-only: " + r.status().ToString());
    if (!(*r)->readonly()) Fail("read-only open returned a writer");
    sut.readers[id_].index = *std::move(r);
    TakeSnapshot(s0, sut, id_, /*first=*/true);
  }
  void show(std::ostream& os) const override {
    os << "OpenReadOnly(#" << id_ << ")";
  }

 private:
  int id_;
};

// Base of the commands on an open reader: picks one.
class ReaderCmd : public Cmd {
 public:
  explicit ReaderCmd(const IndexModel& m) {
    const std::vector<int> ids = m.ReadOnlyIds();
    RC_PRE(!ids.empty());
    id_ = *rc::gen::elementOf(ids);
  }
  void checkPreconditions(const IndexModel& m) const override {
    RC_PRE(m.HasReadOnly(id_));
  }

 protected:
  int id_ = 0;
};

class SyncReaderCmd : public ReaderCmd {
 public:
  using ReaderCmd::ReaderCmd;
  void apply(IndexModel& m) const override { m.Sync(id_); }
  void run(const IndexModel& s0, Sut& sut) const override {
    AssertOk(sut.readers.at(id_).index->Sync(), "sync");
    TakeSnapshot(s0, sut, id_, /*first=*/false);
  }
  void show(std::ostream& os) const override { os << "Sync(#" << id_ << ")"; }
};

class FindReaderCmd : public ReaderCmd {
 public:
  explicit FindReaderCmd(const IndexModel& m) : ReaderCmd(m), key_(*GenKey()) {}
  void run(const IndexModel&, Sut& sut) const override {
    const Reader& r = sut.readers.at(id_);
    char value[kValueSize];
    const bool found =
        ValueOrFail(r.index->Find(key_, value), "read-only find");
    auto it = r.snapshot.find(key_);
    const bool want = it != r.snapshot.end();
    if (found != want ||
        (found && std::string(value, kValueSize) != it->second)) {
      Fail("read-only #" + std::to_string(id_) + " find " + key_ + ": " +
           (found ? model::Quote(std::string(value, kValueSize))
                  : std::string("absent")) +
           ", but since its last sync it showed " + model::ShowMap(r.snapshot));
    }
  }
  void show(std::ostream& os) const override {
    os << "Find(#" << id_ << ", " << key_ << ")";
  }

 private:
  std::string key_;
};

class IterReaderCmd : public ReaderCmd {
 public:
  using ReaderCmd::ReaderCmd;
  void run(const IndexModel& s0, Sut& sut) const override {
    const Reader& r = sut.readers.at(id_);
    const model::Visits visits =
        ValueOrFail(IterAll(*r.index), "read-only iter");
    const std::string why =
        model::CheckIterVisits(r.snapshot, visits, s0.ValuesEver());
    if (!why.empty()) Fail("read-only #" + std::to_string(id_) + " " + why);
  }
  void show(std::ostream& os) const override { os << "Iter(#" << id_ << ")"; }
};

class CloseReaderCmd : public ReaderCmd {
 public:
  using ReaderCmd::ReaderCmd;
  void apply(IndexModel& m) const override { m.CloseReadOnly(id_); }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(sut.readers.at(id_).index->Close(), "read-only close");
    sut.readers.erase(id_);
  }
  void show(std::ostream& os) const override { os << "Close(#" << id_ << ")"; }
};

class ReaderMisuseCmd : public ReaderCmd {
 public:
  explicit ReaderMisuseCmd(const IndexModel& m)
      : ReaderCmd(m), kind_(*Uniform(0, 6)) {}
  void run(const IndexModel&, Sut& sut) const override {
    RawIndex& r = *sut.readers.at(id_).index;
    absl::Status s;
    switch (kind_) {
      case 0:
        s = r.Replace(PoolKey(0), "v000");
        break;
      case 1:
        s = r.Clear();
        break;
      case 2:
        s = r.Flush();
        break;
      case 3:
        s = r.Filter(
            [](absl::string_view, absl::string_view) { return false; });
        break;
      case 4:
        s = r.Merge();
        break;
      default:
        s = r.TryMerge();
    }
    AssertCode(s, absl::StatusCode::kFailedPrecondition,
               "write on read-only #" + std::to_string(id_));
  }
  void show(std::ostream& os) const override {
    static const char* const kNames[] = {"Replace", "Clear", "Flush",
                                         "Filter",  "Merge", "TryMerge"};
    os << "Misuse(#" << id_ << ", " << kNames[kind_] << ")";
  }

 private:
  int kind_;
};

// --- Power loss --------------------------------------------------------------

// Kills the "process": everything after this point is lost to the crash.
void PowerOff(Sut& sut) {
  if (!sut.env.crashed()) sut.env.CrashAfter(0);
  sut.readers.clear();
  sut.writer.reset();
}

class CrashCmd : public Cmd {
 public:
  explicit CrashCmd(const IndexModel&)
      : crash_after_(*rc::gen::weightedOneOf<int>(
            {{1, rc::gen::just(-1)}, {3, Uniform(0, 40)}})),
        ops_(crash_after_ < 0 ? std::vector<WriteOp>()
                              : *rc::gen::container<std::vector<WriteOp>>(
                                    static_cast<size_t>(*Uniform(1, 8)),
                                    GenWriteOp(/*with_close=*/true))),
        seed_(*Uniform<uint64_t>(0, 1000000)),
        keep_prefix_(*rc::gen::weightedElement<bool>({{4, true}, {1, false}})),
        tear_(*rc::gen::arbitrary<bool>()) {}

  void apply(IndexModel& m) const override { m.Crash(); }

  void run(const IndexModel& s0, Sut& sut) const override {
    IndexModel m = s0;
    std::ostringstream log;
    if (crash_after_ >= 0) {
      sut.env.CrashAfter(static_cast<uint64_t>(crash_after_));
      bool failed = false;
      for (const WriteOp& op : ops_) {
        const absl::Status s = RunOp(op, *sut.writer);
        log << "    " << op << " -> " << s.ToString() << "\n";
        ApplyOp(op, &m, s.ok() && !failed ? Outcome::kOk : Outcome::kFailed);
        if (!s.ok()) failed = true;
      }
    }
    PowerOff(sut);
    CrashOptions options;
    options.seed = seed_;
    options.keep_unsynced_prefix = keep_prefix_;
    options.tear_last_write = tear_;
    sut.env.Restart(options);
    ReopenWriter(sut, "after the crash");
    const model::Map got =
        ValueOrFail(ReadAll(*sut.writer), "find after the crash");
    std::string why = m.CheckRecovered(got);
    if (!why.empty()) {
      Fail("after the crash: " + why + "\n  ops before the crash:\n" +
           log.str());
    }
    const model::Visits visits =
        ValueOrFail(IterAll(*sut.writer), "iter after the crash");
    why = model::CheckIterVisits(got, visits, m.ValuesEver());
    if (!why.empty()) Fail("after the crash: writer " + why);
    Normalize(sut, s0.StateAt(s0.durable()));
  }

  void show(std::ostream& os) const override {
    os << "Crash(";
    if (crash_after_ < 0) {
      os << "now";
    } else {
      os << "after " << crash_after_ << " mutations of [";
      for (size_t i = 0; i < ops_.size(); ++i) {
        os << (i ? ", " : "") << ops_[i];
      }
      os << "]";
    }
    os << ", seed=" << seed_ << (keep_prefix_ ? "" : ", drop unsynced")
       << (tear_ ? ", tear" : "") << ") + Reopen()";
  }

 private:
  int crash_after_;
  std::vector<WriteOp> ops_;
  uint64_t seed_;
  bool keep_prefix_;
  bool tear_;
};

// --- Injected IO errors ------------------------------------------------------

class IoErrorCmd : public Cmd {
 public:
  explicit IoErrorCmd(const IndexModel&)
      : mask_(*rc::gen::element<uint32_t>(kOpWrite, kOpSync, kOpWrite | kOpSync,
                                          kOpRename | kOpRemove | kOpSyncDir,
                                          kOpMutating)),
        skip_(*Uniform<uint64_t>(0, 12)),
        count_(*rc::gen::element<int64_t>(1, 3, -1)),
        enospc_(*rc::gen::arbitrary<bool>()),
        ops_(*rc::gen::container<std::vector<WriteOp>>(
            static_cast<size_t>(*Uniform(1, 8)),
            GenWriteOp(/*with_close=*/false))),
        probe_key_(*GenKey()),
        probe_value_(*GenValue()) {}

  void apply(IndexModel& m) const override { m.Crash(); }

  void run(const IndexModel& s0, Sut& sut) const override {
    for (auto& [id, r] : sut.readers)
      AssertOk(r.index->Close(), "read-only close");
    sut.readers.clear();
    IndexModel m = s0;
    const absl::Status error =
        enospc_ ? absl::ResourceExhaustedError("injected ENOSPC")
                : absl::InternalError("injected EIO");
    std::ostringstream log;
    sut.env.InjectError(mask_, skip_, count_, error);
    bool failed = false;
    size_t lo = m.end();
    for (const WriteOp& op : ops_) {
      if (!failed) lo = m.end();
      const absl::Status s = RunOp(op, *sut.writer);
      log << "    " << op << " -> " << s.ToString() << "\n";
      const bool allowed =
          s.ok() || s.code() == error.code() || absl::IsFailedPrecondition(s) ||
          (op.kind == WriteOp::kAwaitMerge && absl::IsAborted(s));
      if (!allowed) Fail("unexpected status under IO errors:\n" + log.str());
      ApplyOp(op, &m, s.ok() && !failed ? Outcome::kOk : Outcome::kFailed);
      if (!s.ok()) failed = true;
    }
    sut.env.ClearInjectedErrors();

    // Reads keep working and show what the writer did (or may have done).
    const model::Map live =
        ValueOrFail(ReadAll(*sut.writer), "find after IO errors");
    if (!failed && live != m.Bindings()) {
      Fail("no operation failed, yet the writer shows " + model::ShowMap(live) +
           " instead of " + model::ShowMap(m.Bindings()) + "\n" + log.str());
    }
    if (failed) {
      const std::string why = m.ExplainRange(live, lo, m.end(), false);
      if (!why.empty()) Fail("writer after IO errors: " + why + log.str());
    }

    // Either it still works, or it refuses writes, carrying the original error
    // (also when only a background merge met the error).
    const absl::Status probe =
        sut.writer->Replace(probe_key_, probe_value_, true);
    log << "    probe replace " << probe_key_ << "=" << probe_value_ << " -> "
        << probe.ToString() << "\n";
    if (probe.ok()) {
      char value[kValueSize];
      const bool found =
          ValueOrFail(sut.writer->Find(probe_key_, value), "find");
      if (!found || std::string(value, kValueSize) != probe_value_) {
        Fail("replace accepted after IO errors but not found:\n" + log.str());
      }
    } else if (!absl::IsFailedPrecondition(probe) ||
               !absl::StrContains(probe.message(), error.message())) {
      Fail(
          "replace after IO errors should succeed or fail with "
          "FAILED_PRECONDITION carrying the IO error:\n" +
          log.str());
    }
    ApplyOp({WriteOp::kReplaceOvercommit, probe_key_, probe_value_, {}}, &m,
            probe.ok() && !failed ? Outcome::kOk : Outcome::kFailed);
    if (!probe.ok()) failed = true;

    // A merge the operations started may meet the error in the background
    // after the probe: close then reports it (with the injected error).
    const bool merge_may_run = m.merge_may_run();
    const absl::Status closed = sut.writer->Close();
    log << "    close -> " << closed.ToString() << "\n";
    if (!failed && !closed.ok() &&
        !(merge_may_run &&
          absl::StrContains(closed.message(), error.message()))) {
      Fail("close failed:\n" + log.str());
    }
    m.Close(closed.ok() && !failed ? Outcome::kOk : Outcome::kFailed);
    sut.writer.reset();
    ReopenWriter(sut, "after IO errors");
    const model::Map got =
        ValueOrFail(ReadAll(*sut.writer), "find after reopen");
    std::string why =
        m.ExplainRange(got, m.durable(), m.maybe_flushed(), !failed);
    if (!why.empty()) Fail("reopened after IO errors: " + why + log.str());
    const model::Visits visits = ValueOrFail(IterAll(*sut.writer), "iter");
    why = model::CheckIterVisits(got, visits, m.ValuesEver());
    if (!why.empty()) Fail("reopened after IO errors: writer " + why);
    Normalize(sut, s0.StateAt(s0.durable()));
  }

  void show(std::ostream& os) const override {
    os << "IoError(mask=0x" << std::hex << mask_ << std::dec
       << ", skip=" << skip_ << ", count=" << count_ << ", "
       << (enospc_ ? "ENOSPC" : "EIO") << ", [";
    for (size_t i = 0; i < ops_.size(); ++i) os << (i ? ", " : "") << ops_[i];
    os << "], probe " << probe_key_ << "=" << probe_value_
       << ") + Close() + Reopen()";
  }

 private:
  uint32_t mask_;
  uint64_t skip_;
  int64_t count_;
  bool enospc_;
  std::vector<WriteOp> ops_;
  std::string probe_key_, probe_value_;
};

// --- Command generation ------------------------------------------------------

enum class Profile { kWriter, kReaders, kCrash, kIoErrors };

template <typename C>
CmdPtr Make(const IndexModel& m) {
  return std::make_shared<const C>(m);
}
template <typename C>
CmdPtr MakeDefault(const IndexModel&) {
  return std::make_shared<const C>();
}

// (weight, factory) for every command of the profile that applies to `m`.
std::vector<std::pair<int, CmdPtr (*)(const IndexModel&)>> Table(
    Profile p, const IndexModel& m) {
  std::vector<std::pair<int, CmdPtr (*)(const IndexModel&)>> t = {
      {30, &Make<ReplaceCmd>},        {8, &Make<FindCmd>},
      {3, &MakeDefault<CheckAllCmd>}, {3, &MakeDefault<IterCmd>},
      {2, &Make<FilterCmd>},          {1, &MakeDefault<ClearCmd>},
      {5, &Make<FlushCmd>},           {3, &Make<MergeCmd>},
      {2, &MakeDefault<TryMergeCmd>}, {3, &MakeDefault<AwaitMergeCmd>},
      {2, &Make<CloseReopenCmd>},     {1, &Make<MisuseCmd>},
  };
  if (p == Profile::kReaders) {
    if (m.ReadOnlyIds().size() < static_cast<size_t>(kMaxReaders)) {
      t.push_back({4, &Make<OpenReaderCmd>});
    }
    if (!m.ReadOnlyIds().empty()) {
      t.push_back({8, &Make<SyncReaderCmd>});
      t.push_back({8, &Make<FindReaderCmd>});
      t.push_back({3, &Make<IterReaderCmd>});
      t.push_back({1, &Make<CloseReaderCmd>});
      t.push_back({1, &Make<ReaderMisuseCmd>});
    }
  }
  if (p == Profile::kCrash) t.push_back({6, &Make<CrashCmd>});
  if (p == Profile::kIoErrors) t.push_back({6, &Make<IoErrorCmd>});
  return t;
}

auto GenCommand(Profile p) {
  return [p](const IndexModel& m) {
    auto shared = std::make_shared<const IndexModel>(m);
    return rc::gen::exec([p, shared]() -> CmdPtr {
      const auto table = Table(p, *shared);
      int total = 0;
      for (const auto& [w, f] : table) total += w;
      int r = *Uniform(0, total);
      for (const auto& [w, f] : table) {
        if (r < w) return f(*shared);
        r -= w;
      }
      return table.back().second(*shared);
    });
  };
}

void RunProfile(Profile p) {
  const Config config = *GenConfig();
  Sut sut(config);
  rc::state::check(IndexModel(), sut, GenCommand(p));
}

TEST(IndexModelTest, WriterMatchesModel) {
  CheckProperty([] { RunProfile(Profile::kWriter); }, 500, 20000);
}

TEST(IndexModelTest, ReadOnlyInstancesSeeFlushedPrefix) {
  CheckProperty([] { RunProfile(Profile::kReaders); }, 500, 20000);
}

TEST(IndexModelTest, CrashKeepsDurableAndInventsNothing) {
  CheckProperty([] { RunProfile(Profile::kCrash); }, 500, 20000);
}

TEST(IndexModelTest, IoErrorsNeverLoseDurableBindings) {
  CheckProperty([] { RunProfile(Profile::kIoErrors); }, 500, 20000);
}

// --- Regression tests: the counterexamples above, made deterministic ---------

class IndexModelRegressionTest : public ::testing::Test {
 protected:
  std::unique_ptr<RawIndex> Open(bool fresh, TestHook hook = nullptr,
                                 bool readonly = false) {
    Options o;
    o.env = &env_;
    o.fresh = fresh;
    o.readonly = readonly;
    o.log_size = 100;
    o.lru_size = 0;
    o.test_hook = std::move(hook);
    auto r = RawIndex::Open(kRoot, schema_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  static std::optional<std::string> Get(const RawIndex& index,
                                        const std::string& key) {
    char value[kValueSize];
    absl::StatusOr<bool> found = index.Find(key, value);
    EXPECT_TRUE(found.ok()) << found.status();
    if (!found.ok() || !*found) return std::nullopt;
    return std::string(value, kValueSize);
  }

  // Releases a merge paused in a hook when the test ends early, so that closing
  // the writer does not wait for ever. Declare it after the index.
  struct Release {
    absl::Notification* n;
    ~Release() {
      if (!n->HasBeenNotified()) n->Notify();
    }
  };

  MemEnv env_;
  const Schema schema_ = TestSchema(8);
  const std::string a_ = PoolKey(0);
  const std::string c_ = PoolKey(5);
  FlushOptions fsync_ = [] {
    FlushOptions o;
    o.with_fsync = true;
    return o;
  }();
};

// IoErrorsNeverLoseDurableBindings: a clear that fails on an IO error must
// leave the writer showing either the old bindings or none, never a value
// overwritten before the clear (the data file without the log).
TEST_F(IndexModelRegressionTest, FailedClearNeverShowsAnOverwrittenValue) {
  auto w = Open(/*fresh=*/true);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Replace(a_, "v000", /*overcommit=*/true).ok());
  ASSERT_TRUE(w->Merge().ok());
  ASSERT_TRUE(w->AwaitMerge().ok());  // a=v000 in the data file
  ASSERT_TRUE(w->Replace(a_, "v001", /*overcommit=*/true).ok());
  env_.InjectError(kOpWrite, 0, -1, absl::InternalError("injected EIO"));
  const absl::Status cleared = w->Clear();
  env_.ClearInjectedErrors();
  EXPECT_EQ(cleared.code(), absl::StatusCode::kInternal) << cleared;
  EXPECT_NE(Get(*w, a_), "v000") << "after the failed clear (" << cleared
                                 << ") the writer shows the overwritten value";
}

// CrashKeepsDurableAndInventsNothing: Close() returning OK promises that every
// accepted write was flushed with fsync; after a background merge failed in its
// commit it skipped the flush and still returned OK, losing the write.
TEST_F(IndexModelRegressionTest, CloseReportsWritesItCouldNotMakeDurable) {
  absl::Notification paused, release;
  auto w = Open(/*fresh=*/true, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore && !release.HasBeenNotified()) {
      paused.Notify();
      release.WaitForNotification();
    }
    return absl::OkStatus();
  });
  Release release_on_exit{&release};
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Replace(a_, "v000", /*overcommit=*/true).ok());
  ASSERT_TRUE(w->Merge().ok());
  paused.WaitForNotification();
  // Accepted while the merge runs (it goes to log_async, unflushed).
  ASSERT_TRUE(w->Replace(a_, "v001", /*overcommit=*/true).ok());
  // The commit's log reset fails (the first rename, merge -> data, succeeds).
  env_.InjectError(kOpRename, 1, -1, absl::InternalError("injected EIO"));
  release.Notify();
  const absl::Status merged = w->AwaitMerge();
  env_.ClearInjectedErrors();
  EXPECT_EQ(merged.code(), absl::StatusCode::kInternal) << merged;
  const absl::Status closed = w->Close();
  w.reset();
  auto reopened = Open(/*fresh=*/false);
  ASSERT_NE(reopened, nullptr);
  if (closed.ok()) {
    EXPECT_EQ(Get(*reopened, a_), "v001")
        << "Close() returned OK but the write accepted before the merge "
           "failed is lost";
  }
}

// ReadOnlyInstancesSeeFlushedPrefix: a read-only instance opened while a merge
// commits must see what was flushed into log_async before it opened.
TEST_F(IndexModelRegressionTest,
       ReadOnlyOpenDuringMergeCommitSeesFlushedWrites) {
  absl::Notification paused, release;
  auto w = Open(/*fresh=*/true, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore && !release.HasBeenNotified()) {
      paused.Notify();
      release.WaitForNotification();
    }
    return absl::OkStatus();
  });
  Release release_on_exit{&release};
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Replace(a_, "v000", /*overcommit=*/true).ok());
  ASSERT_TRUE(w->Merge().ok());
  paused.WaitForNotification();
  ASSERT_TRUE(w->Replace(c_, "v001", /*overcommit=*/true).ok());  // log_async
  ASSERT_TRUE(w->Flush().ok());  // c=v001 is flushed from here on
  bool released = false;
  auto r = Open(/*fresh=*/false,
                [&](HookPoint p) {
                  // Let the merge commit between the reader's reads.
                  if (p == HookPoint::kSyncReloadLogAsync && !released) {
                    released = true;
                    release.Notify();
                    EXPECT_TRUE(w->AwaitMerge().ok());
                  }
                  return absl::OkStatus();
                },
                /*readonly=*/true);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(released);
  EXPECT_EQ(Get(*r, a_), "v000");
  EXPECT_EQ(Get(*r, c_), "v001")
      << "flushed before the read-only open, missed by it";
}

// CrashKeepsDurableAndInventsNothing (prefix rule): a filter cut short by a
// power loss must leave the bindings as before it or as after it, never a mix
// (new data file with the old log).
TEST_F(IndexModelRegressionTest, FilterIsAtomicUnderPowerLoss) {
  const model::Map before = {{a_, "v000"}, {c_, "v000"}};
  uint64_t mutations = 0;
  for (uint64_t n = 0; n == 0 || n <= mutations; ++n) {
    MemEnv env;
    Options o;
    o.env = &env;
    o.fresh = true;
    o.log_size = 100;
    auto w = RawIndex::Open(kRoot, schema_, o);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Replace(c_, "v000", /*overcommit=*/true).ok());
    ASSERT_TRUE((*w)->Merge().ok());
    ASSERT_TRUE((*w)->AwaitMerge().ok());  // c in the data file
    ASSERT_TRUE((*w)->Replace(a_, "v000", /*overcommit=*/true).ok());
    ASSERT_TRUE((*w)->Flush(fsync_).ok());  // a in the log, durable
    const uint64_t start = env.mutation_count();
    env.CrashAfter(n);
    const absl::Status filtered = (*w)->Filter(
        [](absl::string_view, absl::string_view) { return false; });
    if (n == 0) {
      // Measure how many mutations a filter makes, to crash at each of them.
      ASSERT_TRUE(filtered.ok() || env.crashed()) << filtered;
    }
    if (!env.crashed()) {
      mutations = std::max(mutations, env.mutation_count() - start);
      env.CrashAfter(0);
    }
    w->reset();
    CrashOptions crash;
    crash.seed = n;
    env.Restart(crash);
    o.fresh = false;
    auto reopened = RawIndex::Open(kRoot, schema_, o);
    ASSERT_TRUE(reopened.ok())
        << "crash after " << n << ": " << reopened.status();
    const absl::StatusOr<model::Map> got = ReadAll(**reopened);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == before || got->empty())
        << "power loss after " << n << " mutations of the filter (" << filtered
        << "): reopened with " << model::ShowMap(*got) << ", neither "
        << model::ShowMap(before) << " nor {}";
    if (n == 0 && mutations == 0) mutations = 64;  // crashed at once: probe on
  }
}

// CrashKeepsDurableAndInventsNothing (per-key rule): a clear cut short by a
// power loss may leave the bindings or none, never a value overwritten before
// it. Needs a store whose data file is one generation ahead of its log (a crash
// between a merge's rename and its log reset): the clear then resets the log to
// the data file's generation, and a power loss before the data file is removed
// lets the next open take the stale data file as current.
TEST_F(IndexModelRegressionTest, ClearCutByPowerLossNeverResurrectsOldValues) {
  const auto generation = [](MemEnv& env, const std::string& file) {
    absl::StatusOr<std::string> bytes = env.Contents("/store/index/" + file);
    if (!bytes.ok() || bytes->size() < 24) return int64_t{-1};
    return static_cast<int64_t>(absl::big_endian::Load64(bytes->data() + 16));
  };
  // Builds the store; false if crashing the merge after `n1` mutations does not
  // leave data one generation ahead of the log.
  const auto build = [&](MemEnv& env, uint64_t n1) {
    Options o;
    o.env = &env;
    o.fresh = true;
    o.log_size = 100;
    {
      auto w = RawIndex::Open(kRoot, schema_, o);
      EXPECT_TRUE(w.ok()) << w.status();
      if (!w.ok()) return false;
      EXPECT_TRUE((*w)->Replace(a_, "v000", /*overcommit=*/true).ok());
      EXPECT_TRUE((*w)->Flush(fsync_).ok());
      env.CrashAfter(n1);
      (void)(*w)->Merge();
      (void)(*w)->AwaitMerge();
      env.CrashAfter(0);
    }
    env.Restart(CrashOptions());
    return generation(env, "data") == generation(env, "log") + 1;
  };
  bool found = false;
  for (uint64_t n1 = 0; n1 < 64 && !found; ++n1) {
    MemEnv probe;
    if (!build(probe, n1)) continue;
    found = true;
    for (uint64_t n2 = 0; n2 < 64; ++n2) {
      MemEnv env;
      ASSERT_TRUE(build(env, n1));
      Options o;
      o.env = &env;
      o.log_size = 100;
      auto w = RawIndex::Open(kRoot, schema_, o);
      ASSERT_TRUE(w.ok()) << w.status();
      ASSERT_EQ(Get(**w, a_), "v000");
      ASSERT_TRUE((*w)->Replace(a_, "v001", /*overcommit=*/true).ok());
      ASSERT_TRUE((*w)->Flush(fsync_).ok());  // a=v001 durable in the log
      env.CrashAfter(n2);
      const absl::Status cleared = (*w)->Clear();
      const bool done = !env.crashed();
      env.CrashAfter(0);
      w->reset();
      CrashOptions crash;
      crash.seed = n2;
      env.Restart(crash);
      auto reopened = RawIndex::Open(kRoot, schema_, o);
      ASSERT_TRUE(reopened.ok())
          << "crash after " << n2 << ": " << reopened.status();
      const absl::StatusOr<model::Map> got = ReadAll(**reopened);
      ASSERT_TRUE(got.ok()) << got.status();
      const model::Map kept = {{a_, "v001"}};
      EXPECT_TRUE(got->empty() || *got == kept)
          << "power loss after " << n2 << " mutations of the clear (" << cleared
          << "): reopened with " << model::ShowMap(*got);
      if (done) break;
    }
  }
  EXPECT_TRUE(found) << "no merge crash point left data ahead of the log";
}

}  // namespace
}  // namespace index_model_test
}  // namespace kvindex
