#include "index/recovery_rules.h"

#include <optional>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace {

// The log at generation 9 with `records` records.
DataFacts Facts(int64_t data, uint64_t records,
                std::optional<int64_t> log_async = std::nullopt,
                std::optional<int64_t> marker = std::nullopt) {
  return DataFacts{"/s/index/data", data, 9, records, log_async, marker};
}

void ExpectRefused(const absl::StatusOr<DataRecovery>& plan) {
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(plan.status().message().find("/s/index/data: header field "
                                         "generation"),
            absl::string_view::npos)
      << plan.status();
}

TEST(RecoveryRulesTest, DataAtTheLogsGenerationIsKept) {
  EXPECT_EQ(PlanDataRecovery(Facts(9, 5)).value(), DataRecovery::kKeep);
  EXPECT_EQ(PlanDataRecovery(Facts(9, 0, 10)).value(), DataRecovery::kKeep);
}

TEST(RecoveryRulesTest, AMergeCommitIsFinishedOnlyWithItsLogAsync) {
  EXPECT_EQ(PlanDataRecovery(Facts(10, 5, 10)).value(),
            DataRecovery::kFinishMergeCommit);
  ExpectRefused(PlanDataRecovery(Facts(10, 5)));
  ExpectRefused(PlanDataRecovery(Facts(10, 5, 9)));
  ExpectRefused(PlanDataRecovery(Facts(10, 5, 11)));
}

TEST(RecoveryRulesTest, AClearIsFinishedOnlyWithAnEmptyLogAndItsMarker) {
  EXPECT_EQ(PlanDataRecovery(Facts(8, 0, std::nullopt, 9)).value(),
            DataRecovery::kRemoveCleared);
  EXPECT_EQ(PlanDataRecovery(Facts(8, 0, 9, 9)).value(),
            DataRecovery::kRemoveCleared);
  ExpectRefused(PlanDataRecovery(Facts(8, 0)));
  ExpectRefused(PlanDataRecovery(Facts(8, 0, std::nullopt, 8)));
  ExpectRefused(PlanDataRecovery(Facts(8, 3, std::nullopt, 9)));
}

TEST(RecoveryRulesTest, OtherGenerationsAreRefused) {
  for (int64_t data : {0, 7, 11, 1000}) {
    ExpectRefused(PlanDataRecovery(Facts(data, 0, data, 9)));
  }
  // No overflow at the ends of the range.
  DataFacts f = Facts(INT64_MAX, 0, INT64_MAX, 9);
  f.log_generation = INT64_MAX;
  EXPECT_EQ(PlanDataRecovery(f).value(), DataRecovery::kKeep);
  f.data_generation = INT64_MIN;
  ExpectRefused(PlanDataRecovery(f));
}

TEST(RecoveryRulesTest, LogAsyncIsKeptForAMergeAndDroppedAfterAClear) {
  auto plan = [](int64_t async, int64_t committed) {
    return PlanLogAsyncRecovery({"/s/index/log_async", async, 9, committed});
  };
  EXPECT_TRUE(plan(10, 9).value());   // its merge did not commit
  EXPECT_TRUE(plan(10, -1).value());  // the first merge did not commit
  EXPECT_TRUE(plan(9, 9).value());    // committed, the copy maybe not done
  EXPECT_FALSE(plan(9, 8).value());   // a clear cancelled its merge
  EXPECT_FALSE(plan(9, -1).value());
  for (int64_t async : {0, 8, 11}) {
    const absl::StatusOr<bool> refused = plan(async, 9);
    ASSERT_FALSE(refused.ok()) << async;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_FALSE(plan(9, 10).ok());  // a commit ahead of the log it reset
}

// A merge committed and reset the log to 8, then failed before copying its
// log_async (generation 8) back; a clear to 9 reset the log again and was cut
// before it removed log_async. Only the clear's marker at the log's
// generation tells that from a damaged header.
TEST(RecoveryRulesTest, LogAsyncOneBehindTheLogIsDroppedOnlyWithTheMarker) {
  auto plan = [](int64_t async, int64_t committed,
                 std::optional<int64_t> marker) {
    return PlanLogAsyncRecovery(
        {"/s/index/log_async", async, 9, committed, marker});
  };
  EXPECT_FALSE(plan(8, -1, 9).value());  // the clear removed the data file
  EXPECT_FALSE(plan(8, 8, 9).value());   // ... or had not yet
  for (const std::optional<int64_t> marker :
       {std::optional<int64_t>(), std::optional<int64_t>(8),
        std::optional<int64_t>(10)}) {
    const absl::StatusOr<bool> refused = plan(8, -1, marker);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  }
  // Two generations behind: no clear and merge leave that.
  EXPECT_FALSE(plan(7, -1, 9).ok());
  // A commit at the log's generation: the clear did not come after it.
  EXPECT_FALSE(plan(8, 9, 9).ok());
}

}  // namespace
}  // namespace kvindex
