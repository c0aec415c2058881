#include "runset/policy.h"

#include <algorithm>
#include <functional>

namespace kvindex {
namespace {

// `current` with its runs [first, first + count) replaced by the output (run
// current.next_id in `slot`, unless it has no records) and retired.
Manifest ReplaceRuns(const Manifest& current, size_t first, size_t count,
                     const MergeOutput& output, uint32_t slot,
                     int64_t generation) {
  Manifest next;
  next.entry_size = current.entry_size;
  next.generation = generation;
  next.next_id = current.next_id + 1;
  next.runs.assign(current.runs.begin(), current.runs.begin() + first);
  if (output.records > 0) {
    RunEntry run;
    run.id = current.next_id;
    run.generation = output.generation;
    run.records = output.records;
    run.bytes = output.bytes;
    run.slot = slot;
    next.runs.push_back(run);
  }
  next.runs.insert(next.runs.end(), current.runs.begin() + first + count,
                   current.runs.end());
  for (size_t i = first; i < first + count; ++i) {
    next.retired.push_back(current.runs[i].id);
  }
  std::sort(next.retired.begin(), next.retired.end(), std::greater<>());
  return next;
}

}  // namespace

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

MergePlan PlanFlush(uint64_t log_records, uint64_t log_size) {
  MergePlan plan;
  plan.output_slot = SlotForRecords(log_records, log_size);
  return plan;
}

std::optional<CompactionPlan> PlanCompaction(const std::vector<RunEntry>& runs,
                                             uint64_t log_size) {
  auto slot = [&](uint64_t records) {
    return SlotForRecords(records, log_size);
  };
  // The oldest run no smaller than its older neighbour starts the carry: the
  // newer runs that piled up meanwhile then carry into what it leaves, as a
  // binary counter would.
  for (size_t i = runs.size() < 2 ? 0 : runs.size() - 1; i-- > 0;) {
    if (slot(runs[i].records) < slot(runs[i + 1].records)) continue;
    CompactionPlan plan;
    plan.first = i;
    plan.generation = runs[i].generation;
    plan.ids.push_back(runs[i].id);
    uint64_t gathered = runs[i].records;
    for (size_t k = i + 1;
         k < runs.size() && slot(gathered) >= slot(runs[k].records); ++k) {
      plan.ids.push_back(runs[k].id);
      gathered += runs[k].records;
    }
    return plan;
  }
  return std::nullopt;
}

std::optional<Manifest> ManifestAfterCompaction(const Manifest& current,
                                                const CompactionPlan& plan,
                                                const MergeOutput& output,
                                                uint64_t log_size) {
  if (plan.ids.empty()) return std::nullopt;
  size_t first = 0;
  while (first < current.runs.size() && current.runs[first].id != plan.ids[0]) {
    ++first;
  }
  if (first + plan.ids.size() > current.runs.size()) return std::nullopt;
  for (size_t i = 0; i < plan.ids.size(); ++i) {
    if (current.runs[first + i].id != plan.ids[i]) return std::nullopt;
  }
  // A compaction leaves the generation as it is: the log did not change.
  return ReplaceRuns(current, first, plan.ids.size(), output,
                     SlotForRecords(output.records, log_size),
                     current.generation);
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
  // Log-fulls scaled by 4/3, so that slot k starts at 0.75 * 2^k log-fulls:
  // a run that lost up to a quarter of its records to newer bindings of the
  // same keys when it was folded stays in the slot of its inputs.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(records) * 4;
  const unsigned __int128 unit =
      static_cast<unsigned __int128>(log_size == 0 ? 1 : log_size) * 3;
  const uint64_t fulls =
      log_size == 0 ? records
                    : static_cast<uint64_t>(std::min<unsigned __int128>(
                          scaled / unit, ~uint64_t{0}));
  uint32_t slot = 0;
  while (slot + 1 < kMaxRuns && (fulls >> (slot + 1)) != 0) ++slot;
  return slot;
}

Manifest ManifestAfterMerge(const Manifest& current, const MergePlan& plan,
                            const MergeOutput& output) {
  return ReplaceRuns(current, 0, std::min(plan.fold, current.runs.size()),
                     output, plan.output_slot, output.generation);
}

Manifest ClearedManifest(const Manifest& current, int64_t generation) {
  Manifest next;
  next.entry_size = current.entry_size;
  next.generation = generation;
  next.next_id = current.next_id;
  for (const RunEntry& run : current.runs) next.retired.push_back(run.id);
  std::sort(next.retired.begin(), next.retired.end(), std::greater<>());
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
