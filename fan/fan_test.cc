#include "fan/fan.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kWhat = "/store/index/data";

uint64_t MaxHash(int bits) {
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}

std::string Slots(const std::vector<int64_t>& slots) {
  std::string out;
  for (int64_t s : slots) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>(static_cast<uint64_t>(s) >> shift));
    }
  }
  return out;
}

Fanout Build(int hash_bits, size_t entry_size, uint64_t expected,
             const std::vector<uint64_t>& sorted_hashes) {
  FanoutBuilder b(hash_bits, entry_size, expected);
  for (size_t i = 0; i < sorted_hashes.size(); ++i) {
    b.Update(sorted_hashes[i], i * entry_size);
  }
  return std::move(b).Finish();
}

// ---- Sizing ----

TEST(FanoutBitsFor, WorkedExampleFromTheCliStore) {
  // 909 records of 40 bytes: 36 360 bytes, 9 pages -> 16 fans, a 128-byte
  // table.
  EXPECT_EQ(Fanout::BitsFor(30, 40, 909), 4);
  FanoutBuilder b(30, 40, 909);
  EXPECT_EQ(b.nb_fans(), 16u);
  EXPECT_EQ(b.exported_size(), 128u);
  Fanout f = std::move(b).Finish();
  EXPECT_EQ(f.bits(), 4);
  EXPECT_EQ(f.nb_fans(), 16u);
  EXPECT_EQ(f.Export().size(), 128u);
}

TEST(FanoutBitsFor, PowerOfTwoBoundaries) {
  EXPECT_EQ(Fanout::BitsFor(30, 56, 0), 0);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 1), 0);  // exactly one page
  EXPECT_EQ(Fanout::BitsFor(30, 1, 4096), 0);
  EXPECT_EQ(Fanout::BitsFor(30, 1, 4097), 1);  // a byte over one page
  EXPECT_EQ(Fanout::BitsFor(30, 4097, 1), 1);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 2), 1);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 3), 2);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 4), 2);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 5), 3);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, 1u << 20), 20);
  EXPECT_EQ(Fanout::BitsFor(30, 4096, (1u << 20) + 1), 21);
}

TEST(FanoutBitsFor, ClampedToHashBits) {
  EXPECT_EQ(Fanout::BitsFor(5, 4096, 1000), 5);  // would be 10
  EXPECT_EQ(Fanout::BitsFor(1, 4096, 3), 1);
  // n * entry_size overflows 64 bits: still no overflow, clamped.
  EXPECT_EQ(Fanout::BitsFor(64, size_t{1} << 20, ~uint64_t{0}), 64);
  EXPECT_EQ(Fanout::BitsFor(30, size_t{1} << 20, ~uint64_t{0}), 30);
  // 2^64 - 1 bytes -> 2^52 pages.
  EXPECT_EQ(Fanout::BitsFor(64, 1, ~uint64_t{0}), 52);
}

// The OCaml fan fuzzer's property "fan size", for its parameters (fan-out
// sizing: docs/format.md §6.2).
RC_GTEST_PROP(Fanout, RecordsPerFanFitInAPage, ()) {
  const uint64_t n = *rc::gen::inRange<uint64_t>(0, 100000000);
  const int k = Fanout::BitsFor(30, 56, n);
  RC_ASSERT(k >= 0);
  RC_ASSERT(k <= 30);
  const uint64_t nb_fans = uint64_t{1} << k;
  RC_ASSERT((n / nb_fans) * 56 <= 4096);
  // Minimal: one fewer bit would not do.
  if (k > 0) RC_ASSERT(n * 56 > (nb_fans / 2) * 4096);
}

RC_GTEST_PROP(Fanout, RecordsPerFanFitInAPageAnyEntrySize, ()) {
  const size_t entry = *rc::gen::inRange<size_t>(1, 10000);
  const uint64_t n = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 40);
  const int k = Fanout::BitsFor(64, entry, n);
  RC_ASSERT(k < 64);
  const uint64_t nb_fans = uint64_t{1} << k;
  // ceil(n / nb_fans) records per fan on average, within a page.
  RC_ASSERT((n / nb_fans) * entry <= 4096);
}

