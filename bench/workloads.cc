#include "bench/workloads.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "bench/latency_histogram.h"
#include "bench/store.h"
#include "data/schema.h"

namespace kvindex {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// User + system CPU time of the whole process (background threads included).
double CpuSeconds() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto s = [](const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) +
           static_cast<double>(tv.tv_usec) / 1e6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

}  // namespace

const std::vector<Workload>& AllWorkloads() {
  static const auto* const kWorkloads = new std::vector<Workload>{
      {kReplaceRandom, Kind::kReplace, Order::kPool, OpenMode::kFresh, false,
       "replace every binding, in random order, fresh store"},
      {"replace_random_sync", Kind::kReplaceFlush, Order::kPool,
       OpenMode::kFresh, false,
       "replace + flush (no fsync) per binding (--sync-entries)"},
      {"replace_increasing_keys", Kind::kReplace, Order::kByKey,
       OpenMode::kFresh, false, "replace in increasing key order"},
      {"replace_increasing_hash", Kind::kReplace, Order::kByHashUp,
       OpenMode::kFresh, false, "replace in increasing kvindex key-hash order"},
      {"replace_decreasing_hash", Kind::kReplace, Order::kByHashDown,
       OpenMode::kFresh, false, "replace in decreasing kvindex key-hash order"},
      {"iter_rw", Kind::kIter, Order::kPool, OpenMode::kReadWrite, true,
       "iterate over replace_random's store (read-write)"},
      {"find_random_ro", Kind::kFind, Order::kShuffled, OpenMode::kReadOnly,
       true, "find every binding, read-only instance"},
      {"find_random_rw", Kind::kFind, Order::kShuffled, OpenMode::kReadWrite,
       true, "find every binding, read-write instance"},
      {"find_absent_ro", Kind::kFindAbsent, Order::kPool, OpenMode::kReadOnly,
       true, "find absent keys, read-only instance"},
      {"find_absent_rw", Kind::kFindAbsent, Order::kPool, OpenMode::kReadWrite,
       true, "find absent keys, read-write instance"},
      {kReplaceRandomFsync, Kind::kReplaceFsync, Order::kPool, OpenMode::kFresh,
       false, "durable replace per binding, --fsync-ops of them"},
  };
  return *kWorkloads;
}

uint64_t OpsOf(const Workload& w, const Plan& plan) {
  switch (w.kind) {
    case Kind::kReplaceFlush:
      return plan.sync_entries;
    case Kind::kReplaceFsync:
      return plan.fsync_ops;
    default:
      return plan.entries;
  }
}

std::string ThreadedName(absl::string_view workload, uint32_t threads) {
  if (threads == 1) return std::string(workload);
  return absl::StrCat(workload, "_t", threads);
}

PoolBuffer::~PoolBuffer() {
  if (data_ != nullptr) munmap(data_, mapped_);
}

void PoolBuffer::Allocate(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  if (data_ != nullptr) munmap(data_, mapped_);
  // Whole, aligned huge pages: mapped with one page to spare, then trimmed to
  // a 2 MiB boundary. mmap memory is untouched until the pool is written,
  // when the kernel can still choose huge pages for it.
  mapped_ =
      std::max(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage);
  void* raw = mmap(nullptr, mapped_ + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    std::fprintf(stderr, "index_bench: cannot map %zu bytes: %s\n", mapped_,
                 std::strerror(errno));
    std::abort();
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t tail = begin + kHugePage - aligned;  // the spare page's rest
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + mapped_), tail);
  void* p = reinterpret_cast<void*>(aligned);
  (void)madvise(p, mapped_, MADV_HUGEPAGE);
  data_ = static_cast<char*>(p);
  size_ = bytes;
}

Pools::Pools(const Plan& plan, uint64_t seed, KeyHashFn hash, bool need_absent,
             bool need_sorted)
    : key_size_(plan.key_size),
      value_size_(plan.value_size),
      entry_size_(plan.entry_size()),
      n_(plan.entries) {
  std::mt19937_64 rng(seed);
  bindings_.Allocate(n_ * entry_size_);
  FillPrintable(rng, bindings_.data(), bindings_.size());
  if (need_absent) {
    absent_.Allocate(n_ * key_size_);
    FillPrintable(rng, absent_.data(), absent_.size());
  }
  shuffled_.resize(n_);
  std::iota(shuffled_.begin(), shuffled_.end(), 0);
  std::shuffle(shuffled_.begin(), shuffled_.end(), rng);
  if (need_sorted) {
    by_key_.resize(n_);
    std::iota(by_key_.begin(), by_key_.end(), 0);
    std::sort(by_key_.begin(), by_key_.end(), [&](uint32_t a, uint32_t b) {
      return std::memcmp(KeyPtr(a), KeyPtr(b), key_size_) < 0;
    });
    std::vector<uint64_t> hashes(n_);
    for (uint64_t i = 0; i < n_; ++i) hashes[i] = hash(Key(i));
    by_hash_.resize(n_);
    std::iota(by_hash_.begin(), by_hash_.end(), 0);
    std::sort(by_hash_.begin(), by_hash_.end(), [&](uint32_t a, uint32_t b) {
      return hashes[a] != hashes[b] ? hashes[a] < hashes[b] : a < b;
    });
  }
}

