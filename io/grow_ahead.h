// GrowAhead: keeps a file that is written at its end grown ahead of its writes
// (File::Allocate), so that an fdatasync after a write finds the file's size
// unchanged and has no size to commit to the file system's journal: on ext4
// that makes a small durable write about a fifth cheaper (bench/README.md,
// "Logs grown ahead of their writes").
//
// Only for files whose readers cannot mistake the zeros past the last write
// for data: a log's journal, whose zeros end its frames (io/flush_sums.h).
// Not the log itself: an unwritten extent under an offset that reached the
// disk would read as records.
//
// Not thread-safe: used by the one writer of a file.
#ifndef KVINDEX_IO_GROW_AHEAD_H_
#define KVINDEX_IO_GROW_AHEAD_H_

#include <cstdint>

#include "io/env.h"

namespace kvindex {

class GrowAhead {
 public:
  // For a file of `size` bytes.
  explicit GrowAhead(uint64_t size) : grown_to_(size) {}

  // Where a file whose writes now reach `end` is grown to: as far again as it
  // holds, at least 4 KiB and at most 1 MiB further, on a 4 KiB boundary.
  // Small files (and the in-memory ones of tests) stay small; a large one
  // grows once per MiB.
  static uint64_t Target(uint64_t end) {
    constexpr uint64_t kMin = uint64_t{4} << 10;
    constexpr uint64_t kMax = uint64_t{1} << 20;
    const uint64_t ahead = end < kMin ? kMin : (end > kMax ? kMax : end);
    return (end + ahead + kMin - 1) / kMin * kMin;
  }

  // Call before writing up to `end`: grows `file` to Target(end) if the write
  // would reach past what it was grown to. After a failure (not supported,
  // out of space) it stops trying: the writes then extend the file as usual.
  void Before(File* file, uint64_t end) {
    if (end <= grown_to_ || !growing_) return;
    const uint64_t target = Target(end);
    if (file->Allocate(target).ok()) {
      grown_to_ = target;
    } else {
      growing_ = false;
    }
  }

  bool growing() const { return growing_; }

 private:
  uint64_t grown_to_;
  bool growing_ = true;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_GROW_AHEAD_H_
