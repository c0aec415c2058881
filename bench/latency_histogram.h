// A histogram of operation latencies on a log scale, for the percentiles of
// the replace workloads (bench/README.md, "Method").
//
// Values below 128 have a bucket each; above, every power of two is split into
// 64 buckets of equal width, so a bucket is at most 1/64 of its smallest value
// wide. A quantile is reported as the middle of the bucket holding it (capped
// at the largest value recorded): within 1/128 of the recorded value it
// stands for, and exact below 128. The largest value is kept exactly.
//
// Recording costs a count-leading-zeros, a shift and an increment; the buckets
// are one array allocated by the constructor, so recording never allocates.
// The unit is the caller's (nanoseconds, clock ticks).
//
// Thread safety: none; one histogram per thread, merged once they are done.
#ifndef KVINDEX_BENCH_LATENCY_HISTOGRAM_H_
#define KVINDEX_BENCH_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvindex {
namespace bench {

class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t value) {
    ++counts_[BucketOf(value)];
    max_ = std::max(max_, value);
  }

  // Adds the values recorded by `other` (another thread's, say), as if they
  // had been recorded here.
  void Merge(const LatencyHistogram& other);

  // Values recorded.
  uint64_t count() const;
  // The largest value recorded, exactly; 0 when empty.
  uint64_t max() const { return max_; }

  // The quantile numerator/denominator (0 < numerator <= denominator <=
  // 2^20; 99/100 is p99, 999/1000 p99.9) by nearest rank: the smallest
  // recorded value that at least that fraction of the values do not exceed,
  // to the precision above; the largest value, exactly, when that is the
  // last one. 0 when empty.
  uint64_t Quantile(uint64_t numerator, uint64_t denominator) const;

  // The bucket of `value`, and the smallest and largest values of bucket b.
  static size_t BucketOf(uint64_t value);
  static uint64_t BucketLow(size_t b);
  static uint64_t BucketHigh(size_t b);

  // 128 exact buckets, then 64 per power of two from 2^7 to 2^63.
  static constexpr int kSubBucketBits = 6;
  static constexpr size_t kSubBuckets = size_t{1} << kSubBucketBits;
  static constexpr size_t kBuckets =
      2 * kSubBuckets + (63 - kSubBucketBits) * kSubBuckets;

 private:
  std::vector<uint64_t> counts_;
  uint64_t max_ = 0;
};

inline size_t LatencyHistogram::BucketOf(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  // value = m << shift with m in [64, 128): bucket (top_bit - 6) * 64 + m.
  const int top_bit = 63 - __builtin_clzll(value);
  const int shift = top_bit - kSubBucketBits;
  return static_cast<size_t>(top_bit - kSubBucketBits) * kSubBuckets +
         static_cast<size_t>(value >> shift);
}

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_LATENCY_HISTOGRAM_H_
