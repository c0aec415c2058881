// Lru: the cache of recent find and replace results (key -> value bytes).
// Capacity 0 disables it.
//
// It is set-associative, like a CPU cache: a key's hash picks one set of at
// most kWays entries, and each set evicts its own least recently used entry.
// A cache of at most kWays entries is one set, an exact LRU; a bigger one
// approximates LRU closely while a lookup or an insert touches two cache
// lines (the set's tags, then the entry) instead of the half-dozen scattered
// ones a hash map plus a linked list costs. That matters because the index
// consults the cache on every find and fills it on every miss.
//
// The sets and the entries live in one block allocated up front (a
// LargeArray, so that a big cache sits in huge pages: every find reads a
// random set, and every find that reaches the data file writes a random
// entry); the cache never allocates after construction. Clear is O(1): it bumps
// an epoch, and a set filled under an older epoch counts as empty.
//
// Thread safety: all methods are thread-safe; each set has its own lock, so
// parallel finds rarely meet, and a lookup that misses does not take it.
#ifndef KVINDEX_INDEX_LRU_H_
#define KVINDEX_INDEX_LRU_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "io/large_array.h"

namespace kvindex {

class Lru {
 public:
  static constexpr size_t kWays = 8;

  // Holds at most `capacity` entries: ceil(capacity / kWays) sets, whose sizes
  // differ by at most one.
  Lru(size_t capacity, size_t key_size, size_t value_size);
  ~Lru();
  Lru(const Lru&) = delete;
  Lru& operator=(const Lru&) = delete;

  size_t capacity() const { return capacity_; }
  // Copies the cached value of `key` to value_out (unless null) and makes it
  // the most recent of its set. Counts a hit or a miss in Stats (unless the
  // capacity is 0).
  // `hash` is any hash of the key (the index passes its key hash, already
  // computed); the overloads without it hash the key themselves. Lookups and
  // inserts of one key must use the same kind of hash.
  bool Find(absl::string_view key, uint64_t hash, char* value_out) const;
  bool Find(absl::string_view key, char* value_out) const;
  // Starts loading the set of a key with this hash into the CPU cache.
  void Prefetch(uint64_t hash) const;
  // Inserts or updates; evicts the least recent entry of the key's set when
  // the set is full.
  void Insert(absl::string_view key, uint64_t hash, absl::string_view value);
  void Insert(absl::string_view key, absl::string_view value);
  void Clear();
  size_t size() const;

  // The structure, for tests that model the cache as independent exact LRUs.
  size_t sets() const { return sets_; }
  size_t SetOf(absl::string_view key) const;  // as the overloads without hash
  size_t WaysOf(size_t set) const;

 private:
  struct Set;
  class SetLock;
  struct Probe {
    size_t set;
    uint32_t tag;
  };
  Probe ProbeOf(uint64_t hash) const;
  static uint64_t DefaultHash(absl::string_view key);
  char* Slot(size_t set, uint32_t way) const {
    return slab_ + (set * kWays + way) * (key_size_ + value_size_);
  }
  // Whether a lookup of `tag` in set `s` surely misses: no entry of the set
  // has the tag, read without the lock. False also when unsure (a writer
  // holds or held the set meanwhile): the caller then looks under the lock.
  bool SurelyAbsent(const Set& s, uint32_t tag) const;
  // The way of `key` in a locked set, or -1.
  int FindWay(const Set& s, size_t set, absl::string_view key,
              uint32_t tag) const;

  size_t capacity_;
  size_t key_size_;
  size_t value_size_;
  size_t sets_;
  LargeArray<unsigned char> storage_;  // the sets, then the slab
  Set* set_table_ = nullptr;           // sets_ of them, in storage_
  char* slab_ = nullptr;  // in storage_: kWays slots per set, key then value
  std::atomic<uint64_t> epoch_{1};
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_LRU_H_
