#include "testing/hooks.h"

#include <utility>

#include "gtest/gtest.h"

namespace kvindex {
namespace test {

void Semaphore::Release() {
  absl::MutexLock lock(&mu_);
  available_ = true;
}

void Semaphore::Acquire() {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&available_), kHookWaitTimeout)) {
    ADD_FAILURE() << "semaphore not released within " << kHookWaitTimeout;
  }
  available_ = false;
}

void Wait(absl::Notification& n) {
  if (!n.WaitForNotificationWithTimeout(kHookWaitTimeout)) {
    ADD_FAILURE() << "notification not sent within " << kHookWaitTimeout;
  }
}

void HookSlot::Set(HookFn fn) {
  absl::MutexLock lock(&mu_);
  fn_ = std::move(fn);
}

absl::Status HookSlot::Call(HookPoint point) const {
  HookFn fn;
  {
    absl::MutexLock lock(&mu_);
    fn = fn_;
  }
  return fn ? fn(point) : absl::OkStatus();
}

void CallbackSlot::Set(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  fn_ = std::move(fn);
}

void CallbackSlot::Call() const {
  std::function<void()> fn;
  {
    absl::MutexLock lock(&mu_);
    fn = fn_;
  }
  if (fn) fn();
}

ScopedHook::ScopedHook(HookSlot& slot, HookFn fn) : slot_(slot) {
  slot_.Set(std::move(fn));
}
ScopedHook::~ScopedHook() { slot_.Set(nullptr); }

ScopedCallback::ScopedCallback(CallbackSlot& slot, std::function<void()> fn)
    : slot_(slot) {
  slot_.Set(std::move(fn));
}
ScopedCallback::~ScopedCallback() { slot_.Set(nullptr); }

HookFn At(HookPoint point, std::function<void()> f) {
  return [point, f = std::move(f)](HookPoint p) {
    if (p == point) f();
    return absl::OkStatus();
  };
}

}  // namespace test
}  // namespace kvindex
