// DataSums: the checksum sidecar of one data file, kept next to it as
// `data.sum` (`run.<id>.sum` for a run of the tiered layout): one XXH3-64 per
// fixed-size block of the data file, counted from byte 0, so that the header,
// the fan-out table and the records are all covered. Merges and compactions
// check every block of the data files they read against it before they copy
// anything, and `index-fsck integrity-check` reports the blocks that differ.
//
// Like the key filter (filter/key_filter.h), the sidecar is outside the OCaml
// library's format and never required: one that is missing, damaged (its own
// checksums) or stale (built for a data file of another generation or size,
// both in its header) is simply not used, and the data file is then read
// unchecked, as without a sidecar.
//
// Unlike the filter's, the binding does not include the data file's DataId
// (which the header records too): that is computed from bytes of the data
// file itself (its first and last records and its fan-out table), so damage
// there would make the sidecar look stale and go unnoticed. Writers never give
// two different data files the same generation, so a sidecar of the same
// generation and size describes this data file, and where the bytes differ
// from its sums the data file is damaged (or was brought in from elsewhere
// over a data file of the same generation: remove the sidecar then).
//
// File format (docs/format.md §9a; integers big-endian, like the rest of the
// store):
//   magic      "KVSUMS01"                 8 bytes
//   block_size uint64  bytes per block (the last block may be shorter)
//   generation int64   of the data file
//   file_bytes uint64  size of the data file
//   data_id    uint64  see DataId: the data file's first and last records and
//                      its fan-out table
//   blocks     uint64  ceil(file_bytes / block_size), the sums that follow
//   checksum   uint64  XXH3-64 of the sums as stored
//   header_checksum uint64  XXH3-64 of the 56 bytes above
//   sums       blocks * uint64: XXH3-64 (no seed) of each block
//
// Thread safety: a DataSums is immutable; the builder is not thread-safe.
#ifndef KVINDEX_FILTER_DATA_SUMS_H_
#define KVINDEX_FILTER_DATA_SUMS_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/env.h"

namespace kvindex {

// Which data file a sidecar describes. A sidecar belongs to a data file when
// the generations and the sizes are equal; data_id is recorded for the
// record (see above).
struct SumsTarget {
  int64_t generation = 0;
  uint64_t file_bytes = 0;
  uint64_t data_id = 0;  // see DataId in filter/key_filter.h

  bool operator==(const SumsTarget& o) const {
    return generation == o.generation && file_bytes == o.file_bytes &&
           data_id == o.data_id;
  }
  // Whether a sidecar written for `o` belongs to the data file of this target.
  bool Binds(const SumsTarget& o) const {
    return generation == o.generation && file_bytes == o.file_bytes;
  }
};

// Builds the sidecar of a file written front to back except for its first
// `head_bytes` bytes (the header and fan-out table of a merge's output, which
// are written last): the rest comes through Append, in order, and the head
// through Finish. Only the bytes of the blocks that the head overlaps are kept
// until then; every other block is hashed as soon as it is complete, so the
// file is never read back.
class DataSumsBuilder {
 public:
  // What writers use: 64 KiB.
  static constexpr uint64_t kBlockSize = uint64_t{1} << 16;

  explicit DataSumsBuilder(uint64_t head_bytes,
                           uint64_t block_size = kBlockSize);

  // The next bytes of the file, from position head_bytes on.
  void Append(absl::string_view bytes);

  // The sidecar's bytes, given the file's first head_bytes bytes (exactly
  // that many) and the identity of the data file it describes, whose
  // file_bytes must be head_bytes plus the bytes appended.
  std::string Finish(absl::string_view head, const SumsTarget& target);

 private:
  void Sum(absl::string_view block);

  uint64_t block_size_;
  // The end of the last block the head overlaps: bytes appended below it wait
  // in head_rest_ for the head.
  uint64_t head_blocks_end_;
  uint64_t at_;  // file position of the next byte appended
  std::string head_rest_;
  std::string pending_;  // an incomplete block past head_blocks_end_
  std::vector<uint64_t> tail_sums_;  // blocks from head_blocks_end_ on
};

// The sums of a whole file in memory (tests, and what a checker compares).
std::string DataSumsOf(absl::string_view file, const SumsTarget& target,
                       uint64_t block_size = DataSumsBuilder::kBlockSize);

class DataSums {
 public:
  static constexpr size_t kHeaderSize = 64;
  // Block sizes a reader accepts: powers of two in [kMinBlockSize,
  // kMaxBlockSize].
  static constexpr uint64_t kMinBlockSize = 512;
  static constexpr uint64_t kMaxBlockSize = uint64_t{1} << 30;

  // The sidecar at `path` if it exists, is intact and belongs to `target`
  // (SumsTarget::Binds);
  // otherwise nullptr (a sidecar is never required), with the reason in `why`
  // if given ("absent" when there is no file). IO errors other than absence
  // are errors.
  static absl::StatusOr<std::unique_ptr<const DataSums>> Read(
      Env* env, const std::string& path, const SumsTarget& target,
      std::string* why = nullptr);

  // Parses a sidecar's bytes: nullptr unless intact and belonging to
  // `target`. `why`,
  // if given, receives the reason on nullptr.
  static std::unique_ptr<const DataSums> Parse(absl::string_view bytes,
                                               const SumsTarget& target,
                                               std::string* why = nullptr);

  // Writes `bytes` (a builder's output) to `path` by way of `path`.tmp and a
  // rename. Not synced: after a crash the checksums tell a damaged sidecar.
  static absl::Status Write(Env* env, const std::string& path,
                            absl::string_view bytes);

  // Whether `bytes` are those of block `i` (< blocks()), which spans file
  // positions [BlockBegin(i), BlockEnd(i)).
  bool Matches(uint64_t i, absl::string_view bytes) const;
  uint64_t BlockBegin(uint64_t i) const { return i * block_size_; }
  uint64_t BlockEnd(uint64_t i) const {
    return std::min(BlockBegin(i) + block_size_, target_.file_bytes);
  }

  // A block whose bytes differ from its sum: file positions [begin, end).
  struct BadRange {
    uint64_t begin = 0;
    uint64_t end = 0;
  };
  // The blocks of `file` (the whole data file, target().file_bytes bytes)
  // that do not match their sums, in order; at most `limit` of them.
  std::vector<BadRange> BadBlocks(absl::string_view file,
                                  size_t limit = SIZE_MAX) const;
  // OK if every block of `file` matches; otherwise kDataLoss naming `path`
  // (the data file) and the byte range of the first block that does not. A
  // file of another size than the target's is kDataLoss too.
  absl::Status Verify(absl::string_view file, absl::string_view path) const;

  uint64_t block_size() const { return block_size_; }
  uint64_t blocks() const { return sums_.size(); }
  // The identity recorded in the sidecar.
  const SumsTarget& target() const { return target_; }

 private:
  DataSums() = default;

  uint64_t block_size_ = 0;
  SumsTarget target_;
  std::vector<uint64_t> sums_;
};

}  // namespace kvindex

#endif  // KVINDEX_FILTER_DATA_SUMS_H_
