#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "io/env.h"

namespace kvindex {
namespace {

// A fresh directory per test, removed (recursively) at the end.
class PosixEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir();
    if (tmpl.empty() || tmpl.back() != '/') tmpl += '/';
    tmpl += "posix_env_test.XXXXXX";
    ASSERT_NE(::mkdtemp(&tmpl[0]), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::string cmd =
          absl::StrCat("chmod -R u+rwx '", dir_, "'; rm -rf '", dir_, "'");
      ASSERT_EQ(::system(cmd.c_str()), 0);
    }
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }

  // Writes `bytes` to `name` through the Env and returns the path.
  std::string MakeFile(const std::string& name, const std::string& bytes) {
    std::string path = Path(name);
    auto f = env_->OpenFile(path, OpenMode::kCreateReadWrite);
    EXPECT_TRUE(f.ok()) << f.status();
    if (f.ok()) {
      EXPECT_TRUE((*f)->PWrite(0, bytes).ok());
    }
    return path;
  }

  // MakeFile, made durable, then dropped from the page cache (where the file
  // system allows), as if evicted since it was written.
  std::string MakeEvictedFile(const std::string& name,
                              const std::string& bytes) {
    std::string path = MakeFile(name, bytes);
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd >= 0) {
      EXPECT_EQ(::fdatasync(fd), 0);
      (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
    return path;
  }

  // How many of the pages under `mapped` are in the page cache, and how many
  // there are.
  static std::pair<size_t, size_t> ResidentPages(absl::string_view mapped) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> in_core((mapped.size() + page - 1) / page);
    EXPECT_EQ(::mincore(const_cast<char*>(mapped.data()), mapped.size(),
                        in_core.data()),
              0)
        << std::strerror(errno);
    size_t resident = 0;
    for (unsigned char c : in_core) resident += c & 1;
    return {resident, in_core.size()};
  }

  Env* env_ = Env::Posix();
  std::string dir_;
};

TEST_F(PosixEnvTest, PosixIsASingleton) {
  EXPECT_NE(Env::Posix(), nullptr);
  EXPECT_EQ(Env::Posix(), Env::Posix());
}

TEST_F(PosixEnvTest, OpenMissingFileIsNotFound) {
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto f = env_->OpenFile(Path("missing"), mode);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
    EXPECT_TRUE(absl::StrContains(f.status().message(), Path("missing")))
        << f.status();
  }
  auto exists = env_->FileExists(Path("missing"));
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

// The probes for files that are often absent: a missing file is no error,
// anything else is what OpenFile and ReadFileToString return.
TEST_F(PosixEnvTest, IfExistsProbesTellMissingFromPresentAndFromErrors) {
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto missing = env_->OpenFileIfExists(Path("missing"), mode);
    ASSERT_TRUE(missing.ok()) << missing.status();
    EXPECT_EQ(*missing, nullptr);
  }
  auto no_bytes = env_->ReadFileIfExists(Path("missing"));
  ASSERT_TRUE(no_bytes.ok()) << no_bytes.status();
  EXPECT_FALSE(no_bytes->has_value());

  const std::string path = MakeFile("present", "bytes");
  auto f = env_->OpenFileIfExists(path, OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_NE(*f, nullptr);
  EXPECT_EQ((*f)->path(), path);
  ASSERT_TRUE((*f)->PWrite(0, "B").ok());
  auto bytes = env_->ReadFileIfExists(path);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_TRUE(bytes->has_value());
  EXPECT_EQ(**bytes, "Bytes");

  // A directory is no missing file: the error names it.
  ASSERT_TRUE(env_->CreateDirs(Path("d")).ok());
  auto dir = env_->OpenFileIfExists(Path("d"), OpenMode::kReadWrite);
  ASSERT_FALSE(dir.ok());
  EXPECT_TRUE(absl::StrContains(dir.status().message(), Path("d")))
      << dir.status();
  auto dir_bytes = env_->ReadFileIfExists(Path("d"));
  EXPECT_FALSE(dir_bytes.ok());
}

