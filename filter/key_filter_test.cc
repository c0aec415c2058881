#include "filter/key_filter.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "io/mem_env.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

constexpr char kDir[] = "/s/index";
constexpr char kPath[] = "/s/index/data.filter";

FilterTarget Target() {
  FilterTarget t;
  t.generation = 7;
  t.records = 1234;
  t.data_id = 0x0123456789abcdefULL;
  return t;
}

std::string Key(uint64_t i) { return absl::StrCat("key-", i, "-padding"); }

// A store's key hash of `bits` bits (the filter does not care which).
constexpr int kHashBits = 30;
uint64_t HashOf(absl::string_view key, int bits = kHashBits) {
  const uint64_t h = KeyFingerprint(absl::StrCat("store:", key));
  return bits >= 64 ? h : h >> (64 - bits);
}

bool MayContain(const KeyFilter& f, absl::string_view key,
                int bits = kHashBits) {
  return f.MayContain(HashOf(key, bits), KeyFingerprint(key));
}

std::string Build(const std::vector<std::string>& keys,
                  const FilterTarget& target, int bits = kHashBits) {
  KeyFilterBuilder builder(keys.size(), bits);
  for (const std::string& k : keys) builder.Add(k, HashOf(k, bits));
  return builder.Finish(target);
}

RC_GTEST_PROP(KeyFilter, NeverReportsAnAddedKeyAbsent, ()) {
  const int bits = *rc::gen::inRange(1, 65);
  const auto keys = *rc::gen::container<std::vector<std::string>>(
      rc::gen::container<std::string>(rc::gen::arbitrary<char>()));
  const std::string bytes = Build(keys, Target(), bits);
  auto filter = KeyFilter::Parse(bytes, Target(), bits);
  RC_ASSERT(filter != nullptr);
  for (const std::string& k : keys) RC_ASSERT(MayContain(*filter, k, bits));
}

TEST(KeyFilter, FalsePositivesAreRare) {
  constexpr uint64_t kKeys = 100000;
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < kKeys; ++i) keys.push_back(Key(i));
  const std::string bytes = Build(keys, Target());
  auto filter = KeyFilter::Parse(bytes, Target(), kHashBits);
  ASSERT_NE(filter, nullptr);
  EXPECT_EQ(filter->probes(), KeyFilterBuilder::kProbes);
  // 100000 keys need 1954 blocks: 2048.
  EXPECT_EQ(filter->blocks(), 2048u);
  EXPECT_EQ(KeyFilterBuilder::BlocksFor(kKeys), 2048u);
  uint64_t positives = 0;
  for (uint64_t i = kKeys; i < 2 * kKeys; ++i) {
    positives += MayContain(*filter, Key(i)) ? 1 : 0;
  }
  // About 1% at 10 bits per key and 6 probes in 512-bit blocks.
  EXPECT_LT(positives, kKeys * 25 / 1000) << positives;
  EXPECT_GT(positives, 0u);
}

TEST(KeyFilter, BlocksArePowersOfTwoWithAtLeastTenBitsPerKey) {
  EXPECT_EQ(KeyFilterBuilder::BlocksFor(0), 1u);
  EXPECT_EQ(KeyFilterBuilder::BlocksFor(51), 1u);   // 510 bits
  EXPECT_EQ(KeyFilterBuilder::BlocksFor(52), 2u);   // 520 bits
  EXPECT_EQ(KeyFilterBuilder::BlocksFor(103), 4u);  // 1030 bits
  for (uint64_t keys : {uint64_t{1000}, uint64_t{12345}, uint64_t{10000000},
                        uint64_t{1} << 40, ~uint64_t{0}}) {
    const uint64_t blocks = KeyFilterBuilder::BlocksFor(keys);
    EXPECT_EQ(blocks & (blocks - 1), 0u) << keys;
    if (keys < (uint64_t{1} << 56)) {
      EXPECT_GE(blocks * 512, keys * KeyFilterBuilder::kBitsPerKey) << keys;
      EXPECT_LT(blocks * 256, keys * KeyFilterBuilder::kBitsPerKey) << keys;
    }
  }
}

