// Lru: the cache of recent find and replace results (key -> value bytes),
// sharded so that parallel finds rarely meet on a lock. Capacity 0 disables it.
//
// Entries live in slabs allocated once per shard, so a warm cache inserts and
// evicts without allocating.
//
// Thread safety: all methods are thread-safe.
#ifndef KVINDEX_INDEX_LRU_H_
#define KVINDEX_INDEX_LRU_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {

class Lru {
 public:
  Lru(size_t capacity, size_t key_size, size_t value_size);

  size_t capacity() const { return capacity_; }
  // Copies the cached value of `key` to value_out (unless null) and makes it
  // the most recent. Counts a hit or a miss in Stats (unless the capacity is
  // 0).
  // `hash` is any hash of the key (the index passes its key hash, already
  // computed); the overloads without it hash the key themselves.
  bool Find(absl::string_view key, uint64_t hash, char* value_out) const;
  bool Find(absl::string_view key, char* value_out) const;
  // Inserts or updates; evicts the least recent entry beyond the capacity.
  void Insert(absl::string_view key, uint64_t hash, absl::string_view value);
  void Insert(absl::string_view key, absl::string_view value);
  void Clear();
  size_t size() const;

 private:
  static constexpr uint32_t kNone = ~uint32_t{0};
  // A key with its hash, so that lookups never hash the key again.
  struct HashedKey {
    absl::string_view bytes;
    uint64_t hash;
  };
  struct HashedKeyHash {
    size_t operator()(const HashedKey& k) const { return k.hash; }
  };
  struct HashedKeyEq {
    bool operator()(const HashedKey& a, const HashedKey& b) const {
      return a.hash == b.hash && a.bytes == b.bytes;
    }
  };
  struct Shard {
    mutable absl::Mutex mu;
    std::string slab ABSL_GUARDED_BY(mu);  // capacity entries: key then value
    std::vector<uint32_t> prev ABSL_GUARDED_BY(mu), next ABSL_GUARDED_BY(mu);
    std::vector<uint64_t> hashes ABSL_GUARDED_BY(mu);  // of each slot's key
    uint32_t head ABSL_GUARDED_BY(mu) = kNone;         // most recent
    uint32_t tail ABSL_GUARDED_BY(mu) = kNone;         // least recent
    uint32_t used ABSL_GUARDED_BY(mu) = 0;  // slots handed out so far
    // Keys point into the slab.
    absl::flat_hash_map<HashedKey, uint32_t, HashedKeyHash, HashedKeyEq> map
        ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(uint64_t hash) const;
  static uint64_t Mix(uint64_t hash);
  char* Slot(Shard& s, uint32_t i) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    return s.slab.data() + static_cast<size_t>(i) * (key_size_ + value_size_);
  }
  void Unlink(Shard& s, uint32_t i) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  void PushFront(Shard& s, uint32_t i) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);

  size_t capacity_;
  size_t key_size_;
  size_t value_size_;
  size_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_LRU_H_
