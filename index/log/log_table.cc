#include "index/log/log_table.h"

#include <algorithm>
#include <cstring>

namespace kvindex {
namespace {

// Key hashes may have few significant bits (30 for OCaml stores, fewer in
// tests): spread them over the whole word before using them as a table
// position.
inline uint64_t Spread(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t LogTable::TagOf(uint64_t spread) { return spread & ~kIndexMask; }

size_t LogTable::Probe(absl::string_view key, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t spread = Spread(hash);
  const uint64_t tag = TagOf(spread);
  size_t i = spread & mask;
  while (true) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return i;
    if (TagOf(slot) == tag && std::memcmp(Record(SlotRecord(slot)), key.data(),
                                          schema_.key_size) == 0) {
      return i;
    }
    i = (i + 1) & mask;
  }
}

void LogTable::Grow() {
  LargeArray<uint64_t> old = std::move(slots_);
  slots_ = LargeArray<uint64_t>(old.empty() ? 16 : old.size() * 2);
  const size_t mask = slots_.size() - 1;
  for (uint64_t slot : old) {
    if (slot == 0) continue;
    size_t i = Spread(hashes_[SlotRecord(slot)]) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

void LogTable::Add(const char* entry) {
  Add(entry, schema_.hash(EntryKey(schema_, entry)));
}

void LogTable::Add(const char* entry, uint64_t hash) {
  // Keep the load factor at most 1/2 so probes stay short.
  if ((cardinal_ + 1) * 2 > slots_.size()) Grow();
  const uint64_t index = records();
  records_.append(entry, schema_.entry_size());
  hashes_.push_back(hash);
  const size_t i = Probe(EntryKey(schema_, entry), hash);
  if (slots_[i] == 0) ++cardinal_;
  slots_[i] = TagOf(Spread(hash)) | (index + 1);
}

const char* LogTable::Find(absl::string_view key, uint64_t hash) const {
  if (cardinal_ == 0) return nullptr;
  const uint64_t slot = slots_[Probe(key, hash)];
  return slot == 0 ? nullptr : Record(SlotRecord(slot));
}

void LogTable::Prefetch(uint64_t hash) const {
  if (cardinal_ == 0) return;
  __builtin_prefetch(&slots_[Spread(hash) & (slots_.size() - 1)]);
}

size_t LogTable::memory() const {
  return records_.capacity() + hashes_.capacity() * sizeof(uint64_t) +
         slots_.bytes();
}

void LogTable::Clear() {
  std::string().swap(records_);
  std::vector<uint64_t>().swap(hashes_);
  slots_ = LargeArray<uint64_t>();
  cardinal_ = 0;
}

std::vector<LogTable::Sorted> LogTable::SortedByHash() const {
  std::vector<Sorted> out;
  out.reserve(cardinal_);
  for (uint64_t slot : slots_) {
    if (slot != 0) {
      const uint64_t r = SlotRecord(slot);
      out.push_back(Sorted{hashes_[r], Record(r)});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Sorted& a, const Sorted& b) { return a.hash < b.hash; });
  return out;
}

}  // namespace kvindex
