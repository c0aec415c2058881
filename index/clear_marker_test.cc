#include "index/clear_marker.h"

#include <optional>
#include <string>

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

}  // namespace
}  // namespace kvindex
