#include "index/reaper.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace index_internal {
namespace {

// Counts its destructions.
struct Tracked {
  explicit Tracked(std::atomic<int>* destroyed) : destroyed(destroyed) {}
  ~Tracked() { destroyed->fetch_add(1); }
  std::atomic<int>* destroyed;
};

// Blocks its destructor until `release` (at most 30 s, so that a drop that
// runs it inline fails the test instead of hanging it).
struct SlowToDestroy {
  SlowToDestroy(absl::Notification* started, absl::Notification* release,
                std::thread::id* thread)
      : started(started), release(release), thread(thread) {}
  ~SlowToDestroy() {
    *thread = std::this_thread::get_id();
    started->Notify();
    release->WaitForNotificationWithTimeout(absl::Seconds(30));
  }
  absl::Notification* started;
  absl::Notification* release;
  std::thread::id* thread;
};

TEST(ReaperTest, DropReturnsWhileTheLastReferenceIsStillBeingReleased) {
  Reaper reaper;
  absl::Notification started, release;
  std::thread::id destroyed_on;
  reaper.Drop(
      std::make_shared<SlowToDestroy>(&started, &release, &destroyed_on));
  // Back from Drop while the destructor waits for us: it runs elsewhere.
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(release.HasBeenNotified());
  release.Notify();
  reaper.Stop();
  EXPECT_NE(destroyed_on, std::this_thread::get_id());
}

TEST(ReaperTest, StopReturnsOnceEveryDroppedObjectIsDestroyed) {
  std::atomic<int> destroyed{0};
  Reaper reaper;
  for (int i = 0; i < 100; ++i) {
    reaper.Drop(std::make_shared<Tracked>(&destroyed));
  }
  reaper.Stop();
  EXPECT_EQ(destroyed.load(), 100);
}

TEST(ReaperTest, AReferenceThatIsNotTheLastLeavesTheObjectAlive) {
  std::atomic<int> destroyed{0};
  Reaper reaper;
  auto kept = std::make_shared<Tracked>(&destroyed);
  reaper.Drop(kept);
  reaper.Stop();
  EXPECT_EQ(destroyed.load(), 0);
  EXPECT_EQ(kept.use_count(), 1);
  kept.reset();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(ReaperTest, DropsAfterStopAreDestroyedByTheNextStop) {
  std::atomic<int> destroyed{0};
  Reaper reaper;
  reaper.Stop();  // nothing started yet
  reaper.Drop(std::make_shared<Tracked>(&destroyed));
  reaper.Stop();
  EXPECT_EQ(destroyed.load(), 1);
  reaper.Drop(std::make_shared<Tracked>(&destroyed));
  reaper.Drop(nullptr);
  reaper.Stop();
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(ReaperTest, TheDestructorStopsAndDestroysWhatIsLeft) {
  std::atomic<int> destroyed{0};
  {
    Reaper reaper;
    for (int i = 0; i < 10; ++i) {
      reaper.Drop(std::make_shared<Tracked>(&destroyed));
    }
  }
  EXPECT_EQ(destroyed.load(), 10);
}

TEST(ReaperTest, ConcurrentDropsAndStopsLoseNothing) {
  std::atomic<int> destroyed{0};
  Reaper reaper;
  constexpr int kThreads = 4;
  constexpr int kDrops = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kDrops; ++i) {
        reaper.Drop(std::make_shared<Tracked>(&destroyed));
        // Every Stop sees at least this thread's drops destroyed.
        if (i % 50 == t) {
          reaper.Stop();
          EXPECT_GE(destroyed.load(), i + 1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  reaper.Stop();
  EXPECT_EQ(destroyed.load(), kThreads * kDrops);
}

}  // namespace
}  // namespace index_internal
}  // namespace kvindex
