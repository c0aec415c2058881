// LogTable: the in-memory side of a log file. It keeps a copy of every record
// appended (in file order, duplicates included) and an open-addressing hash
// table from key to the newest record of that key. Memory is proportional to
// the log, never to the store.
//
// Thread safety: const methods may run concurrently with each other; Add and
// Clear need exclusive access.
#ifndef KVINDEX_LOG_LOG_TABLE_H_
#define KVINDEX_LOG_LOG_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "io/large_array.h"

namespace kvindex {

class LogTable {
 public:
  explicit LogTable(const Schema& schema) : schema_(schema) {}

  // Appends one record (entry_size bytes): it becomes the key's binding.
  void Add(const char* entry);
  void Add(const char* entry, uint64_t hash);

  // The newest record of `key`, or nullptr. Valid until the next Add or Clear.
  const char* Find(absl::string_view key, uint64_t hash) const;

  // Starts loading the table slot where Find(key, hash) begins into the CPU
  // cache.
  void Prefetch(uint64_t hash) const;

  // Number of distinct keys.
  size_t cardinal() const { return cardinal_; }
  // Number of records added (duplicates included).
  uint64_t records() const { return records_.size() / schema_.entry_size(); }
  // Memory held, in bytes.
  size_t memory() const;

  void Clear();

  // Makes room for `records` more records without reallocating or growing the
  // hash table on the way (at most `records` new keys): for a caller that
  // knows how far the log will fill, such as the log a merge just reset, which
  // would otherwise double its arrays a few dozen times again, with the
  // writer waiting on the copies.
  void Reserve(uint64_t records);

  // The newest record of every key, in unspecified order.
  template <typename F>
  void ForEach(F&& f) const {
    for (uint64_t slot : slots_) {
      if (slot != 0) f(Record(SlotRecord(slot)));
    }
  }

  // Same, with each record's key hash.
  template <typename F>
  void ForEachWithHash(F&& f) const {
    for (uint64_t slot : slots_) {
      if (slot != 0) {
        const uint64_t r = SlotRecord(slot);
        f(Record(r), hashes_[r]);
      }
    }
  }

  // The newest record of every key with its hash, sorted by hash.
  struct Sorted {
    uint64_t hash;
    const char* entry;
  };
  std::vector<Sorted> SortedByHash() const;

 private:
  const char* Record(uint64_t i) const {
    return records_.data() + i * schema_.entry_size();
  }
  // A slot packs the record index + 1 (low kIndexBits; 0 = empty) with a tag
  // of the key's spread hash (the high bits), so that a probe compares keys
  // only when the tags agree instead of reading a record at every occupied
  // slot. A log holds fewer than 2^40 records (it lives in memory).
  static constexpr int kIndexBits = 40;
  static constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
  static uint64_t SlotRecord(uint64_t slot) { return (slot & kIndexMask) - 1; }
  static uint64_t TagOf(uint64_t spread_hash);
  // A byte of the spread hash other than the tag's and (below 2^32 slots) the
  // position's, never 0.
  static uint8_t MarkOf(uint64_t spread_hash);
  // The slot holding `key`, or the empty slot where it would go (mark 0).
  size_t Probe(absl::string_view key, uint64_t hash) const;
  void Grow();

  Schema schema_;
  std::string records_;
  // Hash of each record's key, so that growing and sorting never hash again.
  std::vector<uint64_t> hashes_;
  // The newest record of each key (see SlotRecord); an empty slot is 0, but
  // whether a slot is empty is read from its mark. Size: power of two (or 0).
  // A LargeArray: a find that reaches a slot reads one at random, and with
  // huge pages that read rarely misses the TLB.
  LargeArray<uint64_t> slots_;
  // The mark (MarkOf) of each occupied slot, 0 for an empty one: the one
  // record of which slots are empty. Find scans
  // these and reads a slot only where the mark agrees: an eighth of the
  // slots' size, they stay in the CPU cache where the slots do not, so a find
  // of a key the log does not hold (most finds of a big store) rarely waits
  // for memory here.
  LargeArray<uint8_t> marks_;
  size_t cardinal_ = 0;
};

}  // namespace kvindex

#endif  // KVINDEX_LOG_LOG_TABLE_H_
