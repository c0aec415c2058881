#include "testing/hooks.h"

#include <atomic>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "index/options.h"

namespace kvindex {
namespace test {
namespace {

TEST(HookSlot, EmptyPassesAndScopedHookFillsItForItsScope) {
  HookSlot slot;
  EXPECT_TRUE(slot.Call(HookPoint::kMergeBefore).ok());
  int calls = 0;
  {
    ScopedHook hook(slot, [&](HookPoint p) {
      ++calls;
      return p == HookPoint::kMergeAfter ? absl::InternalError("stop")
                                         : absl::OkStatus();
    });
    EXPECT_TRUE(slot.Call(HookPoint::kMergeBefore).ok());
    EXPECT_EQ(slot.Call(HookPoint::kMergeAfter).code(),
              absl::StatusCode::kInternal);
  }
  EXPECT_TRUE(slot.Call(HookPoint::kMergeAfter).ok());
  EXPECT_EQ(calls, 2);
}

TEST(CallbackSlot, ScopedCallbackFillsItForItsScope) {
  CallbackSlot slot;
  slot.Call();
  int calls = 0;
  {
    ScopedCallback callback(slot, [&] { ++calls; });
    slot.Call();
    slot.Call();
  }
  slot.Call();
  EXPECT_EQ(calls, 2);
}

TEST(At, RunsAtItsPointOnly) {
  int calls = 0;
  HookFn hook = At(HookPoint::kClearAbortSignalled, [&] { ++calls; });
  EXPECT_TRUE(hook(HookPoint::kMergeBefore).ok());
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(hook(HookPoint::kClearAbortSignalled).ok());
  EXPECT_EQ(calls, 1);
}

TEST(Semaphore, AcquireWaitsForRelease) {
  Semaphore ready, go;
  std::atomic<bool> released{false};
  std::thread other([&] {
    ready.Release();
    go.Acquire();
    EXPECT_TRUE(released.load());
  });
  ready.Acquire();
  released = true;
  go.Release();
  other.join();
}

TEST(Wait, ReturnsOnceNotified) {
  absl::Notification n;
  std::thread other([&] { n.Notify(); });
  Wait(n);
  EXPECT_TRUE(n.HasBeenNotified());
  other.join();
}

}  // namespace
}  // namespace test
}  // namespace kvindex
