#include "index/lru.h"

#include <cstring>

#include "absl/hash/hash.h"
#include "index/stats.h"

namespace kvindex {
namespace {
// Small caches keep exact LRU order in one shard; big ones spread over 16.
constexpr size_t kShardedFrom = 1024;
constexpr size_t kShards = 16;
}  // namespace

Lru::Lru(size_t capacity) : capacity_(capacity) {
  const size_t n = capacity >= kShardedFrom ? kShards : 1;
  shard_capacity_ = (capacity + n - 1) / n;
  for (size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

Lru::Shard& Lru::ShardOf(absl::string_view key) const {
  if (shards_.size() == 1) return *shards_[0];
  return *shards_[absl::Hash<absl::string_view>()(key) % shards_.size()];
}

bool Lru::Find(absl::string_view key, char* value_out) const {
  if (capacity_ == 0) return false;
  Shard& shard = ShardOf(key);
  bool hit = false;
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end()) {
      shard.order.splice(shard.order.begin(), shard.order, it->second);
      const std::string& value = it->second->second;
      if (value_out != nullptr && !value.empty()) {
        std::memcpy(value_out, value.data(), value.size());
      }
      hit = true;
    }
  }
  stats_internal::AddLru(hit);
  return hit;
}

void Lru::Insert(absl::string_view key, absl::string_view value) {
  if (capacity_ == 0) return;
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.map.find(key);
  if (it != shard.map.end()) {
    it->second->second.assign(value.data(), value.size());
    shard.order.splice(shard.order.begin(), shard.order, it->second);
    return;
  }
  shard.order.emplace_front(std::string(key), std::string(value));
  shard.map.emplace(shard.order.front().first, shard.order.begin());
  while (shard.order.size() > shard_capacity_) {
    shard.map.erase(shard.order.back().first);
    shard.order.pop_back();
  }
}

void Lru::Clear() {
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->map.clear();
    shard->order.clear();
  }
}

size_t Lru::size() const {
  size_t n = 0;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->order.size();
  }
  return n;
}

}  // namespace kvindex
