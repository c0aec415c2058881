// Instance: the state shared by every handle (RawIndex) opened on one store
// with the same InstanceCache, and the algorithms of the index: find, replace,
// merges, clear, recovery at open, and read-only sync.
//
// Locks, in acquisition order:
//   merge lock (merging_, a binary semaphore on merge_mu_): held from the start
//   of a
//     merge in the caller's thread until the merge thread ends; also taken by
//     clear and close, which first set cancel_ so that a running merge stops
//     early.
//   sync_mu_: serialises read-only syncs.
//   mu_: guards the logs, the data file and the generation. Finds share it;
//   replaces,
//     flushes, the merge start and the merge commit hold it exclusively. The
//     merge thread reads the frozen log and the old data file without it.
//   Lru set locks: innermost.
#ifndef KVINDEX_INDEX_INSTANCE_H_
#define KVINDEX_INDEX_INSTANCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "data/schema.h"
#include "log/log.h"
#include "index/lru.h"
#include "datafile/data_file.h"
#include "datafile/merge.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/rw_lock.h"
#include "io/env.h"

namespace kvindex {
namespace index_internal {

using KeepFn = std::function<bool(absl::string_view, absl::string_view)>;
using VisitFn = std::function<void(absl::string_view, absl::string_view)>;

class Instance {
 public:
  static absl::StatusOr<std::shared_ptr<Instance>> Create(
      const std::string& root, const Schema& schema, const Options& options);
  ~Instance();

  const Schema& schema() const { return schema_; }
  const std::string& root() const { return root_; }
  bool readonly() const { return options_.readonly; }

  // Handle counting. AddHandle fails once the instance closed.
  bool AddHandle();
  absl::Status CloseHandle(bool immediately);

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) const;
  absl::Status Replace(absl::string_view key, absl::string_view value,
                       bool overcommit);
  absl::Status Filter(const KeepFn& keep);
  absl::Status Iter(const VisitFn& f) const;
  absl::Status Clear();
  absl::Status Flush(const FlushOptions& options);
  absl::Status Merge(bool force);
  absl::Status AwaitMerge();
  absl::StatusOr<bool> IsMerging() const;
  absl::Status Sync();

  std::vector<std::string> LogEntries(bool async) const;

 private:
  enum class MergeWhen { kAlways, kIfLogFull };

  Instance(const std::string& root, const Schema& schema,
           const Options& options);
  std::string Path(absl::string_view name) const;
  absl::Status Hook(HookPoint point) const;
  absl::Status CheckOpen() const;
  absl::Status CheckWritable() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status Failed(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Open-time work.
  absl::Status OpenWriter();
  absl::Status RecoverLogAsync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CopyIntoLog(const Log& from, bool only_missing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckGenerationRoom() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The data file at its path, or nullptr if absent, empty, or older than the
  // log (a clear that a crash interrupted after its commit point).
  absl::StatusOr<std::shared_ptr<const DataFile>> OpenData(int64_t generation);
  // Generation in the data file's header, or -1 if there is no data file (a
  // data file without records still counts: it tells a merge commit from a
  // clear).
  absl::StatusOr<int64_t> DataFileGeneration();
  // Whether a log_async of generation `async_generation` still holds bindings
  // for a log of generation `log_generation`: yes while its merge has not reset
  // the log, and after that only if the merge committed (the data file has the
  // log's generation); otherwise a clear made it obsolete.
  absl::StatusOr<bool> LogAsyncWanted(int64_t async_generation,
                                      int64_t log_generation);
  // Read-only: opens log or log_async by path, making sure the file opened is
  // still the one the path names once its header was read (the writer may
  // rename a new file over it or delete it meanwhile). nullptr if absent.
  absl::StatusOr<std::unique_ptr<Log>> OpenLive(absl::string_view name);
  // Read-only: whether the path still names the file `log` is open on.
  absl::StatusOr<bool> IsLive(const Log& log, absl::string_view name);
  // The two logs in lookup order (newest bindings first); either may be null.
  std::pair<const Log*, const Log*> LogsInOrder() const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Merge lock.
  void AcquireMergeLock();
  void ReleaseMergeLock(const absl::Status* result);
  void JoinMergeThread();

  // Merges: StartMerge takes the merge lock and prepares (log_async, log
  // fsync); RunMerge does the work and releases the merge lock.
  absl::Status StartMerge(MergeWhen when, const KeepFn& keep, bool blocking);
  struct MergeJob;
  void RunMerge(std::shared_ptr<MergeJob> job);
  absl::Status MergeBody(MergeJob& job);
  absl::Status Commit(MergeJob& job, MergeResult merged);
  void RemoveIfPresent(const std::string& path);
  void RemoveFilter();

  absl::Status Shutdown();

  const std::string root_;
  const Schema schema_;
  const Options options_;
  const uint64_t log_size_bytes_;
  std::unique_ptr<Env> env_;  // counts IO in Stats
  std::unique_ptr<FileLock> lock_;

  mutable RwLock mu_;
  std::unique_ptr<Log> log_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Log> log_async_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const DataFile> data_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Whether log_async holds newer bindings than log (always for a writer; for a
  // reader, unless the merge that created log_async already reset the log).
  bool async_first_ ABSL_GUARDED_BY(mu_) = true;
  // Set under mu_ (exclusive); read without it on the LRU fast path.
  std::atomic<bool> closed_{false};
  // First IO error of a write path; the instance refuses writes once set.
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  mutable Lru lru_;

  mutable absl::Mutex merge_mu_;
  bool merging_ ABSL_GUARDED_BY(merge_mu_) = false;
  std::thread merge_thread_ ABSL_GUARDED_BY(merge_mu_);
  absl::Status merge_result_ ABSL_GUARDED_BY(merge_mu_);
  std::atomic<bool> cancel_{false};

  absl::Mutex sync_mu_;

  absl::Mutex handles_mu_;
  int handles_ ABSL_GUARDED_BY(handles_mu_) = 1;
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_INSTANCE_H_
