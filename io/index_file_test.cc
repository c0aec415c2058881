#include "io/index_file.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/mem_env.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------
// Byte helpers.

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::string RawHeader(int64_t offset, int64_t generation, int64_t fan_size,
                      absl::string_view version = "00000001") {
  return absl::StrCat(Be64(static_cast<uint64_t>(offset)), version,
                      Be64(static_cast<uint64_t>(generation)),
                      Be64(static_cast<uint64_t>(fan_size)));
}

// Record `i` of `size` bytes: distinct for every i, so misplaced bytes are
// caught.
std::string Record(uint64_t i, size_t size) {
  std::string r(size, '\0');
  for (size_t j = 0; j < size; ++j) {
    r[j] = static_cast<char>((i * 131 + j * 7 + 1) & 0xff);
  }
  return r;
}

std::string Records(uint64_t first, uint64_t count, size_t size) {
  std::string out;
  for (uint64_t i = first; i < first + count; ++i) out += Record(i, size);
  return out;
}

// Replaces `path` with exactly `bytes`, durably.
void WriteRaw(Env* env, const std::string& path, absl::string_view bytes) {
  absl::StatusOr<bool> exists = env->FileExists(path);
  ASSERT_OK(exists);
  if (*exists) {
    ASSERT_OK(env->RemoveFile(path));
  }
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(path, OpenMode::kCreateReadWrite);
  ASSERT_OK(file);
  if (!bytes.empty()) {
    ASSERT_OK((*file)->PWrite(0, bytes));
  }
  ASSERT_OK((*file)->Sync());
}

std::string ReadRaw(Env* env, const std::string& path) {
  absl::StatusOr<std::string> bytes = env->ReadFileToString(path);
  EXPECT_OK(bytes);
  return bytes.ok() ? *bytes : std::string();
}

bool Exists(Env* env, const std::string& path) {
  absl::StatusOr<bool> exists = env->FileExists(path);
  EXPECT_OK(exists);
  return exists.ok() && *exists;
}

IndexFile::ReadWriteOptions RwOptions(size_t entry_size, int64_t generation = 0,
                                      uint64_t fan_size = 0) {
  IndexFile::ReadWriteOptions options;
  options.entry_size = entry_size;
  options.generation = generation;
  options.fan_size = fan_size;
  return options;
}

std::unique_ptr<IndexFile> OpenRw(Env* env, const std::string& path,
                                  const IndexFile::ReadWriteOptions& options) {
  absl::StatusOr<std::unique_ptr<IndexFile>> file =
      IndexFile::OpenReadWrite(env, path, options);
  EXPECT_OK(file);
  return file.ok() ? *std::move(file) : nullptr;
}

std::unique_ptr<IndexFile> OpenRo(Env* env, const std::string& path,
                                  size_t entry_size) {
  absl::StatusOr<std::unique_ptr<IndexFile>> file =
      IndexFile::OpenReadOnly(env, path, entry_size);
  EXPECT_OK(file);
  return file.ok() ? *std::move(file) : nullptr;
}

// Reads `n` bytes at logical `offset`; fewer if the handle has fewer.
std::string ReadAt(const IndexFile& file, uint64_t offset, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  const absl::Status s = file.Read(offset, n, &out[0], &got);
  EXPECT_OK(s);
  out.resize(s.ok() ? got : 0);
  return out;
}

// ---------------------------------------------------------------------------------
// Tests run against both the in-memory env and the real disk.

enum class EnvKind { kMem, kPosix };

class IndexFileTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  void SetUp() override {
    static int counter = 0;
    if (GetParam() == EnvKind::kMem) {
      env_ = &mem_env_;
      dir_ = "/db/index";
    } else {
      env_ = Env::Posix();
      const char* tmp = std::getenv("TEST_TMPDIR");
      dir_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/index_file_test_",
                          getpid(), "_", counter++, "/index");
    }
    ASSERT_OK(env_->CreateDirs(dir_));
  }

  std::string Path(absl::string_view name) const {
    return absl::StrCat(dir_, "/", name);
  }

  MemEnv mem_env_;
  Env* env_ = nullptr;
  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(Envs, IndexFileTest,
                         ::testing::Values(EnvKind::kMem, EnvKind::kPosix),
                         [](const ::testing::TestParamInfo<EnvKind>& info) {
                           return info.param == EnvKind::kMem ? "Mem" : "Posix";
                         });

// The worked example of docs/format.md §3.5: the CLI test store's log.
TEST_P(IndexFileTest, GoldenLogHeader) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(40, 9));
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 92; ++i) ASSERT_OK(log->Append(Record(i, 40)));
  ASSERT_OK(log->Flush());
  EXPECT_EQ(log->offset(), 3680u);
  EXPECT_EQ(log->flushed_offset(), 3680u);

  const std::string bytes = ReadRaw(env_, path);
  ASSERT_EQ(bytes.size(), 3712u);
  const std::string expected_header(
      "\x00\x00\x00\x00\x00\x00\x0E\x60"
      "00000001"
      "\x00\x00\x00\x00\x00\x00\x00\x09"
      "\x00\x00\x00\x00\x00\x00\x00\x00",
      32);
  EXPECT_EQ(bytes.substr(0, 32), expected_header);
  EXPECT_EQ(bytes.substr(32), Records(0, 92, 40));

  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 40);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 3680u);
  EXPECT_EQ(ro->generation(), 9);
  EXPECT_EQ(ro->header_size(), 32u);
}

// The worked example of docs/format.md §3.5: the CLI test store's data file
// with 16 fan-out slots.
TEST_P(IndexFileTest, GoldenDataFile) {
  const std::string path = Path("data");
  std::unique_ptr<IndexFile> data = OpenRw(env_, path, RwOptions(40, 9, 0x80));
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->header_size(), 160u);
  std::string table;
  for (int slot = 0; slot < 16; ++slot) table += Be64(slot * 57 * 40);
  ASSERT_OK(data->WriteFanout(table));
  ASSERT_OK(data->Append(Records(0, 909, 40)));
  ASSERT_OK(data->Flush({.no_callback = true, .with_fsync = true}));

  const std::string bytes = ReadRaw(env_, path);
  ASSERT_EQ(bytes.size(), 36520u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\0\0\0\0\0\0\x8E\x08", 8));
  EXPECT_EQ(bytes.substr(0, 32), RawHeader(0x8E08, 9, 0x80));
  EXPECT_EQ(bytes.substr(32, 128), table);
  EXPECT_EQ(bytes.substr(160, 40), Record(0, 40));
  EXPECT_EQ(bytes.substr(160 + 908 * 40), Record(908, 40));

  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 40);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 36360u);
  EXPECT_EQ(ro->fan_size(), 0x80u);
  EXPECT_EQ(ro->header_size(), 160u);
  EXPECT_EQ(ro->generation(), 9);
  absl::StatusOr<std::string> fan = ro->ReadFanout();
  ASSERT_OK(fan);
  EXPECT_EQ(*fan, table);
  EXPECT_EQ(ReadAt(*ro, 908 * 40, 40), Record(908, 40));
  EXPECT_EQ(ReadAt(*ro, 0, 40), Record(0, 40));
}

