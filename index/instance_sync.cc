// Instance, read-only side: Sync follows the files the writer flushed.
//
// A reader follows the writer's files by identity (a file renamed over or
// deleted is reopened from its path) and by generation. log_async is looked at
// before log: at the end of a merge the writer resets the log before deleting
// log_async, so in this order a binding may be seen twice but never missed; the
// lookup order (LogsInOrder) then prefers whichever log is newer. A sync that
// finds the log reset reads log_async again after it, then the rest of the
// log: what it read of log_async before may predate a clear.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"
#include "index/clear_marker.h"
#include "index/instance.h"
#include "index/recovery_rules.h"
#include "index/stats.h"
#include "io/env.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "runset/manifest.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

// What one sync found in the files, applied to the instance at its end.
struct Instance::SyncUpdate {
  // log_async: either replaced by `new_async` (which may be null: no
  // log_async any more), or kept with `async_records` appended.
  bool replace_async = false;
  std::unique_ptr<Log> new_async;
  std::string async_records;
  // log: either replaced by `new_log` with its data file `new_data` (a reset
  // by a merge or a clear), or kept with `log_records` appended.
  std::unique_ptr<Log> new_log;
  std::shared_ptr<const DataFile> new_data;
  // With `new_log`: the runs of a tiered store (then new_data is null), or
  // null for a single-file one.
  std::shared_ptr<const RunSet> new_runs;
  std::string log_records;
  // Set (to the commit's generation) instead of `new_log` when a merge's
  // output is committed and the log it froze not yet reset: the instance then
  // shows no log, the new data file or runs, and `new_async`.
  std::optional<int64_t> log_superseded_by;
  // The generation of the merge commit (data file or manifest) the instance
  // shows after this sync: the one it showed, or the one FollowLog opened
  // (-1 for none, or one a clear left and that is not shown).
  int64_t shown_commit = -1;
  // The runs in use when the sync started, shared by the new set.
  std::shared_ptr<const RunSet> previous_runs;
};

absl::Status Instance::Sync() {
  KVINDEX_RETURN_IF_ERROR(CheckSyncAllowed());
  const auto start = std::chrono::steady_clock::now();
  absl::MutexLock sync_lock(&sync_mu_);

  // Only a sync (under sync_mu_) changes the logs, the data file and the
  // generation of a read-only instance, so the steps read them without mu_;
  // PublishSync takes mu_ to change them.
  Log* log;
  Log* log_async;
  int64_t generation;
  {
    ReaderLock lock(&mu_);
    log = log_.get();
    log_async = log_async_.get();
    generation = generation_;
  }
  SyncUpdate update;
  {
    ReaderLock lock(&mu_);
    update.previous_runs = runs_;
    update.shown_commit = runs_ != nullptr   ? runs_->manifest().generation
                          : data_ != nullptr ? data_->generation()
                                             : -1;
  }
  KVINDEX_RETURN_IF_ERROR(FollowLogAsync(log_async, update));
  KVINDEX_RETURN_IF_ERROR(FollowLog(log, log_async, generation, update));
  KVINDEX_RETURN_IF_ERROR(DropObsoleteLogAsync(log_async, log, update));
  PublishSync(std::move(update));
  stats_internal::AddSync(MicrosSince(start));
  return absl::OkStatus();
}

absl::Status Instance::CheckSyncAllowed() const {
  ReaderLock lock(&mu_);
  KVINDEX_RETURN_IF_ERROR(CheckOpen());
  if (!options_.readonly) {
    return absl::FailedPreconditionError(
        absl::StrCat(root_, ": sync is only for read-only instances"));
  }
  return absl::OkStatus();
}