// ---- Builder, Search and Bucket ----

// hash_bits 4, 4 buckets of 4 hashes each; records of 1024 bytes.
TEST(Fanout, SearchBoundsForEveryBucketAndHash) {
  const std::vector<uint64_t> hashes = {0, 1, 1, 5, 6, 13, 15};
  FanoutBuilder b(4, 1024, 16);  // 16 KiB -> 4 pages -> k = 2
  ASSERT_EQ(b.nb_fans(), 4u);
  for (size_t i = 0; i < hashes.size(); ++i) b.Update(hashes[i], i * 1024);
  const Fanout f = std::move(b).Finish();
  ASSERT_EQ(f.bits(), 2);
  // Slots: last record of buckets 0 (hash 1 at 2048), 1 (6 at 4096), 2 (empty:
  // takes 4096), 3 (15 at 6144).
  EXPECT_EQ(f.Export(), Slots({2048, 4096, 4096, 6144}));
  const Fanout::Range expected[4] = {
      {0, 2048}, {2048, 4096}, {4096, 4096}, {4096, 6144}};
  for (uint64_t h = 0; h < 16; ++h) {
    SCOPED_TRACE(h);
    EXPECT_EQ(f.Bucket(h), h >> 2);
    const Fanout::Range r = f.Search(h);
    EXPECT_EQ(r.low, expected[h >> 2].low);
    EXPECT_EQ(r.high, expected[h >> 2].high);
  }
}

TEST(Fanout, EmptyLeadingBucketsAndRecordAtZero) {
  // All records in the last bucket: the first ones stay 0 (indistinguishable
  // from an empty bucket holding offset 0, which is harmless).
  const Fanout f = Build(3, 2048, 8, {6, 7, 7});  // 16 KiB -> k = 2, 4 buckets
  ASSERT_EQ(f.nb_fans(), 4u);
  EXPECT_EQ(f.Export(), Slots({0, 0, 0, 4096}));
  for (uint64_t h = 0; h < 6; ++h) {
    EXPECT_EQ(f.Search(h).low, 0u) << h;
    EXPECT_EQ(f.Search(h).high, 0u) << h;
  }
  EXPECT_EQ(f.Search(6).low, 0u);
  EXPECT_EQ(f.Search(6).high, 4096u);
}

TEST(Fanout, KEqualsHashBitsMeansBucketIsTheHash) {
  // 8 buckets for 3-bit hashes: no shift at all.
  FanoutBuilder b(3, 4096, 100);
  ASSERT_EQ(b.nb_fans(), 8u);
  const Fanout f = std::move(b).Finish();
  for (uint64_t h = 0; h < 8; ++h) EXPECT_EQ(f.Bucket(h), h);
}

TEST(Fanout, SingleBucketWith64BitHashes) {
  // k == 0 with hash_bits 64: shift would be 64.
  const Fanout f = Build(64, 8, 10, {0, 1, uint64_t{1} << 63, ~uint64_t{0}});
  ASSERT_EQ(f.nb_fans(), 1u);
  for (uint64_t h : {uint64_t{0}, uint64_t{1} << 63, ~uint64_t{0}}) {
    EXPECT_EQ(f.Bucket(h), 0u);
    EXPECT_EQ(f.Search(h).low, 0u);
    EXPECT_EQ(f.Search(h).high, 24u);
  }
}

TEST(Fanout, TopBitsWith64BitHashes) {
  // 2^12 records of 4 KiB: k = 12 of 64 bits.
  FanoutBuilder b(64, 4096, 4096);
  ASSERT_EQ(b.nb_fans(), 4096u);
  const Fanout f = std::move(b).Finish();
  EXPECT_EQ(f.Bucket(~uint64_t{0}), 4095u);
  EXPECT_EQ(f.Bucket(uint64_t{1} << 63), 2048u);
  EXPECT_EQ(f.Bucket((uint64_t{1} << 52) - 1), 0u);
  EXPECT_EQ(f.Bucket(uint64_t{1} << 52), 1u);
}

