// A reader's sync reads the log, then the data file (or the runs): a merge
// that commits in between must not leave it with the log as it was before the
// merge and the merge's output, where the stale log would shadow newer
// bindings of the output (a state the writer never was in).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "io/mem_env.h"
#include "testing/hooks.h"
#include "testing/keys.h"

namespace kvindex {
namespace {

constexpr char kRoot[] = "/store";

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

Options StoreOptions(MemEnv* env, Layout layout, bool readonly) {
  Options o;
  o.env = env;
  o.layout = layout;
  o.readonly = readonly;
  o.log_size = 1000;
  o.lru_size = 0;
  return o;
}

std::string Get(RawIndex* index, uint32_t key) {
  std::string value(test::kSmallValueSize, '\0');
  auto found = index->Find(test::SmallKey(key), value.data());
  EXPECT_TRUE(found.ok()) << found.status();
  return found.ok() && *found ? value : "absent";
}

// Opens a reader of the store in `env`; its first sync runs `writer_step`
// once it has read the log, before the data file or runs. Fails the test
// unless the step ran.
std::unique_ptr<RawIndex> OpenReaderRacing(MemEnv* env, Layout layout,
                                           const std::function<void()>& step) {
  test::HookSlot hooks;
  bool ran = false;
  test::ScopedHook hook(hooks, [&](HookPoint p) {
    if (p == HookPoint::kSyncLogOpened && !ran) {
      ran = true;
      step();
    }
    return absl::OkStatus();
  });
  Options options = StoreOptions(env, layout, true);
  options.test_hook = [&hooks](HookPoint p) { return hooks.Call(p); };
  auto reader = RawIndex::Open(kRoot, TestSchema(), options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE(ran);
  return reader.ok() ? *std::move(reader) : nullptr;
}

class ReaderSyncRaceTest : public ::testing::TestWithParam<Layout> {};

INSTANTIATE_TEST_SUITE_P(Layouts, ReaderSyncRaceTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered),
                         [](const auto& info) {
                           return info.param == Layout::kTiered ? "Tiered"
                                                                : "SingleFile";
                         });

// Key 1 is written twice, key 2 once after it: a reader may show the first
// value of key 1 without key 2, or the second with key 2, nothing else.
TEST_P(ReaderSyncRaceTest, AMergeBetweenTheLogAndTheDataFileIsCaughtUp) {
  MemEnv env;
  auto writer = RawIndex::Open(kRoot, TestSchema(),
                               StoreOptions(&env, GetParam(), false));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(1), test::SmallValue(10)).ok());
  ASSERT_TRUE((*writer)->Flush().ok());

  // The reader's first sync, at open: once it has read the log, the writer
  // writes the newer bindings and merges them into the data file (or a run).
  std::unique_ptr<RawIndex> reader = OpenReaderRacing(&env, GetParam(), [&] {
    EXPECT_TRUE(
        (*writer)->Replace(test::SmallKey(1), test::SmallValue(11)).ok());
    EXPECT_TRUE(
        (*writer)->Replace(test::SmallKey(2), test::SmallValue(20)).ok());
    EXPECT_TRUE((*writer)->Merge().ok());
    EXPECT_TRUE((*writer)->AwaitMerge().ok());
  });
  ASSERT_NE(reader, nullptr);
  const std::string one = Get(reader.get(), 1);
  const std::string two = Get(reader.get(), 2);
  if (two == "absent") {
    EXPECT_EQ(one, test::SmallValue(10));
  } else {
    EXPECT_EQ(two, test::SmallValue(20));
    EXPECT_EQ(one, test::SmallValue(11)) << "the stale log shadows the merge";
  }
}

// Key 1 merged into the data file (or a run), key 2 in the log; a clear comes
// once the reader has read the log. The reader shows both or neither, never
// the log without the data file the clear removed.
TEST_P(ReaderSyncRaceTest, AClearBetweenTheLogAndTheDataFileIsCaughtUp) {
  MemEnv env;
  auto writer = RawIndex::Open(kRoot, TestSchema(),
                               StoreOptions(&env, GetParam(), false));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(1), test::SmallValue(10)).ok());
  ASSERT_TRUE((*writer)->Merge().ok());
  ASSERT_TRUE((*writer)->AwaitMerge().ok());
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(2), test::SmallValue(20)).ok());
  ASSERT_TRUE((*writer)->Flush().ok());

  std::unique_ptr<RawIndex> reader = OpenReaderRacing(
      &env, GetParam(), [&] { EXPECT_TRUE((*writer)->Clear().ok()); });
  ASSERT_NE(reader, nullptr);
  const std::string one = Get(reader.get(), 1);
  const std::string two = Get(reader.get(), 2);
  EXPECT_EQ(one == "absent", two == "absent")
      << "key 1: " << one << ", key 2: " << two
      << " (the log without the data file the clear removed)";
}

// A merge is running (its log_async holds key 2) when a clear cancels it; the
// clear comes once the reader's sync has read log_async, before the log. The
// cleared log has the generation the cancelled merge gave its log_async, as a
// merge commit's would: the log_async read before the clear must not show
// under the cleared log.
TEST_P(ReaderSyncRaceTest, AClearOfARunningMergeDropsTheLogAsyncReadBefore) {
  MemEnv env;
  test::HookSlot writer_hooks;
  absl::Notification cancelled;
  test::ScopedHook writer_hook(writer_hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) cancelled.WaitForNotification();
    if (p == HookPoint::kClearAbortSignalled) cancelled.Notify();
    return absl::OkStatus();
  });
  Options options = StoreOptions(&env, GetParam(), false);
  options.test_hook = [&](HookPoint p) { return writer_hooks.Call(p); };
  auto writer = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(1), test::SmallValue(10)).ok());
  ASSERT_TRUE((*writer)->Merge().ok());  // held until the clear cancels it
  ASSERT_TRUE((*writer)->Replace(test::SmallKey(2), test::SmallValue(20)).ok());
  ASSERT_TRUE((*writer)->Flush().ok());

  bool armed = false, cleared = false;
  Options reader_options = StoreOptions(&env, GetParam(), true);
  reader_options.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kSyncBeforeOffsetRead && armed && !cleared) {
      cleared = true;
      EXPECT_TRUE((*writer)->Clear().ok());
    }
    return absl::OkStatus();
  };
  auto reader = RawIndex::Open(kRoot, TestSchema(), reader_options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ(Get(reader->get(), 1), test::SmallValue(10));
  ASSERT_EQ(Get(reader->get(), 2), test::SmallValue(20));

  armed = true;
  ASSERT_TRUE((*reader)->Sync().ok());
  ASSERT_TRUE(cleared);
  EXPECT_EQ(Get(reader->get(), 1), "absent");
  EXPECT_EQ(Get(reader->get(), 2), "absent")
      << "a binding of the cancelled merge's log_async outlived the clear";
}

// A writer stopped between a merge's commit (its output renamed over `data`,
// or its manifest written) and the reset of the log the merge froze: readers
// syncing then (or while the writer is dead there) see the merge's output,
// under the merge's log_async, and nothing of the frozen log.
class ReaderAtCommitTest : public ReaderSyncRaceTest {
 protected:
  void SetUp() override {
    Options options = StoreOptions(&env_, GetParam(), false);
    options.test_hook = [this](HookPoint p) { return hooks_.Call(p); };
    auto writer = RawIndex::Open(kRoot, TestSchema(), options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    writer_ = *std::move(writer);
    // Key 1 in the data file (or a run), keys 2 and 3 in the log.
    ASSERT_TRUE(writer_->Replace(test::SmallKey(1), test::SmallValue(10)).ok());
    ASSERT_TRUE(writer_->Merge().ok());
    ASSERT_TRUE(writer_->AwaitMerge().ok());
    ASSERT_TRUE(writer_->Replace(test::SmallKey(2), test::SmallValue(21)).ok());
    ASSERT_TRUE(writer_->Replace(test::SmallKey(3), test::SmallValue(30)).ok());
    ASSERT_TRUE(writer_->Flush().ok());
    auto reader = RawIndex::Open(kRoot, TestSchema(),
                                 StoreOptions(&env_, GetParam(), true));
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    ASSERT_EQ(Get(reader_.get(), 2), test::SmallValue(21));
  }

  // Runs `at_commit` once, at kMergeCommitted, for as long as `hook` lives.
  test::ScopedHook AtCommit(std::function<void()> at_commit) {
    return test::ScopedHook(hooks_, [this, at_commit](HookPoint p) {
      if (p == HookPoint::kMergeCommitted && !committed_) {
        committed_ = true;
        at_commit();
      }
      return absl::OkStatus();
    });
  }

  void SyncWhileTheCommitCopies(HookPoint point,
                                const std::function<void()>& race);

  MemEnv env_;
  test::HookSlot hooks_;
  bool committed_ = false;
  std::unique_ptr<RawIndex> writer_;
  std::unique_ptr<RawIndex> reader_;
};

INSTANTIATE_TEST_SUITE_P(Layouts, ReaderAtCommitTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered),
                         [](const auto& info) {
                           return info.param == Layout::kTiered ? "Tiered"
                                                                : "SingleFile";
                         });

// The frozen log still holds key 2, which the filter removed.
TEST_P(ReaderAtCommitTest, AFilterDoesNotComeBackThroughItsFrozenLog) {
  std::vector<std::string> synced, opened;
  {
    test::ScopedHook hook = AtCommit([&] {
      EXPECT_TRUE(reader_->Sync().ok());
      auto fresh = RawIndex::Open(kRoot, TestSchema(),
                                  StoreOptions(&env_, GetParam(), true));
      ASSERT_TRUE(fresh.ok()) << fresh.status();
      for (uint32_t k : {1, 2, 3}) {
        synced.push_back(Get(reader_.get(), k));
        opened.push_back(Get(fresh->get(), k));
      }
    });
    ASSERT_TRUE(writer_
                    ->Filter([](absl::string_view, absl::string_view v) {
                      return v != test::SmallValue(21);
                    })
                    .ok());
  }
  ASSERT_TRUE(committed_);
  const std::vector<std::string> filtered = {test::SmallValue(10), "absent",
                                             test::SmallValue(30)};
  // A reader that follows the log it had (still the file at its path) may
  // also keep the state before the filter, whole.
  const std::vector<std::string> before = {
      test::SmallValue(10), test::SmallValue(21), test::SmallValue(30)};
  EXPECT_TRUE(synced == filtered || synced == before)
      << "a synced reader: " << synced[0] << "," << synced[1] << ","
      << synced[2];
  EXPECT_EQ(opened, filtered) << "a reader opened then";
  ASSERT_TRUE(reader_->Sync().ok());
  for (uint32_t k : {1, 2, 3}) {
    EXPECT_EQ(Get(reader_.get(), k), filtered[k - 1]) << "after the commit";
  }
}

// Writes made while the merge ran are in its log_async: shown with the
// merge's output.
TEST_P(ReaderAtCommitTest, TheMergesLogAsyncShowsWithItsOutput) {
  absl::Notification written;
  std::vector<std::string> seen;
  test::ScopedHook before(hooks_, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) written.WaitForNotification();
    if (p == HookPoint::kMergeCommitted && !committed_) {
      committed_ = true;
      EXPECT_TRUE(reader_->Sync().ok());
      for (uint32_t k : {1, 2, 3, 4}) seen.push_back(Get(reader_.get(), k));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(writer_->Merge().ok());
  ASSERT_TRUE(writer_->Replace(test::SmallKey(2), test::SmallValue(22)).ok());
  ASSERT_TRUE(writer_->Replace(test::SmallKey(4), test::SmallValue(40)).ok());
  ASSERT_TRUE(writer_->Flush().ok());
  written.Notify();
  ASSERT_TRUE(writer_->AwaitMerge().ok());
  ASSERT_TRUE(committed_);
  EXPECT_EQ(seen, (std::vector<std::string>{
                      test::SmallValue(10), test::SmallValue(22),
                      test::SmallValue(30), test::SmallValue(40)}));
}

// A merge of keys 1-3, with key 4 written to its log_async, held after its
// log reset and before log_async is copied into the new log; a reader syncs
// then, and at `point` of its sync lets the merge go on and runs `race`. The
// reader must show every binding, key 4 included.
void ReaderAtCommitTest::SyncWhileTheCommitCopies(
    HookPoint point, const std::function<void()>& race) {
  absl::Notification written, paused, release;
  test::ScopedHook writer_hook(hooks_, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) written.WaitForNotification();
    if (p == HookPoint::kMergeAfterClear && !paused.HasBeenNotified()) {
      paused.Notify();
      release.WaitForNotification();
    }
    return absl::OkStatus();
  });
  bool raced = false;
  Options options = StoreOptions(&env_, GetParam(), true);
  options.test_hook = [&](HookPoint p) {
    if (p == point && paused.HasBeenNotified() && !raced) {
      raced = true;
      release.Notify();
      race();
    }
    return absl::OkStatus();
  };
  auto reader = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(reader.ok()) << reader.status();

  ASSERT_TRUE(writer_->Merge().ok());
  ASSERT_TRUE(writer_->Replace(test::SmallKey(4), test::SmallValue(40)).ok());
  ASSERT_TRUE(writer_->Flush().ok());
  written.Notify();
  paused.WaitForNotification();
  ASSERT_TRUE((*reader)->Sync().ok());
  ASSERT_TRUE(raced);
  EXPECT_EQ(Get(reader->get(), 4), test::SmallValue(40))
      << "the writes made during the merge are missing";
  EXPECT_EQ(Get(reader->get(), 1), test::SmallValue(10));
  EXPECT_EQ(Get(reader->get(), 2), test::SmallValue(21));
  EXPECT_EQ(Get(reader->get(), 3), test::SmallValue(30));
}

// A sync that caught the commit after its log reset keeps that log_async, which
// holds the writes made during the merge: whether it is wanted is judged
// against the commit this sync shows, even when the writer has committed
// another merge (here: once the sync has read the log and the data file)
// before the sync gets to decide.
TEST_P(ReaderAtCommitTest, ALaterCommitDoesNotHideTheLogAsyncOfTheOneShown) {
  SyncWhileTheCommitCopies(HookPoint::kSyncReloadLog, [this] {
    EXPECT_TRUE(writer_->Merge().ok());
    EXPECT_TRUE(writer_->AwaitMerge().ok());
  });
}

// A sync that reads the log just after the reset, when the writer then copies
// log_async into the log and removes it before the sync looks at log_async:
// the writes made during the merge are read from the log.
TEST_P(ReaderAtCommitTest, ALogAsyncRemovedAfterTheLogWasReadIsFoundInTheLog) {
  SyncWhileTheCommitCopies(HookPoint::kSyncLogOpened,
                           [this] { EXPECT_TRUE(writer_->AwaitMerge().ok()); });
}

}  // namespace
}  // namespace kvindex
