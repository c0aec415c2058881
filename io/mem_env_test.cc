#include "io/mem_env.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "io/env.h"

namespace kvindex {
namespace {

using ::testing::TestWithParam;

constexpr absl::StatusCode kAborted = absl::StatusCode::kAborted;

std::unique_ptr<File> Open(Env* env, const std::string& path,
                           OpenMode mode = OpenMode::kCreateReadWrite) {
  auto f = env->OpenFile(path, mode);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

// Creates `path` with `bytes`, syncs it and its directory: fully durable.
void WriteDurable(MemEnv* env, const std::string& path,
                  const std::string& bytes) {
  auto f = Open(env, path);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->PWrite(0, bytes).ok());
  ASSERT_TRUE(f->Sync().ok());
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_TRUE(env->SyncDir(dir.empty() ? "/" : dir).ok());
}

// The file's contents, or "<missing>".
std::string ContentsOrMissing(const MemEnv& env, const std::string& path) {
  auto c = env.Contents(path);
  if (c.status().code() == absl::StatusCode::kNotFound) return "<missing>";
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : "<error>";
}

// Applies a write to a byte string like a file would.
void Apply(std::string* bytes, uint64_t offset, const std::string& data) {
  if (bytes->size() < offset + data.size()) {
    bytes->resize(offset + data.size(), '\0');
  }
  bytes->replace(offset, data.size(), data);
}

// --- Basic file-system behaviour
// ---------------------------------------------------

TEST(MemEnvTest, CreateWriteReadBack) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/idx").ok());
  auto f = Open(&env, "/idx/f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path(), "/idx/f");
  ASSERT_TRUE(f->PWrite(0, "hello").ok());
  ASSERT_TRUE(f->PWrite(5, " world").ok());
  ASSERT_TRUE(f->PWrite(0, "J").ok());
  ASSERT_TRUE(f->PWrite(13, "!").ok());  // leaves a zero-filled gap
  auto size = f->Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 14u);
  const std::string want("Jello world\0\0!", 14);
  char buf[14];
  ASSERT_TRUE(ReadFully(*f, 0, 14, buf).ok());
  EXPECT_EQ(std::string(buf, 14), want);
  EXPECT_EQ(*env.ReadFileToString("/idx/f"), want);
  EXPECT_EQ(*env.Contents("/idx/f"), want);
  EXPECT_TRUE(*env.FileExists("/idx/f"));
  EXPECT_TRUE(*env.FileExists("/idx"));
  EXPECT_FALSE(*env.FileExists("/idx/g"));
}

// StartWriteback is a hint: it changes nothing, and the env records it by
// path so that tests can check who asks for it.
TEST(MemEnvTest, WritebackHintsAreRecordedAndChangeNothing) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/idx").ok());
  auto f = Open(&env, "/idx/f");
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->PWrite(0, "hello").ok());
  EXPECT_EQ(env.WritebackHinted("/idx/f"), 0u);
  f->StartWriteback(0, 5);
  f->StartWriteback(2, 3);
  EXPECT_EQ(env.WritebackHinted("/idx//f"), 8u);
  EXPECT_EQ(env.WritebackHinted("/idx/g"), 0u);
  EXPECT_EQ(*env.Contents("/idx/f"), "hello");
  // Not durable: a crash loses the unsynced write all the same.
  CrashOptions harshest;
  harshest.keep_unsynced_prefix = false;
  env.Restart(harshest);
  auto after = env.Contents("/idx/f");
  EXPECT_TRUE(!after.ok() || after->empty());
}

TEST(MemEnvTest, OpenModes) {
  MemEnv env;
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto f = env.OpenFile("/missing", mode);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
    EXPECT_TRUE(absl::StrContains(f.status().message(), "/missing"));
  }
  // Creating needs the directory.
  auto nodir = env.OpenFile("/nodir/f", OpenMode::kCreateReadWrite);
  EXPECT_EQ(nodir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(nodir.status().message(), "/nodir/f"));
  // Create never truncates.
  env.SetContents("/f", "abc");
  auto f = Open(&env, "/f");
  EXPECT_EQ(*f->Size(), 3u);
  // Read-only handles refuse writes.
  auto ro = Open(&env, "/f", OpenMode::kReadOnly);
  absl::Status s = ro->PWrite(0, "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.message(), "/f"));
  EXPECT_EQ(*env.Contents("/f"), "abc");
  // A directory is not a file.
  ASSERT_TRUE(env.CreateDirs("/d").ok());
  auto d = env.OpenFile("/d", OpenMode::kReadOnly);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
}

// The probes for files that are often absent: a missing file is no error,
// anything else is what OpenFile and ReadFileToString return, faults and
// crashes included.
TEST(MemEnvTest, IfExistsProbesTellMissingFromPresentAndFromErrors) {
  MemEnv env;
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto missing = env.OpenFileIfExists("/missing", mode);
    ASSERT_TRUE(missing.ok()) << missing.status();
    EXPECT_EQ(*missing, nullptr);
  }
  auto no_bytes = env.ReadFileIfExists("/missing");
  ASSERT_TRUE(no_bytes.ok()) << no_bytes.status();
  EXPECT_FALSE(no_bytes->has_value());
  EXPECT_EQ(env.OpenCount("/missing"), 0);

  env.SetContents("/f", "abc");
  auto f = env.OpenFileIfExists("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_NE(*f, nullptr);
  EXPECT_EQ(env.OpenCount("/f"), 1);
  ASSERT_TRUE((*f)->PWrite(0, "A").ok());
  auto bytes = env.ReadFileIfExists("/f");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_TRUE(bytes->has_value());
  EXPECT_EQ(**bytes, "Abc");

  ASSERT_TRUE(env.CreateDirs("/d").ok());
  EXPECT_EQ(env.OpenFileIfExists("/d", OpenMode::kReadOnly).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Injected faults count the probes as opens and reads, missing file or not.
  env.InjectError(kOpOpen, 0, 1, absl::InternalError("EIO"));
  EXPECT_EQ(
      env.OpenFileIfExists("/missing", OpenMode::kReadOnly).status().code(),
      absl::StatusCode::kInternal);
  env.InjectError(kOpRead, 0, 1, absl::InternalError("EIO"));
  EXPECT_EQ(env.ReadFileIfExists("/missing").status().code(),
            absl::StatusCode::kInternal);
  env.CrashAfter(0);
  EXPECT_TRUE(absl::IsAborted((*f)->PWrite(0, "x")));
  ASSERT_TRUE(env.crashed());
  EXPECT_EQ(env.ReadFileIfExists("/f").status().code(),
            absl::StatusCode::kAborted);
}

// An EnvWrapper's probes go through its own OpenFile and ReadFileToString, so
// that a wrapper that changes those (a fault hook) changes them too.
TEST(MemEnvTest, AWrappersProbesGoThroughItsOpenAndRead) {
  class Refusing : public EnvWrapper {
   public:
    using EnvWrapper::EnvWrapper;
    absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                   OpenMode) override {
      return absl::PermissionDeniedError(path + ": refused");
    }
    absl::StatusOr<std::string> ReadFileToString(
        const std::string& path) override {
      if (path == "/gone") return absl::NotFoundError(path + ": gone");
      return absl::PermissionDeniedError(path + ": refused");
    }
  };
  MemEnv mem;
  mem.SetContents("/f", "abc");
  Refusing env(&mem);
  EXPECT_EQ(env.OpenFileIfExists("/f", OpenMode::kReadOnly).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(env.ReadFileIfExists("/f").status().code(),
            absl::StatusCode::kPermissionDenied);
  // The default maps the wrapper's kNotFound to a missing file.
  auto gone = env.ReadFileIfExists("/gone");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());
}

