// The journal of a log (io/flush_sums.h) and IndexFile's use of it: what it
// vouches for and restores, how it follows the file through flushes, clears
// and closes, and that after a power cut that persists pages in any order no
// record the writer did not write is ever read, and every fsynced one is,
// although a durable flush fsyncs the journal alone.
#include "io/flush_sums.h"

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/grow_ahead.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr size_t kEntry = 16;
const char kDir[] = "/db/index";
const char kLog[] = "/db/index/log";

// Record i: distinct bytes for every i, none all zero.
std::string Record(uint64_t i) {
  std::string r(kEntry, '\0');
  for (size_t j = 0; j < kEntry; ++j) {
    r[j] = static_cast<char>((i * 131 + j * 7 + 1) & 0xff);
  }
  return r;
}

std::string Records(uint64_t first, uint64_t count) {
  std::string out;
  for (uint64_t i = first; i < first + count; ++i) out += Record(i);
  return out;
}

IndexFile::ReadWriteOptions LogOptions(int64_t generation = 1) {
  IndexFile::ReadWriteOptions options;
  options.generation = generation;
  options.entry_size = kEntry;
  return options;
}

// A log handle keeping its journal (or, without `sums`, dropping the one a
// previous writer left, as log/log.cc does), or nullptr (with a test
// failure).
std::unique_ptr<IndexFile> OpenLog(Env* env, bool sums = true) {
  absl::StatusOr<std::unique_ptr<IndexFile>> log =
      IndexFile::OpenReadWrite(env, kLog, LogOptions());
  EXPECT_OK(log);
  if (!log.ok()) return nullptr;
  const absl::Status started =
      sums ? (*log)->StartFlushSums() : (*log)->DropFlushSums();
  EXPECT_OK(started);
  if (!started.ok()) return nullptr;
  return *std::move(log);
}

// Where frame `i` of a journal starts, when every frame before it carried
// `records` records.
uint64_t FrameAt(uint64_t i, uint64_t records) {
  return FlushSums::kHeaderSize +
         i * (FlushSums::kFrameHeaderSize + records * kEntry);
}

std::string ReadRecords(const IndexFile& log) {
  std::string out(log.offset(), '\0');
  size_t n = 0;
  EXPECT_OK(log.Read(0, out.size(), out.empty() ? nullptr : &out[0], &n));
  out.resize(n);
  return out;
}

bool Exists(Env* env, const std::string& path) {
  absl::StatusOr<bool> exists = env->FileExists(path);
  EXPECT_OK(exists);
  return exists.ok() && *exists;
}

class FlushSumsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.CreateDirs(kDir));
    ASSERT_OK(env_.SyncDir(kDir));
  }

  // A power cut that keeps no write made since the last fsync.
  void PowerCut() {
    CrashOptions lose_everything_unsynced;
    lose_everything_unsynced.keep_unsynced_prefix = false;
    env_.Restart(lose_everything_unsynced);
  }

  // The records a read-only handle of the log shows after a power cut that
  // keeps no unsynced write: what is durable without any writer's help.
  std::string RecordsAfterPowerCut() {
    PowerCut();
    absl::StatusOr<std::unique_ptr<IndexFile>> reader =
        IndexFile::OpenReadOnly(&env_, kLog, kEntry);
    EXPECT_OK(reader);
    if (!reader.ok() || *reader == nullptr) return "(no log)";
    return ReadRecords(**reader);
  }

  // Overwrites `n` bytes of the file at `path` at `at` with 0xff.
  void Damage(const std::string& path, uint64_t at, size_t n) {
    absl::StatusOr<std::string> bytes = env_.ReadFileToString(path);
    ASSERT_OK(bytes);
    ASSERT_LE(at + n, bytes->size());
    bytes->replace(at, n, std::string(n, '\xff'));
    env_.SetContents(path, *bytes);
  }

  MemEnv env_;
  absl::StatusOr<std::string> bytes_;
};

