#include "data/schema.h"

#include <xxhash.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvindex {

absl::Status Schema::Validate() const {
  if (key_size == 0) {
    return absl::InvalidArgumentError("schema: key_size must be > 0");
  }
  if (hash_bits < 1 || hash_bits > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema: hash_bits must be in [1, 64], got ", hash_bits));
  }
  if (hash == nullptr) {
    return absl::InvalidArgumentError("schema: hash function is not set");
  }
  return absl::OkStatus();
}

absl::Status CheckSizes(const Schema& s, absl::string_view key,
                        absl::string_view value) {
  if (key.size() != s.key_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("key has wrong size: expected ", s.key_size,
                     " bytes, got ", key.size()));
  }
  if (value.size() != s.value_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("value has wrong size: expected ", s.value_size,
                     " bytes, got ", value.size()));
  }
  return absl::OkStatus();
}

namespace {

inline uint32_t Rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// OCaml runtime/hash.c, MIX and FINAL_MIX (MurmurHash3's 32-bit steps).
inline uint32_t Mix(uint32_t h, uint32_t d) {
  d *= 0xcc9e2d51u;
  d = Rotl32(d, 15);
  d *= 0x1b873593u;
  h ^= d;
  h = Rotl32(h, 13);
  return h * 5u + 0xe6546b64u;
}

inline uint32_t FinalMix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace

uint32_t OcamlStringHash(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t len = s.size();
  uint32_t h = 0;
  size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    const uint32_t w = static_cast<uint32_t>(p[i]) |
                       static_cast<uint32_t>(p[i + 1]) << 8 |
                       static_cast<uint32_t>(p[i + 2]) << 16 |
                       static_cast<uint32_t>(p[i + 3]) << 24;
    h = Mix(h, w);
  }
  if (i < len) {
    uint32_t w = 0;
    for (size_t j = 0; i + j < len; ++j) {
      w |= static_cast<uint32_t>(p[i + j]) << (8 * j);
    }
    h = Mix(h, w);
  }
  h ^= static_cast<uint32_t>(len);
  h = FinalMix(h);
  return h & 0x3FFFFFFFu;
}

uint64_t Xxh3Hash(absl::string_view s, int bits) {
  const uint64_t h = XXH3_64bits(s.data(), s.size());
  if (bits >= 64) return h;
  if (bits <= 0) return 0;
  return h & ((uint64_t{1} << bits) - 1);
}

uint64_t OcamlKeyHash(absl::string_view key) { return OcamlStringHash(key); }

uint64_t Xxh3KeyHash64(absl::string_view key) { return Xxh3Hash(key, 64); }

}  // namespace kvindex
