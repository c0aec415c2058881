#include "testing/keys.h"

namespace kvindex {
namespace test {

uint64_t TinyHash(absl::string_view key) { return FirstByteHash(key) & 3; }

uint64_t FirstByteHash(absl::string_view key) {
  return key.empty() ? 0 : static_cast<unsigned char>(key[0]);
}

Schema MakeSchema(size_t key_size, size_t value_size, int hash_bits,
                  KeyHashFn hash) {
  Schema s;
  s.key_size = key_size;
  s.value_size = value_size;
  s.hash_bits = hash_bits;
  s.hash = hash;
  return s;
}

std::string SmallKey(uint32_t i) {
  std::string k(kSmallKeySize, '\0');
  k[0] = static_cast<char>(i & 0xff);
  k[1] = 'k';
  k[2] = static_cast<char>((i >> 8) & 0xff);
  k[3] = static_cast<char>((i >> 16) & 0xff);
  return k;
}

std::string SmallValue(uint32_t v) {
  std::string out(kSmallValueSize, '\0');
  for (size_t j = 0; j < kSmallValueSize; ++j) {
    out[j] = static_cast<char>((v >> (8 * j)) & 0xff);
  }
  return out;
}

}  // namespace test
}  // namespace kvindex
