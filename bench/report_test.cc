// RoundRatio: stores compared round by round, and PickMedian.
#include "bench/report.h"

#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace kvindex {
namespace bench {
namespace {

// A cell whose rounds ran at `rates` ops/s; a negative rate is a failed run.
Cell CellOf(const std::vector<double>& rates) {
  Cell cell;
  for (const double rate : rates) {
    RunResult r;
    r.ok = rate >= 0;
    if (r.ok) r.metrics["ops_per_s"] = rate;
    cell.runs.push_back(r);
  }
  return cell;
}

TEST(RoundRatio, IsTheMedianOfEachRoundsRatio) {
  // Round ratios 0.5, 4 and 3: their median is 3, where the ratio of the
  // two cells' medians (20 / 10) would be 2.
  const Cell store = CellOf({10, 20, 30});
  const Cell reference = CellOf({20, 5, 10});
  const std::optional<double> ratio = RoundRatio(store, reference);
  ASSERT_TRUE(ratio.has_value());
  EXPECT_DOUBLE_EQ(*ratio, 3.0);
}

TEST(RoundRatio, UnderDriftTheMiddleRoundDoesNotDecide) {
  // The machine gets faster round by round (x1, x2, x3); the store is 1.5x
  // the reference in rounds 0 and 2, 1.2x in round 1. Both cells' median runs
  // are round 1's, so the ratio of the medians would be 1.2; the rounds say
  // 1.5.
  const Cell store = CellOf({1500, 2400, 4500});
  const Cell reference = CellOf({1000, 2000, 3000});
  EXPECT_DOUBLE_EQ(*RoundRatio(store, reference), 1.5);
  // A ratio that holds in every round is that ratio, whatever the drift.
  EXPECT_DOUBLE_EQ(*RoundRatio(CellOf({3000, 3000, 1500, 1500, 1500}),
                               CellOf({2000, 2000, 1000, 1000, 1000})),
                   1.5);
}

TEST(RoundRatio, SkipsRoundsInWhichEitherFailed) {
  // Round 1 failed for the store, round 2 for the reference: only rounds 0
  // and 3 count (ratios 2 and 4; the lower middle one of two).
  const Cell store = CellOf({20, -1, 90, 40});
  const Cell reference = CellOf({10, 10, -1, 10});
  EXPECT_DOUBLE_EQ(*RoundRatio(store, reference), 2.0);
}

TEST(RoundRatio, NoneWithoutARoundInCommon) {
  EXPECT_FALSE(RoundRatio(CellOf({10, -1}), CellOf({-1, 10})).has_value());
  EXPECT_FALSE(RoundRatio(CellOf({}), CellOf({10})).has_value());
  // A reference without a rate says nothing of the store.
  EXPECT_FALSE(RoundRatio(CellOf({10}), CellOf({0})).has_value());
}

TEST(RoundRatio, OnlyRoundsBothRan) {
  // A store with more rounds than the reference (a run cut short): the
  // extra rounds have nothing to be compared with.
  const Cell store = CellOf({10, 10, 1000, 1000});
  const Cell reference = CellOf({5, 5});
  EXPECT_DOUBLE_EQ(*RoundRatio(store, reference), 2.0);
}

TEST(PickMedian, TakesTheMiddleSuccessfulRunAndKeepsEveryRate) {
  Cell cell = CellOf({30, -1, 10, 20});
  PickMedian(cell);
  ASSERT_NE(cell.median, nullptr);
  EXPECT_DOUBLE_EQ(cell.median->get("ops_per_s"), 20);
  EXPECT_EQ(cell.ops_per_s, (std::vector<double>{30, 10, 20}));
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
