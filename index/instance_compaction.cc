// Instance, compactions of the tiered layout: the background thread that folds
// adjacent runs (runset/policy.h PlanCompaction) while the writer goes on and
// log merges add runs in front, and the commit that replaces the folded runs
// in the manifest. docs/design.md §15.3 tells why and how.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"
#include "datafile/merge.h"
#include "filter/key_filter.h"
#include "index/instance.h"
#include "index/stats.h"
#include "io/flush_options.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "log/log_table.h"
#include "runset/manifest.h"
#include "runset/policy.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

bool Instance::CompactionDue() const {
  return runs_ != nullptr && !closed_ && write_error_.ok() &&
         PlanCompaction(runs_->manifest().runs, options_.log_size).has_value();
}

void Instance::MaybeStartCompaction() {
  PooledThread finished;
  {
    absl::MutexLock lock(&merge_mu_);
    // A running compaction plans again when it is done.
    if (compacting_) return;
    finished = std::move(compaction_thread_);
  }
  if (finished.joinable()) finished.join();
  {
    ReaderLock lock(&mu_);
    if (!CompactionDue()) return;
  }
  absl::MutexLock lock(&merge_mu_);
  compacting_ = true;
  compaction_thread_ = PooledThread([this] { RunCompactions(); });
}

void Instance::StopCompaction() {
  cancel_compaction_ = true;
  AwaitCompactions();
  cancel_compaction_ = false;
}

void Instance::AwaitCompactions() {
  PooledThread t;
  {
    absl::MutexLock lock(&merge_mu_);
    merge_mu_.Await(absl::Condition(
        +[](bool* compacting) { return !*compacting; }, &compacting_));
    t = std::move(compaction_thread_);
  }
  if (t.joinable()) t.join();
}

void Instance::RunCompactions() {
  absl::Status result;
  while (!cancel_compaction_) {
    std::shared_ptr<const RunSet> runs;
    std::optional<CompactionPlan> plan;
    {
      ReaderLock lock(&mu_);
      if (!CompactionDue()) break;
      runs = runs_;
      plan = PlanCompaction(runs->manifest().runs, options_.log_size);
    }
    const absl::Status st = Compact(*plan, runs);
    // Its output, if still there, was not committed (see MergeBody).
    if (!st.ok()) RemoveIfPresent(Path(kCompactionOutput));
    (void)Hook(HookPoint::kCompactionEnded);
    // The runs it folded, unlinked by its commit: closing them takes long,
    // and AwaitCompactions waits for this thread.
    reaper_.Drop(std::move(runs));
    if (!st.ok()) {
      // A cancelled compaction changed nothing; another error is reported by
      // the next AwaitMerge (an error after the commit point also stops
      // writes, see CommitCompaction).
      if (!absl::IsAborted(st)) result = st;
      break;
    }
  }
  absl::MutexLock lock(&merge_mu_);
  compacting_ = false;
  if (!result.ok() && compaction_error_.ok()) compaction_error_ = result;
}

absl::Status Instance::Compact(const CompactionPlan& plan,
                               const std::shared_ptr<const RunSet>& runs) {
  const auto start = std::chrono::steady_clock::now();
  KVINDEX_RETURN_IF_ERROR(Hook(HookPoint::kCompactionBefore));
  const LogTable no_log(schema_);
  MergeRequest request;
  request.env = env_.get();
  request.path = Path(kCompactionOutput);
  request.schema = schema_;
  request.log = &no_log;
  for (size_t i = 0; i < plan.ids.size(); ++i) {
    request.older_runs.push_back(runs->runs()[plan.first + i].get());
  }
  request.generation = plan.generation;
  request.cancel = &cancel_compaction_;
  auto merged = WriteMerge(request);
  if (!merged.ok()) return merged.status();
  stats_internal::AddVerify(merged->verify_us);
  // Durable before the commit takes manifest_mu_: a log merge's commit, and
  // through it a writer with a full log, may be waiting for that mutex, and
  // the fsync of an output of gigabytes can take a good part of a second.
  // The rename in the commit then has nothing left to fsync. (A cancelled
  // compaction is not worth it: its commit removes the output.)
  if (!cancel_compaction_) {
    KVINDEX_RETURN_IF_ERROR(merged->file->Flush(
        FlushOptions{.no_callback = true, .with_fsync = true}));
  }
  KVINDEX_RETURN_IF_ERROR(CommitCompaction(plan, *std::move(merged)));
  stats_internal::AddCompaction(MicrosSince(start));
  return Hook(HookPoint::kCompactionAfter);
}

absl::Status Instance::CommitCompaction(const CompactionPlan& plan,
                                        MergeResult merged) {
  const std::string dir = StoreDir(root_);
  absl::MutexLock commit(&manifest_mu_);
  std::shared_ptr<const RunSet> current;
  absl::Status stopped;
  {
    ReaderLock lock(&mu_);
    current = runs_;
    stopped = StoppedError();
  }
  if (cancel_compaction_ || current == nullptr || !stopped.ok()) {
    if (!stopped.ok()) return stopped;
    return absl::AbortedError(
        absl::StrCat(root_, ": compaction cancelled by clear or close"));
  }
  const Manifest& m = current->manifest();
  // What the last commit retired goes before the manifest that no longer
  // names it.
  KVINDEX_RETURN_IF_ERROR(RemoveStaleRunFiles(env_.get(), dir, m));
  MergeOutput output;
  output.generation = plan.generation;
  RunSet::Runs open = current->runs();
  KVINDEX_RETURN_IF_ERROR(InstallRun(std::move(merged), kCompactionOutput,
                                     m.next_id, /*slot=*/0, &output, &open));
  const std::optional<Manifest> next =
      ManifestAfterCompaction(m, plan, output, options_.log_size);
  if (!next.has_value()) {
    return absl::InternalError(
        absl::StrCat(ManifestPath(dir),
                     ": the runs a compaction folded are no longer "
                     "listed side by side"));
  }
  // The commit point; a failure from here on may come after it, and the
  // instance then stops writing (its runs may no longer match the files).
  absl::Status st = WriteManifest(env_.get(), dir, *next);
  absl::StatusOr<std::shared_ptr<const RunSet>> committed =
      st.ok() ? RunSet::Open(env_.get(), dir, schema_, *next, open)
              : absl::StatusOr<std::shared_ptr<const RunSet>>(st);
  {
    WriterLock lock(&mu_);
    if (!committed.ok()) return Failed(committed.status());
    runs_ = *std::move(committed);
  }
  // Best effort: the next commit or open removes what is left.
  (void)RemoveStaleRunFiles(env_.get(), dir, *next);
  return absl::OkStatus();
}

}  // namespace index_internal
}  // namespace kvindex
