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
// Thread-safe. NextTicket and LastTicket may be called with the caller's locks
// held (they take only GroupCommit's own mutex, briefly); AwaitDurable must be
// called without the locks that `sync` takes.
#ifndef KVINDEX_INDEX_GROUP_COMMIT_H_
#define KVINDEX_INDEX_GROUP_COMMIT_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {
namespace index_internal {

class GroupCommit {
 public:
  // A request to make durable everything buffered so far; tickets increase.
  uint64_t NextTicket();
  // The last ticket handed out (0 before the first).
  uint64_t LastTicket() const;

  // Returns OK once a sync that covers `ticket` has completed, running `sync`
  // in this thread when no running one can serve; or the error of a failed
  // sync that was to cover `ticket`. `sync` returns the last ticket whose
  // writes it made durable (at least `ticket`: it reads LastTicket after this
  // thread took its own).
  absl::Status AwaitDurable(uint64_t ticket,
                            absl::FunctionRef<absl::StatusOr<uint64_t>()> sync);

  // Syncs run so far (tests and stats).
  uint64_t syncs() const;

 private:
  // A thread in AwaitDurable may go on once its ticket is covered, a sync
  // failed, or no sync runs (it then leads one).
  struct Waiter {
    const GroupCommit* group;
    uint64_t ticket;
    static bool Done(Waiter* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return w->group->durable_ >= w->ticket || !w->group->failed_.ok() ||
             !w->group->syncing_;
    }
  };

  mutable absl::Mutex mu_;
  uint64_t tickets_ ABSL_GUARDED_BY(mu_) = 0;  // handed out
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;  // every ticket <= is durable
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  static constexpr int kMaxYields = 64;
  // Tickets the last sync covered.
  uint64_t last_group_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failed sync
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_GROUP_COMMIT_H_
