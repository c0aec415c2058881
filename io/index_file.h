// IndexFile: one file of an index store (data, log, log_async, merge, log_tmp)
// in the on-disk format of the OCaml `index` library (index.unix), version
// "00000001":
//
//   file     := header fanout records garbage
//   header   := offset:int64be version:"00000001" generation:int64be
//               fan_size:int64be         (32 bytes, layout in io/file_header.h)
//   fanout   := fan_size bytes: fan_size/8 slots, int64be (data and merge only)
//   records  := `offset` bytes of entry_size-byte records, each the key bytes
//               then the value bytes
//   garbage  := anything: bytes past `offset` are not part of the file's
//               contents
//
// `offset` is the commit point: it is rewritten only after the record bytes it
// covers. All offsets in this API ("logical offsets") count from the end of the
// fan-out table, i.e. from header_size() = 32 + fan_size.
//
// Recovery rules applied at open (a crash can leave any of these): a file
// shorter than its 32-byte header, or of exactly 32 zero bytes (a header a
// power cut kept from the disk), is treated as empty (read-write: rewritten
// with a fresh header; read-only: as absent); an `offset` past the end of the
// file is cut to the file size; a partial trailing record is cut off. Foreign
// or corrupt headers (wrong version, negative or misaligned fan-out size) are
// kDataLoss naming the file.
//
// Thread safety: const methods may run concurrently with each other; every
// other call needs exclusive access to the IndexFile.
#ifndef KVINDEX_IO_INDEX_FILE_H_
#define KVINDEX_IO_INDEX_FILE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/env.h"
#include "io/file_header.h"
#include "io/flush_options.h"
#include "io/flush_sums.h"

namespace kvindex {

class IndexFile {
 public:
  static constexpr uint64_t kHeaderSize = FileHeader::kSize;
  static constexpr absl::string_view kVersion = FileHeader::kVersion;
  // Buffered bytes past which Append flushes by itself (with the callback).
  static constexpr size_t kAutoFlushBytes = 1000000;
  // Generations count merges and clears from 0; a header with a generation
  // outside [0, kMaxGeneration] is foreign (kDataLoss).
  static constexpr int64_t kMaxGeneration = FileHeader::kMaxGeneration;

  struct Header {
    int64_t offset = 0;
    int64_t generation = 0;
  };

  // Called before the first byte of a non-empty write buffer is written to the
  // file.
  using FlushCallback = std::function<void()>;

  struct ReadWriteOptions {
    // Rewrite the header (offset 0, `generation`, `fan_size`) even if the file
    // exists.
    bool fresh = false;
    // Used only when the header is (re)written: new file, fresh, or shorter
    // than 32.
    int64_t generation = 0;
    uint64_t fan_size = 0;
    // Size of one record; the offset is rounded down to a multiple of it. Must
    // be > 0.
    size_t entry_size = 1;
    FlushCallback flush_callback;
    // After each write of buffered records, start writing them to the device
    // (File::StartWriteback) instead of leaving them to the kernel's
    // writeback: for bulk writers (the merge) whose final fsync would
    // otherwise wait for the whole file.
    bool write_behind = false;
  };

  // Opens or creates `path` for reading and appending. A created or rewritten
  // header is fsynced, together with the directory entry, before this returns.
  static absl::StatusOr<std::unique_ptr<IndexFile>> OpenReadWrite(
      Env* env, const std::string& path, const ReadWriteOptions& options);

  // Opens `path` read-only. Returns nullptr (not an error) when the file does
  // not exist or is shorter than a header. The offset is a snapshot refreshed
  // by ReadHeader().
  static absl::StatusOr<std::unique_ptr<IndexFile>> OpenReadOnly(
      Env* env, const std::string& path, size_t entry_size);

  ~IndexFile();
  IndexFile(const IndexFile&) = delete;
  IndexFile& operator=(const IndexFile&) = delete;