TEST(MemEnvTest, RelativePathsAndNormalisation) {
  MemEnv env;
  auto f = Open(&env, "rel");
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->PWrite(0, "x").ok());
  EXPECT_EQ(*env.Contents("./rel"), "x");
  ASSERT_TRUE(env.CreateDirs("a//b/").ok());
  auto g = Open(&env, "a/b//g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(env.OpenCount("a/b/g"), 1);
  EXPECT_EQ(env.ListFiles(), (std::vector<std::string>{"a/b/g", "rel"}));
}

// A File keeps the path it was opened with; its open count and hints go to
// the normal form, whichever form opened it.
TEST(MemEnvTest, FilesOpenedByAnyFormOfAPathShareItsTallies) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d").ok());
  auto a = Open(&env, "/d//f");
  auto b = Open(&env, "/d/f");
  auto c = Open(&env, "./rel/");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(a->path(), "/d//f");
  EXPECT_EQ(c->path(), "./rel/");
  EXPECT_EQ(env.OpenCount("/d/f"), 2);
  EXPECT_EQ(env.OpenCount("rel"), 1);
  a->StartWriteback(0, 3);
  b->StartWriteback(0, 4);
  c->StartReadahead(0, 5);
  EXPECT_EQ(env.WritebackHinted("/d/f"), 7u);
  EXPECT_EQ(env.ReadaheadHinted("./rel"), 5u);
  a.reset();
  EXPECT_EQ(env.OpenCount("/d//f"), 1);
  b.reset();
  c.reset();
  EXPECT_EQ(env.OpenCount("/d/f"), 0);
  EXPECT_EQ(env.OpenCount("rel"), 0);
  // Closed and opened again: counted afresh.
  auto d = Open(&env, "/d/f/");
  EXPECT_EQ(env.OpenCount("/d/f"), 1);
}

TEST(MemEnvTest, ShortReadAtEndAndEof) {
  MemEnv env;
  env.SetContents("/f", "0123456789");
  auto f = Open(&env, "/f", OpenMode::kReadOnly);
  char buf[16];
  size_t got = 99;
  ASSERT_TRUE(f->PRead(6, 10, buf, &got).ok());
  EXPECT_EQ(std::string(buf, got), "6789");
  ASSERT_TRUE(f->PRead(10, 4, buf, &got).ok());
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE(f->PRead(100, 4, buf, &got).ok());
  EXPECT_EQ(got, 0u);
  absl::Status s = ReadFully(*f, 8, 3, buf);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "/f"));
  EXPECT_TRUE(absl::StrContains(s.message(), "3 bytes at offset 8")) << s;
}

TEST(MemEnvTest, SpaceLimitRefusesGrowthOnly) {
  MemEnv env;
  env.SetContents("/a", "0123456789");
  auto f = Open(&env, "/b", OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f->PWrite(0, "abcde").ok());
  EXPECT_EQ(env.SpaceUsed(), 15u);
  env.SetSpaceLimit(18);
  ASSERT_TRUE(f->PWrite(5, "fgh").ok());  // exactly full
  absl::Status s = f->PWrite(8, "i");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "/b")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "ENOSPC")) << s;
  EXPECT_EQ(*env.Contents("/b"), "abcdefgh") << "a refused write changed it";
  // Overwrites in place need no space; a removed file's space is free again.
  ASSERT_TRUE(f->PWrite(0, "ABC").ok());
  ASSERT_TRUE(env.RemoveFile("/a").ok());
  EXPECT_EQ(env.SpaceUsed(), 8u);
  ASSERT_TRUE(f->PWrite(8, "ijklmnopqr").ok());
  EXPECT_FALSE(f->PWrite(18, "s").ok());
  env.SetSpaceLimit(std::nullopt);
  ASSERT_TRUE(f->PWrite(18, "s").ok());
  EXPECT_EQ(*env.Contents("/b"), "ABCdefghijklmnopqrs");
}

TEST(MemEnvTest, RenameAndRemove) {
  MemEnv env;
  env.SetContents("/a", "new");
  env.SetContents("/b", "old");
  auto old_handle = Open(&env, "/b", OpenMode::kReadOnly);
  ASSERT_TRUE(env.RenameFile("/a", "/b").ok());
  EXPECT_FALSE(*env.FileExists("/a"));
  EXPECT_EQ(*env.ReadFileToString("/b"), "new");
  // An open handle keeps the replaced inode.
  char buf[3];
  ASSERT_TRUE(ReadFully(*old_handle, 0, 3, buf).ok());
  EXPECT_EQ(std::string(buf, 3), "old");

  absl::Status s = env.RenameFile("/a", "/c");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), "/a"));
  s = env.RenameFile("/b", "/nodir/c");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), "/nodir"));
  ASSERT_TRUE(env.RenameFile("/b", "/b").ok());  // same path: no-op
  EXPECT_EQ(*env.Contents("/b"), "new");

  ASSERT_TRUE(env.RemoveFile("/b").ok());
  EXPECT_FALSE(*env.FileExists("/b"));
  s = env.RemoveFile("/b");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), "/b"));
  EXPECT_EQ(env.ReadFileToString("/b").status().code(),
            absl::StatusCode::kNotFound);
  // Still readable through the handle opened before.
  ASSERT_TRUE(ReadFully(*old_handle, 0, 3, buf).ok());
  EXPECT_TRUE(env.ListFiles().empty());
}

TEST(MemEnvTest, CreateDirsAndSyncDir) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/a/b/c").ok());
  ASSERT_TRUE(env.CreateDirs("/a/b/c").ok());
  EXPECT_TRUE(*env.FileExists("/a/b"));
  EXPECT_TRUE(env.SyncDir("/a/b").ok());
  env.SetContents("/a/file", "x");
  absl::Status s = env.CreateDirs("/a/file/sub");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.message(), "/a/file")) << s;
  s = env.SyncDir("/nope");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(s.message(), "/nope"));
  EXPECT_EQ(env.SyncDir("/a/file").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(env.RemoveFile("/a/b").code(),
            absl::StatusCode::kFailedPrecondition);
  // Directories are durable without SyncDir.
  env.Restart({.seed = 1, .keep_unsynced_prefix = false});
  EXPECT_TRUE(*env.FileExists("/a/b/c"));
}

