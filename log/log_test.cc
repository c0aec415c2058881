#include "log/log.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/flush_sums.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "log/log_table.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using test::SmallKey;
using test::SmallValue;
using test::StatusIs;
using test::TinyHash;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------
// Schemas and keys (testing/keys.h): SmallKey(i)'s first byte decides its tiny
// hash, so a quarter of all keys collide with each other and the table's
// probing and the equal-hash paths are exercised all the time.

Schema TinySchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 2,
                          &TinyHash);
}

Schema WideSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 64,
                          &Xxh3KeyHash64);
}

std::string Entry(const std::string& key, const std::string& value) {
  return key + value;
}

using Model = std::map<std::string, std::string>;

// Compares `table` with `model` (the newest value of each key). `absent` are
// keys that must not be found unless the model has them. Returns "" or the
// first difference.
std::string Diff(const LogTable& table, const Schema& s, const Model& model,
                 const std::vector<std::string>& absent = {}) {
  if (table.cardinal() != model.size()) {
    return absl::StrCat("cardinal ", table.cardinal(), ", model has ",
                        model.size());
  }
  for (const auto& [k, v] : model) {
    const char* e = table.Find(k, s.hash(k));
    if (e == nullptr) return absl::StrCat("key ", k, " not found");
    if (EntryKey(s, e) != k) return absl::StrCat("key ", k, ": wrong entry");
    if (EntryValue(s, e) != v) return absl::StrCat("key ", k, ": stale value");
  }
  for (const std::string& k : absent) {
    if (model.count(k) == 0 && table.Find(k, s.hash(k)) != nullptr) {
      return absl::StrCat("key ", k, " found but never added");
    }
  }
  Model visited;
  size_t visits = 0;
  table.ForEach([&](const char* e) {
    ++visits;
    visited[std::string(EntryKey(s, e))] = std::string(EntryValue(s, e));
  });
  if (visits != model.size()) {
    return absl::StrCat("ForEach visited ", visits, " records, expected ",
                        model.size());
  }
  if (visited != model) return "ForEach bindings differ from the model";
  const std::vector<LogTable::Sorted> sorted = table.SortedByHash();
  if (sorted.size() != model.size()) {
    return absl::StrCat("SortedByHash has ", sorted.size(), " records");
  }
  Model from_sorted;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string k(EntryKey(s, sorted[i].entry));
    if (sorted[i].hash != s.hash(k)) {
      return absl::StrCat("SortedByHash: wrong hash for key ", k);
    }
    if (i > 0 && sorted[i - 1].hash > sorted[i].hash) {
      return absl::StrCat("SortedByHash: not sorted at ", i);
    }
    from_sorted[k] = std::string(EntryValue(s, sorted[i].entry));
  }
  if (from_sorted != model) return "SortedByHash is not a permutation";
  return "";
}

std::vector<std::string> Pool(uint32_t n) {
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < n; ++i) keys.push_back(SmallKey(i));
  return keys;
}

// ---------------------------------------------------------------------------------
// LogTable.