// Random printable ASCII ('!'..'~'), several characters per 64-bit draw.
void Pools::FillPrintable(std::mt19937_64& rng, char* out, size_t n) {
  constexpr int kAlphabet = 94;
  size_t i = 0;
  while (i < n) {
    uint64_t v = rng();
    for (int j = 0; j < 9 && i < n; ++j, ++i) {
      out[i] = static_cast<char>('!' + v % kAlphabet);
      v /= kAlphabet;
    }
  }
}
// How many operations ahead the timed loops prefetch their binding: enough
// for the fetch to complete during the operations in between.
constexpr uint64_t kFetchAhead = 4;

bool IsReplace(const Workload& w) {
  return w.kind == Kind::kReplace || w.kind == Kind::kReplaceFlush ||
         w.kind == Kind::kReplaceFsync;
}

namespace {

// Nanoseconds from `from` to `to`, for a latency histogram.
uint64_t Nanoseconds(Clock::time_point from, Clock::time_point to) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

// The replace loop of `w`: n replaces (each followed by a flush without fsync
// for kReplaceFlush), each timed. An operation's latency is the time from the
// end of the previous one to its own end, so that the clock is read once per
// operation; it includes the loop's few nanoseconds of work, the same for
// every store.
absl::Status TimedReplaces(Store& store, const Workload& w, const Pools& pools,
                           uint64_t n, LatencyHistogram& latency_ns) {
  const bool flush = w.kind == Kind::kReplaceFlush;
  Clock::time_point last = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    if (i + kFetchAhead < n) pools.Prefetch(pools.At(w.order, i + kFetchAhead));
    const uint64_t b = pools.At(w.order, i);
    absl::Status s = store.Replace(pools.Key(b), pools.Value(b));
    if (s.ok() && flush) s = store.Flush(false);
    if (!s.ok()) return s;
    const Clock::time_point now = Clock::now();
    latency_ns.Record(Nanoseconds(last, now));
    last = now;
  }
  return w.kind == Kind::kReplace ? store.Flush(false) : absl::OkStatus();
}

// An operation of a threaded loop: the i-th of the run.
using Operation = std::function<absl::Status(uint64_t i)>;

// One thread's share of a threaded loop: op(begin) .. op(end - 1), each timed
// as in TimedReplaces, until one fails here or in another thread (`failed`).
absl::Status TimedShare(uint64_t begin, uint64_t end, const Operation& op,
                        std::atomic<bool>& failed,
                        LatencyHistogram& latency_ns) {
  Clock::time_point last = Clock::now();
  for (uint64_t i = begin; i < end; ++i) {
    if (failed.load(std::memory_order_relaxed)) break;
    const absl::Status s = op(i);
    if (!s.ok()) {
      failed.store(true, std::memory_order_relaxed);
      return s;
    }
    const Clock::time_point now = Clock::now();
    latency_ns.Record(Nanoseconds(last, now));
    last = now;
  }
  return absl::OkStatus();
}

// op(0) .. op(n - 1) from `threads` threads, each with a contiguous share,
// released together once all are created; the wall time runs from their
// release to the end of the last one. Returns the first thread's error, if
// any.
absl::StatusOr<Timed> TimedInThreads(uint64_t n, uint32_t threads,
                                     const Operation& op) {
  std::vector<LatencyHistogram> latency_ns(threads);
  std::vector<absl::Status> status(threads);
  std::atomic<bool> failed{false};
  absl::Notification go;
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (uint32_t t = 0; t < threads; ++t) {
    const uint64_t begin = n * t / threads;
    const uint64_t end = n * (t + 1) / threads;
    workers.emplace_back([&, t, begin, end] {
      go.WaitForNotification();
      status[t] = TimedShare(begin, end, op, failed, latency_ns[t]);
    });
  }
  Timed timed;
  const double cpu_start = CpuSeconds();
  const Clock::time_point start = Clock::now();
  go.Notify();
  for (std::thread& worker : workers) worker.join();
  timed.seconds = Seconds(Clock::now() - start);
  timed.cpu_seconds = CpuSeconds() - cpu_start;
  for (const absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  for (const LatencyHistogram& h : latency_ns) timed.latency_ns.Merge(h);
  return timed;
}

// replace_random_fsync: a durable replace per operation, the threads sharing
// `store`.
absl::StatusOr<Timed> TimedDurableReplaces(Store& store, const Workload& w,
                                           const Pools& pools, uint64_t n,
                                           uint32_t threads) {
  return TimedInThreads(n, threads, [&](uint64_t i) {
    if (i + kFetchAhead < n) pools.Prefetch(pools.At(w.order, i + kFetchAhead));
    const uint64_t b = pools.At(w.order, i);
    return store.ReplaceDurable(pools.Key(b), pools.Value(b));
  });
}

}  // namespace

