// Instance, merges: the merge lock, starting a merge (log_async takes the
// writes, the log freezes), running it in the background, and its commit.
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"
#include "datafile/merge.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "index/instance.h"
#include "index/stats.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "runset/manifest.h"
#include "runset/policy.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

// What a merge works on, captured under mu_ when it starts.
struct Instance::MergeJob {
  const Log* log = nullptr;              // frozen during the merge
  std::shared_ptr<const DataFile> data;  // single-file layout; may be null
  std::shared_ptr<const RunSet> runs;    // tiered layout; null otherwise
  MergePlan plan;                        // tiered: the runs folded
  int64_t generation = 0;                // the merge's result generation
  KeepFn keep;                           // filter, optional
  std::chrono::steady_clock::time_point start;
};

absl::Status Instance::Filter(const KeepFn& keep) {
  {
    ReaderLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError("filter");
  }
  return StartMerge(MergeWhen::kAlways, keep, /*blocking=*/true);
}

absl::Status Instance::Merge(bool force) {
  {
    ReaderLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError("merge");
  }
  return StartMerge(force ? MergeWhen::kAlways : MergeWhen::kIfLogFull, nullptr,
                    /*blocking=*/false);
}

absl::StatusOr<bool> Instance::IsMerging() const {
  {
    ReaderLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError("is_merging");
  }
  absl::MutexLock lock(&merge_mu_);
  return merging_ || compacting_;
}

absl::Status Instance::AwaitMerge() {
  absl::MutexLock lock(&merge_mu_);
  merge_mu_.Await(absl::Condition(
      +[](Instance* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return !self->merging_ && !self->compacting_;
      },
      this));
  if (!merge_result_.ok()) return merge_result_;
  return std::exchange(compaction_error_, absl::OkStatus());
}

void Instance::AcquireMergeLock() {
  absl::MutexLock lock(&merge_mu_);
  merge_mu_.Await(absl::Condition(
      +[](bool* merging) { return !*merging; }, &merging_));
  merging_ = true;
}

void Instance::ReleaseMergeLock(const absl::Status* result) {
  absl::MutexLock lock(&merge_mu_);
  merging_ = false;
  if (result != nullptr) merge_result_ = *result;
}

void Instance::PostMerge(std::shared_ptr<MergeJob> job) {
  absl::MutexLock lock(&merge_mu_);
  merge_job_ = std::move(job);
  if (!merge_worker_.joinable()) {
    merge_worker_ = PooledThread([this] { MergeWorker(); });
  }
}

void Instance::MergeWorker() {
  merge_mu_.Lock();
  for (;;) {
    merge_mu_.Await(absl::Condition(
        +[](Instance* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return self->merge_job_ != nullptr || self->stop_merge_worker_;
        },
        this));
    // A posted job runs even once stopping: its poster holds the merge lock
    // until it ends.
    if (merge_job_ == nullptr) break;
    std::shared_ptr<MergeJob> job = std::move(merge_job_);
    merge_mu_.Unlock();
    RunMerge(std::move(job));
    merge_mu_.Lock();
  }
  merge_mu_.Unlock();
}

void Instance::StopMergeWorker() {
  PooledThread worker;
  {
    absl::MutexLock lock(&merge_mu_);
    stop_merge_worker_ = true;
    worker = std::move(merge_worker_);
  }
  if (worker.joinable()) worker.join();
}

