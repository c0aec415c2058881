// Key hashes, schemas and keys that the tests and fuzzers share.
//
// The hashes keep only a few bits of the key, so that keys collide on purpose:
// equal hashes are the interesting case for the log table's probing, for
// merges and for searches.
#ifndef KVINDEX_TESTING_KEYS_H_
#define KVINDEX_TESTING_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "data/schema.h"

namespace kvindex {
namespace test {

// The low 2 bits of the key's first byte (0 for an empty key): a quarter of
// all keys share each hash. Use with hash_bits = 2.
uint64_t TinyHash(absl::string_view key);

// The key's first byte (0 for an empty key). Use with hash_bits = 8.
uint64_t FirstByteHash(absl::string_view key);

Schema MakeSchema(size_t key_size, size_t value_size, int hash_bits,
                  KeyHashFn hash);

// The small records of the log and data file tests: 4-byte keys, 4-byte
// values.
inline constexpr size_t kSmallKeySize = 4;
inline constexpr size_t kSmallValueSize = 4;

// Key number `i` (i < 2^24): the bytes {i, 'k', i >> 8, i >> 16}. Distinct for
// distinct i; its first byte decides TinyHash and FirstByteHash (i & 3, i &
// 0xff), the last two separate keys whose first byte is equal.
std::string SmallKey(uint32_t i);

// `v` as 4 little-endian bytes.
std::string SmallValue(uint32_t v);

}  // namespace test
}  // namespace kvindex

#endif  // KVINDEX_TESTING_KEYS_H_