TEST(LogTable, EmptyTableFindsNothing) {
  const Schema s = TinySchema();
  LogTable table(s);
  EXPECT_EQ(table.cardinal(), 0u);
  EXPECT_EQ(table.records(), 0u);
  EXPECT_EQ(table.Find(SmallKey(1), TinyHash(SmallKey(1))), nullptr);
  EXPECT_TRUE(table.SortedByHash().empty());
  int calls = 0;
  table.ForEach([&](const char*) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(Diff(table, s, {}, Pool(8)), "");
}

TEST(LogTable, AddThenFind) {
  const Schema s = TinySchema();
  LogTable table(s);
  const std::string e = Entry(SmallKey(5), SmallValue(0xdeadbeef));
  table.Add(e.data());
  const char* found = table.Find(SmallKey(5), TinyHash(SmallKey(5)));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(std::string(found, s.entry_size()), e);
  // The table keeps its own copy.
  EXPECT_NE(found, e.data());
  EXPECT_EQ(table.cardinal(), 1u);
  EXPECT_EQ(table.records(), 1u);
  // Same hash (5 & 3 == 1 & 3), different key.
  EXPECT_EQ(table.Find(SmallKey(1), TinyHash(SmallKey(1))), nullptr);
}

TEST(LogTable, LastWriteWinsAndDuplicatesCountOnce) {
  const Schema s = TinySchema();
  LogTable table(s);
  for (uint32_t v = 0; v < 5; ++v) {
    table.Add(Entry(SmallKey(2), SmallValue(v)).data());
  }
  // SmallKey(6) collides with SmallKey(2).
  table.Add(Entry(SmallKey(6), SmallValue(100)).data());
  table.Add(Entry(SmallKey(2), SmallValue(42)).data());
  EXPECT_EQ(table.cardinal(), 2u);
  EXPECT_EQ(table.records(), 7u);
  EXPECT_EQ(
      Diff(table, s,
           {{SmallKey(2), SmallValue(42)}, {SmallKey(6), SmallValue(100)}},
           Pool(16)),
      "");
}

TEST(LogTable, AddWithExplicitHash) {
  const Schema s = TinySchema();
  LogTable table(s);
  const std::string k = SmallKey(3);
  table.Add(Entry(k, SmallValue(1)).data(), TinyHash(k));
  table.Add(Entry(k, SmallValue(2)).data(), TinyHash(k));
  EXPECT_EQ(Diff(table, s, {{k, SmallValue(2)}}), "");
}

TEST(LogTable, GrowsPastManyCollidingKeys) {
  // 3000 distinct keys over 4 hash values: the table has to grow many times,
  // and every probe runs through long collision chains.
  const Schema s = TinySchema();
  LogTable table(s);
  Model model;
  const size_t memory_before = table.memory();
  for (uint32_t i = 0; i < 3000; ++i) {
    const std::string k = SmallKey(i * 7919 % 100000);
    table.Add(Entry(k, SmallValue(i)).data());
    model[k] = SmallValue(i);
  }
  EXPECT_GT(table.memory(), memory_before);
  EXPECT_GE(table.memory(), 3000 * s.entry_size());
  // Overwrite every other key after the growth.
  uint32_t i = 0;
  for (auto& [k, v] : model) {
    if (i++ % 2 == 0) {
      v = SmallValue(1000000 + i);
      table.Add(Entry(k, v).data());
    }
  }
  EXPECT_EQ(table.records(), 3000u + 1500u);
  EXPECT_EQ(Diff(table, s, model, {SmallKey(100001), SmallKey(100002)}), "");
}

TEST(LogTable, GrowsWithAFullWidthHash) {
  const Schema s = WideSchema();
  LogTable table(s);
  Model model;
  for (uint32_t i = 0; i < 5000; ++i) {
    const std::string k = SmallKey(i);
    table.Add(Entry(k, SmallValue(i * 3)).data());
    model[k] = SmallValue(i * 3);
  }
  EXPECT_EQ(
      Diff(table, s, model, {SmallKey(5000), SmallKey(5001), SmallKey(99999)}),
      "");
}

// Finds scan one mark byte per slot before reading a slot: with 20000 keys
// and 20000 absent ones, absent keys meet marks equal to theirs (1 in 255 per
// occupied slot scanned) and are still not found; every present key is.
TEST(LogTable, MarksOnlyNarrowTheSearch) {
  const Schema s = WideSchema();
  LogTable table(s);
  Model model;
  std::vector<std::string> absent;
  for (uint32_t i = 0; i < 20000; ++i) {
    const std::string k = SmallKey(2 * i);
    table.Add(Entry(k, SmallValue(i)).data());
    model[k] = SmallValue(i);
    absent.push_back(SmallKey(2 * i + 1));
  }
  EXPECT_EQ(Diff(table, s, model, absent), "");
}

TEST(LogTable, ClearEmptiesAndStaysUsable) {
  const Schema s = TinySchema();
  LogTable table(s);
  for (uint32_t i = 0; i < 100; ++i)
    table.Add(Entry(SmallKey(i), SmallValue(i)).data());
  const size_t full = table.memory();
  table.Clear();
  EXPECT_EQ(table.cardinal(), 0u);
  EXPECT_EQ(table.records(), 0u);
  EXPECT_LT(table.memory(), full);
  EXPECT_EQ(Diff(table, s, {}, Pool(100)), "");
  table.Add(Entry(SmallKey(7), SmallValue(70)).data());
  EXPECT_EQ(Diff(table, s, {{SmallKey(7), SmallValue(70)}}, Pool(100)), "");
  EXPECT_EQ(table.records(), 1u);
}

// Reserve makes room once: the records it was told of then fit without the
// table's memory moving, and a reserve on a table that already holds keys
// (which rehashes them into a larger table) keeps every one of them.
TEST(LogTable, ReserveMakesRoomForTheRecordsItIsToldOf) {
  const Schema s = WideSchema();
  LogTable table(s);
  Model model;
  for (uint32_t i = 0; i < 50; ++i) {
    const std::string k = SmallKey(i);
    table.Add(Entry(k, SmallValue(i)).data());
    model[k] = SmallValue(i);
  }
  table.Reserve(2000);
  const size_t reserved = table.memory();
  EXPECT_GE(reserved, 2050 * s.entry_size());
  EXPECT_EQ(Diff(table, s, model, {SmallKey(5000)}), "");
  for (uint32_t i = 50; i < 2050; ++i) {
    const std::string k = SmallKey(i);
    table.Add(Entry(k, SmallValue(i + 7)).data());
    model[k] = SmallValue(i + 7);
  }
  EXPECT_EQ(table.memory(), reserved);
  EXPECT_EQ(table.cardinal(), 2050u);
  EXPECT_EQ(Diff(table, s, model, {SmallKey(5000), SmallKey(5001)}), "");
  // Past what was reserved, it grows as before.
  table.Add(Entry(SmallKey(9000), SmallValue(1)).data());
  model[SmallKey(9000)] = SmallValue(1);
  EXPECT_GT(table.memory(), reserved);
  EXPECT_EQ(Diff(table, s, model, {SmallKey(5000)}), "");
}

TEST(LogTable, EmptyValues) {
  Schema s = TinySchema();
  s.value_size = 0;
  LogTable table(s);
  table.Add(SmallKey(1).data());
  table.Add(SmallKey(5).data());
  table.Add(SmallKey(1).data());
  EXPECT_EQ(table.cardinal(), 2u);
  EXPECT_EQ(table.records(), 3u);
  ASSERT_NE(table.Find(SmallKey(5), TinyHash(SmallKey(5))), nullptr);
  EXPECT_EQ(table.Find(SmallKey(9), TinyHash(SmallKey(9))), nullptr);
  EXPECT_EQ(table.SortedByHash().size(), 2u);
}

// The table against a std::map, after every add.
RC_GTEST_PROP(LogTableModel, NewestValuePerKey, ()) {
  const Schema s = TinySchema();
  const uint32_t pool = *rc::gen::inRange<uint32_t>(1, 24);
  const auto adds =
      *rc::gen::container<std::vector<std::pair<uint32_t, uint32_t>>>(
          rc::gen::pair(rc::gen::inRange<uint32_t>(0, pool),
                        rc::gen::arbitrary<uint32_t>()));
  const std::vector<std::string> keys = Pool(pool + 2);
  LogTable table(s);
  Model model;
  for (const auto& [k, v] : adds) {
    table.Add(Entry(SmallKey(k), SmallValue(v)).data());
    model[SmallKey(k)] = SmallValue(v);
    RC_ASSERT(Diff(table, s, model, keys) == "");
  }
  RC_ASSERT(table.records() == adds.size());
  if (*rc::gen::arbitrary<bool>()) {
    table.Clear();
    model.clear();
    RC_ASSERT(Diff(table, s, model, keys) == "");
  }
}

// SortedByHash with hashes of every width, including one that lies about its
// width (a hash function returning more bits than the schema declares).
uint64_t Hash20(absl::string_view key) { return Xxh3KeyHash64(key) >> 44; }
uint64_t Hash30(absl::string_view key) { return Xxh3KeyHash64(key) >> 34; }
uint64_t Hash16(absl::string_view key) { return Xxh3KeyHash64(key) >> 48; }

RC_GTEST_PROP(LogTableModel, SortedByHashForEveryHashWidth, ()) {
  struct Width {
    int bits;
    KeyHashFn hash;
  };
  const Width widths[] = {{2, &TinyHash},       {16, &Hash16},
                          {20, &Hash20},        {30, &Hash30},
                          {64, &Xxh3KeyHash64}, {12, &Hash20}};  // last: lies
  const Width w = *rc::gen::elementOf(
      std::vector<Width>(std::begin(widths), std::end(widths)));
  Schema s = TinySchema();
  s.hash_bits = w.bits;
  s.hash = w.hash;
  // Logs of thousands of keys, so that the sort's buckets hold several.
  const uint32_t pool = *rc::gen::inRange<uint32_t>(1, 1 << 20);
  const uint32_t adds = *rc::gen::inRange<uint32_t>(0, 4000);
  uint32_t seed = *rc::gen::arbitrary<uint32_t>();
  LogTable table(s);
  Model model;
  for (uint32_t i = 0; i < adds; ++i) {
    seed = seed * 1103515245u + 12345u;
    const uint32_t k = (seed >> 4) % pool;
    table.Add(Entry(SmallKey(k), SmallValue(i)).data());
    model[SmallKey(k)] = SmallValue(i);
  }
  RC_ASSERT(Diff(table, s, model) == "");
}

// ---------------------------------------------------------------------------------
// Log.

constexpr char kDir[] = "/s/index";
constexpr char kLogPath[] = "/s/index/log";

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(env_.CreateDirs(kDir)); }

  std::unique_ptr<Log> OpenRw(bool fresh = false, int64_t generation = 0,
                              IndexFile::FlushCallback cb = nullptr) {
    auto log = Log::OpenReadWrite(&env_, kLogPath, schema_, fresh, generation,
                                  std::move(cb));
    EXPECT_OK(log);
    return log.ok() ? *std::move(log) : nullptr;
  }
  std::unique_ptr<Log> OpenRo() {
    auto log = Log::OpenReadOnly(&env_, kLogPath, schema_);
    EXPECT_OK(log);
    return log.ok() ? *std::move(log) : nullptr;
  }

  MemEnv env_;
  Schema schema_ = TinySchema();
};

