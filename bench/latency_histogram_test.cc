#include "bench/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace kvindex {
namespace bench {
namespace {

// The stated precision: a reported quantile is within 1/128 of the value it
// stands for.
void ExpectWithinPrecision(uint64_t reported, uint64_t expected) {
  const double error = static_cast<double>(reported) - expected;
  EXPECT_LE(std::abs(error), expected / 128.0)
      << "reported " << reported << ", expected " << expected;
}

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.Quantile(1, 2), 0u);
  EXPECT_EQ(h.Quantile(999, 1000), 0u);
  EXPECT_EQ(h.Quantile(1, 1), 0u);
}

TEST(LatencyHistogram, BucketsTileEveryValue) {
  // Consecutive, no gap, no overlap, from 0 to the largest uint64_t.
  EXPECT_EQ(LatencyHistogram::BucketLow(0), 0u);
  for (size_t b = 1; b < LatencyHistogram::kBuckets; ++b) {
    ASSERT_EQ(LatencyHistogram::BucketLow(b),
              LatencyHistogram::BucketHigh(b - 1) + 1)
        << b;
  }
  EXPECT_EQ(LatencyHistogram::BucketHigh(LatencyHistogram::kBuckets - 1),
            UINT64_MAX);
  for (uint64_t v :
       {uint64_t{0}, uint64_t{127}, uint64_t{128}, uint64_t{255}, uint64_t{256},
        uint64_t{1000003}, uint64_t{1} << 40, UINT64_MAX}) {
    const size_t b = LatencyHistogram::BucketOf(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets) << v;
    EXPECT_LE(LatencyHistogram::BucketLow(b), v);
    EXPECT_GE(LatencyHistogram::BucketHigh(b), v);
  }
}

TEST(LatencyHistogram, BucketsAreAtMostASixtyFourthWide) {
  for (size_t b = 128; b < LatencyHistogram::kBuckets; ++b) {
    const uint64_t low = LatencyHistogram::BucketLow(b);
    const uint64_t width = LatencyHistogram::BucketHigh(b) - low + 1;
    ASSERT_LE(width * 64, low) << b;
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Quantile(1, 2), 50u);
  EXPECT_EQ(h.Quantile(99, 100), 99u);
  EXPECT_EQ(h.Quantile(999, 1000), 100u);
  EXPECT_EQ(h.Quantile(1, 100), 1u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(LatencyHistogram, UniformDistributionWithinPrecision) {
  LatencyHistogram h;
  constexpr uint64_t kN = 1000000;
  // 1000, 2000, ..., 10^9 in a shuffled order: the nearest-rank quantile q is
  // q * kN * 1000.
  std::vector<uint64_t> values;
  for (uint64_t i = 1; i <= kN; ++i) values.push_back(i * 1000);
  std::shuffle(values.begin(), values.end(), std::mt19937_64(7));
  for (uint64_t v : values) h.Record(v);
  EXPECT_EQ(h.count(), kN);
  ExpectWithinPrecision(h.Quantile(1, 2), 500000000);
  ExpectWithinPrecision(h.Quantile(99, 100), 990000000);
  ExpectWithinPrecision(h.Quantile(999, 1000), 999000000);
  ExpectWithinPrecision(h.Quantile(1, 1000), 1000000);
  EXPECT_EQ(h.max(), 1000000000u);
  EXPECT_EQ(h.Quantile(1, 1), 1000000000u);  // capped at the exact maximum
}

TEST(LatencyHistogram, ExponentialDistributionWithinPrecision) {
  // Quantiles of a sample are the sorted sample's values at their ranks.
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> exponential(1.0 / 2000);
  std::vector<uint64_t> values(200000);
  LatencyHistogram h;
  for (uint64_t& v : values) {
    v = static_cast<uint64_t>(exponential(rng)) + 1;
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  ExpectWithinPrecision(h.Quantile(1, 2), values[100000 - 1]);
  ExpectWithinPrecision(h.Quantile(99, 100), values[198000 - 1]);
  ExpectWithinPrecision(h.Quantile(999, 1000), values[199800 - 1]);
  EXPECT_EQ(h.max(), values.back());
}

TEST(LatencyHistogram, RareOutlierShowsOnlyInTheMax) {
  // One slow operation in 10 000, like a replace that waits for a merge.
  LatencyHistogram h;
  for (int i = 0; i < 9999; ++i) h.Record(300);
  h.Record(812345678);
  ExpectWithinPrecision(h.Quantile(1, 2), 300);
  ExpectWithinPrecision(h.Quantile(999, 1000), 300);
  EXPECT_EQ(h.max(), 812345678u);
  EXPECT_EQ(h.Quantile(1, 1), 812345678u);
}

TEST(LatencyHistogram, RankRoundsUp) {
  // p99.9 of 1000 values is the 999th: no floating-point rounding past it.
  LatencyHistogram thousand;
  for (int i = 0; i < 999; ++i) thousand.Record(5);
  thousand.Record(100);
  EXPECT_EQ(thousand.Quantile(999, 1000), 5u);
  // p99.9 of 1001 values is the 1000th (rank ceil(999.999)), not the 999th.
  LatencyHistogram more;
  for (int i = 0; i < 999; ++i) more.Record(5);
  more.Record(100);
  more.Record(100);
  EXPECT_EQ(more.Quantile(999, 1000), 100u);
}

TEST(LatencyHistogram, MergeIsRecordingEverythingInOne) {
  // Two threads' histograms, each with values the other lacks.
  LatencyHistogram first, second, all;
  for (uint64_t v = 1; v <= 3000; ++v) {
    const uint64_t value = v * 997;
    (v % 3 == 0 ? second : first).Record(value);
    all.Record(value);
  }
  second.Record(123456789);
  all.Record(123456789);
  first.Merge(second);
  EXPECT_EQ(first.count(), all.count());
  EXPECT_EQ(first.max(), 123456789u);
  for (uint64_t q : {1, 500, 990, 999, 1000}) {
    EXPECT_EQ(first.Quantile(q, 1000), all.Quantile(q, 1000)) << q;
  }
  // The merged-in histogram is unchanged.
  EXPECT_EQ(second.count(), 1001u);
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
