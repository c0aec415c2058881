// KeyFilter: a blocked Bloom filter over the keys of one data file, kept next
// to it as `data.filter`, so that a find of a key the data file does not hold
// usually costs one cache line instead of a search of the file.
//
// The filter is an accelerator, not part of the store: the OCaml library
// neither writes nor reads it, and a filter that is missing, damaged (its
// checksum) or built for another data file (its generation, record count and
// a checksum of the data file's first and last records and fan-out table, all
// in its header) is simply not used. It never reports a key of its data file as
// absent. What makes the binding safe is that a writer never gives two
// different data files the same generation; the checksum guards against files
// brought in from elsewhere (a restored backup, another writer).
//
// File format (docs/format.md §9; integers big-endian, like the rest of the
// store):
//   magic    "KVFILTR1"                 8 bytes
//   probes   uint32  bits set per key
//   hash_bits uint32 significant bits of the store's key hash
//   generation int64 of the data file
//   records  uint64  of the data file
//   data_id  uint64  see DataId: the data file's first and last records and
//                    its fan-out table
//   blocks   uint64  number of 64-byte blocks that follow
//   checksum uint64  XXH3-64 of the blocks
//   header_checksum uint64  XXH3-64 of the 56 bytes above
//   blocks   blocks * 64 bytes
// A key's block follows from the store's key hash (scaled to [0, blocks)), so
// that a merge, which writes keys in hash order, fills the blocks in order;
// within the block, `probes` bits derived from the key's fingerprint (XXH3-64
// of its bytes) are set. Writers size filters to a power of two blocks (see
// KeyFilterBuilder::BlocksFor), so that most merges can extend the filter of
// the data file they read instead of hashing all of its keys again; readers
// accept any block count.
//
// Thread safety: a KeyFilter is immutable; the builder is not thread-safe.
#ifndef KVINDEX_FILTER_KEY_FILTER_H_
#define KVINDEX_FILTER_KEY_FILTER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/attributes.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/env.h"

namespace kvindex {

// Which data file a filter belongs to.
struct FilterTarget {
  int64_t generation = 0;
  uint64_t records = 0;
  uint64_t data_id = 0;  // see DataId

  bool operator==(const FilterTarget& o) const {
    return generation == o.generation && records == o.records &&
           data_id == o.data_id;
  }
};

// A checksum of what identifies a data file's contents cheaply: its first and
// last records (entry_size bytes each) and its fan-out table as stored (whose
// slots follow the hashes of all its keys).
uint64_t DataId(absl::string_view first_record, absl::string_view last_record,
                absl::string_view fanout_table);

// The target of the data file with these generation, records (at least one)
// and fan-out table bytes.
FilterTarget FilterTargetOf(int64_t generation, uint64_t records,
                            absl::string_view first_record,
                            absl::string_view last_record,
                            absl::string_view fanout_table);

uint64_t KeyFingerprint(absl::string_view key);

class KeyFilter;

class KeyFilterBuilder {
 public:
  static constexpr uint64_t kBitsPerKey = 10;
  static constexpr uint32_t kProbes = 6;

  // The blocks of a filter for `expected_keys` keys: at least kBitsPerKey
  // bits per key, rounded up to a power of two (so between 10 and 20 bits per
  // key), which a store keeps while it grows by up to half.
  static uint64_t BlocksFor(uint64_t expected_keys);

  // Sized for at most `expected_keys` keys whose hashes have `hash_bits`
  // significant bits.
  KeyFilterBuilder(uint64_t expected_keys, int hash_bits);

  void Add(absl::string_view key, uint64_t key_hash);

  // Whether `base` has this builder's shape (blocks, probes, key hash width),
  // so that Include(base) is possible.
  bool CanInclude(const KeyFilter& base) const;
  // Adds every key of `base` (its bits) to this builder. Requires
  // CanInclude(base).
  void Include(const KeyFilter& base);

  // The file's bytes.
  std::string Finish(const FilterTarget& target) const;

 private:
  int hash_bits_;
  uint64_t blocks_;
  std::string bits_;  // blocks_ * 64 bytes
};

class KeyFilter {
 public:
  static constexpr size_t kHeaderSize = 64;

  // Maps the filter at `path` if it exists, is intact and belongs to
  // `target` (with keys hashed to `hash_bits` bits); otherwise nullptr (a
  // filter is never required). IO errors other than absence are errors.
  static absl::StatusOr<std::shared_ptr<const KeyFilter>> Open(
      Env* env, const std::string& path, const FilterTarget& target,
      int hash_bits);

  // Parses a filter's bytes (kept alive by the caller): nullptr unless intact
  // and for `target`. `why`, if given, receives the reason on nullptr.
  static std::unique_ptr<const KeyFilter> Parse(absl::string_view bytes,
                                                const FilterTarget& target,
                                                int hash_bits,
                                                std::string* why = nullptr);

  // Writes `bytes` (a builder's output) to `path` by way of `path`.tmp and a
  // rename. Not synced: after a crash the checksum tells a damaged filter.
  static absl::Status Write(Env* env, const std::string& path,
                            absl::string_view bytes);

  // False: the key (with this hash and KeyFingerprint) is certainly not in the
  // data file.
  bool MayContain(uint64_t key_hash, uint64_t fingerprint) const;
  // Starts loading the block of a key hash into the CPU cache.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Prefetch(uint64_t key_hash) const {
    __builtin_prefetch(bits_ + BlockOf(key_hash, hash_bits_, blocks_) * 64);
  }
  // The block of a key hash of `hash_bits` bits among `blocks`: the hash
  // scaled to [0, blocks), so that blocks follow hash order.
  static uint64_t BlockOf(uint64_t key_hash, int hash_bits, uint64_t blocks) {
    if (hash_bits <= 0) return 0;
    const uint64_t top =
        hash_bits >= 64 ? key_hash : key_hash << (64 - hash_bits);
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(top) * blocks) >> 64);
  }

  uint64_t blocks() const { return blocks_; }
  uint32_t probes() const { return probes_; }
  int hash_bits() const { return hash_bits_; }
  // The blocks (blocks() * 64 bytes).
  absl::string_view bits() const {
    return absl::string_view(reinterpret_cast<const char*>(bits_),
                             blocks_ * 64);
  }

 private:
  KeyFilter() = default;
  // Points into `bytes` if they are an intact filter for `target`.
  bool Init(absl::string_view bytes, const FilterTarget& target, int hash_bits,
            std::string* why);
  const unsigned char* Block(uint64_t key_hash) const;

  std::shared_ptr<const MappedRegion> region_;  // null when parsed
  const unsigned char* bits_ = nullptr;
  uint64_t blocks_ = 0;
  uint32_t probes_ = 0;
  int hash_bits_ = 0;
};

}  // namespace kvindex

#endif  // KVINDEX_FILTER_KEY_FILTER_H_