TEST(MemEnvTest, SetContentsListFilesAndDurability) {
  MemEnv env;
  env.SetContents("/z/y", "1");  // creates /z
  env.SetContents("/b", "2");
  env.SetContents("/a", "3");
  env.SetContents("/b", "22");  // replaces
  EXPECT_EQ(env.ListFiles(), (std::vector<std::string>{"/a", "/b", "/z/y"}));
  EXPECT_EQ(*env.Contents("/b"), "22");
  EXPECT_EQ(env.Contents("/c").status().code(), absl::StatusCode::kNotFound);
  env.Restart({.seed = 7, .keep_unsynced_prefix = false});
  EXPECT_EQ(env.ListFiles(), (std::vector<std::string>{"/a", "/b", "/z/y"}));
  EXPECT_EQ(*env.Contents("/b"), "22");
  EXPECT_EQ(*env.Contents("/z/y"), "1");
}

// Paths are compared eight bytes at a time, then byte by byte: names that
// share prefixes of every length up to and past a word, and differ in any
// byte (also above 0x7f), are each found under their own name only.
TEST(MemEnvTest, NamesSharingLongPrefixesAreToldApart) {
  MemEnv env;
  std::vector<std::string> names;
  for (size_t prefix = 0; prefix <= 18; ++prefix) {
    for (const char last : {'\x01', 'a', 'b', '\x7f', '\x80', '\xff'}) {
      names.push_back(
          absl::StrCat("/d/n", std::string(prefix, 'p'), std::string(1, last)));
    }
    names.push_back(absl::StrCat("/d/n", std::string(prefix, 'p')));
  }
  // Every other name exists, holding its own index.
  for (size_t i = 0; i < names.size(); i += 2) {
    env.SetContents(names[i], std::to_string(i));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StatusOr<bool> exists = env.FileExists(names[i]);
    ASSERT_TRUE(exists.ok());
    EXPECT_EQ(*exists, i % 2 == 0) << i;
    if (i % 2 == 0) {
      EXPECT_EQ(*env.Contents(names[i]), std::to_string(i));
    }
  }
  std::vector<std::string> expected;
  for (size_t i = 0; i < names.size(); i += 2) expected.push_back(names[i]);
  std::sort(expected.begin(), expected.end(),
            [](const std::string& a, const std::string& b) {
              return absl::string_view(a) < absl::string_view(b);
            });
  EXPECT_EQ(env.ListFiles(), expected);
}

TEST(MemEnvTest, SetContentsIsSeenByOpenFiles) {
  MemEnv env;
  env.SetContents("/f", "aaaa");
  auto f = Open(&env, "/f", OpenMode::kReadOnly);
  env.SetContents("/f", "bbbbbb");
  EXPECT_EQ(*f->Size(), 6u);
}

TEST(MemEnvTest, MapIsASnapshot) {
  MemEnv env;
  env.SetContents("/data", "0123456789");
  std::shared_ptr<const MappedRegion> region, empty;
  {
    auto f = Open(&env, "/data");
    auto r = f->Map(6);
    ASSERT_TRUE(r.ok());
    region = *r;
    auto e = f->Map(0);
    ASSERT_TRUE(e.ok());
    empty = *e;
    auto too_big = f->Map(11);
    EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(too_big.status().message(), "/data"));
    ASSERT_TRUE(f->PWrite(0, "XXXXXXXXXX").ok());
  }
  ASSERT_TRUE(env.RemoveFile("/data").ok());
  env.Restart({.seed = 3});
  EXPECT_EQ(region->bytes(), "012345");
  EXPECT_TRUE(empty->bytes().empty());
}

TEST(MemEnvTest, OpenCount) {
  MemEnv env;
  EXPECT_EQ(env.OpenCount("/f"), 0);
  auto a = Open(&env, "/f");
  auto b = Open(&env, "/f", OpenMode::kReadOnly);
  auto c = Open(&env, "/g");
  EXPECT_EQ(env.OpenCount("/f"), 2);
  EXPECT_EQ(env.OpenCount("/g"), 1);
  EXPECT_FALSE(env.OpenFile("/missing", OpenMode::kReadOnly).ok());
  EXPECT_EQ(env.OpenCount("/missing"), 0);
  a.reset();
  EXPECT_EQ(env.OpenCount("/f"), 1);
  // Dead handles still count until they are closed.
  env.Restart({.seed = 0});
  EXPECT_EQ(env.OpenCount("/f"), 1);
  b.reset();
  c.reset();
  EXPECT_EQ(env.OpenCount("/f"), 0);
  EXPECT_EQ(env.OpenCount("/g"), 0);
}

TEST(MemEnvTest, FileOutlivesEnv) {
  auto env = std::make_unique<MemEnv>();
  env->SetContents("/f", "abc");
  auto f = Open(env.get(), "/f");
  env.reset();
  char buf[3];
  ASSERT_TRUE(ReadFully(*f, 0, 3, buf).ok());
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_TRUE(f->PWrite(3, "d").ok());
  EXPECT_EQ(*f->Size(), 4u);
}

// --- Crash model
// -------------------------------------------------------------------

TEST(MemEnvCrashTest, SyncedDataSurvives) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.CreateDirs("/d").ok());
    WriteDurable(&env, "/d/f", "durable");
    auto f = Open(&env, "/d/f");
    ASSERT_TRUE(f->PWrite(7, "+more").ok());
    ASSERT_TRUE(f->Sync().ok());
    env.Restart({.seed = seed});
    EXPECT_EQ(ContentsOrMissing(env, "/d/f"), "durable+more") << seed;
  }
}

