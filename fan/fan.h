// The fan-out table of a data file: for each of 2^k buckets of key hashes (the
// top k of hash_bits bits), the logical offset of the last record of that
// bucket. It narrows a lookup to about one 4 KiB page of records before the
// interpolation search.
//
// Sizing (same as the OCaml library, so the bytes match): k is the smallest
// value with 2^k >= ceil(n * entry_size / 4096), clamped to [0, hash_bits]. On
// disk the table is 2^k slots of int64 big-endian (docs/format.md §6).
//
// Laws: Import(Export(t)) == t; with records fed to the builder in hash order,
// each record's offset lies in Search(its hash).
//
// Thread safety: a Fanout is immutable and safe to share; the builder is not.
#ifndef KVINDEX_FAN_FAN_H_
#define KVINDEX_FAN_FAN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvindex {

class Fanout {
 public:
  // Byte offsets, both inclusive, of the records that can hold a hash.
  struct Range {
    uint64_t low = 0;
    uint64_t high = 0;
  };

  // Number of bits k (2^k slots) for n records of entry_size bytes.
  static int BitsFor(int hash_bits, size_t entry_size, uint64_t n);

  // Parses an exported table. The data file's logical size and entry size
  // validate it: kDataLoss (naming `what`, e.g. the file path) unless the byte
  // length is 8 * 2^k with k <= hash_bits, slots are non-decreasing, multiples
  // of entry_size and below data_bytes (or 0 when there are no records).
  static absl::StatusOr<Fanout> Import(absl::string_view bytes, int hash_bits,
                                       size_t entry_size, uint64_t data_bytes,
                                       absl::string_view what);

  std::string Export() const;
  size_t exported_size() const { return slots_.size() * 8; }
  size_t nb_fans() const { return slots_.size(); }
  int bits() const { return bits_; }

  // Slot b: the byte offset of bucket b's last record (of an earlier
  // bucket's when b is empty). b < nb_fans().
  uint64_t slot(size_t b) const { return slots_[b]; }
  // The records (by byte offset) that can hold `hash`.
  Range Search(uint64_t hash) const;
  // Bucket of a hash (its top `bits()` bits).
  size_t Bucket(uint64_t hash) const;
  // The hashes that fall in bucket `b`, both inclusive.
  struct HashRange {
    uint64_t low = 0;
    uint64_t high = 0;
  };
  HashRange BucketHashes(size_t b) const;

  bool operator==(const Fanout& o) const {
    return hash_bits_ == o.hash_bits_ && bits_ == o.bits_ && slots_ == o.slots_;
  }

 private:
  friend class FanoutBuilder;
  Fanout(int hash_bits, int bits, std::vector<uint64_t> slots)
      : hash_bits_(hash_bits), bits_(bits), slots_(std::move(slots)) {}
  int hash_bits_;
  int bits_;
  std::vector<uint64_t> slots_;
};

class FanoutBuilder {
 public:
  // For `expected_entries` records of `entry_size` bytes.
  FanoutBuilder(int hash_bits, size_t entry_size, uint64_t expected_entries);

  // Records arrive in non-decreasing hash order; `offset` is where the record
  // starts.
  void Update(uint64_t hash, uint64_t offset);
  // The largest hash of the bucket `hash` falls in: records up to it share
  // its slot.
  uint64_t LastHashOfBucket(uint64_t hash) const;
  size_t nb_fans() const { return slots_.size(); }
  size_t exported_size() const { return slots_.size() * 8; }

  // Fills empty buckets so the table is non-decreasing.
  Fanout Finish() &&;

 private:
  int hash_bits_;
  int bits_;
  std::vector<uint64_t> slots_;
};

}  // namespace kvindex

#endif  // KVINDEX_FAN_FAN_H_
