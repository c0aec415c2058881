#include "runset/policy.h"

#include <algorithm>
#include <cstdint>
#include <map>
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
  EXPECT_EQ(SlotForRecords(1999, kLogSize), 0u);
  EXPECT_EQ(SlotForRecords(2000, kLogSize), 1u);
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
