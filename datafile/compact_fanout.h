// CompactFanout: a data file's fan-out table in the form finds read it.
//
// A find reads its bucket's slots before it knows which records to prefetch,
// so that read is on the critical path of every lookup. The on-disk table has
// 8 bytes a slot (1 MiB at 10M records), too big to stay in the CPU cache
// between finds. With uniformly distributed hashes each slot lies close to
// where a perfectly even spread of the records would put it, so this keeps
// only the difference, in 16 bits: a quarter of the size. When some slot is
// too far off (skewed hashes, or more records than the deviations can follow)
// the compact form is empty and finds read the Fanout itself.
//
// Thread safety: immutable once built.
#ifndef KVINDEX_DATAFILE_COMPACT_FANOUT_H_
#define KVINDEX_DATAFILE_COMPACT_FANOUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fan/fan.h"

namespace kvindex {

class CompactFanout {
 public:
  CompactFanout() = default;
  // For `fanout` over `count` records of `entry_size` bytes.
  static CompactFanout Of(const Fanout& fanout, uint64_t count,
                          size_t entry_size);

  bool empty() const { return deviations_.empty(); }
  size_t size() const { return deviations_.size(); }
  // fanout.slot(b) / entry_size; b < size().
  uint64_t SlotRecord(size_t b) const {
    return static_cast<uint64_t>(static_cast<int64_t>(Even(b)) +
                                 deviations_[b]);
  }

 private:
  // Where an even spread puts the last record of bucket b (rounded down).
  uint64_t Even(size_t b) const {
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(b + 1) * count_) >> bits_);
  }

  uint64_t count_ = 0;
  int bits_ = 0;
  std::vector<int16_t> deviations_;
};

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_COMPACT_FANOUT_H_
