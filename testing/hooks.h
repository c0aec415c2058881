// Pausing and observing an index from a test through its hooks
// (Options::test_hook, called at each HookPoint of index/options.h) and its
// flush callback.
//
// An instance's options are fixed at open, so a test routes them to slots that
// it fills for as long as it needs them:
//
//   HookSlot hooks;
//   options.test_hook = [&hooks](HookPoint p) { return hooks.Call(p); };
//   ...
//   Semaphore merge_started;
//   ScopedHook hook(hooks, At(HookPoint::kMergeBefore,
//                             [&] { merge_started.Release(); }));
//   index->Merge();
//   merge_started.Acquire();   // the merge thread is in kMergeBefore
//
// Every wait gives up after kHookWaitTimeout with a test failure, so that a
// broken interleaving fails the test instead of hanging it.
#ifndef KVINDEX_TESTING_HOOKS_H_
#define KVINDEX_TESTING_HOOKS_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "index/options.h"

namespace kvindex {
namespace test {

// Long enough for any step of a test; a wait that takes longer is reported as
// a failure.
inline constexpr absl::Duration kHookWaitTimeout = absl::Seconds(20);

// A binary semaphore created unavailable.
class Semaphore {
 public:
  void Release();
  // Waits until released (a failure after kHookWaitTimeout), then makes it
  // unavailable again.
  void Acquire();

 private:
  absl::Mutex mu_;
  bool available_ ABSL_GUARDED_BY(mu_) = false;
};

// Waits for `n`; a failure after kHookWaitTimeout.
void Wait(absl::Notification& n);

using HookFn = std::function<absl::Status(HookPoint)>;

// Where an instance's Options::test_hook goes. The function is called without
// the slot's lock, so hooks may block.
class HookSlot {
 public:
  void Set(HookFn fn);
  // OK when the slot is empty.
  absl::Status Call(HookPoint point) const;

 private:
  mutable absl::Mutex mu_;
  HookFn fn_ ABSL_GUARDED_BY(mu_);
};

// Where an instance's Options::flush_callback goes; same rules.
class CallbackSlot {
 public:
  void Set(std::function<void()> fn);
  void Call() const;

 private:
  mutable absl::Mutex mu_;
  std::function<void()> fn_ ABSL_GUARDED_BY(mu_);
};

// Fills a slot for the rest of the scope. Declare it after the locals its
// function uses, so that it is emptied before they go away.
class ScopedHook {
 public:
  ScopedHook(HookSlot& slot, HookFn fn);
  ~ScopedHook();
  ScopedHook(const ScopedHook&) = delete;
  ScopedHook& operator=(const ScopedHook&) = delete;

 private:
  HookSlot& slot_;
};

class ScopedCallback {
 public:
  ScopedCallback(CallbackSlot& slot, std::function<void()> fn);
  ~ScopedCallback();
  ScopedCallback(const ScopedCallback&) = delete;
  ScopedCallback& operator=(const ScopedCallback&) = delete;

 private:
  CallbackSlot& slot_;
};

// A hook that runs `f` at `point` only, and lets every point pass.
HookFn At(HookPoint point, std::function<void()> f);

}  // namespace test
}  // namespace kvindex

#endif  // KVINDEX_TESTING_HOOKS_H_
