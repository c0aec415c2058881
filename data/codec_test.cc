#include "data/codec.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

// A string of exactly n arbitrary bytes.
rc::Gen<std::string> BytesOfSize(size_t n) {
  return rc::gen::container<std::string>(n, rc::gen::arbitrary<char>());
}

template <typename Codec>
std::string EncodeOrDie(const typename Codec::Type& v) {
  std::string out(Codec::kEncodedSize, '\0');
  const absl::Status s = Codec::Encode(v, &out[0]);
  RC_ASSERT(s.ok());
  return out;
}

// A user codec without HashEncoded: uint64 as 8 big-endian bytes (so the
// encoding sorts like the number), hashed to 20 bits.
struct BigEndianU64 {
  using Type = uint64_t;
  static constexpr size_t kEncodedSize = 8;
  static constexpr int kHashBits = 20;
  static absl::Status Encode(const Type& v, char* out) {
    absl::big_endian::Store64(out, v);
    return absl::OkStatus();
  }
  static Type Decode(absl::string_view bytes) {
    return absl::big_endian::Load64(bytes.data());
  }
  static bool Equal(const Type& a, const Type& b) { return a == b; }
  static uint64_t Hash(const Type& k) {
    return (k * 0x9E3779B97F4A7C15ull) >> (64 - kHashBits);
  }
};

static_assert(!codec_internal::HasHashEncoded<BigEndianU64>::value, "");
static_assert(codec_internal::HasHashEncoded<FixedString<4>>::value, "");
static_assert(codec_internal::HasHashEncoded<OcamlFixedString<4>>::value, "");

RC_GTEST_PROP(FixedString, DecodeEncodeRoundTrip, ()) {
  const std::string v = *BytesOfSize(16);
  const std::string enc = EncodeOrDie<FixedString<16>>(v);
  RC_ASSERT(enc == v);  // identity encoding
  RC_ASSERT(FixedString<16>::Decode(enc) == v);
}

RC_GTEST_PROP(OcamlFixedString, DecodeEncodeRoundTrip, ()) {
  const std::string v = *BytesOfSize(20);
  const std::string enc = EncodeOrDie<OcamlFixedString<20>>(v);
  RC_ASSERT(OcamlFixedString<20>::Decode(enc) == v);
}

RC_GTEST_PROP(FixedString, EqualAgreesWithEncodings, ()) {
  // Small alphabet so that equal pairs come up often.
  const auto gen = rc::gen::container<std::string>(
      3, rc::gen::elementOf(std::vector<char>{'a', 'b', '\0'}));
  const std::string a = *gen;
  const std::string b = *gen;
  RC_CLASSIFY(a == b);
  using C = FixedString<3>;
  RC_ASSERT(C::Equal(a, b) == (EncodeOrDie<C>(a) == EncodeOrDie<C>(b)));
  using O = OcamlFixedString<3>;
  RC_ASSERT(O::Equal(a, b) == (EncodeOrDie<O>(a) == EncodeOrDie<O>(b)));
}

RC_GTEST_PROP(BigEndianU64, EqualAgreesWithEncodings, ()) {
  const uint64_t a = *rc::gen::inRange<uint64_t>(0, 4);
  const uint64_t b = *rc::gen::oneOf(rc::gen::inRange<uint64_t>(0, 4),
                                     rc::gen::arbitrary<uint64_t>());
  RC_ASSERT(BigEndianU64::Equal(a, b) ==
            (EncodeOrDie<BigEndianU64>(a) == EncodeOrDie<BigEndianU64>(b)));
  RC_ASSERT(BigEndianU64::Decode(EncodeOrDie<BigEndianU64>(b)) == b);
}

RC_GTEST_PROP(Codecs, HashFitsInHashBits, ()) {
  const std::string s = *BytesOfSize(12);
  RC_ASSERT(OcamlFixedString<12>::Hash(s) < (uint64_t{1} << 30));
  RC_ASSERT(OcamlFixedString<12>::kHashBits == 30);
  RC_ASSERT(FixedString<12>::kHashBits == 64);  // every uint64_t fits
  const uint64_t u = *rc::gen::arbitrary<uint64_t>();
  RC_ASSERT(BigEndianU64::Hash(u) < (uint64_t{1} << BigEndianU64::kHashBits));
}

