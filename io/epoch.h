// Epoch: a counter that threads sleep on until it moves, and whose Advance
// wakes every sleeper at once. Unlike a condition variable, a woken thread
// takes no lock on its way out, so the many threads one event releases (the
// durable flushes one fsync covered) run again side by side instead of in
// single file behind a mutex, each waiting for the one before it to wake,
// take the lock and let it go.
//
//   uint32_t seen = epoch.Current();   // before checking the condition
//   if (!condition) epoch.WaitPast(seen);
//   ...
//   make the condition true; epoch.Advance();
//
// Whatever a thread wrote before Advance is visible to a thread whose
// WaitPast (or Current) has seen that Advance. Reading `seen` before the
// condition is what makes a lost wake-up impossible: an Advance that comes
// between the check and the wait ends the wait at once.
//
// Thread-safe. On Linux the waits are futex waits on the counter itself; other
// systems use a mutex and a condition variable.
#ifndef KVINDEX_IO_EPOCH_H_
#define KVINDEX_IO_EPOCH_H_

#include <atomic>
#include <cstdint>

#ifndef __linux__
#include "absl/synchronization/mutex.h"
#endif

namespace kvindex {

class Epoch {
 public:
  // The number of Advance calls so far (modulo 2^32).
  uint32_t Current() const { return value_.load(std::memory_order_acquire); }

  // Returns once Current() differs from `seen`: at once if it already does.
  void WaitPast(uint32_t seen) const;

  // Moves the counter on and wakes every thread in WaitPast.
  void Advance();

 private:
  // 32 bits: the width of a futex word.
  std::atomic<uint32_t> value_{0};
#ifndef __linux__
  mutable absl::Mutex mu_;
  mutable absl::CondVar moved_;
#endif
};

}  // namespace kvindex

#endif  // KVINDEX_IO_EPOCH_H_
