#include "bench/latency_histogram.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>

namespace kvindex {
namespace bench {
namespace {

// The shift of the values of bucket b >= 2 * kSubBuckets: their top bit is
// kSubBucketBits above it.
int ShiftOf(size_t b) {
  return static_cast<int>(b / LatencyHistogram::kSubBuckets) - 1;
}

}  // namespace

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::count() const {
  return std::accumulate(counts_.begin(), counts_.end(), uint64_t{0});
}

uint64_t LatencyHistogram::BucketLow(size_t b) {
  if (b < 2 * kSubBuckets) return b;
  const uint64_t m = kSubBuckets + b % kSubBuckets;
  return m << ShiftOf(b);
}

uint64_t LatencyHistogram::BucketHigh(size_t b) {
  if (b < 2 * kSubBuckets) return b;
  return BucketLow(b) + ((uint64_t{1} << ShiftOf(b)) - 1);
}

uint64_t LatencyHistogram::Quantile(uint64_t numerator,
                                    uint64_t denominator) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  // ceil(n * numerator / denominator), without overflow.
  const uint64_t rank =
      n / denominator * numerator +
      (n % denominator * numerator + denominator - 1) / denominator;
  if (rank >= n) return max_;
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen < rank) continue;
    const uint64_t low = BucketLow(b);
    return std::min(max_, low + (BucketHigh(b) - low) / 2);
  }
  return max_;
}

}  // namespace bench
}  // namespace kvindex
