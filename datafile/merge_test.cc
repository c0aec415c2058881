#include "datafile/merge.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "datafile/test_run.h"
#include "fan/fan.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "log/log_table.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kDir[] = "/s/index";
constexpr char kDataPath[] = "/s/index/data";
constexpr char kMergePath[] = "/s/index/merge";

// ---------------------------------------------------------------------------------
// Schemas and keys: the small records of testing/keys.h, hashed by TinyHash
// (2 bits: runs of equal hashes everywhere) or MidHash (12 bits, from
// datafile/test_run.h: enough for a fan-out table with several buckets).

using test::MidSchema;
using test::TinyHash;
using test::TinySchema;
using Batch = test::SmallBatch;

// Key i: TinyHash = i & 3, MidHash = i & 0xfff.
std::string Key(uint32_t i) { return test::SmallKey(i); }
std::string Value(uint32_t v) { return test::SmallValue(v); }
uint32_t ValueNumber(absl::string_view value) {
  uint32_t v = 0;
  for (size_t j = 0; j < test::kSmallValueSize; ++j) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(value[j])) << (8 * j);
  }
  return v;
}
std::string Entry(const std::string& key, const std::string& value) {
  return key + value;
}

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}
uint64_t LoadBe64(absl::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
  return v;
}

using Model = std::map<std::string, std::string>;
using Keep = std::function<bool(absl::string_view, absl::string_view)>;

std::vector<std::string> Pool(uint32_t n) {
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < n; ++i) keys.push_back(Key(i));
  return keys;
}

// Compares the data file (and its bytes on disk at kDataPath) with `model`.
// Returns "" or the first difference.
std::string Diff(MemEnv* env, const std::shared_ptr<const DataFile>& data,
                 const Schema& s, const Model& model, int64_t generation,
                 const std::vector<std::string>& absent = {}) {
  if (model.empty()) {
    return data == nullptr ? "" : "a data file for an empty model";
  }
  if (data == nullptr) return "no data file";
  if (data->count() != model.size()) {
    return absl::StrCat("data has ", data->count(), " records, model ",
                        model.size());
  }
  if (data->generation() != generation) {
    return absl::StrCat("generation ", data->generation(), ", expected ",
                        generation);
  }
  // The two-step lookup of finds (Prefetch, then Find with the window it
  // returned, which checks the filter itself) must agree with the one-step one.
  auto find_in_two_steps = [&](const std::string& k) {
    return data->Find(k, data->Prefetch(s.hash(k)));
  };
  for (const auto& [k, v] : model) {
    const char* e = data->Find(k, s.hash(k));
    if (e == nullptr)
      return absl::StrCat("key #", ValueNumber(k), " not found");
    if (find_in_two_steps(k) != e) {
      return absl::StrCat("key #", ValueNumber(k),
                          ": the two-step lookup disagrees");
    }
    if (EntryKey(s, e) != k) return "Find returned another key";
    if (EntryValue(s, e) != v) {
      return absl::StrCat("key #", ValueNumber(k), ": value ",
                          ValueNumber(EntryValue(s, e)), ", expected ",
                          ValueNumber(v));
    }
  }
  for (const std::string& k : absent) {
    if (model.count(k) == 0 && (data->Find(k, s.hash(k)) != nullptr ||
                                find_in_two_steps(k) != nullptr)) {
      return absl::StrCat("key #", ValueNumber(k), " found but not in model");
    }
  }
  std::set<std::string> seen;
  for (uint64_t i = 0; i < data->count(); ++i) {
    const char* e = data->entry(i);
    const std::string k(EntryKey(s, e));
    if (!seen.insert(k).second) {
      return absl::StrCat("key #", ValueNumber(k), " appears twice");
    }
    if (i > 0 && s.hash(EntryKey(s, data->entry(i - 1))) > s.hash(k)) {
      return absl::StrCat("records not sorted by hash at ", i);
    }
    auto it = model.find(k);
    if (it == model.end()) return "record not in the model";
    if (EntryValue(s, e) != it->second) return "record with a stale value";
  }

  // The file itself: header and exported fan-out table.
  absl::StatusOr<std::string> bytes = env->Contents(kDataPath);
  if (!bytes.ok()) return bytes.status().ToString();
  if (bytes->size() < IndexFile::kHeaderSize) return "file too short";
  const uint64_t offset = LoadBe64(bytes->substr(0, 8));
  const int64_t file_generation =
      static_cast<int64_t>(LoadBe64(bytes->substr(16, 8)));
  const uint64_t fan_size = LoadBe64(bytes->substr(24, 8));
  if (offset != model.size() * s.entry_size()) {
    return absl::StrCat("header offset ", offset);
  }
  if (file_generation != generation) return "header generation differs";
  if (bytes->size() < IndexFile::kHeaderSize + fan_size + offset) {
    return "file shorter than its header says";
  }
  absl::StatusOr<Fanout> fanout =
      Fanout::Import(bytes->substr(IndexFile::kHeaderSize, fan_size),
                     s.hash_bits, s.entry_size(), offset, kDataPath);
  if (!fanout.ok()) return fanout.status().ToString();
  if (!(*fanout == data->fanout())) return "fan-out differs from DataFile's";
  for (uint64_t i = 0; i < data->count(); ++i) {
    const uint64_t h = s.hash(EntryKey(s, data->entry(i)));
    const Fanout::Range r = fanout->Search(h);
    if (i * s.entry_size() < r.low || i * s.entry_size() > r.high) {
      return absl::StrCat("record ", i, " outside Search(", h, ") = [", r.low,
                          ", ", r.high, "]");
    }
  }
  if (bytes->substr(IndexFile::kHeaderSize + fan_size, offset) !=
      std::string(data->entry(0), offset)) {
    return "mapped records differ from the file";
  }
  return "";
}

// Writes a filter for the data file at kDataPath sized for `expected` keys
// (whatever its fan-out table says, damaged or not) and reopens the file.
std::shared_ptr<const DataFile> ReopenWithFilterSizedFor(MemEnv* env,
                                                         const Schema& s,
                                                         uint64_t expected) {
  auto file = IndexFile::OpenReadOnly(env, kDataPath, s.entry_size());
  if (!file.ok() || *file == nullptr) return nullptr;
  auto table = (*file)->ReadFanout();
  if (!table.ok()) return nullptr;
  (void)(*file)->Close();
  (void)env->RemoveFile(DataFile::FilterPath(kDataPath));
  auto bare = DataFile::Open(env, kDataPath, s);
  if (!bare.ok() || *bare == nullptr) return nullptr;
  const DataFile& d = **bare;
  KeyFilterBuilder builder(expected, s.hash_bits);
  for (uint64_t i = 0; i < d.count(); ++i) {
    const absl::string_view key = EntryKey(s, d.entry(i));
    builder.Add(key, s.hash(key));
  }
  const size_t e = s.entry_size();
  const std::string bytes = builder.Finish(FilterTargetOf(
      d.generation(), d.count(), absl::string_view(d.entry(0), e),
      absl::string_view(d.entry(d.count() - 1), e), *table));
  if (!KeyFilter::Write(env, DataFile::FilterPath(kDataPath), bytes).ok()) {
    return nullptr;
  }
  auto data = DataFile::Open(env, kDataPath, s);
  if (!data.ok() || *data == nullptr || (*data)->filter() == nullptr) {
    return nullptr;
  }
  return *data;
}

// A request to merge `log` and `data` into kMergePath.
MergeRequest MakeRequest(Env* env, const Schema& s, const LogTable& log,
                         const DataFile* data, int64_t generation) {
  MergeRequest r;
  r.env = env;
  r.path = kMergePath;
  r.schema = s;
  r.log = &log;
  r.data = data;
  r.generation = generation;
  return r;
}

// Adds the bindings of `batch` to `log`, and to `model` as the newest ones.
void AddBatch(const Batch& batch, LogTable* log, Model* model) {
  for (const auto& [k, v] : batch) {
    log->Add(Entry(Key(k), Value(v)).data());
    (*model)[Key(k)] = Value(v);
  }
}

// Drops from `model` the bindings that `keep` (if any) rejects.
void ApplyKeep(const Keep& keep, Model* model) {
  if (!keep) return;
  for (auto it = model->begin(); it != model->end();) {
    it = keep(it->first, it->second) ? std::next(it) : model->erase(it);
  }
}