TEST_F(LogTest, OpenReadWriteCreatesAnEmptyLog) {
  std::unique_ptr<Log> log = OpenRw(false, 7);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 7);
  EXPECT_EQ(log->table().cardinal(), 0u);
  EXPECT_EQ(log->file().offset(), 0u);
  EXPECT_EQ(log->file().path(), kLogPath);
  absl::StatusOr<std::string> bytes = env_.Contents(kLogPath);
  ASSERT_OK(bytes);
  EXPECT_EQ(bytes->size(), IndexFile::kHeaderSize);
}

// With checksums, records of a flush whose pages a power cut kept from the
// disk (zeros here) are hidden from readers and cut by the next writer; a
// writer without checksums removes the sidecar and reads the log as it is.
// A fresh log (a merge's log_async) removes a journal of the file's earlier
// life before it writes its fresh header: a reader opening the fresh file
// before the writer's new journal is in place must not show that journal's
// records.
TEST_F(LogTest, AFreshLogRemovesAnEarlierJournalBeforeItsHeader) {
  {
    auto log = Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr,
                                  /*checksums=*/true);
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append(SmallKey(1), SmallValue(1)));
    ASSERT_OK((*log)->Flush({.with_fsync = true}));
    // No close: the journal stays, as after a crash.
  }
  // The fresh open stops before its new journal is renamed in.
  env_.InjectError(kOpRename, 0, 1, absl::InternalError("EIO"));
  EXPECT_FALSE(Log::OpenReadWrite(&env_, kLogPath, schema_, /*fresh=*/true, 0,
                                  nullptr, /*checksums=*/true)
                   .ok());
  env_.ClearInjectedErrors();
  std::unique_ptr<Log> reader = OpenRo();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->table().cardinal(), 0u);
}