TEST_P(IndexFileTest, TinyFileByteForByte) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log =
      OpenRw(env_, path, RwOptions(4, 0x0102030405060708));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append("abcd"));
  ASSERT_OK(log->Append("efgh"));
  ASSERT_OK(log->Flush());
  const std::string expected(
      "\x00\x00\x00\x00\x00\x00\x00\x08"
      "00000001"
      "\x01\x02\x03\x04\x05\x06\x07\x08"
      "\x00\x00\x00\x00\x00\x00\x00\x00"
      "abcdefgh",
      40);
  EXPECT_EQ(ReadRaw(env_, path), expected);
}

TEST_P(IndexFileTest, NewFileHeaderBeforeAnyFlush) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8, 3, 16));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 0u);
  EXPECT_EQ(log->generation(), 3);
  EXPECT_EQ(log->fan_size(), 16u);
  // The fan-out table itself is not written at creation.
  EXPECT_EQ(ReadRaw(env_, path), RawHeader(0, 3, 16));
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, 32u);
}

TEST_P(IndexFileTest, HeaderFieldsRoundTrip) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8));
  ASSERT_NE(log, nullptr);
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMaxGeneration = int64_t{1} << 62;
  const std::vector<IndexFile::Header> headers = {
      {0, 0},
      {8, 1},
      {kMax, 4096},
      {int64_t{1} << 62, kMaxGeneration},
      {0x123456789abcdef0 >> 4, 0x1edcba9876543210}};
  for (const IndexFile::Header& h : headers) {
    ASSERT_OK(log->WriteHeader(h));
    EXPECT_EQ(log->generation(), h.generation);
    EXPECT_EQ(ReadRaw(env_, path).substr(0, 32),
              RawHeader(h.offset, h.generation, 0));
    absl::StatusOr<IndexFile::Header> got = log->ReadHeader();
    ASSERT_OK(got);
    EXPECT_EQ(got->offset, h.offset);
    EXPECT_EQ(got->generation, h.generation);
  }
  // A negative offset cannot be written.
  const absl::Status s = log->WriteHeader({-1, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  // Generation read by a later open, large values included.
  ASSERT_OK(log->WriteHeader({0, kMaxGeneration - 1}));
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->generation(), kMaxGeneration - 1);
  std::unique_ptr<IndexFile> rw2 = OpenRw(env_, path, RwOptions(8, 77));
  ASSERT_NE(rw2, nullptr);
  EXPECT_EQ(rw2->generation(), kMaxGeneration - 1);  // options ignored

  // Generations no writer produces (negative, or at the top of the range where
  // the index's +1 would overflow) are foreign: kDataLoss naming the file.
  for (const int64_t g : {int64_t{-1}, kMin, kMax, kMaxGeneration + 1}) {
    ASSERT_OK(log->WriteHeader({0, g}));
    const absl::Status read = log->ReadHeader().status();
    EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << g;
    EXPECT_THAT(std::string(read.message()), ::testing::HasSubstr(path));
    EXPECT_EQ(IndexFile::OpenReadOnly(env_, path, 8).status().code(),
              absl::StatusCode::kDataLoss)
        << g;
  }
}

TEST_P(IndexFileTest, FanoutRoundTrip) {
  const std::string path = Path("merge");
  std::unique_ptr<IndexFile> merge = OpenRw(env_, path, RwOptions(8, 2, 24));
  ASSERT_NE(merge, nullptr);
  const std::string table = absl::StrCat(Be64(0), Be64(800), Be64(~0ull));
  ASSERT_OK(merge->WriteFanout(table));
  absl::StatusOr<std::string> fan = merge->ReadFanout();
  ASSERT_OK(fan);
  EXPECT_EQ(*fan, table);

  // Wrong sizes are refused and leave the file alone.
  absl::Status s = merge->WriteFanout(table.substr(8));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  s = merge->WriteFanout(table + Be64(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  ASSERT_OK(merge->Append(Record(0, 8)));
  ASSERT_OK(merge->Flush());
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(8, 2, 24), table, Record(0, 8)));

  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->fan_size(), 24u);
  fan = ro->ReadFanout();
  ASSERT_OK(fan);
  EXPECT_EQ(*fan, table);
  EXPECT_EQ(ReadAt(*ro, 0, 8), Record(0, 8));

  // An empty fan-out reads as an empty table.
  std::unique_ptr<IndexFile> log = OpenRw(env_, Path("log"), RwOptions(8));
  ASSERT_NE(log, nullptr);
  fan = log->ReadFanout();
  ASSERT_OK(fan);
  EXPECT_EQ(*fan, "");
}

TEST_P(IndexFileTest, ReopenKeepsFileFieldsAndAppendsAfterThem) {
  const std::string path = Path("log");
  {
    std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8, 5));
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3, 8)));
    ASSERT_OK(log->Flush());
  }
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8, 99, 64));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 5);
  EXPECT_EQ(log->fan_size(), 0u);
  EXPECT_EQ(log->offset(), 24u);
  EXPECT_EQ(log->flushed_offset(), 24u);
  ASSERT_OK(log->Append(Record(3, 8)));
  ASSERT_OK(log->Flush());
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(32, 5, 0), Records(0, 4, 8)));
}

TEST_P(IndexFileTest, FreshRewritesHeaderWithoutTruncating) {
  const std::string path = Path("log");
  {
    std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8, 5));
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3, 8)));
    ASSERT_OK(log->Flush());
  }
  IndexFile::ReadWriteOptions options = RwOptions(8, 0);
  options.fresh = true;
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, options);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 0u);
  EXPECT_EQ(log->generation(), 0);
  const std::string bytes = ReadRaw(env_, path);
  EXPECT_EQ(bytes, absl::StrCat(RawHeader(0, 0, 0), Records(0, 3, 8)));
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 0u);

  // Fresh also overwrites a foreign header without looking at it.
  WriteRaw(env_, path, std::string(64, '\xff'));
  log = OpenRw(env_, path, options);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRaw(env_, path).substr(0, 32), RawHeader(0, 0, 0));
}

TEST_P(IndexFileTest, MissingFileReadOnlyIsAbsent) {
  absl::StatusOr<std::unique_ptr<IndexFile>> ro =
      IndexFile::OpenReadOnly(env_, Path("log"), 8);
  ASSERT_OK(ro);
  EXPECT_EQ(*ro, nullptr);
  EXPECT_FALSE(Exists(env_, Path("log")));
}

TEST_P(IndexFileTest, InvalidArguments) {
  absl::StatusOr<std::unique_ptr<IndexFile>> f =
      IndexFile::OpenReadWrite(env_, Path("log"), RwOptions(0));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(Path("log")));
  f = IndexFile::OpenReadOnly(env_, Path("log"), 0);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  f = IndexFile::OpenReadWrite(env_, Path("log"), RwOptions(8, 0, 12));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(env_, Path("log")));
}

