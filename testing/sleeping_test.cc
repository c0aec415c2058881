#include "testing/sleeping.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace test {
namespace {

TEST(SleepingTest, TellsASleepingThreadFromARunningOne) {
  std::atomic<int> tid{0};
  std::atomic<bool> stop{false};
  absl::Notification wake;
  std::thread spinner([&] {
    tid = CurrentThreadId();
    while (!stop.load()) {
    }
    wake.WaitForNotification();
  });
  while (tid.load() == 0) std::this_thread::yield();
  // Running (or runnable): never in state S while it spins.
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(ThreadSleeps(tid.load()));
  stop = true;
  AwaitThreadSleeps(tid.load());
  EXPECT_TRUE(ThreadSleeps(tid.load()));
  wake.Notify();
  spinner.join();
}

TEST(SleepingTest, AwaitsEveryThreadOfAGroupAsleep) {
  constexpr int kThreads = 3;
  std::atomic<int> tids[kThreads] = {};
  // One notification each: threads waiting on one absl::Mutex wake each other
  // for a moment as they arrive, so a sleeper could be seen running again.
  absl::Notification wake[kThreads];
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Busy for a moment first: the wait must cover it.
      for (volatile int spin = 0; spin < 1000000; spin = spin + 1) {
      }
      tids[i] = CurrentThreadId();
      wake[i].WaitForNotification();
    });
  }
  AwaitThreadsSleep(tids, kThreads);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_NE(tids[i].load(), 0);
    EXPECT_TRUE(ThreadSleeps(tids[i].load()));
  }
  for (absl::Notification& n : wake) n.Notify();
  for (std::thread& t : threads) t.join();
}

TEST(SleepingTest, AThreadThatIsGoneDoesNotSleep) {
  std::atomic<int> tid{0};
  std::thread([&] { tid = CurrentThreadId(); }).join();
  EXPECT_FALSE(ThreadSleeps(tid.load()));
  EXPECT_NE(CurrentThreadId(), tid.load());
}

}  // namespace
}  // namespace test
}  // namespace kvindex
