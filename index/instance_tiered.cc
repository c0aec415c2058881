// Instance, the tiered layout (Layout::kTiered): recovery at open from the
// manifest, the merge commit that adds a run, the clear of the runs, and the
// conversions between the two layouts. docs/design.md §15 tells the whole
// protocol; runset/manifest.h the manifest's format and recovery rules.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "index/clear_marker.h"
#include "index/instance.h"
#include "index/recovery_rules.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "runset/manifest.h"
#include "runset/policy.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

absl::Status Instance::RecoverTiered(const Manifest& manifest) {
  const std::string dir = StoreDir(root_);
  // The manifest commits merges and clears with the generation the log then
  // takes: it is the log's, one ahead when a crash came between a merge's
  // commit and its log reset, or one behind when it came between a clear's
  // log reset and its manifest; recovery_rules.h asks for the evidence of a
  // second file before either.
  KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> async_generation,
                           LogAsyncGeneration());
  KVINDEX_ASSIGN_OR_RETURN(const std::optional<int64_t> marker,
                           ReadClearMarker(env_.get(), dir));
  KVINDEX_ASSIGN_OR_RETURN(
      const DataRecovery plan,
      PlanDataRecovery({ManifestPath(dir), manifest.generation, generation_,
                        log_->table().records(), async_generation, marker}));
  if (plan == DataRecovery::kFinishMergeCommit) {
    KVINDEX_RETURN_IF_ERROR(log_->Clear(manifest.generation, /*reopen=*/true));
    generation_ = manifest.generation;
  }
  KVINDEX_RETURN_IF_ERROR(RemoveStaleRunFiles(env_.get(), dir, manifest));
  Manifest committed = manifest;
  if (plan == DataRecovery::kRemoveCleared) {
    // A clear reset the log (its commit point) and a crash came before it
    // wrote its manifest: the listed runs are gone for good, and so is a
    // log_async of the merge the clear cancelled. The clear removes it before
    // its manifest, whose generation then equals the log's, as a merge
    // commit's does: a log_async left next to it would pass for one whose
    // merge committed (PlanLogAsyncRecovery) and bring cleared bindings back.
    KVINDEX_ASSIGN_OR_RETURN(const bool has_log_async,
                             env_->FileExists(Path("log_async")));
    if (has_log_async) {
      KVINDEX_RETURN_IF_ERROR(env_->RemoveFile(Path("log_async")));
      KVINDEX_RETURN_IF_ERROR(env_->SyncDir(dir));
    }
    committed = ClearedManifest(manifest, generation_);
    KVINDEX_RETURN_IF_ERROR(WriteManifest(env_.get(), dir, committed));
    KVINDEX_RETURN_IF_ERROR(RemoveStaleRunFiles(env_.get(), dir, committed));
  }
  KVINDEX_ASSIGN_OR_RETURN(runs_,
                           RunSet::Open(env_.get(), dir, schema_, committed));
  return absl::OkStatus();
}

absl::StatusOr<bool> Instance::FinishConversionToSingleFile(
    const Manifest& manifest) {
  if (manifest.runs.size() != 1 || manifest.runs[0].id == kDataRunId) {
    return false;
  }
  const std::string dir = StoreDir(root_);
  KVINDEX_ASSIGN_OR_RETURN(const bool run_exists,
                           env_->FileExists(RunPath(dir, manifest.runs[0].id)));
  if (run_exists) return false;
  KVINDEX_ASSIGN_OR_RETURN(std::shared_ptr<const DataFile> data,
                           DataFile::Open(env_.get(), Path("data"), schema_));
  // `data` must be the run: same generation and records.
  if (data == nullptr || data->generation() != manifest.runs[0].generation ||
      data->count() != manifest.runs[0].records) {
    return false;
  }
  KVINDEX_RETURN_IF_ERROR(env_->RemoveFile(ManifestPath(dir)));
  KVINDEX_RETURN_IF_ERROR(env_->SyncDir(dir));
  return true;
}

absl::Status Instance::ConvertToTiered() {
  std::optional<DataFileRun> data_run;
  if (data_ != nullptr) {
    KVINDEX_ASSIGN_OR_RETURN(
        const RunEntry entry,
        DescribeRun(env_.get(), *data_, kDataRunId, /*slot=*/0));
    data_run = DataFileRun{entry.generation, entry.records, entry.bytes};
  }
  const Manifest manifest =
      ManifestOfDefaultStore(static_cast<uint32_t>(schema_.entry_size()),
                             generation_, data_run, options_.log_size);
  const std::string dir = StoreDir(root_);
  KVINDEX_RETURN_IF_ERROR(Failed(WriteManifest(env_.get(), dir, manifest)));
  RunSet::Runs open;
  if (data_ != nullptr) open.push_back(data_);
  KVINDEX_ASSIGN_OR_RETURN(
      runs_, RunSet::Open(env_.get(), dir, schema_, manifest, open));
  data_.reset();
  return absl::OkStatus();
}