// Allocate is a write of zeros past the end: it never shrinks a file or
// changes its bytes, and until a Sync a crash can drop it like any write.
TEST(MemEnvCrashTest, AllocateGrowsWithZerosDurableOnlyAfterSync) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d").ok());
  WriteDurable(&env, "/d/f", "durable");
  auto f = Open(&env, "/d/f");
  const uint64_t before = env.mutation_count();
  ASSERT_TRUE(f->Allocate(64).ok());
  EXPECT_EQ(env.mutation_count(), before + 1);
  ASSERT_TRUE(f->Allocate(10).ok());  // holds more already: nothing to do
  EXPECT_EQ(env.mutation_count(), before + 1);
  ASSERT_TRUE(f->PWrite(7, "+").ok());
  EXPECT_EQ(*env.Contents("/d/f"), "durable+" + std::string(56, '\0'));
  env.Restart({.keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/d/f"), "durable");

  f = Open(&env, "/d/f");
  ASSERT_TRUE(f->Allocate(20).ok());
  ASSERT_TRUE(f->Sync().ok());
  env.Restart({.keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/d/f"), "durable" + std::string(13, '\0'));

  // Injected write errors and a full disk refuse it, leaving the file as it
  // was.
  f = Open(&env, "/d/f");
  env.InjectError(kOpWrite, 0, 1, absl::InternalError("EIO"));
  EXPECT_FALSE(f->Allocate(100).ok());
  env.SetSpaceLimit(50);
  EXPECT_EQ(f->Allocate(100).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*f->Size(), 20u);
}

TEST(MemEnvCrashTest, UnsyncedWritesDroppedWithoutPrefix) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    MemEnv env;
    WriteDurable(&env, "/f", "base");
    auto f = Open(&env, "/f");
    ASSERT_TRUE(f->PWrite(4, "12345").ok());
    ASSERT_TRUE(f->PWrite(0, "B").ok());
    EXPECT_EQ(*env.Contents("/f"), "Base12345");
    env.Restart({.seed = seed, .keep_unsynced_prefix = false});
    EXPECT_EQ(ContentsOrMissing(env, "/f"), "base");
  }
}

// The writes issued after the last Sync in the prefix tests: overlapping,
// extending and leaving a gap.
const std::vector<std::pair<uint64_t, std::string>>& UnsyncedWrites() {
  static const auto* writes = new std::vector<std::pair<uint64_t, std::string>>{
      {6, "abc"},
      {2, "XYZW"},
      {12, "gap"},
      {0, "0123456789ABCDEFGH"},
      {1, "q"}};
  return *writes;
}

// Every content a crash may leave: synced base + first k writes (+ a prefix of
// the next one if `tear`).
std::set<std::string> AllowedOutcomesOf(
    const std::string& base,
    const std::vector<std::pair<uint64_t, std::string>>& writes, bool tear) {
  std::set<std::string> allowed;
  std::string state = base;
  for (size_t k = 0; k <= writes.size(); ++k) {
    allowed.insert(state);
    if (k == writes.size()) break;
    if (tear) {
      for (size_t t = 0; t <= writes[k].second.size(); ++t) {
        std::string torn = state;
        Apply(&torn, writes[k].first, writes[k].second.substr(0, t));
        allowed.insert(torn);
      }
    }
    Apply(&state, writes[k].first, writes[k].second);
  }
  return allowed;
}

std::set<std::string> AllowedOutcomes(const std::string& base, bool tear) {
  return AllowedOutcomesOf(base, UnsyncedWrites(), tear);
}

class PrefixTest : public TestWithParam<bool> {};

TEST_P(PrefixTest, EveryOutcomeIsAPrefixOfTheIssuedWrites) {
  const bool tear = GetParam();
  const std::string base = "base-synced";
  std::string everything = base;
  for (const auto& w : UnsyncedWrites()) Apply(&everything, w.first, w.second);
  const std::set<std::string> allowed = AllowedOutcomes(base, tear);
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    MemEnv env;
    WriteDurable(&env, "/f", base);
    auto f = Open(&env, "/f");
    for (const auto& w : UnsyncedWrites()) {
      ASSERT_TRUE(f->PWrite(w.first, w.second).ok());
    }
    ASSERT_EQ(*env.Contents("/f"), everything);
    env.Restart({.seed = seed, .tear_last_write = tear});
    const std::string got = ContentsOrMissing(env, "/f");
    EXPECT_EQ(allowed.count(got), 1u) << "seed " << seed << ": " << got;
    seen.insert(got);
    // The outcome is durable: a second crash changes nothing.
    env.Restart({.seed = seed + 1});
    EXPECT_EQ(ContentsOrMissing(env, "/f"), got);
  }
  EXPECT_EQ(seen.count(base), 1u) << "never lost everything";
  EXPECT_EQ(seen.count(everything), 1u) << "never kept everything";
  if (tear) {
    // Some torn outcome (not a whole-write prefix) must show up.
    const std::set<std::string> whole = AllowedOutcomes(base, false);
    bool torn_seen = false;
    for (const auto& s : seen) torn_seen |= whole.count(s) == 0;
    EXPECT_TRUE(torn_seen);
  } else {
    EXPECT_GE(seen.size(), 4u);
  }
}

INSTANTIATE_TEST_SUITE_P(Tear, PrefixTest, ::testing::Bool());

// --- Overwrites overtaking appends ------------------------------------------

// The writes issued after the last Sync of the file "h0AAAA" (a 2-byte header
// and one 4-byte record) in the overtaking tests: two flushes, each appending
// a record then rewriting the header, plus a write that starts inside the
// synced bytes and ends past them.
const std::vector<std::pair<uint64_t, std::string>>& FlushWrites() {
  static const auto* writes = new std::vector<std::pair<uint64_t, std::string>>{
      {6, "BBBB"},   // record 2
      {0, "h1"},     // header of flush 1
      {4, "xyz1"},   // from record 1 into record 2
      {10, "CCCC"},  // record 3
      {0, "h2"}};    // header of flush 2
  return *writes;
}

// Every content a crash with overwrites_overtake_appends may leave: the first
// k writes, then (if `tear`) a prefix of write k, then any subset of the later
// writes that end within the length reached so far, applied in order.
std::set<std::string> OvertakingOutcomes(const std::string& base, bool tear) {
  const auto& writes = FlushWrites();
  std::set<std::string> allowed;
  auto add_later = [&](const std::string& kept, size_t first_later) {
    std::vector<size_t> eligible;
    for (size_t i = first_later; i < writes.size(); ++i) {
      if (writes[i].first + writes[i].second.size() <= kept.size()) {
        eligible.push_back(i);
      }
    }
    for (size_t mask = 0; mask < (size_t{1} << eligible.size()); ++mask) {
      std::string state = kept;
      for (size_t b = 0; b < eligible.size(); ++b) {
        if (mask & (size_t{1} << b)) {
          Apply(&state, writes[eligible[b]].first, writes[eligible[b]].second);
        }
      }
      allowed.insert(state);
    }
  };
  std::string prefix = base;
  for (size_t k = 0; k <= writes.size(); ++k) {
    if (k == writes.size() || !tear) {
      add_later(prefix, k);
    } else {
      for (size_t t = 0; t <= writes[k].second.size(); ++t) {
        std::string torn = prefix;
        Apply(&torn, writes[k].first, writes[k].second.substr(0, t));
        add_later(torn, k + 1);
      }
    }
    if (k < writes.size()) Apply(&prefix, writes[k].first, writes[k].second);
  }
  return allowed;
}

