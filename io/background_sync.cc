#include "io/background_sync.h"

#include <utility>

namespace kvindex {

BackgroundSync::BackgroundSync() : thread_([this] { Loop(); }) {}

BackgroundSync::~BackgroundSync() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queued_or_stopping_.Signal();
  }
  thread_.join();
}

uint64_t BackgroundSync::Start(std::function<absl::Status()> job) {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  queued_.emplace_back(ticket, std::move(job));
  queued_or_stopping_.Signal();
  return ticket;
}

absl::Status BackgroundSync::Wait(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  while (done_.count(ticket) == 0) ran_.Wait(&mu_);
  absl::Status status = std::move(done_[ticket]);
  done_.erase(ticket);
  return status;
}

void BackgroundSync::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ && queued_.empty()) queued_or_stopping_.Wait(&mu_);
    if (queued_.empty()) return;  // stopping, nothing left to run
    auto [ticket, job] = std::move(queued_.front());
    queued_.pop_front();
    mu_.Unlock();
    absl::Status status = job();
    mu_.Lock();
    done_.emplace(ticket, std::move(status));
    ran_.SignalAll();
  }
}

}  // namespace kvindex
