#include "runset/policy.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "runset/manifest.h"

namespace kvindex {
namespace {

constexpr uint32_t kEntrySize = 16;
constexpr uint64_t kLogSize = 1000;

RunEntry RunInSlot(uint64_t id, uint32_t slot) {
  RunEntry r;
  r.id = id;
  r.slot = slot;
  return r;
}

std::vector<RunEntry> RunsInSlots(const std::vector<uint32_t>& slots) {
  std::vector<RunEntry> runs;
  uint64_t id = 100;
  for (const uint32_t slot : slots) runs.push_back(RunInSlot(id--, slot));
  return runs;
}

MergePlan Plan(size_t fold, uint32_t slot) {
  MergePlan p;
  p.fold = fold;
  p.output_slot = slot;
  return p;
}

// A merge output of `records` records (the bytes a valid manifest accepts).
MergeOutput Output(int64_t generation, uint64_t records) {
  MergeOutput out;
  out.generation = generation;
  out.records = records;
  out.bytes = 32 + 8 + records * kEntrySize;
  return out;
}

TEST(Policy, PlanMergeTakesTheSmallestFreeSlot) {
  EXPECT_EQ(PlanMerge({}), Plan(0, 0));
  EXPECT_EQ(PlanMerge(RunsInSlots({0})), Plan(1, 1));
  EXPECT_EQ(PlanMerge(RunsInSlots({1})), Plan(0, 0));
  EXPECT_EQ(PlanMerge(RunsInSlots({0, 1, 3})), Plan(2, 2));
  EXPECT_EQ(PlanMerge(RunsInSlots({0, 1, 2})), Plan(3, 3));
  EXPECT_EQ(PlanMerge(RunsInSlots({2, 5})), Plan(0, 0));
  std::vector<uint32_t> all;
  for (uint32_t s = 0; s < kMaxRuns; ++s) all.push_back(s);
  EXPECT_EQ(PlanMerge(RunsInSlots(all)), Plan(kMaxRuns, kMaxRuns - 1));
}

TEST(Policy, PlanCompactFoldsEverything) {
  EXPECT_EQ(PlanCompact({}), Plan(0, 0));
  EXPECT_EQ(PlanCompact(RunsInSlots({0, 2, 7})), Plan(3, 7));
  EXPECT_EQ(PlanCompact(RunsInSlots({4})), Plan(1, 4));
}

TEST(Policy, SlotForRecordsIsAboutLog2OfTheLogFulls) {
  EXPECT_EQ(SlotForRecords(1, kLogSize), 0u);
  EXPECT_EQ(SlotForRecords(1499, kLogSize), 0u);
  EXPECT_EQ(SlotForRecords(1500, kLogSize), 1u);
  EXPECT_EQ(SlotForRecords(2999, kLogSize), 1u);
  EXPECT_EQ(SlotForRecords(3000, kLogSize), 2u);
  EXPECT_EQ(SlotForRecords(6 * kLogSize, kLogSize), 3u);
  EXPECT_EQ(SlotForRecords(8 * kLogSize, kLogSize), 3u);
  EXPECT_EQ(SlotForRecords(~uint64_t{0}, 1), kMaxRuns - 1);
  EXPECT_EQ(SlotForRecords(5, 0), 2u);
}

// Merges of equal logs, simulated: the slots held are the binary digits of
// the number of merges, every manifest is valid, the folded runs are retired,
// and no binding is written more than floor(log2(M)) + 1 <= ceil(log2(M)) + 1
// times.
TEST(Policy, EqualMergesCountInBinaryAndRewriteLogarithmically) {
  Manifest m;
  m.entry_size = kEntrySize;
  // What each run holds: the merges whose logs it folded.
  std::map<uint64_t, std::vector<int>> batches_of;
  std::map<int, int>
      writes;  // per merge's log: times its bindings were written
  constexpr int kMerges = 300;
  for (int merge = 1; merge <= kMerges; ++merge) {
    const MergePlan plan = PlanMerge(m.runs);
    std::vector<int> output = {merge};
    uint64_t records = kLogSize;
    std::set<uint64_t> folded;
    for (size_t i = 0; i < plan.fold; ++i) {
      const RunEntry& run = m.runs[i];
      folded.insert(run.id);
      records += run.records;
      for (const int b : batches_of[run.id]) output.push_back(b);
      batches_of.erase(run.id);
    }
    for (const int b : output) ++writes[b];
    const uint64_t id = m.next_id;
    batches_of[id] = output;
    m = ManifestAfterMerge(m, plan, Output(m.generation + 1, records));
    ASSERT_TRUE(CheckManifest(m, "sim").ok())
        << CheckManifest(m, "sim") << " after merge " << merge;
    EXPECT_EQ(std::set<uint64_t>(m.retired.begin(), m.retired.end()), folded);
    ASSERT_FALSE(m.runs.empty());
    EXPECT_EQ(m.runs.front().id, id);
    uint64_t slots = 0;
    uint64_t held = 0;
    for (const RunEntry& run : m.runs) {
      slots |= uint64_t{1} << run.slot;
      held += run.records;
      // Slot k holds 2^k log-fulls exactly, with equal logs.
      EXPECT_EQ(run.records, kLogSize << run.slot);
    }
    ASSERT_EQ(slots, static_cast<uint64_t>(merge)) << "after merge " << merge;
    EXPECT_EQ(held, kLogSize * merge);
  }
  int ceil_log2 = 0;
  while ((1 << ceil_log2) < kMerges) ++ceil_log2;
  int most = 0;
  for (const auto& [batch, n] : writes) most = std::max(most, n);
  EXPECT_LE(most, ceil_log2 + 1);
  // The first log reached the highest slot: the bound is tight.
  EXPECT_EQ(writes[1], 9);  // 256 <= 300 < 512: slot 8, written 9 times
}

// A run of `records` records (generation and bytes left to the caller).
RunEntry RunOf(uint64_t id, int64_t generation, uint64_t records) {
  RunEntry r;
  r.id = id;
  r.generation = generation;
  r.records = records;
  r.bytes = 32 + 8 + records * kEntrySize;
  r.slot = SlotForRecords(records, kLogSize);
  return r;
}

TEST(Policy, PlanFlushWritesTheLogAloneInItsSlot) {
  EXPECT_EQ(PlanFlush(kLogSize, kLogSize), Plan(0, 0));
  EXPECT_EQ(PlanFlush(10, kLogSize), Plan(0, 0));
  // An overcommitted log of four log-fulls.
  EXPECT_EQ(PlanFlush(4 * kLogSize, kLogSize), Plan(0, 2));
}

TEST(Policy, PlanCompactionCarriesFromTheNewestRunNoSmallerThanItsNeighbour) {
  // Each run smaller than the next older: nothing to do.
  EXPECT_FALSE(PlanCompaction({}, kLogSize).has_value());
  EXPECT_FALSE(PlanCompaction({RunOf(9, 9, kLogSize)}, kLogSize).has_value());
  EXPECT_FALSE(PlanCompaction({RunOf(9, 9, kLogSize), RunOf(8, 8, 2 * kLogSize),
                               RunOf(7, 7, 8 * kLogSize)},
                              kLogSize)
                   .has_value());
  // Slots 0, 0, 1, 2, 4: the carry folds 0, 0, 1 and 2 into slot 3, and stops
  // before slot 4.
  std::vector<RunEntry> runs = {
      RunOf(20, 9, kLogSize), RunOf(19, 8, kLogSize), RunOf(3, 7, 2 * kLogSize),
      RunOf(12, 6, 4 * kLogSize), RunOf(1, 5, 16 * kLogSize)};
  std::optional<CompactionPlan> plan = PlanCompaction(runs, kLogSize);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->first, 0u);
  EXPECT_EQ(plan->ids, (std::vector<uint64_t>{20, 19, 3, 12}));
  EXPECT_EQ(plan->generation, 9);
  // A newer run in order is left alone: the carry starts behind it.
  runs = {RunOf(30, 12, kLogSize), RunOf(29, 11, 4 * kLogSize),
          RunOf(28, 10, 4 * kLogSize), RunOf(27, 9, 32 * kLogSize)};
  plan = PlanCompaction(runs, kLogSize);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->first, 1u);
  EXPECT_EQ(plan->ids, (std::vector<uint64_t>{29, 28}));
  EXPECT_EQ(plan->generation, 11);
  // A newer run bigger than an older one (out of shape) is folded into it.
  runs = {RunOf(5, 3, 4 * kLogSize), RunOf(4, 2, kLogSize)};
  plan = PlanCompaction(runs, kLogSize);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->ids, (std::vector<uint64_t>{5, 4}));
}