absl::Status Instance::ConvertToSingleFile() {
  {
    ReaderLock lock(&mu_);
    if (runs_ == nullptr) return absl::OkStatus();
  }
  // Everything into one run whose generation is the log's, as a single-file
  // store's data file must be.
  KVINDEX_RETURN_IF_ERROR(
      StartMerge(MergeWhen::kCompact, nullptr, /*blocking=*/true));
  AcquireMergeLock();
  absl::Status st;
  {
    WriterLock lock(&mu_);
    st = CheckWritable();
    const std::string dir = StoreDir(root_);
    const std::string data_path = Path("data");
    if (st.ok() && runs_->runs().size() > 1) {
      st = absl::InternalError(
          absl::StrCat(root_, ": converting to one data file left ",
                       runs_->runs().size(), " runs"));
    }
    if (st.ok() && runs_->runs().size() == 1 &&
        runs_->runs()[0]->path() != data_path) {
      // The rename of the run over `data` commits the conversion; its filter
      // and checksum sidecar go first (each names the data file it was built
      // for, so one found next to another data file is ignored).
      const std::string run_path = runs_->runs()[0]->path();
      for (auto sidecar : {&DataFile::FilterPath, &DataFile::SumsPath}) {
        if (!st.ok()) break;
        auto has = env_->FileExists(sidecar(run_path));
        st = has.status();
        if (st.ok() && *has) {
          st = env_->RenameFile(sidecar(run_path), sidecar(data_path));
        }
      }
      if (st.ok()) st = env_->RenameFile(run_path, data_path);
      if (st.ok()) st = env_->SyncDir(dir);
    }
    if (st.ok() && runs_->empty()) {
      RemoveIfPresent(data_path);
      RemoveSidecars();
    }
    if (st.ok()) st = env_->RemoveFile(ManifestPath(dir));
    if (st.ok()) st = env_->SyncDir(dir);
    if (st.ok()) {
      auto data = DataFile::Open(env_.get(), data_path, schema_);
      st = data.status();
      if (st.ok()) {
        data_ = *std::move(data);
        runs_.reset();
      }
    }
    st = Failed(st);
  }
  ReleaseMergeLock(nullptr);
  return st;
}

absl::Status Instance::CommitRun(const RunSet& runs, const RunSet& merged_runs,
                                 const MergePlan& plan, int64_t generation,
                                 MergeResult merged,
                                 std::shared_ptr<const RunSet>* committed) {
  const std::string dir = StoreDir(root_);
  const Manifest& current = runs.manifest();
  // Compactions only ever replace runs the merge did not fold, behind them.
  for (size_t i = 0; i < plan.fold; ++i) {
    if (i >= current.runs.size() ||
        current.runs[i].id != merged_runs.manifest().runs[i].id) {
      return absl::InternalError(absl::StrCat(
          ManifestPath(dir), ": the runs a merge folded changed under it"));
    }
  }
  // What the last commit retired goes before the manifest that no longer
  // names it.
  KVINDEX_RETURN_IF_ERROR(RemoveStaleRunFiles(env_.get(), dir, current));
  MergeOutput output;
  output.generation = generation;
  RunSet::Runs open = runs.runs();
  // The run is durable under its name before a manifest names it; a crash
  // before the manifest leaves it as the output of an uncommitted merge,
  // which the next open removes.
  KVINDEX_RETURN_IF_ERROR(InstallRun(std::move(merged), "merge",
                                     current.next_id, plan.output_slot, &output,
                                     &open));
  const Manifest next = ManifestAfterMerge(current, plan, output);
  // The commit point: from here on the runs the merge folded are retired.
  KVINDEX_RETURN_IF_ERROR(WriteManifest(env_.get(), dir, next));
  KVINDEX_ASSIGN_OR_RETURN(*committed,
                           RunSet::Open(env_.get(), dir, schema_, next, open));
  return absl::OkStatus();
}

absl::Status Instance::InstallRun(MergeResult merged,
                                  absl::string_view output_name, uint64_t id,
                                  uint32_t slot, MergeOutput* output,
                                  RunSet::Runs* open) {
  output->records = merged.entries;
  std::unique_ptr<IndexFile> file = std::move(merged.file);
  if (merged.entries == 0) {
    (void)file->Close();
    return env_->RemoveFile(Path(output_name));
  }
  const std::string run_path = RunPath(StoreDir(root_), id);
  KVINDEX_RETURN_IF_ERROR(file->RenameTo(run_path));
  // An accelerator only: a run without its filter is searched without it.
  if (!merged.filter.empty()) {
    (void)KeyFilter::Write(env_.get(), DataFile::FilterPath(run_path),
                           merged.filter);
  }
  // Nor its checksums: a run without them is read unchecked.
  if (!merged.sums.empty()) {
    (void)DataSums::Write(env_.get(), DataFile::SumsPath(run_path),
                          merged.sums);
  }
  KVINDEX_ASSIGN_OR_RETURN(
      std::shared_ptr<const DataFile> run,
      DataFile::FromFile(std::move(file), schema_, env_.get()));
  KVINDEX_ASSIGN_OR_RETURN(const RunEntry entry,
                           DescribeRun(env_.get(), *run, id, slot));
  output->bytes = entry.bytes;
  open->push_back(std::move(run));
  return absl::OkStatus();
}

absl::Status Instance::ClearRuns() {
  const std::string dir = StoreDir(root_);
  KVINDEX_ASSIGN_OR_RETURN(std::optional<Manifest> current,
                           ReadManifest(env_.get(), dir));
  if (!current.has_value()) return absl::OkStatus();
  KVINDEX_RETURN_IF_ERROR(RemoveStaleRunFiles(env_.get(), dir, *current));
  const Manifest cleared = ClearedManifest(*current, generation_);
  KVINDEX_RETURN_IF_ERROR(WriteManifest(env_.get(), dir, cleared));
  KVINDEX_ASSIGN_OR_RETURN(runs_,
                           RunSet::Open(env_.get(), dir, schema_, cleared));
  return RemoveStaleRunFiles(env_.get(), dir, cleared);
}

}  // namespace index_internal
}  // namespace kvindex
