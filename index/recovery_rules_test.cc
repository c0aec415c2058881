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

}  // namespace
}  // namespace kvindex