TEST(Policy, ManifestAfterCompactionReplacesTheFoldedRunsWhereTheyStood) {
  Manifest m;
  m.entry_size = kEntrySize;
  m.generation = 12;
  m.next_id = 31;
  m.retired = {25};
  m.runs = {RunOf(30, 12, kLogSize), RunOf(29, 11, 4 * kLogSize),
            RunOf(28, 10, 4 * kLogSize), RunOf(27, 9, 32 * kLogSize)};
  ASSERT_TRUE(CheckManifest(m, "m").ok()) << CheckManifest(m, "m");
  const std::optional<CompactionPlan> plan = PlanCompaction(m.runs, kLogSize);
  ASSERT_TRUE(plan.has_value());
  // A log merge committed meanwhile: a newer run in front.
  Manifest current = ManifestAfterMerge(m, PlanFlush(kLogSize, kLogSize),
                                        Output(13, kLogSize));
  ASSERT_TRUE(CheckManifest(current, "current").ok());
  const std::optional<Manifest> next = ManifestAfterCompaction(
      current, *plan, Output(plan->generation, 7 * kLogSize), kLogSize);
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(CheckManifest(*next, "next").ok())
      << CheckManifest(*next, "next");
  EXPECT_EQ(next->generation, current.generation);
  EXPECT_EQ(next->next_id, current.next_id + 1);
  ASSERT_EQ(next->runs.size(), 4u);
  EXPECT_EQ(next->runs[0], current.runs[0]);
  EXPECT_EQ(next->runs[1], current.runs[1]);
  EXPECT_EQ(next->runs[2].id, current.next_id);
  EXPECT_EQ(next->runs[2].generation, 11);
  EXPECT_EQ(next->runs[2].records, 7 * kLogSize);
  EXPECT_EQ(next->runs[2].slot, SlotForRecords(7 * kLogSize, kLogSize));
  EXPECT_EQ(next->runs[3], current.runs[4]);
  EXPECT_EQ(next->retired, (std::vector<uint64_t>{29, 28}));
  // Runs no longer side by side (or gone): no manifest.
  Manifest split = current;
  std::swap(split.runs[2], split.runs[3]);
  EXPECT_FALSE(ManifestAfterCompaction(split, *plan, Output(11, 10), kLogSize)
                   .has_value());
  Manifest gone = current;
  gone.runs.erase(gone.runs.begin() + 3);
  EXPECT_FALSE(ManifestAfterCompaction(gone, *plan, Output(11, 10), kLogSize)
                   .has_value());
  // An empty output (every binding filtered) leaves nothing in their place.
  const std::optional<Manifest> empty =
      ManifestAfterCompaction(current, *plan, Output(11, 0), kLogSize);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->runs.size(), 3u);
  EXPECT_TRUE(CheckManifest(*empty, "empty").ok());
}