// Every length a crash can leave shorter than the header: RO sees no file, RW
// starts the file afresh with the options' generation and fan size.
TEST_P(IndexFileTest, FilesShorterThanHeaderAreEmpty) {
  const std::string path = Path("log");
  const std::string full = absl::StrCat(RawHeader(16, 7, 0), Records(0, 2, 8));
  for (size_t len = 0; len < 32; ++len) {
    SCOPED_TRACE(absl::StrCat("length ", len));
    WriteRaw(env_, path, full.substr(0, len));
    absl::StatusOr<std::unique_ptr<IndexFile>> ro =
        IndexFile::OpenReadOnly(env_, path, 8);
    ASSERT_OK(ro);
    EXPECT_EQ(*ro, nullptr);

    std::unique_ptr<IndexFile> rw = OpenRw(env_, path, RwOptions(8, 4, 16));
    ASSERT_NE(rw, nullptr);
    EXPECT_EQ(rw->offset(), 0u);
    EXPECT_EQ(rw->generation(), 4);
    EXPECT_EQ(rw->fan_size(), 16u);
    EXPECT_EQ(ReadRaw(env_, path), RawHeader(0, 4, 16));
    rw.reset();

    // Garbage that short is no foreign header either.
    WriteRaw(env_, path, std::string(len, '\xa5'));
    rw = OpenRw(env_, path, RwOptions(8, 1));
    ASSERT_NE(rw, nullptr);
    EXPECT_EQ(rw->generation(), 1);
    EXPECT_EQ(ReadRaw(env_, path), RawHeader(0, 1, 0));
  }
}

TEST_P(IndexFileTest, OffsetCutToWholeRecordsHeld) {
  const std::string path = Path("log");
  struct Case {
    const char* name;
    int64_t claimed;
    std::string records;
    uint64_t expected;
  };
  const std::vector<Case> cases = {
      {"claims more records than held", 80, Records(0, 5, 8), 40},
      {"partial trailing record", 48, Records(0, 5, 8) + "abc", 40},
      {"offset not a record multiple", 43, Records(0, 6, 8), 40},
      {"exact", 40, Records(0, 6, 8), 40},
      {"nothing held", 8000, "", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = RawHeader(c.claimed, 3, 0) + c.records;
    WriteRaw(env_, path, bytes);
    std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(ro->offset(), c.expected);
    absl::StatusOr<IndexFile::Header> h = ro->ReadHeader();
    ASSERT_OK(h);
    EXPECT_EQ(h->offset, static_cast<int64_t>(c.expected));
    EXPECT_EQ(ro->offset(), c.expected);
    EXPECT_EQ(ReadAt(*ro, 0, 1000), c.records.substr(0, c.expected));

    std::unique_ptr<IndexFile> rw = OpenRw(env_, path, RwOptions(8));
    ASSERT_NE(rw, nullptr);
    EXPECT_EQ(rw->offset(), c.expected);
    EXPECT_EQ(rw->flushed_offset(), c.expected);
    EXPECT_EQ(rw->generation(), 3);
    // The next record lands right after the whole ones, over any garbage.
    ASSERT_OK(rw->Append(Record(100, 8)));
    ASSERT_OK(rw->Flush());
    const std::string after = ReadRaw(env_, path);
    EXPECT_EQ(after.substr(0, 8), Be64(c.expected + 8));
    EXPECT_EQ(after.substr(32, c.expected + 8),
              c.records.substr(0, c.expected) + Record(100, 8));
  }

  // With a fan-out table the cut counts from the end of the table.
  WriteRaw(env_, path,
           absl::StrCat(RawHeader(800, 1, 16), std::string(16, '\0'),
                        Records(0, 3, 8), "xyz"));
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->header_size(), 48u);
  EXPECT_EQ(ro->offset(), 24u);
  EXPECT_EQ(ReadAt(*ro, 0, 100), Records(0, 3, 8));
}

TEST_P(IndexFileTest, ForeignOrCorruptHeadersAreDataLoss) {
  const std::string path = Path("data");
  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  const std::string records = Records(0, 4, 8);
  const std::vector<Case> cases = {
      {"future version", RawHeader(8, 1, 0, "00000002") + records,
       "unsupported version '00000002' (expected 00000001)"},
      {"garbage",
       std::string("\x7f\x00\x01\x02\x03\x04\x05\x06"
                   "GARB\xff\xfe\n\t",
                   16) +
           std::string(40, '\x01'),
       "unsupported version 'GARB\\xff\\xfe\\n\\t'"},
      {"all zero", std::string(64, '\0'),
       "unsupported version '\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00'"},
      {"negative fan size", RawHeader(8, 1, -8) + records,
       "invalid fan-out size -8"},
      {"misaligned fan size", RawHeader(8, 1, 12) + records,
       "invalid fan-out size 12"},
      {"fan size past end of file", RawHeader(0, 1, 64) + records,
       "invalid fan-out size 64"},
      {"huge fan size", RawHeader(0, 1, int64_t{1} << 60) + records,
       "invalid fan-out size 1152921504606846976"},
      {"negative offset", RawHeader(-8, 1, 0) + records, "negative offset -8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WriteRaw(env_, path, c.bytes);
    absl::StatusOr<std::unique_ptr<IndexFile>> ro =
        IndexFile::OpenReadOnly(env_, path, 8);
    EXPECT_EQ(ro.status().code(), absl::StatusCode::kDataLoss) << ro.status();
    EXPECT_THAT(std::string(ro.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(ro.status().message()), HasSubstr(c.message));

    absl::StatusOr<std::unique_ptr<IndexFile>> rw =
        IndexFile::OpenReadWrite(env_, path, RwOptions(8));
    EXPECT_EQ(rw.status().code(), absl::StatusCode::kDataLoss) << rw.status();
    EXPECT_THAT(std::string(rw.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(rw.status().message()), HasSubstr(c.message));
    // The file is left as it was.
    EXPECT_EQ(ReadRaw(env_, path), c.bytes);
  }
}

TEST_P(IndexFileTest, ReadHeaderChecksVersion) {
  const std::string path = Path("log");
  WriteRaw(env_, path, RawHeader(16, 1, 0) + Records(0, 2, 8));
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  {
    // Another program overwrites the header in place.
    absl::StatusOr<std::unique_ptr<File>> f =
        env_->OpenFile(path, OpenMode::kReadWrite);
    ASSERT_OK(f);
    ASSERT_OK((*f)->PWrite(8, "99999999"));
  }
  absl::StatusOr<IndexFile::Header> h = ro->ReadHeader();
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss) << h.status();
  EXPECT_THAT(std::string(h.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(h.status().message()), HasSubstr("'99999999'"));
  EXPECT_EQ(ro->offset(), 16u);  // unchanged by the failed refresh
}

TEST_P(IndexFileTest, ReadsAcrossTheFlushBoundary) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3, 8)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(3, 2, 8)));
  EXPECT_EQ(log->flushed_offset(), 24u);
  EXPECT_EQ(log->offset(), 40u);

  EXPECT_EQ(ReadAt(*log, 16, 16), Records(2, 2, 8));  // file + buffer
  EXPECT_EQ(ReadAt(*log, 0, 40), Records(0, 5, 8));
  EXPECT_EQ(ReadAt(*log, 20, 8), Records(0, 5, 8).substr(20, 8));
  EXPECT_EQ(ReadAt(*log, 24, 16), Records(3, 2, 8));  // buffer only
  EXPECT_EQ(ReadAt(*log, 0, 24), Records(0, 3, 8));   // file only
  EXPECT_EQ(ReadAt(*log, 32, 100), Record(4, 8));     // short at the end
  EXPECT_EQ(ReadAt(*log, 40, 8), "");
  EXPECT_EQ(ReadAt(*log, 4000, 8), "");
  EXPECT_EQ(ReadAt(*log, 8, 0), "");

  // A reader sees the flushed part only, and more after a header refresh.
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 24u);
  EXPECT_EQ(ReadAt(*ro, 16, 16), Record(2, 8));
  ASSERT_OK(log->Flush());
  EXPECT_EQ(ReadAt(*ro, 16, 16), Record(2, 8));  // snapshot until ReadHeader
  absl::StatusOr<IndexFile::Header> h = ro->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 40);
  EXPECT_EQ(ro->offset(), 40u);
  EXPECT_EQ(ro->flushed_offset(), 40u);
  EXPECT_EQ(ReadAt(*ro, 16, 16), Records(2, 2, 8));
}