// The content a crash of the flush writes leaves, for one seed and mode.
std::string CrashFlushWrites(uint64_t seed, bool tear, bool overtake,
                             bool keep_prefix = true) {
  MemEnv env;
  WriteDurable(&env, "/log", "h0AAAA");
  auto f = Open(&env, "/log");
  for (const auto& w : FlushWrites()) {
    EXPECT_TRUE(f->PWrite(w.first, w.second).ok());
  }
  env.Restart({.seed = seed,
               .keep_unsynced_prefix = keep_prefix,
               .tear_last_write = tear,
               .overwrites_overtake_appends = overtake});
  return ContentsOrMissing(env, "/log");
}

// Without tearing, the crash produces exactly the outcomes of the model, among
// them a header rewritten without the record it covers.
TEST(MemEnvCrashTest, OverwritesOvertakeAppendsExactOutcomes) {
  const std::set<std::string> allowed = OvertakingOutcomes("h0AAAA", false);
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    const std::string got = CrashFlushWrites(seed, false, true);
    EXPECT_EQ(allowed.count(got), 1u) << "seed " << seed << ": " << got;
    seen.insert(got);
  }
  EXPECT_EQ(seen, allowed);
  // The states the in-order model cannot reach: a header over a file that
  // lacks the records it claims.
  EXPECT_EQ(seen.count("h1AAAA"), 1u);
  EXPECT_EQ(seen.count("h2AAAA"), 1u);
  EXPECT_EQ(seen.count("h2AAAABBBB"), 1u);
  // The straddling write never survives without the record it extends into.
  for (const std::string& s : seen) {
    if (s.size() == 6) {
      EXPECT_EQ(s.substr(2), "AAAA") << s;
    }
  }
}

// With tearing, every outcome is allowed, and a rewritten header can end
// inside a torn record.
TEST(MemEnvCrashTest, OverwritesOvertakeAppendsWithTornRecord) {
  const std::set<std::string> allowed = OvertakingOutcomes("h0AAAA", true);
  bool header_over_torn_record = false;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    const std::string got = CrashFlushWrites(seed, true, true);
    EXPECT_EQ(allowed.count(got), 1u) << "seed " << seed << ": " << got;
    // "h1" claims record 2, of which only 1 to 3 bytes are there.
    header_over_torn_record |=
        got.substr(0, 2) == "h1" && got.size() > 6 && got.size() < 10;
  }
  EXPECT_TRUE(header_over_torn_record);
}

TEST(MemEnvCrashTest, OverwritesOvertakeAppendsIsDeterministicAndOptional) {
  const std::set<std::string> in_order =
      AllowedOutcomesOf("h0AAAA", FlushWrites(), /*tear=*/true);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    EXPECT_EQ(CrashFlushWrites(seed, true, true),
              CrashFlushWrites(seed, true, true))
        << seed;
    // Off, the crash keeps the writes in order.
    EXPECT_EQ(in_order.count(CrashFlushWrites(seed, true, false)), 1u) << seed;
    // Dropping every unsynced write drops the overwrites too.
    EXPECT_EQ(CrashFlushWrites(seed, true, true, /*keep_prefix=*/false),
              "h0AAAA");
  }
}

TEST(MemEnvCrashTest, SameSeedSameOutcome) {
  auto run = [](uint64_t seed) {
    MemEnv env;
    WriteDurable(&env, "/f", "base");
    auto f = Open(&env, "/f");
    for (int i = 0; i < 10; ++i) {
      EXPECT_TRUE(f->PWrite(4 + 3 * i, absl::StrCat("w", i, ";")).ok());
    }
    env.Restart({.seed = seed});
    return ContentsOrMissing(env, "/f");
  };
  for (uint64_t seed = 0; seed < 10; ++seed) EXPECT_EQ(run(seed), run(seed));
}

TEST(MemEnvCrashTest, CreatedFileWithoutSyncDirCanDisappear) {
  int vanished = 0, kept = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.CreateDirs("/d").ok());
    auto f = Open(&env, "/d/f");
    ASSERT_TRUE(f->PWrite(0, "synced").ok());
    ASSERT_TRUE(f->Sync().ok());
    env.Restart({.seed = seed});
    std::string got = ContentsOrMissing(env, "/d/f");
    if (got == "<missing>") {
      ++vanished;
    } else {
      EXPECT_EQ(got, "synced");
      ++kept;
    }
  }
  EXPECT_GT(vanished, 0);
  EXPECT_GT(kept, 0);
  // The harshest crash always loses it.
  MemEnv env;
  auto f = Open(&env, "/f");
  ASSERT_TRUE(f->PWrite(0, "synced").ok());
  ASSERT_TRUE(f->Sync().ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/f"), "<missing>");
  EXPECT_TRUE(env.ListFiles().empty());
}

TEST(MemEnvCrashTest, CreatedFileWithSyncDirStays) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.CreateDirs("/d").ok());
    auto f = Open(&env, "/d/f");
    ASSERT_TRUE(env.SyncDir("/d").ok());  // the entry, before the data
    ASSERT_TRUE(f->PWrite(0, "synced").ok());
    ASSERT_TRUE(f->Sync().ok());
    env.Restart({.seed = seed, .keep_unsynced_prefix = seed % 2 == 0});
    EXPECT_EQ(ContentsOrMissing(env, "/d/f"), "synced");
  }
}

// SyncDir makes durable exactly the entries the directory has then, whatever
// mix of creations, renames and removals led there; later operations stay
// undone by the harshest crash.
TEST(MemEnvCrashTest, SyncDirPersistsTheCurrentEntriesOnly) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d").ok());
  WriteDurable(&env, "/d/kept", "k");
  WriteDurable(&env, "/d/removed", "r");
  WriteDurable(&env, "/d/replaced", "old");
  Open(&env, "/d/tmp");
  ASSERT_TRUE(env.RenameFile("/d/tmp", "/d/new").ok());
  ASSERT_TRUE(env.RemoveFile("/d/removed").ok());
  auto f = Open(&env, "/d/next");
  ASSERT_TRUE(f->PWrite(0, "n").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(env.RenameFile("/d/next", "/d/replaced").ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  // After the SyncDir: undone by the crash below.
  Open(&env, "/d/late");
  ASSERT_TRUE(env.RemoveFile("/d/kept").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(env.ListFiles(),
            (std::vector<std::string>{"/d/kept", "/d/new", "/d/replaced"}));
  EXPECT_EQ(ContentsOrMissing(env, "/d/kept"), "k");
  EXPECT_EQ(ContentsOrMissing(env, "/d/replaced"), "n");
}

// SetContents is durable at once, even over a name with directory operations
// still pending: no crash undoes it, whatever those operations were.
TEST(MemEnvCrashTest, SetContentsOverPendingOperationsIsDurable) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.CreateDirs("/d").ok());
    WriteDurable(&env, "/d/a", "a");
    ASSERT_TRUE(env.RemoveFile("/d/a").ok());  // pending
    Open(&env, "/d/b");                        // pending
    ASSERT_TRUE(env.RenameFile("/d/b", "/d/c").ok());
    env.SetContents("/d/a", "set");
    env.SetContents("/d/c", "set too");
    env.Restart({.seed = seed,
                 .keep_unsynced_prefix = seed % 2 == 0,
                 .dir_ops_in_any_order = seed % 3 == 0});
    EXPECT_EQ(ContentsOrMissing(env, "/d/a"), "set") << seed;
    EXPECT_EQ(ContentsOrMissing(env, "/d/c"), "set too") << seed;
  }
}

