// Instance, opening: creating an instance, and what a writer repairs at open
// after a crash (a merge or a clear cut short, a leftover log_async, merge
// output or filter).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"
#include "index/clear_marker.h"
#include "index/instance.h"
#include "index/recovery_rules.h"
#include "index/stats.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "runset/manifest.h"

namespace kvindex {
namespace index_internal {
namespace {

constexpr uint64_t kMaxLruBytes = uint64_t{1} << 40;

}  // namespace

absl::StatusOr<std::shared_ptr<Instance>> Instance::Create(
    const std::string& root, const Schema& schema, const Options& options) {
  KVINDEX_RETURN_IF_ERROR(schema.Validate());
  if (options.log_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(root, ": log_size must be positive"));
  }
  // The LRU's slab is allocated at open: refuse sizes no machine could hold
  // rather than fail the allocation.
  if (options.lru_size > kMaxLruBytes / schema.entry_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": lru_size ", options.lru_size, " entries of ",
        schema.entry_size(), " bytes exceeds ", kMaxLruBytes, " bytes"));
  }
  if (options.readonly && options.fresh) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": a read-only index cannot be opened with fresh = true"));
  }
  std::shared_ptr<Instance> instance(new Instance(root, schema, options));
  if (options.readonly) {
    KVINDEX_RETURN_IF_ERROR(instance->Sync());
  } else {
    KVINDEX_RETURN_IF_ERROR(instance->OpenWriter());
    if (options.layout == Layout::kSingleFile) {
      KVINDEX_RETURN_IF_ERROR(instance->ConvertToSingleFile());
    }
  }
  if (options.verify_data_on_open) {
    KVINDEX_RETURN_IF_ERROR(instance->VerifyDataFiles());
  }
  return instance;
}

