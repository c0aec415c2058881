#include "io/grow_ahead.h"

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/mem_env.h"
#include "testing/status.h"

namespace kvindex {
namespace {

TEST(GrowAheadTest, TargetGrowsByWhatTheFileHoldsWithinBounds) {
  // At least 4 KiB further, on a 4 KiB boundary.
  EXPECT_EQ(GrowAhead::Target(0), 4096u);
  EXPECT_EQ(GrowAhead::Target(32), 8192u);
  EXPECT_EQ(GrowAhead::Target(4096), 8192u);
  // As far again as the file holds.
  EXPECT_EQ(GrowAhead::Target(100000), 200704u);  // 200000 rounded up
  // At most 1 MiB further.
  EXPECT_EQ(GrowAhead::Target(uint64_t{10} << 20), uint64_t{11} << 20);
  for (uint64_t end :
       {uint64_t{1}, uint64_t{4095}, uint64_t{123457}, uint64_t{3} << 30}) {
    const uint64_t target = GrowAhead::Target(end);
    EXPECT_EQ(target % 4096, 0u) << end;
    EXPECT_GE(target, end + 4096) << end;
    EXPECT_LE(target, end + (uint64_t{1} << 20) + 4096) << end;
  }
}

class GrowAheadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.CreateDirs("/d"));
    absl::StatusOr<std::unique_ptr<File>> file =
        env_.OpenFile("/d/f", OpenMode::kCreateReadWrite);
    ASSERT_OK(file);
    file_ = *std::move(file);
  }
  uint64_t Size() {
    absl::StatusOr<uint64_t> size = file_->Size();
    EXPECT_OK(size);
    return size.ok() ? *size : 0;
  }
  MemEnv env_;
  std::unique_ptr<File> file_;
};

TEST_F(GrowAheadFileTest, GrowsOnlyWhenAWriteWouldPassWhatItGrewTo) {
  GrowAhead grow(0);
  grow.Before(file_.get(), 100);
  EXPECT_EQ(Size(), GrowAhead::Target(100));
  const uint64_t mutations = env_.mutation_count();
  grow.Before(file_.get(), GrowAhead::Target(100));  // still within
  EXPECT_EQ(env_.mutation_count(), mutations);
  grow.Before(file_.get(), GrowAhead::Target(100) + 1);
  EXPECT_EQ(Size(), GrowAhead::Target(GrowAhead::Target(100) + 1));
  EXPECT_TRUE(grow.growing());
}

TEST_F(GrowAheadFileTest, AFileLongerThanTheWritesIsNotGrown) {
  ASSERT_OK(file_->PWrite(0, std::string(10000, 'x')));
  GrowAhead grow(10000);
  const uint64_t mutations = env_.mutation_count();
  grow.Before(file_.get(), 9000);
  EXPECT_EQ(env_.mutation_count(), mutations);
  EXPECT_EQ(Size(), 10000u);
}

TEST_F(GrowAheadFileTest, StopsTryingAfterAFailure) {
  GrowAhead grow(0);
  env_.InjectError(kOpWrite, 0, 1, absl::ResourceExhaustedError("ENOSPC"));
  grow.Before(file_.get(), 100);
  EXPECT_FALSE(grow.growing());
  EXPECT_EQ(Size(), 0u);
  // Space is back, but the writer appends as without it from now on.
  const uint64_t mutations = env_.mutation_count();
  grow.Before(file_.get(), 100000);
  EXPECT_EQ(env_.mutation_count(), mutations);
  EXPECT_EQ(Size(), 0u);
}

}  // namespace
}  // namespace kvindex