absl::StatusOr<Timed> RunTimed(Store& store, const Workload& w,
                               const Pools& pools, const Plan& plan,
                               uint32_t threads) {
  const uint64_t n = OpsOf(w, plan);
  if (w.kind == Kind::kReplaceFsync) {
    return TimedDurableReplaces(store, w, pools, n, threads);
  }
  std::vector<char> value(plan.value_size + 1);
  Timed t;
  const double cpu_start = CpuSeconds();
  Clock::time_point start = Clock::now();
  switch (w.kind) {
    case Kind::kReplaceFsync:  // above
      break;
    case Kind::kReplace:
    case Kind::kReplaceFlush: {
      absl::Status s = TimedReplaces(store, w, pools, n, t.latency_ns);
      if (!s.ok()) return s;
      break;
    }
    case Kind::kIter: {
      absl::Status s = store.Iter(
          [&](absl::string_view, absl::string_view) { ++t.visited; });
      if (!s.ok()) return s;
      if (t.visited < n) {
        return absl::InternalError(absl::StrCat(w.name, ": iter visited ",
                                                t.visited, " bindings of ", n));
      }
      break;
    }
    case Kind::kFind:
      for (uint64_t i = 0; i < n; ++i) {
        if (i + kFetchAhead < n)
          pools.Prefetch(pools.At(w.order, i + kFetchAhead));
        uint64_t b = pools.At(w.order, i);
        absl::StatusOr<bool> found = store.Find(pools.Key(b), value.data());
        if (!found.ok()) return found.status();
        if (!*found) {
          return absl::InternalError(absl::StrCat(w.name, ": binding #", b,
                                                  " not found (key '",
                                                  pools.Key(b), "')"));
        }
        if (std::memcmp(value.data(), pools.Value(b).data(), plan.value_size) !=
            0) {
          return absl::InternalError(absl::StrCat(w.name, ": binding #", b,
                                                  " has a wrong value (key '",
                                                  pools.Key(b), "')"));
        }
      }
      break;
    case Kind::kFindAbsent:
      for (uint64_t i = 0; i < n; ++i) {
        absl::StatusOr<bool> found =
            store.Find(pools.AbsentKey(i), value.data());
        if (!found.ok()) return found.status();
        if (*found) {
          return absl::InternalError(absl::StrCat(w.name, ": absent key #", i,
                                                  " found ('",
                                                  pools.AbsentKey(i), "')"));
        }
      }
      break;
  }
  t.seconds = Seconds(Clock::now() - start);
  t.cpu_seconds = CpuSeconds() - cpu_start;
  return t;
}

absl::StatusOr<Timed> RunFsyncBaseline(const std::string& dir,
                                       const Pools& pools, const Plan& plan,
                                       uint32_t threads) {
  absl::Status s = ResetDirectory(dir);
  if (!s.ok()) return s;
  const std::string path = dir + "/append.dat";
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
  }
  // Each operation takes the next entry's place in the file, so that the
  // threads append to it together.
  std::atomic<uint64_t> next_offset{0};
  absl::StatusOr<Timed> timed =
      TimedInThreads(plan.fsync_ops, threads, [&](uint64_t i) {
        const absl::string_view entry = pools.Entry(i);
        const uint64_t offset = next_offset.fetch_add(entry.size());
        if (pwrite(fd, entry.data(), entry.size(),
                   static_cast<off_t>(offset)) !=
                static_cast<ssize_t>(entry.size()) ||
            fdatasync(fd) != 0) {
          return absl::InternalError(absl::StrCat(
              path, ": pwrite+fdatasync failed: ", std::strerror(errno)));
        }
        return absl::OkStatus();
      });
  close(fd);
  return timed;
}

}  // namespace bench
}  // namespace kvindex
