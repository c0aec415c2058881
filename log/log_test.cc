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
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "data/schema.h"
#include "log/log_table.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

#define ASSERT_OK(expr)              \
  do {                               \
    const absl::Status _st = (expr); \
    ASSERT_TRUE(_st.ok()) << _st;    \
  } while (0)
#define EXPECT_OK(expr)              \
  do {                               \
    const absl::Status _st = (expr); \
    EXPECT_TRUE(_st.ok()) << _st;    \
  } while (0)

// ---------------------------------------------------------------------------------
// Schemas and keys.

// A hash with two significant bits: a quarter of all keys collide with each
// other, so the table's probing and the equal-hash paths are exercised all the
// time.
uint64_t TinyHash(absl::string_view key) {
  return static_cast<unsigned char>(key[0]) & 3;
}

constexpr size_t kKeySize = 4;
constexpr size_t kValueSize = 4;

Schema TinySchema() {
  Schema s;
  s.key_size = kKeySize;
  s.value_size = kValueSize;
  s.hash_bits = 2;
  s.hash = &TinyHash;
  return s;
}

Schema WideSchema() {
  Schema s;
  s.key_size = kKeySize;
  s.value_size = kValueSize;
  s.hash_bits = 64;
  s.hash = &Xxh3KeyHash64;
  return s;
}

// Key number `i` of the pool: its first byte decides the tiny hash, the last
// one separates keys whose first byte is equal.
std::string Key(uint32_t i) {
  std::string k(kKeySize, '\0');
  k[0] = static_cast<char>(i & 0xff);
  k[1] = 'k';
  k[2] = static_cast<char>((i >> 8) & 0xff);
  k[3] = static_cast<char>((i >> 16) & 0xff);
  return k;
}

std::string Value(uint32_t v) {
  std::string out(kValueSize, '\0');
  for (size_t j = 0; j < kValueSize; ++j) {
    out[j] = static_cast<char>((v >> (8 * j)) & 0xff);
  }
  return out;
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
  for (uint32_t i = 0; i < n; ++i) keys.push_back(Key(i));
  return keys;
}

// ---------------------------------------------------------------------------------
// LogTable.

