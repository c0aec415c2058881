#include "tests/index_model_flush_journal.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/file_header.h"
#include "io/mem_env.h"
#include "testing/keys.h"

namespace kvindex {
namespace index_model_test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

const Schema kSchema = test::MakeSchema(4, 2, 8, &test::FirstByteHash);

class FlushJournalTest : public ::testing::Test {
 protected:
  // Makes `log` hold `records` (key + value each), the first `committed` of
  // them committed by its header, the others trailing bytes.
  void WriteLog(const std::vector<std::string>& records, size_t committed) {
    FileHeader h;
    h.offset = static_cast<int64_t>(committed * kSchema.entry_size());
    std::string bytes = h.Encode();
    for (const std::string& r : records) bytes += r;
    env_.SetContents("/store/index/log", bytes);
  }

  MemEnv env_;
  FlushJournal journal_{&env_, "/store", kSchema};
};

TEST_F(FlushJournalTest, RecordsWrittenAfterTheirCallbackPass) {
  journal_.Issue("key1", "v1");
  journal_.OnFlush();  // before the write: the log is not there yet
  WriteLog({"key1v1"}, 1);
  journal_.Audit();
  journal_.Issue("key2", "v2");
  journal_.OnFlush();
  WriteLog({"key1v1", "key2v2"}, 2);
  journal_.Audit();
  EXPECT_THAT(journal_.TakeProblems(), IsEmpty());
}

TEST_F(FlushJournalTest, ACallbackAfterTheWriteFails) {
  journal_.Issue("key1", "v1");
  journal_.OnFlush();
  WriteLog({"key1v1"}, 1);
  journal_.Issue("key2", "v2");
  WriteLog({"key1v1", "key2v2"}, 2);
  journal_.OnFlush();
  EXPECT_EQ(journal_.TakeProblems(),
            "callback #2: log holds \"key2\"=\"v2\", written by replace #1 "
            "(from 0), but the last callback before ran after only 1 "
            "replaces\n");
}

TEST_F(FlushJournalTest, AWriteWithoutCallbackFailsTheAudit) {
  journal_.Issue("key1", "v1");
  WriteLog({"key1v1"}, 1);
  journal_.Audit();
  EXPECT_THAT(journal_.TakeProblems(),
              HasSubstr("audit: log holds \"key1\"=\"v1\""));
  EXPECT_THAT(journal_.TakeProblems(), IsEmpty());
}

TEST_F(FlushJournalTest, OnlyCommittedRecordsCount) {
  journal_.Issue("key1", "v1");
  journal_.OnFlush();
  WriteLog({"key1v1", "key2v2", "key3v"}, 1);  // then two uncommitted
  journal_.Audit();
  EXPECT_THAT(journal_.TakeProblems(), IsEmpty());
}

TEST_F(FlushJournalTest, ARecordNoReplaceWroteFails) {
  journal_.OnFlush();
  env_.SetContents("/store/index/log_async", [] {
    FileHeader h;
    h.offset = 6;
    return h.Encode() + "key9v9";
  }());
  journal_.Audit();
  EXPECT_THAT(journal_.TakeProblems(),
              HasSubstr("log_async holds \"key9\"=\"v9\", which no replace "
                        "wrote"));
}

}  // namespace
}  // namespace index_model_test
}  // namespace kvindex
