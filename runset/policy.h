// Which runs a merge of the tiered layout folds, and the manifests that commit
// merges, clears and the takeover of a default-layout store.
//
// Sizing is a binary counter over slots: slot k holds a run of about 2^k
// log-fulls. A merge writes the log into the smallest free slot j, folding in
// the runs of slots 0..j-1 (all full, and the newest runs). After M merges of
// equal logs the occupied slots are the binary digits of M, and each binding
// has been written at most floor(log2(M)) + 1 times: the output of a merge
// lands in a higher slot than any run it folds. Bytes written per binding grow
// with log2(store / log size) instead of the store's size.
//
// The writer does not wait for the carries: a log merge writes the log alone
// as the newest run (PlanFlush), and compactions in the background
// (PlanCompaction) fold adjacent runs whenever a run is no smaller than the
// next older one, carrying as far as the sum reaches, so that the runs return
// to the counter's shape. A binding is then written once more than under
// PlanMerge at most (when the log's run is folded soon after).
//
// Thread safety: pure functions.
#ifndef KVINDEX_RUNSET_POLICY_H_
#define KVINDEX_RUNSET_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "runset/manifest.h"

namespace kvindex {

// The output of a merge or compaction: its file is RunFileName(current.next_id)
// and its header carries `generation`. records == 0: the output is empty and
// not listed.
struct MergeOutput {
  int64_t generation = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
};

struct MergePlan {
  // The newest `fold` runs are merged with the log into the output; the
  // others stay as they are.
  size_t fold = 0;
  // The output's slot.
  uint32_t output_slot = 0;

  bool operator==(const MergePlan& o) const {
    return fold == o.fold && output_slot == o.output_slot;
  }
};

// The binary counter's step, for `runs` newest first with increasing slots (as
// a valid manifest lists them): the smallest slot no run holds, folding every
// run below it. With all kMaxRuns slots held, everything into the last slot.
MergePlan PlanMerge(const std::vector<RunEntry>& runs);

// The plan of a log merge while compactions keep the runs in shape: the log
// alone into a new run (fold 0), in the slot its `log_records` call for.
MergePlan PlanFlush(uint64_t log_records, uint64_t log_size);

// A compaction: `ids.size()` adjacent runs (at least 2), the newest of them at
// index `first` of the runs, folded into one run with the newest one's
// generation (which keeps the runs' generations decreasing).
struct CompactionPlan {
  size_t first = 0;
  std::vector<uint64_t> ids;  // newest first
  int64_t generation = 0;

  bool operator==(const CompactionPlan& o) const {
    return first == o.first && ids == o.ids && generation == o.generation;
  }
};

// The next compaction for `runs` (newest first) and logs of `log_size`, or
// nullopt when every run is smaller (by SlotForRecords) than the next older
// one. The carry starts at the oldest run no smaller than its older neighbour
// and folds older runs while the records gathered so far reach their slot.
std::optional<CompactionPlan> PlanCompaction(const std::vector<RunEntry>& runs,
                                             uint64_t log_size);

// The manifest that commits `plan` on `current` (which may have gained newer
// runs since it was planned): the folded runs, still adjacent, replaced by the
// output (id current.next_id, in the slot its records call for) where they
// stood, and retired; generation unchanged. nullopt if `current` no longer
// lists the folded runs side by side. output.records == 0: nothing replaces
// them.
std::optional<Manifest> ManifestAfterCompaction(const Manifest& current,
                                                const CompactionPlan& plan,
                                                const MergeOutput& output,
                                                uint64_t log_size);

// Everything into one run (a keep filter, or converting back to the default
// layout), in the highest slot held (0 without runs).
MergePlan PlanCompact(const std::vector<RunEntry>& runs);

// The slot of a run of `records` bindings, for logs of `log_size`: log2 of
// the log-fulls rounded to the nearest (slot k >= 1 from 0.75 * 2^k log-fulls
// on, slot 0 below 1.5), below kMaxRuns. For a data file taken over as a run,
// a log's run and a compaction's output.
uint32_t SlotForRecords(uint64_t records, uint64_t log_size);

// The manifest that commits a merge of `current` under `plan`: the output
// (unless empty) then the runs not folded; the folded ones retired; the next
// id moved past the output's; the manifest's generation the output's. The
// current manifest's retired runs are no longer named: remove them first
// (RemoveStaleRunFiles).
Manifest ManifestAfterMerge(const Manifest& current, const MergePlan& plan,
                            const MergeOutput& output);

// The manifest that commits a clear (or recovers one a crash interrupted) at
// `generation`: no runs, every run of `current` retired.
Manifest ClearedManifest(const Manifest& current, int64_t generation);

// The first manifest of a default-layout store taken over at `generation`
// (its log's): its data file, if it has records, as the oldest run (id
// kDataRunId) in the slot its size calls for.
struct DataFileRun {
  int64_t generation = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
};
Manifest ManifestOfDefaultStore(uint32_t entry_size, int64_t generation,
                                const std::optional<DataFileRun>& data,
                                uint64_t log_size);

}  // namespace kvindex

#endif  // KVINDEX_RUNSET_POLICY_H_