TEST_P(IndexFileTest, FlushCallbackRunsBeforeBytesReachTheFile) {
  const std::string path = Path("log");
  int calls = 0;
  uint64_t seen_offset = 0;
  uint64_t seen_size = 0;
  IndexFile::ReadWriteOptions options = RwOptions(8);
  options.flush_callback = [&] {
    ++calls;
    std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
    ASSERT_NE(ro, nullptr);
    seen_offset = ro->offset();
    absl::StatusOr<uint64_t> size = ro->FileSize();
    ASSERT_OK(size);
    seen_size = *size;
  };
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, options);
  ASSERT_NE(log, nullptr);

  ASSERT_OK(log->Append(Records(0, 2, 8)));
  EXPECT_EQ(calls, 0);
  ASSERT_OK(log->Flush());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen_offset, 0u);
  EXPECT_EQ(seen_size, 32u);

  ASSERT_OK(log->Flush());  // empty: no callback
  ASSERT_OK(log->Flush({.with_fsync = true}));
  EXPECT_EQ(calls, 1);

  ASSERT_OK(log->Append(Record(2, 8)));
  ASSERT_OK(log->Flush());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen_offset, 16u);
  EXPECT_EQ(seen_size, 48u);

  ASSERT_OK(log->Append(Record(3, 8)));
  ASSERT_OK(log->Flush({.no_callback = true}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(32, 0, 0), Records(0, 4, 8)));
}

TEST_P(IndexFileTest, AppendFlushesPastAutoFlushBytes) {
  const std::string path = Path("log");
  const size_t kEntry = 1000;
  int calls = 0;
  IndexFile::ReadWriteOptions options = RwOptions(kEntry);
  options.flush_callback = [&] { ++calls; };
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, options);
  ASSERT_NE(log, nullptr);
  const size_t per_limit = IndexFile::kAutoFlushBytes / kEntry;
  for (size_t i = 0; i < per_limit; ++i) {
    ASSERT_OK(log->Append(Record(i, kEntry)));
  }
  // Exactly kAutoFlushBytes buffered: not more than the limit yet.
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(log->flushed_offset(), 0u);
  EXPECT_EQ(log->offset(), IndexFile::kAutoFlushBytes);
  ASSERT_OK(log->Append(Record(per_limit, kEntry)));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(log->flushed_offset(), IndexFile::kAutoFlushBytes + kEntry);
  EXPECT_EQ(log->offset(), log->flushed_offset());

  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, kEntry);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), IndexFile::kAutoFlushBytes + kEntry);
  EXPECT_EQ(ReadAt(*ro, per_limit * kEntry, kEntry), Record(per_limit, kEntry));
}

// write_behind asks the env to start writing exactly the record bytes of each
// buffer written, and nothing else; without it nothing is asked.
TEST_P(IndexFileTest, WriteBehindHintsTheRecordsOfEachWrite) {
  if (GetParam() != EnvKind::kMem) GTEST_SKIP() << "hints are seen in MemEnv";
  const size_t kEntry = 1000;
  for (const bool behind : {false, true}) {
    const std::string path = Path(behind ? "merge" : "log");
    IndexFile::ReadWriteOptions options = RwOptions(kEntry);
    options.write_behind = behind;
    std::unique_ptr<IndexFile> f = OpenRw(env_, path, options);
    ASSERT_NE(f, nullptr);
    const size_t n = IndexFile::kAutoFlushBytes / kEntry + 5;
    for (size_t i = 0; i < n; ++i) ASSERT_OK(f->Append(Record(i, kEntry)));
    ASSERT_OK(f->Flush({.no_callback = true, .with_fsync = true}));
    EXPECT_EQ(mem_env_.WritebackHinted(path), behind ? n * kEntry : 0u);
    EXPECT_EQ(f->flushed_offset(), n * kEntry);
  }
}

TEST_P(IndexFileTest, ClearWithReopenIsSeenByReadersOfTheOldFile) {
  const std::string path = Path("log");
  int calls = 0;
  IndexFile::ReadWriteOptions options = RwOptions(8, 4);
  options.flush_callback = [&] { ++calls; };
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, options);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3, 8)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Record(3, 8)));  // dropped by Clear, no callback
  EXPECT_EQ(calls, 1);

  std::unique_ptr<IndexFile> old_reader = OpenRo(env_, path, 8);
  ASSERT_NE(old_reader, nullptr);
  EXPECT_EQ(old_reader->offset(), 24u);

  // Stale staging file from an earlier crash: its bytes must not leak in.
  WriteRaw(env_, path + "_tmp", std::string(100, 'z'));

  bool hook_ran = false;
  ASSERT_OK(log->Clear(5, /*reopen=*/true, [&] {
    hook_ran = true;
    // The path already holds the new file...
    std::unique_ptr<IndexFile> fresh = OpenRo(env_, path, 8);
    ASSERT_NE(fresh, nullptr);
    EXPECT_EQ(fresh->offset(), 0u);
    EXPECT_EQ(fresh->generation(), 5);
    // ...but the old file is not stamped yet.
    absl::StatusOr<IndexFile::Header> h = old_reader->ReadHeader();
    ASSERT_OK(h);
    EXPECT_EQ(h->offset, 24);
    EXPECT_EQ(h->generation, 4);
  }));
  EXPECT_TRUE(hook_ran);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(log->offset(), 0u);
  EXPECT_EQ(log->flushed_offset(), 0u);
  EXPECT_EQ(log->generation(), 5);
  EXPECT_EQ(log->fan_size(), 0u);
  EXPECT_EQ(log->path(), path);
  EXPECT_FALSE(Exists(env_, path + "_tmp"));
  EXPECT_EQ(ReadRaw(env_, path), RawHeader(0, 5, 0));

  absl::StatusOr<IndexFile::Header> h = old_reader->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 0);
  EXPECT_EQ(h->generation, 5);
  EXPECT_EQ(old_reader->offset(), 0u);
  EXPECT_EQ(old_reader->generation(), 5);
  EXPECT_EQ(ReadAt(*old_reader, 0, 8), "");

  // The handle continues on the new file.
  ASSERT_OK(log->Append(Record(7, 8)));
  ASSERT_OK(log->Flush());
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(8, 5, 0), Record(7, 8)));
  std::unique_ptr<IndexFile> reader = OpenRo(env_, path, 8);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(ReadAt(*reader, 0, 100), Record(7, 8));
  h = old_reader->ReadHeader();  // the old inode stays empty
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 0);
}

