#include "io/epoch.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#endif

namespace kvindex {

#ifdef __linux__

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "the futex word is the atomic's own storage");

void Epoch::WaitPast(uint32_t seen) const {
  // Counted before the counter is read (both sequentially consistent, as is
  // Wake's increment of the counter and its read of the count): a Wake that
  // reads no waiter has moved the counter before this thread reads it, so
  // this thread does not sleep.
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  // The kernel sleeps only while the word still holds `seen`, checked under
  // its own lock against FUTEX_WAKE: an Advance before the sleep ends it.
  // Interrupted or spurious returns loop.
  while (value_.load(std::memory_order_seq_cst) == seen) {
    syscall(SYS_futex, &value_, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
  }
  waiters_.fetch_sub(1, std::memory_order_release);
}

int Epoch::Advance() { return Wake(INT_MAX); }

int Epoch::AdvanceWakingOne() { return Wake(1); }

int Epoch::Wake(int threads) {
  value_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) == 0) return 0;
  wake_calls_.fetch_add(1, std::memory_order_relaxed);
  const long woken = syscall(SYS_futex, &value_, FUTEX_WAKE_PRIVATE, threads,
                             nullptr, nullptr, 0);
  return woken < 0 ? 0 : static_cast<int>(woken);
}

#else

void Epoch::WaitPast(uint32_t seen) const {
  absl::MutexLock lock(&mu_);
  while (value_.load(std::memory_order_acquire) == seen) moved_.Wait(&mu_);
}

int Epoch::Advance() {
  absl::MutexLock lock(&mu_);
  value_.fetch_add(1, std::memory_order_release);
  moved_.SignalAll();
  return 0;
}

int Epoch::AdvanceWakingOne() {
  absl::MutexLock lock(&mu_);
  value_.fetch_add(1, std::memory_order_release);
  moved_.Signal();
  return 0;
}

#endif

}  // namespace kvindex