TEST(LogTable, EmptyTableFindsNothing) {
  const Schema s = TinySchema();
  LogTable table(s);
  EXPECT_EQ(table.cardinal(), 0u);
  EXPECT_EQ(table.records(), 0u);
  EXPECT_EQ(table.Find(Key(1), TinyHash(Key(1))), nullptr);
  EXPECT_TRUE(table.SortedByHash().empty());
  int calls = 0;
  table.ForEach([&](const char*) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(Diff(table, s, {}, Pool(8)), "");
}

TEST(LogTable, AddThenFind) {
  const Schema s = TinySchema();
  LogTable table(s);
  const std::string e = Entry(Key(5), Value(0xdeadbeef));
  table.Add(e.data());
  const char* found = table.Find(Key(5), TinyHash(Key(5)));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(std::string(found, s.entry_size()), e);
  // The table keeps its own copy.
  EXPECT_NE(found, e.data());
  EXPECT_EQ(table.cardinal(), 1u);
  EXPECT_EQ(table.records(), 1u);
  // Same hash (5 & 3 == 1 & 3), different key.
  EXPECT_EQ(table.Find(Key(1), TinyHash(Key(1))), nullptr);
}

TEST(LogTable, LastWriteWinsAndDuplicatesCountOnce) {
  const Schema s = TinySchema();
  LogTable table(s);
  for (uint32_t v = 0; v < 5; ++v) {
    table.Add(Entry(Key(2), Value(v)).data());
  }
  table.Add(Entry(Key(6), Value(100)).data());  // collides with Key(2)
  table.Add(Entry(Key(2), Value(42)).data());
  EXPECT_EQ(table.cardinal(), 2u);
  EXPECT_EQ(table.records(), 7u);
  EXPECT_EQ(
      Diff(table, s, {{Key(2), Value(42)}, {Key(6), Value(100)}}, Pool(16)),
      "");
}

TEST(LogTable, AddWithExplicitHash) {
  const Schema s = TinySchema();
  LogTable table(s);
  const std::string k = Key(3);
  table.Add(Entry(k, Value(1)).data(), TinyHash(k));
  table.Add(Entry(k, Value(2)).data(), TinyHash(k));
  EXPECT_EQ(Diff(table, s, {{k, Value(2)}}), "");
}

TEST(LogTable, GrowsPastManyCollidingKeys) {
  // 3000 distinct keys over 4 hash values: the table has to grow many times,
  // and every probe runs through long collision chains.
  const Schema s = TinySchema();
  LogTable table(s);
  Model model;
  const size_t memory_before = table.memory();
  for (uint32_t i = 0; i < 3000; ++i) {
    const std::string k = Key(i * 7919 % 100000);
    table.Add(Entry(k, Value(i)).data());
    model[k] = Value(i);
  }
  EXPECT_GT(table.memory(), memory_before);
  EXPECT_GE(table.memory(), 3000 * s.entry_size());
  // Overwrite every other key after the growth.
  uint32_t i = 0;
  for (auto& [k, v] : model) {
    if (i++ % 2 == 0) {
      v = Value(1000000 + i);
      table.Add(Entry(k, v).data());
    }
  }
  EXPECT_EQ(table.records(), 3000u + 1500u);
  EXPECT_EQ(Diff(table, s, model, {Key(100001), Key(100002)}), "");
}

TEST(LogTable, GrowsWithAFullWidthHash) {
  const Schema s = WideSchema();
  LogTable table(s);
  Model model;
  for (uint32_t i = 0; i < 5000; ++i) {
    const std::string k = Key(i);
    table.Add(Entry(k, Value(i * 3)).data());
    model[k] = Value(i * 3);
  }
  EXPECT_EQ(Diff(table, s, model, {Key(5000), Key(5001), Key(99999)}), "");
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
    const std::string k = Key(2 * i);
    table.Add(Entry(k, Value(i)).data());
    model[k] = Value(i);
    absent.push_back(Key(2 * i + 1));
  }
  EXPECT_EQ(Diff(table, s, model, absent), "");
}

TEST(LogTable, ClearEmptiesAndStaysUsable) {
  const Schema s = TinySchema();
  LogTable table(s);
  for (uint32_t i = 0; i < 100; ++i) table.Add(Entry(Key(i), Value(i)).data());
  const size_t full = table.memory();
  table.Clear();
  EXPECT_EQ(table.cardinal(), 0u);
  EXPECT_EQ(table.records(), 0u);
  EXPECT_LT(table.memory(), full);
  EXPECT_EQ(Diff(table, s, {}, Pool(100)), "");
  table.Add(Entry(Key(7), Value(70)).data());
  EXPECT_EQ(Diff(table, s, {{Key(7), Value(70)}}, Pool(100)), "");
  EXPECT_EQ(table.records(), 1u);
}

TEST(LogTable, EmptyValues) {
  Schema s = TinySchema();
  s.value_size = 0;
  LogTable table(s);
  table.Add(Key(1).data());
  table.Add(Key(5).data());
  table.Add(Key(1).data());
  EXPECT_EQ(table.cardinal(), 2u);
  EXPECT_EQ(table.records(), 3u);
  ASSERT_NE(table.Find(Key(5), TinyHash(Key(5))), nullptr);
  EXPECT_EQ(table.Find(Key(9), TinyHash(Key(9))), nullptr);
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
    table.Add(Entry(Key(k), Value(v)).data());
    model[Key(k)] = Value(v);
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
    table.Add(Entry(Key(k), Value(i)).data());
    model[Key(k)] = Value(i);
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
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }
  std::unique_ptr<Log> OpenRo() {
    auto log = Log::OpenReadOnly(&env_, kLogPath, schema_);
    EXPECT_TRUE(log.ok()) << log.status();
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
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->size(), IndexFile::kHeaderSize);
}

TEST_F(LogTest, OpenReadOnlyOfAMissingLogIsNull) {
  absl::StatusOr<std::unique_ptr<Log>> log =
      Log::OpenReadOnly(&env_, kLogPath, schema_);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*log, nullptr);
}

