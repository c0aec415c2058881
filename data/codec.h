// Typed keys and values: the codec concept and the fixed-length string codecs.
//
// A codec for a fixed-size type is a struct with:
//   using Type = T;
//   static constexpr size_t kEncodedSize;  // bytes of every encoding
//   static constexpr int kHashBits;        // keys only: 1..64
//   static absl::Status Encode(const Type& v, char* out);
//       // writes exactly kEncodedSize bytes; kInvalidArgument if `v` has no
//       // encoding of that size (checked before anything is stored)
//   static Type Decode(absl::string_view bytes);
//       // bytes.size() == kEncodedSize
//   static bool Equal(const Type& a, const Type& b);
//       // keys only; must agree with equality of the encodings (the index
//       // compares encoded bytes)
//   static uint64_t Hash(const Type& k);   // keys only; < 2^kHashBits
// and optionally, for speed, `static uint64_t HashEncoded(absl::string_view
// bytes)` returning Hash(Decode(bytes)) without decoding. KeyHashOf<Codec>
// picks it. The hash orders the data file (docs/format.md §4.2).
#ifndef KVINDEX_DATA_CODEC_H_
#define KVINDEX_DATA_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"

namespace kvindex {

// Byte strings of exactly N bytes, encoded as themselves. Hash: XXH3 (64 bits).
template <size_t N>
struct FixedString {
  using Type = std::string;
  static constexpr size_t kEncodedSize = N;
  static constexpr int kHashBits = 64;
  static absl::Status Encode(const Type& v, char* out) {
    if (v.size() != N) {
      return absl::InvalidArgumentError(
          absl::StrCat("fixed string: expected ", N, " bytes, got ", v.size()));
    }
    if (N > 0) std::memcpy(out, v.data(), N);
    return absl::OkStatus();
  }
  static Type Decode(absl::string_view bytes) {
    return Type(bytes.data(), bytes.size());
  }
  static bool Equal(const Type& a, const Type& b) { return a == b; }
  static uint64_t Hash(const Type& k) { return Xxh3Hash(k, kHashBits); }
  static uint64_t HashEncoded(absl::string_view b) {
    return Xxh3Hash(b, kHashBits);
  }
};

// Like FixedString, hashed with OCaml's Hashtbl.hash (30 bits): the OCaml
// library's `Index.Key.String_fixed`. Use it to open stores written by the
// OCaml library.
template <size_t N>
struct OcamlFixedString : FixedString<N> {
  static constexpr int kHashBits = kOcamlHashBits;
  static uint64_t Hash(const std::string& k) { return OcamlStringHash(k); }
  static uint64_t HashEncoded(absl::string_view b) {
    return OcamlStringHash(b);
  }
};

namespace codec_internal {
template <typename C, typename = void>
struct HasHashEncoded : std::false_type {};
template <typename C>
struct HasHashEncoded<
    C, std::void_t<decltype(C::HashEncoded(std::declval<absl::string_view>()))>>
    : std::true_type {};
}  // namespace codec_internal

// The byte-level hash of a key codec, as the core needs it.
template <typename KeyCodec>
uint64_t KeyHashOf(absl::string_view encoded) {
  if constexpr (codec_internal::HasHashEncoded<KeyCodec>::value) {
    return KeyCodec::HashEncoded(encoded);
  } else {
    return KeyCodec::Hash(KeyCodec::Decode(encoded));
  }
}

// The schema of an index with these key and value codecs.
template <typename KeyCodec, typename ValueCodec>
Schema SchemaOf() {
  Schema s;
  s.key_size = KeyCodec::kEncodedSize;
  s.value_size = ValueCodec::kEncodedSize;
  s.hash_bits = KeyCodec::kHashBits;
  s.hash = &KeyHashOf<KeyCodec>;
  return s;
}

}  // namespace kvindex

#endif  // KVINDEX_DATA_CODEC_H_
