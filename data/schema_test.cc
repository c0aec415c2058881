#include "data/schema.h"

#include <xxhash.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Hashtbl.hash vectors checked against OCaml 4.13.1 (docs/format.md §4.2).
TEST(OcamlStringHash, KnownAnswers) {
  EXPECT_EQ(OcamlStringHash(""), 0u);
  EXPECT_EQ(OcamlStringHash("a"), 721651713u);
  EXPECT_EQ(OcamlStringHash("abc"), 767105082u);
  EXPECT_EQ(OcamlStringHash("abcd"), 65890154u);
  EXPECT_EQ(OcamlStringHash("hello world"), 1053319576u);
  EXPECT_EQ(OcamlStringHash(std::string(20, 'x')), 1007605829u);
  EXPECT_EQ(OcamlStringHash(std::string(32, '1')), 1063484388u);
}

TEST(OcamlStringHash, ThirtyBitsAndBytesMatter) {
  // High bytes (>= 0x80) must be read unsigned, and embedded NULs count.
  const std::string a("\xff\x00\x80", 3);
  const std::string b("\xff\x00\x81", 3);
  EXPECT_NE(OcamlStringHash(a), OcamlStringHash(b));
  EXPECT_NE(OcamlStringHash(std::string(1, '\0')), OcamlStringHash(""));
  EXPECT_NE(OcamlStringHash(std::string(4, '\0')),
            OcamlStringHash(std::string(5, '\0')));
  for (int len = 0; len < 64; ++len) {
    std::string s(len, '\xfe');
    EXPECT_LT(OcamlStringHash(s), uint32_t{1} << 30) << len;
  }
}

TEST(OcamlKeyHash, IsOcamlStringHash) {
  EXPECT_EQ(OcamlKeyHash("hello world"), 1053319576u);
  EXPECT_EQ(OcamlKeyHash(""), 0u);
  EXPECT_EQ(kOcamlHashBits, 30);
}

TEST(Xxh3Hash, KeepsLowBits) {
  const absl::string_view s = "the quick brown fox";
  const uint64_t full = XXH3_64bits(s.data(), s.size());
  EXPECT_EQ(Xxh3Hash(s, 64), full);
  EXPECT_EQ(Xxh3KeyHash64(s), full);
  EXPECT_EQ(Xxh3Hash(s, 63), full & ((uint64_t{1} << 63) - 1));
  EXPECT_EQ(Xxh3Hash(s, 30), full & ((uint64_t{1} << 30) - 1));
  EXPECT_EQ(Xxh3Hash(s, 1), full & 1);
  for (int bits = 1; bits < 64; ++bits) {
    EXPECT_LT(Xxh3Hash(s, bits), uint64_t{1} << bits) << bits;
  }
}

TEST(Xxh3Hash, KnownAnswerEmpty) {
  // XXH3_64bits of the empty input with seed 0 (xxHash's published value).
  EXPECT_EQ(Xxh3Hash("", 64), uint64_t{0x2D06800538D394C2});
}

Schema ValidSchema() {
  Schema s;
  s.key_size = 8;
  s.value_size = 4;
  s.hash_bits = 30;
  s.hash = &OcamlKeyHash;
  return s;
}

TEST(Schema, ValidateAcceptsValid) {
  Schema s = ValidSchema();
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_EQ(s.entry_size(), 12u);
  s.value_size = 0;  // values may be empty
  EXPECT_TRUE(s.Validate().ok());
  s.hash_bits = 1;
  EXPECT_TRUE(s.Validate().ok());
  s.hash_bits = 64;
  s.hash = &Xxh3KeyHash64;
  EXPECT_TRUE(s.Validate().ok());
}

TEST(Schema, ValidateRejectsZeroKeySize) {
  Schema s = ValidSchema();
  s.key_size = 0;
  absl::Status st = s.Validate();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("key_size"));
}

TEST(Schema, ValidateRejectsHashBitsOutOfRange) {
  for (int bits : {0, -1, 65, 1000}) {
    Schema s = ValidSchema();
    s.hash_bits = bits;
    absl::Status st = s.Validate();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bits;
    EXPECT_THAT(st.message(), HasSubstr("hash_bits")) << bits;
  }
}

TEST(Schema, ValidateRejectsMissingHash) {
  Schema s = ValidSchema();
  s.hash = nullptr;
  absl::Status st = s.Validate();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("hash"));
}

TEST(CheckSizes, AcceptsExactSizes) {
  const Schema s = ValidSchema();
  EXPECT_TRUE(CheckSizes(s, "12345678", "abcd").ok());
}

TEST(CheckSizes, NamesWrongKeySize) {
  const Schema s = ValidSchema();
  absl::Status st = CheckSizes(s, "1234567", "abcd");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr("key"), HasSubstr("8"), HasSubstr("7")));
  EXPECT_THAT(st.message(), ::testing::Not(HasSubstr("value")));
}

TEST(CheckSizes, NamesWrongValueSize) {
  const Schema s = ValidSchema();
  absl::Status st = CheckSizes(s, "12345678", "abcde");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr("value"), HasSubstr("4"), HasSubstr("5")));
  EXPECT_THAT(st.message(), ::testing::Not(HasSubstr("key")));
}

TEST(CheckSizes, KeyCheckedFirst) {
  const Schema s = ValidSchema();
  absl::Status st = CheckSizes(s, "", "");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("key"));
}

TEST(EntryCodec, EncodeThenDecode) {
  const Schema s = ValidSchema();
  char entry[12];
  EncodeEntry(s, "KKKKKKKK", "vvvv", entry);
  EXPECT_EQ(absl::string_view(entry, 12), "KKKKKKKKvvvv");
  EXPECT_EQ(EntryKey(s, entry), "KKKKKKKK");
  EXPECT_EQ(EntryValue(s, entry), "vvvv");
}

TEST(EntryCodec, EmptyValue) {
  Schema s = ValidSchema();
  s.value_size = 0;
  char entry[9] = "........";
  EncodeEntry(s, absl::string_view("ab\0cdefg", 8), "", entry);
  EXPECT_EQ(EntryKey(s, entry), absl::string_view("ab\0cdefg", 8));
  EXPECT_EQ(EntryValue(s, entry), "");
  EXPECT_EQ(entry[8], '\0');  // nothing written past the entry
}

TEST(EntryCodec, BinaryBytesSurvive) {
  const Schema s = ValidSchema();
  std::string key;
  for (int i = 0; i < 8; ++i) key.push_back(static_cast<char>(0xf8 + i));
  const std::string value("\0\xff\0\x01", 4);
  std::string entry(s.entry_size(), '?');
  EncodeEntry(s, key, value, &entry[0]);
  EXPECT_EQ(EntryKey(s, entry.data()), key);
  EXPECT_EQ(EntryValue(s, entry.data()), value);
  EXPECT_EQ(entry, key + value);
}

}  // namespace
}  // namespace kvindex
