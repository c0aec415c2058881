// Options::log_checksums at the index level (docs/format.md §9b): after a
// power cut that kept a flush's records and its journal frame from the disk
// but not the log's offset, neither a reader opened first nor the writer
// shows them, and both count them in Stats::log_bytes_unvouched; records the
// log lost but the journal kept are shown by both, the writer's open writes
// them back (Stats::log_bytes_restored), and every fsynced binding stays. A
// clean close removes the journals; a writer without the option restores
// from one it finds, then removes it.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/stats.h"
#include "io/flush_sums.h"
#include "io/mem_env.h"
#include "testing/keys.h"

namespace kvindex {
namespace {

constexpr char kRoot[] = "/store";
constexpr char kLog[] = "/store/index/log";
constexpr char kLogSum[] = "/store/index/log.sum";

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

Options StoreOptions(MemEnv* env, Layout layout, bool log_checksums) {
  Options o;
  o.env = env;
  o.layout = layout;
  o.log_size = 1000;  // no merge: every binding stays in the log
  o.lru_size = 0;
  o.log_checksums = log_checksums;
  return o;
}

std::map<std::string, std::string> ReadAll(const RawIndex& index) {
  std::map<std::string, std::string> all;
  const absl::Status s =
      index.Iter([&](absl::string_view k, absl::string_view v) {
        all[std::string(k)] = std::string(v);
      });
  EXPECT_TRUE(s.ok()) << s;
  return all;
}

bool Exists(MemEnv* env, const std::string& path) {
  absl::StatusOr<bool> exists = env->FileExists(path);
  EXPECT_TRUE(exists.ok()) << exists.status();
  return exists.ok() && *exists;
}

// A power cut that keeps no write made since the last fsync.
void PowerCut(MemEnv* env) {
  CrashOptions lose_everything_unsynced;
  lose_everything_unsynced.keep_unsynced_prefix = false;
  env->Restart(lose_everything_unsynced);
}

class LogChecksumsTest : public ::testing::TestWithParam<Layout> {};

INSTANTIATE_TEST_SUITE_P(Layouts, LogChecksumsTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered));

TEST_P(LogChecksumsTest, RecordsAPowerCutKeptFromTheDiskAreNeverShown) {
  const size_t entry = TestSchema().entry_size();
  MemEnv env;
  std::string log;
  std::string log_sum;
  {
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), true));
    ASSERT_TRUE(index.ok()) << index.status();
    for (uint32_t k = 0; k < 3; ++k) {
      ASSERT_TRUE(
          (*index)->Replace(test::SmallKey(k), test::SmallValue(k)).ok());
    }
    ASSERT_TRUE((*index)->Flush({.with_fsync = true}).ok());
    for (uint32_t k = 3; k < 5; ++k) {
      ASSERT_TRUE(
          (*index)->Replace(test::SmallKey(k), test::SmallValue(k)).ok());
    }
    ASSERT_TRUE((*index)->Flush().ok());
    // The files as a power cut now may leave them: the second flush's
    // offset on the disk, its records not (zeros).
    absl::StatusOr<std::string> bytes = env.Contents(kLog);
    ASSERT_TRUE(bytes.ok());
    log = *bytes;
    bytes = env.Contents(kLogSum);
    ASSERT_TRUE(bytes.ok()) << "no sidecar beside the log";
    log_sum = *bytes;
  }
  const size_t records_end = 32 + 5 * entry;
  EXPECT_EQ(log.size(), records_end);
  log.replace(records_end - 2 * entry, 2 * entry, std::string(2 * entry, '\0'));
  env.SetContents(kLog, log);
  // The second flush's frame, never fsynced, did not reach the disk either.
  const size_t second_frame =
      FlushSums::kHeaderSize + FlushSums::kFrameHeaderSize + 3 * entry;
  ASSERT_GT(log_sum.size(), second_frame);
  log_sum.replace(second_frame, log_sum.size() - second_frame,
                  std::string(log_sum.size() - second_frame, '\0'));
  env.SetContents(kLogSum, log_sum);

  std::map<std::string, std::string> expected;
  for (uint32_t k = 0; k < 3; ++k)
    expected[test::SmallKey(k)] = test::SmallValue(k);

  ResetStats();
  Options ro = StoreOptions(&env, GetParam(), false);
  ro.readonly = true;
  auto reader = RawIndex::Open(kRoot, TestSchema(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(ReadAll(**reader), expected);
  EXPECT_EQ(GetStats().log_bytes_unvouched, 2 * entry);

  auto writer =
      RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env, GetParam(), true));
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ(ReadAll(**writer), expected);
  EXPECT_EQ(GetStats().log_bytes_unvouched, 4 * entry);
  // The reader follows the writer from there on.
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(9), test::SmallValue(9)).ok());
  ASSERT_TRUE((*writer)->Flush().ok());
  ASSERT_TRUE((*reader)->Sync().ok());
  expected[test::SmallKey(9)] = test::SmallValue(9);
  EXPECT_EQ(ReadAll(**reader), expected);

  // A clean close leaves no sidecar behind.
  ASSERT_TRUE((*reader)->Close().ok());
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_FALSE(Exists(&env, kLogSum));
}

