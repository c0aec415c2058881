#include "testing/keys.h"

#include <set>
#include <string>

#include "data/schema.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace test {
namespace {

TEST(Keys, SmallKeysAreDistinctAndPickTheirHash) {
  std::set<std::string> seen;
  for (uint32_t i = 0; i < 70000; i += 7) {
    const std::string k = SmallKey(i);
    ASSERT_EQ(k.size(), kSmallKeySize);
    EXPECT_TRUE(seen.insert(k).second) << i;
    EXPECT_EQ(TinyHash(k), i & 3) << i;
    EXPECT_EQ(FirstByteHash(k), i & 0xff) << i;
  }
}

TEST(Keys, SmallValuesAreLittleEndian) {
  EXPECT_EQ(SmallValue(0x04030201), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(SmallValue(0).size(), kSmallValueSize);
}

TEST(Keys, HashesOfEmptyKeysAreZero) {
  EXPECT_EQ(TinyHash(""), 0u);
  EXPECT_EQ(FirstByteHash(""), 0u);
  EXPECT_EQ(TinyHash("\xff"), 3u);
  EXPECT_EQ(FirstByteHash("\xff"), 0xffu);
}

TEST(Keys, MakeSchemaIsValid) {
  const Schema s = MakeSchema(kSmallKeySize, kSmallValueSize, 2, &TinyHash);
  EXPECT_TRUE(s.Validate().ok()) << s.Validate();
  EXPECT_EQ(s.entry_size(), 8u);
  EXPECT_EQ(s.hash_bits, 2);
  EXPECT_EQ(s.hash(SmallKey(6)), 2u);
}

}  // namespace
}  // namespace test
}  // namespace kvindex
