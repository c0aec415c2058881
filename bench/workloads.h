// The workloads of the OCaml index library's benchmark (bench/README.md,
// "Workloads") and the key pools they draw from, independent of how runs are
// isolated and reported (bench/driver.cc).
#ifndef KVINDEX_BENCH_WORKLOADS_H_
#define KVINDEX_BENCH_WORKLOADS_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/latency_histogram.h"
#include "bench/store.h"
#include "data/schema.h"

namespace kvindex {
namespace bench {

// The run's sizes, after defaults and --quick.
struct Plan {
  uint64_t entries = 0;       // bindings in the pool; operations per workload
  uint64_t log_size = 0;      // kvindex
  uint64_t sync_entries = 0;  // operations of replace_random_sync
  uint64_t fsync_ops = 0;  // operations of replace_random_fsync, fsync_baseline
  // The thread counts of replace_random_fsync and fsync_baseline (--threads):
  // a row each, its fsync_ops operations split across that many threads.
  std::vector<uint32_t> fsync_threads;
  size_t key_size = 0;
  size_t value_size = 0;
  size_t entry_size() const { return key_size + value_size; }
};

enum class Kind {
  kReplace,       // replace every binding in `order`, then flush
  kReplaceFlush,  // replace + flush (no fsync) each, sync_entries bindings
  kReplaceFsync,  // a durable replace each (Store::ReplaceDurable), fsync_ops
                  // bindings, from each of plan.fsync_threads threads
  kIter,          // iterate over the store written by replace_random
  kFind,          // find every binding (checking the value)
  kFindAbsent,    // find keys that are not there
};

enum class Order { kPool, kByKey, kByHashUp, kByHashDown, kShuffled };

struct Workload {
  const char* name;
  Kind kind;
  Order order;
  OpenMode mode;
  // Runs on the store replace_random wrote (which must run first).
  bool on_replace_random;
  const char* description;
};

constexpr char kReplaceRandom[] = "replace_random";
constexpr char kReplaceRandomFsync[] = "replace_random_fsync";

// Every workload, in the order they run (replace_random first: the read
// workloads need its store).
const std::vector<Workload>& AllWorkloads();

// The write(2)+fdatasync baseline for replace_random_fsync: not a store.
constexpr char kFsyncBaseline[] = "fsync_baseline";
constexpr char kBaselineStore[] = "posix_file";

// Operations a workload performs.
uint64_t OpsOf(const Workload& w, const Plan& plan);

// The name of a workload's row at `threads` threads: the workload's own name
// for one thread (the single-threaded rows keep their names), else
// "<workload>_t<threads>" ("replace_random_fsync_t4").
std::string ThreadedName(absl::string_view workload, uint32_t threads);

// Memory for the key pools, asking the kernel for 2 MiB pages
// (MADV_HUGEPAGE; plain pages if it declines). The timed loops read the pools
// at random: with 4 KiB pages every binding fetched is also a TLB miss, and on
// a virtual machine its two-dimensional page walk costs about as much as the
// cache miss itself (bench/README.md, "Method"), a cost of the harness that
// would be added to every operation of every store.
class PoolBuffer {
 public:
  PoolBuffer() = default;
  ~PoolBuffer();
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;

  // Zero-filled memory of `bytes` bytes; aborts if none can be mapped.
  void Allocate(size_t bytes);
  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

// Key pools: built once in the parent; the forked children share them
// copy-on-write. Keys and values are random printable bytes ('!'..'~').
class Pools {
 public:
  // Builds `plan.entries` random bindings, and the absent keys and sorted
  // orders when asked (they cost memory and time at 10M entries).
  Pools(const Plan& plan, uint64_t seed, KeyHashFn hash, bool need_absent,
        bool need_sorted);

  uint64_t size() const { return n_; }
  absl::string_view Key(uint64_t i) const {
    return absl::string_view(KeyPtr(i), key_size_);
  }
  absl::string_view Value(uint64_t i) const {
    return absl::string_view(KeyPtr(i) + key_size_, value_size_);
  }
  // Binding i as one entry: its key, then its value.
  absl::string_view Entry(uint64_t i) const {
    return absl::string_view(KeyPtr(i), entry_size_);
  }
  absl::string_view AbsentKey(uint64_t i) const {
    return absl::string_view(absent_.data() + i * key_size_, key_size_);
  }
  // Starts loading binding b (key and value) into the CPU cache. The timed
  // loops request the binding of a few operations ahead, so that fetching the
  // harness's own random keys does not add a cache miss to every operation
  // of every store.
  void Prefetch(uint64_t b) const {
    const char* p = KeyPtr(b);
    __builtin_prefetch(p);
    __builtin_prefetch(p + entry_size_ - 1);
  }
  // The i-th binding index of `order`.
  uint64_t At(Order order, uint64_t i) const {
    switch (order) {
      case Order::kPool:
        return i;
      case Order::kShuffled:
        return shuffled_[i];
      case Order::kByKey:
        return by_key_[i];
      case Order::kByHashUp:
        return by_hash_[i];
      case Order::kByHashDown:
        return by_hash_[n_ - 1 - i];
    }
    return i;
  }

 private:
  static void FillPrintable(std::mt19937_64& rng, char* out, size_t n);
  const char* KeyPtr(uint64_t i) const {
    return bindings_.data() + i * entry_size_;
  }

  const size_t key_size_;
  const size_t value_size_;
  const size_t entry_size_;
  const uint64_t n_;
  PoolBuffer bindings_;
  PoolBuffer absent_;
  std::vector<uint32_t> shuffled_;
  std::vector<uint32_t> by_key_;
  std::vector<uint32_t> by_hash_;
};

// Whether `w` replaces bindings (and so times each of its operations).
bool IsReplace(const Workload& w);

struct Timed {
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // user + system, all threads of the process
  uint64_t visited = 0;    // iter: bindings seen
  // Replace workloads and the fsync baseline: the nanoseconds of every
  // operation (a replace, a replace and its flush, a durable replace, a
  // write and its fdatasync), all threads' together; empty for the others.
  LatencyHistogram latency_ns;
};

// Runs the timed part of `w` on an open store: the loop (checking every found
// value, and that absent keys are absent), plus a final Flush for
// replace_random and the other bulk replaces. kReplaceFsync runs its
// operations in `threads` threads sharing `store`, started together, each
// with a contiguous share of them; the other kinds run in the calling thread
// (pass 1).
absl::StatusOr<Timed> RunTimed(Store& store, const Workload& w,
                               const Pools& pools, const Plan& plan,
                               uint32_t threads);

// fsync_baseline: plan.fsync_ops operations, each a pwrite(2) of one entry
// at the next free offset of one fresh file in `dir` and an fdatasync of it,
// split across `threads` threads sharing the file, as in RunTimed.
absl::StatusOr<Timed> RunFsyncBaseline(const std::string& dir,
                                       const Pools& pools, const Plan& plan,
                                       uint32_t threads);

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_WORKLOADS_H_
