// The large pool of the model-based property tests: enough keys that merges
// write data files of thousands of records, with fan-out tables of many
// buckets and key filters of many blocks, under a full-width hash whose
// collisions are chosen, not left to chance.
//
// Keys are "k0001234" (8 bytes, the key's number in decimal); values are
// "v001234" padded with dots to 24 bytes, so that a record is 32 bytes and a
// data file of the pool's 3584 bindable keys has a 32-bucket fan-out table
// (docs/format.md §6.2). The hash (32 bits) of a key is looked up from its
// number, in a table built once:
//   - runs of equal hashes on both sides of every edge of a 64-bucket table
//     (the hashes edge - 1, edge and edge + 1), and so of every coarser
//     table: records of one hash at the ends of buckets, and buckets that
//     open at record 0 when the keys before them are absent;
//   - a few runs longer than the records a find requests around its first
//     probe (24 cache lines, 48 records), one of them at the middle edge;
//   - the rest spread over the whole range, 1 to 4 keys per hash;
//   - hash 0 and hash 2^32 - 1, the ends of the range.
// Key numbers follow hash order, so that a bulk write of consecutive keys or a
// filter keeping the keys from one on covers an interval of hashes: data files
// whose first record opens a bucket other than the first. Every 8th key is a
// ghost, never bound (Pool::ghost_period): finds of absent keys whose hashes
// present keys have.
#ifndef KVINDEX_TESTS_INDEX_MODEL_LARGE_POOL_H_
#define KVINDEX_TESTS_INDEX_MODEL_LARGE_POOL_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/index_model_util.h"

namespace kvindex {
namespace index_model_test {

inline constexpr int kLargeNumKeys = 4096;
inline constexpr int kLargeNumValues = 1000000;
inline constexpr size_t kLargeKeySize = 8;
inline constexpr size_t kLargeValueSize = 24;
inline constexpr int kLargeHashBits = 32;
// The finest fan-out table whose bucket edges the pool's runs straddle.
inline constexpr int kLargeEdgeBits = 6;
// Length of the longest runs of one hash.
inline constexpr int kLargeLongRun = 64;

const Pool& LargePool();

std::string LargeKey(int i);
std::string LargeValue(int i);
// The hash of LargeKey(i) from the table above; any other key of 8 bytes gets
// XXH3's low 32 bits.
uint64_t LargePoolHash(absl::string_view key);

}  // namespace index_model_test
}  // namespace kvindex

#endif  // KVINDEX_TESTS_INDEX_MODEL_LARGE_POOL_H_
