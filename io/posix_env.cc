// The POSIX Env: thin wrappers over the system calls, with every errno
// translated to an absl::Status in one place (PosixError) so that the codes are
// consistent.

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "io/env.h"

// Linux 5.14; older headers lack it, older kernels refuse it (EINVAL).
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace kvindex {

absl::Status PosixError(absl::string_view op, const std::string& path,
                        int err) {
  std::string msg = absl::StrCat(path, ": ", op, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
      return absl::ResourceExhaustedError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EAGAIN:
      return absl::UnavailableError(msg);
    case EROFS:
      // Not the store's fault nor a transient one: the file system refuses
      // writes until it is remounted.
      return absl::FailedPreconditionError(
          absl::StrCat(msg, " (the file system is mounted read-only)"));
    default:
      return absl::InternalError(msg);
  }
}

namespace {

// Closes `fd` without retrying: on Linux the descriptor is released even when
// close fails with EINTR, so a retry could close an unrelated descriptor.
void CloseFd(int fd) { ::close(fd); }

// Writes all of `data` at `offset`, looping over short writes. A write that
// makes no progress is reported, never ignored.
absl::Status WriteAll(int fd, const std::string& path, uint64_t offset,
                      absl::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  uint64_t pos = offset;
  while (left > 0) {
    ssize_t r = ::pwrite(fd, p, left, static_cast<off_t>(pos));
    if (r < 0) {
      if (errno == EINTR) continue;
      return PosixError(absl::StrCat("pwrite ", left, " bytes at offset ", pos),
                        path, errno);
    }
    if (r == 0) {
      return absl::InternalError(
          absl::StrCat(path, ": pwrite made no progress writing ", left,
                       " bytes at offset ", pos));
    }
    p += r;
    left -= static_cast<size_t>(r);
    pos += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

class PosixMappedRegion final : public MappedRegion {
 public:
  PosixMappedRegion(void* base, size_t size) : base_(base), size_(size) {}
  ~PosixMappedRegion() override {
    if (base_ != nullptr) ::munmap(base_, size_);
  }
  PosixMappedRegion(const PosixMappedRegion&) = delete;
  PosixMappedRegion& operator=(const PosixMappedRegion&) = delete;

  absl::string_view bytes() const override {
    if (base_ == nullptr) return absl::string_view();
    return absl::string_view(static_cast<const char*>(base_), size_);
  }

 private:
  void* const base_;  // nullptr for an empty region
  const size_t size_;
};

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFile() override { CloseFd(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  const std::string& path() const override { return path_; }

  absl::Status PRead(uint64_t offset, size_t n, char* dst,
                     size_t* bytes_read) const override {
    *bytes_read = 0;
    if (n == 0) return absl::OkStatus();
    ssize_t r;
    do {
      r = ::pread(fd_, dst, n, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      return PosixError(absl::StrCat("pread ", n, " bytes at offset ", offset),
                        path_, errno);
    }
    *bytes_read = static_cast<size_t>(r);
    return absl::OkStatus();
  }

  absl::Status PWrite(uint64_t offset, absl::string_view data) override {
    return WriteAll(fd_, path_, offset, data);
  }

  absl::Status Sync() override {
    if (::fdatasync(fd_) != 0) return PosixError("fdatasync", path_, errno);
    return absl::OkStatus();
  }

  absl::Status Allocate(uint64_t end) override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return PosixError("fstat", path_, errno);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (end <= size) return absl::OkStatus();
    int r;
    do {
      r = ::fallocate(fd_, 0, static_cast<off_t>(size),
                      static_cast<off_t>(end - size));
    } while (r != 0 && errno == EINTR);
    if (r == 0) return absl::OkStatus();
    if (errno == EOPNOTSUPP) {
      return absl::UnimplementedError(path_ + ": fallocate: not supported");
    }
    return PosixError("fallocate", path_, errno);
  }

  void StartWriteback(uint64_t offset, uint64_t n) override {
    // A hint: an error here (an old kernel, a file system without it) changes
    // nothing, and a real write error shows at the next Sync.
    (void)::sync_file_range(fd_, static_cast<off64_t>(offset),
                            static_cast<off64_t>(n), SYNC_FILE_RANGE_WRITE);
  }

  void StartReadahead(uint64_t offset, uint64_t n) const override {
    // Linux reads at most the device's read-ahead size per call: ask in
    // pieces.
    constexpr uint64_t kPiece = uint64_t{4} << 20;
    if (!FitsInMemory(n)) return;
    for (uint64_t done = 0; done < n; done += kPiece) {
      const uint64_t len = std::min(kPiece, n - done);
      // A hint: errors change nothing.
      (void)::posix_fadvise(fd_, static_cast<off_t>(offset + done),
                            static_cast<off_t>(len), POSIX_FADV_WILLNEED);
    }
  }

  absl::StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return PosixError("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<FileId> Id() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return PosixError("fstat", path_, errno);
    return FileId{static_cast<uint64_t>(st.st_dev),
                  static_cast<uint64_t>(st.st_ino)};
  }

  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t size) const override {
    return MapAs(size, /*resident=*/false);
  }

  absl::StatusOr<std::shared_ptr<const MappedRegion>> MapResident(
      uint64_t size) const override {
    return MapAs(size, /*resident=*/true);
  }

 private:
  // Whether `n` bytes may be loaded ahead of use: a range over a quarter of
  // the machine's memory would only evict other data (or itself) before it is
  // used.
  static bool FitsInMemory(uint64_t n) {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_size = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page_size > 0 &&
           n <= static_cast<uint64_t>(pages) / 4 *
                    static_cast<uint64_t>(page_size);
  }

  absl::StatusOr<std::shared_ptr<const MappedRegion>> MapAs(
      uint64_t size, bool resident) const {
    absl::StatusOr<uint64_t> file_size = Size();
    if (!file_size.ok()) return file_size.status();
    if (size > *file_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": cannot map ", size,
                       " bytes of a file of size ", *file_size));
    }
    if (size == 0) {
      return std::shared_ptr<const MappedRegion>(
          std::make_shared<PosixMappedRegion>(nullptr, 0));
    }
    void* base = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ,
                        MAP_SHARED, fd_, 0);
    if (base == MAP_FAILED) {
      return PosixError(absl::StrCat("mmap ", size, " bytes"), path_, errno);
    }
    // Advice is best effort: errors (old kernels, no transparent huge pages)
    // leave a mapping that works the same, only slower.
    const size_t length = static_cast<size_t>(size);
    if (resident && FitsInMemory(size)) {
      (void)::madvise(base, length, MADV_HUGEPAGE);
      if (::madvise(base, length, MADV_POPULATE_READ) != 0) {
        (void)::madvise(base, length, MADV_WILLNEED);
      }
    } else {
      // Lookups probe a few scattered pages: read-ahead would only waste IO.
      (void)::madvise(base, length, MADV_RANDOM);
    }
    return std::shared_ptr<const MappedRegion>(
        std::make_shared<PosixMappedRegion>(base, length));
  }

  const std::string path_;
  const int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  // Closing the only descriptor of the open file description releases the lock.
  ~PosixFileLock() override { CloseFd(fd_); }
  PosixFileLock(const PosixFileLock&) = delete;
  PosixFileLock& operator=(const PosixFileLock&) = delete;

 private:
  const int fd_;
};

// Reads the holder's PID text from a lock file (first line, digits only).
std::string ReadLockHolder(int fd) {
  char buf[64];
  ssize_t r;
  do {
    r = ::pread(fd, buf, sizeof(buf), 0);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return "<unknown>";
  absl::string_view text(buf, static_cast<size_t>(r));
  size_t end = 0;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  if (end == 0) return "<unknown>";
  return std::string(text.substr(0, end));
}

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    absl::StatusOr<std::unique_ptr<File>> file = OpenFileIfExists(path, mode);
    if (file.ok() && *file == nullptr) return PosixError("open", path, ENOENT);
    return file;
  }

  absl::StatusOr<std::unique_ptr<File>> OpenFileIfExists(
      const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kReadOnly:
        flags |= O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreateReadWrite:
        flags |= O_RDWR | O_CREAT;
        break;
    }
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == ENOENT) return std::unique_ptr<File>();
      return PosixError("open", path, errno);
    }
    return std::unique_ptr<File>(new PosixFile(path, fd));
  }

  absl::StatusOr<FileId> PathId(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return FileId{static_cast<uint64_t>(st.st_dev),
                  static_cast<uint64_t>(st.st_ino)};
  }

  absl::StatusOr<bool> FileExists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return PosixError("stat", path, errno);
  }

  absl::Status RenameFile(const std::string& src,
                          const std::string& dst) override {
    if (::rename(src.c_str(), dst.c_str()) != 0) {
      return PosixError(absl::StrCat("rename to ", dst), src, errno);
    }
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& path) override {
    if (path.empty()) {
      return absl::InvalidArgumentError("CreateDirs: empty path");
    }
    // Create every prefix ending before a '/', then the whole path.
    size_t pos = 0;
    while (true) {
      size_t slash = path.find('/', pos);
      std::string prefix =
          slash == std::string::npos ? path : path.substr(0, slash);
      pos = slash == std::string::npos ? path.size() : slash + 1;
      // Skip "" (leading '/'), repeated slashes and "." components.
      if (!prefix.empty() && prefix.back() != '/' &&
          !(prefix.size() >= 2 &&
            prefix.compare(prefix.size() - 2, 2, "/.") == 0) &&
          prefix != ".") {
        absl::Status s = MakeDir(prefix);
        if (!s.ok()) return s;
      }
      if (slash == std::string::npos) break;
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError("open directory", path, errno);
    absl::Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync directory", path, errno);
    CloseFd(fd);
    return s;
  }

  absl::StatusOr<std::string> ReadFileToString(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<File>> file =
        OpenFile(path, OpenMode::kReadOnly);
    if (!file.ok()) return file.status();
    return ReadAll(**file);
  }

  absl::StatusOr<std::optional<std::string>> ReadFileIfExists(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<File>> file =
        OpenFileIfExists(path, OpenMode::kReadOnly);
    if (!file.ok()) return file.status();
    if (*file == nullptr) return std::optional<std::string>();
    absl::StatusOr<std::string> bytes = ReadAll(**file);
    if (!bytes.ok()) return bytes.status();
    return std::optional<std::string>(*std::move(bytes));
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError("open lock file", path, errno);

    struct flock fl;
    std::memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;  // the whole file, however long it grows
    fl.l_pid = 0;  // required for open-file-description locks
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      int err = errno;
      if (err == EAGAIN || err == EACCES) {
        std::string holder = ReadLockHolder(fd);
        CloseFd(fd);
        return absl::UnavailableError(
            absl::StrCat("Cannot lock ", path,
                         ": index is already opened in write mode by PID ",
                         holder, ". Current PID is ", ::getpid(), "."));
      }
      CloseFd(fd);
      return PosixError("fcntl(F_OFD_SETLK)", path, err);
    }

    std::string pid = absl::StrCat(::getpid());
    absl::Status s = WriteAll(fd, path, 0, pid);
    // Truncate so that no digits of a longer, stale PID remain after ours.
    if (s.ok() && ::ftruncate(fd, static_cast<off_t>(pid.size())) != 0) {
      s = PosixError("ftruncate", path, errno);
    }
    if (!s.ok()) {
      CloseFd(fd);  // releases the lock
      return s;
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

 private:
  // The whole of `file`, from its start.
  static absl::StatusOr<std::string> ReadAll(const File& file) {
    std::string out;
    char buf[64 * 1024];
    uint64_t offset = 0;
    while (true) {
      size_t got = 0;
      absl::Status s = file.PRead(offset, sizeof(buf), buf, &got);
      if (!s.ok()) return s;
      if (got == 0) break;
      out.append(buf, got);
      offset += got;
    }
    return out;
  }

  // Creates one directory; an existing directory is fine, anything else is an
  // error.
  static absl::Status MakeDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) == 0) return absl::OkStatus();
    int err = errno;
    if (err == EEXIST || err == EISDIR) {
      struct stat st;
      if (::stat(dir.c_str(), &st) != 0) return PosixError("stat", dir, errno);
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat(dir, ": mkdir: exists and is not a directory"));
    }
    if (err == ENOTDIR) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, ": mkdir: a component of the path is not a directory"));
    }
    return PosixError("mkdir", dir, err);
  }
};

}  // namespace

Env* Env::Posix() {
  static Env* const env = new PosixEnv();
  return env;
}

}  // namespace kvindex
