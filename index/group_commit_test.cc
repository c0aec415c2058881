#include "index/group_commit.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "testing/sleeping.h"

namespace kvindex {
namespace index_internal {
namespace {

TEST(GroupCommitTest, OneThreadSyncsOncePerNewTicket) {
  GroupCommit group;
  int syncs = 0;
  // Writes happen before the tickets here: a sync covers every ticket so far.
  auto sync = [&]() -> absl::StatusOr<uint64_t> {
    ++syncs;
    return group.LastTicket();
  };
  const uint64_t first = group.NextTicket();
  EXPECT_TRUE(group.AwaitDurable(first, sync).ok());
  EXPECT_EQ(syncs, 1);
  // Already covered: no second fsync.
  EXPECT_TRUE(group.AwaitDurable(first, sync).ok());
  EXPECT_EQ(syncs, 1);
  const uint64_t second = group.NextTicket();
  EXPECT_GT(second, first);
  EXPECT_TRUE(group.AwaitDurable(second, sync).ok());
  EXPECT_EQ(syncs, 2);
  EXPECT_EQ(group.syncs(), 2u);
}

// A first ticket whose sync runs in its own thread and is held until
// Release(): Started() returns once it has read the last ticket (with
// TakeGroup if `take_group`). The sync returns `result` if it is an error.
class HeldSync {
 public:
  explicit HeldSync(GroupCommit& group, bool take_group = false,
                    absl::Status result = absl::OkStatus())
      : group_(group) {
    const uint64_t ticket = group_.NextTicket();
    thread_ = std::thread([this, ticket, take_group, result] {
      EXPECT_EQ(group_.AwaitDurable(ticket,
                                    [&]() -> absl::StatusOr<uint64_t> {
                                      const uint64_t covered =
                                          take_group ? group_.TakeGroup()
                                                     : group_.LastTicket();
                                      started_.Notify();
                                      release_.WaitForNotification();
                                      done_ = true;
                                      if (!result.ok()) return result;
                                      return covered;
                                    }),
                result);
    });
  }
  ~HeldSync() { Join(); }

  void Started() { started_.WaitForNotification(); }
  void Release() { release_.Notify(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_; }

 private:
  GroupCommit& group_;
  absl::Notification started_, release_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST(GroupCommitTest, ASyncStartedBeforeTheTicketDoesNotCoverIt) {
  GroupCommit group;
  HeldSync first(group);
  first.Started();
  // Taken while the first sync runs: that sync may have missed its write.
  std::atomic<bool> second_ran_after_first{false};
  const uint64_t second = group.NextTicket();
  std::thread follower([&] {
    EXPECT_TRUE(group
                    .AwaitDurable(second,
                                  [&]() -> absl::StatusOr<uint64_t> {
                                    second_ran_after_first = first.done();
                                    return group.LastTicket();
                                  })
                    .ok());
  });
  first.Release();
  first.Join();
  follower.join();
  EXPECT_EQ(group.syncs(), 2u);
  EXPECT_TRUE(second_ran_after_first);
}

TEST(GroupCommitTest, WaitersGatherBehindARunningSyncAndShareTheNext) {
  GroupCommit group;
  HeldSync first(group);
  first.Started();
  constexpr int kWaiters = 8;
  std::vector<uint64_t> tickets;
  for (int i = 0; i < kWaiters; ++i) tickets.push_back(group.NextTicket());
  std::atomic<int> ran{0};
  std::vector<std::thread> waiters;
  for (uint64_t ticket : tickets) {
    waiters.emplace_back([&, ticket] {
      EXPECT_TRUE(group
                      .AwaitDurable(ticket,
                                    [&]() -> absl::StatusOr<uint64_t> {
                                      ++ran;
                                      return group.LastTicket();
                                    })
                      .ok());
    });
  }
  first.Release();
  first.Join();
  for (std::thread& t : waiters) t.join();
  // Whichever waiter leads, its fsync covers all eight tickets.
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(group.syncs(), 2u);
}

#ifdef __linux__
// Threads that took their tickets after the running sync took its group
// (TakeGroup) sleep through its end: it wakes one of them, which leads the
// next sync, and that sync's end wakes the others. Three wake-ups in all;
// woken with the running sync's end, they would be five.
TEST(GroupCommitTest, TheWaitersOfTheNextSyncSleepThroughTheRunningOnesEnd) {
  GroupCommit group;
  HeldSync first(group, /*take_group=*/true);
  first.Started();
  constexpr int kWaiters = 3;
  std::atomic<int> tids[kWaiters] = {};
  std::atomic<int> ran{0};
  std::atomic<int> leader{0};
  absl::Notification second_started, second_release;
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    const uint64_t ticket = group.NextTicket();
    waiters.emplace_back([&, i, ticket] {
      tids[i] = test::CurrentThreadId();
      EXPECT_TRUE(group
                      .AwaitDurable(ticket,
                                    [&]() -> absl::StatusOr<uint64_t> {
                                      ++ran;
                                      leader = test::CurrentThreadId();
                                      const uint64_t covered =
                                          group.TakeGroup();
                                      second_started.Notify();
                                      second_release.WaitForNotification();
                                      return covered;
                                    })
                      .ok());
    });
  }
  test::AwaitThreadsSleep(tids, kWaiters);
  first.Release();
  first.Join();
  // While the second sync runs, the two threads that do not lead it sleep
  // (again, had the first sync's end woken them).
  second_started.WaitForNotification();
  for (int i = 0; i < kWaiters; ++i) {
    if (tids[i].load() != leader.load()) {
      test::AwaitThreadSleeps(tids[i].load());
    }
  }
  second_release.Notify();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(group.syncs(), 2u);
  EXPECT_EQ(group.woken(), static_cast<uint64_t>(kWaiters));
}

// The waiters of the next sync, asleep through a failing one, all wake to its
// error: none is left waiting for a sync that nobody will lead.
TEST(GroupCommitTest, AFailedSyncWakesEveryWaiterOfTheNextOne) {
  GroupCommit group;
  const absl::Status eio = absl::InternalError("EIO on fsync");
  HeldSync first(group, /*take_group=*/true, eio);
  first.Started();
  constexpr int kWaiters = 3;
  std::atomic<int> tids[kWaiters] = {};
  std::atomic<int> ran{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    const uint64_t ticket = group.NextTicket();
    waiters.emplace_back([&, i, ticket] {
      tids[i] = test::CurrentThreadId();
      EXPECT_EQ(group.AwaitDurable(ticket,
                                   [&]() -> absl::StatusOr<uint64_t> {
                                     ++ran;
                                     return group.TakeGroup();
                                   }),
                eio);
    });
  }
  test::AwaitThreadsSleep(tids, kWaiters);
  first.Release();
  first.Join();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(group.syncs(), 1u);
  EXPECT_EQ(group.woken(), static_cast<uint64_t>(kWaiters));
}
#endif

TEST(GroupCommitTest, AFailedSyncFailsItsWaitersAndEveryLaterOne) {
  GroupCommit group;
  auto ok = [&]() -> absl::StatusOr<uint64_t> { return group.LastTicket(); };
  const uint64_t durable = group.NextTicket();
  ASSERT_TRUE(group.AwaitDurable(durable, ok).ok());
  const uint64_t lost = group.NextTicket();
  const absl::Status eio = absl::InternalError("EIO on fsync");
  EXPECT_EQ(group.AwaitDurable(
                lost, [&]() -> absl::StatusOr<uint64_t> { return eio; }),
            eio);
  // What an earlier fsync covered stays durable.
  EXPECT_TRUE(group.AwaitDurable(durable, ok).ok());
  // A later ticket: no sync may vouch for it after the failure.
  bool ran = false;
  const uint64_t later = group.NextTicket();
  EXPECT_EQ(group.AwaitDurable(later,
                               [&]() -> absl::StatusOr<uint64_t> {
                                 ran = true;
                                 return group.LastTicket();
                               }),
            eio);
  EXPECT_FALSE(ran);
  EXPECT_EQ(group.AwaitDurable(lost, ok), eio);
}

// Many threads: every AwaitDurable that returns OK is preceded by a sync that
// started after its ticket was taken and ended before the return (a logical
// clock orders the events). With a sync that takes its group by TakeGroup
// (the waiters it misses sleep through its end) and with one that reads
// LastTicket (they all wake).
class GroupCommitStressTest : public ::testing::TestWithParam<bool> {};

TEST_P(GroupCommitStressTest, EveryReturnIsCoveredByASyncStartedAfterItsWrite) {
  const bool take_group = GetParam();
  GroupCommit group;
  std::atomic<uint64_t> clock{0};
  struct Interval {
    uint64_t start, end;
  };
  absl::Mutex mu;
  std::vector<Interval> syncs;
  std::vector<Interval> ops;  // start: before the ticket; end: after the return
  // The tickets taken before the sync reads the last one are covered; its
  // start is stamped after that read, its end before it returns.
  auto sync = [&]() -> absl::StatusOr<uint64_t> {
    const uint64_t covered =
        take_group ? group.TakeGroup() : group.LastTicket();
    const uint64_t start = clock++;
    std::this_thread::yield();
    const uint64_t end = clock++;
    absl::MutexLock lock(&mu);
    syncs.push_back({start, end});
    return covered;
  };
  constexpr int kThreads = 16;
  constexpr int kOpsPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kOpsPerThread; ++i) {
        const uint64_t written_at = clock++;
        const uint64_t ticket = group.NextTicket();
        EXPECT_TRUE(group.AwaitDurable(ticket, sync).ok());
        const uint64_t returned_at = clock++;
        absl::MutexLock lock(&mu);
        ops.push_back({written_at, returned_at});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(ops.size(), static_cast<size_t>(kThreads * kOpsPerThread));
  EXPECT_EQ(group.syncs(), syncs.size());
  for (const Interval& op : ops) {
    bool covered = false;
    for (const Interval& s : syncs) {
      if (s.start > op.start && s.end < op.end) {
        covered = true;
        break;
      }
    }
    EXPECT_TRUE(covered) << "write at " << op.start << " returned at " << op.end
                         << " without an fsync in between";
  }
}

INSTANTIATE_TEST_SUITE_P(TakeGroupOrLastTicket, GroupCommitStressTest,
                         ::testing::Bool());

}  // namespace
}  // namespace index_internal
}  // namespace kvindex
