// The public API seen from a downstream workspace: @kvindex//index,
// "index/index.h".
#include <cstdlib>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "index/index.h"

namespace {

using Store = kvindex::Index<kvindex::FixedString<8>, kvindex::FixedString<4>>;

std::string Root(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
}

TEST(Downstream, WriteMergeReopenFind) {
  const std::string root = Root("roundtrip");
  kvindex::Options options;
  options.fresh = true;
  options.log_size = 10;
  {
    auto store = Store::Open(root, options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 100; ++i) {
      const std::string k = "key" + std::to_string(10000 + i);
      ASSERT_TRUE((*store)->Replace(k, "v" + std::to_string(100 + i)).ok());
    }
    ASSERT_TRUE((*store)->Replace("key10007", "new!").ok());
    ASSERT_TRUE((*store)->Merge().ok());
    ASSERT_TRUE((*store)->AwaitMerge().ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  kvindex::Options again;
  auto store = Store::Open(root, again);
  ASSERT_TRUE(store.ok()) << store.status();
  auto v = (*store)->Find("key10042");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("v142"));
  v = (*store)->Find("key10007");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("new!"));
  v = (*store)->Find("key99999");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
}

TEST(Downstream, ReadOnlyInstanceSeesFlushedWrites) {
  const std::string root = Root("readonly");
  kvindex::Options options;
  options.fresh = true;
  auto writer = Store::Open(root, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Replace("abcdefgh", "1234").ok());
  ASSERT_TRUE((*writer)->Flush().ok());
  kvindex::Options ro;
  ro.readonly = true;
  auto reader = Store::Open(root, ro);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto v = (*reader)->Find("abcdefgh");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("1234"));
  // A second writer is refused while the first holds the lock.
  auto second = Store::Open(root, kvindex::Options());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Downstream, WrongSizesAreRejected) {
  kvindex::Options options;
  options.fresh = true;
  auto store = Store::Open(Root("sizes"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Replace("short", "1234").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Replace("abcdefgh", "too long").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
