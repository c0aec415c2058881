#include "bench/workload_filter.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace bench {
namespace {

WorkloadFilter Compiled(const std::string& pattern) {
  absl::StatusOr<WorkloadFilter> filter = WorkloadFilter::Compile(pattern);
  EXPECT_TRUE(filter.ok()) << filter.status();
  return *std::move(filter);
}

TEST(WorkloadFilter, EmptySelectsEverything) {
  const WorkloadFilter all = Compiled("");
  EXPECT_TRUE(all.Matches("replace_random"));
  EXPECT_TRUE(all.Matches("fsync_baseline"));
  EXPECT_TRUE(all.Matches(""));
}

TEST(WorkloadFilter, MatchesFromTheStartOfTheName) {
  const WorkloadFilter find = Compiled("find");
  EXPECT_TRUE(find.Matches("find_random_ro"));
  EXPECT_TRUE(find.Matches("find_absent_rw"));
  EXPECT_FALSE(find.Matches("refind"));
  const WorkloadFilter random = Compiled("random");
  EXPECT_FALSE(random.Matches("replace_random"));
  EXPECT_FALSE(random.Matches("find_random_ro"));
  // Only from the start: the end of the name is free.
  EXPECT_TRUE(Compiled("replace_random").Matches("replace_random_sync"));
  EXPECT_FALSE(Compiled("replace_random$").Matches("replace_random_sync"));
}

TEST(WorkloadFilter, ExtendedSyntax) {
  // Every alternative is anchored.
  const WorkloadFilter either = Compiled("find_(random|absent)_ro|iter");
  EXPECT_TRUE(either.Matches("find_random_ro"));
  EXPECT_TRUE(either.Matches("find_absent_ro"));
  EXPECT_TRUE(either.Matches("iter_rw"));
  EXPECT_FALSE(either.Matches("find_random_rw"));
  EXPECT_FALSE(either.Matches("x_iter_rw"));
  // Unescaped + ? {} are operators, as in POSIX ERE (not in basic syntax).
  EXPECT_TRUE(Compiled("re+place").Matches("reeeplace_random"));
  EXPECT_TRUE(Compiled("replace_random_?sync").Matches("replace_randomsync"));
  EXPECT_TRUE(Compiled("f{2}").Matches("ffsync"));
  EXPECT_FALSE(Compiled("f{2}").Matches("fsync"));
  EXPECT_TRUE(Compiled("[a-f]+_").Matches("fa_b"));
  EXPECT_TRUE(Compiled("[[:alpha:]]+_absent").Matches("find_absent_rw"));
}

TEST(WorkloadFilter, RefusesABadExpression) {
  for (const std::string pattern : {"(find", "find)", "[a-", "a{2"}) {
    absl::StatusOr<WorkloadFilter> filter = WorkloadFilter::Compile(pattern);
    EXPECT_TRUE(absl::IsInvalidArgument(filter.status())) << pattern;
    EXPECT_TRUE(absl::StrContains(
        filter.status().message(),
        absl::StrCat("bad regular expression '", pattern, "': ")))
        << filter.status();
  }
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