// LastHashOfBucket(h) is the last hash of h's bucket: it and h share a
// bucket, and the hash after it (if any) opens the next one.
RC_GTEST_PROP(FanoutBuilder, LastHashOfBucketEndsTheBucket, ()) {
  const int hash_bits = *rc::gen::inRange(1, 65);
  const uint64_t expected = *rc::gen::inRange<uint64_t>(0, 1 << 20);
  const size_t entry_size = *rc::gen::inRange<size_t>(1, 5000);
  const uint64_t h = *rc::gen::arbitrary<uint64_t>() & MaxHash(hash_bits);
  FanoutBuilder b(hash_bits, entry_size, expected);
  const uint64_t last = b.LastHashOfBucket(h);
  const Fanout f = std::move(b).Finish();
  RC_ASSERT(last >= h);
  RC_ASSERT(last <= MaxHash(hash_bits));
  RC_ASSERT(f.Bucket(last) == f.Bucket(h));
  RC_ASSERT(f.BucketHashes(f.Bucket(h)).high == last);
  if (last < MaxHash(hash_bits)) {
    RC_ASSERT(f.Bucket(last + 1) == f.Bucket(h) + 1);
  }
}

TEST(FanoutBuilder, LastHashOfBucketExamples) {
  FanoutBuilder eight(3, 4096, 100);  // 8 buckets of 3-bit hashes
  EXPECT_EQ(eight.LastHashOfBucket(5), 5u);
  FanoutBuilder one(64, 8, 10);  // a single bucket of 64-bit hashes
  EXPECT_EQ(one.LastHashOfBucket(0), ~uint64_t{0});
  FanoutBuilder top(64, 4096, 4096);  // 4096 buckets: top 12 of 64 bits
  EXPECT_EQ(top.LastHashOfBucket(0), (uint64_t{1} << 52) - 1);
  EXPECT_EQ(top.LastHashOfBucket(uint64_t{1} << 52), (uint64_t{2} << 52) - 1);
}

TEST(Fanout, NoRecords) {
  const Fanout f = Build(30, 40, 0, {});
  EXPECT_EQ(f.nb_fans(), 1u);
  EXPECT_EQ(f.Export(), Slots({0}));
  absl::StatusOr<Fanout> g = Fanout::Import(f.Export(), 30, 40, 0, kWhat);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(*g, f);
}

// A sorted list of hashes below 2^bits, drawn from one of several
// distributions, adversarial ones included. Call inside a property.
std::vector<uint64_t> SortedHashes(int bits) {
  const uint64_t max = MaxHash(bits);
  const auto masked = rc::gen::map(rc::gen::arbitrary<uint64_t>(),
                                   [max](uint64_t h) { return h & max; });
  // Full-width values (arbitrary<> favours small ones at small sizes).
  const auto wide = rc::gen::map(rc::gen::pair(rc::gen::arbitrary<uint64_t>(),
                                               rc::gen::inRange<int>(0, 64)),
                                 [max](std::pair<uint64_t, int> p) {
                                   return (p.first << p.second) & max;
                                 });
  const auto extremes =
      rc::gen::elementOf(std::vector<uint64_t>{0, 1, max / 2, max - 1, max});
  const int kind = *rc::gen::inRange(0, 5);
  const size_t n = *rc::gen::inRange<size_t>(0, 3000);
  std::vector<uint64_t> v;
  switch (kind) {
    case 0:  // uniform-ish
      v = *rc::gen::container<std::vector<uint64_t>>(
          n, rc::gen::oneOf(masked, wide));
      break;
    case 1:  // all equal
      v.assign(n, *rc::gen::oneOf(wide, extremes));
      break;
    case 2: {  // clustered around a few centres
      const std::vector<uint64_t> centres =
          *rc::gen::container<std::vector<uint64_t>>(
              3, rc::gen::oneOf(wide, extremes));
      for (size_t i = 0; i < n; ++i) {
        const uint64_t c = centres[i % 3];
        const uint64_t d = (i * 7919) % 8;
        v.push_back(d > max - c ? max : c + d);
      }
      break;
    }
    case 3:  // extremes only
      v = *rc::gen::container<std::vector<uint64_t>>(n, extremes);
      break;
    default:  // mixture
      v = *rc::gen::container<std::vector<uint64_t>>(
          n, rc::gen::oneOf(masked, wide, extremes));
      break;
  }
  RC_CLASSIFY(kind == 1, "all equal");
  RC_CLASSIFY(kind == 2, "clustered");
  RC_CLASSIFY(kind == 3, "extremes");
  std::sort(v.begin(), v.end());
  for (uint64_t h : v) RC_ASSERT(h <= max);
  return v;
}

