#include "index/reaper.h"

#include <utility>

namespace kvindex {
namespace index_internal {

Reaper::~Reaper() { Stop(); }

void Reaper::Drop(std::shared_ptr<const void> object) {
  if (object == nullptr) return;
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(object));
  if (!running_) {
    running_ = true;
    // Joins the thread that ended before, which needs the lock no more.
    thread_ = PooledThread([this] { Work(); });
  }
}

void Reaper::Stop() {
  PooledThread ended;
  {
    absl::MutexLock lock(&mu_);
    ++stop_requests_;
    mu_.Await(absl::Condition(
        +[](bool* running) { return !*running; }, &running_));
    --stop_requests_;
    ended = std::move(thread_);
  }
  if (ended.joinable()) ended.join();
}

void Reaper::Work() {
  mu_.Lock();
  for (;;) {
    mu_.Await(absl::Condition(
        +[](Reaper* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return !self->queue_.empty() || self->stop_requests_ > 0;
        },
        this));
    if (queue_.empty()) break;
    std::vector<std::shared_ptr<const void>> batch;
    batch.swap(queue_);
    mu_.Unlock();
    // The destructors run here, without the lock: drops go on meanwhile.
    batch.clear();
    mu_.Lock();
  }
  running_ = false;
  mu_.Unlock();
}

}  // namespace index_internal
}  // namespace kvindex
