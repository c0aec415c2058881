// The large pool has the shape its header promises: the property tests rely on
// it to reach multi-bucket fan-out tables, long runs of equal hashes at bucket
// edges, and absent keys that collide with present ones.
#include "tests/index_model_large_pool.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace kvindex {
namespace index_model_test {
namespace {

constexpr uint64_t kBucket = uint64_t{1} << (kLargeHashBits - kLargeEdgeBits);

// Number of keys per hash, over the whole pool.
std::map<uint64_t, int> KeysPerHash() {
  std::map<uint64_t, int> count;
  for (int i = 0; i < kLargeNumKeys; ++i) ++count[LargePoolHash(LargeKey(i))];
  return count;
}

// The fan-out bits of a data file of n records of e bytes (docs/format.md
// §6.2).
int FanoutBits(uint64_t n, uint64_t e) {
  const uint64_t pages = (n * e + 4095) / 4096;
  int k = 0;
  while ((uint64_t{1} << k) < pages) ++k;
  return k;
}

TEST(LargePool, KeysAndValuesHaveTheSchemaSizesAndAreDistinct) {
  const Pool& pool = LargePool();
  std::set<std::string> keys;
  for (int i = 0; i < pool.num_keys; ++i) {
    const std::string key = pool.key(i);
    EXPECT_EQ(key.size(), pool.schema.key_size) << key;
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), static_cast<size_t>(kLargeNumKeys));
  EXPECT_EQ(pool.value(0).size(), pool.schema.value_size);
  EXPECT_EQ(pool.value(kLargeNumValues - 1).size(), pool.schema.value_size);
  EXPECT_NE(pool.value(1), pool.value(10));
}

TEST(LargePool, BindableKeysSkipEveryGhostOnce) {
  const Pool& pool = LargePool();
  EXPECT_EQ(pool.num_bindable(), kLargeNumKeys / 8 * 7);
  std::set<std::string> bindable;
  for (int i = 0; i < pool.num_bindable(); ++i) {
    bindable.insert(pool.BindableKey(i));
  }
  EXPECT_EQ(bindable.size(), static_cast<size_t>(pool.num_bindable()));
  for (int i = 0; i < pool.num_keys; ++i) {
    EXPECT_EQ(bindable.count(pool.key(i)) > 0, pool.Bindable(i)) << i;
  }
}

TEST(LargePool, DataFilesOfThePoolGetManyFanoutBuckets) {
  const Pool& pool = LargePool();
  EXPECT_EQ(FanoutBits(pool.num_bindable(), pool.schema.entry_size()), 5);
  EXPECT_GE(FanoutBits(pool.num_bindable() / 2, pool.schema.entry_size()), 4);
}

TEST(LargePool, HashesUseTheFullWidthAndSpreadOverEveryBucket) {
  std::set<uint64_t> buckets;
  for (const auto& [hash, n] : KeysPerHash()) {
    EXPECT_LT(hash, uint64_t{1} << kLargeHashBits);
    buckets.insert(hash / kBucket);
  }
  EXPECT_EQ(buckets.size(), size_t{1} << kLargeEdgeBits);
  EXPECT_EQ(KeysPerHash().begin()->first, 0u);
  EXPECT_EQ(KeysPerHash().rbegin()->first, (uint64_t{1} << kLargeHashBits) - 1);
}

TEST(LargePool, RunsOfEqualHashesSitOnBothSidesOfEveryBucketEdge) {
  const std::map<uint64_t, int> count = KeysPerHash();
  for (uint64_t m = 1; m < (uint64_t{1} << kLargeEdgeBits); ++m) {
    EXPECT_GE(count.count(m * kBucket - 1), 1u) << "edge " << m;
    EXPECT_GE(count.count(m * kBucket), 1u) << "edge " << m;
    EXPECT_GE(count.count(m * kBucket + 1), 1u) << "edge " << m;
  }
  const uint64_t middle = uint64_t{1} << (kLargeHashBits - 1);
  EXPECT_EQ(count.at(middle - 1), kLargeLongRun);
  EXPECT_EQ(count.at(middle), kLargeLongRun);
}

TEST(LargePool, ManyKeysShareHashes) {
  const std::map<uint64_t, int> count = KeysPerHash();
  int shared = 0, long_runs = 0;
  for (const auto& [hash, n] : count) {
    if (n > 1) shared += n;
    if (n >= kLargeLongRun) ++long_runs;
  }
  EXPECT_GT(shared, kLargeNumKeys / 2);
  EXPECT_EQ(long_runs, 3);
  EXPECT_GT(count.size(), 1000u);
}

TEST(LargePool, MostGhostsShareTheirHashWithABindableKey) {
  const Pool& pool = LargePool();
  std::set<uint64_t> bound;
  for (int i = 0; i < pool.num_bindable(); ++i) {
    bound.insert(LargePoolHash(pool.BindableKey(i)));
  }
  int ghosts = 0, colliding = 0;
  for (int i = 0; i < pool.num_keys; ++i) {
    if (pool.Bindable(i)) continue;
    ++ghosts;
    colliding += bound.count(LargePoolHash(pool.key(i)));
  }
  EXPECT_EQ(ghosts, kLargeNumKeys / 8);
  EXPECT_GT(colliding, ghosts / 2);
}

TEST(LargePool, KeyNumbersFollowHashOrder) {
  for (int i = 1; i < kLargeNumKeys; ++i) {
    EXPECT_LE(LargePoolHash(LargeKey(i - 1)), LargePoolHash(LargeKey(i))) << i;
  }
}

TEST(LargePool, OtherKeysHashInRange) {
  EXPECT_LT(LargePoolHash("x0000001"), uint64_t{1} << kLargeHashBits);
  EXPECT_LT(LargePoolHash("k9999999"), uint64_t{1} << kLargeHashBits);
}

}  // namespace
}  // namespace index_model_test
}  // namespace kvindex