// The OCaml fan fuzzer's property "update", for hash_bits 30 and 64 and any
// entry size (records per fan x entry <= 4096 keeps tables small).
void CheckEveryRecordInItsRange(int bits) {
  const std::vector<uint64_t> hashes = SortedHashes(bits);
  const size_t entry = *rc::gen::inRange<size_t>(1, 5000);
  // The merge's estimate of n may exceed the records actually written.
  const uint64_t extra = *rc::gen::inRange<uint64_t>(0, hashes.size() + 1);
  const Fanout f = Build(bits, entry, hashes.size() + extra, hashes);
  RC_ASSERT(f.nb_fans() ==
            (size_t{1} << Fanout::BitsFor(bits, entry, hashes.size() + extra)));
  for (size_t i = 0; i < hashes.size(); ++i) {
    const Fanout::Range r = f.Search(hashes[i]);
    RC_ASSERT(r.low <= i * entry);
    RC_ASSERT(i * entry <= r.high);
    RC_ASSERT(f.Bucket(hashes[i]) < f.nb_fans());
  }
  // Ranges of consecutive buckets touch: each starts at the previous one's end.
  for (size_t i = 1; i < hashes.size(); ++i) {
    const Fanout::Range a = f.Search(hashes[i - 1]);
    const Fanout::Range b = f.Search(hashes[i]);
    RC_ASSERT(a.high <= b.high);
    RC_ASSERT(a.low <= b.low);
  }
}

RC_GTEST_PROP(Fanout, EveryRecordInItsSearchRange30, ()) {
  CheckEveryRecordInItsRange(30);
}
RC_GTEST_PROP(Fanout, EveryRecordInItsSearchRange64, ()) {
  CheckEveryRecordInItsRange(64);
}
RC_GTEST_PROP(Fanout, EveryRecordInItsSearchRangeAnyBits, ()) {
  CheckEveryRecordInItsRange(*rc::gen::inRange(1, 65));
}

// The OCaml fan fuzzer's properties "export size" and "export/import".
RC_GTEST_PROP(Fanout, ExportSizeAndImportExportIsIdentity, ()) {
  const int bits = *rc::gen::inRange(1, 65);
  const std::vector<uint64_t> hashes = SortedHashes(bits);
  const size_t entry = *rc::gen::inRange<size_t>(1, 5000);
  const Fanout f = Build(bits, entry, hashes.size(), hashes);
  const std::string bytes = f.Export();
  RC_ASSERT(bytes.size() == f.nb_fans() * 8);
  RC_ASSERT(bytes.size() == f.exported_size());
  absl::StatusOr<Fanout> g =
      Fanout::Import(bytes, bits, entry, hashes.size() * entry, kWhat);
  RC_ASSERT(g.ok());
  RC_ASSERT(*g == f);
  RC_ASSERT(g->bits() == f.bits());
  RC_ASSERT(g->Export() == bytes);
  for (uint64_t h : hashes) {
    RC_ASSERT(g->Search(h).low == f.Search(h).low);
    RC_ASSERT(g->Search(h).high == f.Search(h).high);
  }
}

