#include "cli/flags.h"

#include <cstddef>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, count, 3, "How many.");
ABSL_FLAG(bool, verbose, false, "Say more.");
ABSL_FLAG(std::string, output_file, "",
          "Where the results go;\nnowhere by default.");

namespace kvindex {
namespace cli {
namespace {

class FlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { ResetToDefaults(flags_); }

  // The flag of this file called `name`; fails the test when there is none.
  absl::CommandLineFlag& Flag(absl::string_view name) {
    absl::CommandLineFlag* flag = FindFlag(flags_, name);
    EXPECT_NE(flag, nullptr) << name;
    return *flag;
  }

  const std::vector<absl::CommandLineFlag*> flags_ = FlagsDefinedIn(__FILE__);
};

TEST_F(FlagsTest, FlagsDefinedInAFileSortedByName) {
  std::vector<std::string> names;
  for (const absl::CommandLineFlag* flag : flags_) {
    names.emplace_back(flag->Name());
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"count", "output_file", "verbose"}));
  EXPECT_TRUE(FlagsDefinedIn("cli/no_such_file.cc").empty());
}

TEST_F(FlagsTest, FindsByNameWithDashesOrUnderscores) {
  EXPECT_EQ(FindFlag(flags_, "count")->Name(), "count");
  EXPECT_EQ(FindFlag(flags_, "output-file")->Name(), "output_file");
  EXPECT_EQ(FindFlag(flags_, "output_file")->Name(), "output_file");
}

TEST_F(FlagsTest, RejectsAnUnknownFlag) {
  EXPECT_EQ(FindFlag(flags_, "no-such-flag"), nullptr);
  EXPECT_EQ(FindFlag(flags_, "--count"), nullptr);  // the name, without "--"
  EXPECT_EQ(FindFlag(flags_, ""), nullptr);
  // A flag that exists, but not among those given.
  EXPECT_EQ(FindFlag({&Flag("verbose")}, "count"), nullptr);
}

TEST_F(FlagsTest, SetsAValueAfterEquals) {
  absl::StatusOr<size_t> taken =
      SetFlag(Flag("count"), "--count", "7", {"--verbose"});
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, 0u);
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 7);
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
}

TEST_F(FlagsTest, SetsAValueFromTheNextArgument) {
  absl::StatusOr<size_t> taken =
      SetFlag(Flag("output_file"), "--output-file", absl::nullopt,
              {"/tmp/out", "--count=2"});
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, 1u);
  EXPECT_EQ(absl::GetFlag(FLAGS_output_file), "/tmp/out");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
}

TEST_F(FlagsTest, ABooleanAloneIsTrue) {
  absl::StatusOr<size_t> taken =
      SetFlag(Flag("verbose"), "--verbose", absl::nullopt, {"false"});
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, 0u);  // the next argument is not its value
  EXPECT_TRUE(absl::GetFlag(FLAGS_verbose));
  ASSERT_TRUE(SetFlag(Flag("verbose"), "--verbose", "false", {}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
}

TEST_F(FlagsTest, RejectsABadValueAndKeepsTheFlag) {
  ASSERT_TRUE(SetFlag(Flag("count"), "--count", "5", {}).ok());
  absl::StatusOr<size_t> taken =
      SetFlag(Flag("count"), "--count", absl::nullopt, {"many"});
  EXPECT_TRUE(absl::IsInvalidArgument(taken.status())) << taken.status();
  EXPECT_EQ(taken.status().message(), "invalid value 'many' for --count");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 5);

  taken = SetFlag(Flag("verbose"), "--verbose", "maybe", {});
  EXPECT_EQ(taken.status().message(), "invalid value 'maybe' for --verbose");
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
}

TEST_F(FlagsTest, RejectsAMissingValue) {
  absl::StatusOr<size_t> taken =
      SetFlag(Flag("count"), "--count", absl::nullopt, {});
  EXPECT_TRUE(absl::IsInvalidArgument(taken.status())) << taken.status();
  EXPECT_EQ(taken.status().message(), "option '--count' needs a value");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
}

TEST_F(FlagsTest, ResetsToTheDefaults) {
  ASSERT_TRUE(SetFlag(Flag("count"), "--count", "9", {}).ok());
  ASSERT_TRUE(SetFlag(Flag("verbose"), "--verbose", absl::nullopt, {}).ok());
  ASSERT_TRUE(SetFlag(Flag("output_file"), "--output_file", "x", {}).ok());
  ResetToDefaults(flags_);
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_output_file), "");
}

TEST_F(FlagsTest, HelpListsTheFlagsInTheirOrder) {
  EXPECT_EQ(FlagsHelp(flags_),
            "  --count (default: 3)\n"
            "      How many.\n"
            "  --output-file\n"
            "      Where the results go;\n"
            "      nowhere by default.\n"
            "  --verbose\n"
            "      Say more.\n");
  EXPECT_EQ(FlagsHelp({&Flag("verbose"), &Flag("count")}),
            "  --verbose\n"
            "      Say more.\n"
            "  --count (default: 3)\n"
            "      How many.\n");
  EXPECT_EQ(FlagsHelp({}), "");
}

}  // namespace
}  // namespace cli
}  // namespace kvindex
