#include "tests/index_model_data_files.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/file_header.h"
#include "testing/keys.h"

namespace kvindex {
namespace index_model_test {
namespace {

using ::testing::HasSubstr;

// 4-byte keys whose first byte is their 8-bit hash, 4-byte values.
const Schema kSchema = test::MakeSchema(4, 4, 8, &test::FirstByteHash);

std::string Key(int hash, char tag) {
  return std::string(1, static_cast<char>(hash)) + "ke" + tag;
}

// A data file holding `keys` (in this order) with a fan-out table of `slots`.
std::string DataFile(const std::vector<std::string>& keys,
                     const std::vector<uint64_t>& slots) {
  FileHeader h;
  h.offset = static_cast<int64_t>(keys.size() * kSchema.entry_size());
  h.generation = 3;
  h.fan_size = static_cast<int64_t>(slots.size() * 8);
  std::string bytes = h.Encode();
  for (uint64_t slot : slots) {
    char b[8];
    absl::big_endian::Store64(b, slot);
    bytes.append(b, 8);
  }
  for (const std::string& key : keys) bytes += key + "vvvv";
  return bytes;
}

TEST(IsDataFileName, DataAndRunsOnly) {
  EXPECT_TRUE(IsDataFileName("data"));
  EXPECT_TRUE(IsDataFileName("run.0"));
  EXPECT_TRUE(IsDataFileName("run.17"));
  EXPECT_FALSE(IsDataFileName("run.17.filter"));
  EXPECT_FALSE(IsDataFileName("run."));
  EXPECT_FALSE(IsDataFileName("data.filter"));
  EXPECT_FALSE(IsDataFileName("merge"));
  EXPECT_FALSE(IsDataFileName("log"));
}

TEST(DataFileProblems, AcceptsAWellFormedFile) {
  // Four buckets of 64 hashes: bucket 0 empty, record 0 opens bucket 1, bucket
  // 2 empty, bucket 3 holds two records of one hash.
  const std::vector<std::string> keys = {Key(70, 'a'), Key(100, 'a'),
                                         Key(200, 'a'), Key(200, 'b')};
  DataFileShape shape;
  EXPECT_EQ(DataFileProblems(DataFile(keys, {0, 8, 8, 24}), kSchema, &shape),
            "");
  EXPECT_EQ(shape.records, 4u);
  EXPECT_EQ(shape.buckets, 4u);
  EXPECT_EQ(DataFileProblems(DataFile({}, {0, 0}), kSchema), "");
  EXPECT_EQ(DataFileProblems(DataFile(keys, {24}), kSchema), "");
}

TEST(DataFileProblems, FindsSlotsThatDoNotMatchTheRecords) {
  const std::vector<std::string> keys = {Key(70, 'a'), Key(100, 'a'),
                                         Key(200, 'a'), Key(200, 'b')};
  EXPECT_THAT(DataFileProblems(DataFile(keys, {0, 8, 8, 16}), kSchema),
              HasSubstr("fan-out slot 3 of 4 is 16, its records call for 24"));
  EXPECT_THAT(DataFileProblems(DataFile(keys, {0, 8, 0, 24}), kSchema),
              HasSubstr("fan-out slot 2 of 4 is 0"));
}

TEST(DataFileProblems, FindsUnsortedRecordsAndRepeatedKeys) {
  EXPECT_THAT(
      DataFileProblems(DataFile({Key(100, 'a'), Key(70, 'a')}, {0}), kSchema),
      HasSubstr("record 1 hashes below record 0"));
  EXPECT_THAT(DataFileProblems(
                  DataFile({Key(100, 'a'), Key(100, 'b'), Key(100, 'a')}, {0}),
                  kSchema),
              HasSubstr("record 2 repeats an earlier key"));
}

TEST(DataFileProblems, FindsABadHeader) {
  EXPECT_THAT(DataFileProblems("short", kSchema), HasSubstr("header"));
  std::string bytes = DataFile({Key(1, 'a')}, {0, 0, 0});
  EXPECT_THAT(DataFileProblems(bytes, kSchema), HasSubstr("is not 8 * 2^k"));
  bytes = DataFile({Key(1, 'a')}, {0});
  bytes.resize(bytes.size() - 1);
  EXPECT_THAT(DataFileProblems(bytes, kSchema),
              HasSubstr("offset 8 in a file"));
}

}  // namespace
}  // namespace index_model_test
}  // namespace kvindex
