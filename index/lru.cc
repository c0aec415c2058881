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

// Key hashes may have few significant bits (30 for OCaml stores): spread them.
uint64_t Lru::Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

Lru::Shard& Lru::ShardOf(uint64_t hash) const {
  if (shards_.size() == 1) return *shards_[0];
  return *shards_[(hash >> 59) % shards_.size()];
}

bool Lru::Find(absl::string_view key, char* value_out) const {
  return Find(key, absl::Hash<absl::string_view>()(key), value_out);
}

void Lru::Insert(absl::string_view key, absl::string_view value) {
  Insert(key, absl::Hash<absl::string_view>()(key), value);
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

bool Lru::Find(absl::string_view key, uint64_t hash, char* value_out) const {
  if (capacity_ == 0) return false;
  hash = Mix(hash);
  Shard& s = ShardOf(hash);
  bool hit = false;
  {
    absl::MutexLock lock(&s.mu);
    auto it = s.map.find(HashedKey{key, hash});
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

void Lru::Insert(absl::string_view key, uint64_t hash,
                 absl::string_view value) {
  if (capacity_ == 0) return;
  hash = Mix(hash);
  Shard& s = ShardOf(hash);
  absl::MutexLock lock(&s.mu);
  auto it = s.map.find(HashedKey{key, hash});
  uint32_t i;
  if (it != s.map.end()) {
    i = it->second;
    Unlink(s, i);
  } else {
    if (s.slab.empty()) {
      s.slab.resize(shard_capacity_ * (key_size_ + value_size_));
      s.prev.assign(shard_capacity_, kNone);
      s.next.assign(shard_capacity_, kNone);
      s.hashes.assign(shard_capacity_, 0);
      s.map.reserve(shard_capacity_);
    }
    if (s.used < shard_capacity_) {
      i = s.used++;
    } else {
      i = s.tail;  // evict the least recent
      Unlink(s, i);
      s.map.erase(
          HashedKey{absl::string_view(Slot(s, i), key_size_), s.hashes[i]});
    }
    std::memcpy(Slot(s, i), key.data(), key_size_);
    s.hashes[i] = hash;
    s.map.emplace(HashedKey{absl::string_view(Slot(s, i), key_size_), hash}, i);
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
