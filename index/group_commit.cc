#include "index/group_commit.h"

#include <algorithm>

namespace kvindex {
namespace index_internal {

uint64_t GroupCommit::Written() {
  absl::MutexLock lock(&mu_);
  return ++written_;
}

absl::Status GroupCommit::AwaitDurable(uint64_t ticket,
                                       absl::FunctionRef<absl::Status()> sync) {
  absl::MutexLock lock(&mu_);
  // A running fsync may have started before `ticket`'s write: wait for it to
  // end, then look again.
  for (;;) {
    if (durable_ >= ticket) return absl::OkStatus();
    if (!failed_.ok()) return failed_;
    if (!syncing_) break;
    mu_.Await(absl::Condition(this, &GroupCommit::Idle));
  }
  // Lead the next fsync: it covers every ticket handed out before it starts.
  syncing_ = true;
  const uint64_t target = written_;
  mu_.Unlock();
  const absl::Status st = sync();
  mu_.Lock();
  syncing_ = false;
  ++syncs_;
  if (st.ok()) {
    durable_ = std::max(durable_, target);
  } else if (failed_.ok()) {
    failed_ = st;
  }
  return st;
}

uint64_t GroupCommit::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace index_internal
}  // namespace kvindex