// ---------------------------------------------------------------------------------
// Fixture.

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(env_.CreateDirs(kDir)); }

  MergeRequest Request(const LogTable& log, int64_t generation,
                       const DataFile* data) {
    return MakeRequest(&env_, schema_, log, data, generation);
  }

  // Renames the output over `data`, writes its filter and maps both.
  std::shared_ptr<const DataFile> Commit(MergeResult result) {
    EXPECT_NE(result.file, nullptr);
    if (result.file == nullptr) return nullptr;
    const absl::Status s = result.file->RenameTo(kDataPath);
    EXPECT_TRUE(s.ok()) << s;
    const bool with_filter = !result.filter.empty();
    if (with_filter) {
      const absl::Status w = KeyFilter::Write(
          &env_, DataFile::FilterPath(kDataPath), result.filter);
      EXPECT_TRUE(w.ok()) << w;
    }
    auto data = DataFile::FromFile(std::move(result.file), schema_, &env_);
    EXPECT_TRUE(data.ok()) << data.status();
    if (!data.ok()) return nullptr;
    // Every lookup of Diff then goes through the filter.
    if (*data != nullptr) {
      EXPECT_NE((*data)->filter(), nullptr);
    }
    EXPECT_EQ(with_filter, *data != nullptr);
    return *data;
  }

  // One merge of `log` into `data_`, committed.
  void MergeAndCommit(const LogTable& log, int64_t generation,
                      const Keep& keep = nullptr) {
    MergeRequest r = Request(log, generation, data_.get());
    r.keep = keep;
    absl::StatusOr<MergeResult> result = WriteMerge(r);
    ASSERT_TRUE(result.ok()) << result.status();
    const uint64_t entries = result->entries;
    data_ = Commit(*std::move(result));
    EXPECT_EQ(entries, data_ == nullptr ? 0 : data_->count());
  }

  // Replaces the filter of the data file at kDataPath by one sized for
  // `expected` keys (so that a merge of that size can extend it) and reopens
  // the data file with it.
  std::shared_ptr<const DataFile> WithFilterSizedFor(uint64_t expected) {
    return ReopenWithFilterSizedFor(&env_, schema_, expected);
  }

  // Writes a data file at kDataPath whose records (keys 3, 1, 2 under
  // TinyHash) are out of hash order at the second one.
  // A data file whose records are in hash order but for `keys`' order, with
  // one fan-out slot (the last record).
  void WriteDataFileOf(const std::vector<uint32_t>& keys) {
    IndexFile::ReadWriteOptions options;
    options.fresh = true;
    options.generation = 1;
    options.fan_size = 8;
    options.entry_size = schema_.entry_size();
    auto file = IndexFile::OpenReadWrite(&env_, kDataPath, options);
    ASSERT_TRUE(file.ok()) << file.status();
    for (uint32_t k : keys) ASSERT_OK((*file)->Append(Entry(Key(k), Value(1))));
    ASSERT_OK(
        (*file)->WriteFanout(Be64((keys.size() - 1) * schema_.entry_size())));
    ASSERT_OK((*file)->Flush());
    ASSERT_OK((*file)->Close());
  }

  // 130 records of TinyHash 0 (keys 0, 4, 8, ...) but record 1, key 1 (hash
  // 1): out of order between records 1 and 2, which the open's sample of
  // records (0, 2, 4, ...) does not see.
  void WriteUnsortedDataFile() {
    std::vector<uint32_t> keys;
    for (uint32_t j = 0; j < 130; ++j) keys.push_back(j == 1 ? 1 : 4 * j);
    WriteDataFileOf(keys);
  }

  // Damages the fan-out table of the data file at kDataPath (`count`
  // records, `fans` slots) so that Fanout::Import and the open's sample of
  // records accept it but it does not match the records: one slot moves back
  // by 24 records, so the window of its bucket misses the bucket's last
  // records. Picks a slot whose moved records are not among the 64 the open
  // samples (DataFile::Open); returns the key of the bucket's last record.
  std::string DamageFanout(uint64_t count, size_t fans) {
    const size_t e = schema_.entry_size();
    std::string bytes = env_.Contents(kDataPath).value();
    auto slot = [&](size_t j) {
      return absl::big_endian::Load64(bytes.data() + IndexFile::kHeaderSize +
                                      j * 8);
    };
    auto sampled = [&](uint64_t record) {
      for (uint64_t k = 0; k < 64; ++k) {
        if (k * (count - 1) / 63 == record) return true;
      }
      return false;
    };
    constexpr uint64_t kShift = 24;  // records moved to the next bucket
    for (size_t j = fans / 2; j + 1 < fans; ++j) {
      const uint64_t last = slot(j) / e;
      if (slot(j) < slot(j - 1) + 2 * kShift * e) continue;
      bool any_sampled = false;
      for (uint64_t i = last + 1 - kShift; i <= last; ++i) {
        any_sampled = any_sampled || sampled(i);
      }
      if (any_sampled) continue;
      bytes.replace(IndexFile::kHeaderSize + j * 8, 8,
                    Be64(slot(j) - kShift * e));
      env_.SetContents(kDataPath, bytes);
      const size_t at = IndexFile::kHeaderSize + 8 * fans + last * e;
      return bytes.substr(at, schema_.key_size);
    }
    ADD_FAILURE() << "no slot to damage";
    return "";
  }

  bool Exists(const std::string& path) {
    absl::StatusOr<bool> e = env_.FileExists(path);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() && *e;
  }

  // Expects a merge that failed with `code`, naming each of `in_message`, and
  // left no output behind.
  void ExpectFailedWithoutOutput(
      const absl::StatusOr<MergeResult>& result, absl::StatusCode code,
      std::initializer_list<const char*> in_message) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), code);
    for (const char* part : in_message) {
      EXPECT_THAT(result.status().message(), HasSubstr(part));
    }
    EXPECT_FALSE(Exists(kMergePath));
  }

  MemEnv env_;
  Schema schema_ = TinySchema();
  std::shared_ptr<const DataFile> data_;
};

LogTable TableOf(const Schema& s, const Batch& adds) {
  LogTable t(s);
  for (const auto& [k, v] : adds) t.Add(Entry(Key(k), Value(v)).data());
  return t;
}

// Binds keys from, from + step, ... below `to` to value key + plus, in `log`
// and in `model`.
void AddEvery(LogTable* log, Model* model, uint32_t from, uint32_t to,
              uint32_t step, uint32_t plus) {
  for (uint32_t k = from; k < to; k += step) {
    log->Add(Entry(Key(k), Value(k + plus)).data());
    (*model)[Key(k)] = Value(k + plus);
  }
}

// ---------------------------------------------------------------------------------
// Basic merges.

TEST_F(MergeTest, FirstMergeCreatesTheDataFile) {
  const LogTable log = TableOf(schema_, {{1, 10}, {2, 20}, {5, 50}, {1, 11}});
  MergeAndCommit(log, 1);
  EXPECT_EQ(
      Diff(&env_, data_, schema_,
           {{Key(1), Value(11)}, {Key(2), Value(20)}, {Key(5), Value(50)}}, 1,
           Pool(12)),
      "");
  EXPECT_FALSE(Exists(kMergePath));
  EXPECT_EQ(data_->path(), kDataPath);
  // The output's records were handed to the device as they were written.
  EXPECT_EQ(env_.WritebackHinted(kMergePath), 3 * schema_.entry_size());

  // Open() reads the same file back.
  auto reopened = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_NE(*reopened, nullptr);
  EXPECT_EQ((*reopened)->count(), 3u);
  EXPECT_EQ((*reopened)->generation(), 1);
  EXPECT_TRUE((*reopened)->fanout() == data_->fanout());
  const char* e = (*reopened)->Find(Key(5), TinyHash(Key(5)));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(EntryValue(schema_, e), Value(50));
}

TEST_F(MergeTest, SecondMergeCombinesLogAndData) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}, {2, 1}, {3, 1}}), 1);
  MergeAndCommit(TableOf(schema_, {{1, 2}, {4, 2}, {7, 2}}), 2);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(0), Value(1)},
                  {Key(1), Value(2)},
                  {Key(2), Value(1)},
                  {Key(3), Value(1)},
                  {Key(4), Value(2)},
                  {Key(7), Value(2)}},
                 2, Pool(16)),
            "");
}

TEST_F(MergeTest, EmptyLogKeepsTheData) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {9, 2}}), 1);
  MergeAndCommit(LogTable(schema_), 2);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(0), Value(1)}, {Key(9), Value(2)}}, 2, Pool(16)),
            "");
}

TEST_F(MergeTest, NothingToMergeGivesNoDataFile) {
  const LogTable empty(schema_);
  absl::StatusOr<MergeResult> result = WriteMerge(Request(empty, 1, nullptr));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entries, 0u);
  ASSERT_NE(result->file, nullptr);
  EXPECT_EQ(result->file->generation(), 1);
  ASSERT_OK(result->file->RenameTo(kDataPath));
  EXPECT_EQ(result->filter, "");
  auto data = DataFile::FromFile(std::move(result->file), schema_, &env_);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, nullptr);
  auto opened = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, nullptr);
}