absl::Status Instance::StartMerge(MergeWhen when, const KeepFn& keep,
                                  bool blocking) {
  AcquireMergeLock();
  // A tiered merge of the log alone leaves the runs to the compaction thread.
  // One that folds runs stops it first: everything for Filter and kCompact,
  // and when the runs would outgrow the manifest (compactions fell behind).
  bool fold_runs = keep != nullptr || when == MergeWhen::kCompact;
  {
    ReaderLock lock(&mu_);
    if (runs_ != nullptr && runs_->runs().size() + 1 >= kMaxRuns) {
      fold_runs = true;
    }
  }
  if (fold_runs) StopCompaction();
  auto job = std::make_shared<MergeJob>();
  job->start = std::chrono::steady_clock::now();
  job->keep = keep;
  absl::Status st;
  bool nothing_to_do = false;
  {
    WriterLock lock(&mu_);
    st = CheckWritable();
    // A log_async present now is left over from a failed or aborted merge: it
    // is about to be copied into the log, so it counts towards the log's size.
    const uint64_t pending =
        log_ == nullptr
            ? 0
            : log_->file().offset() +
                  (log_async_ == nullptr ? 0 : log_async_->file().offset());
    if (st.ok() && when == MergeWhen::kIfLogFull &&
        pending <= log_size_bytes_) {
      nothing_to_do = true;
    }
    if (st.ok() && !nothing_to_do) st = CheckGenerationRoom();
    if (st.ok() && !nothing_to_do) {
      stats_internal::AddMerge();
      st = RecoverLogAsync();
    }
    const bool no_records =
        runs_ != nullptr ? runs_->empty() : data_ == nullptr;
    if (st.ok() && !nothing_to_do && no_records &&
        log_->table().cardinal() == 0) {
      nothing_to_do = true;
    }
    if (st.ok() && !nothing_to_do) {
      // From here on, replaces go to log_async; the log is frozen and must be
      // durable before any of its bindings can reach the data file.
      job->generation = generation_ + 1;
      auto log_async =
          Log::OpenReadWrite(env_.get(), Path("log_async"), schema_,
                             /*fresh=*/true, job->generation,
                             options_.flush_callback, options_.log_checksums);
      st = Failed(log_async.status());
      if (st.ok()) {
        log_async_ = *std::move(log_async);
        // log_async becomes the next log at the commit (§3.4), likely to fill
        // as far as this one before the next merge: room for that now, while
        // its table is empty, instead of doublings of its arrays later, each
        // while writers wait for mu_.
        log_async_->Reserve(
            std::min<uint64_t>(log_->table().records(), options_.log_size));
        st = Failed(log_->Flush(FlushOptions{.with_fsync = true}));
      }
      job->log = log_.get();
      job->data = data_;
      job->runs = runs_;
      if (runs_ != nullptr) {
        job->plan =
            fold_runs ? PlanCompact(runs_->manifest().runs)
                      : PlanFlush(log_->table().cardinal(), options_.log_size);
      }
    }
  }
  if (!st.ok() || nothing_to_do) {
    // AwaitMerge reports on the latest Merge call, even one with nothing to do.
    const absl::Status outcome = nothing_to_do ? absl::OkStatus() : st;
    ReleaseMergeLock(&outcome);
    return st;
  }
  if (blocking) {
    absl::Status result = MergeBody(*job);
    (void)Hook(HookPoint::kMergeEnded);
    stats_internal::AddMergeDuration(MicrosSince(job->start));
    ReleaseMergeLock(&result);
    return result;
  }
  PostMerge(std::move(job));
  return absl::OkStatus();
}

void Instance::RunMerge(std::shared_ptr<MergeJob> job) {
  absl::Status result = MergeBody(*job);
  (void)Hook(HookPoint::kMergeEnded);
  stats_internal::AddMergeDuration(MicrosSince(job->start));
  // The files the merge started from may be held by nothing else now: the
  // data file its commit replaced, runs a compaction retired meanwhile. Closed
  // here, unlinked gigabytes would keep the merge lock, which a writer with a
  // full log waits for, for seconds; the reaper closes them, and shutdown
  // stops it. Nothing else of the merge outlives the merge lock: the next
  // holder may shut the instance down.
  reaper_.Drop(std::move(job->data));
  reaper_.Drop(std::move(job->runs));
  job.reset();
  ReleaseMergeLock(&result);
}

absl::Status Instance::MergeBody(MergeJob& job) {
  absl::Status st = WriteAndCommitMerge(job);
  // A commit renames its output: one still there was not committed, and goes
  // now rather than at the next merge or open (it can be as large as the
  // store).
  if (!st.ok()) RemoveIfPresent(Path("merge"));
  return st;
}