TEST_P(IndexFileTest, ClearWithReopenDropsTheFanout) {
  const std::string path = Path("data");
  std::unique_ptr<IndexFile> data = OpenRw(env_, path, RwOptions(8, 1, 16));
  ASSERT_NE(data, nullptr);
  ASSERT_OK(data->WriteFanout(std::string(16, '\x01')));
  ASSERT_OK(data->Append(Records(0, 2, 8)));
  ASSERT_OK(data->Flush());
  ASSERT_OK(data->Clear(2, /*reopen=*/true));
  EXPECT_EQ(data->fan_size(), 0u);
  EXPECT_EQ(data->header_size(), 32u);
  ASSERT_OK(data->Append(Record(9, 8)));
  ASSERT_OK(data->Flush());
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(8, 2, 0), Record(9, 8)));
}

TEST_P(IndexFileTest, ClearWithoutReopenRemovesThePath) {
  const std::string path = Path("log_async");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8, 4));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3, 8)));
  ASSERT_OK(log->Flush());
  std::unique_ptr<IndexFile> old_reader = OpenRo(env_, path, 8);
  ASSERT_NE(old_reader, nullptr);

  bool removed_in_hook = false;
  ASSERT_OK(log->Clear(6, /*reopen=*/false,
                       [&] { removed_in_hook = !Exists(env_, path); }));
  EXPECT_TRUE(removed_in_hook);
  EXPECT_FALSE(Exists(env_, path));
  EXPECT_EQ(log->generation(), 6);
  EXPECT_EQ(log->offset(), 0u);

  absl::StatusOr<IndexFile::Header> h = old_reader->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 0);
  EXPECT_EQ(h->generation, 6);

  // The handle is closed.
  const absl::Status s = log->Append(Record(0, 8));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_EQ(log->Flush().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(IndexFileTest, RenameToReplacesTheDestination) {
  const std::string src = Path("merge");
  const std::string dst = Path("data");
  WriteRaw(env_, dst, RawHeader(8, 1, 0) + Record(50, 8));
  std::unique_ptr<IndexFile> dst_reader = OpenRo(env_, dst, 8);
  ASSERT_NE(dst_reader, nullptr);

  int calls = 0;
  IndexFile::ReadWriteOptions options = RwOptions(8, 2, 8);
  options.flush_callback = [&] { ++calls; };
  std::unique_ptr<IndexFile> merge = OpenRw(env_, src, options);
  ASSERT_NE(merge, nullptr);
  ASSERT_OK(merge->WriteFanout(Be64(0)));
  ASSERT_OK(merge->Append(Records(0, 3, 8)));  // still buffered
  ASSERT_OK(merge->RenameTo(dst));
  EXPECT_EQ(calls, 0);  // RenameTo flushes without the callback
  EXPECT_EQ(merge->path(), dst);
  EXPECT_EQ(merge->flushed_offset(), 24u);
  EXPECT_FALSE(Exists(env_, src));
  EXPECT_EQ(ReadRaw(env_, dst),
            absl::StrCat(RawHeader(24, 2, 8), Be64(0), Records(0, 3, 8)));

  std::unique_ptr<IndexFile> reader = OpenRo(env_, dst, 8);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->generation(), 2);
  EXPECT_EQ(ReadAt(*reader, 0, 100), Records(0, 3, 8));
  // Readers of the replaced file still see its old contents.
  EXPECT_EQ(ReadAt(*dst_reader, 0, 100), Record(50, 8));

  // The handle keeps working under its new name.
  ASSERT_OK(merge->Append(Record(3, 8)));
  ASSERT_OK(merge->Flush());
  EXPECT_EQ(calls, 1);
  absl::StatusOr<IndexFile::Header> h = reader->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 32);
  EXPECT_EQ(ReadAt(*reader, 0, 100), Records(0, 4, 8));
}

TEST_P(IndexFileTest, MapShowsHeaderAndFlushedRecords) {
  const std::string path = Path("data");
  std::unique_ptr<IndexFile> data = OpenRw(env_, path, RwOptions(8, 3, 16));
  ASSERT_NE(data, nullptr);
  const std::string table = Be64(8) + Be64(24);
  ASSERT_OK(data->WriteFanout(table));
  ASSERT_OK(data->Append(Records(0, 3, 8)));
  ASSERT_OK(data->Flush());
  ASSERT_OK(data->Append(Record(3, 8)));  // not flushed: not mapped
  absl::StatusOr<std::shared_ptr<const MappedRegion>> region = data->Map();
  ASSERT_OK(region);
  EXPECT_EQ(std::string((*region)->bytes()),
            absl::StrCat(RawHeader(24, 3, 16), table, Records(0, 3, 8)));

  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  region = ro->Map();
  ASSERT_OK(region);
  EXPECT_EQ((*region)->bytes().size(), 48u + 24u);
  EXPECT_EQ((*region)->bytes().substr(48), Records(0, 3, 8));
}

TEST_P(IndexFileTest, ClosedHandleRefusesEverything) {
  const std::string path = Path("log");
  std::unique_ptr<IndexFile> log = OpenRw(env_, path, RwOptions(8));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Record(2, 8)));
  ASSERT_OK(log->Close());
  // The unflushed record is dropped.
  EXPECT_EQ(ReadRaw(env_, path),
            absl::StrCat(RawHeader(16, 0, 0), Records(0, 2, 8)));

  std::vector<absl::Status> results;
  results.push_back(log->Append(Record(0, 8)));
  results.push_back(log->Flush());
  char buf[8];
  size_t got = 0;
  results.push_back(log->Read(0, 8, buf, &got));
  results.push_back(log->ReadHeader().status());
  results.push_back(log->WriteHeader({0, 0}));
  results.push_back(log->ReadFanout().status());
  results.push_back(log->WriteFanout(""));
  results.push_back(log->Map().status());
  results.push_back(log->FileSize().status());
  results.push_back(log->Clear(1, true));
  results.push_back(log->RenameTo(Path("other")));
  results.push_back(log->Close());
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(path + ": closed"));
  }
  EXPECT_EQ(got, 0u);
  EXPECT_TRUE(Exists(env_, path));
  EXPECT_FALSE(Exists(env_, Path("other")));
}

TEST_P(IndexFileTest, ReadOnlyHandleRefusesWrites) {
  const std::string path = Path("log");
  WriteRaw(env_, path, RawHeader(8, 1, 0) + Record(0, 8));
  std::unique_ptr<IndexFile> ro = OpenRo(env_, path, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_TRUE(ro->readonly());
  std::vector<absl::Status> results;
  results.push_back(ro->Append(Record(1, 8)));
  results.push_back(ro->Flush());
  results.push_back(ro->WriteHeader({0, 0}));
  results.push_back(ro->WriteFanout(""));
  results.push_back(ro->Clear(2, true));
  results.push_back(ro->RenameTo(Path("other")));
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(path + ": read-only"));
  }
  EXPECT_EQ(ReadRaw(env_, path), RawHeader(8, 1, 0) + Record(0, 8));
  EXPECT_EQ(ro->offset(), 8u);
}

TEST(StorePathsTest, Layout) {
  EXPECT_EQ(StoreDir("/tmp/store"), "/tmp/store/index");
  EXPECT_EQ(StorePath("/tmp/store", "log"), "/tmp/store/index/log");
  EXPECT_EQ(StorePath("rel", "log_async"), "rel/index/log_async");
}

// ---------------------------------------------------------------------------------
// MemEnv only: crashes, short reads, injected errors.

class IndexFileMemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(env_.CreateDirs("/db/index")); }

  MemEnv env_;
  const std::string path_ = "/db/index/log";
};

CrashOptions Harsh() {
  CrashOptions options;
  options.keep_unsynced_prefix = false;
  options.tear_last_write = false;
  return options;
}

TEST_F(IndexFileMemTest, NewFileSurvivesCrashRightAfterOpen) {
  {
    std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 3));
    ASSERT_NE(log, nullptr);
  }
  env_.Restart(Harsh());
  absl::StatusOr<std::string> bytes = env_.Contents(path_);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, RawHeader(0, 3, 0));
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->generation(), 3);
}

TEST_F(IndexFileMemTest, UnsyncedFlushIsLostSyncedFlushSurvives) {
  {
    std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3, 8)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    ASSERT_OK(log->Append(Records(3, 2, 8)));
    ASSERT_OK(log->Flush({.with_fsync = false}));
    EXPECT_EQ(log->flushed_offset(), 40u);
  }
  env_.Restart(Harsh());
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 24u);
  EXPECT_EQ(ReadAt(*log, 0, 100), Records(0, 3, 8));

  ASSERT_OK(log->Append(Records(3, 2, 8)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  log.reset();
  env_.Restart(Harsh());
  log = OpenRw(&env_, path_, RwOptions(8));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 40u);
  EXPECT_EQ(ReadAt(*log, 0, 100), Records(0, 5, 8));
}

TEST_F(IndexFileMemTest, SyncerMakesWhatWasWrittenBeforeItDurable) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3, 8)));
  ASSERT_OK(log->Flush({.with_fsync = false}));
  const IndexFile::Syncer syncer = log->syncer();
  // Written after the Syncer was taken but before it runs: covered too.
  ASSERT_OK(log->Append(Records(3, 1, 8)));
  ASSERT_OK(log->Flush({.with_fsync = false}));
  ASSERT_OK(syncer.Sync());
  // Written after the sync: not durable.
  ASSERT_OK(log->Append(Records(4, 1, 8)));
  ASSERT_OK(log->Flush({.with_fsync = false}));
  log.reset();
  env_.Restart(Harsh());
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 32u);
  EXPECT_EQ(ReadAt(*ro, 0, 100), Records(0, 4, 8));
}

TEST_F(IndexFileMemTest, SyncerOutlivesClearAndClose) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  ASSERT_OK(log->Flush({.with_fsync = false}));
  const IndexFile::Syncer before_clear = log->syncer();
  ASSERT_OK(log->Clear(2, /*reopen=*/true));
  // The old file is unlinked: syncing it is allowed and changes nothing seen
  // under the path.
  EXPECT_OK(before_clear.Sync());
  const IndexFile::Syncer before_close = log->syncer();
  ASSERT_OK(log->Close());
  EXPECT_OK(before_close.Sync());
  const absl::Status closed = log->syncer().Sync();
  EXPECT_EQ(closed.code(), absl::StatusCode::kFailedPrecondition) << closed;
  EXPECT_THAT(std::string(closed.message()), HasSubstr(path_));
  env_.Restart(Harsh());
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 0u);
  EXPECT_EQ(ro->generation(), 2);
}

// A merge's commit: the next log is built aside from log_async's records,
// caught up with those appended meanwhile, and swapped in for the log.
TEST_F(IndexFileMemTest, ReplacementCopiesRecordsWrittenMeanwhileDurably) {
  const std::string async_path = "/db/index/log_async";
  std::unique_ptr<IndexFile> async = OpenRw(&env_, async_path, RwOptions(8, 2));
  ASSERT_NE(async, nullptr);
  ASSERT_OK(async->Append(Records(0, 3, 8)));
  ASSERT_OK(async->Flush());
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(100, 2, 8)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  std::unique_ptr<IndexFile> old_reader = OpenRo(&env_, path_, 8);
  ASSERT_NE(old_reader, nullptr);
  // A crash left bytes in the staging file: they must not leak in.
  WriteRaw(&env_, path_ + "_tmp", std::string(100, 'z'));

  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> next =
      IndexFile::Replacement::Create(&env_, path_, 2);
  ASSERT_OK(next);
  const IndexFile::Reader source = async->reader();
  ASSERT_OK((*next)->CopyFrom(source, async->offset()));
  ASSERT_OK((*next)->Sync());
  // Appended while the copy ran, caught up before the swap.
  ASSERT_OK(async->Append(Records(3, 2, 8)));
  ASSERT_OK(async->Flush());
  ASSERT_OK((*next)->CopyFrom(source, async->offset()));
  EXPECT_EQ((*next)->end(), 40u);
  ASSERT_OK((*next)->Sync());

  ASSERT_OK(log->ReplaceWith(**next));
  EXPECT_EQ(log->offset(), 40u);
  EXPECT_EQ(log->flushed_offset(), 40u);
  EXPECT_EQ(log->generation(), 2);
  EXPECT_EQ(ReadAt(*log, 0, 100), Records(0, 5, 8));
  EXPECT_FALSE(Exists(&env_, path_ + "_tmp"));
  // Readers of the old file see it emptied, at the new generation.
  absl::StatusOr<IndexFile::Header> h = old_reader->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 0);
  EXPECT_EQ(h->generation, 2);
  // The handle appends after the copied records.
  ASSERT_OK(log->Append(Record(7, 8)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  log.reset();
  async.reset();
  env_.Restart(Harsh());
  EXPECT_EQ(ReadRaw(&env_, path_),
            absl::StrCat(RawHeader(48, 2, 0), Records(0, 5, 8), Record(7, 8)));
}

TEST_F(IndexFileMemTest, ReplaceWithRefusesAReplacementItCannotTrust) {
  std::unique_ptr<IndexFile> source =
      OpenRw(&env_, "/db/index/log_async", RwOptions(8, 2));
  ASSERT_NE(source, nullptr);
  ASSERT_OK(source->Append(Records(0, 2, 8)));
  ASSERT_OK(source->Flush());
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);

  // Records copied since its last sync: not durable yet.
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> next =
      IndexFile::Replacement::Create(&env_, path_, 2);
  ASSERT_OK(next);
  ASSERT_OK((*next)->CopyFrom(source->reader(), 16));
  absl::Status st = log->ReplaceWith(**next);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(path_ + "_tmp"));
  EXPECT_EQ(log->generation(), 1);  // unchanged

  // Built for another file.
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> other =
      IndexFile::Replacement::Create(&env_, "/db/index/data", 2);
  ASSERT_OK(other);
  ASSERT_OK((*other)->Sync());
  st = log->ReplaceWith(**other);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;

  // Swapped in once only.
  ASSERT_OK((*next)->Sync());
  ASSERT_OK(log->ReplaceWith(**next));
  st = log->ReplaceWith(**next);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(ReadAt(*log, 0, 100), Records(0, 2, 8));

  // A copy past the source's records fails, naming the source.
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> past =
      IndexFile::Replacement::Create(&env_, path_, 3);
  ASSERT_OK(past);
  st = (*past)->CopyFrom(source->reader(), 24);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("/db/index/log_async"));
}

TEST_F(IndexFileMemTest, SyncerReportsAFailedSyncWithThePath) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, 1, absl::InternalError("EIO on fsync"));
  const absl::Status s = log->syncer().Sync();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
}

TEST_F(IndexFileMemTest, FreshRewriteIsDurable) {
  {
    std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3, 8)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    IndexFile::ReadWriteOptions options = RwOptions(8, 0);
    options.fresh = true;
    log = OpenRw(&env_, path_, options);
    ASSERT_NE(log, nullptr);
  }
  env_.Restart(Harsh());
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 0u);
  EXPECT_EQ(ro->generation(), 0);
}

TEST_F(IndexFileMemTest, ClearAndRenameAreDurable) {
  const std::string async_path = "/db/index/log_async";
  const std::string merge_path = "/db/index/merge";
  const std::string data_path = "/db/index/data";
  {
    std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3, 8)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    ASSERT_OK(log->Clear(2, /*reopen=*/true));

    std::unique_ptr<IndexFile> async = OpenRw(&env_, async_path, RwOptions(8));
    ASSERT_NE(async, nullptr);
    ASSERT_OK(async->Clear(2, /*reopen=*/false));

    std::unique_ptr<IndexFile> merge =
        OpenRw(&env_, merge_path, RwOptions(8, 2));
    ASSERT_NE(merge, nullptr);
    ASSERT_OK(merge->Append(Records(0, 2, 8)));
    ASSERT_OK(merge->RenameTo(data_path));
  }
  env_.Restart(Harsh());
  absl::StatusOr<std::string> log_bytes = env_.Contents(path_);
  ASSERT_OK(log_bytes);
  EXPECT_EQ(*log_bytes, RawHeader(0, 2, 0));
  EXPECT_FALSE(Exists(&env_, async_path));
  EXPECT_FALSE(Exists(&env_, merge_path));
  EXPECT_FALSE(Exists(&env_, path_ + "_tmp"));
  absl::StatusOr<std::string> data_bytes = env_.Contents(data_path);
  ASSERT_OK(data_bytes);
  EXPECT_EQ(*data_bytes, RawHeader(16, 2, 0) + Records(0, 2, 8));
}

// Crash at every mutating operation of a workload, keeping random prefixes of
// what was not synced: reopening always works, never shows a record that was
// not written whole, and keeps everything that was fsynced.
//
// Some crashes let in-place overwrites (the offset; records over old bytes)
// survive ahead of earlier writes (CrashOptions::overwrites_overtake_appends):
// the offset then claims records the file lacks, or holds only torn.
//
// `stale_tail`: the file starts with offset 0 followed by old records (what a
// fresh reopen or an earlier crash leaves), so that an offset written before
// the records it covers would expose them. Writes are not torn then: a torn
// 8-byte offset field can read as a larger value (new high bytes, old low
// bytes), which no format without checksums can tell from a real one; disks
// write such an aligned field within one sector atomically.
void RunCrashMatrix(const std::string& path, bool stale_tail) {
  const size_t kEntry = 16;
  const int kRounds = 6;
  const std::string stale = RawHeader(0, 1, 0) + Records(5000, 30, kEntry);
  auto prepare = [&](MemEnv* env) {
    ASSERT_OK(env->CreateDirs("/db/index"));
    ASSERT_OK(env->SyncDir("/db/index"));
    if (stale_tail) env->SetContents(path, stale);
  };
  // Runs the workload until its first error; returns the records known durable.
  auto workload = [&](MemEnv* env, uint64_t* appended) -> uint64_t {
    uint64_t durable = 0;
    *appended = 0;
    absl::StatusOr<std::unique_ptr<IndexFile>> log =
        IndexFile::OpenReadWrite(env, path, RwOptions(kEntry, 1));
    if (!log.ok()) return durable;
    for (int round = 0; round < kRounds; ++round) {
      const uint64_t n = round + 1;
      if (!(*log)->Append(Records(*appended, n, kEntry)).ok()) break;
      *appended += n;
      const bool fsync = round % 2 == 1;
      if (!(*log)->Flush({.with_fsync = fsync}).ok()) break;
      if (fsync) durable = *appended;
    }
    return durable;
  };

  uint64_t total_mutations = 0;
  {
    MemEnv env;
    prepare(&env);
    uint64_t appended = 0;
    const uint64_t before = env.mutation_count();
    EXPECT_EQ(workload(&env, &appended), 21u);
    EXPECT_EQ(appended, 21u);
    total_mutations = env.mutation_count() - before;
  }
  ASSERT_GT(total_mutations, 10u);

  int runs = 0;
  for (uint64_t crash_after = 0; crash_after <= total_mutations;
       ++crash_after) {
    for (uint64_t seed = 0; seed < 24; ++seed) {
      SCOPED_TRACE(absl::StrCat("crash after ", crash_after, " seed ", seed));
      MemEnv env;
      prepare(&env);
      env.CrashAfter(crash_after);
      uint64_t appended = 0;
      const uint64_t durable = workload(&env, &appended);
      CrashOptions crash;
      crash.seed = seed;
      crash.keep_unsynced_prefix = seed % 8 != 7;
      crash.tear_last_write = !stale_tail && seed % 2 == 0;
      crash.overwrites_overtake_appends = seed % 3 != 0;
      env.Restart(crash);
      ASSERT_OK(env.CreateDirs("/db/index"));
      ++runs;

      absl::StatusOr<std::unique_ptr<IndexFile>> ro =
          IndexFile::OpenReadOnly(&env, path, kEntry);
      ASSERT_OK(ro);
      if (stale_tail) {
        EXPECT_NE(*ro, nullptr);
      }

      std::unique_ptr<IndexFile> log = OpenRw(&env, path, RwOptions(kEntry, 1));
      ASSERT_NE(log, nullptr);
      const uint64_t offset = log->offset();
      ASSERT_EQ(offset % kEntry, 0u);
      const uint64_t records = offset / kEntry;
      EXPECT_GE(records, durable);
      EXPECT_LE(records, appended);
      EXPECT_EQ(log->generation(), 1);
      EXPECT_EQ(ReadAt(*log, 0, offset), Records(0, records, kEntry));
      if (*ro != nullptr) {
        EXPECT_EQ((*ro)->offset(), offset);
      }

      // And the reopened file takes new records after the surviving ones.
      ASSERT_OK(log->Append(Record(1000, kEntry)));
      ASSERT_OK(log->Flush({.with_fsync = true}));
      std::unique_ptr<IndexFile> again = OpenRo(&env, path, kEntry);
      ASSERT_NE(again, nullptr);
      EXPECT_EQ(again->offset(), offset + kEntry);
      EXPECT_EQ(ReadAt(*again, offset, kEntry), Record(1000, kEntry));
    }
  }
  EXPECT_GT(runs, 100);
}

TEST_F(IndexFileMemTest, CrashAtEveryPointOfANewFile) {
  RunCrashMatrix(path_, /*stale_tail=*/false);
}

TEST_F(IndexFileMemTest, CrashAtEveryPointOverStaleRecords) {
  RunCrashMatrix(path_, /*stale_tail=*/true);
}

TEST_F(IndexFileMemTest, ShortReadsAreLooped) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 20, 8)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(20, 2, 8)));
  env_.SetShortReads(true);
  EXPECT_EQ(ReadAt(*log, 0, 22 * 8), Records(0, 22, 8));
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 160u);
  absl::StatusOr<IndexFile::Header> h = ro->ReadHeader();
  ASSERT_OK(h);
  EXPECT_EQ(h->offset, 160);
  EXPECT_EQ(ReadAt(*ro, 8, 1000), Records(1, 19, 8));
}

