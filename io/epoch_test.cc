#include "io/epoch.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace kvindex