TEST_F(PosixEnvTest, CreateWriteReadBack) {
  std::string path = Path("f");
  auto f = env_->OpenFile(path, OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->path(), path);
  ASSERT_TRUE((*f)->PWrite(0, "hello").ok());
  ASSERT_TRUE((*f)->PWrite(5, " world").ok());
  ASSERT_TRUE((*f)->PWrite(0, "J").ok());  // overwrite in place
  ASSERT_TRUE((*f)->Sync().ok());
  auto size = (*f)->Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11u);

  char buf[11];
  ASSERT_TRUE(ReadFully(**f, 0, sizeof(buf), buf).ok());
  EXPECT_EQ(std::string(buf, sizeof(buf)), "Jello world");

  auto exists = env_->FileExists(path);
  ASSERT_TRUE(exists.ok());
  EXPECT_TRUE(*exists);
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "Jello world");

  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0022u, 0644u & ~0022u);
}

TEST_F(PosixEnvTest, StartWritebackKeepsTheContents) {
  std::string path = Path("f");
  auto f = env_->OpenFile(path, OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f.ok()) << f.status();
  const std::string bytes(3 << 20, 'w');
  ASSERT_TRUE((*f)->PWrite(0, bytes).ok());
  (*f)->StartWriteback(0, bytes.size());
  (*f)->StartWriteback(bytes.size(), 4096);  // past the end: ignored
  ASSERT_TRUE((*f)->Sync().ok());
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(*text == bytes);
  // On a read-only handle the hint is refused by the system, silently.
  auto ro = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status();
  (*ro)->StartWriteback(0, 4096);
  auto size = (*ro)->Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, bytes.size());
}

// The read-ahead hint brings an evicted file back into the page cache, all of
// it over more than one of its pieces, without anything reading it; past the
// end and on an absurd range it changes nothing, and the file reads the same.
TEST_F(PosixEnvTest, StartReadaheadLoadsTheFileAndKeepsItsContents) {
  std::string bytes(9 << 20, 'r');
  bytes[5 << 20] = 'x';
  const std::string path = MakeEvictedFile("f", bytes);
  auto ro = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status();
  (*ro)->StartReadahead(0, bytes.size());
  (*ro)->StartReadahead(bytes.size(), 4096);
  (*ro)->StartReadahead(0, ~uint64_t{0});
  auto region = (*ro)->Map(bytes.size());
  ASSERT_TRUE(region.ok()) << region.status();
  // The reads are asynchronous: wait for them (a generous deadline).
  std::pair<size_t, size_t> pages = ResidentPages((*region)->bytes());
  for (int i = 0; i < 1000 && pages.first < pages.second; ++i) {
    ::usleep(10000);
    pages = ResidentPages((*region)->bytes());
  }
  EXPECT_EQ(pages.first, pages.second);
  EXPECT_TRUE((*region)->bytes() == bytes);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

// Whether this kernel has MADV_POPULATE_READ (Linux 5.14).
bool KernelPopulatesMappings() {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* p =
      ::mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const bool ok = ::madvise(p, page, MADV_POPULATE_READ) == 0;
  ::munmap(p, page);
  return ok;
}

TEST_F(PosixEnvTest, MapResidentMapsTheContentsAndLoadsThemAll) {
  std::string bytes((5 << 20) + 123, 'r');
  bytes[3 << 20] = 'x';
  const std::string path = MakeEvictedFile("f", bytes);
  auto ro = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status();
  auto region = (*ro)->MapResident(bytes.size());
  ASSERT_TRUE(region.ok()) << region.status();
  const absl::string_view mapped = (*region)->bytes();
  if (KernelPopulatesMappings()) {
    // Every page is in memory by the time MapResident returns, before
    // anything read it.
    const std::pair<size_t, size_t> pages = ResidentPages(mapped);
    EXPECT_EQ(pages.first, pages.second);
  }
  EXPECT_TRUE(mapped == bytes);
  auto empty = (*ro)->MapResident(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->bytes().empty());
  EXPECT_EQ((*ro)->MapResident(bytes.size() + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PosixEnvTest, WriteBeyondEndExtendsWithZeros) {
  std::string path = Path("f");
  auto f = env_->OpenFile(path, OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->PWrite(4, "ab").ok());
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, std::string("\0\0\0\0ab", 6));
}

TEST_F(PosixEnvTest, AllocateGrowsWithZerosAndNeverShrinks) {
  std::string path = MakeFile("f", "contents");
  auto f = env_->OpenFile(path, OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  absl::Status s = (*f)->Allocate(1 << 20);
  if (absl::IsUnimplemented(s)) GTEST_SKIP() << s;  // e.g. some tmpfs
  ASSERT_TRUE(s.ok()) << s;
  auto size = (*f)->Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 1u << 20);
  // Writes into the reserved bytes do not grow the file.
  ASSERT_TRUE((*f)->PWrite(8, "more").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Allocate(100).ok());  // less than it holds: no change
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text->size(), 1u << 20);
  EXPECT_EQ(text->substr(0, 12), "contentsmore");
  EXPECT_EQ(text->find_first_not_of('\0', 12), std::string::npos);
}

TEST_F(PosixEnvTest, CreateNeverTruncates) {
  std::string path = MakeFile("f", "contents");
  auto f = env_->OpenFile(path, OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f.ok());
  auto size = (*f)->Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 8u);
}