TEST_P(LogChecksumsTest, RecordsTheLogLostAreRestoredFromTheJournal) {
  MemEnv env;
  {
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), true));
    ASSERT_TRUE(index.ok()) << index.status();
    for (uint32_t k = 0; k < 5; ++k) {
      ASSERT_TRUE(
          (*index)->Replace(test::SmallKey(k), test::SmallValue(k)).ok());
      ASSERT_TRUE((*index)->Flush({.with_fsync = true}).ok());
    }
    env.CrashAfter(0);  // the power goes before the close
  }
  // A power cut that keeps no unsynced write: a durable flush fsynced the
  // journal alone, so the log lost every record.
  PowerCut(&env);
  std::map<std::string, std::string> expected;
  for (uint32_t k = 0; k < 5; ++k)
    expected[test::SmallKey(k)] = test::SmallValue(k);

  ResetStats();
  Options ro = StoreOptions(&env, GetParam(), false);
  ro.readonly = true;
  auto reader = RawIndex::Open(kRoot, TestSchema(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(ReadAll(**reader), expected);
  EXPECT_EQ(GetStats().log_bytes_restored, 0u);  // a reader writes nothing
  {
    auto writer = RawIndex::Open(kRoot, TestSchema(),
                                 StoreOptions(&env, GetParam(), true));
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ(ReadAll(**writer), expected);
    EXPECT_EQ(GetStats().log_bytes_restored, 5 * TestSchema().entry_size());
    EXPECT_EQ(GetStats().log_bytes_unvouched, 0u);
    ASSERT_TRUE((*writer)->Close().ok());
  }
  // The close fsynced the restored log before it removed the journal.
  EXPECT_FALSE(Exists(&env, kLogSum));
  PowerCut(&env);
  auto again = RawIndex::Open(kRoot, TestSchema(),
                              StoreOptions(&env, GetParam(), false));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadAll(**again), expected);
}

TEST_P(LogChecksumsTest, AWriterWithoutTheOptionRestoresThenRemovesAJournal) {
  MemEnv env;
  {
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), true));
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_TRUE((*index)->Replace(test::SmallKey(1), test::SmallValue(1)).ok());
    ASSERT_TRUE((*index)->Flush({.with_fsync = true}).ok());
    env.CrashAfter(0);  // the power goes before the close
  }
  // What a power cut leaves: the journal of an unclean stop, the log without
  // the records it carries.
  PowerCut(&env);
  ASSERT_TRUE(Exists(&env, kLogSum));
  {
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), false));
    ASSERT_TRUE(index.ok()) << index.status();
    EXPECT_FALSE(Exists(&env, kLogSum));
    ASSERT_TRUE((*index)->Replace(test::SmallKey(2), test::SmallValue(2)).ok());
    ASSERT_TRUE((*index)->Flush({.with_fsync = true}).ok());
    env.CrashAfter(0);
  }
  PowerCut(&env);
  // Records written without the journal are all kept by a later writer that
  // has the option again.
  auto index =
      RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env, GetParam(), true));
  ASSERT_TRUE(index.ok()) << index.status();
  std::map<std::string, std::string> expected = {
      {test::SmallKey(1), test::SmallValue(1)},
      {test::SmallKey(2), test::SmallValue(2)}};
  EXPECT_EQ(ReadAll(**index), expected);
}

TEST_P(LogChecksumsTest, AWritersOpenRemovesAJournalWhoseLogAsyncIsGone) {
  MemEnv env;
  const std::string log_async = "/store/index/log_async";
  {
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), true));
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_TRUE((*index)->Replace(test::SmallKey(1), test::SmallValue(1)).ok());
    ASSERT_TRUE((*index)->Close().ok());
  }
  // What a failed removal after log_async's own leaves (a journal, and one
  // being written), and a log_async's removal that fails would not.
  const std::string orphan = FlushSums::PathFor(log_async);
  env.SetContents(orphan, std::string(64, 'j'));
  env.SetContents(orphan + ".tmp", std::string(64, 't'));
  env.SetContents("/store/index/other.sum", "kept");
  {
    auto reader = RawIndex::Open(kRoot, TestSchema(), [&] {
      Options o = StoreOptions(&env, GetParam(), true);
      o.readonly = true;
      return o;
    }());
    ASSERT_TRUE(reader.ok()) << reader.status();
    // Readers leave files alone.
    EXPECT_TRUE(Exists(&env, orphan));
  }
  for (const bool checksums : {true, false}) {
    env.SetContents(orphan, std::string(64, 'j'));
    auto index = RawIndex::Open(kRoot, TestSchema(),
                                StoreOptions(&env, GetParam(), checksums));
    ASSERT_TRUE(index.ok()) << index.status();
    EXPECT_FALSE(Exists(&env, orphan)) << checksums;
    EXPECT_FALSE(Exists(&env, orphan + ".tmp")) << checksums;
    EXPECT_TRUE(Exists(&env, "/store/index/other.sum"));
    EXPECT_EQ(ReadAll(**index), (std::map<std::string, std::string>{
                                    {test::SmallKey(1), test::SmallValue(1)}}));
  }
}

}  // namespace
}  // namespace kvindex
