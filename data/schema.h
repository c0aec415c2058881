// Fixed-size keys and values as bytes: the schema the byte-oriented core of the
// index works with, the entry codec, and the key hashes.
//
// An entry (record) is the key's encoding followed by the value's encoding, no
// padding:
//   entry := key:key_size bytes  value:value_size bytes
//
// Keys are compared by their encodings: two keys are equal exactly when their
// encoded bytes are (codecs must encode canonically; see data/codec.h).
#ifndef KVINDEX_DATA_SCHEMA_H_
#define KVINDEX_DATA_SCHEMA_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvindex {

// Hash of an encoded key; must be < 2^hash_bits and depend only on the bytes.
using KeyHashFn = uint64_t (*)(absl::string_view encoded_key);

struct Schema {
  size_t key_size = 0;
  size_t value_size = 0;
  // Number of significant hash bits, 1..64. Overestimating only costs
  // performance; a hash that does not fit is rejected where it is computed.
  int hash_bits = 0;
  KeyHashFn hash = nullptr;

  size_t entry_size() const { return key_size + value_size; }

  // kInvalidArgument unless key_size > 0, value_size >= 0, 1 <= hash_bits <= 64
  // and hash is set.
  absl::Status Validate() const;
};

// Entry codec.
inline absl::string_view EntryKey(const Schema& s, const char* entry) {
  return absl::string_view(entry, s.key_size);
}
inline absl::string_view EntryValue(const Schema& s, const char* entry) {
  return absl::string_view(entry + s.key_size, s.value_size);
}
// Writes key then value into out[0, entry_size). REQUIRES: sizes match the
// schema.
inline void EncodeEntry(const Schema& s, absl::string_view key,
                        absl::string_view value, char* out) {
  std::memcpy(out, key.data(), s.key_size);
  if (s.value_size > 0)
    std::memcpy(out + s.key_size, value.data(), s.value_size);
}
// kInvalidArgument naming the wrong size, before anything is written anywhere.
absl::Status CheckSizes(const Schema& s, absl::string_view key,
                        absl::string_view value);

// OCaml's `Hashtbl.hash` on a string (30 bits), bit-identical to OCaml 4.x/5.x:
// the hash the OCaml `index` uses for `String_fixed` keys, hence the order of
// its data files. Needed to read stores written by the OCaml library
// (docs/format.md §4.2 has the algorithm and known answers).
uint32_t OcamlStringHash(absl::string_view s);
inline constexpr int kOcamlHashBits = 30;

// XXH3 64-bit, keeping the low `bits` bits (1..64). The default key hash.
uint64_t Xxh3Hash(absl::string_view s, int bits);

// Ready-made KeyHashFns.
uint64_t OcamlKeyHash(absl::string_view key);   // OcamlStringHash, 30 bits
uint64_t Xxh3KeyHash64(absl::string_view key);  // Xxh3Hash(key, 64)

}  // namespace kvindex

#endif  // KVINDEX_DATA_SCHEMA_H_