TEST_F(PosixEnvTest, ReadOnlyFileRejectsWrites) {
  std::string path = MakeFile("f", "abc");
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  absl::Status s = (*f)->PWrite(0, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), path)) << s;
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "abc");
}

TEST_F(PosixEnvTest, ShortReadAtEndAndEof) {
  std::string path = MakeFile("f", "0123456789");
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  char buf[16];
  size_t got = 99;
  ASSERT_TRUE((*f)->PRead(6, 10, buf, &got).ok());
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(std::string(buf, got), "6789");
  ASSERT_TRUE((*f)->PRead(10, 10, buf, &got).ok());
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE((*f)->PRead(1000, 10, buf, &got).ok());
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE((*f)->PRead(0, 0, buf, &got).ok());
  EXPECT_EQ(got, 0u);
}

TEST_F(PosixEnvTest, ReadFullyPastEndIsDataLoss) {
  std::string path = MakeFile("f", "0123456789");
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  char buf[16];
  absl::Status s = ReadFully(**f, 6, 5, buf);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), path)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "5 bytes at offset 6")) << s;
  ASSERT_TRUE(ReadFully(**f, 6, 4, buf).ok());
  EXPECT_EQ(std::string(buf, 4), "6789");
  EXPECT_TRUE(ReadFully(**f, 10, 0, buf).ok());
}

// A File whose PRead returns one byte at a time, to check ReadFully's loop.
class OneByteFile : public File {
 public:
  explicit OneByteFile(std::string data) : data_(std::move(data)) {}
  const std::string& path() const override { return path_; }
  absl::Status PRead(uint64_t offset, size_t n, char* dst,
                     size_t* bytes_read) const override {
    ++reads;
    *bytes_read = 0;
    if (offset >= data_.size() || n == 0) return absl::OkStatus();
    *dst = data_[offset];
    *bytes_read = 1;
    return absl::OkStatus();
  }
  absl::Status PWrite(uint64_t, absl::string_view) override {
    return absl::UnimplementedError("read only");
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::StatusOr<uint64_t> Size() const override { return data_.size(); }
  absl::StatusOr<FileId> Id() const override { return FileId{0, 1}; }
  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t) const override {
    return absl::UnimplementedError("no map");
  }
  mutable int reads = 0;

 private:
  std::string path_ = "one-byte-file";
  std::string data_;
};

TEST(ReadFullyTest, LoopsOverShortReads) {
  OneByteFile f("abcdef");
  char buf[4];
  ASSERT_TRUE(ReadFully(f, 1, 4, buf).ok());
  EXPECT_EQ(std::string(buf, 4), "bcde");
  EXPECT_EQ(f.reads, 4);
  absl::Status s = ReadFully(f, 3, 4, buf);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "one-byte-file")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "4 bytes at offset 3")) << s;
}

