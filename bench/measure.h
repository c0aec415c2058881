// Measurements of the current process, from /proc (Linux): what one benchmark
// run (a forked child) costs in I/O and memory, and the machine's load.
#ifndef KVINDEX_BENCH_MEASURE_H_
#define KVINDEX_BENCH_MEASURE_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"

namespace kvindex {
namespace bench {

// /proc/self/io: all threads of the process, dead ones included.
struct ProcIo {
  uint64_t rchar = 0, wchar = 0, syscr = 0, syscw = 0;
  uint64_t read_bytes = 0, write_bytes = 0, cancelled_write_bytes = 0;
};
ProcIo ReadProcIo();

// A "Vm...:" line of /proc/self/status (VmRSS, VmHWM), in bytes (0 if absent).
uint64_t ProcStatusBytes(absl::string_view field);

// Resets VmHWM to the current RSS (Linux >= 4.0); false if not possible.
bool ResetPeakRss();

// Samples RssAnon (anonymous resident memory: heap, stacks, anonymous maps; not
// file mappings or the page cache) on a thread every `period_ms`, and keeps the
// maximum. Spikes shorter than the period can be missed.
class AnonRssSampler {
 public:
  explicit AnonRssSampler(int period_ms = 5);
  ~AnonRssSampler();
  AnonRssSampler(const AnonRssSampler&) = delete;
  AnonRssSampler& operator=(const AnonRssSampler&) = delete;

  // Stops sampling (after a last sample) and returns the peak, in bytes.
  uint64_t Stop();

 private:
  void Sample();

  const int period_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  uint64_t peak_ = 0;  // guarded by mu_
  std::thread thread_;
};

// Allocated bytes (st_blocks) of the regular files under `dir` (LMDB's file is
// sparse: its size says little).
uint64_t DiskUsage(const std::string& dir);

// The three load averages of /proc/loadavg, as text.
std::string LoadAverage();

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_MEASURE_H_
