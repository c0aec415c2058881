// Instance: the state shared by every handle (RawIndex) opened on one store
// with the same InstanceCache, and the algorithms of the index. One class, its
// methods spread over one file per concern:
//
//   instance.cc        construction, handles and close; find, iter, replace,
//                      flush, clear
//   instance_open.cc   opening a writer and crash recovery (log_async replay)
//   instance_merge.cc  merges: the merge lock, start, run, commit
//   instance_sync.cc   read-only instances following the writer (Sync)
//   instance_tiered.cc the tiered layout: its recovery at open, merge commit
//                      and clear, and the conversions between layouts
//   instance_compaction.cc  the tiered layout's background compactions
//
// Locks, in acquisition order:
//   1. The merge lock (merging_, a binary semaphore on merge_mu_): held from
//      the start of a merge in the caller's thread until the merge worker
//      has finished it. Clear and close take it too, after setting cancel_
//      so that a running merge stops early.
//      The compaction thread (tiered layout) runs outside it: one at a time
//      (compacting_ on merge_mu_), started by a merge holding the merge lock,
//      stopped (StopCompaction) only by one holding it.
//   2. manifest_mu_ (tiered layout): serialises the manifest commits of
//      merges and compactions, each with the update of runs_ it makes.
//   3. Either sync_mu_, which serialises read-only syncs, or handles_mu_,
//      which guards the handle count (the last close shuts down under it).
//   4. mu_: guards the logs, the data file and the generation. Finds share
//      it; replaces, flushes, the merge start and the merge commit hold it
//      exclusively. The merge thread reads the frozen log and the old data
//      file without it. A durable flush takes a ticket under it (shared) and
//      waits without it (group_commit_); the leader of each group writes
//      under it and fsyncs with no lock held (WriteAndSyncLogs).
//   5. The LRU's set locks and group_commit_'s mutex: innermost.
#ifndef KVINDEX_INDEX_INSTANCE_H_
#define KVINDEX_INDEX_INSTANCE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "datafile/merge.h"
#include "index/group_commit.h"
#include "index/lru.h"
#include "index/options.h"
#include "index/reaper.h"
#include "index/rw_lock.h"
#include "io/env.h"
#include "io/flush_options.h"
#include "io/pooled_thread.h"
#include "log/log.h"
#include "runset/policy.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

using KeepFn = std::function<bool(absl::string_view, absl::string_view)>;
using VisitFn = std::function<void(absl::string_view, absl::string_view)>;

class Instance {
 public:
  // --- instance_open.cc
  static absl::StatusOr<std::shared_ptr<Instance>> Create(
      const std::string& root, const Schema& schema, const Options& options);

  // --- instance.cc
  ~Instance();

  const Schema& schema() const { return schema_; }
  const std::string& root() const { return root_; }
  bool readonly() const { return options_.readonly; }

