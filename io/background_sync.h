// BackgroundSync: one long-lived thread (a PooledThread) that runs fsyncs handed
// to it, so that a caller can fsync two files at once (a log and its checksum
// sidecar) without starting a thread each time.
//
//   const uint64_t ticket = worker.Start([&] { return sidecar.Sync(); });
//   absl::Status log_synced = log.Sync();
//   absl::Status sidecar_synced = worker.Wait(ticket);
//
// Jobs run one at a time, in the order they were started. Every Start must be
// matched by exactly one Wait of its ticket.
//
// Thread safety: all methods are thread-safe. The destructor runs the jobs
// still queued, then joins the thread.
#ifndef KVINDEX_IO_BACKGROUND_SYNC_H_
#define KVINDEX_IO_BACKGROUND_SYNC_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "io/pooled_thread.h"

namespace kvindex {

class BackgroundSync {
 public:
  BackgroundSync();
  ~BackgroundSync();
  BackgroundSync(const BackgroundSync&) = delete;
  BackgroundSync& operator=(const BackgroundSync&) = delete;

  // Queues `job` and returns its ticket.
  uint64_t Start(std::function<absl::Status()> job);
  // Blocks until the job of `ticket` has run; returns its status.
  absl::Status Wait(uint64_t ticket);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::pair<uint64_t, std::function<absl::Status()>>> queued_
      ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, absl::Status> done_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar queued_or_stopping_;  // for the thread
  absl::CondVar ran_;                 // for Wait
  PooledThread thread_;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_BACKGROUND_SYNC_H_