TEST_F(LogTest, ChecksumsHideWhatTheJournalDoesNotVouchFor) {
  {
    auto log = Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr,
                                  /*checksums=*/true);
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append(SmallKey(1), SmallValue(1)));
    ASSERT_OK((*log)->Flush());
    ASSERT_OK((*log)->Append(SmallKey(2), SmallValue(2)));
    ASSERT_OK((*log)->Flush());
  }
  absl::StatusOr<std::string> bytes = env_.Contents(kLogPath);
  ASSERT_OK(bytes);
  const size_t entry = schema_.entry_size();
  // The second record as a power cut may leave it, and its frame in the
  // journal (neither was fsynced): zeros.
  const size_t records_end = IndexFile::kHeaderSize + 2 * entry;
  ASSERT_EQ(bytes->size(), records_end);
  bytes->replace(records_end - entry, entry, std::string(entry, '\0'));
  env_.SetContents(kLogPath, *bytes);
  const std::string journal_path = FlushSums::PathFor(kLogPath);
  absl::StatusOr<std::string> journal = env_.Contents(journal_path);
  ASSERT_OK(journal);
  const size_t second_frame =
      FlushSums::kHeaderSize + FlushSums::kFrameHeaderSize + entry;
  ASSERT_GT(journal->size(), second_frame);
  journal->replace(second_frame, journal->size() - second_frame,
                   std::string(journal->size() - second_frame, '\0'));
  env_.SetContents(journal_path, *journal);

  std::unique_ptr<Log> reader = OpenRo();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->table().cardinal(), 1u);
  EXPECT_NE(reader->Find(SmallKey(1), schema_.hash(SmallKey(1))), nullptr);

  auto writer = Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr,
                                   /*checksums=*/true);
  ASSERT_OK(writer);
  EXPECT_EQ((*writer)->table().cardinal(), 1u);
  EXPECT_EQ((*writer)->file().offset(), entry);
  ASSERT_OK((*writer)->file().Close());
  writer->reset();

  // Then a writer without checksums: the journal goes.
  {
    auto log = Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr,
                                  /*checksums=*/true);
    ASSERT_OK(log);
    ASSERT_OK((*log)->Append(SmallKey(3), SmallValue(3)));
    ASSERT_OK((*log)->Flush());
  }
  std::unique_ptr<Log> plain = OpenRw();
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->table().cardinal(), 2u);
  absl::StatusOr<bool> sidecar = env_.FileExists(FlushSums::PathFor(kLogPath));
  ASSERT_OK(sidecar);
  EXPECT_FALSE(*sidecar);
}

