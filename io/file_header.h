// FileHeader: the 32-byte header at the start of every file of a store (the
// whole file's grammar is in io/index_file.h), as bytes. Decoding and encoding
// are pure: no file access, and no recovery (a header that claims more records
// than its file holds is the caller's business: IndexFile cuts the offset at
// open, index-fsck reports it).
//
// Byte layout, integers big-endian:
//
//   [0, 8)    offset      int64: valid record bytes after the fan-out table
//   [8, 16)   version     "00000001"
//   [16, 24)  generation  int64: merges and clears since the store was created
//   [24, 32)  fan_size    int64: byte length of the fan-out table, which
//                         follows at [32, 32 + fan_size)
//
// The first 24 bytes are read and written as one unit (the OCaml library's
// header get/set): a writer rewrites them in place, while the fan-out size is
// written once, with the table.
//
// Errors are kDataLoss naming the file and the field.
#ifndef KVINDEX_IO_FILE_HEADER_H_
#define KVINDEX_IO_FILE_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvindex {

struct FileHeader {
  static constexpr size_t kSize = 32;
  // offset, version and generation: the part rewritten in place.
  static constexpr size_t kGetSetSize = 24;
  static constexpr absl::string_view kVersion = "00000001";
  // Generations count merges and clears from 0 (the OCaml library's are 63-bit
  // ints): a generation outside [0, kMaxGeneration] is foreign, and the bound
  // leaves room for the +1 and +2 the index computes from it.
  static constexpr int64_t kMaxGeneration = int64_t{1} << 62;
  // Byte positions of the fields.
  static constexpr size_t kOffsetAt = 0;
  static constexpr size_t kVersionAt = 8;
  static constexpr size_t kGenerationAt = 16;
  static constexpr size_t kFanSizeAt = 24;

  int64_t offset = 0;
  int64_t generation = 0;
  int64_t fan_size = 0;

  // The fields as stored in the first kSize bytes of `bytes`, after checking
  // only that they are a header of this format: there are kSize bytes and the
  // version is kVersion. For a checker, which reports values no writer
  // produces rather than refusing them.
  static absl::StatusOr<FileHeader> DecodeRaw(absl::string_view bytes,
                                              absl::string_view path);

  // DecodeRaw, and also an error for any value no writer produces: a negative
  // offset, a generation outside [0, kMaxGeneration], a fan-out size that is
  // negative or not a multiple of 8.
  static absl::StatusOr<FileHeader> Decode(absl::string_view bytes,
                                           absl::string_view path);

  // Decode for the first kGetSetSize bytes of `bytes` only (offset, version,
  // generation: what a writer rewrites in place); fan_size is not read and is
  // 0 in the result.
  static absl::StatusOr<FileHeader> DecodeGetSet(absl::string_view bytes,
                                                 absl::string_view path);

  // The kSize bytes of this header, with version kVersion; their first
  // kGetSetSize bytes are what a rewrite in place writes.
  std::string Encode() const;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_FILE_HEADER_H_
