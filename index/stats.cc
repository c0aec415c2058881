#include "index/stats.h"

#include <atomic>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {
namespace {

struct Counters {
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> nb_reads{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> nb_writes{0};
  std::atomic<uint64_t> nb_merge{0};
  std::atomic<uint64_t> nb_replace{0};
  std::atomic<uint64_t> replace_ns{0};
  std::atomic<uint64_t> nb_sync{0};
  std::atomic<uint64_t> time_sync_us{0};
  std::atomic<uint64_t> lru_hits{0};
  std::atomic<uint64_t> lru_misses{0};
  absl::Mutex mu;
  std::deque<uint64_t> merge_durations ABSL_GUARDED_BY(mu);
};

Counters& Global() {
  static Counters* counters = new Counters();
  return *counters;
}

constexpr size_t kMergeDurationsKept = 10;
constexpr auto kRelaxed = std::memory_order_relaxed;

}  // namespace

Stats GetStats() {
  Counters& c = Global();
  Stats s;
  s.bytes_read = c.bytes_read.load(kRelaxed);
  s.nb_reads = c.nb_reads.load(kRelaxed);
  s.bytes_written = c.bytes_written.load(kRelaxed);
  s.nb_writes = c.nb_writes.load(kRelaxed);
  s.nb_merge = c.nb_merge.load(kRelaxed);
  s.nb_replace = c.nb_replace.load(kRelaxed);
  s.nb_sync = c.nb_sync.load(kRelaxed);
  s.time_sync_us = c.time_sync_us.load(kRelaxed);
  s.lru_hits = c.lru_hits.load(kRelaxed);
  s.lru_misses = c.lru_misses.load(kRelaxed);
  s.replace_mean_ns =
      s.nb_replace == 0 ? 0 : c.replace_ns.load(kRelaxed) / s.nb_replace;
  absl::MutexLock lock(&c.mu);
  s.merge_durations_us.assign(c.merge_durations.begin(),
                              c.merge_durations.end());
  return s;
}

void ResetStats() {
  Counters& c = Global();
  for (auto* a : {&c.bytes_read, &c.nb_reads, &c.bytes_written, &c.nb_writes,
                  &c.nb_merge, &c.nb_replace, &c.replace_ns, &c.nb_sync,
                  &c.time_sync_us, &c.lru_hits, &c.lru_misses}) {
    a->store(0, kRelaxed);
  }
  absl::MutexLock lock(&c.mu);
  c.merge_durations.clear();
}

namespace stats_internal {
void AddRead(uint64_t bytes) {
  Global().bytes_read.fetch_add(bytes, kRelaxed);
  Global().nb_reads.fetch_add(1, kRelaxed);
}
void AddWrite(uint64_t bytes) {
  Global().bytes_written.fetch_add(bytes, kRelaxed);
  Global().nb_writes.fetch_add(1, kRelaxed);
}
void AddMerge() { Global().nb_merge.fetch_add(1, kRelaxed); }
void AddMergeDuration(uint64_t us) {
  Counters& c = Global();
  absl::MutexLock lock(&c.mu);
  c.merge_durations.push_back(us);
  while (c.merge_durations.size() > kMergeDurationsKept) {
    c.merge_durations.pop_front();
  }
}
void AddReplace(uint64_t ns) {
  Global().nb_replace.fetch_add(1, kRelaxed);
  Global().replace_ns.fetch_add(ns, kRelaxed);
}
void AddSync(uint64_t us) {
  Global().nb_sync.fetch_add(1, kRelaxed);
  Global().time_sync_us.store(us, kRelaxed);
}
void AddLru(bool hit) {
  (hit ? Global().lru_hits : Global().lru_misses).fetch_add(1, kRelaxed);
}
}  // namespace stats_internal

}  // namespace kvindex
