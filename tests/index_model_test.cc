// Model-based stateful property tests: random command sequences drive a
// RawIndex over MemEnv and model::IndexModel (model/model.h) side by side, and
// every observation of the index is checked against what the model allows.
//
// Properties (each a gtest test): the writer alone; plus read-only instances;
// plus power loss (MemEnv::Restart, torn writes, crashes in the middle of
// operations); plus injected IO errors. A crash or an IO error ends with the
// writer reopened, checked against the model's crash rule, then rewritten to
// the model's durable state (the model adopts it too), so that sequences can go
// on deterministically.
//
// Each property runs in two configurations:
//   - small (IndexModelTest): 10 keys under 2- or 8-bit hashes, so that keys
//     repeat and collide, and log_size 1..8, so that merges run all the time
//     in the background. Fast, and shrinks well.
//   - large (IndexModelLargeTest): the pool of index_model_large_pool.h, 4096
//     keys under a 32-bit hash with runs of equal hashes at every fan-out
//     bucket edge, written by BulkReplace commands of up to 4000 bindings, and
//     log_size 16..1000: merges write data files of thousands of records, with
//     fan-out tables of 32 or 64 buckets and key filters of 128 blocks, and
//     copy runs of old records between log bindings. Finds, mems and checks
//     of the whole view cover every key of the pool, the absent ones included.
//     Each property prints how many cases reached which fan-out size, and
//     whether a merge copied runs.
// In both, half of the cases open the writer through an InstanceCache and let
// further handles on its instance come and go: each shows what the writer
// shows, and closing one (immediately or not, maybe while a merge runs)
// changes nothing for the others.
//
// Besides what the model says, every command is followed by two checks of the
// files themselves: that no binding reached a log file before a flush callback
// ran since its replace (index_model_flush_journal.h), and that every data
// file is sorted, holds each key once and has the fan-out table its records
// call for (index_model_data_files.h): finds fall back to a search of the
// whole file when the table is wrong, so no answer shows it.
//
// Counterexamples print the configuration and the command list (show()), plus
// the first and last failure explanations seen (a shrunk case that depends on
// background-merge timing may not fail again when it is printed).
// Default: a fixed seed per property and 500 small cases, 30 to 60 large
// ones; RC_PARAMS overrides ("seed=7 max_success=50"), KVINDEX_SOAK=1
// (--config=soak) runs 20000 small cases and 2000 large ones.
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
#include "index/stats.h"
#include "io/mem_env.h"
#include "model/model.h"
#include "rapidcheck.h"
#include "rapidcheck/state.h"
#include "tests/index_model_data_files.h"
#include "tests/index_model_flush_journal.h"
#include "tests/index_model_large_pool.h"
#include "tests/index_model_util.h"

namespace kvindex {
namespace index_model_test {
namespace {

using model::IndexModel;
using model::Outcome;

constexpr char kRoot[] = "/store";

// --- Configuration of one test case ------------------------------------------

enum class Size { kSmall, kLarge };

struct Config {
  const Pool* pool = &SmallPool(8);
  uint64_t log_size = 4;
  size_t lru_size = 0;
  Throttle throttle = Throttle::kBlockWrites;
  // The writer's layout at the start; with switch_layouts, every reopen of
  // the writer (after a close or a crash) converts the store to the other one.
  Layout layout = Layout::kSingleFile;
  bool switch_layouts = false;
  // The writer is opened through an InstanceCache, and further handles on
  // its instance come and go (OpenHandleCmd, CloseHandleCmd).
  bool shared_handles = false;
  // Options::log_checksums; crashes may then be power cuts that persist
  // pages in any order (CrashOptions::pages_in_any_order).
  bool log_checksums = false;
  // The most bindings one BulkReplace writes (0: no BulkReplace).
  int max_bulk = 0;
  // A crash comes after up to this many mutations; injected IO errors skip
  // up to this many operations first.
  int crash_mutations = 40;
  int error_skip = 12;
};

void showValue(const Config& c, std::ostream& os) {
  os << "Config{pool=" << c.pool->name << ", log_size=" << c.log_size
     << ", lru_size=" << c.lru_size << ", throttle="
     << (c.throttle == Throttle::kBlockWrites ? "block_writes"
                                              : "overcommit_memory")
     << ", layout=" << (c.layout == Layout::kTiered ? "tiered" : "single_file")
     << ", switch_layouts=" << c.switch_layouts
     << ", shared_handles=" << c.shared_handles
     << ", log_checksums=" << c.log_checksums << "}";
}

rc::Gen<Config> GenConfig(Size size) {
  return rc::gen::apply(
      [size](int bits, uint64_t log_size, size_t lru, bool overcommit,
             int layout, bool shared_handles, bool log_checksums) {
        Config c;
        if (size == Size::kLarge) {
          c.pool = &LargePool();
          // 4000 replaces buffer 128 KB at most: far from the 1 MB that
          // flushes by itself, which the model assumes is never reached.
          c.max_bulk = 4000;
          c.crash_mutations = 400;
          c.error_skip = 120;
        } else {
          c.pool = &SmallPool(bits);
        }
        c.log_size = log_size;
        c.lru_size = lru;
        c.throttle =
            overcommit ? Throttle::kOvercommitMemory : Throttle::kBlockWrites;
        // 0: single file, 1: tiered, 2 and 3: either, switching at reopens.
        c.layout = layout % 2 == 1 ? Layout::kTiered : Layout::kSingleFile;
        c.switch_layouts = layout >= 2;
        c.shared_handles = shared_handles;
        c.log_checksums = log_checksums;
        return c;
      },
      rc::gen::element(2, 8),
      size == Size::kLarge ? rc::gen::element<uint64_t>(16, 100, 300, 1000)
                           : rc::gen::cast<uint64_t>(Uniform(1, 9)),
      size == Size::kLarge ? rc::gen::element<size_t>(0, 1, 100, 5000)
                           : rc::gen::element<size_t>(0, 1, 4, 1000),
      rc::gen::arbitrary<bool>(), rc::gen::inRange(0, 4),
      rc::gen::arbitrary<bool>(), rc::gen::arbitrary<bool>());
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
      : journal(&env, kRoot, config.pool->schema),
        config_(config),
        layout_(config.layout) {
    Options options = WriterOptions();
    options.fresh = true;
    auto w = RawIndex::Open(kRoot, schema(), options);
    if (!w.ok()) Fail("opening the writer: " + w.status().ToString());
    writer = *std::move(w);
  }
  ~Sut() {
    readers.clear();
    handles.clear();
    writer.reset();
  }

  Options WriterOptions() {
    Options o;
    o.env = &env;
    o.log_size = config_.log_size;
    o.lru_size = config_.lru_size;
    o.throttle = config_.throttle;
    o.layout = layout_;
    o.log_checksums = config_.log_checksums;
    o.flush_callback = [this] { journal.OnFlush(); };
    if (config_.shared_handles) o.cache = &cache;
    return o;
  }
  // Called before each reopen of the writer.
  void NextLayout() {
    if (!config_.switch_layouts) return;
    layout_ =
        layout_ == Layout::kTiered ? Layout::kSingleFile : Layout::kTiered;
  }
  // Read-only instances of their own: each has its own view.
  Options ReaderOptions() {
    Options o = WriterOptions();
    o.readonly = true;
    o.cache = nullptr;
    return o;
  }
  const Pool& pool() const { return *config_.pool; }
  const Schema& schema() const { return config_.pool->schema; }

  // Every replace of a binding goes through here, so that the flush callback
  // knows it was issued.
  absl::Status Replace(const std::string& key, const std::string& value,
                       bool overcommit = false) {
    return ReplaceThrough(*writer, key, value, overcommit);
  }
  absl::Status ReplaceThrough(RawIndex& handle, const std::string& key,
                              const std::string& value, bool overcommit) {
    journal.Issue(key, value);
    return handle.Replace(key, value, overcommit);
  }

  // "" if every data file present now (single-file data, tiered runs) is well
  // formed (DataFileProblems); notes their fan-out tables for the coverage
  // the case reports.
  std::string CheckDataFiles() {
    std::string problems;
    for (const std::string& path : env.ListFiles()) {
      if (!IsDataFileName(path.substr(path.rfind('/') + 1))) continue;
      const absl::StatusOr<std::string> bytes = env.Contents(path);
      if (!bytes.ok()) continue;  // removed meanwhile
      DataFileShape shape;
      const std::string wrong = DataFileProblems(*bytes, schema(), &shape);
      if (!wrong.empty()) problems += path + ":\n" + wrong;
      if (shape.records > 0) {
        max_fanout_buckets_ = std::max(max_fanout_buckets_, shape.buckets);
      }
    }
    return problems;
  }
  // The most buckets a fan-out table of a data file with records had.
  uint64_t max_fanout_buckets() const { return max_fanout_buckets_; }

  MemEnv env;            // declared first: outlives every index
  FlushJournal journal;  // outlives every index, whose callback it is
  InstanceCache cache;   // outlives every index opened through it
  std::unique_ptr<RawIndex> writer;  // handle 0
  // Further handles on the writer's instance (shared_handles), by id.
  std::map<int, std::unique_ptr<RawIndex>> handles;
  std::map<int, Reader> readers;

 private:
  Config config_;
  Layout layout_;
  uint64_t max_fanout_buckets_ = 0;
};

using Cmd = rc::state::Command<IndexModel, Sut>;
using CmdPtr = std::shared_ptr<const Cmd>;

// What generating a command needs to know: the configuration, and which
// read-only instances are open. Held by value: rapidcheck generates commands
// again while it shrinks, after the case that made them has returned.
struct GenContext {
  Config config;
  std::vector<int> handles;  // open handles on the writer's instance
  std::vector<int> readers;