TEST_F(IndexFileMemTest, FailedRecordWriteKeepsTheBuffer) {
  int calls = 0;
  IndexFile::ReadWriteOptions options = RwOptions(8, 1);
  options.flush_callback = [&] { ++calls; };
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, options);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  env_.InjectError(kOpWrite, 0, 1, absl::InternalError("EIO"));
  absl::Status s = log->Flush();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
  EXPECT_THAT(std::string(s.message()), HasSubstr("EIO"));
  EXPECT_EQ(log->offset(), 16u);
  EXPECT_EQ(log->flushed_offset(), 0u);
  EXPECT_EQ(ReadAt(*log, 0, 16), Records(0, 2, 8));  // still readable
  EXPECT_EQ(*env_.Contents(path_), RawHeader(0, 1, 0));

  ASSERT_OK(log->Flush());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(log->flushed_offset(), 16u);
  EXPECT_EQ(*env_.Contents(path_), RawHeader(16, 1, 0) + Records(0, 2, 8));
}

TEST_F(IndexFileMemTest, FailedOffsetWriteKeepsTheBuffer) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(2, 2, 8)));
  // The records write succeeds, the offset write fails.
  env_.InjectError(kOpWrite, 1, 1, absl::ResourceExhaustedError("ENOSPC"));
  absl::Status s = log->Flush();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
  EXPECT_EQ(log->flushed_offset(), 16u);
  {
    // Not committed: a reader sees the old offset.
    std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(ro->offset(), 16u);
  }
  ASSERT_OK(log->Flush());
  EXPECT_EQ(*env_.Contents(path_), RawHeader(32, 1, 0) + Records(0, 4, 8));
}

TEST_F(IndexFileMemTest, FailedAutoFlushIsReportedByAppend) {
  const size_t kEntry = 100000;
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(kEntry));
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_OK(log->Append(Record(i, kEntry)));
  env_.InjectError(kOpWrite, 0, 1, absl::ResourceExhaustedError("ENOSPC"));
  absl::Status s = log->Append(Record(10, kEntry));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(log->offset(), 11 * kEntry);
  EXPECT_EQ(log->flushed_offset(), 0u);
  ASSERT_OK(log->Flush());
  EXPECT_EQ(log->flushed_offset(), 11 * kEntry);
  EXPECT_EQ(ReadAt(*log, 10 * kEntry, kEntry), Record(10, kEntry));
}

TEST_F(IndexFileMemTest, FailedSyncIsReported) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  env_.InjectError(kOpSync, 0, 1, absl::InternalError("EIO on fsync"));
  absl::Status s = log->Flush({.with_fsync = true});
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
  // An empty buffer still syncs, so the retry reaches the disk.
  ASSERT_OK(log->Flush({.with_fsync = true}));
  log.reset();
  env_.Restart(Harsh());
  std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->offset(), 16u);
}

// Records written over bytes left past the offset are synced before the
// offset covers them; records past the file's size at open are not (a flush
// without fsync stays without one).
TEST_F(IndexFileMemTest, RecordsOverLeftOverBytesAreSyncedFirst) {
  // Two records' worth of left-over bytes past offset 0.
  env_.SetContents(path_, RawHeader(0, 1, 0) + Records(500, 2, 8));
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("EIO on fsync"));
  ASSERT_OK(log->Append(Records(0, 1, 8)));
  absl::Status s = log->Flush({.with_fsync = false});
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("syncing records over left-over bytes"));
  // The offset was not written: the file still claims no record.
  absl::StatusOr<std::string> bytes = env_.Contents(path_);
  ASSERT_OK(bytes);
  EXPECT_EQ(bytes->substr(0, 8), std::string(8, '\0'));
  env_.ClearInjectedErrors();
  ASSERT_OK(log->Flush({.with_fsync = false}));  // the buffer is written again
  ASSERT_OK(log->Append(Records(1, 1, 8)));      // the last left-over record
  ASSERT_OK(log->Flush({.with_fsync = false}));
  // From the old end on, records are appends: no sync is needed.
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("EIO on fsync"));
  ASSERT_OK(log->Append(Records(2, 3, 8)));
  EXPECT_OK(log->Flush({.with_fsync = false}));
  EXPECT_EQ(log->flushed_offset(), 40u);
  env_.ClearInjectedErrors();
}

TEST_F(IndexFileMemTest, FailedOpenIsReported) {
  env_.InjectError(kOpSync, 0, 1, absl::InternalError("EIO"));
  absl::StatusOr<std::unique_ptr<IndexFile>> log =
      IndexFile::OpenReadWrite(&env_, path_, RwOptions(8));
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInternal) << log.status();
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(path_));

  env_.InjectError(kOpSyncDir, 0, 1, absl::InternalError("EIO"));
  log = IndexFile::OpenReadWrite(&env_, "/db/index/other", RwOptions(8));
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInternal) << log.status();
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("/db/index/other"));

  env_.ClearInjectedErrors();
  WriteRaw(&env_, path_, RawHeader(0, 1, 0));
  env_.InjectError(kOpRead, 0, 1, absl::InternalError("EIO on read"));
  log = IndexFile::OpenReadOnly(&env_, path_, 8);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInternal) << log.status();
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(path_));
}

TEST_F(IndexFileMemTest, FailedReadIsReported) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  ASSERT_OK(log->Flush());
  env_.InjectError(kOpRead, 0, 1, absl::InternalError("EIO"));
  char buf[16];
  size_t got = 99;
  absl::Status s = log->Read(0, 16, buf, &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
  EXPECT_EQ(ReadAt(*log, 0, 16), Records(0, 2, 8));
}

TEST_F(IndexFileMemTest, FailedClearRenameKeepsTheOldFile) {
  std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8, 1));
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2, 8)));
  ASSERT_OK(log->Flush());
  env_.InjectError(kOpRename, 0, 1, absl::InternalError("EIO"));
  absl::Status s = log->Clear(2, /*reopen=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(path_));
  // The old file is untouched (not stamped) and the handle unchanged.
  EXPECT_EQ(*env_.Contents(path_), RawHeader(16, 1, 0) + Records(0, 2, 8));
  EXPECT_EQ(log->offset(), 16u);
  EXPECT_EQ(log->generation(), 1);
  EXPECT_EQ(ReadAt(*log, 0, 16), Records(0, 2, 8));
  ASSERT_OK(log->Clear(2, /*reopen=*/true));
  EXPECT_EQ(*env_.Contents(path_), RawHeader(0, 2, 0));
  EXPECT_FALSE(Exists(&env_, path_ + "_tmp"));
}

TEST_F(IndexFileMemTest, NoFileLeftOpen) {
  {
    std::unique_ptr<IndexFile> log = OpenRw(&env_, path_, RwOptions(8));
    ASSERT_NE(log, nullptr);
    std::unique_ptr<IndexFile> ro = OpenRo(&env_, path_, 8);
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(env_.OpenCount(path_), 2);
    ASSERT_OK(log->Close());
    EXPECT_EQ(env_.OpenCount(path_), 1);
  }
  EXPECT_EQ(env_.OpenCount(path_), 0);
}

}  // namespace
}  // namespace kvindex