// A filter that includes another one and adds keys holds all of them, and is
// the filter built from all of them at once, bit for bit.
RC_GTEST_PROP(KeyFilter, IncludingAFilterEqualsBuildingFromAllKeys, ()) {
  const int bits = *rc::gen::inRange(1, 65);
  const auto old_keys = *rc::gen::container<std::vector<std::string>>(
      rc::gen::container<std::string>(rc::gen::arbitrary<char>()));
  const auto new_keys = *rc::gen::container<std::vector<std::string>>(
      rc::gen::container<std::string>(rc::gen::arbitrary<char>()));
  const uint64_t expected = old_keys.size() + new_keys.size();
  KeyFilterBuilder old_builder(expected, bits);
  for (const std::string& k : old_keys) old_builder.Add(k, HashOf(k, bits));
  const std::string old_bytes = old_builder.Finish(Target());
  auto base = KeyFilter::Parse(old_bytes, Target(), bits);
  RC_ASSERT(base != nullptr);

  KeyFilterBuilder extended(expected, bits);
  RC_ASSERT(extended.CanInclude(*base));
  extended.Include(*base);
  for (const std::string& k : new_keys) extended.Add(k, HashOf(k, bits));
  KeyFilterBuilder whole(expected, bits);
  for (const std::string& k : old_keys) whole.Add(k, HashOf(k, bits));
  for (const std::string& k : new_keys) whole.Add(k, HashOf(k, bits));
  RC_ASSERT(extended.Finish(Target()) == whole.Finish(Target()));
}

TEST(KeyFilter, OnlyAFilterOfTheSameShapeCanBeIncluded) {
  const std::string bytes = Build({Key(1), Key(2)}, Target());
  auto base = KeyFilter::Parse(bytes, Target(), kHashBits);
  ASSERT_NE(base, nullptr);
  ASSERT_EQ(base->blocks(), 1u);
  EXPECT_TRUE(KeyFilterBuilder(51, kHashBits).CanInclude(*base));
  // Another block count: the keys' blocks would differ.
  EXPECT_FALSE(KeyFilterBuilder(52, kHashBits).CanInclude(*base));
  // Another key hash width: likewise.
  EXPECT_FALSE(KeyFilterBuilder(51, kHashBits + 1).CanInclude(*base));
}

TEST(KeyFilter, EmptyFilterIsValidAndRejectsKeys) {
  const std::string bytes = Build({}, Target());
  EXPECT_EQ(bytes.size(), KeyFilter::kHeaderSize + 64);
  auto filter = KeyFilter::Parse(bytes, Target(), kHashBits);
  ASSERT_NE(filter, nullptr);
  EXPECT_FALSE(MayContain(*filter, Key(1)));
}

TEST(KeyFilter, OnlyTheDataFileItWasBuiltForUsesIt) {
  const std::string bytes = Build({Key(1), Key(2)}, Target());
  std::string why;
  EXPECT_NE(KeyFilter::Parse(bytes, Target(), kHashBits, &why), nullptr) << why;
  FilterTarget other = Target();
  other.generation += 1;
  EXPECT_EQ(KeyFilter::Parse(bytes, other, kHashBits, &why), nullptr);
  EXPECT_EQ(why, "built for another data file");
  other = Target();
  other.records -= 1;
  EXPECT_EQ(KeyFilter::Parse(bytes, other, kHashBits), nullptr);
  other = Target();
  other.data_id ^= 1;
  EXPECT_EQ(KeyFilter::Parse(bytes, other, kHashBits), nullptr);
  // Keys hashed to another width would land in other blocks.
  EXPECT_EQ(KeyFilter::Parse(bytes, Target(), kHashBits + 1, &why), nullptr);
  EXPECT_EQ(why, "built for another key hash width");
}

TEST(KeyFilter, DamageAnywhereIsDetected) {
  const std::string bytes = Build({Key(1), Key(2), Key(3)}, Target());
  // Every single-bit flip, in the header and in the blocks.
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      std::string why;
      EXPECT_EQ(KeyFilter::Parse(damaged, Target(), kHashBits, &why), nullptr)
          << "byte " << i << " bit " << bit;
      EXPECT_FALSE(why.empty());
    }
  }
  // Truncated or extended.
  for (size_t n : {size_t{0}, size_t{63}, size_t{64}, bytes.size() - 1}) {
    EXPECT_EQ(KeyFilter::Parse(bytes.substr(0, n), Target(), kHashBits),
              nullptr)
        << n;
  }
  EXPECT_EQ(
      KeyFilter::Parse(bytes + std::string(64, '\0'), Target(), kHashBits),
      nullptr);
}

