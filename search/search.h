// Interpolation search over an array of records sorted by key hash (a data
// file).
//
// The array is any type with
//   uint64_t size() const;        // number of records
//   const char* Get(uint64_t i);  // record i (key bytes first); the pointer
//                                 // stays valid until the next Get/Prefetch
//   void Prefetch(uint64_t low, uint64_t high);  // hint: records [low, high]
//                                                // are read next
// MappedArray (records laid out in memory, e.g. a memory-mapped data file) is
// provided.
//
// Algorithm (OCaml `index`'s, minus its 0/0; docs/design.md §4.6): between
// records low and high, guess the position of the key's hash by linear
// interpolation of the hashes at the ends, compare, and narrow; when the ends
// have equal hashes, scan; when a record with the key's hash is found, look at
// its neighbours with the same hash (equal hashes sit next to each other in no
// particular order, and may cross the [low, high] bounds).
#ifndef KVINDEX_SEARCH_SEARCH_H_
#define KVINDEX_SEARCH_SEARCH_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "data/schema.h"

namespace kvindex {

// Records laid out contiguously in memory.
class MappedArray {
 public:
  MappedArray(const char* records, uint64_t count, size_t entry_size)
      : records_(records), count_(count), entry_size_(entry_size) {}
  uint64_t size() const { return count_; }
  const char* Get(uint64_t i) const { return records_ + i * entry_size_; }
  void Prefetch(uint64_t, uint64_t) const {}

 private:
  const char* records_;
  uint64_t count_;
  size_t entry_size_;
};

// Searches records [low, high] (indices, inclusive; clamped to the array) for
// `key`, whose hash is `key_hash`. Returns the record index, or nullopt.
template <typename Array>
std::optional<uint64_t> InterpolationSearch(Array& array, const Schema& schema,
                                            absl::string_view key,
                                            uint64_t key_hash, uint64_t low,
                                            uint64_t high);

// Searches records [first, last] (clamped to the array) whose hashes are all
// known to lie in [hash_min, hash_max], as the records of one fan-out bucket
// are: the first guess then needs no read of the end records. Records outside
// the range are only visited by the look-around over equal hashes. Returns the
// record index, or nullopt.
template <typename Array>
std::optional<uint64_t> BoundedInterpolationSearch(
    Array& array, const Schema& schema, absl::string_view key,
    uint64_t key_hash, uint64_t first, uint64_t last, uint64_t hash_min,
    uint64_t hash_max);

// The record BoundedInterpolationSearch reads first for these arguments (in an
// array of `size` records), or nullopt if it reads none: lets a caller
// prefetch it while doing other work.
inline std::optional<uint64_t> BoundedFirstProbe(uint64_t size, uint64_t first,
                                                 uint64_t last,
                                                 uint64_t hash_min,
                                                 uint64_t hash_max,
                                                 uint64_t key_hash);

// The records BoundedInterpolationSearch most likely reads for these
// arguments, as an inclusive range [low, high] of indices: its first probe and
// the records around it where a uniformly distributed hash is likely to sit
// (two standard deviations of a record's rank within [first, last]; a search
// on uniform hashes reads only records of the range ~97% of the time). Lets a
// caller prefetch every cache line the search will probably touch, so that its
// later probes do not each wait for memory. nullopt if it reads none.
struct ProbeRange {
  uint64_t first_probe = 0;  // BoundedFirstProbe's answer
  uint64_t low = 0;
  uint64_t high = 0;
};
inline std::optional<ProbeRange> BoundedLikelyProbes(
    uint64_t size, uint64_t first, uint64_t last, uint64_t hash_min,
    uint64_t hash_max, uint64_t key_hash);
// The same, for a caller that already has BoundedFirstProbe's (non-empty)
// answer for these arguments.
inline ProbeRange BoundedLikelyProbesAround(uint64_t first_probe, uint64_t size,
                                            uint64_t first, uint64_t last,
                                            uint64_t hash_min,
                                            uint64_t hash_max,
                                            uint64_t key_hash);

// Looks for `key` among the records of `range` by comparing key bytes, from
// its first probe outward, without hashing any record: once the range's cache
// lines are loaded (BoundedLikelyProbes), this finds a present key in a few
// nanoseconds where the interpolation search hashes every record it probes.
// Returns the index of the record holding the key, or nullopt when no record
// of the range (clamped to the array) does; the key may then still be outside
// the range, so a caller goes on with BoundedInterpolationSearch. Records
// hold distinct keys (a data file), so the first match is the only one.
template <typename Array>
std::optional<uint64_t> FindKeyInRange(Array& array, const Schema& schema,
                                       absl::string_view key,
                                       const ProbeRange& range);

}  // namespace kvindex

#include "search/search_impl.h"  // IWYU pragma: export

#endif  // KVINDEX_SEARCH_SEARCH_H_