TEST_F(LogTest, OpenReadOnlyOfAMissingLogIsNull) {
  absl::StatusOr<std::unique_ptr<Log>> log =
      Log::OpenReadOnly(&env_, kLogPath, schema_);
  ASSERT_OK(log);
  EXPECT_EQ(*log, nullptr);
}

TEST_F(LogTest, OpenReadOnlyOfAForeignFileIsDataLoss) {
  env_.SetContents(kLogPath, std::string(64, 'x'));
  absl::StatusOr<std::unique_ptr<Log>> log =
      Log::OpenReadOnly(&env_, kLogPath, schema_);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(kLogPath)));
  absl::StatusOr<std::unique_ptr<Log>> rw =
      Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr);
  ASSERT_FALSE(rw.ok());
  EXPECT_THAT(rw.status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(kLogPath)));
}

// A damaged header that claims a fan-out table (byte 31 set: 8 bytes) would
// shift every record; both opens refuse it and name the field, and the file
// is left as it was.
TEST_F(LogTest, HeaderWithAFanoutIsDataLossNamingTheField) {
  {
    std::unique_ptr<Log> log = OpenRw(false, 3);
    ASSERT_NE(log, nullptr);
    for (uint32_t i = 0; i < 4; ++i) {
      ASSERT_OK(log->Append(SmallKey(i), SmallValue(i)));
    }
    ASSERT_OK(log->Flush());
  }
  absl::StatusOr<std::string> bytes = env_.Contents(kLogPath);
  ASSERT_OK(bytes);
  std::string damaged = *bytes;
  damaged[31] = '\x08';
  env_.SetContents(kLogPath, damaged);
  absl::StatusOr<std::unique_ptr<Log>> ro =
      Log::OpenReadOnly(&env_, kLogPath, schema_);
  EXPECT_THAT(
      ro.status(),
      StatusIs(absl::StatusCode::kDataLoss,
               HasSubstr(absl::StrCat(kLogPath, ": header field fan_size"))));
  absl::StatusOr<std::unique_ptr<Log>> rw =
      Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr);
  EXPECT_THAT(rw.status(), StatusIs(absl::StatusCode::kDataLoss,
                                    HasSubstr("a log has no fan-out table")));
  absl::StatusOr<std::string> after = env_.Contents(kLogPath);
  ASSERT_OK(after);
  EXPECT_EQ(*after, damaged);
}

TEST_F(LogTest, AppendIsFoundBeforeAnyFlush) {
  std::unique_ptr<Log> log = OpenRw();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(SmallKey(1), SmallValue(10)));
  ASSERT_OK(log->AppendEntry(Entry(SmallKey(5), SmallValue(50)).data()));
  ASSERT_OK(log->Append(SmallKey(1), SmallValue(11)));
  EXPECT_EQ(Diff(log->table(), schema_,
                 {{SmallKey(1), SmallValue(11)}, {SmallKey(5), SmallValue(50)}},
                 Pool(10)),
            "");
  const char* e = log->Find(SmallKey(1), TinyHash(SmallKey(1)));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(EntryValue(schema_, e), SmallValue(11));
  EXPECT_EQ(log->table().records(), 3u);
  EXPECT_EQ(log->file().offset(), 3 * schema_.entry_size());
  EXPECT_EQ(log->file().flushed_offset(), 0u);
  // LoadNewRecords on the writer: nothing new (its buffer is already loaded).
  ASSERT_OK(log->LoadNewRecords());
  EXPECT_EQ(log->table().records(), 3u);
}

TEST_F(LogTest, ReopenLoadsFlushedRecordsOnly) {
  {
    std::unique_ptr<Log> log = OpenRw(false, 3);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(SmallKey(1), SmallValue(1)));
    ASSERT_OK(log->Append(SmallKey(5), SmallValue(5)));
    ASSERT_OK(log->Append(SmallKey(1), SmallValue(2)));
    ASSERT_OK(log->file().Flush());
    ASSERT_OK(log->Append(SmallKey(9), SmallValue(9)));  // never flushed
    ASSERT_OK(log->Append(SmallKey(5), SmallValue(6)));  // never flushed
  }
  std::unique_ptr<Log> log = OpenRw(false, 99);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 3);  // the header is kept, not rewritten
  EXPECT_EQ(log->table().records(), 3u);
  EXPECT_EQ(Diff(log->table(), schema_,
                 {{SmallKey(1), SmallValue(2)}, {SmallKey(5), SmallValue(5)}},
                 Pool(12)),
            "");
}

TEST_F(LogTest, FreshReopenDiscardsRecords) {
  {
    std::unique_ptr<Log> log = OpenRw(false, 3);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(SmallKey(1), SmallValue(1)));
    ASSERT_OK(log->file().Flush());
  }
  std::unique_ptr<Log> log = OpenRw(/*fresh=*/true, 4);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 4);
  EXPECT_EQ(Diff(log->table(), schema_, {}, Pool(4)), "");
}

