#include "index/stats.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "datafile/data_file.h"

namespace kvindex {
namespace {

// The counters are striped: each thread adds to its own stripe (threads are
// spread round-robin), so that parallel finds and replaces do not fight over
// one cache line; readers sum the stripes.
struct alignas(64) Stripe {
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> nb_reads{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> nb_writes{0};
  std::atomic<uint64_t> nb_merge{0};
  std::atomic<uint64_t> nb_merge_copied_runs{0};
  std::atomic<uint64_t> nb_compaction{0};
  std::atomic<uint64_t> compaction_us{0};
  std::atomic<uint64_t> merge_us{0};
  std::atomic<uint64_t> verify_us{0};
  std::atomic<uint64_t> nb_replace{0};
  std::atomic<uint64_t> replace_ns{0};
  std::atomic<uint64_t> nb_replace_timed{0};
  std::atomic<uint64_t> nb_sync{0};
  std::atomic<uint64_t> lru_hits{0};
  std::atomic<uint64_t> lru_misses{0};
  std::atomic<uint64_t> nb_durable_flush{0};
  std::atomic<uint64_t> nb_flush_fsync{0};
  std::atomic<uint64_t> log_bytes_unvouched{0};
  std::atomic<uint64_t> log_bytes_restored{0};

  std::vector<std::atomic<uint64_t>*> All() {
    return {&bytes_read,
            &nb_reads,
            &bytes_written,
            &nb_writes,
            &nb_merge,
            &nb_merge_copied_runs,
            &nb_compaction,
            &compaction_us,
            &nb_replace,
            &replace_ns,
            &nb_replace_timed,
            &nb_sync,
            &lru_hits,
            &lru_misses,
            &nb_durable_flush,
            &nb_flush_fsync,
            &merge_us,
            &verify_us,
            &log_bytes_unvouched,
            &log_bytes_restored};
  }
};

constexpr size_t kStripes = 16;
constexpr size_t kMergeDurationsKept = 10;

// The last kMergeDurationsKept merge durations, in a fixed ring: recording
// one allocates nothing.
class RecentDurations {
 public:
  void Add(uint64_t us) {
    ring_[(first_ + size_) % kMergeDurationsKept] = us;
    if (size_ < kMergeDurationsKept) {
      ++size_;
    } else {
      first_ = (first_ + 1) % kMergeDurationsKept;
    }
  }
  // Oldest first.
  std::vector<uint64_t> InOrder() const {
    std::vector<uint64_t> out;
    out.reserve(size_);
    for (size_t i = 0; i < size_; ++i) {
      out.push_back(ring_[(first_ + i) % kMergeDurationsKept]);
    }
    return out;
  }
  void Clear() { first_ = size_ = 0; }