// log_async: read what was appended to the file its path names, or reopen the
// path if that is another file now.
absl::Status Instance::FollowLogAsync(Log* current, SyncUpdate& update) {
  bool still_current = false;
  if (current != nullptr) {
    KVINDEX_ASSIGN_OR_RETURN(still_current, LogAsyncStillCurrent(*current));
  }
  if (still_current) {
    KVINDEX_ASSIGN_OR_RETURN(update.async_records, current->ReadPending());
    return absl::OkStatus();
  }
  (void)Hook(HookPoint::kSyncReloadLogAsync);
  KVINDEX_ASSIGN_OR_RETURN(update.new_async, OpenLive("log_async"));
  update.replace_async = current != nullptr || update.new_async != nullptr;
  return absl::OkStatus();
}

absl::StatusOr<bool> Instance::LogAsyncStillCurrent(Log& log_async) {
  KVINDEX_ASSIGN_OR_RETURN(const bool live, IsLive(log_async, "log_async"));
  if (!live) return false;
  const uint64_t known = log_async.file().offset();
  KVINDEX_RETURN_IF_ERROR(log_async.file().ReadHeader().status());
  return log_async.file().offset() >= known;
}

// log: a new file (reset by a merge or a clear) or a new generation means a
// new data file too; otherwise read what was appended.
absl::Status Instance::FollowLog(Log* current, Log* current_async,
                                 int64_t generation, SyncUpdate& update) {
  (void)Hook(HookPoint::kSyncBeforeOffsetRead);
  bool reload = current == nullptr;
  if (!reload) {
    KVINDEX_ASSIGN_OR_RETURN(const bool live, IsLive(*current, "log"));
    KVINDEX_ASSIGN_OR_RETURN(const IndexFile::Header header,
                             current->file().ReadHeader());
    reload = !live || header.generation != generation;
  }
  (void)Hook(HookPoint::kSyncAfterOffsetRead);
  if (!reload) {
    KVINDEX_ASSIGN_OR_RETURN(update.log_records, current->ReadPending());
    return absl::OkStatus();
  }
  // The log is read before the data file (or manifest), so a merge may
  // commit in between. Its output holds the bindings of the log it froze as
  // the merge left them (a filter's merge drops some): that log must not
  // show any more, or it would bring back what the filter removed. Until the
  // writer resets the log (or, if it died first, until the next writer
  // finishes the commit), the state is the merge's output under that merge's
  // log_async. If the log was reset meanwhile (by that merge or a clear),
  // start over.
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMaxSyncAttempts) {
      return absl::UnavailableError(absl::StrCat(
          root_,
          ": the writer committed merges or clears throughout this sync (",
          kMaxSyncAttempts, " attempts); sync again"));
    }
    KVINDEX_ASSIGN_OR_RETURN(update.new_log, OpenLive("log"));
    if (update.new_log == nullptr && current != nullptr) {
      return absl::DataLossError(
          absl::StrCat(Path("log"), ": log file disappeared"));
    }
    if (update.new_log == nullptr) return CheckLogNextToData();
    (void)Hook(HookPoint::kSyncLogOpened);
    // A manifest means a tiered store, whose runs replace the data file; the
    // manifest read is the one committed for this log or a later one, so the
    // runs are one consistent set.
    KVINDEX_ASSIGN_OR_RETURN(
        update.new_runs, OpenRuns(*update.new_log, update.previous_runs.get()));
    update.new_data.reset();
    if (update.new_runs == nullptr) {
      KVINDEX_ASSIGN_OR_RETURN(update.new_data, OpenData(*update.new_log));
    }
    const int64_t committed =
        update.new_runs != nullptr   ? update.new_runs->manifest().generation
        : update.new_data != nullptr ? update.new_data->generation()
                                     : -1;
    update.shown_commit = committed;
    const int64_t read_generation = update.new_log->generation();
    if (committed <= read_generation) {
      // log_async as read before the log may be older than this log: a
      // clear that cancelled a merge resets the log to the generation that
      // merge gave its log_async, and nothing in the headers tells that
      // log_async from a committed merge's. Read it again after the log.
      KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<Log> async,
                               OpenLive("log_async"));
      // Then the log as it is now, at least as new as that log_async: one a
      // merge commit removed was copied into the log first.
      Log& log = *update.new_log;
      KVINDEX_ASSIGN_OR_RETURN(const IndexFile::Header header,
                               log.file().ReadHeader());
      // A clear may have reset the log since it was opened, and removed the
      // data file or runs that went with it: the log must still be the one
      // its path names.
      KVINDEX_ASSIGN_OR_RETURN(const bool live, IsLive(log, "log"));
      const uint64_t known = log.table().records() * schema_.entry_size();
      if (!live || header.generation != read_generation ||
          log.file().offset() < known) {
        continue;
      }
      KVINDEX_ASSIGN_OR_RETURN(const std::string pending, log.ReadPending());
      log.AddRecords(pending);
      update.replace_async = current_async != nullptr || async != nullptr;
      update.new_async = std::move(async);
      break;
    }
    // log_async before the log's check: if the log is still the frozen one
    // after, this log_async is the one the commit goes with (or there is
    // none, and the files are damaged).
    KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<Log> async, OpenLive("log_async"));
    KVINDEX_ASSIGN_OR_RETURN(const bool live, IsLive(*update.new_log, "log"));
    if (!live) continue;
    KVINDEX_RETURN_IF_ERROR(
        PlanDataRecovery(
            {update.new_runs != nullptr ? ManifestPath(StoreDir(root_))
                                        : Path("data"),
             committed, read_generation, update.new_log->table().records(),
             async != nullptr ? std::optional<int64_t>(async->generation())
                              : std::nullopt,
             std::nullopt})
            .status());
    // kFinishMergeCommit, the only plan for a newer commit.
    update.new_log.reset();
    update.log_superseded_by = committed;
    update.new_async = std::move(async);
    update.replace_async = true;
    break;
  }
  if (current != nullptr) (void)Hook(HookPoint::kSyncReloadLog);
  return absl::OkStatus();
}