TEST_F(MergeTest, DataFileOpenOfMissingOrShortFileIsNull) {
  auto missing = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, nullptr);
  env_.SetContents(kDataPath, std::string(10, '\0'));
  auto short_file = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(short_file.ok()) << short_file.status();
  EXPECT_EQ(*short_file, nullptr);
}

TEST_F(MergeTest, DataFileOpenOfAForeignFileIsDataLoss) {
  env_.SetContents(kDataPath, std::string(100, 'z'));
  auto data = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(data.status().message(), HasSubstr(kDataPath));
}

TEST_F(MergeTest, GenerationIsStampedInTheHeader) {
  MergeAndCommit(TableOf(schema_, {{1, 1}}), 41);
  EXPECT_EQ(data_->generation(), 41);
  auto file = IndexFile::OpenReadOnly(&env_, kDataPath, schema_.entry_size());
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_NE(*file, nullptr);
  EXPECT_EQ((*file)->generation(), 41);
  MergeAndCommit(TableOf(schema_, {{2, 2}}), 42);
  EXPECT_EQ(
      Diff(&env_, data_, schema_, {{Key(1), Value(1)}, {Key(2), Value(2)}}, 42),
      "");
}

TEST_F(MergeTest, StaleMergeFileIsOverwritten) {
  // A previous merge crashed, leaving a longer file with other records.
  env_.SetContents(kMergePath, std::string(500, 'z'));
  MergeAndCommit(TableOf(schema_, {{3, 3}, {8, 8}}), 1);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(3), Value(3)}, {Key(8), Value(8)}}, 1, Pool(12)),
            "");
}

// ---------------------------------------------------------------------------------
// Overrides with equal hashes (docs/design.md §13.2).

TEST_F(MergeTest, LogOverridesEveryRecordOfAnEqualHashRun) {
  // Keys 0, 4, 8, 12, 16 all hash to 0; the data run is in that order.
  MergeAndCommit(
      TableOf(schema_, {{0, 1}, {4, 1}, {8, 1}, {12, 1}, {16, 1}, {1, 1}}), 1);
  ASSERT_NE(data_, nullptr);
  // The log overrides run members that are not first, plus a new key of the
  // same hash sorted among them.
  MergeAndCommit(TableOf(schema_, {{12, 2}, {8, 2}, {20, 2}, {16, 2}}), 2);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(0), Value(1)},
                  {Key(1), Value(1)},
                  {Key(4), Value(1)},
                  {Key(8), Value(2)},
                  {Key(12), Value(2)},
                  {Key(16), Value(2)},
                  {Key(20), Value(2)}},
                 2, Pool(32)),
            "");
}

TEST_F(MergeTest, RegressionOldRecordSurvivesNextToOverride) {
  // Every key shares hash 0: each data record must be checked against every log
  // binding, not just the first pending one.
  Batch first;
  for (uint32_t i = 0; i < 40; ++i) first.push_back({4 * i, 100 + i});
  MergeAndCommit(TableOf(schema_, first), 1);
  Model model;
  for (uint32_t i = 0; i < 40; ++i) model[Key(4 * i)] = Value(100 + i);
  Batch second;
  for (uint32_t i = 39; i > 0; i -= 3) {
    second.push_back({4 * i, 500 + i});
    model[Key(4 * i)] = Value(500 + i);
  }
  MergeAndCommit(TableOf(schema_, second), 2);
  EXPECT_EQ(Diff(&env_, data_, schema_, model, 2, Pool(200)), "");
}

// ---------------------------------------------------------------------------------
// Filters (docs/design.md §13.1).

bool KeepOddValues(absl::string_view, absl::string_view value) {
  return ValueNumber(value) % 2 == 1;
}

TEST_F(MergeTest, FilterNeverResurrectsAnOlderDataValue) {
  MergeAndCommit(TableOf(schema_, {{1, 1}, {5, 3}, {2, 5}}), 1);
  // Key 1's newest value is even: rejected. Its old data value (odd) must not
  // come back. Key 5 is replaced by an accepted value; key 2 is untouched.
  MergeAndCommit(TableOf(schema_, {{1, 2}, {5, 7}}), 2, &KeepOddValues);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(2), Value(5)}, {Key(5), Value(7)}}, 2, Pool(12)),
            "");
}

TEST_F(MergeTest, FilterAppliesToDataRecordsAndLogRecords) {
  MergeAndCommit(TableOf(schema_, {{0, 2}, {1, 3}, {2, 4}}), 1);
  MergeAndCommit(TableOf(schema_, {{3, 6}, {7, 9}, {11, 8}}), 2,
                 &KeepOddValues);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(1), Value(3)}, {Key(7), Value(9)}}, 2, Pool(16)),
            "");
}

TEST_F(MergeTest, FilterOnTheFirstMerge) {
  MergeAndCommit(TableOf(schema_, {{0, 2}, {1, 3}, {2, 4}, {1, 8}, {2, 5}}), 1,
                 &KeepOddValues);
  EXPECT_EQ(Diff(&env_, data_, schema_, {{Key(2), Value(5)}}, 1, Pool(8)), "");
}

TEST_F(MergeTest, FilterRemovingEverythingGivesNoDataFile) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 3}}), 1);
  ASSERT_NE(data_, nullptr);
  MergeAndCommit(TableOf(schema_, {{2, 5}}), 2,
                 [](absl::string_view, absl::string_view) { return false; });
  EXPECT_EQ(data_, nullptr);
}

TEST_F(MergeTest, FilterSeesKeyAndValue) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}, {2, 1}}), 1);
  std::set<std::pair<std::string, std::string>> seen;
  MergeAndCommit(TableOf(schema_, {{1, 2}}), 2,
                 [&](absl::string_view k, absl::string_view v) {
                   seen.insert({std::string(k), std::string(v)});
                   return k != Key(0);
                 });
  const std::set<std::pair<std::string, std::string>> expected = {
      {Key(0), Value(1)}, {Key(1), Value(2)}, {Key(2), Value(1)}};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(1), Value(2)}, {Key(2), Value(1)}}, 2, Pool(8)),
            "");
}

// ---------------------------------------------------------------------------------
// Cancel and errors.

TEST_F(MergeTest, CancelFromAfterFirstEntryAbortsAndRemovesTheOutput) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}, {2, 1}, {3, 1}}), 1);
  ASSERT_NE(data_, nullptr);
  const LogTable log = TableOf(schema_, {{1, 2}, {9, 2}});
  std::atomic<bool> cancel{false};
  int calls = 0;
  MergeRequest r = Request(log, 2, data_.get());
  r.cancel = &cancel;
  r.after_first_entry = [&] {
    ++calls;
    EXPECT_TRUE(Exists(kMergePath));
    cancel.store(true);
    return absl::OkStatus();
  };
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kAborted,
                            {kMergePath});
  EXPECT_EQ(calls, 1);
  // The old data file is untouched.
  EXPECT_EQ(Diff(&env_, data_, schema_,
                 {{Key(0), Value(1)},
                  {Key(1), Value(1)},
                  {Key(2), Value(1)},
                  {Key(3), Value(1)}},
                 1, Pool(12)),
            "");
}

TEST_F(MergeTest, CancelledBeforeStartWithoutData) {
  const LogTable log = TableOf(schema_, {{1, 2}});
  std::atomic<bool> cancel{true};
  MergeRequest r = Request(log, 1, nullptr);
  r.cancel = &cancel;
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kAborted,
                            {kMergePath});
}

TEST_F(MergeTest, CancelFlagLeftFalseDoesNothing) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}}), 1);
  const LogTable log = TableOf(schema_, {{1, 2}});
  std::atomic<bool> cancel{false};
  MergeRequest r = Request(log, 2, data_.get());
  r.cancel = &cancel;
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  data_ = Commit(*std::move(result));
  EXPECT_EQ(
      Diff(&env_, data_, schema_, {{Key(0), Value(1)}, {Key(1), Value(2)}}, 2),
      "");
}

TEST_F(MergeTest, AfterFirstEntryErrorIsReturnedAndRemovesTheOutput) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}, {2, 1}}), 1);
  const LogTable log = TableOf(schema_, {{5, 2}});
  int calls = 0;
  MergeRequest r = Request(log, 2, data_.get());
  r.after_first_entry = [&] {
    ++calls;
    return absl::InternalError("injected by the test");
  };
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kInternal,
                            {"injected by the test"});
  EXPECT_EQ(calls, 1);
}

