#include "fan/fan.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

// On-disk form of a table (the data file's header stores its byte length):
//   table := slot{2^k}        slot := int64 big-endian
// slot[b] is the logical byte offset of the last record whose hash has top k
// bits b (of hash_bits), or of an earlier record when bucket b is empty.

namespace kvindex {

namespace {

constexpr uint64_t kPageBytes = 4096;

// The low `bits` bits set; bits in [0, 64].
uint64_t LowMask(int bits) {
  if (bits <= 0) return 0;
  if (bits >= 64) return ~uint64_t{0};
  return (uint64_t{1} << bits) - 1;
}

// The top `bits` of a `hash_bits`-bit hash; 0 <= bits <= hash_bits <= 64.
// Written so that no shift amount reaches 64 (shift = hash_bits - bits is 64
// when bits == 0).
size_t TopBits(uint64_t hash, int hash_bits, int bits) {
  if (bits <= 0) return 0;
  const int shift = hash_bits - bits;
  const uint64_t top = shift >= 64 ? 0 : (shift <= 0 ? hash : hash >> shift);
  return static_cast<size_t>(top & LowMask(bits));
}

}  // namespace

int Fanout::BitsFor(int hash_bits, size_t entry_size, uint64_t n) {
  // pages = ceil(n * entry_size / 4096), computed without overflow in 128 bits.
  const unsigned __int128 bytes =
      static_cast<unsigned __int128>(n) * static_cast<uint64_t>(entry_size);
  unsigned __int128 pages = (bytes + (kPageBytes - 1)) / kPageBytes;
  // Smallest k with 2^k >= pages (k = 0 for pages <= 1).
  int k = 0;
  while ((static_cast<unsigned __int128>(1) << k) < pages && k < 127) ++k;
  if (k > hash_bits) k = hash_bits;
  if (k < 0) k = 0;
  return k;
}

size_t Fanout::Bucket(uint64_t hash) const {
  return TopBits(hash, hash_bits_, bits_);
}

Fanout::HashRange Fanout::BucketHashes(size_t b) const {
  HashRange r;
  if (bits_ <= 0) {
    r.high = LowMask(hash_bits_);
    return r;
  }
  const int shift = hash_bits_ - bits_;  // < 64 since bits_ >= 1
  r.low = static_cast<uint64_t>(b) << shift;
  r.high = r.low | LowMask(shift);
  return r;
}

Fanout::Range Fanout::Search(uint64_t hash) const {
  const size_t b = Bucket(hash);
  Range r;
  r.low = b == 0 ? 0 : slots_[b - 1];
  r.high = slots_[b];
  return r;
}

std::string Fanout::Export() const {
  std::string out(slots_.size() * 8, '\0');
  for (size_t i = 0; i < slots_.size(); ++i) {
    absl::big_endian::Store64(&out[i * 8], slots_[i]);
  }
  return out;
}

absl::StatusOr<Fanout> Fanout::Import(absl::string_view bytes, int hash_bits,
                                      size_t entry_size, uint64_t data_bytes,
                                      absl::string_view what) {
  if (hash_bits < 1 || hash_bits > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": fan-out import: hash_bits must be in [1, 64], got ",
        hash_bits));
  }
  if (entry_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": fan-out import: entry_size must be > 0"));
  }
  if (bytes.empty() || bytes.size() % 8 != 0) {
    return absl::DataLossError(
        absl::StrCat(what, ": fan-out table of ", bytes.size(),
                     " bytes is not a non-empty multiple of 8 bytes"));
  }
  const uint64_t count = bytes.size() / 8;
  if ((count & (count - 1)) != 0) {
    return absl::DataLossError(
        absl::StrCat(what, ": fan-out table has ", count,
                     " slots, which is not a power of two"));
  }
  int k = 0;
  while ((uint64_t{1} << k) < count) ++k;
  if (k > hash_bits) {
    return absl::DataLossError(absl::StrCat(
        what, ": fan-out table has 2^", k,
        " slots, more than 2^hash_bits (hash_bits = ", hash_bits, ")"));
  }
  std::vector<uint64_t> slots(count);
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t slot = absl::big_endian::Load64(bytes.data() + i * 8);
    if (slot < prev) {
      return absl::DataLossError(
          absl::StrCat(what, ": fan-out slot ", i, " (", slot,
                       ") is smaller than the previous slot (", prev, ")"));
    }
    if (data_bytes == 0 ? slot != 0 : slot >= data_bytes) {
      return absl::DataLossError(
          absl::StrCat(what, ": fan-out slot ", i, " (", slot,
                       ") points past the records (", data_bytes, " bytes)"));
    }
    if (slot % entry_size != 0) {
      return absl::DataLossError(
          absl::StrCat(what, ": fan-out slot ", i, " (", slot,
                       ") is not a multiple of the entry size ", entry_size));
    }
    slots[i] = slot;
    prev = slot;
  }
  return Fanout(hash_bits, k, std::move(slots));
}

FanoutBuilder::FanoutBuilder(int hash_bits, size_t entry_size,
                             uint64_t expected_entries)
    : hash_bits_(hash_bits),
      bits_(Fanout::BitsFor(hash_bits, entry_size, expected_entries)),
      // 2^bits_ slots. bits_ >= 64 needs more than 2^75 bytes of records and
      // cannot be allocated; ask for SIZE_MAX (std::vector reports it) rather
      // than shift by 64.
      slots_(bits_ >= 64 ? SIZE_MAX : size_t{1} << bits_, 0) {}

void FanoutBuilder::Update(uint64_t hash, uint64_t offset) {
  slots_[TopBits(hash, hash_bits_, bits_)] = offset;
}

uint64_t FanoutBuilder::LastHashOfBucket(uint64_t hash) const {
  return (hash | LowMask(hash_bits_ - bits_)) & LowMask(hash_bits_);
}

Fanout FanoutBuilder::Finish() && {
  // Empty buckets (still 0) take the previous slot, so the table is
  // non-decreasing and an empty bucket's range is the one record before it.
  uint64_t prev = 0;
  for (uint64_t& slot : slots_) {
    if (slot == 0) slot = prev;
    prev = slot;
  }
  return Fanout(hash_bits_, bits_, std::move(slots_));
}

}  // namespace kvindex