// Log merges of equal logs, each followed by the compactions it calls for
// (the writer's view when compactions keep up): every manifest is valid, the
// runs end in the binary counter's shape (2^k logs for each digit k of M,
// smallest first), and no binding is written more than ceil(log2(M)) + 2 times
// (one more than PlanMerge: the log's own run).
TEST(Policy, FlushesAndCompactionsCountInBinaryAndRewriteLogarithmically) {
  Manifest m;
  m.entry_size = kEntrySize;
  std::map<uint64_t, std::vector<int>> batches_of;
  std::map<int, int> writes;
  constexpr int kMerges = 300;
  for (int merge = 1; merge <= kMerges; ++merge) {
    batches_of[m.next_id] = {merge};
    ++writes[merge];
    m = ManifestAfterMerge(m, PlanFlush(kLogSize, kLogSize),
                           Output(m.generation + 1, kLogSize));
    ASSERT_TRUE(CheckManifest(m, "sim").ok()) << CheckManifest(m, "sim");
    while (std::optional<CompactionPlan> plan =
               PlanCompaction(m.runs, kLogSize)) {
      std::vector<int> output;
      for (const uint64_t id : plan->ids) {
        for (const int b : batches_of[id]) output.push_back(b);
        batches_of.erase(id);
      }
      const uint64_t records = kLogSize * output.size();
      for (const int b : output) ++writes[b];
      batches_of[m.next_id] = output;
      const std::optional<Manifest> next = ManifestAfterCompaction(
          m, *plan, Output(plan->generation, records), kLogSize);
      ASSERT_TRUE(next.has_value());
      m = *next;
      ASSERT_TRUE(CheckManifest(m, "sim").ok())
          << CheckManifest(m, "sim") << " after merge " << merge;
    }
    uint64_t slots = 0;
    uint64_t previous = 0;
    for (const RunEntry& run : m.runs) {
      EXPECT_EQ(run.records, kLogSize << run.slot);
      EXPECT_GT(run.records, previous);
      previous = run.records;
      slots |= uint64_t{1} << run.slot;
    }
    ASSERT_EQ(slots, static_cast<uint64_t>(merge)) << "after merge " << merge;
  }
  int ceil_log2 = 0;
  while ((1 << ceil_log2) < kMerges) ++ceil_log2;
  int most = 0;
  for (const auto& [batch, n] : writes) most = std::max(most, n);
  EXPECT_LE(most, ceil_log2 + 2);
  // The first log reached slot 8 through one carry per slot it passed.
  EXPECT_GE(writes[1], 9);
}