TEST(ReadFullyTest, PropagatesReadErrors) {
  class FailingFile : public OneByteFile {
   public:
    FailingFile() : OneByteFile("abc") {}
    absl::Status PRead(uint64_t, size_t, char*, size_t*) const override {
      return absl::InternalError("EIO");
    }
  } f;
  char buf[2];
  absl::Status s = ReadFully(f, 0, 2, buf);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "EIO");
}

TEST_F(PosixEnvTest, LargeWriteAndReadRoundTrip) {
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  std::string path = MakeFile("big", big);
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(*text == big);
}

TEST_F(PosixEnvTest, MapReturnsPrefixAndOutlivesFileAndPath) {
  std::string path = MakeFile("data", "0123456789");
  std::shared_ptr<const MappedRegion> region;
  {
    auto f = env_->OpenFile(path, OpenMode::kReadOnly);
    ASSERT_TRUE(f.ok());
    auto r = (*f)->Map(7);
    ASSERT_TRUE(r.ok()) << r.status();
    region = *r;
  }
  ASSERT_TRUE(env_->RemoveFile(path).ok());
  EXPECT_EQ(region->bytes(), "0123456");
}

TEST_F(PosixEnvTest, MapEmptyAndTooLarge) {
  std::string path = MakeFile("data", "abc");
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  auto empty = (*f)->Map(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE((*empty)->bytes().empty());
  auto too_big = (*f)->Map(4);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(too_big.status().message(), path));

  std::string empty_path = MakeFile("empty", "");
  auto g = env_->OpenFile(empty_path, OpenMode::kReadOnly);
  ASSERT_TRUE(g.ok());
  auto r = (*g)->Map(0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->bytes().size(), 0u);
}

TEST_F(PosixEnvTest, RenameReplacesDestination) {
  std::string a = MakeFile("a", "new");
  std::string b = MakeFile("b", "old contents");
  ASSERT_TRUE(env_->RenameFile(a, b).ok());
  EXPECT_FALSE(*env_->FileExists(a));
  auto text = env_->ReadFileToString(b);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "new");
  ASSERT_TRUE(env_->SyncDir(dir_).ok());

  absl::Status s = env_->RenameFile(Path("missing"), b);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), Path("missing"))) << s;
}

TEST_F(PosixEnvTest, RenameKeepsOpenHandleOnOldInode) {
  std::string a = MakeFile("a", "first");
  auto f = env_->OpenFile(a, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  std::string b = MakeFile("b", "second");
  ASSERT_TRUE(env_->RenameFile(b, a).ok());
  char buf[5];
  ASSERT_TRUE(ReadFully(**f, 0, 5, buf).ok());
  EXPECT_EQ(std::string(buf, 5), "first");
  EXPECT_EQ(*env_->ReadFileToString(a), "second");
}

TEST_F(PosixEnvTest, RemoveFile) {
  std::string path = MakeFile("f", "x");
  ASSERT_TRUE(env_->RemoveFile(path).ok());
  EXPECT_FALSE(*env_->FileExists(path));
  absl::Status s = env_->RemoveFile(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), path)) << s;
  auto text = env_->ReadFileToString(path);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PosixEnvTest, CreateDirsIsMkdirP) {
  std::string deep = Path("a/b//c/");
  ASSERT_TRUE(env_->CreateDirs(deep).ok());
  ASSERT_TRUE(env_->CreateDirs(deep).ok());  // idempotent
  struct stat st;
  ASSERT_EQ(::stat(Path("a/b/c").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777 & ~0022u, 0755u);
  ASSERT_TRUE(env_->SyncDir(Path("a/b")).ok());
  // Files can be created inside.
  auto f = env_->OpenFile(Path("a/b/c/f"), OpenMode::kCreateReadWrite);
  EXPECT_TRUE(f.ok()) << f.status();
}

TEST_F(PosixEnvTest, CreateDirsFailsOnNonDirectoryInTheWay) {
  std::string file = MakeFile("plain", "x");
  absl::Status s = env_->CreateDirs(file);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), file)) << s;
  s = env_->CreateDirs(file + "/sub/dir");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), file)) << s;
}