TEST_F(LogTest, OpenReadOnlyOfAForeignFileIsDataLoss) {
  env_.SetContents(kLogPath, std::string(64, 'x'));
  absl::StatusOr<std::unique_ptr<Log>> log =
      Log::OpenReadOnly(&env_, kLogPath, schema_);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(log.status().message(), HasSubstr(kLogPath));
  absl::StatusOr<std::unique_ptr<Log>> rw =
      Log::OpenReadWrite(&env_, kLogPath, schema_, false, 0, nullptr);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(rw.status().message(), HasSubstr(kLogPath));
}

TEST_F(LogTest, AppendIsFoundBeforeAnyFlush) {
  std::unique_ptr<Log> log = OpenRw();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Key(1), Value(10)));
  ASSERT_OK(log->AppendEntry(Entry(Key(5), Value(50)).data()));
  ASSERT_OK(log->Append(Key(1), Value(11)));
  EXPECT_EQ(Diff(log->table(), schema_,
                 {{Key(1), Value(11)}, {Key(5), Value(50)}}, Pool(10)),
            "");
  const char* e = log->Find(Key(1), TinyHash(Key(1)));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(EntryValue(schema_, e), Value(11));
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
    ASSERT_OK(log->Append(Key(1), Value(1)));
    ASSERT_OK(log->Append(Key(5), Value(5)));
    ASSERT_OK(log->Append(Key(1), Value(2)));
    ASSERT_OK(log->file().Flush());
    ASSERT_OK(log->Append(Key(9), Value(9)));  // never flushed
    ASSERT_OK(log->Append(Key(5), Value(6)));  // never flushed
  }
  std::unique_ptr<Log> log = OpenRw(false, 99);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->generation(), 3);  // the header is kept, not rewritten
  EXPECT_EQ(log->table().records(), 3u);
  EXPECT_EQ(Diff(log->table(), schema_,
                 {{Key(1), Value(2)}, {Key(5), Value(5)}}, Pool(12)),
            "");
}

TEST_F(LogTest, FreshReopenDiscardsRecords) {
  {
    std::unique_ptr<Log> log = OpenRw(false, 3);
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Key(1), Value(1)));
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
  ASSERT_OK(log->Append(Key(1), Value(1)));
  EXPECT_EQ(calls, 0);
  ASSERT_OK(log->file().Flush());
  EXPECT_EQ(calls, 1);
  ASSERT_OK(log->file().Flush());
  EXPECT_EQ(calls, 1);
}

TEST_F(LogTest, ReadOnlySeesFlushedRecordsAndCatchesUp) {
  std::unique_ptr<Log> rw = OpenRw(false, 5);
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(Key(1), Value(1)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Append(Key(2), Value(2)));  // buffered only

  std::unique_ptr<Log> ro = OpenRo();
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->generation(), 5);
  EXPECT_EQ(Diff(ro->table(), schema_, {{Key(1), Value(1)}}, Pool(8)), "");

  // Without a header refresh there is nothing pending.
  ASSERT_OK(rw->file().Flush());
  absl::StatusOr<std::string> pending = ro->ReadPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, "");

  ASSERT_OK(rw->Append(Key(1), Value(3)));
  ASSERT_OK(rw->Append(Key(6), Value(6)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Append(Key(7), Value(7)));  // buffered only
  ASSERT_TRUE(ro->file().ReadHeader().ok());
  pending = ro->ReadPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, Entry(Key(2), Value(2)) + Entry(Key(1), Value(3)) +
                          Entry(Key(6), Value(6)));
  // Reading does not change the table; adding does.
  EXPECT_EQ(ro->table().records(), 1u);
  ro->AddRecords(*pending);
  EXPECT_EQ(ro->table().records(), 4u);
  EXPECT_EQ(Diff(ro->table(), schema_,
                 {{Key(1), Value(3)}, {Key(2), Value(2)}, {Key(6), Value(6)}},
                 Pool(8)),
            "");

  // LoadNewRecords does both steps.
  ASSERT_OK(rw->file().Flush());
  ASSERT_TRUE(ro->file().ReadHeader().ok());
  ASSERT_OK(ro->LoadNewRecords());
  EXPECT_EQ(Diff(ro->table(), schema_,
                 {{Key(1), Value(3)},
                  {Key(2), Value(2)},
                  {Key(6), Value(6)},
                  {Key(7), Value(7)}},
                 Pool(8)),
            "");
}

TEST_F(LogTest, AddRecordsIgnoresAPartialTrailingRecord) {
  std::unique_ptr<Log> rw = OpenRw();
  ASSERT_NE(rw, nullptr);
  const std::string one = Entry(Key(1), Value(1));
  const std::string two = Entry(Key(2), Value(2));
  rw->AddRecords(one + two.substr(0, 3));
  EXPECT_EQ(rw->table().records(), 1u);
  EXPECT_EQ(Diff(rw->table(), schema_, {{Key(1), Value(1)}}, Pool(4)), "");
}

TEST_F(LogTest, ReadOnlyAfterClearReportsTheOffsetGoingBack) {
  std::unique_ptr<Log> rw = OpenRw(false, 1);
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(Key(1), Value(1)));
  ASSERT_OK(rw->Append(Key(2), Value(2)));
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
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->generation, 2);
  EXPECT_EQ(header->offset, 0);
  absl::StatusOr<std::string> pending = ro->ReadPending();
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(pending.status().message(), HasSubstr(kLogPath));

  // The writer keeps working on the new file.
  ASSERT_OK(rw->Append(Key(3), Value(3)));
  ASSERT_OK(rw->file().Flush());
  std::unique_ptr<Log> fresh_ro = OpenRo();
  ASSERT_NE(fresh_ro, nullptr);
  EXPECT_EQ(fresh_ro->generation(), 2);
  EXPECT_EQ(Diff(fresh_ro->table(), schema_, {{Key(3), Value(3)}}, Pool(4)),
            "");
}

TEST_F(LogTest, ClearWithoutReopenRemovesTheFile) {
  std::unique_ptr<Log> rw = OpenRw();
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(rw->Append(Key(1), Value(1)));
  ASSERT_OK(rw->file().Flush());
  ASSERT_OK(rw->Clear(9, /*reopen=*/false));
  EXPECT_EQ(rw->table().cardinal(), 0u);
  EXPECT_EQ(rw->table().records(), 0u);
  absl::StatusOr<bool> exists = env_.FileExists(kLogPath);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists);
}

TEST_F(LogTest, ReadOnlyRefusesToAppend) {
  {
    std::unique_ptr<Log> rw = OpenRw();
    ASSERT_NE(rw, nullptr);
  }
  std::unique_ptr<Log> ro = OpenRo();
  ASSERT_NE(ro, nullptr);
  const absl::Status s = ro->Append(Key(1), Value(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(kLogPath));
  EXPECT_EQ(ro->table().cardinal(), 0u);
  EXPECT_EQ(ro->Find(Key(1), TinyHash(Key(1))), nullptr);
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
    s = rw->Append(Key(i), std::string(schema_.value_size, 'v'));
    if (!s.ok()) break;
  }
  env_.ClearInjectedErrors();
  ASSERT_FALSE(s.ok()) << "no auto-flush after " << i << " appends";
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr(kLogPath));
  // The record stays in the write buffer, so the table shows it too...
  EXPECT_NE(rw->Find(Key(i), TinyHash(Key(i))), nullptr);
  EXPECT_EQ(rw->table().cardinal(), i + 1);
  // ...and once a flush succeeds, a reopened log holds exactly the same
  // bindings.
  ASSERT_TRUE(rw->file().Flush().ok());
  EXPECT_EQ(rw->table().records() * schema_.entry_size(), rw->file().offset());
  rw.reset();
  std::unique_ptr<Log> reopened = OpenRw();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->table().cardinal(), i + 1);
  EXPECT_NE(reopened->Find(Key(i), TinyHash(Key(i))), nullptr);
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
      RC_ASSERT(rw->Append(Key(k), Value(v)).ok());
      written[Key(k)] = Value(v);
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
