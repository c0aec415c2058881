// Lru: the cache of recent find and replace results (key -> value bytes), sharded so
// that parallel finds rarely meet on a lock. Capacity 0 disables it.
//
// Thread safety: all methods are thread-safe.
#ifndef KVINDEX_INDEX_LRU_H_
#define KVINDEX_INDEX_LRU_H_

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {

class Lru {
 public:
  explicit Lru(size_t capacity);

  size_t capacity() const { return capacity_; }
  // Copies the cached value of `key` to value_out and makes it the most recent.
  // Counts a hit or a miss in Stats (unless the capacity is 0).
  bool Find(absl::string_view key, char* value_out) const;
  // Inserts or updates; evicts the least recent entries beyond the capacity.
  void Insert(absl::string_view key, absl::string_view value);
  void Clear();
  size_t size() const;

 private:
  struct Shard {
    mutable absl::Mutex mu;
    // Most recent first.
    std::list<std::pair<std::string, std::string>> order ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<absl::string_view,
                        std::list<std::pair<std::string, std::string>>::iterator>
        map ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(absl::string_view key) const;

  size_t capacity_;
  size_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_LRU_H_
