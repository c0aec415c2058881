#include "datafile/compact_fanout.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "fan/fan.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

constexpr size_t kEntry = 45;

Fanout Build(int hash_bits, const std::vector<uint64_t>& sorted_hashes) {
  FanoutBuilder b(hash_bits, kEntry, sorted_hashes.size());
  for (size_t i = 0; i < sorted_hashes.size(); ++i) {
    b.Update(sorted_hashes[i], i * kEntry);
  }
  return std::move(b).Finish();
}

void ExpectSameSlots(const CompactFanout& c, const Fanout& f) {
  ASSERT_EQ(c.size(), f.nb_fans());
  for (size_t b = 0; b < f.nb_fans(); ++b) {
    ASSERT_EQ(c.SlotRecord(b), f.slot(b) / kEntry) << "bucket " << b;
  }
}

// Whatever the hashes, the compact table is either empty or exactly the
// table's slots.
RC_GTEST_PROP(CompactFanout, EmptyOrExact, ()) {
  const int hash_bits = *rc::gen::inRange(1, 65);
  const uint64_t max =
      hash_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << hash_bits) - 1;
  std::vector<uint64_t> hashes = *rc::gen::container<std::vector<uint64_t>>(
      rc::gen::oneOf(rc::gen::inRange<uint64_t>(0, max / 8 + 1),
                     rc::gen::map(rc::gen::arbitrary<uint64_t>(),
                                  [max](uint64_t h) { return h & max; })));
  RC_PRE(!hashes.empty());
  std::sort(hashes.begin(), hashes.end());
  const Fanout f = Build(hash_bits, hashes);
  const CompactFanout c = CompactFanout::Of(f, hashes.size(), kEntry);
  RC_TAG(c.empty() ? "empty" : "compact");
  if (!c.empty()) ExpectSameSlots(c, f);
}

// OCaml stores: 30-bit hashes, uniformly spread. A million records fit.
TEST(CompactFanout, UniformHashesAlwaysFit) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> hashes(1000000);
  for (uint64_t& h : hashes) h = rng() >> 34;
  std::sort(hashes.begin(), hashes.end());
  const Fanout f = Build(30, hashes);
  const CompactFanout c = CompactFanout::Of(f, hashes.size(), kEntry);
  ASSERT_FALSE(c.empty());
  ExpectSameSlots(c, f);
}

TEST(CompactFanout, TooSkewedHashesGiveAnEmptyTable) {
  // 70000 records, all in the lowest 1/64 of the hash space: the slots of
  // the first buckets are tens of thousands of records off an even spread.
  std::vector<uint64_t> hashes(70000);
  for (size_t i = 0; i < hashes.size(); ++i) hashes[i] = i * 16;
  const Fanout f = Build(30, hashes);
  ASSERT_GT(f.nb_fans(), 64u);
  EXPECT_TRUE(CompactFanout::Of(f, hashes.size(), kEntry).empty());
}

TEST(CompactFanout, NoRecordsGiveAnEmptyTable) {
  const Fanout f = Build(30, {});
  EXPECT_TRUE(CompactFanout::Of(f, 0, kEntry).empty());
}

}  // namespace
}  // namespace kvindex
