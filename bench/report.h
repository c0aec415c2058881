// Collecting the runs' results and printing them: the comparison table (rows =
// workloads, columns = stores' ops/s, then each peer's ratio to kvindex), the
// memory / amplification tables, the replace latencies, and the JSON report.
#ifndef KVINDEX_BENCH_REPORT_H_
#define KVINDEX_BENCH_REPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "nlohmann/json.hpp"

namespace kvindex {
namespace bench {

// The outcome of one run (one forked child).
struct RunResult {
  bool ok = false;
  std::string error;
  std::map<std::string, double> metrics;
  std::vector<std::string> order;  // metric names in the child's order
  double get(const std::string& name, double otherwise = 0) const {
    auto it = metrics.find(name);
    return it == metrics.end() ? otherwise : it->second;
  }
  bool has(const std::string& name) const { return metrics.count(name) > 0; }
};

// One (workload, store) pair: its repetitions and the median one. Runs are
// in round order: runs[i] ran in round i, next to runs[i] of every other cell
// of its row (and, for a durable row, of its baseline), so that cells can be
// compared round by round (RoundRatio).
struct Cell {
  std::string workload;
  std::string store;
  bool dependency = false;
  std::string skipped;          // non-empty: not run, and why
  std::vector<RunResult> runs;  // one per round, failed ones included
  const RunResult* median = nullptr;
  std::vector<double> ops_per_s;  // of the successful runs
};

// Sets cell.median to the successful run with the median ops/s (the lower
// middle one for an even count) and cell.ops_per_s to every successful run's.
void PickMedian(Cell& cell);

// How `c` compares with `reference`: the median, over the rounds in which
// both succeeded, of c's ops/s divided by reference's in the same round (the
// lower middle one for an even count). Runs of one round meet the machine in
// about the same state, so this ratio scatters less than the ratio of the two
// cells' medians when the machine's speed drifts between rounds (a disk's
// fsync rate does so by a factor of two within minutes in a virtual machine).
// nullopt when no round has both, or the reference's rate is not positive.
std::optional<double> RoundRatio(const Cell& c, const Cell& reference);

// 1234567 -> "1.23M", 12345 -> "12.3k".
std::string HumanRate(double v);

// Nanoseconds as text: 412 -> "412ns", 1234 -> "1.2us", 3.5e7 -> "35.0ms",
// 1.234e9 -> "1.23s".
std::string HumanDuration(double ns);

class Report {
 public:
  // `layout`: the kvindex store's (--layout).
  Report(const Plan& plan, uint64_t seed, uint64_t repeat, std::string layout,
         std::vector<std::string> stores);

  Cell& Add(const std::string& workload, const std::string& store);
  const Cell* Find(const std::string& workload, const std::string& store) const;

  // The tables, on stdout. `workloads` are the rows.
  void PrintTables(const std::vector<std::string>& workloads,
                   const std::string& load_start, const std::string& load_end,
                   double total_s) const;

  // The "results" array of the JSON report: one object per cell, in the order
  // they were added (bench/README.md shows its fields).
  nlohmann::ordered_json ResultsJson() const;

 private:
  void PrintMetricTable(const std::vector<std::string>& workloads,
                        const std::string& metric, const std::string& title,
                        int precision) const;
  void PrintReplaces(const std::vector<std::string>& workloads) const;
  void PrintKvIndex(const std::vector<std::string>& workloads) const;
  // The durable replaces per thread count against the fsync baseline.
  void PrintFsync() const;
  // A row of PrintFsync's table: `store`'s cells of `workload` at each thread
  // count, with their ratios to the baseline's and, if asked, LevelDB's.
  std::string FsyncRow(const std::string& workload, const std::string& store,
                       bool with_leveldb) const;

  const Plan plan_;
  const uint64_t seed_;
  const uint64_t repeat_;
  const std::string layout_;
  const std::vector<std::string> stores_;
  // The stores' column width in the tables: their longest name, at least 10.
  const int column_;
  std::vector<std::unique_ptr<Cell>> cells_;
};

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_REPORT_H_
