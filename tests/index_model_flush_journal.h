// FlushJournal: checks, for the model-based property tests, the flush
// callback's contract (docs/design.md §2.3): it runs before any binding
// reaches a file.
//
// The journal plays an application that must persist its own state before the
// bindings that depend on it: each callback persists every replace issued
// until then. So every record committed in a log file (`log`, `log_async`)
// must have been issued before the last callback. This is checked when a
// callback starts (against the one before it) and whenever the test asks
// (Audit, between commands: a flush under way has had its callback already).
// A record issued later reached its file with no callback between its replace
// and its write: a callback called after the write, or a write that skipped
// it. Records are told apart by key and value only: a replace that repeats an
// earlier one counts as issued with it.
//
// Thread-safe: the callback runs in whichever thread flushes.
#ifndef KVINDEX_TESTS_INDEX_MODEL_FLUSH_JOURNAL_H_
#define KVINDEX_TESTS_INDEX_MODEL_FLUSH_JOURNAL_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "data/schema.h"
#include "io/mem_env.h"

namespace kvindex {
namespace index_model_test {

class FlushJournal {
 public:
  // For the store at `root` in `env` (which must outlive the journal).
  FlushJournal(const MemEnv* env, std::string root, const Schema& schema)
      : env_(env), root_(std::move(root)), schema_(schema) {}

  // Records a replace; call it just before the replace.
  void Issue(const std::string& key, const std::string& value);

  // The flush callback. It runs with the index's locks held, so the log files
  // do not change meanwhile.
  void OnFlush();

  // The same check now, without a callback.
  void Audit();

  // What the checks since the last TakeProblems found, one per line; "" if
  // nothing.
  std::string TakeProblems();

 private:
  using Record = std::pair<std::string, std::string>;  // key, value

  // The records of log file `name` that its header commits (docs/format.md
  // §3.4).
  std::vector<Record> CommittedRecords(const std::string& name) const;
  void CheckLogs(const std::string& when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckLog(const std::string& name, const std::string& when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MemEnv* const env_;
  const std::string root_;
  const Schema schema_;
  absl::Mutex mu_;
  // Per key and value, the number of the first replace that wrote it.
  std::map<Record, uint64_t> first_issue_ ABSL_GUARDED_BY(mu_);
  uint64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
  // Replaces issued before the last callback.
  uint64_t persisted_ ABSL_GUARDED_BY(mu_) = 0;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::string problems_ ABSL_GUARDED_BY(mu_);
};

}  // namespace index_model_test
}  // namespace kvindex

#endif  // KVINDEX_TESTS_INDEX_MODEL_FLUSH_JOURNAL_H_