TEST(Policy, AnEmptyOutputIsNotListedButItsInputsAreRetired) {
  Manifest m;
  m.entry_size = kEntrySize;
  m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(1, 10));
  m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(2, 20));
  ASSERT_EQ(m.runs.size(), 1u);
  const uint64_t survivor = m.runs[0].id;
  const Manifest filtered =
      ManifestAfterMerge(m, PlanCompact(m.runs), Output(3, 0));
  EXPECT_TRUE(CheckManifest(filtered, "m").ok());
  EXPECT_TRUE(filtered.runs.empty());
  EXPECT_EQ(filtered.retired, std::vector<uint64_t>{survivor});
  EXPECT_EQ(filtered.generation, 3);
  EXPECT_EQ(filtered.next_id, m.next_id + 1);
}

TEST(Policy, CompactionLeavesOneRunInTheHighestSlot) {
  Manifest m;
  m.entry_size = kEntrySize;
  for (int merge = 1; merge <= 7; ++merge) {
    m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(merge, 10));
  }
  ASSERT_EQ(m.runs.size(), 3u);  // slots 0, 1, 2
  std::vector<uint64_t> ids;
  for (const RunEntry& run : m.runs) ids.push_back(run.id);
  const Manifest compact =
      ManifestAfterMerge(m, PlanCompact(m.runs), Output(8, 25));
  ASSERT_TRUE(CheckManifest(compact, "m").ok());
  ASSERT_EQ(compact.runs.size(), 1u);
  EXPECT_EQ(compact.runs[0].slot, 2u);
  EXPECT_EQ(compact.runs[0].records, 25u);
  EXPECT_EQ(compact.retired, ids);
  // The counter goes on from there.
  const MergePlan next = PlanMerge(compact.runs);
  EXPECT_EQ(next, Plan(0, 0));
}

TEST(Policy, ClearedManifestRetiresEveryRun) {
  Manifest m;
  m.entry_size = kEntrySize;
  for (int merge = 1; merge <= 5; ++merge) {
    m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(merge, 10));
  }
  const Manifest cleared = ClearedManifest(m, 6);
  ASSERT_TRUE(CheckManifest(cleared, "m").ok());
  EXPECT_TRUE(cleared.runs.empty());
  EXPECT_EQ(cleared.retired.size(), m.runs.size());
  EXPECT_EQ(cleared.next_id, m.next_id);
  EXPECT_EQ(cleared.generation, 6);
}

TEST(Policy, ADefaultStoreBecomesItsDataFileAsTheOldestRun) {
  DataFileRun data;
  data.generation = 4;
  data.records = 5 * kLogSize;
  data.bytes = 32 + 64 + data.records * kEntrySize;
  Manifest m = ManifestOfDefaultStore(kEntrySize, 7, data, kLogSize);
  ASSERT_TRUE(CheckManifest(m, "m").ok()) << CheckManifest(m, "m");
  ASSERT_EQ(m.runs.size(), 1u);
  EXPECT_EQ(m.runs[0].id, kDataRunId);
  EXPECT_EQ(m.runs[0].slot, 2u);
  EXPECT_EQ(m.runs[0].generation, 4);
  EXPECT_EQ(m.generation, 7);
  EXPECT_EQ(m.next_id, 1u);
  // The first merge goes to slot 0, before the data file; later ones fold it.
  m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(8, kLogSize));
  ASSERT_TRUE(CheckManifest(m, "m").ok()) << CheckManifest(m, "m");
  EXPECT_EQ(m.runs.size(), 2u);
  m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(9, 2 * kLogSize));
  m = ManifestAfterMerge(m, PlanMerge(m.runs), Output(10, kLogSize));
  const MergePlan plan = PlanMerge(m.runs);  // slots 0, 1, 2 held
  EXPECT_EQ(plan, Plan(3, 3));
  m = ManifestAfterMerge(m, plan, Output(11, 9 * kLogSize));
  EXPECT_EQ(m.retired.back(), kDataRunId);

  const Manifest empty =
      ManifestOfDefaultStore(kEntrySize, 3, std::nullopt, kLogSize);
  EXPECT_TRUE(CheckManifest(empty, "m").ok());
  EXPECT_TRUE(empty.runs.empty());
}

}  // namespace
}  // namespace kvindex
