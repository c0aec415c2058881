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

Lru::Lru(size_t capacity, size_t key_size, size_t value_size)
    : capacity_(capacity), key_size_(key_size), value_size_(value_size) {
  const size_t n = capacity >= kShardedFrom ? kShards : 1;
  shard_capacity_ = (capacity + n - 1) / n;
  for (size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

Lru::Shard& Lru::ShardOf(absl::string_view key) const {
  if (shards_.size() == 1) return *shards_[0];
  return *shards_[absl::Hash<absl::string_view>()(key) % shards_.size()];
}

void Lru::Unlink(Shard& s, uint32_t i) const {
  if (s.prev[i] != kNone) s.next[s.prev[i]] = s.next[i];
  if (s.next[i] != kNone) s.prev[s.next[i]] = s.prev[i];
  if (s.head == i) s.head = s.next[i];
  if (s.tail == i) s.tail = s.prev[i];
  s.prev[i] = s.next[i] = kNone;
}

void Lru::PushFront(Shard& s, uint32_t i) const {
  s.prev[i] = kNone;
  s.next[i] = s.head;
  if (s.head != kNone) s.prev[s.head] = i;
  s.head = i;
  if (s.tail == kNone) s.tail = i;
}

bool Lru::Find(absl::string_view key, char* value_out) const {
  if (capacity_ == 0) return false;
  Shard& s = ShardOf(key);
  bool hit = false;
  {
    absl::MutexLock lock(&s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      const uint32_t i = it->second;
      if (s.head != i) {
        Unlink(s, i);
        PushFront(s, i);
      }
      if (value_out != nullptr && value_size_ > 0) {
        std::memcpy(value_out, Slot(s, i) + key_size_, value_size_);
      }
      hit = true;
    }
  }
  stats_internal::AddLru(hit);
  return hit;
}

void Lru::Insert(absl::string_view key, absl::string_view value) {
  if (capacity_ == 0) return;
  Shard& s = ShardOf(key);
  absl::MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  uint32_t i;
  if (it != s.map.end()) {
    i = it->second;
    Unlink(s, i);
  } else {
    if (s.slab.empty()) {
      s.slab.resize(shard_capacity_ * (key_size_ + value_size_));
      s.prev.assign(shard_capacity_, kNone);
      s.next.assign(shard_capacity_, kNone);
      s.map.reserve(shard_capacity_);
    }
    if (s.used < shard_capacity_) {
      i = s.used++;
    } else {
      i = s.tail;  // evict the least recent
      Unlink(s, i);
      s.map.erase(absl::string_view(Slot(s, i), key_size_));
    }
    std::memcpy(Slot(s, i), key.data(), key_size_);
    s.map.emplace(absl::string_view(Slot(s, i), key_size_), i);
  }
  if (value_size_ > 0)
    std::memcpy(Slot(s, i) + key_size_, value.data(), value_size_);
  PushFront(s, i);
}

void Lru::Clear() {
  for (auto& shard : shards_) {
    Shard& s = *shard;
    absl::MutexLock lock(&s.mu);
    s.map.clear();
    s.head = s.tail = kNone;
    s.used = 0;
  }
}

size_t Lru::size() const {
  size_t n = 0;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->map.size();
  }
  return n;
}

}  // namespace kvindex
