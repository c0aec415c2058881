// Test assertions and gMock matchers on absl::Status and absl::StatusOr<T>.
//
//   ASSERT_OK(env->RemoveFile(path));          // either a Status or a StatusOr
//   EXPECT_OK(index->Flush());
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawIndex> index,
//                        RawIndex::Open(root, schema, options));
//   EXPECT_THAT(index->Sync(), IsOk());
//   EXPECT_THAT(ro->Replace(k, v),
//               StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(root)));
//
// A failure prints the expression and the status it returned. As with gtest's
// own assertions, more context can be streamed in (ASSERT_OK(s) << path), an
// `if` around one needs braces (-Wdangling-else), and ASSERT_* return from the
// calling function, which must return void.
#ifndef KVINDEX_TESTING_STATUS_H_
#define KVINDEX_TESTING_STATUS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace test {
namespace status_internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// The predicate-formatter behind ASSERT_OK and EXPECT_OK.
template <typename T>
::testing::AssertionResult IsOkFormat(const char* expression, const T& status) {
  const absl::Status& s = GetStatus(status);
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expression << " is not OK: " << s;
}

class IsOkMatcher {
 public:
  template <typename T>
  bool MatchAndExplain(const T& status,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& s = GetStatus(status);
    if (!s.ok()) *listener << "whose status is " << s;
    return s.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

class StatusIsMatcher {
 public:
  StatusIsMatcher(absl::StatusCode code,
                  ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename T>
  bool MatchAndExplain(const T& status,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& s = GetStatus(status);
    *listener << "whose status is " << s;
    if (s.code() != code_) return false;
    ::testing::StringMatchResultListener why;
    if (message_.MatchAndExplain(std::string(s.message()), &why)) return true;
    if (!why.str().empty()) *listener << ", and whose message " << why.str();
    return false;
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has code " << absl::StatusCodeToString(code_)
        << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "has a code other than " << absl::StatusCodeToString(code_)
        << " or a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  absl::StatusCode code_;
  ::testing::Matcher<const std::string&> message_;
};

}  // namespace status_internal

// Matches an OK absl::Status or absl::StatusOr<T>.
inline ::testing::PolymorphicMatcher<status_internal::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(status_internal::IsOkMatcher());
}

// Matches an absl::Status or absl::StatusOr<T> with `code` and a message
// matching `message` (a matcher such as HasSubstr("closed"), or a string for
// equality); without `message`, any message.
inline ::testing::PolymorphicMatcher<status_internal::StatusIsMatcher> StatusIs(
    absl::StatusCode code,
    ::testing::Matcher<const std::string&> message = ::testing::_) {
  return ::testing::MakePolymorphicMatcher(
      status_internal::StatusIsMatcher(code, std::move(message)));
}

}  // namespace test
}  // namespace kvindex

#define EXPECT_OK(expression) \
  EXPECT_PRED_FORMAT1(::kvindex::test::status_internal::IsOkFormat, expression)
#define ASSERT_OK(expression) \
  ASSERT_PRED_FORMAT1(::kvindex::test::status_internal::IsOkFormat, expression)

// Evaluates `rexpr` (an absl::StatusOr<T>); if it is OK, moves its value into
// `lhs` (a variable, or a declaration such as `auto index`), else fails the
// test and returns from the current function.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)     \
  KVINDEX_TESTING_ASSERT_OK_AND_ASSIGN_IMPL( \
      KVINDEX_TESTING_CONCAT(kvindex_status_or_, __LINE__), lhs, rexpr)

#define KVINDEX_TESTING_ASSERT_OK_AND_ASSIGN_IMPL(status_or, lhs, rexpr) \
  auto status_or = (rexpr);                                              \
  if (!status_or.ok()) {                                                 \
    FAIL() << #rexpr << " is not OK: " << status_or.status();            \
  }                                                                      \
  lhs = *std::move(status_or)

#define KVINDEX_TESTING_CONCAT(a, b) KVINDEX_TESTING_CONCAT_INNER(a, b)
#define KVINDEX_TESTING_CONCAT_INNER(a, b) a##b

#endif  // KVINDEX_TESTING_STATUS_H_
