#include "runset/policy.h"

#include <algorithm>

namespace kvindex {

MergePlan PlanMerge(const std::vector<RunEntry>& runs) {
  MergePlan plan;
  uint32_t free = 0;  // the smallest slot no run holds
  while (plan.fold < runs.size() && runs[plan.fold].slot == free) {
    ++plan.fold;
    ++free;
  }
  if (free >= kMaxRuns) return PlanCompact(runs);
  plan.output_slot = free;
  return plan;
}

MergePlan PlanCompact(const std::vector<RunEntry>& runs) {
  MergePlan plan;
  plan.fold = runs.size();
  for (const RunEntry& run : runs) {
    plan.output_slot = std::max(plan.output_slot, run.slot);
  }
  return plan;
}

uint32_t SlotForRecords(uint64_t records, uint64_t log_size) {
  const uint64_t fulls = log_size == 0 ? records : records / log_size;
  uint32_t slot = 0;
  while (slot + 1 < kMaxRuns && (fulls >> (slot + 1)) != 0) ++slot;
  return slot;
}

Manifest ManifestAfterMerge(const Manifest& current, const MergePlan& plan,
                            const MergeOutput& output) {
  Manifest next;
  next.entry_size = current.entry_size;
  next.generation = output.generation;
  next.next_id = current.next_id + 1;
  if (output.records > 0) {
    RunEntry run;
    run.id = current.next_id;
    run.generation = output.generation;
    run.records = output.records;
    run.bytes = output.bytes;
    run.slot = plan.output_slot;
    next.runs.push_back(run);
  }
  const size_t fold = std::min(plan.fold, current.runs.size());
  next.runs.insert(next.runs.end(), current.runs.begin() + fold,
                   current.runs.end());
  for (size_t i = 0; i < fold; ++i) next.retired.push_back(current.runs[i].id);
  return next;
}

Manifest ClearedManifest(const Manifest& current, int64_t generation) {
  Manifest next;
  next.entry_size = current.entry_size;
  next.generation = generation;
  next.next_id = current.next_id;
  for (const RunEntry& run : current.runs) next.retired.push_back(run.id);
  return next;
}

Manifest ManifestOfDefaultStore(uint32_t entry_size, int64_t generation,
                                const std::optional<DataFileRun>& data,
                                uint64_t log_size) {
  Manifest m;
  m.entry_size = entry_size;
  m.generation = generation;
  m.next_id = kDataRunId + 1;
  if (data.has_value() && data->records > 0) {
    RunEntry run;
    run.id = kDataRunId;
    run.generation = data->generation;
    run.records = data->records;
    run.bytes = data->bytes;
    run.slot = SlotForRecords(data->records, log_size);
    m.runs.push_back(run);
  }
  return m;
}

}  // namespace kvindex