TEST_F(LogTest, FlushCallbackRunsOnlyWhenRecordsAreWritten) {
  int calls = 0;
  std::unique_ptr<Log> log = OpenRw(false, 0, [&] { ++calls; });
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->file().Flush());
  EXPECT_EQ(calls, 0);
  ASSERT_OK(log->Append(SmallKey(1), SmallValue(1)));
  EXPECT_EQ(calls, 0);
  ASSERT_OK(log->file().Flush());
  EXPECT_EQ(calls, 1);
  ASSERT_OK(log->file().Flush());
  EXPECT_EQ(calls, 1);
}

TEST_F(LogTest, ReadOnlySeesFlushedRecordsAndCatchesUp) {
  std::unique_ptr<Log> rw = OpenRw(false, 5);
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(SmallKey(1), SmallValue(1)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Append(SmallKey(2), SmallValue(2)));  // buffered only

  std::unique_ptr<Log> ro = OpenRo();
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->generation(), 5);
  EXPECT_EQ(Diff(ro->table(), schema_, {{SmallKey(1), SmallValue(1)}}, Pool(8)),
            "");

  // Without a header refresh there is nothing pending.
  ASSERT_OK(rw->file().Flush());
  absl::StatusOr<std::string> pending = ro->ReadPending();
  ASSERT_OK(pending);
  EXPECT_EQ(*pending, "");

  ASSERT_OK(rw->Append(SmallKey(1), SmallValue(3)));
  ASSERT_OK(rw->Append(SmallKey(6), SmallValue(6)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Append(SmallKey(7), SmallValue(7)));  // buffered only
  ASSERT_OK(ro->file().ReadHeader());
  pending = ro->ReadPending();
  ASSERT_OK(pending);
  EXPECT_EQ(*pending, Entry(SmallKey(2), SmallValue(2)) +
                          Entry(SmallKey(1), SmallValue(3)) +
                          Entry(SmallKey(6), SmallValue(6)));
  // Reading does not change the table; adding does.
  EXPECT_EQ(ro->table().records(), 1u);
  ro->AddRecords(*pending);
  EXPECT_EQ(ro->table().records(), 4u);
  EXPECT_EQ(Diff(ro->table(), schema_,
                 {{SmallKey(1), SmallValue(3)},
                  {SmallKey(2), SmallValue(2)},
                  {SmallKey(6), SmallValue(6)}},
                 Pool(8)),
            "");

  // LoadNewRecords does both steps.
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(ro->file().ReadHeader());
  ASSERT_OK(ro->LoadNewRecords());
  EXPECT_EQ(Diff(ro->table(), schema_,
                 {{SmallKey(1), SmallValue(3)},
                  {SmallKey(2), SmallValue(2)},
                  {SmallKey(6), SmallValue(6)},
                  {SmallKey(7), SmallValue(7)}},
                 Pool(8)),
            "");
}

TEST_F(LogTest, AddRecordsIgnoresAPartialTrailingRecord) {
  std::unique_ptr<Log> rw = OpenRw();
  ASSERT_NE(rw, nullptr);
  const std::string one = Entry(SmallKey(1), SmallValue(1));
  const std::string two = Entry(SmallKey(2), SmallValue(2));
  rw->AddRecords(one + two.substr(0, 3));
  EXPECT_EQ(rw->table().records(), 1u);
  EXPECT_EQ(Diff(rw->table(), schema_, {{SmallKey(1), SmallValue(1)}}, Pool(4)),
            "");
}

TEST_F(LogTest, ReadOnlyAfterClearReportsTheOffsetGoingBack) {
  std::unique_ptr<Log> rw = OpenRw(false, 1);
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(SmallKey(1), SmallValue(1)));
  ASSERT_OK(rw->Append(SmallKey(2), SmallValue(2)));
  ASSERT_OK(rw->file().Flush());
  std::unique_ptr<Log> ro = OpenRo();
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->table().cardinal(), 2u);

  bool hook_ran = false;
  ASSERT_OK(rw->Clear(2, /*reopen=*/true, [&] { hook_ran = true; }));
  EXPECT_TRUE(hook_ran);
  EXPECT_EQ(rw->generation(), 2);
  EXPECT_EQ(rw->file().offset(), 0u);
  EXPECT_EQ(Diff(rw->table(), schema_, {}, Pool(4)), "");

  // The old inode was stamped {offset 0, generation 2}: the reader notices.
  absl::StatusOr<IndexFile::Header> header = ro->file().ReadHeader();
  ASSERT_OK(header);
  EXPECT_EQ(header->generation, 2);
  EXPECT_EQ(header->offset, 0);
  absl::StatusOr<std::string> pending = ro->ReadPending();
  ASSERT_FALSE(pending.ok());
  EXPECT_THAT(pending.status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(kLogPath)));

  // The writer keeps working on the new file.
  ASSERT_OK(rw->Append(SmallKey(3), SmallValue(3)));
  ASSERT_OK(rw->file().Flush());
  std::unique_ptr<Log> fresh_ro = OpenRo();
  ASSERT_NE(fresh_ro, nullptr);
  EXPECT_EQ(fresh_ro->generation(), 2);
  EXPECT_EQ(
      Diff(fresh_ro->table(), schema_, {{SmallKey(3), SmallValue(3)}}, Pool(4)),
      "");
}

