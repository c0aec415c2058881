#include "index/clear_marker.h"

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "io/mem_env.h"

namespace kvindex {
namespace {

constexpr char kDir[] = "/store/index";

TEST(ClearMarkerTest, WrittenDurablyReadAndRemoved) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs(kDir).ok());
  EXPECT_EQ(ReadClearMarker(&env, kDir).value(), std::nullopt);
  ASSERT_TRUE(WriteClearMarker(&env, kDir, 41).ok());
  ASSERT_TRUE(WriteClearMarker(&env, kDir, 42).ok());  // replaces
  CrashOptions harsh;
  harsh.keep_unsynced_prefix = false;
  env.Restart(harsh);
  EXPECT_EQ(ReadClearMarker(&env, kDir).value(), std::optional<int64_t>(42));
  EXPECT_EQ(env.Contents(ClearMarkerPath(kDir)).value(),
            "kvindex clear to generation 42\n");
  ASSERT_TRUE(RemoveClearMarker(&env, kDir).ok());
  EXPECT_EQ(ReadClearMarker(&env, kDir).value(), std::nullopt);
  EXPECT_TRUE(RemoveClearMarker(&env, kDir).ok());  // none: fine
}

// The marker goes only once what it vouched for is gone for good: a file
// removed before it never comes back without it, even from a directory
// written back in any order.
TEST(ClearMarkerTest, RemovedOnlyAfterTheRemovalsBeforeItAreDurable) {
  const std::string data = std::string(kDir) + "/data";
  for (uint64_t seed = 0; seed < 32; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.CreateDirs(kDir).ok());
    env.SetContents(data, "old");
    ASSERT_TRUE(env.SyncDir(kDir).ok());
    ASSERT_TRUE(WriteClearMarker(&env, kDir, 7).ok());
    ASSERT_TRUE(env.RemoveFile(data).ok());
    ASSERT_TRUE(RemoveClearMarker(&env, kDir).ok());
    CrashOptions any_order;
    any_order.seed = seed;
    any_order.dir_ops_in_any_order = true;
    env.Restart(any_order);
    const bool marker = ReadClearMarker(&env, kDir).value().has_value();
    EXPECT_TRUE(marker || !env.FileExists(data).value())
        << "seed " << seed << ": the data file came back without the marker";
  }
}

// A marker cut short or damaged proves nothing.
TEST(ClearMarkerTest, AnUnfinishedOrDamagedMarkerIsNoEvidence) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs(kDir).ok());
  for (const std::string& text :
       {std::string(""), std::string("kvindex clear to gen"),
        std::string("kvindex clear to generation 42"),
        std::string("kvindex clear to generation 4x\n"),
        std::string("kvindex clear to generation -1\n"),
        std::string("kvindex clear to generation 42\nmore")}) {
    env.SetContents(ClearMarkerPath(kDir), text);
    EXPECT_EQ(ReadClearMarker(&env, kDir).value(), std::nullopt) << text;
  }
}

// The writer removes its marker at the end of a clear, whenever a reader
// happens to look: a marker that vanishes as it is read is no marker, and any
// other read error is reported.
TEST(ClearMarkerTest, AMarkerRemovedWhileReadIsNone) {
  // Shows the marker in FileExists, and removes it first when it is read.
  class RemovedOnRead : public EnvWrapper {
   public:
    using EnvWrapper::EnvWrapper;
    absl::StatusOr<bool> FileExists(const std::string&) override {
      return true;
    }
    absl::StatusOr<std::string> ReadFileToString(
        const std::string& path) override {
      absl::Status removed = target()->RemoveFile(path);
      if (!removed.ok()) return removed;
      return target()->ReadFileToString(path);
    }
  };
  MemEnv mem;
  ASSERT_TRUE(mem.CreateDirs(kDir).ok());
  ASSERT_TRUE(WriteClearMarker(&mem, kDir, 7).ok());
  RemovedOnRead env(&mem);
  const absl::StatusOr<std::optional<int64_t>> read =
      ReadClearMarker(&env, kDir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::nullopt);

  ASSERT_TRUE(WriteClearMarker(&mem, kDir, 8).ok());
  mem.InjectError(kOpRead, 0, 1, absl::InternalError("injected EIO"));
  const absl::StatusOr<std::optional<int64_t>> failed =
      ReadClearMarker(&mem, kDir);
  EXPECT_TRUE(absl::IsInternal(failed.status())) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed.status().message(), "injected EIO"))
      << failed.status();
}

}  // namespace
}  // namespace kvindex
