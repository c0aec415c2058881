#include "search/search.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "io/index_file.h"

namespace kvindex {

PreadArray::PreadArray(const IndexFile* file, size_t entry_size)
    : file_(file),
      entry_size_(entry_size),
      count_(entry_size == 0 ? 0 : file->offset() / entry_size) {}

void PreadArray::Prefetch(uint64_t low, uint64_t high) {
  if (count_ == 0) return;
  if (high >= count_) high = count_ - 1;
  if (low > high) return;
  const uint64_t records = high - low + 1;
  // Too large to buffer: the search reads records one at a time.
  if (records > kMaxPrefetch / entry_size_) return;
  const uint64_t buffered = buffer_.size() / entry_size_;
  if (low >= buffer_low_ && high - buffer_low_ < buffered) return;

  const size_t n = static_cast<size_t>(records) * entry_size_;
  buffer_.resize(n);
  buffer_low_ = low;
  size_t got = 0;
  absl::Status s = file_->Read(low * entry_size_, n, &buffer_[0], &got);
  if (!s.ok() || got != n) {
    buffer_.clear();
    if (status_.ok()) {
      status_ = absl::DataLossError(absl::StrCat(
          file_->path(), ": reading records ", low, "..", high, " (", n,
          " bytes at logical offset ", low * entry_size_, ") failed: ",
          s.ok() ? absl::StrCat("short read of ", got, " bytes")
                 : s.ToString()));
    }
  }
}

const char* PreadArray::Get(uint64_t i) {
  if (i >= count_) {
    one_.assign(entry_size_, '\0');
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(file_->path(), ": record ", i, " is past the last of ",
                       count_, " records"));
    }
    return one_.data();
  }
  // count_ > 0, so entry_size_ > 0.
  if (i >= buffer_low_ && i - buffer_low_ < buffer_.size() / entry_size_) {
    return buffer_.data() + (i - buffer_low_) * entry_size_;
  }
  one_.assign(entry_size_, '\0');
  size_t got = 0;
  absl::Status s = file_->Read(i * entry_size_, entry_size_, &one_[0], &got);
  if (!s.ok() || got != entry_size_) {
    // A zeroed record: the search still terminates, and status() tells the
    // caller.
    one_.assign(entry_size_, '\0');
    if (status_.ok()) {
      status_ = absl::DataLossError(absl::StrCat(
          file_->path(), ": reading record ", i, " (", entry_size_,
          " bytes at logical offset ", i * entry_size_, ") failed: ",
          s.ok() ? absl::StrCat("short read of ", got, " bytes")
                 : s.ToString()));
    }
  }
  return one_.data();
}

}  // namespace kvindex