 private:
  std::array<uint64_t, kMergeDurationsKept> ring_{};
  size_t first_ = 0;
  size_t size_ = 0;
};

struct Counters {
  Stripe stripes[kStripes];
  std::atomic<size_t> next_stripe{0};
  std::atomic<uint64_t> time_sync_us{0};  // a latest value, not a sum
  // DataFile::WholeFileSearches() at the last reset.
  std::atomic<uint64_t> whole_file_searches_base{0};
  absl::Mutex mu;
  RecentDurations merge_durations ABSL_GUARDED_BY(mu);
};

Counters& Global() {
  static Counters* counters = new Counters();
  return *counters;
}

constexpr auto kRelaxed = std::memory_order_relaxed;

Stripe& Mine() {
  thread_local Stripe* const stripe =
      &Global().stripes[Global().next_stripe.fetch_add(1, kRelaxed) % kStripes];
  return *stripe;
}

uint64_t Sum(std::atomic<uint64_t> Stripe::*field) {
  uint64_t total = 0;
  for (Stripe& s : Global().stripes) total += (s.*field).load(kRelaxed);
  return total;
}

}  // namespace

Stats GetStats() {
  Counters& c = Global();
  Stats s;
  s.bytes_read = Sum(&Stripe::bytes_read);
  s.nb_reads = Sum(&Stripe::nb_reads);
  s.bytes_written = Sum(&Stripe::bytes_written);
  s.nb_writes = Sum(&Stripe::nb_writes);
  s.nb_merge = Sum(&Stripe::nb_merge);
  s.nb_merge_copied_runs = Sum(&Stripe::nb_merge_copied_runs);
  s.nb_compaction = Sum(&Stripe::nb_compaction);
  s.time_compaction_us = Sum(&Stripe::compaction_us);
  s.time_merge_us = Sum(&Stripe::merge_us);
  s.time_verify_us = Sum(&Stripe::verify_us);
  s.nb_replace = Sum(&Stripe::nb_replace);
  s.nb_sync = Sum(&Stripe::nb_sync);
  s.time_sync_us = c.time_sync_us.load(kRelaxed);
  s.lru_hits = Sum(&Stripe::lru_hits);
  s.lru_misses = Sum(&Stripe::lru_misses);
  s.nb_durable_flush = Sum(&Stripe::nb_durable_flush);
  s.nb_flush_fsync = Sum(&Stripe::nb_flush_fsync);
  s.log_bytes_unvouched = Sum(&Stripe::log_bytes_unvouched);
  s.log_bytes_restored = Sum(&Stripe::log_bytes_restored);
  s.nb_find_whole_file =
      DataFile::WholeFileSearches() - c.whole_file_searches_base.load(kRelaxed);
  s.nb_replace_timed = Sum(&Stripe::nb_replace_timed);
  s.replace_mean_ns = s.nb_replace_timed == 0
                          ? 0
                          : Sum(&Stripe::replace_ns) / s.nb_replace_timed;
  absl::MutexLock lock(&c.mu);
  s.merge_durations_us = c.merge_durations.InOrder();
  return s;
}

void ResetStats() {
  Counters& c = Global();
  for (Stripe& stripe : c.stripes) {
    for (auto* a : stripe.All()) a->store(0, kRelaxed);
  }
  c.time_sync_us.store(0, kRelaxed);
  c.whole_file_searches_base.store(DataFile::WholeFileSearches(), kRelaxed);
  absl::MutexLock lock(&c.mu);
  c.merge_durations.Clear();
}

namespace stats_internal {
void AddRead(uint64_t bytes) {
  Mine().bytes_read.fetch_add(bytes, kRelaxed);
  Mine().nb_reads.fetch_add(1, kRelaxed);
}
void AddWrite(uint64_t bytes) {
  Mine().bytes_written.fetch_add(bytes, kRelaxed);
  Mine().nb_writes.fetch_add(1, kRelaxed);
}
void AddMerge() { Mine().nb_merge.fetch_add(1, kRelaxed); }
void AddMergeCopiedRuns() {
  Mine().nb_merge_copied_runs.fetch_add(1, kRelaxed);
}
void AddMergeDuration(uint64_t us) {
  Mine().merge_us.fetch_add(us, kRelaxed);
  Counters& c = Global();
  absl::MutexLock lock(&c.mu);
  c.merge_durations.Add(us);
}
void AddCompaction(uint64_t us) {
  Mine().nb_compaction.fetch_add(1, kRelaxed);
  Mine().compaction_us.fetch_add(us, kRelaxed);
}
void AddVerify(uint64_t us) { Mine().verify_us.fetch_add(us, kRelaxed); }
bool TimeThisReplace() {
  thread_local uint64_t replaces = 0;
  return replaces++ % kReplaceSampling == 0;
}
void AddReplace(bool timed, uint64_t ns) {
  Stripe& mine = Mine();
  mine.nb_replace.fetch_add(1, kRelaxed);
  if (timed) {
    mine.nb_replace_timed.fetch_add(1, kRelaxed);
    mine.replace_ns.fetch_add(ns, kRelaxed);
  }
}
void AddSync(uint64_t us) {
  Mine().nb_sync.fetch_add(1, kRelaxed);
  Global().time_sync_us.store(us, kRelaxed);
}
void AddDurableFlush() { Mine().nb_durable_flush.fetch_add(1, kRelaxed); }
void AddFlushFsync() { Mine().nb_flush_fsync.fetch_add(1, kRelaxed); }
void AddLogJournal(uint64_t unvouched, uint64_t restored) {
  if (unvouched > 0) Mine().log_bytes_unvouched.fetch_add(unvouched, kRelaxed);
  if (restored > 0) Mine().log_bytes_restored.fetch_add(restored, kRelaxed);
}
void AddLru(bool hit) {
  (hit ? Mine().lru_hits : Mine().lru_misses).fetch_add(1, kRelaxed);
}
}  // namespace stats_internal

}  // namespace kvindex