TEST(MemEnvCrashTest, SyncDirOfAnotherDirectoryDoesNotHelp) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/a").ok());
  ASSERT_TRUE(env.CreateDirs("/b").ok());
  auto f = Open(&env, "/a/f");
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(env.SyncDir("/b").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_FALSE(*env.FileExists("/a/f"));
}

TEST(MemEnvCrashTest, RenameWithoutSyncDirCanRevert) {
  // Directory operations: create(tmp), rename(tmp -> a). Their prefixes give
  // three possible states; the rename itself is atomic.
  const std::set<std::pair<std::string, std::string>> allowed = {
      {"old", "<missing>"}, {"old", "new"}, {"new", "<missing>"}};
  std::set<std::pair<std::string, std::string>> seen;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    MemEnv env;
    WriteDurable(&env, "/a", "old");
    auto tmp = Open(&env, "/tmp");
    ASSERT_TRUE(tmp->PWrite(0, "new").ok());
    ASSERT_TRUE(tmp->Sync().ok());
    ASSERT_TRUE(env.RenameFile("/tmp", "/a").ok());
    EXPECT_EQ(*env.Contents("/a"), "new");
    env.Restart({.seed = seed});
    std::pair<std::string, std::string> got(ContentsOrMissing(env, "/a"),
                                            ContentsOrMissing(env, "/tmp"));
    EXPECT_EQ(allowed.count(got), 1u) << got.first << " " << got.second;
    seen.insert(got);
  }
  EXPECT_EQ(seen, allowed);

  MemEnv env;
  WriteDurable(&env, "/a", "old");
  auto tmp = Open(&env, "/tmp");
  ASSERT_TRUE(tmp->PWrite(0, "new").ok());
  ASSERT_TRUE(tmp->Sync().ok());
  ASSERT_TRUE(env.RenameFile("/tmp", "/a").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/a"), "old");
  EXPECT_EQ(ContentsOrMissing(env, "/tmp"), "<missing>");
}

// Two renames in one directory, nothing synced after them: a prefix of the
// two keeps the second only with the first; dir_ops_in_any_order may keep the
// second alone, and keeps each rename whole.
TEST(MemEnvCrashTest, DirOpsInAnyOrderMayKeepALaterRenameWithoutAnEarlierOne) {
  using State = std::pair<std::string, std::string>;  // /a, /b
  const auto crash_outcomes = [](bool any_order) {
    std::set<State> seen;
    for (uint64_t seed = 0; seed < 200; ++seed) {
      MemEnv env;
      WriteDurable(&env, "/a", "old a");
      WriteDurable(&env, "/b", "old b");
      WriteDurable(&env, "/a_new", "new a");
      WriteDurable(&env, "/b_new", "new b");
      EXPECT_TRUE(env.RenameFile("/a_new", "/a").ok());
      EXPECT_TRUE(env.RenameFile("/b_new", "/b").ok());
      CrashOptions crash;
      crash.seed = seed;
      crash.dir_ops_in_any_order = any_order;
      env.Restart(crash);
      const State got(ContentsOrMissing(env, "/a"),
                      ContentsOrMissing(env, "/b"));
      // A kept rename also removed its source name.
      EXPECT_EQ(ContentsOrMissing(env, "/a_new") == "<missing>",
                got.first == "new a");
      EXPECT_EQ(ContentsOrMissing(env, "/b_new") == "<missing>",
                got.second == "new b");
      seen.insert(got);
    }
    return seen;
  };
  const std::set<State> prefixes = {
      {"old a", "old b"}, {"new a", "old b"}, {"new a", "new b"}};
  EXPECT_EQ(crash_outcomes(false), prefixes);
  std::set<State> any = prefixes;
  any.insert({"old a", "new b"});
  EXPECT_EQ(crash_outcomes(true), any);
}

TEST(MemEnvCrashTest, RenameWithSyncDirIsDurable) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    MemEnv env;
    WriteDurable(&env, "/a", "old");
    auto tmp = Open(&env, "/tmp");
    ASSERT_TRUE(tmp->PWrite(0, "new").ok());
    ASSERT_TRUE(tmp->Sync().ok());
    ASSERT_TRUE(env.RenameFile("/tmp", "/a").ok());
    ASSERT_TRUE(env.SyncDir("/").ok());
    env.Restart({.seed = seed});
    EXPECT_EQ(ContentsOrMissing(env, "/a"), "new");
    EXPECT_EQ(env.ListFiles(), std::vector<std::string>{"/a"});
  }
}

TEST(MemEnvCrashTest, RenameAcrossDirectoriesNeedsBothSyncDirs) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/x").ok());
  ASSERT_TRUE(env.CreateDirs("/y").ok());
  WriteDurable(&env, "/x/f", "data");
  ASSERT_TRUE(env.RenameFile("/x/f", "/y/g").ok());
  ASSERT_TRUE(env.SyncDir("/y").ok());  // the new name only
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/x/f"), "data");
  EXPECT_EQ(ContentsOrMissing(env, "/y/g"), "data");
}