RC_GTEST_PROP(KeyHashOf, UsesHashEncodedAndAgreesWithHash, ()) {
  const std::string s = *BytesOfSize(10);
  using C = FixedString<10>;
  using O = OcamlFixedString<10>;
  RC_ASSERT(KeyHashOf<C>(s) == C::HashEncoded(s));
  RC_ASSERT(KeyHashOf<C>(s) == C::Hash(C::Decode(s)));
  RC_ASSERT(KeyHashOf<C>(s) == Xxh3Hash(s, 64));
  RC_ASSERT(KeyHashOf<O>(s) == O::HashEncoded(s));
  RC_ASSERT(KeyHashOf<O>(s) == O::Hash(O::Decode(s)));
  RC_ASSERT(KeyHashOf<O>(s) == OcamlStringHash(s));
}

RC_GTEST_PROP(KeyHashOf, UserCodecWithoutHashEncoded, ()) {
  const uint64_t v = *rc::gen::arbitrary<uint64_t>();
  const std::string enc = EncodeOrDie<BigEndianU64>(v);
  RC_ASSERT(KeyHashOf<BigEndianU64>(enc) == BigEndianU64::Hash(v));
  const Schema s = SchemaOf<BigEndianU64, FixedString<3>>();
  RC_ASSERT(s.hash(enc) == BigEndianU64::Hash(v));
}

TEST(KeyHashOf, OcamlKnownAnswerThroughCodec) {
  EXPECT_EQ(KeyHashOf<OcamlFixedString<11>>("hello world"), 1053319576u);
  EXPECT_EQ(OcamlFixedString<11>::Hash("hello world"), 1053319576u);
}

TEST(SchemaOf, FixedStrings) {
  const Schema s = SchemaOf<OcamlFixedString<20>, FixedString<12>>();
  EXPECT_EQ(s.key_size, 20u);
  EXPECT_EQ(s.value_size, 12u);
  EXPECT_EQ(s.entry_size(), 32u);
  EXPECT_EQ(s.hash_bits, 30);
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_EQ(s.hash(std::string(20, 'x')), 1007605829u);

  const Schema x = SchemaOf<FixedString<8>, FixedString<0>>();
  EXPECT_EQ(x.hash_bits, 64);
  EXPECT_EQ(x.value_size, 0u);
  EXPECT_TRUE(x.Validate().ok());
  EXPECT_EQ(x.hash("abcdefgh"), Xxh3Hash("abcdefgh", 64));
}

TEST(SchemaOf, UserCodec) {
  const Schema s = SchemaOf<BigEndianU64, BigEndianU64>();
  EXPECT_EQ(s.key_size, 8u);
  EXPECT_EQ(s.value_size, 8u);
  EXPECT_EQ(s.hash_bits, 20);
  EXPECT_TRUE(s.Validate().ok());
  char enc[8];
  ASSERT_TRUE(BigEndianU64::Encode(12345, enc).ok());
  EXPECT_EQ(s.hash(absl::string_view(enc, 8)), BigEndianU64::Hash(12345));
}

RC_GTEST_PROP(FixedString, EncodeWrongSizeIsInvalidArgument, ()) {
  const size_t n = *rc::gen::inRange<size_t>(0, 40);
  RC_PRE(n != 16u);
  const std::string v(n, 'z');
  std::string out(16, '#');
  const absl::Status s = FixedString<16>::Encode(v, &out[0]);
  RC_ASSERT(s.code() == absl::StatusCode::kInvalidArgument);
  RC_ASSERT(out == std::string(16, '#'));  // nothing written
  const absl::Status o = OcamlFixedString<16>::Encode(v, &out[0]);
  RC_ASSERT(o.code() == absl::StatusCode::kInvalidArgument);
  RC_ASSERT(out == std::string(16, '#'));
}

TEST(FixedString, EncodeWrongSizeMessage) {
  char out[4];
  const absl::Status s = FixedString<4>::Encode("abc", out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("expected 4 bytes, got 3"));
}

}  // namespace
}  // namespace kvindex