// Filters are files: the fingerprint must not change (on any machine) unless
// the format's magic does, or filters written before would miss keys.
TEST(KeyFilter, FingerprintIsPinned) {
  EXPECT_EQ(KeyFingerprint(""), 0x2d06800538d394c2ULL);
  EXPECT_EQ(KeyFingerprint("a"), 0xe6c632b61e964e1fULL);
  EXPECT_EQ(KeyFingerprint("0123456789abcdef0123456789ABCDEF"),
            0x70676ce1b0178e1eULL);
  EXPECT_EQ(KeyFingerprint("0123456789abcdef0123456789ABCDEF0123456789abc"),
            0x4b8b48d08d983605ULL);
}

// Every byte and every length matters.
TEST(KeyFilter, FingerprintsOfNearbyKeysDiffer) {
  std::set<uint64_t> seen;
  std::string key(40, 'k');
  for (size_t n = 0; n <= key.size(); ++n) {
    EXPECT_TRUE(seen.insert(KeyFingerprint(key.substr(0, n))).second) << n;
  }
  for (size_t i = 0; i < key.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string k = key;
      k[i] = static_cast<char>(k[i] ^ (1 << bit));
      EXPECT_TRUE(seen.insert(KeyFingerprint(k)).second) << i << " " << bit;
    }
  }
}

TEST(KeyFilter, DataIdDependsOnEveryPart) {
  EXPECT_EQ(DataId("a", "b", "f"), DataId("a", "b", "f"));
  EXPECT_NE(DataId("a", "b", "f"), DataId("b", "a", "f"));
  EXPECT_NE(DataId("ab", "c", "f"), DataId("a", "bc", "f"));
  EXPECT_NE(DataId("a", "b", "f"), DataId("a", "b", "g"));
  EXPECT_NE(DataId("a", "bf", ""), DataId("a", "b", "f"));
}

TEST(KeyFilter, WriteThenOpen) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs(kDir).ok());
  // Absent: no filter, no error.
  auto none = KeyFilter::Open(&env, kPath, Target(), kHashBits);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);

  ASSERT_TRUE(KeyFilter::Write(&env, kPath, Build({Key(1)}, Target())).ok());
  auto opened = KeyFilter::Open(&env, kPath, Target(), kHashBits);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_NE(*opened, nullptr);
  EXPECT_TRUE(MayContain(**opened, Key(1)));
  EXPECT_FALSE(*env.FileExists(absl::StrCat(kPath, ".tmp")));

  // A stale filter is not used.
  FilterTarget next = Target();
  next.generation += 1;
  auto stale = KeyFilter::Open(&env, kPath, next, kHashBits);
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(*stale, nullptr);

  // Writing again replaces it, even over a leftover temporary file.
  env.SetContents(absl::StrCat(kPath, ".tmp"), std::string(5000, 'x'));
  ASSERT_TRUE(KeyFilter::Write(&env, kPath, Build({Key(2)}, next)).ok());
  auto replaced = KeyFilter::Open(&env, kPath, next, kHashBits);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  ASSERT_NE(*replaced, nullptr);
  EXPECT_TRUE(MayContain(**replaced, Key(2)));
  EXPECT_EQ(env.Contents(kPath)->size(), KeyFilter::kHeaderSize + 64);

  // A damaged file is not used either.
  std::string bytes = *env.Contents(kPath);
  bytes[KeyFilter::kHeaderSize] ^= 1;
  env.SetContents(kPath, bytes);
  auto damaged = KeyFilter::Open(&env, kPath, next, kHashBits);
  ASSERT_TRUE(damaged.ok()) << damaged.status();
  EXPECT_EQ(*damaged, nullptr);
}

}  // namespace
}  // namespace kvindex
