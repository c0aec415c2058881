// Reaper: destroys the last references to retired files on a thread of its
// own.
//
// Dropping the last reference to a data file or run closes it and unmaps it.
// When a merge or compaction has already unlinked the file (replaced `data`,
// removed a folded run), that last close also makes the kernel free the file's
// cached pages and its blocks: for a run of gigabytes, a second or more of
// system time. The threads that hold such references last (the merge worker,
// holding the merge lock a writer with a full log waits for; a reader's Sync,
// holding the instance lock finds wait for) hand them here instead.
//
//   reaper.Drop(std::move(job->runs));  // returns at once
//   ...
//   reaper.Stop();  // everything dropped so far has been destroyed
//
// Thread safety: all methods are thread-safe.
#ifndef KVINDEX_INDEX_REAPER_H_
#define KVINDEX_INDEX_REAPER_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "io/pooled_thread.h"

namespace kvindex {
namespace index_internal {

class Reaper {
 public:
  Reaper() = default;
  // Stop().
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // Gives up the caller's reference to `object` (null is ignored); if it was
  // the last one, the object is destroyed on the reaper's thread, started on
  // the first drop.
  void Drop(std::shared_ptr<const void> object);

  // Returns once every object dropped before the call has been released, and
  // ends the thread. Whatever owns the resources the objects' destructors use
  // (the Env of their files) must call it before it goes away. Later drops
  // start a new thread.
  void Stop();

 private:
  void Work();

  absl::Mutex mu_;
  std::vector<std::shared_ptr<const void>> queue_ ABSL_GUARDED_BY(mu_);
  // Stop() calls in progress: the thread ends once the queue is empty.
  int stop_requests_ ABSL_GUARDED_BY(mu_) = 0;
  // The thread has not ended its work yet (thread_ may still need a join
  // after it has).
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  PooledThread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_REAPER_H_