TEST_F(MergeTest, AfterFirstEntryRunsOnceAndOnlyWithData) {
  int calls = 0;
  const LogTable log = TableOf(schema_, {{0, 1}, {1, 1}, {2, 1}, {3, 1}});
  MergeRequest r = Request(log, 1, nullptr);
  r.after_first_entry = [&] {
    ++calls;
    return absl::OkStatus();
  };
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls, 0);
  data_ = Commit(*std::move(result));
  ASSERT_NE(data_, nullptr);

  const LogTable log2 = TableOf(schema_, {{7, 1}});
  MergeRequest r2 = Request(log2, 2, data_.get());
  r2.after_first_entry = r.after_first_entry;
  result = WriteMerge(r2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->copied_runs);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result->entries, 5u);

  // Record by record, likewise once.
  calls = 0;
  r2.copy_runs = false;
  result = WriteMerge(r2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->copied_runs);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result->entries, 5u);
}

TEST_F(MergeTest, WriteErrorIsReturnedAndRemovesTheOutput) {
  MergeAndCommit(TableOf(schema_, {{0, 1}, {1, 1}}), 1);
  const LogTable log = TableOf(schema_, {{5, 2}});
  // The header write at open succeeds, the records or fan-out writes fail.
  env_.InjectError(kOpWrite, 1, -1, absl::ResourceExhaustedError("ENOSPC"));
  absl::StatusOr<MergeResult> result = WriteMerge(Request(log, 2, data_.get()));
  env_.ClearInjectedErrors();
  ExpectFailedWithoutOutput(result, absl::StatusCode::kResourceExhausted,
                            {kMergePath});
}

// ---------------------------------------------------------------------------------
// A corrupt data file.

// Records out of hash order where the open samples them: refused at open,
// naming the file and the record.
TEST_F(MergeTest, UnsortedSampledRecordsAreRefusedAtOpen) {
  WriteDataFileOf({3, 1, 2});
  auto data = DataFile::Open(&env_, kDataPath, schema_);
  EXPECT_THAT(data.status(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kDataPath), HasSubstr("record 1"))));
}

TEST_F(MergeTest, UnsortedDataFileIsDataLoss) {
  WriteUnsortedDataFile();
  auto data = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_NE(*data, nullptr);
  ASSERT_EQ((*data)->count(), 130u);
  ASSERT_EQ((*data)->filter(), nullptr);

  const LogTable log = TableOf(schema_, {{0, 9}});
  ExpectFailedWithoutOutput(WriteMerge(Request(log, 2, data->get())),
                            absl::StatusCode::kDataLoss, {kDataPath, "sorted"});
}

// The same file with a filter made for it: the merge copies runs, and notices
// the disorder at a run's ends.
TEST_F(MergeTest, UnsortedDataFileIsDataLossWhenCopyingRuns) {
  WriteUnsortedDataFile();
  const std::shared_ptr<const DataFile> data = WithFilterSizedFor(4);
  ASSERT_NE(data, nullptr);

  for (uint32_t key : {0u, 2u, 3u}) {
    SCOPED_TRACE(key);
    const LogTable log = TableOf(schema_, {{key, 9}});
    ExpectFailedWithoutOutput(WriteMerge(Request(log, 2, data.get())),
                              absl::StatusCode::kDataLoss,
                              {kDataPath, "sorted"});
  }
}

// A fan-out table that Fanout::Import accepts but that does not match the
// records (here: every slot 0 but the last, so each bucket's window is the
// first record or two) must not make lookups miss: Find checks the records
// around the window and searches the whole file when they disagree.
TEST_F(MergeTest, FindSurvivesAFanoutTableThatDoesNotMatchTheRecords) {
  schema_ = MidSchema();
  Model model;
  LogTable log(schema_);
  AddEvery(&log, &model, 0, 9000, 2, 0);
  MergeRequest r = Request(log, 1, nullptr);
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_OK(result->file->RenameTo(kDataPath));  // no filter: every miss
  auto data = DataFile::FromFile(std::move(result->file), schema_, &env_);
  ASSERT_TRUE(data.ok()) << data.status();
  const uint64_t count = (*data)->count();
  const size_t fans = (*data)->fanout().nb_fans();
  ASSERT_GT(fans, 4u);
  data->reset();
  const std::string missed = DamageFanout(count, fans);
  ASSERT_EQ(model.count(missed), 1u);
  auto damaged = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(damaged.ok()) << damaged.status();
  ASSERT_NE(*damaged, nullptr);
  ASSERT_EQ((*damaged)->filter(), nullptr);
  const uint64_t whole_file_searches = DataFile::WholeFileSearches();
  for (const auto& [k, v] : model) {
    const char* e = (*damaged)->Find(k, schema_.hash(k));
    ASSERT_NE(e, nullptr) << "key #" << ValueNumber(k);
    EXPECT_EQ(EntryValue(schema_, e), v);
  }
  for (uint32_t k = 1; k < 9000; k += 500) {
    EXPECT_EQ((*damaged)->Find(Key(k), schema_.hash(Key(k))), nullptr) << k;
  }
  // The key the damaged window misses took the whole-file search.
  EXPECT_GT(DataFile::WholeFileSearches(), whole_file_searches);
}

// With the table a merge wrote, no find needs the whole-file search: not at
// record 0 (whose slot of 0 also means "no record before"), not next to the
// edges of buckets (hashes on both sides, several keys each), not in empty
// buckets. A wrong window would show as such a search even where the search
// hides it by finding the key anyway. Keys of hashes below `lowest` are left
// out, so that record 0 opens a later bucket than the first.
void ExpectNoWholeFileSearch(MemEnv* env, uint32_t lowest) {
  const Schema s = MidSchema();  // hash: key & 0xfff; k, k + 4096 share it
  Model model;
  LogTable log(s);
  auto add = [&](uint32_t k, uint32_t v) {
    if ((k & 0xfff) < lowest) return;
    log.Add(Entry(Key(k), Value(v)).data());
    model[Key(k)] = Value(v);
  };
  for (uint32_t k = 0; k < 4096; ++k) add(k, k + 1);
  for (uint32_t k = 4096; k < 8192; k += 2) add(k, k + 1);
  for (uint32_t edge = 0; edge <= 4096; edge += 64) {
    for (uint32_t h = edge == 0 ? 0 : edge - 2; h < edge + 2 && h < 4096; ++h) {
      for (uint32_t k : {h, h + 4096, h + 8192}) add(k, k + 2);
    }
  }
  absl::StatusOr<MergeResult> merged =
      WriteMerge(MakeRequest(env, s, log, nullptr, 1));
  ASSERT_TRUE(merged.ok()) << merged.status();
  auto data = DataFile::FromFile(std::move(merged->file), s, env);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_NE(*data, nullptr);
  ASSERT_GE((*data)->fanout().nb_fans(), 16u);
  const uint64_t whole_file_searches = DataFile::WholeFileSearches();
  for (const auto& [k, v] : model) {
    const char* e = (*data)->Find(k, s.hash(k));
    ASSERT_NE(e, nullptr) << "key #" << ValueNumber(k);
    EXPECT_EQ(EntryValue(s, e), v);
  }
  for (uint32_t k = 8192; k < 12288; k += 5) {
    if (model.count(Key(k)) == 0) {
      EXPECT_EQ((*data)->Find(Key(k), s.hash(Key(k))), nullptr) << k;
    }
  }
  EXPECT_EQ(DataFile::WholeFileSearches(), whole_file_searches);
}

TEST_F(MergeTest, FindsAtBucketEdgesNeverSearchTheWholeFile) {
  ExpectNoWholeFileSearch(&env_, 0);
}

TEST_F(MergeTest, FindsWithRecordZeroInALaterBucketNeverSearchTheWholeFile) {
  ExpectNoWholeFileSearch(&env_, 700);
}

// Record 0 alone at the lowest hash of a later bucket (no other key shares its
// hash, so no walk over equal hashes reaches it from inside the window): its
// bucket's window must still start at record 0.
TEST_F(MergeTest, RecordZeroAtItsBucketsLowestHashIsInTheWindow) {
  const Schema s = MidSchema();  // hash: key & 0xfff
  Model model;
  LogTable log(s);
  for (uint32_t k = 1024; k < 4096; ++k) {
    log.Add(Entry(Key(k), Value(k)).data());
    model[Key(k)] = Value(k);
  }
  absl::StatusOr<MergeResult> merged =
      WriteMerge(MakeRequest(&env_, s, log, nullptr, 1));
  ASSERT_TRUE(merged.ok()) << merged.status();
  auto data = DataFile::FromFile(std::move(merged->file), s, &env_);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_NE(*data, nullptr);
  // 1024 opens a bucket other than the first.
  ASSERT_GE((*data)->fanout().nb_fans(), 8u);
  ASSERT_LE((*data)->fanout().nb_fans(), 4096u);
  const uint64_t whole_file_searches = DataFile::WholeFileSearches();
  for (const auto& [k, v] : model) {
    const char* e = (*data)->Find(k, s.hash(k));
    ASSERT_NE(e, nullptr) << "key #" << ValueNumber(k);
    EXPECT_EQ(EntryValue(s, e), v);
  }
  EXPECT_EQ(DataFile::WholeFileSearches(), whole_file_searches);
}

