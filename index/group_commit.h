// GroupCommit: lets one fsync make the writes of every thread waiting on it
// durable, instead of one fsync per durable flush.
//
// A durable flush takes a ticket (NextTicket) under the index's lock, once
// its records are buffered, releases the lock and calls AwaitDurable.
// AwaitDurable returns at once if an fsync that covers the ticket has
// completed; waits if one is running (and then either is covered by it or
// leads the next one); and otherwise leads: it calls `sync`, which writes what
// is buffered, notes the last ticket handed out (LastTicket) while doing so,
// fsyncs, and returns that ticket: every ticket up to it is then durable.
// (`sync` reads it with TakeGroup, which also tells the threads arriving later
// that this sync cannot cover them.)
// While one fsync runs, the threads arriving only buffer and take tickets (no
// IO competes with the fsync), and the next leader writes and fsyncs for them
// all. The threads a sync releases wake one after another, so a leader first
// yields (a few dozen times at most) until as many tickets wait as the last
// sync covered: it then serves them all at once instead of leaving half of
// them to the sync after. A single thread never waits so: it is its own group.
//
// A failed sync fails every waiter not already covered, and every later one:
// after a failed fsync the kernel may have dropped the dirty pages, so no later
// fsync can vouch for the writes before it (the index stops writing anyway).
//
// The threads a sync covers leave without taking the mutex: they sleep on an
// Epoch that the sync's end advances, and check the durable ticket, an atomic,
// on waking. Queued behind a mutex, the sixteen threads one fsync released
// woke one after another, each after the one before had taken and released
// it: that took longer than the fsync on a 2-core machine. The threads that
// took their tickets after the running sync took its group sleep on a second
// Epoch, for the sync after it: the running sync's end wakes one of them to
// lead it, and that sync's end the rest. (Woken with the others, each would
// find its ticket uncovered and go back to sleep: one context switch more per
// flush, on the cores the covered threads need.)
//
// Thread-safe. NextTicket, LastTicket and TakeGroup take no lock and may be
// called with the caller's locks held; AwaitDurable must be called without the
// locks that `sync` takes.
#ifndef KVINDEX_INDEX_GROUP_COMMIT_H_
#define KVINDEX_INDEX_GROUP_COMMIT_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "io/epoch.h"

namespace kvindex {
namespace index_internal {

class GroupCommit {
 public:
  // A request to make durable everything buffered so far; tickets increase.
  uint64_t NextTicket();
  // The last ticket handed out (0 before the first).
  uint64_t LastTicket() const;
  // LastTicket, for `sync` to call as it writes: the running sync covers the
  // tickets up to it and no later one, whose threads then wait for the next
  // sync without being woken by this one's end. (A `sync` that reads
  // LastTicket instead is just as correct, and wakes them.)
  uint64_t TakeGroup();

  // Returns OK once a sync that covers `ticket` has completed, running `sync`
  // in this thread when no running one can serve; or the error of a failed
  // sync that was to cover `ticket`. `sync` returns the last ticket whose
  // writes it made durable (at least `ticket`: it reads LastTicket after this
  // thread took its own).
  absl::Status AwaitDurable(uint64_t ticket,
                            absl::FunctionRef<absl::StatusOr<uint64_t>()> sync);

  // Syncs run so far (tests and stats).
  uint64_t syncs() const;
  // Threads the syncs' ends have woken so far, where the system tells (Linux;
  // else 0): tests and stats.
  uint64_t woken() const;

 private:
  // Runs `sync` for `ticket` and every ticket taken while it writes; called
  // with mu_ held and no sync running, returns with mu_ released.
  absl::Status Lead(uint64_t ticket,
                    absl::FunctionRef<absl::StatusOr<uint64_t>()> sync)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_UNLOCK_FUNCTION(mu_);

  mutable absl::Mutex mu_;
  std::atomic<uint64_t> tickets_{0};  // handed out
  // Every ticket <= is durable. Written under mu_; read without it too.
  std::atomic<uint64_t> durable_{0};
  // sync_ended_[n % 2] advances at the end of sync number n, failed or not;
  // the waiters of the sync after it sleep on the other one.
  Epoch sync_ended_[2];
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  // The number of the running (or last) sync, counting from 1.
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  // The running sync's TakeGroup, 0 until it has called it. Reset under mu_,
  // set without it.
  std::atomic<uint64_t> covering_{0};
  // A thread waits for the sync after the running one.
  bool next_waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> woken_{0};
  static constexpr int kMaxYields = 64;
  // Tickets the last sync covered.
  uint64_t last_group_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failed sync
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_GROUP_COMMIT_H_
