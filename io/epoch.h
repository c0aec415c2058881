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
// AdvanceWakingOne hands a turn to one sleeper without waking the rest.
//
// An Advance with no thread in WaitPast makes no system call: a single thread
// that advances an epoch on every durable flush, with nobody ever waiting,
// pays one atomic increment and one load for it.
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

  // Returns at once if Current() differs from `seen`; else sleeps until an
  // Advance, or an AdvanceWakingOne that picks this thread, moves it on.
  void WaitPast(uint32_t seen) const;

  // Moves the counter on and wakes every thread in WaitPast. Returns how many
  // it woke where the system says (Linux), else 0.
  int Advance();

  // Moves the counter on and wakes one thread in WaitPast, if one sleeps: a
  // hand-off to whichever of them. The others sleep on until the next Advance
  // (or AdvanceWakingOne that picks them), though the counter has moved past
  // what they saw; a thread that has read Current() but not slept yet returns
  // at once. Returns how many it woke, as Advance does.
  int AdvanceWakingOne();

  // The wake-up system calls Advance and AdvanceWakingOne have made (Linux;
  // else 0): tests.
  uint64_t wake_calls() const {
    return wake_calls_.load(std::memory_order_relaxed);
  }

 private:
  // 32 bits: the width of a futex word.
  std::atomic<uint32_t> value_{0};
  // Threads inside WaitPast, asleep or about to be.
  mutable std::atomic<uint32_t> waiters_{0};
  std::atomic<uint64_t> wake_calls_{0};
#ifdef __linux__
  // Moves the counter on and wakes up to `threads` sleepers.
  int Wake(int threads);
#else
  mutable absl::Mutex mu_;
  mutable absl::CondVar moved_;
#endif
};

}  // namespace kvindex

#endif  // KVINDEX_IO_EPOCH_H_
