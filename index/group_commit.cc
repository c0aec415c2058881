#include "index/group_commit.h"

#include <algorithm>
#include <thread>

namespace kvindex {
namespace index_internal {

uint64_t GroupCommit::NextTicket() {
  absl::MutexLock lock(&mu_);
  return ++tickets_;
}

uint64_t GroupCommit::LastTicket() const {
  absl::MutexLock lock(&mu_);
  return tickets_;
}

absl::Status GroupCommit::AwaitDurable(
    uint64_t ticket, absl::FunctionRef<absl::StatusOr<uint64_t>()> sync) {
  absl::MutexLock lock(&mu_);
  // A running sync may have written before `ticket` was taken: wait until one
  // covers it or none runs. (Waiting for "none runs" alone would keep a
  // covered waiter asleep through the next sync, which another waiter may
  // start before it wakes.)
  Waiter waiter{this, ticket};
  mu_.Await(absl::Condition(&Waiter::Done, &waiter));
  if (durable_ >= ticket) return absl::OkStatus();
  if (!failed_.ok()) return failed_;
  syncing_ = true;
  // The threads the last sync released wake one after another: give them a
  // moment to take their next tickets, so that this sync serves as many as
  // the last one did (never a wait with one thread: it is its own group).
  for (int i = 0; i < kMaxYields && tickets_ - durable_ < last_group_; ++i) {
    mu_.Unlock();
    std::this_thread::yield();
    mu_.Lock();
  }
  const uint64_t before = durable_;
  mu_.Unlock();
  const absl::StatusOr<uint64_t> covered = sync();
  mu_.Lock();
  syncing_ = false;
  ++syncs_;
  if (!covered.ok()) {
    if (failed_.ok()) failed_ = covered.status();
    return covered.status();
  }
  durable_ = std::max(durable_, *covered);
  last_group_ = durable_ - before;
  if (durable_ < ticket) {
    return absl::InternalError(
        "group commit: the sync did not cover the ticket of its own flush");
  }
  return absl::OkStatus();
}

uint64_t GroupCommit::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace index_internal
}  // namespace kvindex