TEST_F(FlushSumsTest, AWriterKeepsAFramePerFlushThatCarriesItsRecords) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(3, 2)));
  ASSERT_OK(log->Flush());
  const std::string sidecar = FlushSums::PathFor(kLog);
  EXPECT_EQ(sidecar, "/db/index/log.sum");
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(sidecar);
  ASSERT_OK(bytes);
  // Two frames carrying the records, then the zeros of the room the writer
  // made ahead.
  const uint64_t second = FrameAt(1, 3);
  const uint64_t frames_end = second + FlushSums::kFrameHeaderSize + 2 * kEntry;
  ASSERT_GT(bytes->size(), frames_end);
  EXPECT_EQ(bytes->substr(FlushSums::kHeaderSize + FlushSums::kFrameHeaderSize,
                          3 * kEntry),
            Records(0, 3));
  EXPECT_EQ(bytes->substr(second + FlushSums::kFrameHeaderSize, 2 * kEntry),
            Records(3, 2));
  EXPECT_EQ(bytes->find_first_not_of('\0', frames_end), std::string::npos);

  absl::StatusOr<std::unique_ptr<File>> file =
      env_.OpenFile(kLog, OpenMode::kReadOnly);
  ASSERT_OK(file);
  absl::StatusOr<FlushSums::Verdict> verdict = FlushSums::Verify(
      &env_, **file, kLog, 1, IndexFile::kHeaderSize, kEntry, 5 * kEntry);
  ASSERT_OK(verdict);
  EXPECT_TRUE(verdict->applies);
  EXPECT_EQ(verdict->verified_end, 5 * kEntry);
  EXPECT_EQ(verdict->restorable_end, 5 * kEntry);
  EXPECT_EQ(verdict->detail, "");

  // Another generation, or another fan-out size: the sidecar is not this
  // file's, and vouches for nothing.
  verdict = FlushSums::Verify(&env_, **file, kLog, 2, IndexFile::kHeaderSize,
                              kEntry, 5 * kEntry);
  ASSERT_OK(verdict);
  EXPECT_FALSE(verdict->applies);
  EXPECT_THAT(verdict->detail, HasSubstr("generation 1"));
  verdict = FlushSums::Verify(&env_, **file, kLog, 1,
                              IndexFile::kHeaderSize + 8, kEntry, 5 * kEntry);
  ASSERT_OK(verdict);
  EXPECT_FALSE(verdict->applies);
}

TEST_F(FlushSumsTest, AnOpenRestoresTheRecordsALogLostFromItsFrames) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush());
    ASSERT_OK(log->Append(Records(3, 2)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    // No close: the journal stays, as after a crash.
  }
  // The second flush's records as a power cut may leave them: zeros (the
  // journal alone was fsynced).
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes);
  bytes->replace(IndexFile::kHeaderSize + 3 * kEntry, 2 * kEntry,
                 std::string(2 * kEntry, '\0'));
  env_.SetContents(kLog, *bytes);

  // A reader opened before any writer serves them from the frames.
  absl::StatusOr<std::unique_ptr<IndexFile>> early =
      IndexFile::OpenReadOnly(&env_, kLog, kEntry);
  ASSERT_OK(early);
  ASSERT_NE(*early, nullptr);
  ASSERT_OK((*early)->CapToFlushSums());
  EXPECT_EQ((*early)->offset(), 5 * kEntry);
  EXPECT_EQ(ReadRecords(**early), Records(0, 5));
  EXPECT_EQ((*early)->unvouched_bytes_cut(), 0u);
  ASSERT_OK((*early)->ReadHeader());
  EXPECT_EQ(ReadRecords(**early), Records(0, 5));

  // The writer's open writes them back, durably.
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->restored_bytes(), 2 * kEntry);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 5));
  EXPECT_EQ(RecordsAfterPowerCut(), Records(0, 5));
}

TEST_F(FlushSumsTest, AnOffsetThatNeverReachedTheDiskIsSetFromTheFrames) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 2)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
  }
  // The header as it was before the flush: offset 0.
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes);
  bytes->replace(0, 8, std::string(8, '\0'));
  env_.SetContents(kLog, *bytes);
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 2 * kEntry);
  EXPECT_EQ(ReadRecords(*log), Records(0, 2));
  // The records themselves reached the disk: nothing is written back.
  EXPECT_EQ(log->restored_bytes(), 0u);
}

TEST_F(FlushSumsTest, AnOpenWritesBackOnlyTheFramesTheLogLacks) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 2)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    ASSERT_OK(log->Append(Records(2, 3)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    ASSERT_OK(log->Append(Records(5, 4)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
  }
  // The second flush's pages did not reach the disk; the third's did, and
  // so did the offset.
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes);
  bytes->replace(IndexFile::kHeaderSize + 2 * kEntry, 3 * kEntry,
                 std::string(3 * kEntry, '\0'));
  env_.SetContents(kLog, *bytes);

  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->restored_bytes(), 3 * kEntry);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 9));
  EXPECT_EQ(RecordsAfterPowerCut(), Records(0, 9));
}

TEST_F(FlushSumsTest, AnOpenCutsTheRecordsNoFrameVouchesFor) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush());
    ASSERT_OK(log->Append(Records(3, 2)));
    ASSERT_OK(log->Flush());
  }
  // The second frame as a power cut may leave it (it was never fsynced):
  // zeros, while the log's offset covers its records, which are zeros too.
  Damage(FlushSums::PathFor(kLog), FrameAt(1, 3), 1);
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes);
  bytes->replace(IndexFile::kHeaderSize + 3 * kEntry, 2 * kEntry,
                 std::string(2 * kEntry, '\0'));
  env_.SetContents(kLog, *bytes);

  // A reader opened before any writer hides them too, until a writer has
  // opened the log.
  absl::StatusOr<std::unique_ptr<IndexFile>> early =
      IndexFile::OpenReadOnly(&env_, kLog, kEntry);
  ASSERT_OK(early);
  ASSERT_NE(*early, nullptr);
  EXPECT_EQ((*early)->offset(), 5 * kEntry);
  ASSERT_OK((*early)->CapToFlushSums());
  EXPECT_EQ((*early)->offset(), 3 * kEntry);
  EXPECT_EQ((*early)->unvouched_bytes_cut(), 2 * kEntry);
  ASSERT_OK((*early)->ReadHeader());
  EXPECT_EQ((*early)->offset(), 3 * kEntry);

  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->offset(), 3 * kEntry);
  EXPECT_EQ(log->unvouched_bytes_cut(), 2 * kEntry);
  EXPECT_EQ(log->restored_bytes(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
  // The cut is on disk: a reader sees it too.
  absl::StatusOr<std::unique_ptr<IndexFile>> reader =
      IndexFile::OpenReadOnly(&env_, kLog, kEntry);
  ASSERT_OK(reader);
  ASSERT_NE(*reader, nullptr);
  EXPECT_EQ((*reader)->offset(), 3 * kEntry);

  // New records follow the kept ones, and a later open keeps them all.
  ASSERT_OK(log->Append(Records(10, 1)));
  ASSERT_OK(log->Flush());
  // The early reader follows the writer once the header has changed.
  ASSERT_OK((*early)->ReadHeader());
  EXPECT_EQ((*early)->offset(), 4 * kEntry);
  log.reset();
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3) + Records(10, 1));
}

// A log started afresh (Options::fresh, or the fresh log_async of each merge)
// at the generation of a journal left beside it must not get that journal's
// records back: they belong to the file's earlier life.
TEST_F(FlushSumsTest, AFreshLogIgnoresAJournalLeftBesideIt) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
    // No close: the journal stays, as after a crash.
  }
  IndexFile::ReadWriteOptions fresh = LogOptions();
  fresh.fresh = true;
  absl::StatusOr<std::unique_ptr<IndexFile>> log =
      IndexFile::OpenReadWrite(&env_, kLog, fresh);
  ASSERT_OK(log);
  ASSERT_OK((*log)->StartFlushSums());
  EXPECT_EQ((*log)->offset(), 0u);
  EXPECT_EQ((*log)->restored_bytes(), 0u);
  ASSERT_OK((*log)->Append(Records(10, 1)));
  ASSERT_OK((*log)->Flush({.with_fsync = true}));
  log->reset();
  PowerCut();
  std::unique_ptr<IndexFile> reopened = OpenLog(&env_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(ReadRecords(*reopened), Record(10));
}

// A journal of the earlier format (16-byte entries `end sum`, no records)
// still vouches for the log's bytes, and restores nothing.
TEST_F(FlushSumsTest, AJournalOfTheEarlierFormatStillVouchesForTheLog) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_, /*sums=*/false);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush());
  }
  // One entry for the 3 records, none for the 2 that follow (zeros).
  char header[FlushSums::kHeaderSize] = {};
  std::memcpy(header, "kvlogsum", 8);
  absl::big_endian::Store64(header + 8, 1);
  absl::big_endian::Store64(header + 16, IndexFile::kHeaderSize);
  absl::big_endian::Store64(header + 56, XXH3_64bits(header, 56));
  char entry[16];
  const std::string records = Records(0, 3);
  absl::big_endian::Store64(entry, 3 * kEntry);
  absl::big_endian::Store64(
      entry + 8, XXH3_64bits_withSeed(records.data(), records.size(), 0));
  env_.SetContents(
      FlushSums::PathFor(kLog),
      std::string(header, sizeof(header)) + std::string(entry, sizeof(entry)));
  absl::StatusOr<std::string> bytes = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes);
  *bytes += std::string(2 * kEntry, '\0');
  absl::big_endian::Store64(&(*bytes)[0], 5 * kEntry);
  env_.SetContents(kLog, *bytes);

  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->unvouched_bytes_cut(), 2 * kEntry);
  EXPECT_EQ(log->restored_bytes(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
}

TEST_F(FlushSumsTest, ADamagedFrameStopsTheRecordsItAndLaterFramesCarry) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    for (uint64_t i = 0; i < 4; ++i) {
      ASSERT_OK(log->Append(Records(i * 2, 2)));
      ASSERT_OK(log->Flush());
    }
  }
  // The third frame's sum.
  Damage(FlushSums::PathFor(kLog), FrameAt(2, 2) + 8, 1);
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 4));
}

TEST_F(FlushSumsTest, ASidecarForAnotherFileVouchesForNothingAndCutsNothing) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush());
  }
  // A damaged header: the sidecar is ignored, the log read as it is.
  Damage(FlushSums::PathFor(kLog), 20, 1);
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
}

TEST_F(FlushSumsTest, AFlushRetriedAfterAFailedOffsetWriteRewritesItsFrame) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(2, 2)));
  // Records, then the frame, then the offset: the third write fails.
  env_.InjectError(kOpWrite, /*skip=*/2, /*count=*/1,
                   absl::InternalError("EIO"));
  EXPECT_FALSE(log->Flush().ok());
  env_.ClearInjectedErrors();
  ASSERT_OK(log->Append(Records(4, 1)));
  ASSERT_OK(log->Flush());
  log.reset();
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 5));
}

// With a journal, a durable flush fsyncs the journal alone, which is grown
// ahead of its frames so that its fdatasync finds its size unchanged; the log
// is neither grown nor fsynced, and records written over its left-over bytes
// need no sync before their offset (their frame carries them).
TEST_F(FlushSumsTest, WithAJournalADurableFlushFsyncsTheJournalAlone) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 1)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, IndexFile::kHeaderSize + kEntry);
  absl::StatusOr<std::string> journal =
      env_.ReadFileToString(FlushSums::PathFor(kLog));
  ASSERT_OK(journal);
  EXPECT_EQ(journal->size(), GrowAhead::Target(FrameAt(1, 1)));
  for (uint64_t i = 1; i < 1000; ++i) {
    ASSERT_OK(log->Append(Records(i, 1)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
  }
  journal = env_.ReadFileToString(FlushSums::PathFor(kLog));
  ASSERT_OK(journal);
  EXPECT_EQ(journal->size() % 4096, 0u);
  EXPECT_GE(journal->size(), FrameAt(1000, 1));
  log.reset();

  // A power cut that keeps no unsynced write: the log lost every record,
  // the journal none.
  PowerCut();
  absl::StatusOr<std::unique_ptr<IndexFile>> reader =
      IndexFile::OpenReadOnly(&env_, kLog, kEntry);
  ASSERT_OK(reader);
  ASSERT_NE(*reader, nullptr);
  EXPECT_EQ((*reader)->offset(), 0u);
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->restored_bytes(), 1000 * kEntry);
  EXPECT_EQ(ReadRecords(*log), Records(0, 1000));

  // Left-over bytes past the records (a crash that kept a longer file):
  // rewritten without a sync.
  ASSERT_OK(log->Close());
  bytes_ = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes_);
  absl::big_endian::Store64(&(*bytes_)[0], 10 * kEntry);
  env_.SetContents(kLog, *bytes_);
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("no sync expected"));
  ASSERT_OK(log->Append(Records(2000, 1)));
  EXPECT_OK(log->Flush());
  env_.ClearInjectedErrors();
}

// Without a journal nothing is reserved, and records written over bytes the
// file already holds are synced before their offset (zeros or older bytes
// under an offset that reached the disk first would read as records).
TEST_F(FlushSumsTest, WithoutAJournalRecordsOverLeftOverBytesAreSyncedFirst) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush());
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, IndexFile::kHeaderSize + 3 * kEntry);
  ASSERT_OK(log->Close());

  bytes_ = env_.ReadFileToString(kLog);
  ASSERT_OK(bytes_);
  absl::big_endian::Store64(&(*bytes_)[0], kEntry);
  env_.SetContents(kLog, *bytes_);
  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("EIO"));
  ASSERT_OK(log->Append(Records(3, 1)));
  EXPECT_FALSE(log->Flush().ok());
}

// A file system that cannot reserve (or is full) costs the writer its
// reservation, not its writes: the frames are appended as without it.
TEST_F(FlushSumsTest, AFailedReservationFallsBackToAppends) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  // The second write of the first flush is the journal's reservation (the
  // first, the log's records).
  env_.InjectError(kOpWrite, 1, 1, absl::ResourceExhaustedError("ENOSPC"));
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(2, 2)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  absl::StatusOr<std::string> journal =
      env_.ReadFileToString(FlushSums::PathFor(kLog));
  ASSERT_OK(journal);
  EXPECT_EQ(journal->size(), FrameAt(2, 2));
  log.reset();
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 4));
}

TEST_F(FlushSumsTest, ACloseAfterADurableFlushRemovesTheSidecar) {
  const std::string sidecar = FlushSums::PathFor(kLog);
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(Exists(&env_, sidecar));
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Close());
  // Not fsynced: the sidecar must stay to vouch for the records.
  EXPECT_TRUE(Exists(&env_, sidecar));

  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(2, 2)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());
  EXPECT_FALSE(Exists(&env_, sidecar));
  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 4));
}

// A close removes the sidecar durably: were it to come back after a power
// cut, it would disown the records a writer without checksums appended since,
// and the next open with checksums would cut those durable records.
TEST_F(FlushSumsTest, TheSidecarACloseRemovedStaysRemovedAfterAPowerCut) {
  const std::string sidecar = FlushSums::PathFor(kLog);
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 1)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());
  EXPECT_FALSE(Exists(&env_, sidecar));

  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(1, 2)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());

  PowerCut();
  EXPECT_FALSE(Exists(&env_, sidecar));
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
}

// The records of a durable flush are durable in the journal alone: a close
// that removes it fsyncs the log first.
TEST_F(FlushSumsTest, ACloseFsyncsTheLogBeforeItRemovesTheJournal) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());
  EXPECT_FALSE(Exists(&env_, FlushSums::PathFor(kLog)));
  PowerCut();
  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
}

// A clear that stops after the new journal replaced the old one but before
// the new log replaced the old one leaves the old log, with a journal that
// does not apply to it: its durable records must be in it by then.
TEST_F(FlushSumsTest, AClearFsyncsTheOldLogBeforeItReplacesTheJournal) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  // The renames: the new journal's, then the new log's, which fails.
  env_.InjectError(kOpRename, /*skip=*/1, /*count=*/1,
                   absl::InternalError("EIO"));
  EXPECT_FALSE(log->Clear(/*generation=*/2, /*reopen=*/true).ok());
  env_.ClearInjectedErrors();
  log.reset();
  // The journal's replacement reached the disk (a later directory sync).
  ASSERT_OK(env_.SyncDir(kDir));
  PowerCut();
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 1);
  EXPECT_EQ(ReadRecords(*log), Records(0, 3));
}

TEST_F(FlushSumsTest, ClearReplacesTheSidecarOrRemovesItWithTheFile) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Clear(/*generation=*/2, /*reopen=*/true));
  ASSERT_OK(log->Append(Records(7, 1)));
  ASSERT_OK(log->Flush());
  {
    absl::StatusOr<std::unique_ptr<File>> file =
        env_.OpenFile(kLog, OpenMode::kReadOnly);
    ASSERT_OK(file);
    absl::StatusOr<FlushSums::Verdict> verdict = FlushSums::Verify(
        &env_, **file, kLog, 2, IndexFile::kHeaderSize, kEntry, kEntry);
    ASSERT_OK(verdict);
    EXPECT_TRUE(verdict->applies);
    EXPECT_EQ(verdict->verified_end, kEntry);
  }
  ASSERT_OK(log->Clear(/*generation=*/3, /*reopen=*/false));
  EXPECT_FALSE(Exists(&env_, kLog));
  EXPECT_FALSE(Exists(&env_, FlushSums::PathFor(kLog)));
}

// A writer without the option first restores what the journal holds, fsyncs
// the log, and only then removes the journal: it may hold durable records
// the log lost.
TEST_F(FlushSumsTest, AWriterWithoutChecksumsRestoresThenDropsTheJournal) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 2)));
    ASSERT_OK(log->Flush({.with_fsync = true}));
  }
  PowerCut();
  std::unique_ptr<IndexFile> log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->restored_bytes(), 2 * kEntry);
  EXPECT_FALSE(Exists(&env_, FlushSums::PathFor(kLog)));
  log.reset();
  PowerCut();
  EXPECT_FALSE(Exists(&env_, FlushSums::PathFor(kLog)));
  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadRecords(*log), Records(0, 2));
  // Nothing to drop: idempotent.
  ASSERT_OK(FlushSums::RemoveStale(&env_, kLog));
}