absl::Status Instance::WriteAndCommitMerge(MergeJob& job) {
  KVINDEX_RETURN_IF_ERROR(Hook(HookPoint::kMergeBefore));
  MergeRequest request;
  request.env = env_.get();
  request.path = Path("merge");
  request.schema = schema_;
  request.log = &job.log->table();
  if (job.runs != nullptr) {
    request.older_runs = job.runs->Newest(job.plan.fold);
  } else {
    request.data = job.data.get();
  }
  request.generation = job.generation;
  request.keep = job.keep;
  request.cancel = &cancel_;
  request.after_first_entry = [this] {
    return Hook(HookPoint::kMergeAfterFirstEntry);
  };
  auto merged = WriteMerge(request);
  if (!merged.ok()) return merged.status();
  stats_internal::AddVerify(merged->verify_us);
  if (merged->copied_runs) stats_internal::AddMergeCopiedRuns();
  KVINDEX_RETURN_IF_ERROR(Commit(job, *std::move(merged)));
  KVINDEX_RETURN_IF_ERROR(Hook(HookPoint::kMergeAfter));
  if (job.runs != nullptr) MaybeStartCompaction();
  return absl::OkStatus();
}

// The fsync order that makes every step crash-safe: the merge output is fsynced
// and committed (single file: renamed over data, durable with the directory;
// tiered: renamed to its run's name, then a new manifest written by rename),
// its filter and checksum sidecar written (not synced: a damaged or missing
// one is not used),
// then log_async is fsynced, the log is reset, the writes made during the
// merge are copied from log_async into the new log and fsynced, and only then
// is log_async deleted.
absl::Status Instance::Commit(MergeJob& job, MergeResult merged) {
  if (cancel_) {
    return absl::AbortedError(
        absl::StrCat(root_, ": merge cancelled by clear or close"));
  }
  // With log checksums the frozen log's records were made durable by its
  // journal only; the log reset below fsyncs the log before it replaces the
  // journal. Done here, on the merge's thread, that fsync does not hold up
  // writers waiting for mu_. A failure is not retried: after a failed fsync
  // the kernel may have dropped the log's dirty pages and a second one may
  // report success for them, so the writer stops (§12) before anything is
  // committed; the next open recovers from the files as they are.
  const absl::Status frozen_synced = job.log->file().SyncFile();
  if (!frozen_synced.ok()) return FailedUnderLock(frozen_synced);
  std::shared_ptr<const DataFile> data;
  std::shared_ptr<const RunSet> runs;
  // Tiered: a compaction commits before or after this whole commit, not in
  // the middle of it (it would miss the run or the log reset).
  std::optional<absl::MutexLock> manifest_lock;
  if (job.runs != nullptr) {
    manifest_lock.emplace(&manifest_mu_);
    std::shared_ptr<const RunSet> current;
    {
      ReaderLock lock(&mu_);
      current = runs_;
      // A writer stopped by a commit that failed past its manifest's rename
      // commits nothing more: runs_ is the manifest before that one, whose
      // uncommitted output (RemoveStaleRunFiles) is the run the new one names.
      KVINDEX_RETURN_IF_ERROR(StoppedError());
    }
    const absl::Status st = CommitRun(*current, *job.runs, job.plan,
                                      job.generation, std::move(merged), &runs);
    if (!st.ok()) {
      // It may have failed after its commit point (the manifest's rename):
      // the files no longer match this instance, which stops writing.
      return FailedUnderLock(st);
    }
  } else {
    std::unique_ptr<IndexFile> file = std::move(merged.file);
    // Once the rename is done (the handle then names `data`), an open
    // finishes this merge (docs/design.md §10.2), so a failure after it (the
    // directory's fsync) leaves the files ahead of this instance, which must
    // stop writing: carrying on as after a merge that never got this far
    // would copy log_async into the log it never reset and remove it, leaving
    // data a generation ahead of the log with no log_async to say why.
    const absl::Status renamed = file->RenameTo(Path("data"));
    if (!renamed.ok()) {
      if (file->path() != Path("data")) return renamed;
      return FailedUnderLock(renamed);
    }
    // The filter goes next to the committed data file, whose generation it
    // names; it is an accelerator only, so a failure to write it just leaves
    // finds without it (an older filter names another generation).
    if (!merged.filter.empty()) {
      (void)KeyFilter::Write(env_.get(), DataFile::FilterPath(Path("data")),
                             merged.filter);
    }
    // So do its checksums: without them (an older sidecar names another
    // generation) the next merge reads the data file unchecked.
    if (!merged.sums.empty()) {
      (void)DataSums::Write(env_.get(), DataFile::SumsPath(Path("data")),
                            merged.sums);
    }
    absl::StatusOr<std::shared_ptr<const DataFile>> opened =
        DataFile::FromFile(std::move(file), schema_, env_.get());
    if (!opened.ok()) {
      return FailedUnderLock(opened.status());
    }
    data = *std::move(opened);
  }

  // Committed, the log not yet reset: what a reader syncing now, or the
  // next writer after a crash now, must make of the files.
  (void)Hook(HookPoint::kMergeCommitted);
  // The new log holds what log_async holds: built aside, so that writers
  // wait only for the records they add meanwhile to be copied.
  KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<IndexFile::Replacement> next_log,
                           BuildNextLog(job.generation));
  (void)Hook(HookPoint::kMergeNextLogBuilt);
  {
    WriterLock lock(&mu_);
    if (runs != nullptr) {
      runs_ = runs;
    } else {
      data_ = std::move(data);
    }
    generation_ = job.generation;
    if (job.keep) lru_.Clear();
    // The records written since, then the swap: `log_tmp` renamed over the
    // log with every record of log_async, fsynced first (the merge's commit
    // point, format.md §7.2). A crash leaves the old log, whose records the
    // committed data holds, and log_async, which the next open copies into
    // a reset log; or the new log, which holds log_async's records already.
    KVINDEX_RETURN_IF_ERROR(Failed(log_async_->Flush()));
    const uint64_t end = log_async_->file().offset();
    if (end != next_log->end()) {
      KVINDEX_RETURN_IF_ERROR(
          Failed(next_log->CopyFrom(log_async_->file().reader(), end)));
      KVINDEX_RETURN_IF_ERROR(Failed(next_log->Sync()));
    }
    KVINDEX_RETURN_IF_ERROR(Failed(log_->ReplaceWith(*next_log, *log_async_)));
    absl::Status removed = Hook(HookPoint::kMergeAfterClear);
    if (removed.ok()) {
      removed = Failed(log_async_->Clear(generation_ + 1, /*reopen=*/false));
    }
    // From the swap on the log is the newer of the two, whatever became of
    // log_async's file: readers look there first once it has log_async's
    // generation, and an open copies from log_async only what it lacks. So
    // writes go there from now on, also after a failure here.
    log_async_.reset();
    KVINDEX_RETURN_IF_ERROR(removed);
  }
  // The runs the merge folded: no new reader opens them from here on (readers
  // still holding them keep their mappings). Best effort: the next commit or
  // open removes what is left.
  if (runs != nullptr) {
    (void)RemoveStaleRunFiles(env_.get(), StoreDir(root_), runs->manifest());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> Instance::BuildNextLog(
    int64_t generation) {
  std::optional<IndexFile::Reader> source;
  uint64_t end = 0;
  {
    WriterLock lock(&mu_);
    // The flush callback runs once if log_async holds bindings: they reach a
    // new file (the next log) now, and its buffer's reach log_async's.
    if (log_async_->table().records() > 0 && options_.flush_callback) {
      options_.flush_callback();
    }
    KVINDEX_RETURN_IF_ERROR(
        Failed(log_async_->Flush(FlushOptions{.no_callback = true})));
    source = log_async_->file().reader();
    end = log_async_->file().offset();
  }
  // From here to the swap a failure stops the writer: the data file is
  // committed, the log not reset (as for a failure under mu_).
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> next =
      IndexFile::Replacement::Create(env_.get(), Path("log"), generation);
  if (!next.ok()) return FailedUnderLock(next.status());
  absl::Status st = (*next)->CopyFrom(*source, end);
  if (st.ok()) st = (*next)->Sync();
  if (!st.ok()) return FailedUnderLock(st);
  return next;
}

}  // namespace index_internal
}  // namespace kvindex
