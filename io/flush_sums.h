// FlushSums: the checksum sidecar of a log file, `<log>.sum` (docs/format.md
// §9b), written when Options::log_checksums is on. The log keeps the OCaml
// format, which has no room for a checksum; the sidecar holds one entry per
// flush, so that an open after a power cut can tell the records a flush really
// wrote from pages the disk never got (zeros, or older bytes) under an offset
// that did reach it.
//
//   sidecar := header entry* zeros
//   header  := magic:"kvlogsum" generation:int64be header_size:int64be
//              start:int64be zero:24 bytes header_sum:int64be   (64 bytes)
//   entry   := end:int64be sum:int64be                           (16 bytes)
//
// `generation` and `header_size` name the log file the sidecar describes;
// `start` is the logical offset (IndexFile's, from the end of the fan-out)
// below which the log was durable when the sidecar was made, so its records
// need no entry. Entry i covers the records [end(i-1), end(i)) (end(-1) =
// start) with sum = XXH3-64 of their bytes seeded with end(i-1), so an entry
// vouches for those bytes at that place only. header_sum is the XXH3-64 of the
// header's first 56 bytes. The writer grows the file ahead of its entries
// (io/grow_ahead.h); the zeros past the last entry end them, as an entry must
// end past the one before.
//
// The writer appends an entry after a flush's records and before the header
// offset that commits them, and fsyncs the sidecar whenever it fsyncs the log:
// a durable flush's entry is durable with it. At open, the records from
// `start` on count only as far as consecutive entries vouch for them; an
// offset past that is cut (those records were never fsynced, or the sidecar's
// entry would be there).
//
// Thread safety: a FlushSums is used by the one IndexFile that owns it;
// Syncer() may run concurrently with Add.
#ifndef KVINDEX_IO_FLUSH_SUMS_H_
#define KVINDEX_IO_FLUSH_SUMS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/env.h"
#include "io/grow_ahead.h"

namespace kvindex {

class FlushSums {
 public:
  static constexpr size_t kHeaderSize = 64;
  static constexpr size_t kEntrySize = 16;

  // `<log_path>.sum`.
  static std::string PathFor(const std::string& log_path);

  // What the sidecar of a log says about the log's records.
  struct Verdict {
    // False: no sidecar, or one that describes another file (another
    // generation or fan-out size, a start past the log's offset, a damaged
    // header). Such a sidecar vouches for nothing and the log is read as it
    // is.
    bool applies = false;
    // When it applies: the end of the records it vouches for, at most the
    // log's offset. Records past it were never fsynced.
    uint64_t verified_end = 0;
    // Why it does not apply, or why verification stopped before the offset.
    std::string detail;
  };

  // Checks the records of the log open as `log` (read through it), whose
  // header says `generation`, `header_size` and whose whole records end at
  // logical `offset`, against its sidecar.
  static absl::StatusOr<Verdict> Verify(Env* env, const File& log,
                                        const std::string& log_path,
                                        int64_t generation,
                                        uint64_t header_size, size_t entry_size,
                                        uint64_t offset);

  // Replaces the sidecar of `log_path` with an empty one for records from
  // logical offset `start` on: written aside, fsynced and renamed in. The
  // caller fsyncs the directory (and must have made the log's records below
  // `start` durable).
  static absl::StatusOr<std::unique_ptr<FlushSums>> Create(
      Env* env, const std::string& log_path, int64_t generation,
      uint64_t header_size, uint64_t start);

  // Removes the sidecar of `log_path`, if any, durably: for a log written
  // without one from now on, which the sidecar would otherwise disown were it
  // to come back after a crash.
  static absl::Status RemoveStale(Env* env, const std::string& log_path);

  const std::string& path() const { return path_; }
  // Logical end of the records the entries cover so far.
  uint64_t end() const { return end_; }

  // Appends the entry for `records`, which the log holds from logical offset
  // `begin` on: end(), or the begin of the last entry, which is then written
  // again (a flush retried after a failure, maybe with more records). Not
  // fsynced. On failure nothing advances.
  absl::Status Add(uint64_t begin, absl::string_view records);

  // fsyncs the sidecar file. Like IndexFile::Syncer, usable from another
  // thread and after the FlushSums is gone.
  class Syncer {
   public:
    Syncer() = default;
    absl::Status Sync() const;
    // Whether there is a sidecar to sync.
    bool active() const { return file_ != nullptr; }

   private:
    friend class FlushSums;
    Syncer(std::shared_ptr<File> file, std::string path)
        : file_(std::move(file)), path_(std::move(path)) {}
    std::shared_ptr<File> file_;  // null: nothing to sync
    std::string path_;
  };
  Syncer syncer() const { return Syncer(file_, path_); }

 private:
  FlushSums(std::string path, std::shared_ptr<File> file, uint64_t start)
      : path_(std::move(path)), file_(std::move(file)), end_(start) {}

  std::string path_;
  std::shared_ptr<File> file_;
  uint64_t end_;
  uint64_t last_begin_ = 0;  // of the last entry, if entries_ > 0
  uint64_t entries_ = 0;
  GrowAhead grow_ahead_{kHeaderSize};
};

}  // namespace kvindex

#endif  // KVINDEX_IO_FLUSH_SUMS_H_
