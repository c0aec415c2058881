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

TEST_F(NewestRecordsTest, AnUnsortedRunStopsTheStreamWithDataLoss) {
  const DataFile* good = Run({"a01", "c01"});
  // Overwrite the records of a second run out of order ("c" before "b"),
  // keeping its header and fan-out table.
  const DataFile* bad = Run({"b02", "c02"});
  ASSERT_NE(good, nullptr);
  ASSERT_NE(bad, nullptr);
  const std::string path = bad->path();
  std::string bytes = env_.Contents(path).value();
  const size_t records = bytes.size() - 2 * schema_.entry_size();
  bytes.replace(records, 6, "c02b02");
  env_.SetContents(path, bytes);
  auto reopened = DataFile::Open(&env_, path, schema_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  const std::vector<std::string> stream = Stream({reopened->get(), good});
  ASSERT_FALSE(stream.empty());
  EXPECT_THAT(stream.back(), HasSubstr("DATA_LOSS"));
  EXPECT_THAT(stream.back(), HasSubstr(path));
  EXPECT_THAT(stream.back(), HasSubstr("not sorted"));
}

}  // namespace
}  // namespace kvindex
