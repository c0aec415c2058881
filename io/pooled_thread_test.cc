#include "io/pooled_thread.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace {

// Waits (bounded) until at least `n` threads are idle in the cache (threads
// that ended while the cache was full may still be exiting).
bool WaitIdle(size_t n) {
  for (int i = 0; i < 5000; ++i) {
    if (PooledThread::IdleForTesting() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(PooledThreadTest, JoinSeesTheFunctionsEffects) {
  int value = 0;
  PooledThread t([&value] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    value = 42;
  });
  EXPECT_TRUE(t.joinable());
  t.join();
  EXPECT_FALSE(t.joinable());
  EXPECT_EQ(value, 42);
}

TEST(PooledThreadTest, RunsOnAnotherThread) {
  std::thread::id ran_on;
  PooledThread t([&ran_on] { ran_on = std::this_thread::get_id(); });
  t.join();
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(PooledThreadTest, AThreadIsBackInTheCacheWhenJoinReturns) {
  if (PooledThread::kMaxIdle == 0) GTEST_SKIP() << "no cache in this build";
  std::thread::id first;
  PooledThread([&first] { first = std::this_thread::get_id(); }).join();
  // Started right after each join, every run finds the same thread: the cache
  // hands out the thread that went idle last, and it went idle before its
  // join returned.
  for (int i = 0; i < 20; ++i) {
    std::thread::id next;
    PooledThread([&next] { next = std::this_thread::get_id(); }).join();
    ASSERT_EQ(next, first) << "run " << i;
  }
}

TEST(PooledThreadTest, CapturesAreDestroyedBeforeJoinReturns) {
  auto shared = std::make_shared<int>(7);
  PooledThread t([copy = shared] { EXPECT_EQ(*copy, 7); });
  t.join();
  EXPECT_EQ(shared.use_count(), 1);
}

TEST(PooledThreadTest, ManyRunAtOnceAndTheCacheKeepsAFew) {
  constexpr int kThreads = 3 * PooledThread::kMaxIdle + 8;
  absl::Mutex mu;
  int started = 0;
  std::vector<PooledThread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      absl::MutexLock lock(&mu);
      ++started;
      // Returns only once every function has started: they cannot share
      // threads.
      mu.Await(absl::Condition(
          +[](int* n) { return *n == kThreads; }, &started));
    });
  }
  for (PooledThread& t : threads) t.join();
  EXPECT_EQ(started, kThreads);
  if (PooledThread::kMaxIdle == 0) return;  // no cache in this build
  ASSERT_TRUE(WaitIdle(PooledThread::kMaxIdle));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(PooledThread::IdleForTesting(), PooledThread::kMaxIdle);
}

TEST(PooledThreadTest, DestructorJoins) {
  std::atomic<bool> done{false};
  {
    PooledThread t([&done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      done = true;
    });
  }
  EXPECT_TRUE(done);
}

TEST(PooledThreadTest, MoveAssignmentJoinsTheThreadItReplaces) {
  std::atomic<bool> first_done{false};
  PooledThread t([&first_done] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    first_done = true;
  });
  t = PooledThread([] {});
  EXPECT_TRUE(first_done);
  EXPECT_TRUE(t.joinable());
  PooledThread moved = std::move(t);
  EXPECT_FALSE(t.joinable());  // NOLINT(bugprone-use-after-move)
  moved.join();
}

TEST(PooledThreadTest, AForkedChildStartsThreadsOfItsOwn) {
  if (PooledThread::kMaxIdle == 0) GTEST_SKIP() << "no cache in this build";
  PooledThread([] {}).join();
  ASSERT_TRUE(WaitIdle(1));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The parent's idle threads do not exist here: a run handed to one of
    // them would never start. SIGALRM ends a hung child.
    alarm(10);
    std::atomic<int> runs{0};
    for (int i = 0; i < 3; ++i) {
      PooledThread([&runs] { ++runs; }).join();
    }
    _exit(runs == 3 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status))
      << "child ended by signal "
      << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace kvindex
