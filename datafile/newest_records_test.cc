#include "datafile/newest_records.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "datafile/test_run.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/mem_env.h"

namespace kvindex {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Keys are two bytes: the hash is the first byte, so keys "a0", "a1", ...
// share a hash.
uint64_t FirstByte(absl::string_view key) {
  return static_cast<unsigned char>(key[0]);
}

Schema TwoByteKeys() {
  Schema s;
  s.key_size = 2;
  s.value_size = 1;
  s.hash_bits = 8;
  s.hash = &FirstByte;
  return s;
}

class NewestRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.CreateDirs("/s").ok()); }

  // A run of entries "<key><value>", e.g. "a01".
  const DataFile* Run(const std::vector<std::string>& entries) {
    const int id = next_++;
    auto run =
        WriteTestRun(&env_, schema_, absl::StrCat("/s/run.", id), entries, id);
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok() || *run == nullptr) return nullptr;
    runs_.push_back(*run);
    return run->get();
  }

  // The stream as "<key><value>" strings; "error: ..." at the end on damage.
  std::vector<std::string> Stream(const std::vector<const DataFile*>& runs,
                                  uint64_t* consumed = nullptr) {
    NewestRecords records(schema_, runs);
    std::vector<std::string> out;
    NewestRecords::Record r;
    while (records.Next(&r)) {
      EXPECT_EQ(r.hash, FirstByte(absl::string_view(r.entry, 2)));
      out.emplace_back(r.entry, schema_.entry_size());
    }
    if (!records.status().ok()) {
      out.push_back(absl::StrCat("error: ", records.status().ToString()));
    }
    if (consumed != nullptr) *consumed = records.consumed();
    return out;
  }

  MemEnv env_;
  Schema schema_ = TwoByteKeys();
  int next_ = 1;
  std::vector<std::shared_ptr<const DataFile>> runs_;
};

TEST_F(NewestRecordsTest, EachKeyOnceWithItsNewestRecordInHashOrder) {
  const DataFile* oldest = Run({"a01", "a11", "b01", "c01", "d01"});
  const DataFile* middle = Run({"a12", "c12", "c22", "e02"});
  const DataFile* newest = Run({"a23", "a13", "c23", "f03"});
  ASSERT_NE(oldest, nullptr);
  ASSERT_NE(middle, nullptr);
  ASSERT_NE(newest, nullptr);
  uint64_t consumed = 0;
  const std::vector<std::string> stream =
      Stream({newest, middle, oldest}, &consumed);
  // Within a hash: the newest run's records (in its own order), then each
  // older run's records of keys not seen yet ("a12", "a11" and "c22" are
  // older bindings of "a1" and "c2").
  ASSERT_EQ(stream.size(), 10u);
  EXPECT_THAT(std::vector<std::string>(stream.begin(), stream.begin() + 2),
              UnorderedElementsAre("a13", "a23"));
  EXPECT_THAT(
      std::vector<std::string>(stream.begin() + 2, stream.end()),
      ElementsAre("a01", "b01", "c23", "c12", "c01", "d01", "e02", "f03"));
  EXPECT_EQ(consumed, 13u);
}

TEST_F(NewestRecordsTest, NoRunsOrOneRun) {
  EXPECT_TRUE(Stream({}).empty());
  const DataFile* run = Run({"b01", "a01", "a11"});
  ASSERT_NE(run, nullptr);
  const std::vector<std::string> stream = Stream({run});
  ASSERT_EQ(stream.size(), 3u);
  EXPECT_EQ(stream[2], "b01");
}

// A run out of hash order where the open does not sample it (records 1 and 2
// of 100: "10" before "01"): the stream stops with kDataLoss naming it.
TEST_F(NewestRecordsTest, AnUnsortedRunStopsTheStreamWithDataLoss) {
  const DataFile* good = Run({"a01", "c01"});
  std::vector<std::string> entries;
  for (int i = 0; i < 100; ++i) {
    entries.push_back(
        absl::StrCat(std::string(1, static_cast<char>('0' + i / 2)),
                     std::string(1, static_cast<char>('0' + i % 2)), "2"));
  }
  const DataFile* bad = Run(entries);
  ASSERT_NE(good, nullptr);
  ASSERT_NE(bad, nullptr);
  // Swap records 1 and 2, keeping the header and the fan-out table.
  const std::string path = bad->path();
  std::string bytes = env_.Contents(path).value();
  const size_t e = schema_.entry_size();
  const size_t records = bytes.size() - 100 * e;
  bytes.replace(records + e, 2 * e, "102012");
  env_.SetContents(path, bytes);
  auto reopened = DataFile::Open(&env_, path, schema_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  const std::vector<std::string> stream = Stream({reopened->get(), good});
  ASSERT_FALSE(stream.empty());
  EXPECT_THAT(stream.back(), HasSubstr("DATA_LOSS"));
  EXPECT_THAT(stream.back(), HasSubstr(path));
  EXPECT_THAT(stream.back(), HasSubstr("not sorted"));
}

// Out of order where the open samples it: refused at open.
TEST_F(NewestRecordsTest, AnUnsortedShortRunIsRefusedAtOpen) {
  const DataFile* bad = Run({"b02", "c02"});
  ASSERT_NE(bad, nullptr);
  const std::string path = bad->path();
  std::string bytes = env_.Contents(path).value();
  bytes.replace(bytes.size() - 2 * schema_.entry_size(), 6, "c02b02");
  env_.SetContents(path, bytes);
  auto reopened = DataFile::Open(&env_, path, schema_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(reopened.status().message()), HasSubstr(path));
}

}  // namespace
}  // namespace kvindex