TEST_F(PosixEnvTest, SyncDirErrors) {
  absl::Status s = env_->SyncDir(Path("missing"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), Path("missing"))) << s;
  std::string file = MakeFile("plain", "x");
  s = env_->SyncDir(file);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), file)) << s;
  EXPECT_TRUE(env_->SyncDir(dir_).ok());
}

TEST(PosixErrorTest, CodesSayWhatToDo) {
  const std::string path = "/store/index/log";
  const struct {
    int err;
    absl::StatusCode code;
  } cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {ENOSPC, absl::StatusCode::kResourceExhausted},
      {EROFS, absl::StatusCode::kFailedPrecondition},
      {EAGAIN, absl::StatusCode::kUnavailable},
      {EIO, absl::StatusCode::kInternal},
  };
  for (const auto& c : cases) {
    const absl::Status st = PosixError("pwrite", path, c.err);
    EXPECT_EQ(st.code(), c.code) << st;
    EXPECT_TRUE(absl::StartsWith(st.message(), path + ": pwrite: ")) << st;
  }
  EXPECT_TRUE(absl::StrContains(PosixError("open", path, EROFS).message(),
                                "read-only"));
}

TEST_F(PosixEnvTest, PermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  std::string path = MakeFile("secret", "x");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(f.status().message(), path));
}

TEST_F(PosixEnvTest, NoSpaceIsResourceExhausted) {
  auto f = env_->OpenFile("/dev/full", OpenMode::kReadWrite);
  if (!f.ok()) GTEST_SKIP() << f.status();
  absl::Status s = (*f)->PWrite(0, "data");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "/dev/full")) << s;
}

TEST_F(PosixEnvTest, OpenDirectoryForWritingIsAnError) {
  ASSERT_TRUE(env_->CreateDirs(Path("d")).ok());
  auto f = env_->OpenFile(Path("d"), OpenMode::kReadWrite);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInternal);  // EISDIR
  EXPECT_TRUE(absl::StrContains(f.status().message(), Path("d")));
}

TEST_F(PosixEnvTest, NotFoundThroughMissingDirectory) {
  auto f = env_->OpenFile(Path("nodir/f"), OpenMode::kCreateReadWrite);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  // A path under a regular file: ENOTDIR, which FileExists reports as absent.
  std::string file = MakeFile("plain", "x");
  auto exists = env_->FileExists(file + "/child");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists);
}

TEST_F(PosixEnvTest, FileIsClosedOnExec) {
  std::string path = MakeFile("f", "x");
  auto f = env_->OpenFile(path, OpenMode::kReadOnly);
  ASSERT_TRUE(f.ok());
  // Find the descriptor the File holds: the highest one open on `path`.
  int found = 0;
  for (int fd = 3; fd < 1024; ++fd) {
    char link[64], target[4096];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (path == target) {
      int flags = ::fcntl(fd, F_GETFD);
      EXPECT_NE(flags & FD_CLOEXEC, 0) << "fd " << fd;
      ++found;
    }
  }
  EXPECT_EQ(found, 1);
}

// --- Locks
// ---------------------------------------------------------------------