// A merge that copies runs uses the data file's fan-out table only as a hint:
// with a table that does not match the records (and a filter made for that
// table, so that runs are copied) its output is still right.
TEST_F(MergeTest, CopyingRunsSurvivesAFanoutTableThatDoesNotMatchTheRecords) {
  schema_ = MidSchema();
  Model model;
  LogTable first(schema_);
  AddEvery(&first, &model, 0, 9000, 2, 0);
  MergeAndCommit(first, 1);
  ASSERT_NE(data_, nullptr);
  const uint64_t count = data_->count();
  const size_t fans = data_->fanout().nb_fans();
  ASSERT_GT(fans, 4u);
  data_.reset();
  ASSERT_FALSE(DamageFanout(count, fans).empty());
  LogTable second(schema_);
  AddEvery(&second, &model, 1, 9000, 6, 1);
  AddEvery(&second, &model, 0, 9000, 10, 2);
  data_ = WithFilterSizedFor(count + second.cardinal());
  ASSERT_NE(data_, nullptr);
  MergeRequest r = Request(second, 2, data_.get());
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->copied_runs);
  data_ = Commit(*std::move(result));
  EXPECT_EQ(Diff(&env_, data_, schema_, model, 2, {Key(9001), Key(20001)}), "");
}

// ---------------------------------------------------------------------------------
// Fan-out with many buckets.

TEST_F(MergeTest, LargeMergesHaveAConsistentFanout) {
  schema_ = MidSchema();
  Model model;
  uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
  };
  for (int64_t round = 1; round <= 3; ++round) {
    LogTable log(schema_);
    for (int i = 0; i < 3000; ++i) {
      const uint32_t k =
          next() % 9000;  // 9000 > 4096: equal MidHash values too
      const uint32_t v = next();
      log.Add(Entry(Key(k), Value(v)).data());
      model[Key(k)] = Value(v);
    }
    const uint64_t expected =
        log.cardinal() + (data_ == nullptr ? 0 : data_->count());
    MergeAndCommit(log, round);
    ASSERT_NE(data_, nullptr);
    EXPECT_EQ(
        data_->fanout().bits(),
        Fanout::BitsFor(schema_.hash_bits, schema_.entry_size(), expected));
    EXPECT_GT(data_->fanout().nb_fans(), 1u);
    EXPECT_EQ(Diff(&env_, data_, schema_, model, round,
                   {Key(9000), Key(9001), Key(20000)}),
              "");
  }
}

// Finds read the compact fan-out table when the hashes are spread evenly and
// the full one when they are too skewed for it; both find every record.
TEST_F(MergeTest, FindsUseTheCompactFanoutOnlyWhenItFits) {
  schema_ = MidSchema();
  for (const bool skewed : {false, true}) {
    SCOPED_TRACE(skewed ? "skewed" : "even");
    Model model;
    LogTable log(schema_);
    // Skewed: 40000 keys whose MidHash is below 64, so that a few buckets
    // hold every record, further from an even spread than 16 bits reach.
    for (uint32_t j = 0; j < 40000; ++j) {
      const uint32_t k = skewed ? (j / 64) * 4096 + j % 64 : j;
      log.Add(Entry(Key(k), Value(j)).data());
      model[Key(k)] = Value(j);
    }
    MergeRequest r = Request(log, 1, nullptr);
    absl::StatusOr<MergeResult> result = WriteMerge(r);
    ASSERT_TRUE(result.ok()) << result.status();
    auto data = DataFile::FromFile(std::move(result->file), schema_, &env_);
    ASSERT_TRUE(data.ok()) << data.status();
    const DataFile& d = **data;
    ASSERT_EQ(d.compact_fanout().empty(), skewed);
    if (!skewed) {
      ASSERT_EQ(d.compact_fanout().size(), d.fanout().nb_fans());
      for (size_t b = 0; b < d.fanout().nb_fans(); ++b) {
        ASSERT_EQ(d.compact_fanout().SlotRecord(b),
                  d.fanout().slot(b) / schema_.entry_size())
            << b;
      }
    }
    int checked = 0;
    for (auto it = model.begin(); it != model.end(); ++it) {
      if (++checked % 37 != 0) continue;
      const char* e = d.Find(it->first, schema_.hash(it->first));
      ASSERT_NE(e, nullptr) << "key #" << ValueNumber(it->first);
      EXPECT_EQ(EntryValue(schema_, e), it->second);
    }
    const std::string absent = Key(skewed ? 4095 : 9000000);
    EXPECT_EQ(d.Find(absent, schema_.hash(absent)), nullptr);
  }
}

// Counts its calls: how many records a find hashes.
std::atomic<uint64_t> counted_hashes{0};
uint64_t CountedHash(absl::string_view key) {
  counted_hashes.fetch_add(1, std::memory_order_relaxed);
  return Xxh3Hash(key, 32);
}

// A find of a present key compares key bytes around its likely position and
// hashes no record, on uniform hashes nearly always (the search that hashes
// each record it probes is only the fallback); every key is still found.
TEST_F(MergeTest, PresentKeysAreFoundWithoutHashingRecords) {
  schema_ = test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 32,
                             &CountedHash);
  LogTable log(schema_);
  constexpr uint32_t kKeys = 50000;
  for (uint32_t j = 0; j < kKeys; ++j) log.Add(Entry(Key(j), Value(j)).data());
  absl::StatusOr<MergeResult> result = WriteMerge(Request(log, 1, nullptr));
  ASSERT_TRUE(result.ok()) << result.status();
  auto data = DataFile::FromFile(std::move(result->file), schema_, &env_);
  ASSERT_TRUE(data.ok()) << data.status();
  uint64_t record_hashes = 0;
  for (uint32_t j = 0; j < kKeys; ++j) {
    const std::string key = Key(j);
    const uint64_t hash = Xxh3Hash(key, 32);
    counted_hashes = 0;
    const char* e = (*data)->Find(key, hash);
    record_hashes += counted_hashes;
    ASSERT_NE(e, nullptr) << j;
    ASSERT_EQ(ValueNumber(EntryValue(schema_, e)), j);
  }
  const double per_find = static_cast<double>(record_hashes) / kKeys;
  std::cout << "records hashed per find: " << per_find << "\n";
  // A search hashing every probe needs ~3 per find.
  EXPECT_LT(per_find, 0.3);
}

// With a filter, Prefetch works out the window (and starts loading the first
// record) only while the filter's recent verdicts on this thread were mostly
// "maybe"; otherwise Find works it out after the verdict. Both ways find
// every key and no absent one.
TEST_F(MergeTest, PrefetchLocatesRecordsOnlyWhileKeysTendToBePresent) {
  schema_ = MidSchema();
  LogTable log(schema_);
  for (uint32_t k = 0; k < 4000; k += 2) {
    log.Add(Entry(Key(k), Value(k)).data());
  }
  MergeAndCommit(log, 1);
  ASSERT_NE(data_, nullptr);
  ASSERT_NE(data_->filter(), nullptr);
  auto two_steps = [&](uint32_t k) {
    const std::string key = Key(k);
    return data_->Find(key, data_->Prefetch(schema_.hash(key)));
  };
  // Absent keys the filter rules out (odd keys it lets through are skipped).
  auto absent_verdicts = [&](int n) {
    for (uint32_t k = 100001; n > 0; k += 2) {
      const std::string key = Key(k);
      if (data_->filter()->MayContain(schema_.hash(key), KeyFingerprint(key))) {
        continue;
      }
      EXPECT_EQ(two_steps(k), nullptr) << k;
      --n;
    }
  };
  absent_verdicts(20);
  EXPECT_FALSE(data_->Prefetch(schema_.hash(Key(2))).located);
  for (uint32_t k = 0; k < 40; k += 2) {
    const char* e = two_steps(k);
    ASSERT_NE(e, nullptr) << k;
    EXPECT_EQ(ValueNumber(EntryValue(schema_, e)), k);
  }
  EXPECT_TRUE(data_->Prefetch(schema_.hash(Key(2))).located);
  for (uint32_t k = 1; k < 4000; k += 2) {
    ASSERT_EQ(two_steps(k), nullptr) << k;
  }
  absent_verdicts(20);
  EXPECT_FALSE(data_->Prefetch(schema_.hash(Key(2))).located);
  // An unlocated window finds present keys, and an explicit one agrees.
  for (uint32_t k = 0; k < 4000; k += 2) {
    const std::string key = Key(k);
    DataFile::Window w;
    w.hash = schema_.hash(key);
    const char* e = data_->Find(key, w);
    ASSERT_NE(e, nullptr) << k;
    EXPECT_EQ(e, data_->Find(key, schema_.hash(key)));
  }
}

// ---------------------------------------------------------------------------------
// Merges against a model.

// keep() variants chosen by the property.
Keep MakeKeep(int kind) {
  switch (kind) {
    case 1:
      return &KeepOddValues;
    case 2:
      return [](absl::string_view k, absl::string_view) {
        return static_cast<unsigned char>(k[0]) % 3 != 0;
      };
    case 3:
      return [](absl::string_view, absl::string_view) { return false; };
    default:
      return nullptr;
  }
}

RC_GTEST_PROP(MergeModel, RepeatedMergesAgreeWithTheModel, ()) {
  const bool mid = *rc::gen::arbitrary<bool>();
  const Schema s = mid ? MidSchema() : TinySchema();
  // Tiny: few keys, all colliding. Mid: MidHash collides for k and k + 4096.
  const uint32_t pool = mid ? *rc::gen::inRange<uint32_t>(1, 10000)
                            : *rc::gen::inRange<uint32_t>(1, 40);
  const auto rounds = *rc::gen::container<std::vector<std::pair<Batch, int>>>(
      rc::gen::pair(rc::gen::container<Batch>(
                        rc::gen::pair(rc::gen::inRange<uint32_t>(0, pool),
                                      rc::gen::inRange<uint32_t>(0, 10))),
                    // Filters are rarer than plain merges.
                    rc::gen::weightedOneOf<int>({{6, rc::gen::just(0)},
                                                 {1, rc::gen::just(1)},
                                                 {1, rc::gen::just(2)},
                                                 {1, rc::gen::just(3)}})));
  const std::vector<std::string> absent = {Key(pool), Key(pool + 1),
                                           Key(pool + 4096)};

  MemEnv env;
  RC_ASSERT(env.CreateDirs(kDir).ok());
  std::shared_ptr<const DataFile> data;
  Model model;
  int64_t generation = 0;
  for (const auto& [batch, keep_kind] : rounds) {
    LogTable log(s);
    AddBatch(batch, &log, &model);
    const Keep keep = MakeKeep(keep_kind);
    ApplyKeep(keep, &model);
    ++generation;
    MergeRequest r = MakeRequest(&env, s, log, data.get(), generation);
    r.keep = keep;
    absl::StatusOr<MergeResult> result = WriteMerge(r);
    RC_ASSERT(result.ok());
    RC_ASSERT(result->entries == model.size());
    RC_ASSERT(result->file->RenameTo(kDataPath).ok());
    // The filter of every other merge is left out, so that lookups both with
    // and without one are checked, and a stale filter is never used.
    const bool with_filter = generation % 2 == 1 && !result->filter.empty();
    if (with_filter) {
      RC_ASSERT(KeyFilter::Write(&env, DataFile::FilterPath(kDataPath),
                                 result->filter)
                    .ok());
    }
    auto next = DataFile::FromFile(std::move(result->file), s, &env);
    RC_ASSERT(next.ok());
    data = *next;
    if (data != nullptr) {
      const bool has_filter = data->filter() != nullptr;
      RC_ASSERT(has_filter == with_filter);
    }
    const std::string diff = Diff(&env, data, s, model, generation, absent);
    RC_ASSERT(diff == "");
  }
}

// Copying runs is only a faster way to the same output: for any data file
// (with a filter it can extend) and log, the output file and its filter are
// those of the record-by-record merge, byte for byte.
RC_GTEST_PROP(MergeModel, CopyingRunsGivesTheRecordByRecordOutput, ()) {
  const bool mid = *rc::gen::arbitrary<bool>();
  const Schema s = mid ? MidSchema() : TinySchema();
  const uint32_t pool = mid ? *rc::gen::inRange<uint32_t>(1, 20000)
                            : *rc::gen::inRange<uint32_t>(1, 40);
  const auto gen_batch = rc::gen::container<Batch>(rc::gen::pair(
      rc::gen::inRange<uint32_t>(0, pool), rc::gen::inRange<uint32_t>(0, 10)));
  const Batch base = *rc::gen::nonEmpty(gen_batch);
  const Batch update = *gen_batch;

  MemEnv env;
  RC_ASSERT(env.CreateDirs(kDir).ok());
  Model model;
  LogTable first(s);
  AddBatch(base, &first, &model);
  MergeRequest r = MakeRequest(&env, s, first, nullptr, 1);
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  RC_ASSERT(result.ok());
  RC_ASSERT(result->file->RenameTo(kDataPath).ok());
  RC_ASSERT(result->file->Close().ok());

  LogTable second(s);
  AddBatch(update, &second, &model);
  const std::shared_ptr<const DataFile> data =
      ReopenWithFilterSizedFor(&env, s, first.cardinal() + second.cardinal());
  RC_ASSERT(data != nullptr);

  constexpr char kOtherPath[] = "/s/index/merge_by_record";
  r.log = &second;
  r.data = data.get();
  r.generation = 2;
  absl::StatusOr<MergeResult> by_runs = WriteMerge(r);
  RC_ASSERT(by_runs.ok());
  RC_ASSERT(by_runs->copied_runs);
  r.path = kOtherPath;
  r.copy_runs = false;
  absl::StatusOr<MergeResult> by_record = WriteMerge(r);
  RC_ASSERT(by_record.ok());
  RC_ASSERT(!by_record->copied_runs);

  RC_ASSERT(by_runs->entries == model.size());
  RC_ASSERT(by_record->entries == model.size());
  RC_ASSERT(by_runs->filter == by_record->filter);
  absl::StatusOr<std::string> runs_bytes = env.Contents(kMergePath);
  absl::StatusOr<std::string> record_bytes = env.Contents(kOtherPath);
  RC_ASSERT(runs_bytes.ok());
  RC_ASSERT(record_bytes.ok());
  RC_ASSERT(*runs_bytes == *record_bytes);
}

// ---------------------------------------------------------------------------------
// Several older runs (the tiered layout).

// A run at `path` holding `batch` (newest binding per key), with its filter.
std::shared_ptr<const DataFile> WriteRun(MemEnv* env, const Schema& s,
                                         const std::string& path,
                                         const Batch& batch,
                                         int64_t generation) {
  auto run = test::WriteSmallTestRun(env, s, path, batch, generation);
  return run.ok() ? *run : nullptr;
}

std::string RunPath(int i) { return absl::StrCat(kDir, "/run.", i); }

// Runs 1 (newest) to 3 (oldest) of TinySchema keys; keys 0, 4, 8, ... share a
// hash, and each run binds some of them to a value naming the run.
class MultiRunTest : public MergeTest {
 protected:
  void SetUp() override {
    MergeTest::SetUp();
    for (int i = 3; i >= 1; --i) {
      Batch batch;
      for (uint32_t k = static_cast<uint32_t>(i); k < 24; k += i) {
        batch.push_back({k, 100 * i + k});
      }
      runs_[i - 1] = WriteRun(&env_, schema_, RunPath(i), batch, 10 - i);
      ASSERT_NE(runs_[i - 1], nullptr);
      for (const auto& [k, v] : batch) model_[Key(k)] = Value(v);
    }
  }

  // `log` must outlive the request.
  MergeRequest RunsRequest(const LogTable& log) {
    MergeRequest r = Request(log, 20, nullptr);
    for (const auto& run : runs_) r.older_runs.push_back(run.get());
    return r;
  }
  MergeRequest RunsRequest(LogTable&& log) = delete;

  std::shared_ptr<const DataFile> runs_[3];
  Model model_;  // the newest binding of each key in the runs
};

TEST_F(MultiRunTest, NewestRunWinsAndTheLogWinsOverAll) {
  const LogTable log = TableOf(schema_, {{6, 999}, {25, 998}, {9, 997}});
  for (const auto& [k, v] : Batch{{6, 999}, {25, 998}, {9, 997}}) {
    model_[Key(k)] = Value(v);
  }
  // Run 1 binds every key below 24; runs 2 and 3 only older values of them.
  EXPECT_EQ(model_[Key(4)], Value(104));
  absl::StatusOr<MergeResult> result = WriteMerge(RunsRequest(log));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->copied_runs);
  EXPECT_EQ(result->entries, model_.size());
  data_ = Commit(*std::move(result));
  EXPECT_EQ(Diff(&env_, data_, schema_, model_, 20, Pool(40)), "");
}

TEST_F(MultiRunTest, AKeyOnlyInOlderRunsKeepsItsNewestOlderValue) {
  // Without the newest run, run 2 wins over run 3 for even keys.
  const LogTable log(schema_);
  MergeRequest r = RunsRequest(log);
  r.older_runs.erase(r.older_runs.begin());
  Model model;
  for (uint32_t k = 3; k < 24; k += 3) model[Key(k)] = Value(300 + k);
  for (uint32_t k = 2; k < 24; k += 2) model[Key(k)] = Value(200 + k);
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  data_ = Commit(*std::move(result));
  EXPECT_EQ(Diff(&env_, data_, schema_, model, 20, Pool(40)), "");
}

// keep() sees only the newest binding: when it drops it, the older runs' values
// of the key do not come back.
TEST_F(MultiRunTest, FilteredOutNewerBindingNeverResurrectsAnOlderOne) {
  const LogTable log(schema_);
  MergeRequest r = RunsRequest(log);
  std::set<std::string> seen;
  r.keep = [&](absl::string_view k, absl::string_view v) {
    EXPECT_TRUE(seen.insert(std::string(k)).second) << "key seen twice";
    EXPECT_EQ(v, model_[std::string(k)]) << "keep() saw an older value";
    return ValueNumber(v) >= 300;  // only run 3's bindings
  };
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(seen.size(), model_.size());
  // Every key run 3 binds is also bound by run 1 (k % 3 == 0 implies k % 1
  // == 0): nothing survives.
  EXPECT_EQ(result->entries, 0u);
}

TEST_F(MultiRunTest, OneRunAsOlderRunsIsTheDataFileMergeByteForByte) {
  // A filter sized for the merge, so that the merge copies stretches.
  ASSERT_OK(env_.RenameFile(RunPath(1), kDataPath));
  data_ = WithFilterSizedFor(runs_[0]->count() + 2);
  ASSERT_NE(data_, nullptr);
  const LogTable log = TableOf(schema_, {{4, 1}, {30, 2}});
  MergeRequest by_data = Request(log, 20, data_.get());
  MergeRequest by_runs = Request(log, 20, nullptr);
  by_runs.older_runs = {data_.get()};
  by_runs.path = absl::StrCat(kDir, "/merge_by_runs");
  absl::StatusOr<MergeResult> a = WriteMerge(by_data);
  absl::StatusOr<MergeResult> b = WriteMerge(by_runs);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(a->copied_runs);
  EXPECT_TRUE(b->copied_runs);
  EXPECT_EQ(a->filter, b->filter);
  EXPECT_EQ(env_.Contents(kMergePath).value(),
            env_.Contents(by_runs.path).value());
}

TEST_F(MultiRunTest, DataAndOlderRunsTogetherAreInvalid) {
  const LogTable log(schema_);
  MergeRequest r = RunsRequest(log);
  r.data = runs_[0].get();
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kInvalidArgument,
                            {kMergePath});
  r.data = nullptr;
  r.older_runs.push_back(nullptr);
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kInvalidArgument,
                            {});
}

TEST_F(MultiRunTest, UnsortedOlderRunIsDataLossNamingIt) {
  WriteUnsortedDataFile();
  auto unsorted = DataFile::Open(&env_, kDataPath, schema_);
  ASSERT_TRUE(unsorted.ok()) << unsorted.status();
  const LogTable log = TableOf(schema_, {{0, 9}});
  MergeRequest r = RunsRequest(log);
  r.older_runs.insert(r.older_runs.begin() + 1, unsorted->get());
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kDataLoss,
                            {kDataPath, "sorted"});
}

TEST_F(MultiRunTest, AfterFirstEntryRunsOnceAndCancelAborts) {
  std::atomic<bool> cancel{false};
  int calls = 0;
  const LogTable log = TableOf(schema_, {{1, 1}});
  MergeRequest r = RunsRequest(log);
  r.cancel = &cancel;
  r.after_first_entry = [&] {
    ++calls;
    cancel.store(true);
    return absl::OkStatus();
  };
  ExpectFailedWithoutOutput(WriteMerge(r), absl::StatusCode::kAborted, {});
  EXPECT_EQ(calls, 1);
}

// Random logs and 0..4 older runs over a small key pool (so that runs overlap),
// with colliding hashes (TinyHash: 2 bits; MidHash: k and k + 4096), and
// sometimes a keep filter: the output is the newest binding of each key that
// keep() accepts, and its filter lets every one of them through.
RC_GTEST_PROP(MergeModel, SeveralRunsMergeToTheNewestBindings, ()) {
  const bool mid = *rc::gen::arbitrary<bool>();
  const Schema s = mid ? MidSchema() : TinySchema();
  const uint32_t pool = mid ? *rc::gen::inRange<uint32_t>(1, 300)
                            : *rc::gen::inRange<uint32_t>(1, 40);
  // Mid: keys k, k + 4096 and k + 8192 share a hash.
  const auto gen_batch = test::GenSmallBatch(mid, pool);
  // Oldest first.
  const size_t run_count = *rc::gen::inRange<size_t>(0, 5);
  const auto batches = *rc::gen::container<std::vector<Batch>>(
      run_count, rc::gen::nonEmpty(gen_batch));
  const Batch log_batch = *gen_batch;
  const int keep_kind = *rc::gen::weightedOneOf<int>(
      {{3, rc::gen::just(0)}, {1, rc::gen::just(1)}, {1, rc::gen::just(2)}});

  MemEnv env;
  RC_ASSERT(env.CreateDirs(kDir).ok());
  Model model;
  std::vector<std::shared_ptr<const DataFile>> runs;  // newest first
  for (size_t i = 0; i < batches.size(); ++i) {
    for (const auto& [k, v] : batches[i]) model[Key(k)] = Value(v);
    auto run = WriteRun(&env, s, RunPath(static_cast<int>(i)), batches[i],
                        static_cast<int64_t>(i + 1));
    RC_ASSERT(run != nullptr);
    runs.insert(runs.begin(), run);
  }
  LogTable log(s);
  AddBatch(log_batch, &log, &model);
  const Keep keep = MakeKeep(keep_kind);
  ApplyKeep(keep, &model);

  MergeRequest r = MakeRequest(&env, s, log, nullptr, 10);
  for (const auto& run : runs) r.older_runs.push_back(run.get());
  r.keep = keep;
  absl::StatusOr<MergeResult> result = WriteMerge(r);
  RC_ASSERT(result.ok());
  RC_ASSERT(result->entries == model.size());
  RC_ASSERT(result->copied_runs == false || runs.size() == 1);
  RC_ASSERT(result->file->RenameTo(kDataPath).ok());
  if (!result->filter.empty()) {
    RC_ASSERT(
        KeyFilter::Write(&env, DataFile::FilterPath(kDataPath), result->filter)
            .ok());
  }
  auto data = DataFile::FromFile(std::move(result->file), s, &env);
  RC_ASSERT(data.ok());
  if (*data != nullptr) {
    const KeyFilter* filter = (*data)->filter();
    RC_ASSERT(filter != nullptr);
    for (const auto& [k, v] : model) {
      RC_ASSERT(filter->MayContain(s.hash(k), KeyFingerprint(k)));
    }
  }
  const std::vector<std::string> absent = {Key(pool), Key(pool + 1),
                                           Key(pool + 4096), Key(pool + 12288)};
  const std::string diff = Diff(&env, *data, s, model, 10, absent);
  RC_ASSERT(diff == "");
}

// ---------------------------------------------------------------------------------
// Checksum sidecars (filter/data_sums.h).

// The identity a sidecar of `data` must carry.
SumsTarget SumsTargetOf(const DataFile& data) {
  SumsTarget t;
  t.generation = data.generation();
  t.file_bytes = data.file_bytes().size();
  t.data_id = data.data_id();
  return t;
}

// Data files of MidSchema records (8 bytes each) large enough for two blocks
// of 64 KiB, the second one short.
class MergeSumsTest : public MergeTest {
 protected:
  static constexpr uint32_t kKeys = 12000;

  void SetUp() override {
    MergeTest::SetUp();
    schema_ = MidSchema();
    LogTable log(schema_);
    AddEvery(&log, &model_, 0, kKeys, 1, 1);
    data_ = CommitWithSums(WriteMerge(Request(log, 1, nullptr)));
    ASSERT_NE(data_, nullptr);
    ASSERT_GT(data_->file_bytes().size(), DataSumsBuilder::kBlockSize);
    ASSERT_LT(data_->file_bytes().size(), 2 * DataSumsBuilder::kBlockSize);
    original_ = env_.Contents(kDataPath).value();
    original_sums_ = env_.Contents(DataFile::SumsPath(kDataPath)).value();
  }