TEST(Fanout, ExportIsBigEndianInt64) {
  const Fanout f = Build(8, 0x0102, 64, {0, 0x80});  // 32 KiB -> k = 3
  ASSERT_EQ(f.nb_fans(), 8u);
  const std::string bytes = f.Export();
  // Bucket 4 (hash 0x80) holds 0x0102.
  EXPECT_EQ(bytes.substr(32, 8), std::string("\0\0\0\0\0\0\x01\x02", 8));
}

// ---- Import validation ----

void ExpectDataLoss(const absl::StatusOr<Fanout>& r, absl::string_view part) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(std::string(kWhat)));
  EXPECT_THAT(r.status().message(), HasSubstr(std::string(part)));
}

TEST(FanoutImport, AcceptsValidTable) {
  absl::StatusOr<Fanout> r =
      Fanout::Import(Slots({0, 40, 40, 120}), 30, 40, 160, kWhat);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bits(), 2);
  EXPECT_EQ(r->nb_fans(), 4u);
  EXPECT_EQ(r->Search(0).low, 0u);
  EXPECT_EQ(r->Search(0).high, 0u);
  EXPECT_EQ(r->Search(uint64_t{3} << 28).low, 40u);
  EXPECT_EQ(r->Search(uint64_t{3} << 28).high, 120u);
}

TEST(FanoutImport, RejectsLengthNotMultipleOfEight) {
  ExpectDataLoss(Fanout::Import(std::string(12, '\0'), 30, 40, 400, kWhat),
                 "12 bytes");
  ExpectDataLoss(Fanout::Import(std::string(7, '\0'), 30, 40, 400, kWhat),
                 "7 bytes");
}

TEST(FanoutImport, RejectsEmptyTable) {
  ExpectDataLoss(Fanout::Import("", 30, 40, 400, kWhat), "0 bytes");
}

TEST(FanoutImport, RejectsSlotCountNotPowerOfTwo) {
  ExpectDataLoss(Fanout::Import(Slots({0, 40, 80}), 30, 40, 400, kWhat),
                 "power of two");
  ExpectDataLoss(Fanout::Import(Slots({0, 0, 0, 0, 0, 0}), 30, 40, 400, kWhat),
                 "power of two");
}

TEST(FanoutImport, RejectsDecreasingSlots) {
  ExpectDataLoss(Fanout::Import(Slots({80, 40}), 30, 40, 400, kWhat),
                 "smaller than the previous");
}

TEST(FanoutImport, RejectsMisalignedSlot) {
  ExpectDataLoss(Fanout::Import(Slots({0, 41}), 30, 40, 400, kWhat),
                 "not a multiple of the entry size 40");
}

TEST(FanoutImport, RejectsSlotBeyondData) {
  // The last record of 10 starts at 360; 400 is past it.
  ExpectDataLoss(Fanout::Import(Slots({0, 400}), 30, 40, 400, kWhat),
                 "past the records");
  ExpectDataLoss(Fanout::Import(Slots({0, 40}), 30, 40, 0, kWhat),
                 "past the records");
  // A negative int64 is a huge offset.
  ExpectDataLoss(Fanout::Import(Slots({0, -40}), 30, 40, 400, kWhat),
                 "past the records");
  EXPECT_TRUE(Fanout::Import(Slots({0, 360}), 30, 40, 400, kWhat).ok());
}

TEST(FanoutImport, RejectsMoreBucketsThanHashValues) {
  ExpectDataLoss(Fanout::Import(Slots({0, 0, 0, 0}), 1, 40, 400, kWhat),
                 "hash_bits = 1");
  EXPECT_TRUE(Fanout::Import(Slots({0, 0, 0, 0}), 2, 40, 400, kWhat).ok());
}

TEST(FanoutImport, RejectsBadArguments) {
  absl::StatusOr<Fanout> r = Fanout::Import(Slots({0}), 0, 40, 400, kWhat);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = Fanout::Import(Slots({0}), 65, 40, 400, kWhat);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = Fanout::Import(Slots({0}), 30, 0, 400, kWhat);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvindex
