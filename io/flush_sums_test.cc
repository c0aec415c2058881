// The checksum sidecar of a log (io/flush_sums.h) and IndexFile's use of it:
// what it vouches for, how it follows the file through flushes, clears and
// closes, and that after a power cut that persists pages in any order no
// record the writer did not write is ever read, and every fsynced one is.
#include "io/flush_sums.h"

#include <cstdint>
#include <memory>
#include <string>

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

// A log handle keeping its sidecar, or nullptr (with a test failure).
std::unique_ptr<IndexFile> OpenLog(Env* env, bool sums = true) {
  absl::StatusOr<std::unique_ptr<IndexFile>> log =
      IndexFile::OpenReadWrite(env, kLog, LogOptions());
  EXPECT_OK(log);
  if (!log.ok()) return nullptr;
  if (sums) {
    const absl::Status started = (*log)->StartFlushSums();
    EXPECT_OK(started);
    if (!started.ok()) return nullptr;
  }
  return *std::move(log);
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

  // Overwrites `n` bytes of the file at `path` at `at` with 0xff.
  void Damage(const std::string& path, uint64_t at, size_t n) {
    absl::StatusOr<std::string> bytes = env_.ReadFileToString(path);
    ASSERT_OK(bytes);
    ASSERT_LE(at + n, bytes->size());
    bytes->replace(at, n, std::string(n, '\xff'));
    env_.SetContents(path, *bytes);
  }

  MemEnv env_;
};

TEST_F(FlushSumsTest, AWriterKeepsAnEntryPerFlushThatVouchesForItsRecords) {
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
  // Two entries, then the zeros of the room the writer made ahead.
  const size_t entries_end = FlushSums::kHeaderSize + 2 * FlushSums::kEntrySize;
  ASSERT_GT(bytes->size(), entries_end);
  EXPECT_NE(bytes->substr(entries_end - FlushSums::kEntrySize, 8),
            std::string(8, '\0'));
  EXPECT_EQ(bytes->find_first_not_of('\0', entries_end), std::string::npos);

  absl::StatusOr<std::unique_ptr<File>> file =
      env_.OpenFile(kLog, OpenMode::kReadOnly);
  ASSERT_OK(file);
  absl::StatusOr<FlushSums::Verdict> verdict = FlushSums::Verify(
      &env_, **file, kLog, 1, IndexFile::kHeaderSize, kEntry, 5 * kEntry);
  ASSERT_OK(verdict);
  EXPECT_TRUE(verdict->applies);
  EXPECT_EQ(verdict->verified_end, 5 * kEntry);
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

TEST_F(FlushSumsTest, AnOpenCutsTheRecordsNoEntryVouchesFor) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 3)));
    ASSERT_OK(log->Flush());
    ASSERT_OK(log->Append(Records(3, 2)));
    ASSERT_OK(log->Flush());
    // No close: the sidecar stays, as after a crash.
  }
  // The second flush's records as a power cut may leave them: zeros.
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

TEST_F(FlushSumsTest, ADamagedEntryStopsTheRecordsItAndLaterEntriesCover) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    for (uint64_t i = 0; i < 4; ++i) {
      ASSERT_OK(log->Append(Records(i * 2, 2)));
      ASSERT_OK(log->Flush());
    }
  }
  // The third entry's sum.
  Damage(FlushSums::PathFor(kLog),
         FlushSums::kHeaderSize + 2 * FlushSums::kEntrySize + 8, 1);
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

TEST_F(FlushSumsTest, AFlushRetriedAfterAFailedOffsetWriteRewritesItsEntry) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(2, 2)));
  // Records, then the entry, then the offset: the third write fails.
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

// With a sidecar the log and the sidecar are grown ahead of what they hold,
// so that their fdatasyncs find their sizes unchanged; records written over
// the log's reserved zeros need no sync before their offset (the entry
// vouches for them), so a flush without fsync syncs nothing.
TEST_F(FlushSumsTest, WithChecksumsTheFilesGrowAheadAndAFlushSyncsNothing) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 1)));
  ASSERT_OK(log->Flush());
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, GrowAhead::Target(IndexFile::kHeaderSize + kEntry));
  absl::StatusOr<std::string> sidecar =
      env_.ReadFileToString(FlushSums::PathFor(kLog));
  ASSERT_OK(sidecar);
  EXPECT_EQ(sidecar->size(),
            GrowAhead::Target(FlushSums::kHeaderSize + FlushSums::kEntrySize));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());

  // Reopened, the log holds zeros past its records: they are rewritten in
  // place.
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("no sync expected"));
  // Enough records to grow the log more than once.
  for (uint64_t i = 1; i < 1000; ++i) {
    ASSERT_OK(log->Append(Records(i, 1)));
    ASSERT_OK(log->Flush());
  }
  env_.ClearInjectedErrors();
  ASSERT_OK(log->Flush({.with_fsync = true}));
  size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_GT(*size, IndexFile::kHeaderSize + 1000 * kEntry);
  EXPECT_EQ(*size % 4096, 0u);
  log.reset();

  // A power cut now loses nothing, and shows nothing past the records.
  env_.Restart({.seed = 3, .pages_in_any_order = true});
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->unvouched_bytes_cut(), 0u);
  EXPECT_EQ(ReadRecords(*log), Records(0, 1000));
}

// Without a sidecar nothing is reserved (zeros under an offset that reached
// the disk before its records would read as records), and records written
// over bytes the file already holds are synced before their offset.
TEST_F(FlushSumsTest, WithoutChecksumsTheLogIsNotGrownAhead) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush());
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, IndexFile::kHeaderSize + 3 * kEntry);
  log.reset();

  // A log a writer with checksums grew ahead, reopened without them.
  ASSERT_OK(env_.RemoveFile(kLog));
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Records(0, 3)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  ASSERT_OK(log->Close());
  log = OpenLog(&env_, /*sums=*/false);
  ASSERT_NE(log, nullptr);
  env_.InjectError(kOpSync, 0, -1, absl::InternalError("EIO"));
  ASSERT_OK(log->Append(Records(3, 1)));
  EXPECT_FALSE(log->Flush().ok());
}

// A file system that cannot reserve (or is full) costs the writer its
// reservation, not its writes: the records are appended as without it.
TEST_F(FlushSumsTest, AFailedReservationFallsBackToAppends) {
  std::unique_ptr<IndexFile> log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
  // The first write of the first flush is the log's reservation.
  env_.InjectError(kOpWrite, 0, 1, absl::ResourceExhaustedError("ENOSPC"));
  ASSERT_OK(log->Append(Records(0, 2)));
  ASSERT_OK(log->Flush());
  ASSERT_OK(log->Append(Records(2, 2)));
  ASSERT_OK(log->Flush({.with_fsync = true}));
  absl::StatusOr<uint64_t> size = log->FileSize();
  ASSERT_OK(size);
  EXPECT_EQ(*size, IndexFile::kHeaderSize + 4 * kEntry);
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

  CrashOptions lose_everything_unsynced;
  lose_everything_unsynced.keep_unsynced_prefix = false;
  env_.Restart(lose_everything_unsynced);
  EXPECT_FALSE(Exists(&env_, sidecar));
  log = OpenLog(&env_);
  ASSERT_NE(log, nullptr);
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

TEST_F(FlushSumsTest, ALogWrittenWithoutChecksumsLosesItsStaleSidecar) {
  {
    std::unique_ptr<IndexFile> log = OpenLog(&env_);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Records(0, 1)));
    ASSERT_OK(log->Flush());
  }
  ASSERT_OK(FlushSums::RemoveStale(&env_, kLog));
  EXPECT_FALSE(Exists(&env_, FlushSums::PathFor(kLog)));
  // Idempotent.
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