TEST_F(LogTest, ClearWithoutReopenRemovesTheFile) {
  std::unique_ptr<Log> rw = OpenRw();
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(SmallKey(1), SmallValue(1)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Clear(9, /*reopen=*/false));
  EXPECT_EQ(rw->table().cardinal(), 0u);
  EXPECT_EQ(rw->table().records(), 0u);
  absl::StatusOr<bool> exists = env_.FileExists(kLogPath);
  ASSERT_OK(exists);
  EXPECT_FALSE(*exists);
}

// A merge's commit: the log becomes a copy of log_async's file, built
// aside, and takes log_async's table, whose keys it then finds.
TEST_F(LogTest, ReplaceWithTakesTheSourcesTable) {
  constexpr char kAsyncPath[] = "/s/index/log_async";
  std::unique_ptr<Log> log = OpenRw(false, 3);
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(SmallKey(1), SmallValue(1)));
  ASSERT_OK(log->Flush(FlushOptions{.with_fsync = true}));
  auto async = Log::OpenReadWrite(&env_, kAsyncPath, schema_, true, 4, nullptr);
  ASSERT_OK(async);
  Model model;
  for (uint32_t i = 0; i < 6; ++i) {  // key 2 twice: its newest value wins
    const uint32_t k = 2 + i % 5;
    ASSERT_OK((*async)->Append(SmallKey(k), SmallValue(10 + i)));
    model[SmallKey(k)] = SmallValue(10 + i);
  }
  absl::StatusOr<std::unique_ptr<IndexFile::Replacement>> next =
      IndexFile::Replacement::Create(&env_, kLogPath, 4);
  ASSERT_OK(next);
  // Not all of log_async's records copied: refused, nothing changed.
  ASSERT_OK((*async)->Flush());
  ASSERT_OK((*next)->CopyFrom((*async)->file().reader(), 8));
  ASSERT_OK((*next)->Sync());
  EXPECT_THAT(
      log->ReplaceWith(**next, **async),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(kAsyncPath)));
  EXPECT_EQ(log->generation(), 3);
  EXPECT_EQ(log->table().cardinal(), 1u);

  ASSERT_OK(
      (*next)->CopyFrom((*async)->file().reader(), (*async)->file().offset()));
  ASSERT_OK((*next)->Sync());
  ASSERT_OK(log->ReplaceWith(**next, **async));
  EXPECT_EQ(log->generation(), 4);
  EXPECT_EQ(Diff(log->table(), schema_, model, {SmallKey(1)}), "");
  EXPECT_EQ((*async)->table().records(), 0u);
  // The file holds what the table holds: a reopen finds the same.
  log.reset();
  std::unique_ptr<Log> reopened = OpenRw();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(Diff(reopened->table(), schema_, model, {SmallKey(1)}), "");
}

TEST_F(LogTest, ReadOnlyRefusesToAppend) {
  {
    std::unique_ptr<Log> rw = OpenRw();
    ASSERT_NE(rw, nullptr);
  }
  std::unique_ptr<Log> ro = OpenRo();
  ASSERT_NE(ro, nullptr);
  const absl::Status s = ro->Append(SmallKey(1), SmallValue(1));
  EXPECT_THAT(
      s, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(kLogPath)));
  EXPECT_EQ(ro->table().cardinal(), 0u);
  EXPECT_EQ(ro->Find(SmallKey(1), TinyHash(SmallKey(1))), nullptr);
}

