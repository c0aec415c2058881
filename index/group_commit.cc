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

uint64_t GroupCommit::TakeGroup() {
  const uint64_t last = LastTicket();
  covering_.store(last, std::memory_order_release);
  return last;
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
    // A sync runs. Once its leader has taken its group (covering_), a later
    // ticket is known to need the next sync: this thread sleeps through the
    // running one's end, which wakes only the threads it may cover and hands
    // the next lead to one thread of those waiting for it.
    const uint64_t covering = covering_.load(std::memory_order_acquire);
    const bool needs_next = covering != 0 && covering < ticket;
    if (needs_next) next_waiting_ = true;
    Epoch& ended = sync_ended_[(started_ + (needs_next ? 1 : 0)) % 2];
    // Read under mu_ while the sync runs: the end it waits for, which comes
    // later, moves the epoch past this value, whether this thread sleeps by
    // then or not.
    const uint32_t seen = ended.Current();
    mu_.Unlock();
    ended.WaitPast(seen);
  }
}

absl::Status GroupCommit::Lead(
    uint64_t ticket, absl::FunctionRef<absl::StatusOr<uint64_t>()> sync) {
  syncing_ = true;
  const uint64_t number = ++started_;
  covering_.store(0, std::memory_order_relaxed);
  next_waiting_ = false;
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
  // The waiters of the next sync: on a failure every one of them (it fails
  // them all), else one, to lead it.
  const bool hand_off = next_waiting_;
  mu_.Unlock();
  int woken = sync_ended_[number % 2].Advance();
  if (hand_off) {
    Epoch& next = sync_ended_[(number + 1) % 2];
    woken += covered.ok() ? next.AdvanceWakingOne() : next.Advance();
  }
  woken_.fetch_add(static_cast<uint64_t>(woken), std::memory_order_relaxed);
  return result;
}

uint64_t GroupCommit::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

uint64_t GroupCommit::woken() const {
  return woken_.load(std::memory_order_relaxed);
}

}  // namespace index_internal
}  // namespace kvindex
