// GroupCommit: lets one fsync make the writes of every thread waiting on it
// durable, instead of one fsync per durable flush.
//
// A durable flush writes its records under the index's lock, takes a ticket
// (Written), releases the lock and calls AwaitDurable. Tickets count the
// writes; an fsync started after ticket t was handed out covers every write up
// to t. AwaitDurable returns at once if such an fsync has completed; waits if
// one is running (and then either is covered by it or runs the next one); and
// otherwise runs `sync` itself, for every write with a ticket so far. While
// one fsync runs, the threads arriving gather behind it and the next fsync
// serves them all.
//
// A failed sync fails every waiter not already covered, and every later one:
// after a failed fsync the kernel may have dropped the dirty pages, so no later
// fsync can vouch for the writes before it (the index stops writing anyway).
//
// Thread-safe. Written may be called with the caller's locks held (it takes
// only GroupCommit's own mutex, briefly); AwaitDurable must be called without
// the locks that `sync` takes.
#ifndef KVINDEX_INDEX_GROUP_COMMIT_H_
#define KVINDEX_INDEX_GROUP_COMMIT_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {
namespace index_internal {

class GroupCommit {
 public:
  // Records that a write to be made durable has completed; returns its ticket.
  uint64_t Written();

  // Returns OK once an fsync started after `ticket` was handed out has
  // completed, running `sync` in this thread when no running fsync can serve;
  // or the error of a failed sync that was to cover `ticket`.
  absl::Status AwaitDurable(uint64_t ticket,
                            absl::FunctionRef<absl::Status()> sync);

  // Syncs run so far (tests and stats).
  uint64_t syncs() const;

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !syncing_; }

  mutable absl::Mutex mu_;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // tickets handed out
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;  // every ticket <= is durable
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failed sync
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_GROUP_COMMIT_H_