  const std::string& path() const { return path_; }
  bool readonly() const { return readonly_; }
  // 32 + fan-out size: where record bytes start.
  uint64_t header_size() const { return kHeaderSize + fan_size_; }
  uint64_t fan_size() const { return fan_size_; }
  // Logical end of the records, including bytes still in the write buffer.
  uint64_t offset() const { return offset_; }
  // Logical end of the records as last written to the file's header.
  uint64_t flushed_offset() const { return flushed_; }
  // Read-only handles: the offset the header held when last read, before it
  // was cut to the whole records the file holds (flushed_offset()). A writer's
  // torn append explains a difference in a log; in a data file, which is
  // written whole before it is renamed in, it means damage. Read-write
  // handles: flushed_offset().
  uint64_t claimed_offset() const { return readonly_ ? claimed_ : flushed_; }
  // Generation as last read or written through this handle.
  int64_t generation() const { return generation_; }

  // Appends record bytes to the write buffer (read-write only). Flushes,
  // calling the callback, once more than kAutoFlushBytes are buffered. Append
  // whole records only: a flush never splits the buffer.
  absl::Status Append(absl::string_view bytes);

  // Writes the buffer (if not empty: callback first, then the records, then the
  // header offset), then fsyncs if asked, even when the buffer was empty.
  absl::Status Flush(const FlushOptions& options = FlushOptions());

  // fsyncs the file a handle was open on when syncer() was called (or, with
  // a journal, the journal alone: its frames carry the records), without the
  // handle: it may run in another thread while the handle's owner goes on
  // appending and flushing (group commit), and stays harmless after the handle
  // has moved to another file (Clear) or closed. What was written to the file
  // before Sync() starts is durable when it returns OK.
  class Syncer {
   public:
    absl::Status Sync() const;

   private:
    friend class IndexFile;
    Syncer(std::shared_ptr<File> file, std::string path, FlushSums::Syncer sums)
        : file_(std::move(file)),
          path_(std::move(path)),
          sums_(std::move(sums)) {}
    std::shared_ptr<File> file_;  // null: the handle was closed
    std::string path_;
    FlushSums::Syncer sums_;
  };
  // Read-write handles only (the others have nothing to make durable).
  Syncer syncer() const;

  // Reads the records a handle has written, without the handle: like a
  // Syncer, from another thread while the handle's owner goes on appending
  // (records are never rewritten in place, so those below a flushed offset
  // read the same until the file is cleared).
  class Reader {
   public:
    // Appends the records [from, to) (logical offsets, flushed) to `out`.
    absl::Status Read(uint64_t from, uint64_t to, std::string* out) const;

   private:
    friend class IndexFile;
    Reader(std::shared_ptr<File> file, std::string path, uint64_t header_size)
        : file_(std::move(file)),
          path_(std::move(path)),
          header_size_(header_size) {}
    std::shared_ptr<File> file_;  // null: the handle was closed
    std::string path_;
    uint64_t header_size_;
  };
  Reader reader() const;

  // A new file for Clear(reopen) to swap in, built aside at `<path>_tmp`
  // with a header (fan size 0) and records copied from another file: a merge
  // builds the next log from log_async while writers go on appending to
  // log_async, and only catches up with their last records at the swap. Not
  // thread-safe.
  class Replacement {
   public:
    // Creates `<path>_tmp` (removing one a crash left) with a header of
    // `generation` and no records.
    static absl::StatusOr<std::unique_ptr<Replacement>> Create(
        Env* env, const std::string& path, int64_t generation);
    // Appends `source`'s records [end(), to): from where the last copy
    // stopped.
    absl::Status CopyFrom(const Reader& source, uint64_t to);
    // Writes end() into the header and fsyncs: the records copied so far are
    // then durable (the directory entry is made durable by the rename).
    absl::Status Sync();
    // Logical end of the records copied.
    uint64_t end() const { return end_; }

   private:
    friend class IndexFile;
    Replacement(std::string tmp_path, std::unique_ptr<File> file,
                int64_t generation)
        : tmp_path_(std::move(tmp_path)),
          file_(std::move(file)),
          generation_(generation) {}
    std::string tmp_path_;
    std::unique_ptr<File> file_;  // null once swapped in
    int64_t generation_;
    uint64_t end_ = 0;
    uint64_t synced_end_ = 0;
    bool synced_ = false;
  };

