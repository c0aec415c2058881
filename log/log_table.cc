#include "log/log_table.h"

#include <algorithm>
#include <cstring>

#include "data/mix.h"

namespace kvindex {

uint64_t LogTable::TagOf(uint64_t spread) { return spread & ~kIndexMask; }

uint8_t LogTable::MarkOf(uint64_t spread) {
  const auto mark = static_cast<uint8_t>(spread >> 32);
  return mark == 0 ? 1 : mark;
}

size_t LogTable::Probe(absl::string_view key, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t spread = Mix64(hash);
  const uint8_t mark = MarkOf(spread);
  const uint64_t tag = TagOf(spread);
  // The table is at most half full: the scan always meets an empty slot.
  for (size_t i = spread & mask;; i = (i + 1) & mask) {
    const uint8_t m = marks_[i];
    if (m == 0) return i;
    if (m != mark) continue;
    const uint64_t slot = slots_[i];
    if (TagOf(slot) == tag && std::memcmp(Record(SlotRecord(slot)), key.data(),
                                          schema_.key_size) == 0) {
      return i;
    }
  }
}

void LogTable::Grow() {
  LargeArray<uint64_t> old = std::move(slots_);
  slots_ = LargeArray<uint64_t>(old.empty() ? 16 : old.size() * 2);
  marks_ = LargeArray<uint8_t>(slots_.size());
  const size_t mask = slots_.size() - 1;
  for (uint64_t slot : old) {
    if (slot == 0) continue;
    const uint64_t spread = Mix64(hashes_[SlotRecord(slot)]);
    size_t i = spread & mask;
    while (marks_[i] != 0) i = (i + 1) & mask;
    slots_[i] = slot;
    marks_[i] = MarkOf(spread);
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
  const uint64_t spread = Mix64(hash);
  if (marks_[i] == 0) ++cardinal_;
  slots_[i] = TagOf(spread) | (index + 1);
  marks_[i] = MarkOf(spread);
}

const char* LogTable::Find(absl::string_view key, uint64_t hash) const {
  if (cardinal_ == 0) return nullptr;
  const size_t i = Probe(key, hash);
  // The mark, not the slot, says the key is absent: no slot read then.
  return marks_[i] == 0 ? nullptr : Record(SlotRecord(slots_[i]));
}

void LogTable::Prefetch(uint64_t hash) const {
  if (cardinal_ == 0) return;
  const size_t i = Mix64(hash) & (slots_.size() - 1);
  // Only the marks: their line usually settles the find; the slot is read
  // (and waited for) only where a mark agrees, mostly for keys in the log.
  __builtin_prefetch(&marks_[i]);
}

size_t LogTable::memory() const {
  return records_.capacity() + hashes_.capacity() * sizeof(uint64_t) +
         slots_.bytes() + marks_.bytes();
}

void LogTable::Reserve(uint64_t records) {
  records_.reserve(records_.size() + records * schema_.entry_size());
  hashes_.reserve(hashes_.size() + records);
  // Add keeps the load factor at most 1/2.
  const uint64_t keys = cardinal_ + records;
  while ((keys + 1) * 2 > slots_.size()) Grow();
}

void LogTable::Clear() {
  std::string().swap(records_);
  std::vector<uint64_t>().swap(hashes_);
  slots_ = LargeArray<uint64_t>();
  marks_ = LargeArray<uint8_t>();
  cardinal_ = 0;
}

std::vector<LogTable::Sorted> LogTable::SortedByHash() const {
  std::vector<Sorted> unsorted;
  unsorted.reserve(cardinal_);
  for (uint64_t slot : slots_) {
    if (slot != 0) {
      const uint64_t r = SlotRecord(slot);
      unsorted.push_back(Sorted{hashes_[r], Record(r)});
    }
  }
  auto by_hash = [](const Sorted& a, const Sorted& b) {
    return a.hash < b.hash;
  };
  // One counting pass by the top bits of the hash, then a sort of each
  // (small) bucket: a merge sorts a whole log, and this is several times
  // faster than one comparison sort of it.
  const int hash_bits = std::min(std::max(schema_.hash_bits, 1), 64);
  const int top_bits = std::min(hash_bits, 16);
  const int shift = hash_bits - top_bits;
  const uint64_t max_hash =
      hash_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << hash_bits) - 1;
  for (const Sorted& s : unsorted) {
    if (s.hash > max_hash) {
      // A hash wider than the schema says: no bucket for it.
      std::sort(unsorted.begin(), unsorted.end(), by_hash);
      return unsorted;
    }
  }
  const size_t buckets = size_t{1} << top_bits;
  if (unsorted.size() * 64 < buckets) {
    // A small log (every Iter sorts it, and small logs are the common case of
    // tests and fuzzers): zeroing and scanning 2^16 bucket counters would cost
    // far more than the records. A stable sort by bucket puts the records in
    // the same order the counting pass below does, so the per-bucket sorts
    // produce exactly the same output.
    std::stable_sort(unsorted.begin(), unsorted.end(),
                     [shift](const Sorted& a, const Sorted& b) {
                       return (a.hash >> shift) < (b.hash >> shift);
                     });
    for (auto first = unsorted.begin(); first != unsorted.end();) {
      const uint64_t bucket = first->hash >> shift;
      auto last = first + 1;
      while (last != unsorted.end() && (last->hash >> shift) == bucket) ++last;
      if (last - first > 1) std::sort(first, last, by_hash);
      first = last;
    }
    return unsorted;
  }
  std::vector<uint32_t> starts(buckets + 1, 0);
  for (const Sorted& s : unsorted) ++starts[(s.hash >> shift) + 1];
  for (size_t b = 1; b < starts.size(); ++b) starts[b] += starts[b - 1];
  std::vector<Sorted> out(unsorted.size());
  std::vector<uint32_t> fill(starts.begin(), starts.end() - 1);
  for (const Sorted& s : unsorted) out[fill[s.hash >> shift]++] = s;
  for (size_t b = 0; b + 1 < starts.size(); ++b) {
    if (starts[b + 1] - starts[b] > 1) {
      std::sort(out.begin() + starts[b], out.begin() + starts[b + 1], by_hash);
    }
  }
  return out;
}

}  // namespace kvindex