TEST_F(PosixEnvTest, LockWritesPidAndTruncatesStaleDigits) {
  std::string path = Path("lock");
  // A stale, longer PID from an earlier holder.
  MakeFile("lock", "123456789012345\n");
  auto lock = env_->LockFile(path);
  ASSERT_TRUE(lock.ok()) << lock.status();
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, absl::StrCat(::getpid()));
  struct stat st;
  // Lock files created by LockFile get mode 0600 as well.
  auto fresh = env_->LockFile(Path("lock2"));
  ASSERT_TRUE(fresh.ok());
  ASSERT_EQ(::stat(Path("lock2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PosixEnvTest, SecondLockInSameProcessIsUnavailable) {
  std::string path = Path("lock");
  auto first = env_->LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = env_->LockFile(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  std::string pid = absl::StrCat(::getpid());
  EXPECT_EQ(second.status().message(),
            absl::StrCat("Cannot lock ", path,
                         ": index is already opened in write mode by PID ", pid,
                         ". Current PID is ", pid, "."));
  // The failed attempt must not have disturbed the holder's lock.
  auto third = env_->LockFile(path);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kUnavailable);
  // Releasing makes it available again.
  first->reset();
  auto again = env_->LockFile(path);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(PosixEnvTest, LockSurvivesClosingAnotherDescriptorOfTheFile) {
  // Classic POSIX locks would be dropped here; OFD locks must not be.
  std::string path = Path("lock");
  auto lock = env_->LockFile(path);
  ASSERT_TRUE(lock.ok());
  {
    auto f = env_->OpenFile(path, OpenMode::kReadOnly);
    ASSERT_TRUE(f.ok());
  }
  auto second = env_->LockFile(path);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PosixEnvTest, LockErrorsOtherThanHeld) {
  auto lock = env_->LockFile(Path("nodir/lock"));
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(lock.status().message(), Path("nodir/lock")));
}

// Runs `body` in a child process and returns its exit status (0..255), or -1.
template <typename Fn>
int RunInChild(Fn body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  if (pid < 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(PosixEnvTest, LockExcludesOtherProcesses) {
  std::string path = Path("lock");
  const std::string parent_pid = absl::StrCat(::getpid());
  auto lock = env_->LockFile(path);
  ASSERT_TRUE(lock.ok());

  // While held: the child gets kUnavailable naming the parent's PID.
  int rc = RunInChild([&] {
    auto l = Env::Posix()->LockFile(path);
    if (l.ok()) return 1;
    if (l.status().code() != absl::StatusCode::kUnavailable) return 2;
    std::string want =
        absl::StrCat("already opened in write mode by PID ", parent_pid,
                     ". Current PID is ", ::getpid(), ".");
    if (!absl::StrContains(l.status().message(), want)) return 3;
    return 0;
  });
  EXPECT_EQ(rc, 0);

  // After release: the child succeeds and records its own PID.
  lock->reset();
  pid_t child_pid = 0;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  rc = RunInChild([&] {
    ::close(pipefd[0]);
    pid_t me = ::getpid();
    if (::write(pipefd[1], &me, sizeof(me)) != sizeof(me)) return 4;
    auto l = Env::Posix()->LockFile(path);
    if (!l.ok()) return 1;
    auto text = Env::Posix()->ReadFileToString(path);
    if (!text.ok() || *text != absl::StrCat(me)) return 2;
    return 0;
  });
  ::close(pipefd[1]);
  ASSERT_EQ(::read(pipefd[0], &child_pid, sizeof(child_pid)),
            static_cast<ssize_t>(sizeof(child_pid)));
  ::close(pipefd[0]);
  EXPECT_EQ(rc, 0);
  auto text = env_->ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, absl::StrCat(child_pid));
  // The child exited: the lock is free again for us.
  auto again = env_->LockFile(path);
  EXPECT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace kvindex

namespace kvindex {
namespace {

TEST(PosixFileIdTest, NamesTheFileNotThePath) {
  Env* env = Env::Posix();
  const std::string dir = ::testing::TempDir() + "/file_id";
  ASSERT_TRUE(env->CreateDirs(dir).ok());
  const std::string a = dir + "/a", b = dir + "/b";
  auto fa = env->OpenFile(a, OpenMode::kCreateReadWrite);
  auto fb = env->OpenFile(b, OpenMode::kCreateReadWrite);
  ASSERT_TRUE(fa.ok() && fb.ok());
  ASSERT_EQ((*fa)->Id().value(), env->PathId(a).value());
  ASSERT_NE((*fa)->Id().value(), (*fb)->Id().value());
  // b renamed over a: the path now names b's file; the handle still a's.
  ASSERT_TRUE(env->RenameFile(b, a).ok());
  EXPECT_EQ(env->PathId(a).value(), (*fb)->Id().value());
  EXPECT_NE(env->PathId(a).value(), (*fa)->Id().value());
  EXPECT_EQ(env->PathId(b).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvindex
