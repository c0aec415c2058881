#include "io/epoch.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "testing/sleeping.h"

namespace kvindex {
namespace {

TEST(EpochTest, CountsAdvances) {
  Epoch epoch;
  const uint32_t start = epoch.Current();
  epoch.Advance();
  epoch.Advance();
  EXPECT_EQ(epoch.Current(), start + 2);
}

TEST(EpochTest, AWaitPastAnEarlierValueReturnsAtOnce) {
  Epoch epoch;
  const uint32_t seen = epoch.Current();
  epoch.Advance();
  epoch.WaitPast(seen);  // would sleep for good if it did not see the move
  EXPECT_NE(epoch.Current(), seen);
}

// Every sleeper wakes from one Advance, sees what was written before it, and
// none leaves before it.
TEST(EpochTest, OneAdvanceReleasesEveryWaiterWithWhatWasWrittenBefore) {
  Epoch epoch;
  constexpr int kWaiters = 32;
  int payload = 0;  // plain: ordered only by the epoch
  std::atomic<bool> advanced{false};
  std::atomic<int> waiting{0};
  std::atomic<int> released{0};
  const uint32_t seen = epoch.Current();
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      waiting.fetch_add(1);
      epoch.WaitPast(seen);
      EXPECT_TRUE(advanced.load());
      EXPECT_EQ(payload, 42);
      released.fetch_add(1);
    });
  }
  while (waiting.load() < kWaiters) std::this_thread::yield();
  // Give the waiters time to sleep: none may leave while the epoch stands.
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_EQ(released.load(), 0);
  payload = 42;
  advanced.store(true);
  epoch.Advance();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(released.load(), kWaiters);
}

// Two threads taking turns through one epoch, each waiting for the other's
// Advance: a wake-up lost between reading the counter and sleeping would hang
// this test.
TEST(EpochTest, TurnsTakenThroughTheEpochLoseNoWakeUp) {
  Epoch epoch;
  constexpr uint32_t kTurns = 20000;
  const uint32_t start = epoch.Current();
  uint32_t last_turn = 0;  // plain: each turn reads the one before it
  auto player = [&](uint32_t parity) {
    for (;;) {
      const uint32_t now = epoch.Current();
      const uint32_t turn = now - start;
      if (turn >= kTurns) return;
      if (turn % 2 != parity) {
        epoch.WaitPast(now);
        continue;
      }
      if (turn > 0) {
        EXPECT_EQ(last_turn, turn - 1);
      }
      last_turn = turn;
      epoch.Advance();
    }
  };
  std::thread even(player, 0u);
  std::thread odd(player, 1u);
  even.join();
  odd.join();
  EXPECT_EQ(epoch.Current() - start, kTurns);
  EXPECT_EQ(last_turn, kTurns - 1);
}

#ifdef __linux__
// Advances with nobody waiting cost no system call; one with a sleeper wakes
// it with one.
TEST(EpochTest, AnAdvanceWithNobodyWaitingMakesNoSystemCall) {
  Epoch epoch;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(epoch.Advance(), 0);
    EXPECT_EQ(epoch.AdvanceWakingOne(), 0);
  }
  EXPECT_EQ(epoch.wake_calls(), 0u);
  EXPECT_EQ(epoch.Current(), 20u);
  // A wait that returns at once leaves no waiter behind.
  epoch.WaitPast(epoch.Current() - 1);
  EXPECT_EQ(epoch.Advance(), 0);
  EXPECT_EQ(epoch.wake_calls(), 0u);

  std::atomic<int> tid{0};
  const uint32_t seen = epoch.Current();
  std::thread sleeper([&] {
    tid = test::CurrentThreadId();
    epoch.WaitPast(seen);
  });
  test::AwaitThreadsSleep(&tid, 1);
  EXPECT_EQ(epoch.Advance(), 1);
  sleeper.join();
  EXPECT_EQ(epoch.wake_calls(), 1u);
  // Gone again: no call.
  EXPECT_EQ(epoch.Advance(), 0);
  EXPECT_EQ(epoch.wake_calls(), 1u);
}
#endif

#ifdef __linux__
// A hand-off: of three sleepers, AdvanceWakingOne wakes exactly one; the
// others sleep on, though the counter moved past what they saw, until Advance.
TEST(EpochTest, AdvanceWakingOneWakesOneSleeperAndLeavesTheRestAsleep) {
  Epoch epoch;
  constexpr int kSleepers = 3;
  const uint32_t seen = epoch.Current();
  std::atomic<int> tids[kSleepers] = {};
  std::atomic<bool> woke[kSleepers] = {};
  std::atomic<int> returned{0};
  std::vector<std::thread> sleepers;
  for (int i = 0; i < kSleepers; ++i) {
    sleepers.emplace_back([&, i] {
      tids[i] = test::CurrentThreadId();
      epoch.WaitPast(seen);
      woke[i] = true;
      returned.fetch_add(1);
    });
  }
  test::AwaitThreadsSleep(tids, kSleepers);
  EXPECT_EQ(epoch.AdvanceWakingOne(), 1);
  while (returned.load() < 1) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(returned.load(), 1);
  for (int i = 0; i < kSleepers; ++i) {
    if (!woke[i].load()) {
      EXPECT_TRUE(test::ThreadSleeps(tids[i].load()));
    }
  }
  // A thread that read the counter before the hand-off but sleeps only after
  // it returns at once.
  epoch.WaitPast(seen);
  EXPECT_EQ(epoch.Advance(), kSleepers - 1);
  for (std::thread& t : sleepers) t.join();
  EXPECT_EQ(returned.load(), kSleepers);
  EXPECT_EQ(epoch.Current(), seen + 2);
}
#endif

}  // namespace
}  // namespace kvindex