  const Pool& pool() const { return *config.pool; }
};

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

model::Map ReadAllOrFail(const RawIndex& index, const Pool& pool,
                         const std::string& what) {
  return ValueOrFail(ReadAll(index, pool), what + ": find");
}

void CheckAllBindings(const RawIndex& index, const Pool& pool,
                      const model::Map& expected, const std::string& what) {
  const model::Map got = ReadAllOrFail(index, pool, what);
  if (got != expected) {
    Fail(what + ": the index differs from the model:\n" +
         model::ShowDifferences(got, expected));
  }
}

void CheckIter(const RawIndex& index, const model::Map& shown,
               const std::string& what) {
  const model::Visits visits = ValueOrFail(IterAll(index), what + ": iter");
  const std::string why = model::CheckIterVisits(shown, visits);
  if (!why.empty()) Fail(what + ": " + why);
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
      ReadAllOrFail(*sut.writer, sut.pool(), "normalize: reading back");
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
    AssertOk(sut.Replace(k, v, /*overcommit=*/true), "normalize: replace");
  }
  FlushOptions fsync;
  fsync.with_fsync = true;
  AssertOk(sut.writer->Flush(fsync), "normalize: flush");
  CheckAllBindings(*sut.writer, sut.pool(), target, "normalize");
}

// Reads a reader's whole view right after it synced and checks it against the
// range [F, H] the model records for the sync (taken from s0: run() sees the
// model before apply()).
void TakeSnapshot(const IndexModel& s0, Sut& sut, int id, bool first) {
  Reader& r = sut.readers.at(id);
  const std::string what = "read-only #" + std::to_string(id);
  const model::Map snap = ReadAllOrFail(*r.index, sut.pool(), what);
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

// --- Bulk writes -------------------------------------------------------------

// `count` replaces in a row: bindable keys from the `first`-th on by steps of
// `stride` (coprime with the number of bindable keys, so that the keys are
// distinct until they wrap around), values numbered from `first_value` on.
struct Bulk {
  enum Overcommit { kNever, kAlways, kEveryOther };
  const Pool* pool = nullptr;
  int count = 0;
  int first = 0;
  int stride = 1;
  int first_value = 0;
  Overcommit overcommit = kNever;

  std::string Key(int j) const {
    const int64_t i = first + int64_t{j} * stride;
    return pool->BindableKey(static_cast<int>(i % pool->num_bindable()));
  }
  std::string Value(int j) const {
    return pool->value((first_value + j) % pool->num_values);
  }
  bool OvercommitAt(int j) const {
    return overcommit == kAlways || (overcommit == kEveryOther && j % 2 == 1);
  }
};

std::ostream& operator<<(std::ostream& os, const Bulk& b) {
  static const char* const kOvercommit[] = {"", ", overcommit",
                                            ", overcommit every other"};
  return os << b.count << " keys from #" << b.first << " by " << b.stride
            << ", values from " << b.first_value << kOvercommit[b.overcommit];
}

rc::Gen<Bulk> GenBulk(const Pool& pool, int max_count) {
  return rc::gen::apply(
      [&pool](int count, int first, int stride, int first_value,
              Bulk::Overcommit overcommit) {
        Bulk b;
        b.pool = &pool;
        b.count = count;
        b.first = first;
        b.stride = stride;
        b.first_value = first_value;
        b.overcommit = overcommit;
        return b;
      },
      rc::gen::weightedOneOf<int>(
          {{1, Uniform(1, 100)}, {3, Uniform(100, max_count + 1)}}),
      Uniform(0, pool.num_bindable()),
      // Coprime with 3584 = 2^9 * 7, the large pool's bindable keys; 1 walks
      // the keys in hash order.
      rc::gen::element(1, 1, 3, 11, 389, 1021), Uniform(0, pool.num_values),
      rc::gen::element(Bulk::kNever, Bulk::kAlways, Bulk::kEveryOther));
}

// Runs the bulk's replaces until one fails; `*attempted` counts the replaces
// called, the failed one included.
absl::Status RunBulk(const Bulk& b, Sut& sut, int* attempted) {
  for (int j = 0; j < b.count; ++j) {
    *attempted = j + 1;
    const absl::Status s = sut.Replace(b.Key(j), b.Value(j), b.OvercommitAt(j));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// The first `attempted` replaces of the bulk; the last one with `last`, the
// others succeeded, unless `earlier` failed already.
void ApplyBulk(const Bulk& b, int attempted, Outcome earlier, Outcome last,
               IndexModel* m) {
  for (int j = 0; j < attempted; ++j) {
    m->Replace(b.Key(j), b.Value(j), b.OvercommitAt(j),
               j + 1 == attempted ? last : earlier);
  }
}

// --- Writes used inside crash and fault commands -----------------------------

struct WriteOp {
  enum Kind {
    kReplace,
    kReplaceOvercommit,
    kBulkReplace,
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
  Bulk bulk;
};

std::ostream& operator<<(std::ostream& os, const WriteOp& op) {
  switch (op.kind) {
    case WriteOp::kReplace:
      return os << "replace " << op.key << "=" << op.value;
    case WriteOp::kReplaceOvercommit:
      return os << "replace " << op.key << "=" << op.value << " overcommit";
    case WriteOp::kBulkReplace:
      return os << "bulk replace(" << op.bulk << ")";
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

rc::Gen<WriteOp> GenWriteOp(const Config& config, bool with_close) {
  return rc::gen::exec([config, with_close] {
    const Config* c = &config;
    WriteOp op;
    op.kind = *rc::gen::weightedElement<WriteOp::Kind>({
        {8, WriteOp::kReplace},
        {4, WriteOp::kReplaceOvercommit},
        {c->max_bulk > 0 ? 3u : 0u, WriteOp::kBulkReplace},
        {2, WriteOp::kFlush},
        {2, WriteOp::kFlushFsync},
        {1, WriteOp::kMerge},
        {1, WriteOp::kAwaitMerge},
        {1, WriteOp::kTryMerge},
        {1, WriteOp::kClear},
        {1, WriteOp::kFilter},
        {with_close ? 1u : 0u, WriteOp::kClose},
    });
    op.key = *GenKey(*c->pool);
    op.value = *GenValue(*c->pool);
    op.keep = *GenKeepPredicate(*c->pool);
    if (op.kind == WriteOp::kBulkReplace) {
      op.bulk = *GenBulk(*c->pool, c->max_bulk);
    }
    return op;
  });
}

// Runs `op`; `*attempted` counts the replaces of a bulk it called.
absl::Status RunOp(const WriteOp& op, Sut& sut, int* attempted) {
  RawIndex& w = *sut.writer;
  FlushOptions fsync;
  fsync.with_fsync = true;
  switch (op.kind) {
    case WriteOp::kReplace:
      return sut.Replace(op.key, op.value);
    case WriteOp::kReplaceOvercommit:
      return sut.Replace(op.key, op.value, /*overcommit=*/true);
    case WriteOp::kBulkReplace:
      return RunBulk(op.bulk, sut, attempted);
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

// Applies `op` to the model: `o` is its outcome, `earlier` that of the ops
// before it (a failure there makes every later op count as failed).
void ApplyOp(const WriteOp& op, int attempted, Outcome earlier, Outcome o,
             IndexModel* m) {
  switch (op.kind) {
    case WriteOp::kReplace:
      return m->Replace(op.key, op.value, false, o);
    case WriteOp::kReplaceOvercommit:
      return m->Replace(op.key, op.value, true, o);
    case WriteOp::kBulkReplace:
      return ApplyBulk(op.bulk, attempted, earlier, o, m);
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
    case WriteOp::kClose:  // of handle 0, maybe not the last one
      return m->CloseHandle(0, /*immediately=*/false, o);
  }
}

// Runs `ops` against the writer and applies them to `m`, logging each; true if
// one failed.
bool RunOps(const std::vector<WriteOp>& ops, Sut& sut, IndexModel* m,
            std::ostringstream* log,
            const std::function<void(const WriteOp&, const absl::Status&)>&
                check_status = nullptr,
            const std::function<void()>& after_op = nullptr) {
  bool failed = false;
  for (const WriteOp& op : ops) {
    int attempted = 0;
    const absl::Status s = RunOp(op, sut, &attempted);
    *log << "    " << op << " -> " << s.ToString();
    if (op.kind == WriteOp::kBulkReplace) {
      *log << " after " << attempted << " replaces";
    }
    *log << "\n";
    if (check_status) check_status(op, s);
    const Outcome earlier = failed ? Outcome::kFailed : Outcome::kOk;
    ApplyOp(op, attempted, earlier, s.ok() ? earlier : Outcome::kFailed, m);
    if (!s.ok()) failed = true;
    if (after_op) after_op();
  }
  return failed;
}

// --- Writer commands ---------------------------------------------------------

class ReplaceCmd : public Cmd {
 public:
  explicit ReplaceCmd(const GenContext& ctx)
      : key_(*GenKey(ctx.pool())),
        value_(*GenValue(ctx.pool())),
        overcommit_(*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {}
  void apply(IndexModel& m) const override {
    m.Replace(key_, value_, overcommit_);
  }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(sut.Replace(key_, value_, overcommit_), "replace");
  }
  void show(std::ostream& os) const override {
    os << "Replace(" << key_ << ", " << value_
       << (overcommit_ ? ", overcommit)" : ")");
  }

 private:
  std::string key_, value_;
  bool overcommit_;
};

class BulkReplaceCmd : public Cmd {
 public:
  explicit BulkReplaceCmd(const GenContext& ctx)
      : bulk_(*GenBulk(ctx.pool(), ctx.config.max_bulk)) {}
  void apply(IndexModel& m) const override {
    ApplyBulk(bulk_, bulk_.count, Outcome::kOk, Outcome::kOk, &m);
  }
  void run(const IndexModel&, Sut& sut) const override {
    int attempted = 0;
    const absl::Status s = RunBulk(bulk_, sut, &attempted);
    AssertOk(s, "bulk replace, replace #" + std::to_string(attempted - 1));
  }
  void show(std::ostream& os) const override {
    os << "BulkReplace(" << bulk_ << ")";
  }

 private:
  Bulk bulk_;
};

class FindCmd : public Cmd {
 public:
  explicit FindCmd(const GenContext& ctx) : key_(*GenLookupKey(ctx.pool())) {}
  void run(const IndexModel& s0, Sut& sut) const override {
    std::string value(sut.schema().value_size, '\0');
    const bool found =
        ValueOrFail(sut.writer->Find(key_, value.data()), "find");
    const std::optional<std::string> want = s0.Find(key_);
    const std::optional<std::string> got =
        found ? std::optional<std::string>(value) : std::nullopt;
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

// Finds and mems of every key of the pool.
class CheckAllCmd : public Cmd {
 public:
  void run(const IndexModel& s0, Sut& sut) const override {
    CheckAllBindings(*sut.writer, sut.pool(), s0.Bindings(), "find all");
    const std::string wrong =
        CheckMemAll(*sut.writer, sut.pool(), s0.Bindings());
    if (!wrong.empty()) Fail("mem all: the index differs:\n" + wrong);
  }
  void show(std::ostream& os) const override { os << "FindAll()"; }
};

class IterCmd : public Cmd {
 public:
  void run(const IndexModel& s0, Sut& sut) const override {
    CheckIter(*sut.writer, s0.Bindings(), "writer");
  }
  void show(std::ostream& os) const override { os << "Iter()"; }
};

class FilterCmd : public Cmd {
 public:
  explicit FilterCmd(const GenContext& ctx)
      : keep_(*GenKeepPredicate(ctx.pool())) {}
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
  explicit FlushCmd(const GenContext&) : fsync_(*rc::gen::arbitrary<bool>()) {}
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
  explicit MergeCmd(const GenContext&) : await_(*rc::gen::arbitrary<bool>()) {}
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
  explicit CloseReopenCmd(const GenContext& ctx)
      : immediately_(*rc::gen::arbitrary<bool>()),
        key_(*GenKey(ctx.pool())),
        value_(*GenValue(ctx.pool())) {}
  // With other handles open (shared_handles), handle 0 is not the last one:
  // its close flushes nothing and its reopen shares the open instance.
  void apply(IndexModel& m) const override {
    m.CloseHandle(0, immediately_);
    m.OpenHandle(0);
  }
  void run(const IndexModel& s0, Sut& sut) const override {
    AssertOk(sut.writer->Close(immediately_), "close");
    std::string value(sut.schema().value_size, '\0');
    AssertCode(sut.writer->Find(key_, value.data()).status(),
               absl::StatusCode::kFailedPrecondition, "find after close");
    AssertCode(sut.writer->Replace(key_, value_),
               absl::StatusCode::kFailedPrecondition, "replace after close");
    AssertOk(sut.writer->Close(), "second close");
    sut.writer.reset();
    ReopenWriter(sut, "close and reopen");
    CheckAllBindings(*sut.writer, sut.pool(), s0.Bindings(),
                     "after close and reopen");
  }
  void show(std::ostream& os) const override {
    os << "Close(" << (immediately_ ? "immediately" : "") << ") + Reopen()";
  }

 private:
  bool immediately_;
  std::string key_, value_;
};

class MisuseCmd : public Cmd {
 public:
  explicit MisuseCmd(const GenContext& ctx)
      : kind_(*Uniform(0, 3)),
        key_(*GenKey(ctx.pool())),
        value_(*GenValue(ctx.pool())) {}
  void run(const IndexModel&, Sut& sut) const override {
    switch (kind_) {
      case 0:
        AssertCode(sut.writer->Replace(key_ + "x", value_),
                   absl::StatusCode::kInvalidArgument, "replace, long key");
        break;
      case 1:
        AssertCode(sut.writer->Replace(key_, value_.substr(1)),
                   absl::StatusCode::kInvalidArgument, "replace, short value");
        break;
      default:
        AssertCode(sut.writer->Sync(), absl::StatusCode::kFailedPrecondition,
                   "sync on the writer");
    }
  }
  void show(std::ostream& os) const override {
    static const char* const kNames[] = {"Replace(long key)",
                                         "Replace(short value)", "Sync()"};
    os << "Misuse(" << kNames[kind_] << ")";
  }

 private:
  int kind_;
  std::string key_, value_;
};

// --- Handles sharing the writer's instance (shared_handles) ------------------

constexpr int kMaxHandles = 3;  // ids 0 (sut.writer), 1 and 2

bool Has(const std::vector<int>& ids, int id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Every binding through `handle`, with find, mem and iter: what the model says
// the writer shows.
void CheckHandle(const RawIndex& handle, const Pool& pool,
                 const model::Map& expected, const std::string& what) {
  CheckAllBindings(handle, pool, expected, what);
  const std::string wrong = CheckMemAll(handle, pool, expected);
  if (!wrong.empty()) Fail(what + ": mem differs from the model:\n" + wrong);
  CheckIter(handle, expected, what);
}

class OpenHandleCmd : public Cmd {
 public:
  explicit OpenHandleCmd(const GenContext& ctx)
      : id_(*Uniform(1, kMaxHandles)) {
    RC_PRE(!Has(ctx.handles, id_));
  }
  void checkPreconditions(const IndexModel& m) const override {
    RC_PRE(!m.HasHandle(id_));
  }
  void apply(IndexModel& m) const override { m.OpenHandle(id_); }
  void run(const IndexModel& s0, Sut& sut) const override {
    auto h = RawIndex::Open(kRoot, sut.schema(), sut.WriterOptions());
    if (!h.ok())
      Fail("opening handle #" + std::to_string(id_) + ": " +
           h.status().ToString());
    sut.handles[id_] = *std::move(h);
    CheckHandle(*sut.handles[id_], sut.pool(), s0.Bindings(),
                "handle #" + std::to_string(id_));
  }
  void show(std::ostream& os) const override {
    os << "OpenHandle(#" << id_ << ")";
  }

 private:
  int id_;
};

// Base of the commands on a handle other than handle 0: picks one.
class HandleCmd : public Cmd {
 public:
  explicit HandleCmd(const GenContext& ctx) {
    std::vector<int> others;
    for (int id : ctx.handles) {
      if (id != 0) others.push_back(id);
    }
    RC_PRE(!others.empty());
    id_ = *rc::gen::elementOf(others);
  }
  void checkPreconditions(const IndexModel& m) const override {
    RC_PRE(m.HasHandle(id_));
  }

 protected:
  std::string Name() const { return "handle #" + std::to_string(id_); }
  int id_ = 0;
};

// Closes a handle while handle 0 stays open, maybe right after starting a
// merge: the others go on showing everything.
class CloseHandleCmd : public HandleCmd {
 public:
  explicit CloseHandleCmd(const GenContext& ctx)
      : HandleCmd(ctx),
        immediately_(*rc::gen::arbitrary<bool>()),
        merge_first_(*rc::gen::arbitrary<bool>()) {}
  void apply(IndexModel& m) const override {
    if (merge_first_) m.Merge();
    m.CloseHandle(id_, immediately_);
  }
  void run(const IndexModel& s0, Sut& sut) const override {
    if (merge_first_) AssertOk(sut.writer->Merge(), "merge");
    RawIndex& handle = *sut.handles.at(id_);
    AssertOk(handle.Close(immediately_), "close " + Name());
    AssertCode(handle.Mem(sut.pool().key(0)).status(),
               absl::StatusCode::kFailedPrecondition, "mem after close");
    sut.handles.erase(id_);
    CheckAllBindings(*sut.writer, sut.pool(), s0.Bindings(),
                     "handle #0 after closing " + Name());
  }
  void show(std::ostream& os) const override {
    os << (merge_first_ ? "Merge() + " : "") << "Close(#" << id_
       << (immediately_ ? ", immediately)" : ")");
  }

 private:
  bool immediately_;
  bool merge_first_;
};

class HandleReplaceCmd : public HandleCmd {
 public:
  explicit HandleReplaceCmd(const GenContext& ctx)
      : HandleCmd(ctx),
        key_(*GenKey(ctx.pool())),
        value_(*GenValue(ctx.pool())),
        overcommit_(*rc::gen::arbitrary<bool>()) {}
  void apply(IndexModel& m) const override {
    m.Replace(key_, value_, overcommit_);
  }
  void run(const IndexModel&, Sut& sut) const override {
    AssertOk(
        sut.ReplaceThrough(*sut.handles.at(id_), key_, value_, overcommit_),
        "replace through " + Name());
  }
  void show(std::ostream& os) const override {
    os << "Replace(#" << id_ << ", " << key_ << ", " << value_
       << (overcommit_ ? ", overcommit)" : ")");
  }

 private:
  std::string key_, value_;
  bool overcommit_;
};

class HandleCheckCmd : public HandleCmd {
 public:
  using HandleCmd::HandleCmd;
  void run(const IndexModel& s0, Sut& sut) const override {
    CheckHandle(*sut.handles.at(id_), sut.pool(), s0.Bindings(), Name());
  }
  void show(std::ostream& os) const override {
    os << "FindAll+Iter(#" << id_ << ")";
  }
};

// --- Read-only instances -----------------------------------------------------

constexpr int kMaxReaders = 3;

class OpenReaderCmd : public Cmd {
 public:
  explicit OpenReaderCmd(const GenContext& ctx)
      : id_(*Uniform(0, kMaxReaders)) {
    RC_PRE(!Has(ctx.readers, id_));
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
  explicit ReaderCmd(const GenContext& ctx) {
    RC_PRE(!ctx.readers.empty());
    id_ = *rc::gen::elementOf(ctx.readers);
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
  explicit FindReaderCmd(const GenContext& ctx)
      : ReaderCmd(ctx), key_(*GenLookupKey(ctx.pool())) {}
  void run(const IndexModel&, Sut& sut) const override {
    const Reader& r = sut.readers.at(id_);
    std::string value(sut.schema().value_size, '\0');
    const bool found =
        ValueOrFail(r.index->Find(key_, value.data()), "read-only find");
    auto it = r.snapshot.find(key_);
    const bool want = it != r.snapshot.end();
    if (found != want || (found && value != it->second)) {
      Fail("read-only #" + std::to_string(id_) + " find " + key_ + ": " +
           (found ? model::Quote(value) : std::string("absent")) +
           ", but since its last sync it showed " +
           (want ? model::Quote(it->second) : std::string("absent")));
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
  void run(const IndexModel&, Sut& sut) const override {
    const Reader& r = sut.readers.at(id_);
    CheckIter(*r.index, r.snapshot, "read-only #" + std::to_string(id_));
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
  explicit ReaderMisuseCmd(const GenContext& ctx)
      : ReaderCmd(ctx),
        kind_(*Uniform(0, 6)),
        key_(*GenKey(ctx.pool())),
        value_(*GenValue(ctx.pool())) {}
  void run(const IndexModel&, Sut& sut) const override {
    RawIndex& r = *sut.readers.at(id_).index;
    absl::Status s;
    switch (kind_) {
      case 0:
        s = r.Replace(key_, value_);
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
  std::string key_, value_;
};

// --- Power loss --------------------------------------------------------------

// Kills the "process": everything after this point is lost to the crash.
void PowerOff(Sut& sut) {
  if (!sut.env.crashed()) sut.env.CrashAfter(0);
  sut.readers.clear();
  sut.handles.clear();
  sut.writer.reset();
}

class CrashCmd : public Cmd {
 public:
  explicit CrashCmd(const GenContext& ctx)
      : crash_after_(*rc::gen::weightedOneOf<int>(
            {{1, rc::gen::just(-1)},
             {3, Uniform(0, ctx.config.crash_mutations)}})),
        ops_(crash_after_ < 0 ? std::vector<WriteOp>()
                              : *rc::gen::container<std::vector<WriteOp>>(
                                    static_cast<size_t>(*Uniform(1, 8)),
                                    GenWriteOp(ctx.config,
                                               /*with_close=*/true))),
        seed_(*Uniform<uint64_t>(0, 1000000)),
        keep_prefix_(*rc::gen::weightedElement<bool>({{4, true}, {1, false}})),
        tear_(*rc::gen::arbitrary<bool>()),
        overtake_(*rc::gen::arbitrary<bool>()),
        page_size_(ctx.config.log_checksums && *rc::gen::arbitrary<bool>()
                       ? *rc::gen::element<uint64_t>(64, 512, 4096)
                       : 0),
        dir_any_order_(*rc::gen::arbitrary<bool>()) {}

  void apply(IndexModel& m) const override { m.Crash(); }

  void run(const IndexModel& s0, Sut& sut) const override {
    IndexModel m = s0;
    std::ostringstream log;
    if (crash_after_ >= 0) {
      sut.env.CrashAfter(static_cast<uint64_t>(crash_after_));
      RunOps(ops_, sut, &m, &log);
    }
    PowerOff(sut);
    CrashOptions options;
    options.seed = seed_;
    options.keep_unsynced_prefix = keep_prefix_;
    options.tear_last_write = tear_;
    options.overwrites_overtake_appends = overtake_;
    options.pages_in_any_order = page_size_ > 0;
    options.page_size = page_size_;
    options.dir_ops_in_any_order = dir_any_order_;
    sut.env.Restart(options);
    ReopenWriter(sut, "after the crash");
    const model::Map got =
        ReadAllOrFail(*sut.writer, sut.pool(), "after the crash");
    const std::string why = m.CheckRecovered(got);
    if (!why.empty()) {
      Fail("after the crash: " + why + "\n  ops before the crash:\n" +
           log.str());
    }
    CheckIter(*sut.writer, got, "after the crash: writer");
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
       << (tear_ ? ", tear" : "")
       << (overtake_ ? ", overwrites overtake appends" : "");
    if (page_size_ > 0) os << ", pages of " << page_size_ << " in any order";
    if (dir_any_order_) os << ", directory operations in any order";
    os << ") + Reopen()";
  }

 private:
  int crash_after_;
  std::vector<WriteOp> ops_;
  uint64_t seed_;
  bool keep_prefix_;
  bool tear_;
  // Header offsets may survive without the records they cover.
  bool overtake_;
  // > 0: a power cut persisting pages of this size in any order.
  uint64_t page_size_;
  // Directory entries persisted in any order (no journal to order them).
  bool dir_any_order_;
};

// --- Injected IO errors ------------------------------------------------------

class IoErrorCmd : public Cmd {
 public:
  explicit IoErrorCmd(const GenContext& ctx)
      // kOpSyncDir alone: a directory fsync that fails after its rename took
      // effect (a merge's rename over `data`) leaves the files ahead of the
      // writer, which must stop writing.
      : mask_(*rc::gen::element<uint32_t>(kOpWrite, kOpSync, kOpWrite | kOpSync,
                                          kOpRename | kOpRemove | kOpSyncDir,
                                          kOpSyncDir, kOpMutating)),
        skip_(*Uniform<uint64_t>(0, ctx.config.error_skip)),
        count_(*rc::gen::element<int64_t>(1, 3, -1)),
        enospc_(*rc::gen::arbitrary<bool>()),
        ops_(*rc::gen::container<std::vector<WriteOp>>(
            static_cast<size_t>(*Uniform(1, 8)),
            GenWriteOp(ctx.config, /*with_close=*/false))),
        probe_key_(*GenKey(ctx.pool())),
        probe_value_(*GenValue(ctx.pool())),
        open_fails_(*rc::gen::arbitrary<bool>()),
        open_mask_(*rc::gen::element<uint32_t>(kOpWrite, kOpSync, kOpRename,
                                               kOpRemove, kOpSyncDir, kOpRead,
                                               kOpMutating)),
        open_skip_(*Uniform<uint64_t>(0, 40)),
        reader_follows_(*rc::gen::arbitrary<bool>()) {}

  void apply(IndexModel& m) const override { m.Crash(); }

  void run(const IndexModel& s0, Sut& sut) const override {
    for (auto& [id, r] : sut.readers)
      AssertOk(r.index->Close(), "read-only close");
    sut.readers.clear();
    IndexModel m = s0;
    // The writer's close below must be its instance's last.
    for (auto& [id, handle] : sut.handles) {
      AssertOk(handle->Close(), "close handle #" + std::to_string(id));
      m.CloseHandle(id, /*immediately=*/false);
    }
    sut.handles.clear();
    const absl::Status error =
        enospc_ ? absl::ResourceExhaustedError("injected ENOSPC")
                : absl::InternalError("injected EIO");
    std::ostringstream log;
    // A read-only instance that syncs after every operation while the
    // writer's operations fail. The injected errors hit mutating operations
    // only, which a reader never makes: its syncs must all succeed, and show
    // for each key a value the model allows between what was surely flushed
    // and what may have been (per key: after a failure the writer's history
    // has no order).
    std::unique_ptr<RawIndex> follower;
    if (reader_follows_) {
      auto r = RawIndex::Open(kRoot, sut.schema(), sut.ReaderOptions());
      if (!r.ok()) Fail("opening read-only: " + r.status().ToString());
      follower = *std::move(r);
    }
    const auto follow = [&](const std::string& when, size_t lo, size_t hi) {
      if (follower == nullptr) return;
      const absl::Status synced = follower->Sync();
      log << "    read-only sync " << when << " -> " << synced.ToString()
          << "\n";
      if (!synced.ok()) Fail("read-only sync " + when + ":\n" + log.str());
      const model::Map seen =
          ReadAllOrFail(*follower, sut.pool(), "read-only " + when);
      const std::string why = m.ExplainRange(seen, lo, hi, /*prefix=*/false);
      if (!why.empty()) Fail("read-only " + when + ": " + why + log.str());
    };
    sut.env.InjectError(mask_, skip_, count_, error);
    size_t lo = m.end();
    bool failed_before = false;
    const bool failed = RunOps(
        ops_, sut, &m, &log,
        [&](const WriteOp& op, const absl::Status& s) {
          if (!failed_before) lo = m.end();
          if (!s.ok()) failed_before = true;
          const bool allowed =
              s.ok() || s.code() == error.code() ||
              absl::IsFailedPrecondition(s) ||
              (op.kind == WriteOp::kAwaitMerge && absl::IsAborted(s));
          if (!allowed) {
            Fail("unexpected status under IO errors:\n" + log.str());
          }
        },
        [&] { follow("under IO errors", m.flushed(), m.maybe_flushed()); });
    sut.env.ClearInjectedErrors();

    // Reads keep working and show what the writer did (or may have done).
    const model::Map live =
        ReadAllOrFail(*sut.writer, sut.pool(), "after IO errors");
    if (!failed && live != m.Bindings()) {
      Fail("no operation failed, yet the writer differs from the model:\n" +
           model::ShowDifferences(live, m.Bindings()) + log.str());
    }
    if (failed) {
      const std::string why = m.ExplainRange(live, lo, m.end(), false);
      if (!why.empty()) Fail("writer after IO errors: " + why + log.str());
    }

    // Either it still works, or it refuses writes, carrying the original error
    // (also when only a background merge met the error).
    const absl::Status probe = sut.Replace(probe_key_, probe_value_, true);
    log << "    probe replace " << probe_key_ << "=" << probe_value_ << " -> "
        << probe.ToString() << "\n";
    if (probe.ok()) {
      std::string value(sut.schema().value_size, '\0');
      const bool found =
          ValueOrFail(sut.writer->Find(probe_key_, value.data()), "find");
      if (!found || value != probe_value_) {
        Fail("replace accepted after IO errors but not found:\n" + log.str());
      }
    } else if (!absl::IsFailedPrecondition(probe) ||
               !absl::StrContains(probe.message(), error.message())) {
      Fail(
          "replace after IO errors should succeed or fail with "
          "FAILED_PRECONDITION carrying the IO error:\n" +
          log.str());
    }
    m.Replace(probe_key_, probe_value_, true,
              probe.ok() && !failed ? Outcome::kOk : Outcome::kFailed);
    const bool any_failed = failed || !probe.ok();

    // A merge the operations started may meet the error in the background
    // after the probe: close then reports it (with the injected error).
    const bool merge_may_run = m.merge_may_run();
    const absl::Status closed = sut.writer->Close();
    log << "    close -> " << closed.ToString() << "\n";
    if (!any_failed && !closed.ok() &&
        !(merge_may_run &&
          absl::StrContains(closed.message(), error.message()))) {
      Fail("close failed:\n" + log.str());
    }
    m.Close(closed.ok() && !any_failed ? Outcome::kOk : Outcome::kFailed);
    sut.writer.reset();
    follow("after the writer's close", m.flushed(), m.maybe_flushed());
    // No merge or compaction left its output behind: committed (renamed), or
    // removed when it failed or the close cancelled it (unless removals were
    // failing too: the removal is best effort, the next open's to finish).
    if ((mask_ & kOpRemove) == 0) {
      for (const std::string& path : sut.env.ListFiles()) {
        if (absl::EndsWith(path, "/merge") ||
            absl::EndsWith(path, "/compact")) {
          Fail(path + " left behind after IO errors:\n" + log.str());
        }
      }
    }
    if (open_fails_) {
      // An open that fails part-way must leave what the next one expects.
      sut.env.InjectError(open_mask_, open_skip_, -1, error);
      auto w = RawIndex::Open(kRoot, sut.schema(), sut.WriterOptions());
      log << "    failing open -> " << w.status().ToString() << "\n";
      if (w.ok()) (void)(*w)->Close();
      sut.env.ClearInjectedErrors();
    }
    ReopenWriter(sut, "after IO errors");
    const model::Map got =
        ReadAllOrFail(*sut.writer, sut.pool(), "after IO errors and reopen");
    const std::string why =
        m.ExplainRange(got, m.durable(), m.maybe_flushed(), !any_failed);
    if (!why.empty()) Fail("reopened after IO errors: " + why + log.str());
    CheckIter(*sut.writer, got, "reopened after IO errors: writer");
    if (follower != nullptr) {
      // The reopened writer's recovery is on disk: the reader sees just that.
      AssertOk(follower->Sync(), "read-only sync after the writer's reopen");
      const model::Map seen =
          ReadAllOrFail(*follower, sut.pool(), "read-only after the reopen");
      if (seen != got) {
        Fail("read-only after the writer's reopen after IO errors:\n" +
             model::ShowDifferences(seen, got) + log.str());
      }
      AssertOk(follower->Close(), "read-only close");
    }
    Normalize(sut, s0.StateAt(s0.durable()));
  }

  void show(std::ostream& os) const override {
    os << "IoError(mask=0x" << std::hex << mask_ << std::dec
       << ", skip=" << skip_ << ", count=" << count_ << ", "
       << (enospc_ ? "ENOSPC" : "EIO") << ", [";
    for (size_t i = 0; i < ops_.size(); ++i) os << (i ? ", " : "") << ops_[i];
    os << "], probe " << probe_key_ << "=" << probe_value_ << ") + Close()";
    if (open_fails_) {
      os << " + Open(failing: mask=0x" << std::hex << open_mask_ << std::dec
         << ", skip=" << open_skip_ << ")";
    }
    os << " + Reopen()";
    if (reader_follows_) os << ", a reader syncing after each operation";
  }

 private:
  uint32_t mask_;
  uint64_t skip_;
  int64_t count_;
  bool enospc_;
  std::vector<WriteOp> ops_;
  std::string probe_key_, probe_value_;
  // Before the reopen, an open with open_mask_ failing after open_skip_ good
  // operations (it may also succeed).
  bool open_fails_;
  uint32_t open_mask_;
  uint64_t open_skip_;
  // A read-only instance syncs after each operation, the writer's close and
  // its reopen.
  bool reader_follows_;
};

// --- Command generation ------------------------------------------------------

enum class Profile { kWriter, kReaders, kCrash, kIoErrors };

// Runs a command, then fails the case if a binding reached a log file with no
// flush callback since its replace (FlushJournal: at each callback during the
// command, and after it), or if a data file is malformed (DataFileProblems).
class CheckedCmd : public Cmd {
 public:
  explicit CheckedCmd(CmdPtr inner) : inner_(std::move(inner)) {}
  void checkPreconditions(const IndexModel& m) const override {
    inner_->checkPreconditions(m);
  }
  void apply(IndexModel& m) const override { inner_->apply(m); }
  void run(const IndexModel& s0, Sut& sut) const override {
    if (ShrinkBudgetSpent()) return;  // the case passes: shrinking ends
    inner_->run(s0, sut);
    sut.journal.Audit();
    const std::string early = sut.journal.TakeProblems();
    if (!early.empty()) {
      Fail("a binding reached a log file before the flush callback ran:\n" +
           early);
    }
    const std::string malformed = sut.CheckDataFiles();
    if (!malformed.empty()) Fail("malformed data files:\n" + malformed);
  }
  void show(std::ostream& os) const override { inner_->show(os); }

 private:
  CmdPtr inner_;
};

template <typename C>
CmdPtr Make(const GenContext& ctx) {
  return std::make_shared<const C>(ctx);
}
template <typename C>
CmdPtr MakeDefault(const GenContext&) {
  return std::make_shared<const C>();
}

using Factory = CmdPtr (*)(const GenContext&);

// (weight, factory) for every command of the profile that applies now.
std::vector<std::pair<int, Factory>> Table(Profile p, const GenContext& ctx) {
  std::vector<std::pair<int, Factory>> t = {
      {30, &Make<ReplaceCmd>},        {8, &Make<FindCmd>},
      {3, &MakeDefault<CheckAllCmd>}, {3, &MakeDefault<IterCmd>},
      {2, &Make<FilterCmd>},          {1, &MakeDefault<ClearCmd>},
      {5, &Make<FlushCmd>},           {3, &Make<MergeCmd>},
      {2, &MakeDefault<TryMergeCmd>}, {3, &MakeDefault<AwaitMergeCmd>},
      {2, &Make<CloseReopenCmd>},     {1, &Make<MisuseCmd>},
  };
  if (ctx.config.max_bulk > 0) t.push_back({10, &Make<BulkReplaceCmd>});
  if (ctx.config.shared_handles) {
    if (ctx.handles.size() < static_cast<size_t>(kMaxHandles)) {
      t.push_back({2, &Make<OpenHandleCmd>});
    }
    if (ctx.handles.size() > 1) {
      t.push_back({2, &Make<CloseHandleCmd>});
      t.push_back({4, &Make<HandleReplaceCmd>});
      t.push_back({2, &Make<HandleCheckCmd>});
    }
  }
  if (p == Profile::kReaders) {
    if (ctx.readers.size() < static_cast<size_t>(kMaxReaders)) {
      t.push_back({4, &Make<OpenReaderCmd>});
    }
    if (!ctx.readers.empty()) {
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

auto GenCommand(Profile p, const Config& config) {
  return [p, config](const IndexModel& m) {
    GenContext ctx;
    ctx.config = config;
    ctx.handles = m.HandleIds();
    ctx.readers = m.ReadOnlyIds();
    return rc::gen::exec([p, ctx]() -> CmdPtr {
      const auto table = Table(p, ctx);
      int total = 0;
      for (const auto& [w, f] : table) total += w;
      int r = *Uniform(0, total);
      for (const auto& [w, f] : table) {
        if (r < w) return std::make_shared<const CheckedCmd>(f(ctx));
        r -= w;
      }
      return std::make_shared<const CheckedCmd>(table.back().second(ctx));
    });
  };
}

void RunProfile(Profile p, Size size) {
  const Config config = *GenConfig(size);
  const uint64_t copied_before = GetStats().nb_merge_copied_runs;
  {
    Sut sut(config);
    rc::state::check(IndexModel(), sut, GenCommand(p, config));
    // What the case reached, in the distribution printed at the end.
    RC_TAG(std::to_string(sut.max_fanout_buckets()) + " fan-out buckets",
           GetStats().nb_merge_copied_runs > copied_before
               ? "a merge copied runs"
               : "no merge copied runs");
  }
}

TEST(IndexModelTest, WriterMatchesModel) {
  CheckProperty([] { RunProfile(Profile::kWriter, Size::kSmall); }, 500, 20000);
}

TEST(IndexModelTest, ReadOnlyInstancesSeeFlushedPrefix) {
  CheckProperty([] { RunProfile(Profile::kReaders, Size::kSmall); }, 500,
                20000);
}

TEST(IndexModelTest, CrashKeepsDurableAndInventsNothing) {
  CheckProperty([] { RunProfile(Profile::kCrash, Size::kSmall); }, 500, 20000);
}

TEST(IndexModelTest, IoErrorsNeverLoseDurableBindings) {
  CheckProperty([] { RunProfile(Profile::kIoErrors, Size::kSmall); }, 500,
                20000);
}

TEST(IndexModelLargeTest, WriterMatchesModel) {
  CheckProperty([] { RunProfile(Profile::kWriter, Size::kLarge); }, 60, 2000);
}

TEST(IndexModelLargeTest, ReadOnlyInstancesSeeFlushedPrefix) {
  CheckProperty([] { RunProfile(Profile::kReaders, Size::kLarge); }, 30, 2000);
}

TEST(IndexModelLargeTest, CrashKeepsDurableAndInventsNothing) {
  CheckProperty([] { RunProfile(Profile::kCrash, Size::kLarge); }, 60, 2000);
}

TEST(IndexModelLargeTest, IoErrorsNeverLoseDurableBindings) {
  CheckProperty([] { RunProfile(Profile::kIoErrors, Size::kLarge); }, 30, 2000);
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

// IoErrorsNeverLoseDurableBindings (a soak run, seed 1796569005): directory
// fsyncs failing while a tiered store merges and compacts in the background.
// Once a commit failed past its manifest's rename (the writer then stops), a
// log merge already under way went on to commit with the manifest before it
// and removed, as that manifest's uncommitted output, the run the new manifest
// names: no open accepted the store (likewise a compaction after a log merge
// failed so). Whichever fsyncs fail, it reopens.
TEST_F(IndexModelRegressionTest, TieredStoreReopensAfterFailedDirectoryFsyncs) {
  for (int64_t count : {2, 3}) {
    for (uint64_t skip = 0; skip < 128; ++skip) {
      MemEnv env;
      Options o;
      o.env = &env;
      o.fresh = true;
      o.log_size = 16;
      o.lru_size = 1;
      o.layout = Layout::kTiered;
      o.log_checksums = true;
      {
        auto w = RawIndex::Open(kRoot, LargePool().schema, o);
        ASSERT_TRUE(w.ok()) << w.status();
        env.InjectError(kOpSyncDir, skip, count,
                        absl::InternalError("injected EIO"));
        for (int i = 0; i < 300; ++i) {
          (void)(*w)->Replace(LargeKey(i), LargeValue(91733 + i));
        }
        (void)(*w)->Close();
      }
      env.ClearInjectedErrors();
      o.fresh = false;
      auto reopened = RawIndex::Open(kRoot, LargePool().schema, o);
      ASSERT_TRUE(reopened.ok()) << count << " directory fsyncs failing after "
                                 << skip << " good ones: " << reopened.status();
    }
  }
}

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