  // Keeps a journal, `<path>.sum`, with a frame per flush from now on
  // (io/flush_sums.h). Call once, right after OpenReadWrite, before any
  // Append. First recovers from the journal a previous writer left: records
  // the log lost are written back from its frames, and the offset (on disk
  // too) is set to the end of its frames, so that records a power cut kept
  // from the disk never read as bindings and no durable record is lost; then
  // fsyncs the file and starts a new journal. From then on a durable flush
  // fsyncs the journal only (the file is fsynced at Close, or replaced by
  // Clear, which replaces or removes the journal with it); a Close after a
  // durable flush fsyncs the file and removes the journal. For logs:
  // RenameTo refuses a handle that keeps one.
  absl::Status StartFlushSums();

  // For a writer that keeps no journal: recovers from the one a previous
  // writer left, if any (as StartFlushSums does), fsyncs the file and removes
  // the journal durably. Call right after OpenReadWrite, before any Append.
  absl::Status DropFlushSums();

  // Read-only handles of a log: checks the records against the log's journal,
  // if one applies (io/flush_sums.h), and shows the records as the writer's
  // next open will leave them, for as long as the header's offset and
  // generation stay as they are now: records the log does not hold (a power
  // cut kept their pages from the disk) are served from the journal's frames,
  // and records no frame vouches for are hidden. Once the header changes, a
  // writer has opened the log (and restored it itself), and the handle
  // follows it.
  absl::Status CapToFlushSums();

  // After StartFlushSums, DropFlushSums or CapToFlushSums: the bytes of
  // records it cut because the journal did not vouch for them (0 if none).
  uint64_t unvouched_bytes_cut() const { return unvouched_bytes_cut_; }
  // After StartFlushSums or DropFlushSums: the bytes of records written back
  // into the file from the journal's frames (0 if none).
  uint64_t restored_bytes() const { return restored_bytes_; }

  // fsyncs the file itself, unless no record was written to it since its
  // last fsync: with a journal, a durable flush fsyncs the journal only.
  // Safe to call from another thread while no other thread writes through
  // the handle (a merge's, on its frozen log), so that Clear, which fsyncs
  // the file before it replaces the journal, finds nothing left to sync.
  absl::Status SyncFile() const;

  // Reads up to `n` bytes at logical offset `offset`, from the file and
  // (read-write) from the write buffer, never past offset(). *bytes_read < n
  // only at the end.
  absl::Status Read(uint64_t offset, size_t n, char* dst,
                    size_t* bytes_read) const;

  // One 24-byte read of offset, version and generation. Refreshes the cached
  // offset and generation (that is how read-only handles see new records).
  absl::StatusOr<Header> ReadHeader();
  // One 24-byte write of offset, version and generation (read-write only).
  absl::Status WriteHeader(const Header& header);

  // The fan-out table bytes (fan_size() of them).
  absl::StatusOr<std::string> ReadFanout() const;
  // Writes the table (its size must equal fan_size()) straight to the file.
  absl::Status WriteFanout(absl::string_view table);

  // Maps the header and the flushed records read-only: bytes() has
  // header_size() + flushed_offset() bytes. For files never written in place
  // (data).
  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map() const;

  // Asks the system to read the header and the flushed records into its
  // cache (File::StartReadahead): for a file about to be mapped and read at
  // random.
  void StartReadahead() const;

  // Size of the file on disk.
  absl::StatusOr<uint64_t> FileSize() const;
  // Which file this handle is open on (compare with Env::PathId to tell whether
  // the path still names it).
  absl::StatusOr<FileId> Id() const;

  // Empties the file (read-write only), discarding the write buffer without
  // callback:
  //   reopen:  a new header-only file (generation, fan size 0) is written to
  //            `<path>_tmp`, fsynced and renamed over `path`; the handle
  //            continues on it.
  //   !reopen: `path` is removed; the handle is closed afterwards.
  // Then `hook` runs (tests), and finally {offset 0, generation} is written
  // into the OLD file, so read-only processes still holding it notice the
  // change.
  absl::Status Clear(int64_t generation, bool reopen,
                     const std::function<void()>& hook = nullptr);
  // Clear(reopen) with `replacement`, synced (Replacement::Sync) since its
  // last copy, as the new file in place of a header-only one: the handle
  // continues on it, holding its records. The replacement's generation is the
  // new generation.
  absl::Status ReplaceWith(Replacement& replacement,
                           const std::function<void()>& hook = nullptr);

  // Flushes with fsync (no callback), renames the file to `new_path` (replacing
  // it) and makes the rename durable. The handle keeps working under the new
  // name. After an error, path() says whether the rename was done: it is
  // `new_path` when only making it durable failed.
  absl::Status RenameTo(const std::string& new_path);

  // Closes the file. Unflushed bytes are dropped: flush first.
  absl::Status Close();

 private:
  IndexFile(Env* env, std::string path, std::unique_ptr<File> file,
            bool readonly);
  absl::Status WriteBuffer();
  // A read-write handle still open.
  absl::Status CheckClearable() const;
  // Clear and ReplaceWith: swaps `replacement` in, or removes the file if
  // null.
  absl::Status ClearOrReplace(int64_t generation, Replacement* replacement,
                              const std::function<void()>& hook);
  // Writes offset_ into the header's offset field (no fsync).
  absl::Status WriteOffset(absl::string_view what);
  absl::Status SyncFileAndSums();
  absl::Status RecoverFromFlushSums(absl::string_view what);

  Env* env_;
  std::string path_;
  // Shared with the Syncers handed out.
  std::shared_ptr<File> file_;
  bool readonly_;
  size_t entry_size_ = 1;
  uint64_t fan_size_ = 0;
  uint64_t offset_ = 0;   // logical, includes buffer_
  uint64_t flushed_ = 0;  // logical, persisted in the header
  uint64_t claimed_ = 0;  // read-only: the header's offset, uncut
  // Read-write: the file's size at open. Bytes below it and past the records
  // are left over (a fresh reopen, a crash) and are rewritten in place by the
  // next records, so WriteBuffer syncs records written there before the offset
  // that covers them (unless a journal's frame carries them).
  uint64_t stale_end_ = 0;
  // Read-write: OpenReadWrite wrote a new header (a new file, `fresh`, or one
  // a crash left without a header).
  bool header_rewritten_ = false;
  int64_t generation_ = 0;
  std::string buffer_;
  bool write_behind_ = false;
  FlushCallback flush_callback_;
  // StartFlushSums: the journal, and whether records were written since the
  // last durable flush through this handle (a close removes the journal only
  // if not).
  std::unique_ptr<FlushSums> sums_;
  bool unsynced_writes_ = false;
  // Writes of records to the file, and how many of them the last fsync of the
  // file itself covered (with a journal, a durable flush fsyncs the journal
  // only). Atomic: SyncFile may run on another thread (a merge's).
  std::atomic<uint64_t> writes_{0};
  mutable std::atomic<uint64_t> synced_writes_{0};
  uint64_t unvouched_bytes_cut_ = 0;
  uint64_t restored_bytes_ = 0;
  // CapToFlushSums: the end of the vouched records, while the header still
  // claims cap_claimed_ at cap_generation_.
  bool capped_ = false;
  uint64_t cap_end_ = 0;
  uint64_t cap_claimed_ = 0;
  int64_t cap_generation_ = 0;
  // While capped: the journal's records from logical overlay_begin_ on, which
  // the file does not hold.
  uint64_t overlay_begin_ = 0;
  std::string overlay_;
};

// Directory holding every file of the store rooted at `root`: `<root>/index`.
std::string StoreDir(const std::string& root);
// Path of file `name` ("data", "log", "log_async", "merge", "lock") of store
// `root`.
std::string StorePath(const std::string& root, absl::string_view name);

}  // namespace kvindex

#endif  // KVINDEX_IO_INDEX_FILE_H_
