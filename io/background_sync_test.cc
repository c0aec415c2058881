#include "io/background_sync.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace {

TEST(BackgroundSync, EachWaitGetsItsOwnJobsStatus) {
  BackgroundSync worker;
  const uint64_t ok = worker.Start([] { return absl::OkStatus(); });
  const uint64_t failed =
      worker.Start([] { return absl::InternalError("EIO"); });
  EXPECT_NE(ok, failed);
  EXPECT_EQ(worker.Wait(failed).code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(worker.Wait(ok).ok());
}

TEST(BackgroundSync, JobsRunOnAnotherThreadWhileTheCallerWorks) {
  BackgroundSync worker;
  absl::Notification caller_working;
  std::thread::id ran_on;
  const uint64_t ticket = worker.Start([&] {
    ran_on = std::this_thread::get_id();
    // Runs only if the caller is not blocked in Start.
    caller_working.WaitForNotification();
    return absl::OkStatus();
  });
  caller_working.Notify();
  EXPECT_TRUE(worker.Wait(ticket).ok());
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(BackgroundSync, ManyThreadsShareOneWorkerAndJobsRunInOrder) {
  BackgroundSync worker;
  std::atomic<int> running{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        const uint64_t ticket = worker.Start([&] {
          if (running.fetch_add(1) != 0) overlaps.fetch_add(1);
          ran.fetch_add(1);
          running.fetch_sub(1);
          return absl::OkStatus();
        });
        EXPECT_TRUE(worker.Wait(ticket).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ran.load(), 400);
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(BackgroundSync, TheDestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    BackgroundSync worker;
    for (int i = 0; i < 5; ++i) {
      (void)worker.Start([&] {
        ran.fetch_add(1);
        return absl::OkStatus();
      });
    }
  }
  EXPECT_EQ(ran.load(), 5);
}

}  // namespace
}  // namespace kvindex