// A log_async as old as the log is only wanted in the middle of a merge commit
// (recovery_rules.h's PlanLogAsyncRecovery): after a clear it must not show.
// Judged against the commit this sync shows, not the files as they are now:
// the writer may have committed further merges since this sync read them.
absl::Status Instance::DropObsoleteLogAsync(Log* current_async,
                                            const Log* current_log,
                                            SyncUpdate& update) {
  if (update.log_superseded_by.has_value()) return absl::OkStatus();
  const Log* async_now =
      update.replace_async ? update.new_async.get() : current_async;
  const Log* log_now =
      update.new_log != nullptr ? update.new_log.get() : current_log;
  if (async_now == nullptr || log_now == nullptr ||
      async_now->generation() > log_now->generation()) {
    return absl::OkStatus();
  }
  // A state no merge or clear leaves may be one this sync caught half-way,
  // and showing log_async is not destructive either way: it is not shown.
  const bool wanted =
      PlanLogAsyncRecovery({Path("log_async"), async_now->generation(),
                            log_now->generation(), update.shown_commit})
          .value_or(false);
  if (!wanted) {
    update.new_async.reset();
    update.replace_async = current_async != nullptr;
  }
  return absl::OkStatus();
}

void Instance::PublishSync(SyncUpdate update) {
  // What the instance read before: after a merge, the writer has unlinked it,
  // and its last close may take seconds; not under mu_, which finds wait for.
  std::shared_ptr<const DataFile> old_data;
  std::shared_ptr<const RunSet> old_runs;
  {
    WriterLock lock(&mu_);
    const bool reloaded =
        update.new_log != nullptr || update.log_superseded_by.has_value();
    const bool changed = update.replace_async || reloaded ||
                         !update.async_records.empty() ||
                         !update.log_records.empty();
    if (update.replace_async) {
      log_async_ = std::move(update.new_async);
    } else if (log_async_ != nullptr) {
      log_async_->AddRecords(update.async_records);
    }
    if (reloaded) {
      generation_ = update.new_log != nullptr ? update.new_log->generation()
                                              : *update.log_superseded_by;
      log_ = std::move(update.new_log);
      old_data = std::exchange(data_, std::move(update.new_data));
      old_runs = std::exchange(runs_, std::move(update.new_runs));
    } else if (log_ != nullptr) {
      log_->AddRecords(update.log_records);
    }
    // A merge creates log_async with the generation it will produce: until the
    // log reaches that generation, log_async holds the newer bindings.
    async_first_ = log_async_ != nullptr && log_ != nullptr &&
                   log_async_->generation() > log_->generation();
    // Any new binding may shadow a cached one.
    if (changed) lru_.Clear();
  }
  reaper_.Drop(std::move(old_data));
  reaper_.Drop(std::move(old_runs));
}