absl::Status Instance::VerifyDataFiles() {
  std::vector<std::shared_ptr<const DataFile>> files;
  {
    ReaderLock lock(&mu_);
    if (runs_ != nullptr) {
      files = runs_->runs();
    } else if (data_ != nullptr) {
      files.push_back(data_);
    }
  }
  for (const std::shared_ptr<const DataFile>& file : files) {
    KVINDEX_RETURN_IF_ERROR(file->VerifySums(env_.get()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Instance::CommittedGeneration() {
  KVINDEX_ASSIGN_OR_RETURN(std::optional<Manifest> manifest,
                           ReadManifest(env_.get(), StoreDir(root_)));
  if (manifest.has_value()) return manifest->generation;
  auto file =
      IndexFile::OpenReadOnly(env_.get(), Path("data"), schema_.entry_size());
  if (!file.ok()) return file.status();
  return *file == nullptr ? -1 : (*file)->generation();
}

absl::StatusOr<std::optional<int64_t>> Instance::LogAsyncGeneration() {
  KVINDEX_ASSIGN_OR_RETURN(
      std::unique_ptr<IndexFile> file,
      IndexFile::OpenReadOnly(env_.get(), Path("log_async"),
                              schema_.entry_size()));
  if (file == nullptr) return std::optional<int64_t>();
  return std::optional<int64_t>(file->generation());
}

absl::Status Instance::OpenWriter() {
  KVINDEX_RETURN_IF_ERROR(env_->CreateDirs(StoreDir(root_)));
  KVINDEX_ASSIGN_OR_RETURN(lock_, env_->LockFile(Path("lock")));

  WriterLock l(&mu_);
  if (!options_.fresh) KVINDEX_RETURN_IF_ERROR(CheckLogNextToData());
  KVINDEX_ASSIGN_OR_RETURN(
      log_,
      Log::OpenReadWrite(env_.get(), Path("log"), schema_,
                         /*fresh=*/false, /*generation=*/0,
                         options_.flush_callback, options_.log_checksums));
  stats_internal::AddLogJournal(log_->unvouched_bytes_cut(),
                                log_->restored_bytes());
  generation_ = log_->generation();
  if (options_.fresh) {
    KVINDEX_RETURN_IF_ERROR(ClearLocked());
  } else {
    // The layout on disk decides the recovery; a manifest means tiered.
    KVINDEX_ASSIGN_OR_RETURN(std::optional<Manifest> manifest,
                             ReadManifest(env_.get(), StoreDir(root_)));
    if (manifest.has_value()) {
      KVINDEX_ASSIGN_OR_RETURN(const bool converted,
                               FinishConversionToSingleFile(*manifest));
      if (converted) manifest.reset();
    }
    if (manifest.has_value()) {
      KVINDEX_RETURN_IF_ERROR(RecoverTiered(*manifest));
    } else {
      KVINDEX_RETURN_IF_ERROR(RecoverSingleFile());
    }
    KVINDEX_RETURN_IF_ERROR(RecoverLogAsync());
    // log_async is gone by now; a journal it left is clutter, removed best
    // effort (a merge's fresh log_async would replace it anyway).
    (void)Log::RemoveOrphanJournal(env_.get(), Path("log_async"));
    // A clear marker left behind: its clear finished (or never reached its
    // commit point, and the log says which).
    KVINDEX_RETURN_IF_ERROR(RemoveClearMarker(env_.get(), StoreDir(root_)));
    // A merge output, filter or checksum sidecar, or a next log being
    // written when a crash came is never used; the next merge rewrites them
    // anyway. (A next log may hold as much as log_async did.)
    RemoveIfPresent(Path("merge"));
    RemoveIfPresent(Path("log_tmp"));
    RemoveIfPresent(Path(kCompactionOutput));
    RemoveIfPresent(DataFile::FilterPath(Path("data")) + ".tmp");
    RemoveIfPresent(DataFile::SumsPath(Path("data")) + ".tmp");
  }
  // Tiered to single-file needs a merge: Create does it once the instance is
  // open.
  if (options_.layout == Layout::kTiered && runs_ == nullptr) {
    KVINDEX_RETURN_IF_ERROR(ConvertToTiered());
  }
  return absl::OkStatus();
}

absl::Status Instance::CheckLogNextToData() {
  KVINDEX_ASSIGN_OR_RETURN(
      std::unique_ptr<IndexFile> log,
      IndexFile::OpenReadOnly(env_.get(), Path("log"), schema_.entry_size()));
  if (log != nullptr) return absl::OkStatus();
  KVINDEX_ASSIGN_OR_RETURN(const int64_t committed, CommittedGeneration());
  if (committed < 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      Path("log"),
      ": missing or shorter than a header, next to a data file or manifest "
      "(generation ",
      committed,
      "): a store's log is never removed once it has data, so its bindings "
      "since the last merge are lost or elsewhere; nothing was changed"));
}

absl::Status Instance::RecoverSingleFile() {
  // A data file one generation ahead of the log: a merge renamed its output
  // over the data file, then a crash came before it reset the log. Every
  // binding of that log went into the data file (or was filtered out), so
  // finish the commit. One behind: a clear was cut after its commit point
  // (the log reset), so the data file goes. recovery_rules.h asks for the
  // evidence of a second file before either.
  KVINDEX_ASSIGN_OR_RETURN(const int64_t data_generation,
                           CommittedGeneration());
  DataRecovery plan = DataRecovery::kKeep;
  if (data_generation >= 0) {
    KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> async_generation,
                             LogAsyncGeneration());
    KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> marker,
                             ReadClearMarker(env_.get(), StoreDir(root_)));
    KVINDEX_ASSIGN_OR_RETURN(
        plan,
        PlanDataRecovery({Path("data"), data_generation, generation_,
                          log_->table().records(), async_generation, marker}));
  }
  if (plan == DataRecovery::kFinishMergeCommit) {
    KVINDEX_RETURN_IF_ERROR(log_->Clear(data_generation, /*reopen=*/true));
    generation_ = data_generation;
  } else if (plan == DataRecovery::kRemoveCleared) {
    KVINDEX_RETURN_IF_ERROR(env_->RemoveFile(Path("data")));
    RemoveSidecars();
    return env_->SyncDir(StoreDir(root_));
  }
  KVINDEX_ASSIGN_OR_RETURN(data_,
                           DataFile::Open(env_.get(), Path("data"), schema_));
  return absl::OkStatus();
}

// Best effort: what it removes is never read again (a filter or checksum
// sidecar left behind names a generation no data file will have).
void Instance::RemoveIfPresent(const std::string& path) {
  auto exists = env_->FileExists(path);
  if (exists.ok() && *exists) (void)env_->RemoveFile(path);
}

void Instance::RemoveSidecars() {
  RemoveIfPresent(DataFile::FilterPath(Path("data")));
  RemoveIfPresent(DataFile::SumsPath(Path("data")));
}

// Copies the bindings of `from` (a log_async) into the log, then makes them
// durable there: only after that may `from` be deleted. only_missing: keys the
// log already holds keep their (newer) value.
absl::Status Instance::CopyIntoLog(const Log& from, bool only_missing) {
  Log* const log = log_.get();  // lambdas cannot show the analysis mu_ is held
  bool copied = false;
  absl::Status st;
  from.table().ForEachWithHash([&](const char* entry, uint64_t hash) {
    if (!st.ok() || (only_missing &&
                     log->Find(EntryKey(schema_, entry), hash) != nullptr)) {
      return;
    }
    st = log->AppendEntry(entry, hash);
    copied = true;
  });
  KVINDEX_RETURN_IF_ERROR(Failed(st));
  if (!copied) return absl::OkStatus();
  return Failed(log->Flush(FlushOptions{.with_fsync = true}));
}

// A log_async left by a merge that did not finish (crash, error, abort) holds
// writes that reached no other file: copy them into the log, fsync, then delete
// it. Its generation tells whether it is still wanted: the merge that created
// it with generation G+1 either never committed (log still at G) or committed
// (data and log at G+1, the copy maybe not done). Anything else is left over
// from a clear.
absl::Status Instance::RecoverLogAsync() {
  std::unique_ptr<Log> stale = std::move(log_async_);
  if (stale != nullptr) {
    // A failed merge's, still open. Its file must hold, durably, the values
    // the log is about to get: if its removal after the copy fails (or a
    // crash comes first), the next open finds it one generation ahead of the
    // log, takes it for a merge that never committed and copies it over the
    // log again, which must then bring back no older value.
    const absl::Status flushed =
        Failed(stale->Flush(FlushOptions{.with_fsync = true}));
    if (!flushed.ok()) {
      log_async_ = std::move(stale);
      return flushed;
    }
  } else {
    KVINDEX_ASSIGN_OR_RETURN(const bool exists,
                             env_->FileExists(Path("log_async")));
    if (!exists) return absl::OkStatus();
    KVINDEX_ASSIGN_OR_RETURN(
        stale,
        Log::OpenReadWrite(env_.get(), Path("log_async"), schema_,
                           /*fresh=*/false, generation_ + 1,
                           options_.flush_callback, options_.log_checksums));
    stats_internal::AddLogJournal(stale->unvouched_bytes_cut(),
                                  stale->restored_bytes());
    KVINDEX_ASSIGN_OR_RETURN(const int64_t committed, CommittedGeneration());
    KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> marker,
                             ReadClearMarker(env_.get(), StoreDir(root_)));
    KVINDEX_ASSIGN_OR_RETURN(
        const bool wanted,
        PlanLogAsyncRecovery({Path("log_async"), stale->generation(),
                              generation_, committed, marker}));
    if (!wanted) return Failed(stale->Clear(generation_, /*reopen=*/false));
  }
  // Once the merge reset the log (same generation), the log may already hold
  // the copies of these bindings, and newer values than the ones log_async's
  // file kept: only keys the log lacks still need the copy.
  const bool log_was_reset = stale->generation() <= generation_;
  if (log_was_reset) {
    // The log's records may be in the file but not durable (its fsync may have
    // failed): they only count as copies once fsynced.
    KVINDEX_RETURN_IF_ERROR(Failed(
        log_->Flush(FlushOptions{.no_callback = true, .with_fsync = true})));
  }
  KVINDEX_RETURN_IF_ERROR(CopyIntoLog(*stale, /*only_missing=*/log_was_reset));
  return Failed(stale->Clear(generation_, /*reopen=*/false));
}

}  // namespace index_internal
}  // namespace kvindex