  // Handle counting. AddHandle fails once the instance closed.
  bool AddHandle();
  absl::Status CloseHandle(bool immediately);

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) const;
  absl::Status Iter(const VisitFn& f) const;
  absl::Status Replace(absl::string_view key, absl::string_view value,
                       bool overcommit);
  absl::Status Flush(const FlushOptions& options);
  absl::Status Clear();

  std::vector<std::string> LogEntries(bool async) const;

  // --- instance_merge.cc
  absl::Status Filter(const KeepFn& keep);
  absl::Status Merge(bool force);
  absl::Status AwaitMerge();
  absl::StatusOr<bool> IsMerging() const;

  // --- instance_sync.cc
  absl::Status Sync();

 private:
  // kCompact: always, and a tiered merge folds every run.
  enum class MergeWhen { kAlways, kIfLogFull, kCompact };
  struct MergeJob;
  struct SyncUpdate;

  // --- instance.cc
  Instance(const std::string& root, const Schema& schema,
           const Options& options);
  static uint64_t MicrosSince(std::chrono::steady_clock::time_point start);
  std::string Path(absl::string_view name) const;
  absl::Status Hook(HookPoint point) const;
  absl::Status CheckOpen() const;
  absl::Status CheckWritable() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // kFailedPrecondition once a write path failed (Failed), OK before. A
  // tiered merge or compaction under way then commits nothing: the commit
  // that stopped the writer may have failed past its manifest's rename, so
  // runs_ may be older than the manifest on disk.
  absl::Status StoppedError() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // kFailedPrecondition: `op` is not allowed on a read-only instance.
  absl::Status ReadOnlyError(absl::string_view op) const;
  // Records the first error of a write path (the instance then refuses
  // writes) and returns `error`.
  absl::Status Failed(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Failed(), taking mu_ for it.
  absl::Status FailedUnderLock(absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);
  // The two logs in lookup order (newest bindings first); either may be null.
  std::pair<const Log*, const Log*> LogsInOrder() const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckGenerationRoom() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status Shutdown();
  // Open, writable and not read-only.
  absl::Status CheckFlushAllowed() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Writes the logs' buffers (a flush without fsync).
  absl::Status WriteLogs(bool no_callback) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The work of group_commit_'s leader: writes what every durable flush so far
  // buffered, then fsyncs the logs without holding mu_; returns the last
  // ticket that covers.
  absl::StatusOr<uint64_t> WriteAndSyncLogs(bool no_callback)
      ABSL_LOCKS_EXCLUDED(mu_);

  // --- instance_open.cc
  absl::Status OpenWriter();
  absl::Status RecoverLogAsync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CopyIntoLog(const Log& from, bool only_missing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The generation of the last merge commit on disk: the manifest's in the
  // tiered layout, else the data file's header's, or -1 if there is no data
  // file (a data file without records still counts: it tells a merge commit
  // from a clear).
  absl::StatusOr<int64_t> CommittedGeneration();
  // log_async's generation, if it exists (and holds a header).
  absl::StatusOr<std::optional<int64_t>> LogAsyncGeneration();
  // kDataLoss if the log is missing (or shorter than a header) although a
  // data file or manifest exists: opening would show or start an empty store
  // over them.
  absl::Status CheckLogNextToData();
  // The single-file layout's recovery: a merge commit or a clear cut short.
  absl::Status RecoverSingleFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveIfPresent(const std::string& path);
  // Removes the key filter and checksum sidecar of `data` (best effort).
  void RemoveSidecars();
  // Options::verify_data_on_open: every data file in use against its
  // checksum sidecar.
  absl::Status VerifyDataFiles();

  // --- instance_tiered.cc
  // The tiered layout's recovery at open, from its committed `manifest`: a
  // merge commit or a clear cut short, files left by either; opens the runs.
  absl::Status RecoverTiered(const Manifest& manifest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A single-file store becomes tiered: a first manifest lists its data file
  // (if any) as the oldest run.
  absl::Status ConvertToTiered() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A tiered store becomes single-file: everything is merged into one run,
  // which is renamed to `data`, and the manifest goes. Takes the merge lock.
  absl::Status ConvertToSingleFile();
  // Whether `manifest` belongs to a conversion to the single-file layout that
  // committed (its one run renamed to `data`) before a crash kept it from
  // removing the manifest; if so, removes it: the store is single-file.
  absl::StatusOr<bool> FinishConversionToSingleFile(const Manifest& manifest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commits the output of a tiered merge under `plan` of `merged_runs` (the
  // runs when it started; the file at Path("merge"), of `generation`) on top
  // of `runs` (the runs now, which compactions may have changed behind the
  // folded ones) as run `runs.manifest().next_id`: the run renamed durably,
  // its filter, then the manifest (the commit point). Under manifest_mu_.
  // *committed: the runs from then on.
  absl::Status CommitRun(const RunSet& runs, const RunSet& merged_runs,
                         const MergePlan& plan, int64_t generation,
                         MergeResult merged,
                         std::shared_ptr<const RunSet>* committed);
  // Puts the output of a merge or compaction (`merged`, written to
  // `output_name` in the store directory) in place as run `id` of `slot`,
  // before a manifest names it: without records the file is removed and
  // nothing else happens; else it is renamed to the run's name (durably),
  // its filter written and the run opened and added to `open`. Fills
  // *output for the manifest.
  absl::Status InstallRun(MergeResult merged, absl::string_view output_name,
                          uint64_t id, uint32_t slot, MergeOutput* output,
                          RunSet::Runs* open);
  // The tiered part of a clear, after the log reset: a manifest without runs,
  // then the runs' files removed.
  absl::Status ClearRuns() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- instance_compaction.cc
  // The temporary name of a compaction's output, in the store directory.
  static constexpr char kCompactionOutput[] = "compact";
  // Whether the runs call for a compaction (and the instance may write).
  bool CompactionDue() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Starts the compaction thread if a compaction is due and none runs. Called
  // by the holder of the merge lock, without mu_.
  void MaybeStartCompaction();
  // Cancels a running compaction and waits for its thread; no compaction
  // starts again until the caller releases the merge lock, which it holds.
  void StopCompaction();
  // Waits until no compaction runs (the thread compacts while one is due)
  // and joins its thread; no compaction starts again until the caller
  // releases the merge lock, which it holds.
  void AwaitCompactions();
  // The thread's body: compacts while a compaction is due.
  void RunCompactions();
  absl::Status Compact(const CompactionPlan& plan,
                       const std::shared_ptr<const RunSet>& runs);
  // Under manifest_mu_: the output renamed to the next run id, then the
  // manifest that replaces the folded runs with it (the commit point).
  absl::Status CommitCompaction(const CompactionPlan& plan, MergeResult merged);

  // --- instance_merge.cc
  void AcquireMergeLock();
  void ReleaseMergeLock(const absl::Status* result);
  // Hands a background merge (its poster holds the merge lock) to the merge
  // worker, starting the worker on first use.
  void PostMerge(std::shared_ptr<MergeJob> job);
  // The worker's loop: runs each posted merge until stopped.
  void MergeWorker();
  // Stops and joins the worker. Only once no merge can start any more: the
  // instance is shut down or being destroyed.
  void StopMergeWorker();
  // StartMerge takes the merge lock and prepares (log_async, log fsync);
  // RunMerge does the work and releases the merge lock.
  absl::Status StartMerge(MergeWhen when, const KeepFn& keep, bool blocking);
  void RunMerge(std::shared_ptr<MergeJob> job);
  // The merge's work under the merge lock: WriteAndCommitMerge; after a
  // failure, no output left behind.
  absl::Status MergeBody(MergeJob& job);
  absl::Status WriteAndCommitMerge(MergeJob& job);
  absl::Status Commit(MergeJob& job, MergeResult merged);
  // The log after the commit, built at `log_tmp` without mu_: a copy of the
  // records log_async holds now (its buffer written under mu_), fsynced, of
  // `generation`. The commit copies the records writers add meanwhile under
  // mu_ and swaps it in.
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> BuildNextLog(
      int64_t generation) ABSL_LOCKS_EXCLUDED(mu_);

  // --- instance_sync.cc
  // Each step reads the files of the store and records in `update` what
  // changed; PublishSync applies it under mu_.
  absl::Status CheckSyncAllowed() const;
  absl::Status FollowLogAsync(Log* current, SyncUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // A reload of the log reads log_async again (replacing `current_async`).
  absl::Status FollowLog(Log* current, Log* current_async, int64_t generation,
                         SyncUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  absl::Status DropObsoleteLogAsync(Log* current_async, const Log* current_log,
                                    SyncUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  void PublishSync(SyncUpdate update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // Whether `log_async`, open since an earlier sync, is still the file its
  // path names and was not emptied since (its offset did not go back).
  absl::StatusOr<bool> LogAsyncStillCurrent(Log& log_async);
  // Opens log or log_async by path, making sure the file opened is still the
  // one the path names once its header was read (the writer may rename a new
  // file over it or delete it meanwhile). nullptr if absent.
  absl::StatusOr<std::unique_ptr<Log>> OpenLive(absl::string_view name);
  // Whether the path still names the file `log` is open on.
  absl::StatusOr<bool> IsLive(const Log& log, absl::string_view name);
  // The data file at its path, or nullptr if absent, empty, or one generation
  // older than an empty `log` (a clear cut after its commit point); kDataLoss
  // for another older one (recovery_rules.h).
  absl::StatusOr<std::shared_ptr<const DataFile>> OpenData(const Log& log);
  // How many times a sync reads the log and data file again when merges keep
  // committing between the two reads.
  static constexpr int kMaxSyncAttempts = 16;
  // The runs of a tiered store as its manifest lists them for `log`, or
  // nullptr for a single-file store (no manifest). A manifest one generation
  // older than an empty `log` (a clear cut after its commit point) shows no
  // run; kDataLoss for another older one (recovery_rules.h).
  absl::StatusOr<std::shared_ptr<const RunSet>> OpenRuns(
      const Log& log, const RunSet* previous);

  const std::string root_;
  const Schema schema_;
  const Options options_;
  const uint64_t log_size_bytes_;
  std::unique_ptr<Env> env_;  // counts IO in Stats
  std::unique_ptr<FileLock> lock_;
  // Where the merge worker, the compactions and a reader's Sync leave the
  // data files and runs they may hold last (index/reaper.h). Declared after
  // env_, whose files they are: stopped before it goes.
  Reaper reaper_;

  mutable RwLock mu_;
  std::unique_ptr<Log> log_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Log> log_async_ ABSL_GUARDED_BY(mu_);
  // The single-file layout's data file (may be null), or the tiered layout's
  // runs (never null in that layout): exactly one of the two layouts is in
  // use, data_ is null when runs_ is not.
  std::shared_ptr<const DataFile> data_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const RunSet> runs_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Whether log_async holds newer bindings than log (always for a writer; for a
  // reader, unless the merge that created log_async already reset the log).
  bool async_first_ ABSL_GUARDED_BY(mu_) = true;
  // Set under mu_ (exclusive); read without it on the LRU fast path.
  std::atomic<bool> closed_{false};
  // First IO error of a write path; the instance refuses writes once set.
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  mutable Lru lru_;
  // Lets concurrent durable flushes share their fsyncs.
  GroupCommit group_commit_;
  // A durable flush waiting for the group's write asked for the callback. Set
  // under mu_ shared, taken under mu_ exclusive.
  std::atomic<bool> callback_wanted_{false};

  mutable absl::Mutex merge_mu_;
  bool merging_ ABSL_GUARDED_BY(merge_mu_) = false;
  // One thread runs the background merges of the instance, from the first
  // one to its shutdown: a thread per merge costs more than merging a small
  // log (under ASan mostly). It holds nothing between merges.
  PooledThread merge_worker_ ABSL_GUARDED_BY(merge_mu_);
  std::shared_ptr<MergeJob> merge_job_ ABSL_GUARDED_BY(merge_mu_);
  bool stop_merge_worker_ ABSL_GUARDED_BY(merge_mu_) = false;
  absl::Status merge_result_ ABSL_GUARDED_BY(merge_mu_);
  // Kept apart from merge_result_: a compaction the merge started may fail
  // before that merge records its own result.
  absl::Status compaction_error_ ABSL_GUARDED_BY(merge_mu_);
  std::atomic<bool> cancel_{false};
  bool compacting_ ABSL_GUARDED_BY(merge_mu_) = false;
  PooledThread compaction_thread_ ABSL_GUARDED_BY(merge_mu_);
  std::atomic<bool> cancel_compaction_{false};
  absl::Mutex manifest_mu_;

  absl::Mutex sync_mu_;

  absl::Mutex handles_mu_;
  int handles_ ABSL_GUARDED_BY(handles_mu_) = 1;
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_INSTANCE_H_
