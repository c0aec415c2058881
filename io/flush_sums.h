// FlushSums: the journal of a log file, `<log>.sum` (docs/format.md §9b),
// written when Options::log_checksums is on. The log keeps the OCaml format,
// which has no room for a checksum; the sidecar holds one checksummed frame
// per flush, carrying the flush's records. A durable flush fsyncs the sidecar
// only: the log is written as usual and fsynced lazily (merge, clear, close),
// and an open after a power cut restores from the frames the records whose
// pages the log lost, and cuts what no frame vouches for, so that a page the
// disk never got (zeros, or older bytes) under an offset that did reach it
// never reads as a binding.
//
//   sidecar := header frame* zeros
//   header  := magic:"kvlogjnl" generation:int64be header_size:int64be
//              start:int64be zero:24 bytes header_sum:int64be   (64 bytes)
//   frame   := end:int64be sum:int64be records                  (16 + n bytes)
//
// `generation` and `header_size` name the log file the sidecar describes;
// `start` is the logical offset (IndexFile's, from the end of the fan-out)
// below which the log was durable when the sidecar was made, so its records
// need no frame. Frame i carries the records [end(i-1), end(i)) (end(-1) =
// start), n = end(i) - end(i-1) bytes, with sum = XXH3-64 of those bytes
// seeded with end(i-1), so a frame vouches for them at that place only.
// header_sum is the XXH3-64 of the header's first 56 bytes. The writer grows
// the file ahead of its frames (io/grow_ahead.h); the zeros past the last
// frame end them, as a frame must end past the one before.
//
// Sidecars of the earlier format, magic "kvlogsum" with 16-byte entries
// `end sum` and no records (the log was fsynced with them), are still read:
// they vouch for the log's bytes and restore nothing.
//
// The writer appends a frame after a flush's records reach the log and before
// the header offset that commits them. At a writer's open (Recover), frames
// whose records the log holds are checked, the others are written back into
// the log, and the offset is set to the end of the last whole frame: records
// past it were never fsynced (their frame would be there). Readers cannot
// write: they show the records up to the first frame the log does not match.
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
  // A frame's end and sum, before its records.
  static constexpr size_t kFrameHeaderSize = 16;

  // `<log_path>.sum`.
  static std::string PathFor(const std::string& log_path);

  // What the sidecar of a log says about the log's records.
  struct Verdict {
    // False: no sidecar, or one that describes another file (another
    // generation or fan-out size, a start past the log's offset, a damaged
    // header). Such a sidecar vouches for nothing and the log is read as it
    // is.
    bool applies = false;
    // When it applies: the end of the records in the log that it vouches
    // for, at most the log's offset (with `restore_into`: the end of the
    // frames, whose records are now in the log).
    uint64_t verified_end = 0;
    // When it applies: the end of its whole frames, which may lie past the
    // log's offset (the offset did not reach the disk) or past records the
    // log does not match (their pages did not). A writer's open restores the
    // log up to it; records past it were never fsynced. Equal to
    // verified_end for a sidecar of the earlier format.
    uint64_t restorable_end = 0;
    // Bytes of records written back into the log (with `restore_into`).
    uint64_t restored_bytes = 0;
    // Why it does not apply, or why verification stopped before the offset.
    std::string detail;
  };

  // Checks the records of the log open as `log` (read through it), whose
  // header says `generation`, `header_size` and whose whole records end at
  // logical `offset`, against its sidecar. With `restore_into` (the log's
  // writable handle; the writer's open), the records of every frame whose
  // bytes the log does not hold are written into it at their place (not
  // synced; frames the log already holds are not rewritten), and
  // verified_end becomes restorable_end. With `unheld` (readers, which
  // cannot write), the frames' records from verified_end to restorable_end
  // are appended to it instead.
  static absl::StatusOr<Verdict> Verify(Env* env, const File& log,
                                        const std::string& log_path,
                                        int64_t generation,
                                        uint64_t header_size, size_t entry_size,
                                        uint64_t offset,
                                        File* restore_into = nullptr,
                                        std::string* unheld = nullptr);

  // Replaces the sidecar of `log_path` with an empty one for records from
  // logical offset `start` on: written aside, fsynced and renamed in. The
  // caller fsyncs the directory (and must have made the log's records below
  // `start` durable).
  static absl::StatusOr<std::unique_ptr<FlushSums>> Create(
      Env* env, const std::string& log_path, int64_t generation,
      uint64_t header_size, uint64_t start);

  // Removes the sidecar of `log_path`, if any, durably: for a log written
  // without one from now on, which the sidecar would otherwise disown were it
  // to come back after a crash. The caller has restored and fsynced the log
  // first (IndexFile::DropFlushSums): the frames may hold durable records.
  static absl::Status RemoveStale(Env* env, const std::string& log_path);

  const std::string& path() const { return path_; }
  // Logical end of the records the frames cover so far.
  uint64_t end() const { return end_; }

  // Appends the frame of `records`, which the log holds from logical offset
  // `begin` on: end(), or the begin of the last frame, which is then written
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
  bool has_frames_ = false;
  uint64_t last_begin_ = 0;         // of the last frame, if has_frames_
  uint64_t last_at_ = 0;            // where the last frame starts in the file
  uint64_t next_at_ = kHeaderSize;  // where the next frame goes
  std::string frame_;               // reused to build frames
  GrowAhead grow_ahead_{kHeaderSize};
};

}  // namespace kvindex

#endif  // KVINDEX_IO_FLUSH_SUMS_H_