TEST(MemEnvCrashTest, RemoveWithoutSyncDirCanRevert) {
  MemEnv env;
  WriteDurable(&env, "/f", "still here");
  ASSERT_TRUE(env.RemoveFile("/f").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/f"), "still here");
  ASSERT_TRUE(env.RemoveFile("/f").ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(ContentsOrMissing(env, "/f"), "<missing>");
}

TEST(MemEnvCrashTest, UnsyncedDataOfRemovedFileIsGone) {
  MemEnv env;
  WriteDurable(&env, "/f", "synced");
  auto f = Open(&env, "/f");
  ASSERT_TRUE(f->PWrite(6, "+unsynced").ok());
  ASSERT_TRUE(env.RemoveFile("/f").ok());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  // The removal was lost, and so was the unsynced write: the synced bytes are
  // back.
  EXPECT_EQ(ContentsOrMissing(env, "/f"), "synced");
}

TEST(MemEnvCrashTest, CrashAfterStopsAtExactlyTheNthMutation) {
  for (uint64_t n = 1; n <= 6; ++n) {
    MemEnv env;
    WriteDurable(&env, "/f", "");
    auto f = Open(&env, "/f");
    const uint64_t before = env.mutation_count();
    env.CrashAfter(n);
    uint64_t succeeded = 0;
    absl::Status s;
    for (int i = 0; i < 20; ++i) {
      // Reads are not mutations and do not move the crash point.
      size_t got;
      char buf[4];
      if (!env.crashed()) {
        ASSERT_TRUE(f->PRead(0, 4, buf, &got).ok());
      }
      s = (i % 3 == 2) ? f->Sync() : f->PWrite(i, "x");
      if (!s.ok()) break;
      ++succeeded;
      EXPECT_EQ(env.crashed(), succeeded == n);
    }
    EXPECT_EQ(succeeded, n);
    EXPECT_EQ(s.code(), kAborted);
    EXPECT_TRUE(absl::StrContains(s.message(), "/f")) << s;
    EXPECT_TRUE(env.crashed());
    EXPECT_EQ(env.mutation_count(), before + n);
    // Everything fails now, reads included.
    char buf[1];
    size_t got;
    EXPECT_EQ(f->PRead(0, 1, buf, &got).code(), kAborted);
    EXPECT_EQ(f->Size().status().code(), kAborted);
    EXPECT_EQ(f->Map(0).status().code(), kAborted);
    EXPECT_EQ(env.OpenFile("/f", OpenMode::kReadOnly).status().code(),
              kAborted);
    EXPECT_EQ(env.FileExists("/f").status().code(), kAborted);
    EXPECT_EQ(env.ReadFileToString("/f").status().code(), kAborted);
    EXPECT_EQ(env.RenameFile("/f", "/g").code(), kAborted);
    EXPECT_EQ(env.RemoveFile("/f").code(), kAborted);
    EXPECT_EQ(env.CreateDirs("/d").code(), kAborted);
    EXPECT_EQ(env.SyncDir("/").code(), kAborted);
    EXPECT_EQ(env.LockFile("/lock").status().code(), kAborted);
    EXPECT_EQ(env.mutation_count(), before + n);
    env.Restart({.seed = n});
    EXPECT_FALSE(env.crashed());
    EXPECT_TRUE(env.FileExists("/f").ok());
  }
}

TEST(MemEnvCrashTest, CrashAfterZeroCrashesAtOnce) {
  MemEnv env;
  env.SetContents("/f", "abc");
  env.CrashAfter(0);
  EXPECT_TRUE(env.crashed());
  EXPECT_EQ(env.OpenFile("/f", OpenMode::kReadOnly).status().code(), kAborted);
  EXPECT_EQ(env.mutation_count(), 0u);
  env.Restart({.seed = 0});
  EXPECT_FALSE(env.crashed());
  EXPECT_EQ(*env.ReadFileToString("/f"), "abc");
}

TEST(MemEnvCrashTest, CrashPointStateIsWhatWasDoneBeforeIt) {
  MemEnv env;
  WriteDurable(&env, "/f", "");
  auto f = Open(&env, "/f");
  env.CrashAfter(2);
  ASSERT_TRUE(f->PWrite(0, "first").ok());
  ASSERT_TRUE(f->Sync().ok());  // the 2nd: last one to happen
  EXPECT_EQ(f->PWrite(5, "second").code(), kAborted);
  EXPECT_EQ(*env.Contents("/f"), "first");
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(*env.Contents("/f"), "first");
}

TEST(MemEnvCrashTest, RestartWithoutCrashAfterCrashesNow) {
  MemEnv env;
  WriteDurable(&env, "/f", "a");
  auto f = Open(&env, "/f");
  ASSERT_TRUE(f->PWrite(1, "b").ok());
  EXPECT_FALSE(env.crashed());
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(*env.Contents("/f"), "a");
  // An armed-but-unreached crash point is disarmed by Restart.
  env.CrashAfter(1);
  env.Restart({.seed = 0});
  auto g = Open(&env, "/f");
  EXPECT_TRUE(g->PWrite(0, "x").ok());
  EXPECT_TRUE(g->PWrite(0, "y").ok());
  EXPECT_FALSE(env.crashed());
}

TEST(MemEnvCrashTest, HandlesFromBeforeRestartAreDead) {
  MemEnv env;
  WriteDurable(&env, "/f", "abc");
  auto f = Open(&env, "/f");
  env.Restart({.seed = 0});
  char buf[3];
  size_t got;
  absl::Status s = f->PRead(0, 3, buf, &got);
  EXPECT_EQ(s.code(), kAborted);
  EXPECT_TRUE(absl::StrContains(s.message(), "/f"));
  EXPECT_TRUE(absl::StrContains(s.message(), "simulated crash"));
  EXPECT_EQ(f->PWrite(0, "x").code(), kAborted);
  EXPECT_EQ(f->Sync().code(), kAborted);
  EXPECT_EQ(f->Size().status().code(), kAborted);
  EXPECT_EQ(f->Map(1).status().code(), kAborted);
  EXPECT_EQ(*env.Contents("/f"), "abc");
  // A new handle works.
  auto g = Open(&env, "/f");
  ASSERT_TRUE(ReadFully(*g, 0, 3, buf).ok());
  EXPECT_EQ(std::string(buf, 3), "abc");
}

// --- Locks
// --------------------------------------------------------------------------

TEST(MemEnvLockTest, ExclusivePerPath) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/idx").ok());
  auto lock = env.LockFile("/idx/lock");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(*env.Contents("/idx/lock"), absl::StrCat(::getpid()));
  auto second = env.LockFile("/idx/lock");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("Cannot lock /idx/lock: index is already opened in "
                         "write mode by PID ",
                         ::getpid(), ". Current PID is ", ::getpid(), "."));
  // Another path is independent.
  auto other = env.LockFile("/idx/other");
  EXPECT_TRUE(other.ok());
  lock->reset();
  auto again = env.LockFile("/idx/lock");
  EXPECT_TRUE(again.ok()) << again.status();
  auto nodir = env.LockFile("/nodir/lock");
  EXPECT_EQ(nodir.status().code(), absl::StatusCode::kNotFound);
}

TEST(MemEnvLockTest, RestartReleasesLocks) {
  MemEnv env;
  auto old_lock = env.LockFile("/lock");
  ASSERT_TRUE(old_lock.ok());
  env.Restart({.seed = 0});
  auto new_lock = env.LockFile("/lock");
  ASSERT_TRUE(new_lock.ok()) << new_lock.status();
  // Dropping the stale lock must not release the new holder's.
  old_lock->reset();
  EXPECT_EQ(env.LockFile("/lock").status().code(),
            absl::StatusCode::kUnavailable);
}

// --- Fault injection
// -----------------------------------------------------------------

TEST(MemEnvFaultTest, SkipThenCount) {
  MemEnv env;
  auto f = Open(&env, "/f");
  env.InjectError(kOpWrite, 2, 2, absl::InternalError("EIO"));
  EXPECT_TRUE(f->PWrite(0, "a").ok());
  EXPECT_TRUE(f->PWrite(1, "b").ok());
  absl::Status s = f->PWrite(2, "c");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(s.message(), "EIO"));
  EXPECT_TRUE(absl::StrContains(s.message(), "/f"));
  EXPECT_EQ(f->PWrite(2, "c").code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(f->PWrite(2, "d").ok());
  EXPECT_EQ(*env.Contents("/f"), "abd");  // failed writes changed nothing
  // Failed operations are not mutations.
  EXPECT_EQ(env.mutation_count(), 3u);
}

