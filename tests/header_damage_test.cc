// Damaged header fields of a single-file store (the OCaml library's layout):
// each damage that used to make the index serve bindings never written, or
// delete a file without a word, is now a kDataLoss naming the file and the
// field, and the open changes no file.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "io/mem_env.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kRoot[] = "/store";
constexpr char kLog[] = "/store/index/log";
constexpr char kData[] = "/store/index/data";
constexpr uint32_t kBindings = 900;

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

Options StoreOptions(MemEnv* env, bool readonly) {
  Options o;
  o.env = env;
  o.readonly = readonly;
  o.log_size = 100000;
  o.lru_size = 0;
  return o;
}

class HeaderDamageTest : public ::testing::Test {
 protected:
  // kBindings bindings, flushed; merged into the data file if `merge` (the
  // log is then empty).
  void WriteStore(bool merge) {
    auto index =
        RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env_, false));
    ASSERT_TRUE(index.ok()) << index.status();
    for (uint32_t k = 0; k < kBindings; ++k) {
      ASSERT_TRUE(
          (*index)->Replace(test::SmallKey(k), test::SmallValue(k)).ok());
    }
    if (merge) {
      ASSERT_TRUE((*index)->Merge().ok());
      ASSERT_TRUE((*index)->AwaitMerge().ok());
    }
    ASSERT_TRUE((*index)->Close().ok());
  }

  // Binds key 1 to value 7 in the log (closing the writer flushes it).
  void RebindKeyOne() {
    auto index =
        RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env_, false));
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_TRUE((*index)->Replace(test::SmallKey(1), test::SmallValue(7)).ok());
    ASSERT_TRUE((*index)->Close().ok());
  }

  // Sets byte `at` of `path` to `value`.
  void SetByte(const std::string& path, size_t at, char value) {
    std::string bytes = env_.Contents(path).value();
    ASSERT_LT(at, bytes.size());
    bytes[at] = value;
    env_.SetContents(path, bytes);
  }

  // Every file's bytes.
  std::map<std::string, std::string> Files() {
    std::map<std::string, std::string> files;
    for (const std::string& path : env_.ListFiles()) {
      files[path] = env_.Contents(path).value();
    }
    return files;
  }

  // Both open modes (or the writer's only) fail with kDataLoss whose message
  // holds every one of `fragments`, and leave every file as it was (the lock
  // file aside).
  void ExpectRefused(const std::vector<std::string>& fragments,
                     bool readers_too = true) {
    std::map<std::string, std::string> before = Files();
    for (bool readonly : {true, false}) {
      if (readonly && !readers_too) continue;
      SCOPED_TRACE(readonly ? "read-only" : "read-write");
      auto index =
          RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env_, readonly));
      ASSERT_FALSE(index.ok()) << "opened a damaged store";
      EXPECT_EQ(index.status().code(), absl::StatusCode::kDataLoss)
          << index.status();
      for (const std::string& f : fragments) {
        EXPECT_THAT(std::string(index.status().message()), HasSubstr(f));
      }
    }
    std::map<std::string, std::string> after = Files();
    before.erase("/store/index/lock");
    after.erase("/store/index/lock");
    EXPECT_EQ(after, before);
  }

  MemEnv env_;
};

// Issue: a log with a fan-out size read its records 8 bytes off.
TEST_F(HeaderDamageTest, LogWithAFanoutSize) {
  WriteStore(/*merge=*/false);
  SetByte(kLog, 31, '\x08');
  ExpectRefused({kLog, "fan_size"});
}

// A data file whose fan-out size shrank to one slot read records from the
// fan-out table's bytes.
TEST_F(HeaderDamageTest, DataFileWithAShrunkFanout) {
  WriteStore(/*merge=*/true);
  std::string bytes = env_.Contents(kData).value();
  ASSERT_GT(bytes[31], '\x08');  // a table of more than one slot
  SetByte(kData, 31, '\x08');
  for (size_t i = 24; i < 31; ++i) SetByte(kData, i, '\0');
  ExpectRefused({kData});
}

// A data file claiming more records than it holds lost the rest silently.
TEST_F(HeaderDamageTest, DataFileOffsetPastItsEnd) {
  WriteStore(/*merge=*/true);
  std::string bytes = env_.Contents(kData).value();
  SetByte(kData, 6, static_cast<char>(bytes[6] + 1));  // + 256 bytes
  ExpectRefused({kData, "header fields offset and fan_size"});
}

// ... and one claiming fewer records than it holds hid the rest as silently.
TEST_F(HeaderDamageTest, DataFileOffsetShortOfItsEnd) {
  WriteStore(/*merge=*/true);
  std::string bytes = env_.Contents(kData).value();
  SetByte(kData, 7, static_cast<char>(bytes[7] - 1));  // - 1 byte
  ExpectRefused({kData, "a data file ends where its records do"});
}

// A raised log generation made the writer take the data file for one an
// interrupted clear left, and delete it.
TEST_F(HeaderDamageTest, LogGenerationRaisedByOneBit) {
  WriteStore(/*merge=*/true);
  std::string bytes = env_.Contents(kLog).value();
  SetByte(kLog, 23, static_cast<char>(bytes[23] | 0x04));
  ExpectRefused({kData, "generation"});
}

// The same, one generation ahead: without records in the log it would pass
// for a clear cut short, so the damage is in a store whose log holds records.
TEST_F(HeaderDamageTest, LogGenerationOneAheadWithRecordsInTheLog) {
  WriteStore(/*merge=*/true);
  RebindKeyOne();
  std::string bytes = env_.Contents(kLog).value();
  SetByte(kLog, 23, static_cast<char>(bytes[23] + 1));
  ExpectRefused({kData, "log holds 1 records"});
}

// The commonest store, just merged with an empty log: a log generation one
// higher looks exactly like a clear cut after its log reset, but no clear
// marker agrees, so the data file stays.
TEST_F(HeaderDamageTest, LogGenerationOneAheadOfAMergedStoreWithAnEmptyLog) {
  WriteStore(/*merge=*/true);
  std::string bytes = env_.Contents(kLog).value();
  ASSERT_EQ(bytes.size(), 32u);  // the merge left the log empty
  SetByte(kLog, 23, static_cast<char>(bytes[23] + 1));
  ExpectRefused({kData, "there is no clear marker"});
}

// A data file one generation ahead of the log made the writer finish a merge
// commit that never happened: the log's newer values were dropped. Readers
// ask for the same evidence (they show such a commit without the log it
// froze, docs/design.md §6), so they refuse too.
TEST_F(HeaderDamageTest, DataGenerationOneAheadWithoutTheMergesLogAsync) {
  WriteStore(/*merge=*/true);
  RebindKeyOne();
  std::string bytes = env_.Contents(kData).value();
  SetByte(kData, 23, static_cast<char>(bytes[23] + 1));
  ExpectRefused({kData, "log_async", "missing"});
}

// The tiered layout's counterpart of LogGenerationOneAheadOfAMergedStore...:
// a manifest one generation behind an empty log passes for a clear cut after
// its log reset only with the clear's marker. Readers used to show no run.
TEST_F(HeaderDamageTest, LogGenerationOneAheadOfATieredStoreWithAnEmptyLog) {
  {
    Options options = StoreOptions(&env_, false);
    options.layout = Layout::kTiered;
    auto index = RawIndex::Open(kRoot, TestSchema(), options);
    ASSERT_TRUE(index.ok()) << index.status();
    for (uint32_t k = 0; k < kBindings; ++k) {
      ASSERT_TRUE(
          (*index)->Replace(test::SmallKey(k), test::SmallValue(k)).ok());
    }
    ASSERT_TRUE((*index)->Merge().ok());
    ASSERT_TRUE((*index)->AwaitMerge().ok());
    ASSERT_TRUE((*index)->Close().ok());
  }
  std::string bytes = env_.Contents(kLog).value();
  ASSERT_EQ(bytes.size(), 32u);  // the merge left the log empty
  SetByte(kLog, 23, static_cast<char>(bytes[23] + 1));
  ExpectRefused({"/store/index/manifest", "there is no clear marker"});
}

// A missing or emptied log next to a data file used to show an empty store
// to readers, and to the writer a store whose data file one more damaged bit
// could delete: both refuse it now.
TEST_F(HeaderDamageTest, MissingOrEmptyLogNextToData) {
  WriteStore(/*merge=*/true);
  const std::string log = env_.Contents(kLog).value();
  ASSERT_TRUE(env_.RemoveFile(kLog).ok());
  ExpectRefused({kLog, "missing or shorter than a header"});
  env_.SetContents(kLog, "");
  ExpectRefused({kLog, "missing or shorter than a header"});
  // Put back, the store opens with every binding.
  env_.SetContents(kLog, log);
  auto index = RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env_, false));
  ASSERT_TRUE(index.ok()) << index.status();
  std::string value(test::kSmallValueSize, '\0');
  for (uint32_t k = 0; k < kBindings; ++k) {
    auto found = (*index)->Find(test::SmallKey(k), value.data());
    ASSERT_TRUE(found.ok() && *found) << k;
  }
}

}  // namespace
}  // namespace kvindex
