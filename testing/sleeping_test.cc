#include "testing/sleeping.h"

#include <atomic>
#include <thread>

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

TEST(SleepingTest, AThreadThatIsGoneDoesNotSleep) {
  std::atomic<int> tid{0};
  std::thread([&] { tid = CurrentThreadId(); }).join();
  EXPECT_FALSE(ThreadSleeps(tid.load()));
  EXPECT_NE(CurrentThreadId(), tid.load());
}

}  // namespace
}  // namespace test
}  // namespace kvindex