TEST_F(FlushSumsTest, MisuseIsRefused) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->StartFlushSums().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log->RenameTo("/db/index/elsewhere").code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::unique_ptr<IndexFile>> reader =
      IndexFile::OpenReadOnly(&env_, kLog, kEntry);
  ASSERT_OK(reader);
  ASSERT_NE(*reader, nullptr);
  EXPECT_EQ((*reader)->StartFlushSums().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Power cuts at every mutating operation of a workload of flushes (every
// other one with fsync), each leaving the file's pages at random versions
// (MemEnv's pages_in_any_order, with pages of 48 bytes so that the header and
// the records lie on different pages). Returns how many crashes showed a
// record that was never written.
int RunPowerLossMatrix(bool sums) {
  const int kRounds = 6;
  auto prepare = [](MemEnv* env) {
    EXPECT_OK(env->CreateDirs(kDir));
    EXPECT_OK(env->SyncDir(kDir));
  };
  // Runs the workload until its first error; returns the records known
  // durable.
  auto workload = [&](MemEnv* env, uint64_t* appended) -> uint64_t {
    uint64_t durable = 0;
    *appended = 0;
    absl::StatusOr<std::unique_ptr<IndexFile>> log =
        IndexFile::OpenReadWrite(env, kLog, LogOptions());
    if (!log.ok()) return durable;
    if (sums && !(*log)->StartFlushSums().ok()) return durable;
    for (int round = 0; round < kRounds; ++round) {
      const uint64_t n = round + 1;
      if (!(*log)->Append(Records(*appended, n)).ok()) break;
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
    total_mutations = env.mutation_count() - before;
  }
  EXPECT_GT(total_mutations, 10u);

  int phantoms = 0;
  int runs = 0;
  for (uint64_t crash_after = 0; crash_after <= total_mutations;
       ++crash_after) {
    for (uint64_t seed = 0; seed < 32; ++seed) {
      SCOPED_TRACE(absl::StrCat("crash after ", crash_after, " seed ", seed));
      MemEnv env;
      prepare(&env);
      env.CrashAfter(crash_after);
      uint64_t appended = 0;
      const uint64_t durable = workload(&env, &appended);
      CrashOptions crash;
      crash.seed = seed;
      crash.pages_in_any_order = true;
      crash.page_size = 48;
      env.Restart(crash);
      ++runs;

      // A reader that opens before the writer shows whole written records
      // only, and all fsynced ones.
      absl::StatusOr<std::unique_ptr<IndexFile>> reader =
          IndexFile::OpenReadOnly(&env, kLog, kEntry);
      EXPECT_OK(reader);
      if (!reader.ok()) return -1;
      if (*reader != nullptr) {
        if (sums) {
          EXPECT_OK((*reader)->CapToFlushSums());
        }
        const uint64_t seen = (*reader)->offset() / kEntry;
        EXPECT_GE(seen, durable);
        if (ReadRecords(**reader) != Records(0, seen)) ++phantoms;
      }

      std::unique_ptr<IndexFile> log = OpenLog(&env, sums);
      if (log == nullptr) return -1;
      const uint64_t records = log->offset() / kEntry;
      EXPECT_GE(records, durable);
      EXPECT_LE(records, appended);
      if (ReadRecords(*log) != Records(0, records)) ++phantoms;
      if (sums) {
        // And the sidecar keeps vouching after the reopen.
        EXPECT_OK(log->Append(Record(1000)));
        EXPECT_OK(log->Flush());
        log.reset();
        log = OpenLog(&env, sums);
        if (log == nullptr) return -1;
        EXPECT_EQ(log->offset(), (records + 1) * kEntry);
        EXPECT_EQ(ReadRecords(*log), Records(0, records) + Record(1000));
      }
    }
  }
  EXPECT_GT(runs, 300);
  return phantoms;
}

TEST(FlushSumsPowerLossTest, WithChecksumsAPowerCutNeverShowsUnwrittenRecords) {
  EXPECT_EQ(RunPowerLossMatrix(/*sums=*/true), 0);
}

// What the checksums are for: without them the same power cuts show records
// that were never written (zeros under an offset that reached the disk).
TEST(FlushSumsPowerLossTest, WithoutChecksumsTheSamePowerCutsShowPhantoms) {
  EXPECT_GT(RunPowerLossMatrix(/*sums=*/false), 0);
}

}  // namespace
}  // namespace kvindex
