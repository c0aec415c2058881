#include "io/large_array.h"

#include <cstdint>
#include <new>
#include <numeric>
#include <utility>

#include "gtest/gtest.h"

namespace kvindex {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Sizes below, at and above the huge-page threshold (elements of 8 bytes).
class LargeArraySizes : public ::testing::TestWithParam<size_t> {};

TEST_P(LargeArraySizes, StartsZeroedAndHoldsWhatIsWritten) {
  const size_t n = GetParam();
  LargeArray<uint64_t> a(n);
  ASSERT_EQ(a.size(), n);
  EXPECT_EQ(a.bytes(), n * sizeof(uint64_t));
  for (size_t i = 0; i < n; i += 4096 / sizeof(uint64_t)) {
    ASSERT_EQ(a[i], 0u) << i;
  }
  EXPECT_EQ(a[n - 1], 0u);
  std::iota(a.begin(), a.end(), uint64_t{7});
  uint64_t expected = 7;
  for (uint64_t v : a) ASSERT_EQ(v, expected++);
}

TEST_P(LargeArraySizes, MovesLeaveTheSourceEmpty) {
  const size_t n = GetParam();
  LargeArray<uint64_t> a(n);
  a[n - 1] = 42;
  const uint64_t* data = a.data();
  LargeArray<uint64_t> b(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b[n - 1], 42u);
  LargeArray<uint64_t> c(3);
  c = std::move(b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(c.size(), n);
  EXPECT_EQ(c[n - 1], 42u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, LargeArraySizes,
                         ::testing::Values(1, 100, kHugePage / 8 - 1,
                                           kHugePage / 8, kHugePage / 8 + 1,
                                           3 * kHugePage / 8 + 5));

// What makes huge pages possible: an array of 2 MiB or more starts on a 2 MiB
// boundary.
TEST(LargeArray, BigArraysAreAlignedForHugePages) {
  for (size_t bytes : {kHugePage, kHugePage + 8, 5 * kHugePage}) {
    LargeArray<char> a(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % kHugePage, 0u) << bytes;
  }
}

TEST(LargeArray, EmptyArrayHoldsNothing) {
  LargeArray<uint64_t> a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.begin(), a.end());
  LargeArray<uint64_t> b(0);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
}

TEST(LargeArray, ImpossibleSizesThrowBadAlloc) {
  EXPECT_THROW(LargeArray<uint64_t>(SIZE_MAX / 4), std::bad_alloc);
  EXPECT_THROW(LargeArray<char>(SIZE_MAX - 100), std::bad_alloc);
}

}  // namespace
}  // namespace kvindex
