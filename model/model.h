// IndexModel: an executable specification of what kvindex::RawIndex lets a user
// observe. It is written to be obviously correct, not fast: a std::map of
// bindings and the list of every change since the start. The property tests
// (tests/index_model_test.cc) drive the real index and this model with the same
// operations and compare what the index shows with what the model allows.
//
// Keys and values are the encoded byte strings. Not thread-safe (one test
// driver).
//
// HISTORY AND POSITIONS
//   The writer's history is a list of atomic steps: one replace, one clear, or
//   all the removals of one filter. state(p) is the bindings after the first p
//   steps (after step 0: the initial bindings); state(end) is what the writer
//   itself shows. Three positions cut the history, D <= F <= H <= end:
//     D (durable)        state(D) survives a crash or power loss.
//     F (flushed)        everything up to F is in the files: a read-only
//                        instance that syncs now sees at least that much.
//     H (maybe flushed)  nothing after H can be in the files yet.
//   The index flushes on its own at moments the model cannot predict: a replace
//   that fills the log starts a merge, whose start flushes the log with fsync,
//   and the end of any background merge copies log_async into the new log and
//   fsyncs it. So the model knows the range [F, H] of what is flushed, not a
//   single point. (It assumes less than the index's ~1 MB auto-flush threshold
//   is ever buffered.)
//
// RULES (end = the position after the operation's own steps)
//   Replace(k, v)   One step. Without overcommit it may start a merge: H = end.
//                   While a merge may be running, any replace sets H = end.
//   Find, Mem       state(end).
//   Filter(keep)    One step removing each key whose NEWEST binding fails
//                   keep. A blocking merge: D = its start (the log flush),
//                   F = H = end.
//   Clear           One step removing everything; D = F = H = end. Read-only
//                   instances keep their old view until they sync.
//   Flush(fsync)    F = H = end; with fsync D = end.
//   Merge           D = F = H = end (its start flushes the log with fsync).
//                   On an empty index it starts nothing, so AwaitMerge still
//                   reports the previous merge's outcome (maybe kAborted).
//   TryMerge        H = end (it may merge).
//   AwaitMerge      No merge runs any more.
//   Close           D = F = H = end. Reopen shows state(end).
//   Handles         Handles opened with one InstanceCache share the writer's
//                   instance: every open handle shows state(end), and writes
//                   through any of them are one history. Closing a handle
//                   that is not the last one flushes nothing (the positions
//                   stay); it waits for a running merge, after cancelling it
//                   if `immediately` (then AwaitMerge on another handle may
//                   report kAborted). Closing the last handle is Close.
//   Sync, or opening a read-only instance: the instance records [F, H]; it
//                   must then show exactly state(p) for one p in that range,
//                   and p never decreases from one sync to the next.
//   An operation that FAILED (returned an error) may have done any part of its
//   work: its steps are still appended, H = end, D and F stay, and a merge may
//   be running.
//
// CRASH (power loss, or close and reopen after IO errors)
//   The reopened writer must show state(p) for some p in [D, H] (the PREFIX
//   rule: writes are never reordered, the log is a prefix of the history). A
//   weaker, per-key reading explains violations key by key (the PER-KEY rule):
//   every key must hold a value it has in some state(p), p in [D, H]; that is,
//   its durable value state(D)[k], or a value written to it by a replace in
//   steps D+1..H, or "absent" if it is absent in state(D) or a clear or filter
//   in steps D+1..H removed it. A key with no binding in any of those states
//   must be absent (nothing is invented), and nothing written after H can
//   appear. Afterwards the model adopts state(D) (the test brings the index
//   there) and forgets its read-only instances.
//
// ITER
//   One Iter call visits each binding of the state shown exactly once, with
//   that state's value, and nothing else (order unspecified): on the writer
//   state(end); on a read-only instance what its finds show since its last
//   sync; after a crash what the reopened writer's finds show.
//
// SIZE
//   Every check replays steps one change at a time, never state by state, so
//   that histories of many thousands of replaces (bulk writes over thousands
//   of keys) stay cheap; explanations list at most kMaxShown bindings or
//   steps, then how many more there are.
#ifndef KVINDEX_MODEL_MODEL_H_
#define KVINDEX_MODEL_MODEL_H_

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kvindex {
namespace model {

using Map = std::map<std::string, std::string>;
using KeepFn =
    std::function<bool(const std::string& key, const std::string& value)>;
// Per key, values it was bound to.
using ValueSets = std::map<std::string, std::set<std::string>>;
using Visits = std::vector<std::pair<std::string, std::string>>;

enum class Outcome { kOk, kFailed };

// One atomic change: a clear empties the map first, then each change binds
// (value) or removes (nullopt) a key.
struct Step {
  enum class Kind { kReplace, kFilter, kClear };
  Kind kind = Kind::kReplace;
  bool overcommit = false;  // of a replace
  std::vector<std::pair<std::string, std::optional<std::string>>> changes;

  bool clear() const { return kind == Kind::kClear; }
  // For explanations, e.g. "replace k=v"; built only when one is shown.
  std::string Label() const;
};

class IndexModel {
 public:
  // A writer over an empty store.
  IndexModel() = default;

  // --- The writer ---
  void Replace(const std::string& key, const std::string& value,
               bool overcommit = false, Outcome outcome = Outcome::kOk);
  std::optional<std::string> Find(const std::string& key) const;
  bool Mem(const std::string& key) const { return Find(key).has_value(); }
  const Map& Bindings() const { return current_; }
  void Filter(const KeepFn& keep, Outcome outcome = Outcome::kOk);
  void Clear(Outcome outcome = Outcome::kOk);
  void Flush(bool fsync, Outcome outcome = Outcome::kOk);
  void Merge(Outcome outcome = Outcome::kOk);
  void TryMerge(Outcome outcome = Outcome::kOk);
  void AwaitMerge() { merge_may_run_ = false; }
  // Closes the writer's instance (its last handle); Reopen opens it again,
  // with handle 0.
  void Close(Outcome outcome = Outcome::kOk);
  void Reopen();
  bool writer_open() const { return writer_open_; }

  // --- Handles on the writer's instance, by test-chosen id ---
  // The writer starts with handle 0. Opening a handle while the instance is
  // closed reopens it.
  void OpenHandle(int id);
  // Closes a handle; the last one closes the instance (Close).
  void CloseHandle(int id, bool immediately, Outcome outcome = Outcome::kOk);
  bool HasHandle(int id) const { return handles_.count(id) > 0; }
  std::vector<int> HandleIds() const;
  // Whether a merge may be running, and whether a clear or close may have
  // cancelled one since the last Merge of a non-empty index (then AwaitMerge
  // may report kAborted).
  bool merge_may_run() const { return merge_may_run_; }
  bool merge_may_have_aborted() const { return merge_may_have_aborted_; }

  // --- Positions (see the header comment) ---
  size_t end() const { return steps_.size(); }
  size_t durable() const { return durable_; }
  size_t flushed() const { return flushed_; }
  size_t maybe_flushed() const { return maybe_flushed_; }
  Map StateAt(size_t p) const;
  // The positions p in [lo, hi] with state(p) == m, ascending.
  std::vector<size_t> Matching(const Map& m, size_t lo, size_t hi) const;
  // "" if `observed` is allowed for range [lo, hi] by the per-key rule and, if
  // `prefix`, also by the prefix rule; otherwise a readable explanation.
  std::string ExplainRange(const Map& observed, size_t lo, size_t hi,
                           bool prefix) const;
  // The steps lo+1..hi, one per line (at most kMaxShown: the first and the
  // last ones).
  std::string DescribeSteps(size_t lo, size_t hi) const;

  // --- Read-only instances, by test-chosen id ---
  void OpenReadOnly(int id) { Sync(id); }
  void Sync(int id) { readers_[id] = {flushed_, maybe_flushed_}; }
  void CloseReadOnly(int id) { readers_.erase(id); }
  bool HasReadOnly(int id) const { return readers_.count(id) > 0; }
  std::vector<int> ReadOnlyIds() const;
  // The range [F, H] recorded at the instance's last sync.
  std::pair<size_t, size_t> ReadOnlyRange(int id) const {
    return readers_.at(id);
  }

  // --- Crash ---
  // "" if a writer reopened after a crash may show `observed` (see CRASH
  // above).
  std::string CheckRecovered(const Map& observed, bool prefix = true) const {
    return ExplainRange(observed, durable_, maybe_flushed_, prefix);
  }
  // The model after the crash: state(D), everything durable, no readers.
  void Crash();

  // Every value each key was bound to since the last clear / ever.
  const ValueSets& ValuesSinceClear() const {
    CollectValues();
    return since_clear_;
  }
  const ValueSets& ValuesEver() const {
    CollectValues();
    return ever_;
  }

 private:
  void Append(Step step, Outcome outcome);
  // Brings since_clear_ and ever_ up to date with the steps not collected yet:
  // done only when they are asked for, as most drivers never ask.
  void CollectValues() const;

  Map base_;                 // state(0)
  std::vector<Step> steps_;  // steps 1..end
  Map current_;              // state(end)
  size_t durable_ = 0;
  size_t flushed_ = 0;
  size_t maybe_flushed_ = 0;
  bool merge_may_run_ = false;
  bool merge_may_have_aborted_ = false;
  bool writer_open_ = true;
  std::set<int> handles_ = {0};
  std::map<int, std::pair<size_t, size_t>> readers_;
  // The values bound by steps_[0, collected_), and before them.
  mutable ValueSets since_clear_;
  mutable ValueSets ever_;
  mutable size_t collected_ = 0;
};

// "" if one Iter call's `visits` are exactly the bindings of `shown`, each
// once (see ITER above); otherwise a readable explanation.
std::string CheckIterVisits(const Map& shown, const Visits& visits);
// The same check; `older` is ignored: a second visit is wrong whatever value
// it carries.
std::string CheckIterVisits(const Map& shown, const Visits& visits,
                            const ValueSets& older);

// Explanations list at most this many bindings, keys or steps.
inline constexpr size_t kMaxShown = 40;

// Printable forms for explanations and counterexamples.
std::string Quote(const std::string& bytes);
// At most kMaxShown bindings, then how many more.
std::string ShowMap(const Map& m);
// "" if `shown` == `expected`; otherwise the keys on which they differ (at most
// kMaxShown), one per line, with both values.
std::string ShowDifferences(const Map& shown, const Map& expected);

}  // namespace model
}  // namespace kvindex

#endif  // KVINDEX_MODEL_MODEL_H_
