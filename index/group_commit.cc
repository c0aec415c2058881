#include "index/group_commit.h"

#include <algorithm>
#include <thread>

namespace kvindex {
namespace index_internal {

uint64_t GroupCommit::NextTicket() {
  return tickets_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

uint64_t GroupCommit::LastTicket() const {
  return tickets_.load(std::memory_order_acquire);
}

absl::Status GroupCommit::AwaitDurable(
    uint64_t ticket, absl::FunctionRef<absl::StatusOr<uint64_t>()> sync) {
  // A running sync may have written before `ticket` was taken: wait until one
  // covers it or none runs. (Waiting for "none runs" alone would keep a
  // covered waiter asleep through the next sync, which another waiter may
  // start before it wakes.)
  for (;;) {
    if (durable_.load(std::memory_order_acquire) >= ticket) {
      return absl::OkStatus();
    }
    mu_.Lock();
    if (durable_.load(std::memory_order_relaxed) >= ticket) {
      mu_.Unlock();
      return absl::OkStatus();
    }
    if (!failed_.ok()) {
      const absl::Status failed = failed_;
      mu_.Unlock();
      return failed;
    }
    if (!syncing_) return Lead(ticket, sync);
    // Read under mu_ while the sync runs: its end, which comes later, moves
    // the epoch past this value, whether this thread sleeps by then or not.
    const uint32_t running = sync_ended_.Current();
    mu_.Unlock();
    sync_ended_.WaitPast(running);
  }
}

absl::Status GroupCommit::Lead(
    uint64_t ticket, absl::FunctionRef<absl::StatusOr<uint64_t>()> sync) {
  syncing_ = true;
  // The threads the last sync released are still on their way back: give them
  // a moment to take their next tickets, so that this sync serves as many as
  // the last one did (never a wait with one thread: it is its own group).
  const uint64_t before = durable_.load(std::memory_order_relaxed);
  for (int i = 0; i < kMaxYields && LastTicket() - before < last_group_; ++i) {
    mu_.Unlock();
    std::this_thread::yield();
    mu_.Lock();
  }
  mu_.Unlock();
  const absl::StatusOr<uint64_t> covered = sync();
  mu_.Lock();
  syncing_ = false;
  ++syncs_;
  absl::Status result;
  if (!covered.ok()) {
    if (failed_.ok()) failed_ = covered.status();
    result = covered.status();
  } else {
    const uint64_t durable = std::max(before, *covered);
    durable_.store(durable, std::memory_order_release);
    last_group_ = durable - before;
    if (durable < ticket) {
      result = absl::InternalError(
          "group commit: the sync did not cover the ticket of its own flush");
    }
  }
  mu_.Unlock();
  sync_ended_.Advance();
  return result;
}

uint64_t GroupCommit::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace index_internal
}  // namespace kvindex
