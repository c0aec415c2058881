#include "testing/status.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::Status Broken() { return absl::DataLossError("torn header in /s/log"); }
absl::StatusOr<int> Seven() { return 7; }
absl::StatusOr<int> NoInt() { return absl::NotFoundError("no int here"); }

TEST(IsOk, MatchesOkStatusAndStatusOr) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(Seven(), IsOk());
  EXPECT_THAT(Broken(), Not(IsOk()));
  EXPECT_THAT(NoInt(), Not(IsOk()));
}

TEST(StatusIs, ChecksCodeAndMessage) {
  EXPECT_THAT(Broken(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Broken(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/s/log")));
  EXPECT_THAT(Broken(),
              StatusIs(absl::StatusCode::kDataLoss, "torn header in /s/log"));
  EXPECT_THAT(Broken(), Not(StatusIs(absl::StatusCode::kInternal)));
  EXPECT_THAT(Broken(),
              Not(StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/s/data"))));
  EXPECT_THAT(NoInt(), StatusIs(absl::StatusCode::kNotFound, "no int here"));
  EXPECT_THAT(Seven(), StatusIs(absl::StatusCode::kOk));
}

TEST(StatusIs, FailureNamesTheStatus) {
  EXPECT_NONFATAL_FAILURE(
      EXPECT_THAT(Broken(),
                  StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/s/data"))),
      "torn header in /s/log");
}

TEST(ExpectOk, PassesOnOk) {
  EXPECT_OK(absl::OkStatus());
  EXPECT_OK(Seven());
  ASSERT_OK(absl::OkStatus());
  ASSERT_OK(Seven());
}

TEST(ExpectOk, FailsWithTheExpressionAndTheStatus) {
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Broken()), "Broken() is not OK");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Broken()), "torn header in /s/log");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(NoInt()), "no int here");
}

// ASSERT_* return from the enclosing function: run them in their own.
void AssertOkOnError() {
  ASSERT_OK(Broken());
  ADD_FAILURE() << "not reached";
}

TEST(AssertOk, FailsFatallyAndReturns) {
  EXPECT_FATAL_FAILURE(AssertOkOnError(), "torn header in /s/log");
}

TEST(AssertOkAndAssign, AssignsTheValue) {
  ASSERT_OK_AND_ASSIGN(const int seven, Seven());
  EXPECT_EQ(seven, 7);
  std::unique_ptr<std::string> moved;
  ASSERT_OK_AND_ASSIGN(moved, absl::StatusOr<std::unique_ptr<std::string>>(
                                  std::make_unique<std::string>("moved")));
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(*moved, "moved");
}

void AssignOnError() {
  ASSERT_OK_AND_ASSIGN(const int value, NoInt());
  ADD_FAILURE() << "not reached with " << value;
}

TEST(AssertOkAndAssign, FailsFatallyWithTheExpression) {
  EXPECT_FATAL_FAILURE(AssignOnError(), "NoInt() is not OK: NOT_FOUND");
}

}  // namespace
}  // namespace test
}  // namespace kvindex
