// Durable flushes from many threads (group commit, index/group_commit.h): they
// share their fsyncs, and after a power loss at any write point every binding
// replaced before an acknowledged durable flush began is there, whichever
// thread replaced it, and nothing that was never written appears.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "index/stats.h"
#include "io/mem_env.h"
#include "rapidcheck.h"
#include "testing/hooks.h"
#include "testing/keys.h"
#include "tests/index_model_util.h"

namespace kvindex {
namespace {

using index_model_test::AssertOk;
using index_model_test::CheckProperty;
using index_model_test::Fail;
using index_model_test::Uniform;

constexpr char kRoot[] = "/store";
constexpr FlushOptions kDurable{.with_fsync = true};

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

// Key i is written once, with this value: a value found for a key is either
// its own or a phantom.
std::string ValueOf(uint32_t key) { return test::SmallValue(key * 7 + 3); }

Options StoreOptions(MemEnv* env, Layout layout, uint64_t log_size) {
  Options o;
  o.env = env;
  o.log_size = log_size;
  o.lru_size = 0;
  o.layout = layout;
  return o;
}

class DurableFlushTest : public ::testing::TestWithParam<Layout> {};

INSTANTIATE_TEST_SUITE_P(Layouts, DurableFlushTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered),
                         [](const auto& info) {
                           return info.param == Layout::kTiered ? "Tiered"
                                                                : "SingleFile";
                         });

// Seven flushes that wrote while another thread's fsync ran wait for the next
// one, which serves them all: two fsyncs for eight durable flushes, and all
// eight bindings survive the harshest power loss.
TEST_P(DurableFlushTest, FlushesWaitingBehindAnFsyncShareTheNext) {
  MemEnv env;
  test::HookSlot hooks;
  Options options = StoreOptions(&env, GetParam(), /*log_size=*/1000);
  options.test_hook = [&hooks](HookPoint p) { return hooks.Call(p); };
  auto index = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(index.ok()) << index.status();

  test::Semaphore first_sync_started, release_first_sync;
  absl::Mutex mu;
  int syncs_started = 0;
  int awaiting = 0;
  auto hook = [&](HookPoint p) {
    if (p == HookPoint::kFlushAwaitDurable) {
      absl::MutexLock lock(&mu);
      ++awaiting;
    } else if (p == HookPoint::kFlushSync) {
      bool first;
      {
        absl::MutexLock lock(&mu);
        first = ++syncs_started == 1;
      }
      if (first) {
        first_sync_started.Release();
        release_first_sync.Acquire();
      }
    }
    return absl::OkStatus();
  };
  test::ScopedHook scoped(hooks, hook);
  ResetStats();

  constexpr uint32_t kWriters = 8;
  auto write = [&](uint32_t k) {
    EXPECT_TRUE((*index)->Replace(test::SmallKey(k), ValueOf(k)).ok());
    const absl::Status st = (*index)->Flush(kDurable);
    EXPECT_TRUE(st.ok()) << st;
  };
  std::vector<std::thread> threads;
  threads.emplace_back(write, 0);
  first_sync_started.Acquire();
  for (uint32_t k = 1; k < kWriters; ++k) threads.emplace_back(write, k);
  {
    absl::MutexLock lock(&mu);
    auto all_waiting = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return awaiting == static_cast<int>(kWriters);
    };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_waiting),
                                    test::kHookWaitTimeout));
  }
  release_first_sync.Release();
  for (std::thread& t : threads) t.join();
  const Stats stats = GetStats();
  EXPECT_EQ(stats.nb_durable_flush, kWriters);
  EXPECT_EQ(stats.nb_flush_fsync, 2u);

  // No close: the power goes with the index open.
  CrashOptions harsh;
  harsh.keep_unsynced_prefix = false;
  harsh.tear_last_write = false;
  env.Restart(harsh);
  index->reset();
  options.test_hook = nullptr;
  auto reopened = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  for (uint32_t k = 0; k < kWriters; ++k) {
    std::string value(test::kSmallValueSize, '\0');
    auto found = (*reopened)->Find(test::SmallKey(k), value.data());
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(*found) << "key " << k;
    EXPECT_EQ(value, ValueOf(k));
  }
}

// Sixteen threads replace and flush durably while merges (and compactions)
// run and two more threads find; every binding is there at the end. Mostly
// for ThreadSanitizer.
TEST_P(DurableFlushTest, SixteenWritersFlushWhileMergesRun) {
  MemEnv env;
  auto index = RawIndex::Open(kRoot, TestSchema(),
                              StoreOptions(&env, GetParam(), /*log_size=*/24));
  ASSERT_TRUE(index.ok()) << index.status();
  constexpr uint32_t kWriters = 16;
  constexpr uint32_t kOpsPerWriter = 40;
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < kOpsPerWriter; ++i) {
        const uint32_t k = t * kOpsPerWriter + i;
        ASSERT_TRUE((*index)->Replace(test::SmallKey(k), ValueOf(k)).ok());
        const absl::Status st = (*index)->Flush(kDurable);
        ASSERT_TRUE(st.ok()) << st;
      }
    });
  }
  std::vector<std::thread> readers;
  for (uint32_t r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::string value(test::kSmallValueSize, '\0');
      for (uint32_t k = r; writing; k = (k + 7) % (kWriters * kOpsPerWriter)) {
        auto found = (*index)->Find(test::SmallKey(k), value.data());
        ASSERT_TRUE(found.ok()) << found.status();
        if (*found) {
          ASSERT_EQ(value, ValueOf(k)) << "key " << k;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  writing = false;
  for (std::thread& t : readers) t.join();
  ASSERT_TRUE((*index)->AwaitMerge().ok());
  for (uint32_t k = 0; k < kWriters * kOpsPerWriter; ++k) {
    std::string value(test::kSmallValueSize, '\0');
    auto found = (*index)->Find(test::SmallKey(k), value.data());
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(*found) << "key " << k;
    EXPECT_EQ(value, ValueOf(k)) << "key " << k;
  }
  EXPECT_TRUE((*index)->Close().ok());
}

// A merge's commit builds the next log from log_async's records ahead of the
// writer lock, then under it copies those writers added meanwhile and fsyncs
// the new log before it replaces the old one (docs/design.md §3.4, steps 4
// and 5.2): records written while the next log was built are there after a
// power loss right after the swap, although nobody flushed them.
TEST_P(DurableFlushTest, RecordsWrittenDuringACommitAreDurableBeforeTheReset) {
  MemEnv env;
  Options options = StoreOptions(&env, GetParam(), /*log_size=*/1000);
  test::HookSlot hooks;
  options.test_hook = [&hooks](HookPoint p) { return hooks.Call(p); };
  auto index = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(index.ok()) << index.status();
  for (uint32_t k = 0; k < 4; ++k) {
    ASSERT_TRUE((*index)->Replace(test::SmallKey(k), ValueOf(k)).ok());
  }
  ASSERT_TRUE((*index)->Flush(kDurable).ok());
  int written_during_commit = 0;
  hooks.Set([&](HookPoint p) {
    if (p == HookPoint::kMergeCommitted) {
      // Before the next log is built: log_async has a record for it to copy.
      EXPECT_TRUE((*index)->Replace(test::SmallKey(9), ValueOf(9)).ok());
    } else if (p == HookPoint::kMergeNextLogBuilt) {
      // On the merge's thread, which holds no lock of the index here.
      for (uint32_t k = 10; k < 14; ++k) {
        EXPECT_TRUE((*index)->Replace(test::SmallKey(k), ValueOf(k)).ok());
        ++written_during_commit;
      }
    } else if (p == HookPoint::kMergeAfterClear) {
      env.CrashAfter(0);
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE((*index)->Replace(test::SmallKey(4), ValueOf(4)).ok());
  ASSERT_TRUE((*index)->Merge().ok());
  (void)(*index)->AwaitMerge();
  ASSERT_EQ(written_during_commit, 4);
  ASSERT_TRUE(env.crashed());
  hooks.Set(nullptr);
  index->reset();
  CrashOptions power_loss;
  power_loss.keep_unsynced_prefix = false;
  env.Restart(power_loss);
  auto reopened = RawIndex::Open(kRoot, TestSchema(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  for (uint32_t k : {0u, 1u, 2u, 3u, 4u, 9u, 10u, 11u, 12u, 13u}) {
    std::string value(test::kSmallValueSize, '\0');
    auto found = (*reopened)->Find(test::SmallKey(k), value.data());
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(*found) << "key " << k;
    if (*found) {
      EXPECT_EQ(value, ValueOf(k)) << "key " << k;
    }
  }
}

// What one writer thread did, on a clock shared by all threads.
struct WriterLog {
  std::vector<std::pair<uint32_t, uint64_t>> replaced;  // key, returned at
  uint64_t last_ok_flush_start = 0;  // 0: no durable flush returned OK
};

// Power loss at any write point while several threads replace and flush
// durably (merges running): every replace that returned before some
// acknowledged durable flush began is found after recovery, and everything
// found was written.
TEST(DurableFlushProperty, AcknowledgedFlushesSurvivePowerLoss) {
  CheckProperty(
      [] {
        const Layout layout =
            *rc::gen::element(Layout::kSingleFile, Layout::kTiered);
        const int writers = *Uniform(2, 7);
        const int ops = *Uniform(1, 50);
        const int flush_every = *Uniform(1, 4);
        const uint64_t log_size = *Uniform(3, 40);
        const uint64_t crash_after = *Uniform<uint64_t>(0, 1500);
        CrashOptions crash;
        crash.seed = *rc::gen::arbitrary<uint64_t>();
        crash.keep_unsynced_prefix = *rc::gen::arbitrary<bool>();
        crash.tear_last_write = *rc::gen::arbitrary<bool>();
        crash.overwrites_overtake_appends = *rc::gen::arbitrary<bool>();
        // With log checksums, the power cut may keep pages in any order
        // (docs/design.md §11.2): the sidecar's fsync is shared by the group
        // like the log's.
        const bool log_checksums = *rc::gen::arbitrary<bool>();
        crash.pages_in_any_order = log_checksums && *rc::gen::arbitrary<bool>();
        crash.page_size = *rc::gen::element<uint64_t>(64, 4096);
        crash.dir_ops_in_any_order = *rc::gen::arbitrary<bool>();

        MemEnv env;
        Options options = StoreOptions(&env, layout, log_size);
        options.log_checksums = log_checksums;
        auto index = RawIndex::Open(kRoot, TestSchema(), options);
        AssertOk(index.status(), "open");
        env.CrashAfter(crash_after);

        std::atomic<uint64_t> clock{1};
        std::vector<WriterLog> logs(writers);
        std::vector<std::thread> threads;
        for (int t = 0; t < writers; ++t) {
          threads.emplace_back([&, t] {
            WriterLog& log = logs[t];
            for (int i = 0; i < ops; ++i) {
              const uint32_t k = static_cast<uint32_t>(t * ops + i);
              if (!(*index)->Replace(test::SmallKey(k), ValueOf(k)).ok()) {
                return;
              }
              log.replaced.emplace_back(k, clock++);
              if ((i + 1) % flush_every != 0 && i + 1 != ops) continue;
              const uint64_t start = clock++;
              if (!(*index)->Flush(kDurable).ok()) return;
              log.last_ok_flush_start = start;
            }
          });
        }
        for (std::thread& t : threads) t.join();
        (void)(*index)->Close();
        index->reset();
        env.Restart(crash);

        uint64_t durable_before = 0;
        for (const WriterLog& log : logs) {
          durable_before = std::max(durable_before, log.last_ok_flush_start);
        }
        auto reopened = RawIndex::Open(kRoot, TestSchema(), options);
        AssertOk(reopened.status(), "reopen after the power loss");
        std::string value(test::kSmallValueSize, '\0');
        for (const WriterLog& log : logs) {
          for (const auto& [k, returned_at] : log.replaced) {
            if (returned_at >= durable_before) continue;
            auto found = (*reopened)->Find(test::SmallKey(k), value.data());
            AssertOk(found.status(), "find");
            if (!*found || value != ValueOf(k)) {
              Fail(absl::StrCat("key ", k, " replaced at ", returned_at,
                                " before a durable flush that began at ",
                                durable_before, " is lost"));
            }
          }
        }
        const uint32_t written = static_cast<uint32_t>(writers * ops);
        bool phantom = false;
        AssertOk(
            (*reopened)->Iter([&](absl::string_view key, absl::string_view v) {
              bool known = false;
              for (uint32_t k = 0; k < written && !known; ++k) {
                known = key == test::SmallKey(k) && v == ValueOf(k);
              }
              phantom = phantom || !known;
            }),
            "iter");
        if (phantom) Fail("the recovered store holds a binding never written");
        AssertOk((*reopened)->Close(), "close");
      },
      /*cases=*/150, /*soak_cases=*/5000);
}

}  // namespace
}  // namespace kvindex