TEST_F(LogTest, FailedAutoFlushKeepsFileAndTableInStep) {
  // Big values so that the auto-flush threshold comes after ~1000 appends.
  schema_.value_size = 1000;
  std::unique_ptr<Log> rw = OpenRw();
  ASSERT_NE(rw, nullptr);
  env_.InjectError(kOpWrite, 0, -1, absl::ResourceExhaustedError("ENOSPC"));
  absl::Status s;
  uint32_t i = 0;
  for (; i < 5000; ++i) {
    s = rw->Append(SmallKey(i), std::string(schema_.value_size, 'v'));
    if (!s.ok()) break;
  }
  env_.ClearInjectedErrors();
  ASSERT_FALSE(s.ok()) << "no auto-flush after " << i << " appends";
  EXPECT_THAT(
      s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(kLogPath)));
  // The record stays in the write buffer, so the table shows it too...
  EXPECT_NE(rw->Find(SmallKey(i), TinyHash(SmallKey(i))), nullptr);
  EXPECT_EQ(rw->table().cardinal(), i + 1);
  // ...and once a flush succeeds, a reopened log holds exactly the same
  // bindings.
  ASSERT_OK(rw->file().Flush());
  EXPECT_EQ(rw->table().records() * schema_.entry_size(), rw->file().offset());
  rw.reset();
  std::unique_ptr<Log> reopened = OpenRw();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->table().cardinal(), i + 1);
  EXPECT_NE(reopened->Find(SmallKey(i), TinyHash(SmallKey(i))), nullptr);
}

// ---------------------------------------------------------------------------------
// Log against a model: a writer, a long-lived reader and reopenings.

RC_GTEST_PROP(LogModel, WriterReaderAndReopenAgreeWithTheModel, ()) {
  const Schema s = TinySchema();
  const uint32_t pool = *rc::gen::inRange<uint32_t>(1, 20);
  // (kind, key, value): kind 0 flush, 1 reader sync, 2 fresh reader, else
  // append.
  const auto ops =
      *rc::gen::container<std::vector<std::tuple<int, uint32_t, uint32_t>>>(
          rc::gen::tuple(rc::gen::inRange(0, 12),
                         rc::gen::inRange<uint32_t>(0, pool),
                         rc::gen::arbitrary<uint32_t>()));
  const std::vector<std::string> keys = Pool(pool + 2);
  const int64_t generation = *rc::gen::inRange<int64_t>(0, 1000);

  MemEnv env;
  RC_ASSERT(env.CreateDirs(kDir).ok());
  auto opened = Log::OpenReadWrite(&env, kLogPath, s, /*fresh=*/false,
                                   generation, nullptr);
  RC_ASSERT(opened.ok());
  std::unique_ptr<Log> rw = *std::move(opened);
  auto ro_opened = Log::OpenReadOnly(&env, kLogPath, s);
  RC_ASSERT(ro_opened.ok());
  std::unique_ptr<Log> ro = *std::move(ro_opened);
  RC_ASSERT(ro != nullptr);

  Model written;      // everything appended
  Model flushed;      // as of the last flush
  Model reader_view;  // what `ro` should show
  uint64_t appends = 0;
  uint64_t flushed_appends = 0;
  for (const auto& [kind, k, v] : ops) {
    if (kind == 0) {
      RC_ASSERT(rw->file().Flush().ok());
      flushed = written;
      flushed_appends = appends;
    } else if (kind == 1) {
      auto header = ro->file().ReadHeader();
      RC_ASSERT(header.ok());
      RC_ASSERT(header->generation == generation);
      // Until the records are added the reader still shows the old view.
      auto pending = ro->ReadPending();
      RC_ASSERT(pending.ok());
      RC_ASSERT(Diff(ro->table(), s, reader_view, keys) == "");
      ro->AddRecords(*pending);
      reader_view = flushed;
      RC_ASSERT(ro->table().records() == flushed_appends);
    } else if (kind == 2) {
      auto fresh = Log::OpenReadOnly(&env, kLogPath, s);
      RC_ASSERT(fresh.ok());
      RC_ASSERT(*fresh != nullptr);
      RC_ASSERT(Diff((*fresh)->table(), s, flushed, keys) == "");
      RC_ASSERT((*fresh)->table().records() == flushed_appends);
    } else {
      RC_ASSERT(rw->Append(SmallKey(k), SmallValue(v)).ok());
      written[SmallKey(k)] = SmallValue(v);
      ++appends;
    }
    RC_ASSERT(Diff(rw->table(), s, written, keys) == "");
    RC_ASSERT(Diff(ro->table(), s, reader_view, keys) == "");
    RC_ASSERT(rw->table().records() == appends);
  }

  // Reopen the writer: what was flushed comes back, last write winning.
  rw.reset();
  auto reopened = Log::OpenReadWrite(&env, kLogPath, s, /*fresh=*/false,
                                     generation + 1, nullptr);
  RC_ASSERT(reopened.ok());
  RC_ASSERT((*reopened)->generation() == generation);
  RC_ASSERT(Diff((*reopened)->table(), s, flushed, keys) == "");
  RC_ASSERT((*reopened)->table().records() == flushed_appends);
}

}  // namespace
}  // namespace kvindex