  // Commit, and the output's checksum sidecar next to it, checked against
  // the file as written.
  std::shared_ptr<const DataFile> CommitWithSums(
      absl::StatusOr<MergeResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return nullptr;
    const std::string sums = result->sums;
    EXPECT_EQ(sums.empty(), result->entries == 0);
    std::shared_ptr<const DataFile> data = Commit(*std::move(result));
    if (data == nullptr) return nullptr;
    EXPECT_OK(DataSums::Write(&env_, DataFile::SumsPath(kDataPath), sums));
    const std::string file = env_.Contents(kDataPath).value();
    EXPECT_EQ(sums, DataSumsOf(file, SumsTargetOf(*data)))
        << "the sums computed while writing differ from the file's";
    return data;
  }

  // Puts the data file back as the set-up wrote it, with `bit` flipped.
  void FlipBit(uint64_t bit) {
    std::string bytes = original_;
    bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    env_.SetContents(kDataPath, bytes);
    env_.SetContents(DataFile::SumsPath(kDataPath), original_sums_);
  }

  // Opens the data file and merges a small log into it.
  absl::StatusOr<MergeResult> OpenAndMerge() {
    auto data = DataFile::Open(&env_, kDataPath, schema_);
    if (!data.ok()) return data.status();
    if (*data == nullptr) return absl::NotFoundError("no data file");
    const LogTable log = TableOf(schema_, {{3, 7}, {kKeys + 5, 7}});
    return WriteMerge(Request(log, 2, data->get()));
  }

  Model model_;
  std::string original_;
  std::string original_sums_;
};

TEST_F(MergeSumsTest, OutputSumsMatchTheFileRecordByRecordAndCopyingRuns) {
  // A filter the next merge can extend: it copies stretches of the data file.
  data_ = WithFilterSizedFor(kKeys + 10);
  ASSERT_NE(data_, nullptr);
  LogTable log(schema_);
  AddEvery(&log, &model_, 5, kKeys + 500, 97, 3);
  absl::StatusOr<MergeResult> copied = WriteMerge(Request(log, 2, data_.get()));
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_TRUE(copied->copied_runs);
  data_ = CommitWithSums(std::move(copied));
  ASSERT_NE(data_, nullptr);
  EXPECT_EQ(Diff(&env_, data_, schema_, model_, 2), "");

  LogTable log3(schema_);
  AddEvery(&log3, &model_, 1, 300, 7, 4);
  MergeRequest r = Request(log3, 3, data_.get());
  r.copy_runs = false;
  data_ = CommitWithSums(WriteMerge(r));
  ASSERT_NE(data_, nullptr);
  EXPECT_EQ(Diff(&env_, data_, schema_, model_, 3), "");
  std::string why;
  EXPECT_NE(
      DataSums::Parse(env_.Contents(DataFile::SumsPath(kDataPath)).value(),
                      SumsTargetOf(*data_), &why),
      nullptr)
      << why;
}

TEST_F(MergeSumsTest, IntactDataFileWithSumsMerges) {
  absl::StatusOr<MergeResult> result = OpenAndMerge();
  ASSERT_TRUE(result.ok()) << result.status();
}

// A flipped bit anywhere in the data file (but in its generation, whose damage
// makes the sidecar look stale; the store's generation rules refuse it) makes
// the next merge fail, naming the file (and, when the data file opens at all,
// the damaged block's range), and leaves the data file as it was and no
// output.
TEST_F(MergeSumsTest, AFlippedBitFailsTheNextMerge) {
  const uint64_t size = original_.size();
  const uint64_t records_at =
      IndexFile::kHeaderSize + data_->fanout().Export().size();
  const uint64_t block = DataSumsBuilder::kBlockSize;
  std::vector<uint64_t> bytes = {0,          3,
                                 7,          8,
                                 12,         15,
                                 24,         27,
                                 31,         32,
                                 33,         records_at - 1,
                                 records_at, records_at + 5,
                                 block - 1,  block,
                                 block + 1,  (size + block) / 2,
                                 size - 2,   size - 1};
  int caught_by_sums = 0;
  int value_bytes = 0;
  for (const uint64_t at : bytes) {
    for (const int bit : {0, 5}) {
      SCOPED_TRACE(absl::StrCat("byte ", at, " bit ", bit));
      FlipBit(8 * at + bit);
      const std::string damaged = env_.Contents(kDataPath).value();
      absl::StatusOr<MergeResult> result = OpenAndMerge();
      ASSERT_FALSE(result.ok());
      EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss)
          << result.status();
      EXPECT_THAT(result.status().message(), HasSubstr(kDataPath));
      // A value byte's damage is seen by nothing but the sums.
      const bool value_byte =
          at >= records_at &&
          (at - records_at) % schema_.entry_size() >= schema_.key_size;
      if (value_byte) {
        ++value_bytes;
        EXPECT_THAT(result.status().message(), HasSubstr("checksum"));
      }
      if (absl::StrContains(result.status().message(), "checksum")) {
        ++caught_by_sums;
        const uint64_t begin = at / block * block;
        const uint64_t end = std::min(begin + block, size);
        EXPECT_THAT(result.status().message(),
                    HasSubstr(absl::StrCat("bytes [", begin, ", ", end, ")")));
      }
      EXPECT_FALSE(Exists(kMergePath));
      EXPECT_EQ(env_.Contents(kDataPath).value(), damaged);
    }
  }
  EXPECT_GE(value_bytes, 8);
  EXPECT_GE(caught_by_sums, value_bytes);
}

TEST_F(MergeSumsTest, WithoutSumsTheMergeProceeds) {
  // A value bit: the order of the records, which the merge checks, survives.
  const uint64_t records_at =
      IndexFile::kHeaderSize + data_->fanout().Export().size();
  const uint64_t value_byte = records_at + 100 * 8 + test::kSmallKeySize;
  FlipBit(8 * value_byte);
  ASSERT_OK(env_.RemoveFile(DataFile::SumsPath(kDataPath)));
  absl::StatusOr<MergeResult> result = OpenAndMerge();
  EXPECT_TRUE(result.ok()) << result.status();
}

TEST_F(MergeSumsTest, StaleOrDamagedSumsAreIgnored) {
  const uint64_t records_at =
      IndexFile::kHeaderSize + data_->fanout().Export().size();
  const uint64_t value_byte = records_at + 100 * 8 + test::kSmallKeySize;
  // Sums of another generation of the data file.
  FlipBit(8 * value_byte);
  SumsTarget stale = SumsTargetOf(*data_);
  stale.generation += 1;
  env_.SetContents(DataFile::SumsPath(kDataPath), DataSumsOf(original_, stale));
  absl::StatusOr<MergeResult> result = OpenAndMerge();
  EXPECT_TRUE(result.ok()) << result.status();
  if (result.ok()) (void)result->file->Close();
  // Damaged sums: one bit of the sidecar.
  FlipBit(8 * value_byte);
  std::string sums = original_sums_;
  sums[70] = static_cast<char>(sums[70] ^ 1);
  env_.SetContents(DataFile::SumsPath(kDataPath), sums);
  result = OpenAndMerge();
  EXPECT_TRUE(result.ok()) << result.status();
}

// The runs of a tiered merge or compaction are checked the same way.
TEST_F(MultiRunTest, AFlippedBitInAnOlderRunFailsTheMergeNamingIt) {
  const std::string path = RunPath(2);
  const std::string original = env_.Contents(path).value();
  ASSERT_TRUE(*env_.FileExists(DataFile::SumsPath(path)));
  const LogTable empty(schema_);  // a compaction: no log
  const LogTable log = TableOf(schema_, {{0, 9}});
  for (const LogTable* l : {&empty, &log}) {
    // A value byte of the last record: the run still opens.
    std::string bytes = original;
    bytes[bytes.size() - 1] = static_cast<char>(bytes[bytes.size() - 1] ^ 4);
    env_.SetContents(path, bytes);
    auto run = DataFile::Open(&env_, path, schema_);
    ASSERT_TRUE(run.ok()) << run.status();
    MergeRequest r = RunsRequest(*l);
    r.older_runs[1] = run->get();
    ExpectFailedWithoutOutput(
        WriteMerge(r), absl::StatusCode::kDataLoss,
        {path.c_str(),
         absl::StrCat("bytes [0, ", original.size(), ")").c_str()});
    EXPECT_EQ(env_.Contents(path).value(), bytes);
  }
  // Without its sidecar the run is read unchecked.
  ASSERT_OK(env_.RemoveFile(DataFile::SumsPath(path)));
  auto run = DataFile::Open(&env_, path, schema_);
  ASSERT_TRUE(run.ok()) << run.status();
  MergeRequest r = RunsRequest(empty);
  r.older_runs[1] = run->get();
  EXPECT_TRUE(WriteMerge(r).ok());
}

}  // namespace
}  // namespace kvindex