TEST(MemEnvFaultTest, ForeverUntilCleared) {
  MemEnv env;
  auto f = Open(&env, "/f");
  env.InjectError(kOpSync, 0, -1, absl::ResourceExhaustedError("ENOSPC"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(f->Sync().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(f->PWrite(i, "x").ok());  // the mask selects syncs only
  }
  env.ClearInjectedErrors();
  EXPECT_TRUE(f->Sync().ok());
}

TEST(MemEnvFaultTest, MaskSelectsOperations) {
  MemEnv env;
  env.SetContents("/a", "aaa");
  env.InjectError(kOpRename | kOpRemove, 0, -1, absl::InternalError("EIO"));
  EXPECT_EQ(env.RenameFile("/a", "/b").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(env.RemoveFile("/a").code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(*env.FileExists("/a"));
  EXPECT_TRUE(env.SyncDir("/").ok());
  auto f = Open(&env, "/a");
  ASSERT_NE(f, nullptr);
  env.ClearInjectedErrors();

  env.InjectError(kOpOpen, 0, 1, absl::PermissionDeniedError("EACCES"));
  EXPECT_EQ(env.OpenFile("/a", OpenMode::kReadOnly).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(env.OpenFile("/a", OpenMode::kReadOnly).ok());

  env.InjectError(kOpSyncDir, 0, 1, absl::InternalError("EIO"));
  EXPECT_EQ(env.SyncDir("/").code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(env.SyncDir("/").ok());

  env.InjectError(kOpLock, 0, 1, absl::InternalError("EIO"));
  EXPECT_EQ(env.LockFile("/lock").status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(env.LockFile("/lock").ok());

  env.InjectError(kOpRead, 1, 2, absl::InternalError("EIO"));
  char buf[3];
  size_t got;
  EXPECT_TRUE(f->PRead(0, 3, buf, &got).ok());
  EXPECT_EQ(ReadFully(*f, 0, 3, buf).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(env.ReadFileToString("/a").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(*env.ReadFileToString("/a"), "aaa");
}

TEST(MemEnvFaultTest, RulesCombine) {
  MemEnv env;
  auto f = Open(&env, "/f");
  env.InjectError(kOpWrite, 0, 1, absl::InternalError("EIO"));
  env.InjectError(kOpWrite | kOpSync, 0, 1,
                  absl::ResourceExhaustedError("ENOSPC"));
  EXPECT_EQ(f->PWrite(0, "a").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(f->PWrite(0, "a").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(f->PWrite(0, "a").ok());
  EXPECT_TRUE(f->Sync().ok());
}

TEST(MemEnvFaultTest, ShortReads) {
  MemEnv env;
  std::string data(100, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);
  env.SetContents("/f", data);
  env.SetShortReads(true);
  auto f = Open(&env, "/f", OpenMode::kReadOnly);
  char buf[100];
  size_t got;
  ASSERT_TRUE(f->PRead(0, 10, buf, &got).ok());
  EXPECT_EQ(got, 5u);
  ASSERT_TRUE(f->PRead(0, 1, buf, &got).ok());
  EXPECT_EQ(got, 1u);
  ASSERT_TRUE(f->PRead(98, 10, buf, &got).ok());
  EXPECT_EQ(got, 2u);
  ASSERT_TRUE(ReadFully(*f, 0, 100, buf).ok());
  EXPECT_EQ(std::string(buf, 100), data);
  EXPECT_EQ(*env.ReadFileToString("/f"), data);
  env.SetShortReads(false);
  ASSERT_TRUE(f->PRead(0, 10, buf, &got).ok());
  EXPECT_EQ(got, 10u);
}

// --- Threads
// --------------------------------------------------------------------------

TEST(MemEnvThreadTest, ConcurrentWritersOnDifferentFiles) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/t").ok());
  constexpr int kThreads = 4;
  constexpr int kRecords = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&env, t] {
      const std::string path = absl::StrCat("/t/f", t);
      auto f = env.OpenFile(path, OpenMode::kCreateReadWrite);
      ASSERT_TRUE(f.ok());
      for (int i = 0; i < kRecords; ++i) {
        const std::string rec = absl::StrCat(t, ":", i % 10, ";");
        ASSERT_TRUE((*f)->PWrite(i * 4, rec).ok());
        char buf[4];
        ASSERT_TRUE(ReadFully(**f, i * 4, 4, buf).ok());
        ASSERT_EQ(std::string(buf, 4), rec);
        if (i % 50 == 49) {
          ASSERT_TRUE((*f)->Sync().ok());
        }
      }
      ASSERT_TRUE(env.SyncDir("/t").ok());
    });
  }
  threads.emplace_back([&env] {
    for (int i = 0; i < 200; ++i) {
      EXPECT_LE(env.ListFiles().size(), static_cast<size_t>(kThreads));
      (void)env.mutation_count();
    }
  });
  for (auto& th : threads) th.join();
  // Every write, every 50th sync and one SyncDir per thread.
  EXPECT_EQ(env.mutation_count(),
            static_cast<uint64_t>(kThreads * (kRecords + kRecords / 50 + 1)));
  for (int t = 0; t < kThreads; ++t) {
    std::string want;
    for (int i = 0; i < kRecords; ++i)
      absl::StrAppend(&want, t, ":", i % 10, ";");
    EXPECT_EQ(*env.Contents(absl::StrCat("/t/f", t)), want);
  }
  // Everything was synced (the last sync is at record 199).
  env.Restart({.seed = 0, .keep_unsynced_prefix = false});
  EXPECT_EQ(env.ListFiles().size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(env.Contents("/t/f0")->size(), static_cast<size_t>(kRecords * 4));
}

}  // namespace
}  // namespace kvindex

namespace kvindex {
namespace {

TEST(MemEnvFileIdTest, NamesTheFileNotThePath) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d").ok());
  auto fa = env.OpenFile("/d/a", OpenMode::kCreateReadWrite);
  auto fb = env.OpenFile("/d/b", OpenMode::kCreateReadWrite);
  ASSERT_TRUE(fa.ok() && fb.ok());
  ASSERT_EQ((*fa)->Id().value(), env.PathId("/d/a").value());
  ASSERT_NE((*fa)->Id().value(), (*fb)->Id().value());
  ASSERT_TRUE(env.RenameFile("/d/b", "/d/a").ok());
  EXPECT_EQ(env.PathId("/d/a").value(), (*fb)->Id().value());
  EXPECT_NE(env.PathId("/d/a").value(), (*fa)->Id().value());
  EXPECT_EQ(env.PathId("/d/b").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvindex
