// Env: every file-system operation the index performs goes through this
// interface, so that tests, fuzzers and model checks can run the real code
// against an in-memory file system that simulates crashes and injects IO errors
// (see io/mem_env.h).
//
// Errors: a missing file is kNotFound; a held lock is kUnavailable; every other
// OS error is translated once (errno -> absl::StatusCode) with the path in the
// message.
//
// Thread safety: Env methods may be called from any thread. A File may be read
// (PRead, Size, Map) from several threads at once; writes and Sync need
// external synchronisation with each other.
#ifndef KVINDEX_IO_ENV_H_
#define KVINDEX_IO_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvindex {

// A read-only view of a whole file's bytes, valid for as long as the region is
// held, even after the File that produced it was closed, renamed or removed.
class MappedRegion {
 public:
  virtual ~MappedRegion() = default;
  virtual absl::string_view bytes() const = 0;
};

// Identifies a file, not a name: two handles or paths with equal FileIds are
// the same file (for example, a path renamed over since the handle was opened
// is not).
struct FileId {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const FileId& o) const {
    return device == o.device && inode == o.inode;
  }
  bool operator!=(const FileId& o) const { return !(*this == o); }
};

class File {
 public:
  virtual ~File() = default;

  virtual const std::string& path() const = 0;

  // Reads up to `n` bytes at absolute position `offset` into `dst`, like
  // pread(2): may return fewer bytes than asked even before the end of the
  // file; *bytes_read == 0 means end of file. Callers that need `n` bytes loop
  // (see ReadFully).
  virtual absl::Status PRead(uint64_t offset, size_t n, char* dst,
                             size_t* bytes_read) const = 0;

  // Writes all of `data` at `offset`, extending the file if needed. A write
  // that cannot make progress is an error, never a silent partial write.
  virtual absl::Status PWrite(uint64_t offset, absl::string_view data) = 0;

  // Makes the file's contents and size durable (fdatasync).
  virtual absl::Status Sync() = 0;

  // Asks the system to start writing [offset, offset + n) to the device now,
  // without waiting (Linux: sync_file_range(SYNC_FILE_RANGE_WRITE)). A hint
  // for bulk writers: the device works while they produce the next bytes, and
  // their final Sync has little left to wait for. It makes nothing durable
  // and reports nothing; environments without such a call ignore it.
  virtual void StartWriteback(uint64_t offset, uint64_t n) {
    (void)offset;
    (void)n;
  }

  // Makes the file at least `end` bytes long, the new bytes reading as zeros,
  // with disk blocks reserved for them (Linux: fallocate(2), mode 0). A writer
  // that will rewrite those bytes in place spares each of its fdatasyncs the
  // journal commit that a growing file's size costs (io/grow_ahead.h). A
  // file never shrinks here, and bytes it already holds are left as they are.
  // kUnimplemented where the file system or environment cannot; any error
  // leaves the file as it was or longer, never with other contents, so a
  // caller may go on without the reservation.
  virtual absl::Status Allocate(uint64_t end) {
    (void)end;
    return absl::UnimplementedError(path() + ": allocate: not supported");
  }

  // Asks the system to start reading [offset, offset + n) into its cache now,
  // without waiting (Linux: POSIX_FADV_WILLNEED). A hint for a file about to be
  // read at random that should be in memory, but some of which may have been
  // evicted since it was written: one sequential read brings it back instead
  // of a random read per page touched. Environments without such a call, and
  // files too big to stay in memory, ignore it.
  virtual void StartReadahead(uint64_t offset, uint64_t n) const {
    (void)offset;
    (void)n;
  }

  virtual absl::StatusOr<uint64_t> Size() const = 0;

  // Which file this handle is open on.
  virtual absl::StatusOr<FileId> Id() const = 0;

  // Maps the first `size` bytes read-only. Only for files that are never
  // modified in place while mapped (the data file). `size` must not exceed
  // Size().
  virtual absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t size) const = 0;

  // Like Map, for a region that lookups read at random and that is small
  // enough to stay in memory (a key filter). It is loaded now, and where the
  // system can, in 2 MiB pages: one TLB entry then covers 512 times the bytes,
  // which spares each lookup a page walk (a costly one in a virtual machine).
  // Linux: MADV_HUGEPAGE, then MADV_POPULATE_READ, which maps what is cached
  // and reads what is not in 2 MiB pieces (a file just written by one large
  // write is usually cached in such pages already). The default maps and
  // hints StartReadahead.
  virtual absl::StatusOr<std::shared_ptr<const MappedRegion>> MapResident(
      uint64_t size) const {
    StartReadahead(0, size);
    return Map(size);
  }
};

// Reads exactly `n` bytes at `offset`, looping over short reads. Reaching the
// end of the file first is kDataLoss naming the file, the offset and the
// length.
absl::Status ReadFully(const File& file, uint64_t offset, size_t n, char* dst);

// The status of operation `op` on `path` failing with `err` (an errno value),
// as Env::Posix() reports it: "<path>: <op>: <strerror>" with a code that
// says what to do about it (kNotFound, kPermissionDenied for EACCES and EPERM,
// kResourceExhausted when out of space or quota, kFailedPrecondition on a
// read-only file system, kUnavailable for EAGAIN, kInternal otherwise).
absl::Status PosixError(absl::string_view op, const std::string& path, int err);

// Held while the process owns a lock file; destroying it releases the lock.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode {
  kReadOnly,         // must exist
  kReadWrite,        // must exist
  kCreateReadWrite,  // created (mode 0644) if missing; never truncated
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX implementation. Never deleted.
  static Env* Posix();

  virtual absl::StatusOr<std::unique_ptr<File>> OpenFile(
      const std::string& path, OpenMode mode) = 0;
  virtual absl::StatusOr<bool> FileExists(const std::string& path) = 0;
  // Which file `path` names now; kNotFound if none.
  virtual absl::StatusOr<FileId> PathId(const std::string& path) = 0;
  // Atomically replaces `dst` with `src` (rename(2)). Durable after SyncDir.
  virtual absl::Status RenameFile(const std::string& src,
                                  const std::string& dst) = 0;
  // kNotFound if missing. Durable after SyncDir.
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // mkdir -p (mode 0755); a non-directory in the way is an error.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Makes creations, renames and removals of entries in directory `path`
  // durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;
  // Whole contents of a (small) file.
  virtual absl::StatusOr<std::string> ReadFileToString(
      const std::string& path) = 0;

  // For probes of files that are often absent (at open and sync): a missing
  // file is no error, and none is built for it. OpenFile with a `mode` that
  // does not create: nullptr if `path` is missing.
  virtual absl::StatusOr<std::unique_ptr<File>> OpenFileIfExists(
      const std::string& path, OpenMode mode);
  // ReadFileToString: std::nullopt if `path` is missing.
  virtual absl::StatusOr<std::optional<std::string>> ReadFileIfExists(
      const std::string& path);

  // Takes the exclusive, non-blocking writer lock on `path` (created mode 0600
  // if missing) and records the caller's PID in it. The lock excludes every
  // other holder, in this process or another (open-file-description locks,
  // which also conflict with the classic POSIX locks of the OCaml
  // implementation). Held elsewhere: kUnavailable with the holder's PID in the
  // message.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) = 0;
};

// Writes `bytes` as the whole of a new file `path`.tmp (replacing one a crash
// left) and renames it over `path`: `path` names the old file or the new one,
// never a part. Not synced, for files whose readers detect a damaged or
// missing copy (the key filter, the checksum sidecar). On failure the .tmp
// file is removed (best effort).
absl::Status WriteFileAside(Env* env, const std::string& path,
                            absl::string_view bytes);

// An Env that forwards every call to another one: derive from it to change a
// few operations (counting, fault hooks) and keep the rest. OpenFileIfExists
// and ReadFileIfExists are not forwarded: they go through the wrapper's own
// OpenFile and ReadFileToString, so that a wrapper changing those changes
// every open and read.
class EnvWrapper : public Env {
 public:
  // `target` is not owned and must outlive the wrapper.
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    return target_->OpenFile(path, mode);
  }
  absl::StatusOr<bool> FileExists(const std::string& path) override {
    return target_->FileExists(path);
  }
  absl::StatusOr<FileId> PathId(const std::string& path) override {
    return target_->PathId(path);
  }
  absl::Status RenameFile(const std::string& src,
                          const std::string& dst) override {
    return target_->RenameFile(src, dst);
  }
  absl::Status RemoveFile(const std::string& path) override {
    return target_->RemoveFile(path);
  }
  absl::Status CreateDirs(const std::string& path) override {
    return target_->CreateDirs(path);
  }
  absl::Status SyncDir(const std::string& path) override {
    return target_->SyncDir(path);
  }
  absl::StatusOr<std::string> ReadFileToString(
      const std::string& path) override {
    return target_->ReadFileToString(path);
  }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    return target_->LockFile(path);
  }

 private:
  Env* target_;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_ENV_H_