absl::StatusOr<std::unique_ptr<Log>> Instance::OpenLive(
    absl::string_view name) {
  const std::string path = Path(name);
  // Each retry means the writer replaced the file between our open and our
  // check: a handful is already unlikely.
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto log = Log::OpenReadOnly(env_.get(), path, schema_);
    if (!log.ok() || *log == nullptr) return log;
    stats_internal::AddLogJournal((*log)->unvouched_bytes_cut(), 0);
    KVINDEX_ASSIGN_OR_RETURN(const bool live, IsLive(**log, name));
    if (live) return log;
  }
  return absl::UnavailableError(
      absl::StrCat(path, ": replaced continuously while opening it"));
}

absl::StatusOr<bool> Instance::IsLive(const Log& log, absl::string_view name) {
  auto at_path = env_->PathId(Path(name));
  if (absl::IsNotFound(at_path.status())) return false;
  if (!at_path.ok()) return at_path.status();
  KVINDEX_ASSIGN_OR_RETURN(const FileId opened, log.file().Id());
  return *at_path == opened;
}

// A data file older than the log is what a clear leaves before it removes it
// (not shown), or damage (recovery_rules.h). A newer one is a merge committing
// while this sync reads the files: shown, the next sync catches up.
absl::StatusOr<std::shared_ptr<const DataFile>> Instance::OpenData(
    const Log& log) {
  // The marker before the data file: a clear removes the data file before its
  // marker, so a data file seen after a marker was gone is not the clear's.
  KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> marker,
                           ReadClearMarker(env_.get(), StoreDir(root_)));
  KVINDEX_ASSIGN_OR_RETURN(std::shared_ptr<const DataFile> data,
                           DataFile::Open(env_.get(), Path("data"), schema_));
  if (data == nullptr || data->generation() >= log.generation()) return data;
  KVINDEX_ASSIGN_OR_RETURN(
      const DataRecovery plan,
      PlanDataRecovery({Path("data"), data->generation(), log.generation(),
                        log.table().records(), std::nullopt, marker}));
  (void)plan;  // kRemoveCleared: the only plan for an older data file
  return std::shared_ptr<const DataFile>();
}

// As OpenData: a manifest older than the log is what a clear leaves before it
// writes its cleared manifest (its runs are not shown), or damage.
absl::StatusOr<std::shared_ptr<const RunSet>> Instance::OpenRuns(
    const Log& log, const RunSet* previous) {
  KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> marker,
                           ReadClearMarker(env_.get(), StoreDir(root_)));
  KVINDEX_ASSIGN_OR_RETURN(std::shared_ptr<const RunSet> runs,
                           RunSet::Load(env_.get(), StoreDir(root_), schema_,
                                        log.generation(), previous));
  if (runs == nullptr || runs->manifest().generation >= log.generation()) {
    return runs;
  }
  KVINDEX_ASSIGN_OR_RETURN(
      const DataRecovery plan,
      PlanDataRecovery({ManifestPath(StoreDir(root_)),
                        runs->manifest().generation, log.generation(),
                        log.table().records(), std::nullopt, marker}));
  (void)plan;  // kRemoveCleared: RunSet::Load shows no run
  return runs;
}

}  // namespace index_internal
}  // namespace kvindex
