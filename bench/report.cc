#include "bench/report.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/workloads.h"

namespace kvindex {
namespace bench {
namespace {

std::string CellText(const Cell* c) {
  if (c == nullptr) return "";
  if (!c->skipped.empty()) return "n/a";
  if (c->median == nullptr) return "FAILED";
  return HumanRate(c->median->get("ops_per_s"));
}

// RoundRatio of `c` to `reference` as text ("1.25x"), "-" when either is
// missing or they have no round in common.
std::string RatioText(const Cell* c, const Cell* reference) {
  if (c == nullptr || reference == nullptr) return "-";
  const std::optional<double> ratio = RoundRatio(*c, *reference);
  if (!ratio.has_value()) return "-";
  return absl::StrFormat("%.2fx", *ratio);
}

// This library, in either layout ("kvindex", "kvindex_tiered").
bool IsKvIndex(const std::string& store) {
  return absl::StartsWith(store, "kvindex");
}

// The stores' column width: their longest name, at least 10.
int ColumnWidth(const std::vector<std::string>& stores) {
  size_t width = 10;
  for (const std::string& s : stores) width = std::max(width, s.size());
  return static_cast<int>(width);
}

// A metric of a cell's median run as text, "-" when it has none.
std::string MetricText(const Cell* c, const std::string& metric,
                       int precision) {
  if (c == nullptr || c->median == nullptr || !c->median->has(metric)) {
    return "-";
  }
  return absl::StrFormat("%.*f", precision, c->median->get(metric));
}

// A metric in nanoseconds of a cell's median run as text, "-" when it has
// none.
std::string DurationText(const Cell* c, const std::string& metric) {
  if (c == nullptr || c->median == nullptr || !c->median->has(metric)) {
    return "-";
  }
  return HumanDuration(c->median->get(metric));
}

// The cells of the table whose rows are `workloads` and columns `stores`, row
// by row, that have a median run and that `keep` accepts.
std::vector<const Cell*> MedianCells(
    const Report& report, const std::vector<std::string>& workloads,
    const std::vector<std::string>& stores,
    const std::function<bool(const Cell&)>& keep) {
  std::vector<const Cell*> cells;
  for (const std::string& w : workloads) {
    for (const std::string& s : stores) {
      const Cell* c = report.Find(w, s);
      if (c != nullptr && c->median != nullptr && keep(*c)) cells.push_back(c);
    }
  }
  return cells;
}

}  // namespace

Report::Report(const Plan& plan, uint64_t seed, uint64_t repeat,
               std::string layout, std::vector<std::string> stores)
    : plan_(plan),
      seed_(seed),
      repeat_(repeat),
      layout_(std::move(layout)),
      stores_(std::move(stores)),
      column_(ColumnWidth(stores_)) {}

void PickMedian(Cell& cell) {
  std::vector<const RunResult*> ok;
  for (const RunResult& r : cell.runs) {
    if (!r.ok) continue;
    ok.push_back(&r);
    cell.ops_per_s.push_back(r.get("ops_per_s"));  // in run order
  }
  if (ok.empty()) return;
  std::sort(ok.begin(), ok.end(), [](const RunResult* a, const RunResult* b) {
    return a->get("ops_per_s") < b->get("ops_per_s");
  });
  cell.median = ok[(ok.size() - 1) / 2];
}

std::optional<double> RoundRatio(const Cell& c, const Cell& reference) {
  std::vector<double> ratios;
  const size_t rounds = std::min(c.runs.size(), reference.runs.size());
  for (size_t i = 0; i < rounds; ++i) {
    const RunResult& run = c.runs[i];
    const RunResult& ref = reference.runs[i];
    if (!run.ok || !ref.ok || ref.get("ops_per_s") <= 0) continue;
    ratios.push_back(run.get("ops_per_s") / ref.get("ops_per_s"));
  }
  if (ratios.empty()) return std::nullopt;
  std::sort(ratios.begin(), ratios.end());
  return ratios[(ratios.size() - 1) / 2];
}

std::string HumanRate(double v) {
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

std::string HumanDuration(double ns) {
  if (ns < 1e3) return absl::StrFormat("%.0fns", ns);
  if (ns < 1e6) return absl::StrFormat("%.1fus", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.1fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

Cell& Report::Add(const std::string& workload, const std::string& store) {
  cells_.push_back(std::make_unique<Cell>());
  cells_.back()->workload = workload;
  cells_.back()->store = store;
  return *cells_.back();
}

const Cell* Report::Find(const std::string& workload,
                         const std::string& store) const {
  for (const auto& c : cells_) {
    if (c->workload == workload && c->store == store) return c.get();
  }
  return nullptr;
}

void Report::PrintTables(const std::vector<std::string>& workloads,
                         const std::string& load_start,
                         const std::string& load_end, double total_s) const {
  const bool have_kv =
      std::find(stores_.begin(), stores_.end(), "kvindex") != stores_.end();
  std::printf(
      "\nindex_bench: %llu entries, key %zu B, value %zu B, log_size %llu, "
      "kvindex layout %s, seed %llu, median of %llu round(s) (ratios: the "
      "median of each round's); %.0f s in total; load average %s at start, "
      "%s at end\n",
      static_cast<unsigned long long>(plan_.entries), plan_.key_size,
      plan_.value_size, static_cast<unsigned long long>(plan_.log_size),
      layout_.c_str(), static_cast<unsigned long long>(seed_),
      static_cast<unsigned long long>(repeat_), total_s, load_start.c_str(),
      load_end.c_str());
  std::printf("\nThroughput (ops/s; higher is better)%s\n",
              have_kv ? "; peer/kvindex = peer's ops/s divided by kvindex's "
                        "(< 1: kvindex is faster)"
                      : "");
  std::string header = absl::StrFormat("%-24s", "workload");
  for (const auto& s : stores_)
    absl::StrAppendFormat(&header, " %*s", column_, s);
  if (have_kv) {
    header += " |";
    for (const auto& s : stores_) {
      if (s != "kvindex") {
        absl::StrAppendFormat(&header, " %*s", column_ + 3,
                              absl::StrCat(s, "/kv"));
      }
    }
  }
  std::printf("%s\n", header.c_str());
  for (const auto& w : workloads) {
    std::string line = absl::StrFormat("%-24s", w);
    const Cell* kv = Find(w, "kvindex");
    for (const auto& s : stores_) {
      absl::StrAppendFormat(&line, " %*s", column_, CellText(Find(w, s)));
    }
    if (have_kv) {
      line += " |";
      for (const auto& s : stores_) {
        if (s == "kvindex") continue;
        absl::StrAppendFormat(&line, " %*s", column_ + 3,
                              RatioText(Find(w, s), kv));
      }
    }
    std::printf("%s\n", line.c_str());
  }

  PrintMetricTable(workloads, "cpu_us_per_op",
                   "CPU time per operation (us, user + system, all threads "
                   "of the run's process; less sensitive to the machine's "
                   "load than ops/s)",
                   2);
  PrintMetricTable(workloads, "peak_anon_growth_mib",
                   "Peak memory of the store, anonymous (MiB: heap, stacks; "
                   "RssAnon sampled every 5 ms, minus its value at start)",
                   0);
  PrintMetricTable(workloads, "peak_rss_growth_mib",
                   "Peak memory of the store, resident (MiB: VmHWM minus RSS "
                   "at start; includes file mappings such as LMDB's map)",
                   0);
  PrintMetricTable(workloads, "device_write_amplification",
                   "Write amplification (bytes the process sent to storage "
                   "/ payload bytes; open to close)",
                   2);
  PrintMetricTable(workloads, "sys_read_calls_per_op",
                   "read(2)-family calls per operation (memory-mapped reads "
                   "are not calls)",
                   2);
  PrintReplaces(workloads);
  PrintKvIndex(workloads);
  PrintFsync();
}

nlohmann::ordered_json Report::ResultsJson() const {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& c : cells_) {
    nlohmann::ordered_json cell;
    cell["name"] = c->workload;
    cell["store"] = c->store;
    cell["dependency"] = c->dependency;
    if (!c->skipped.empty()) {
      cell["skipped"] = c->skipped;
    } else if (c->median == nullptr) {
      std::string error = c->runs.empty() ? "not run" : c->runs[0].error;
      for (const RunResult& r : c->runs) {
        if (!r.ok) error = r.error;
      }
      cell["error"] = error;
    } else {
      cell["runs_ops_per_s"] = c->ops_per_s;
      nlohmann::ordered_json& metrics = cell["metrics"];
      metrics = nlohmann::ordered_json::object();
      for (const std::string& name : c->median->order) {
        metrics[name] = c->median->get(name);
      }
    }
    results.push_back(std::move(cell));
  }
  return results;
}

void Report::PrintMetricTable(const std::vector<std::string>& workloads,
                              const std::string& metric,
                              const std::string& title, int precision) const {
  std::printf("\n%s\n", title.c_str());
  std::string header = absl::StrFormat("%-24s", "workload");
  for (const auto& s : stores_)
    absl::StrAppendFormat(&header, " %*s", column_, s);
  std::printf("%s\n", header.c_str());
  for (const auto& w : workloads) {
    std::string line = absl::StrFormat("%-24s", w);
    for (const auto& s : stores_) {
      const Cell* c = Find(w, s);
      std::string text = c == nullptr ? "" : "-";
      if (c != nullptr && c->median != nullptr && c->median->has(metric)) {
        text = absl::StrFormat("%.*f", precision, c->median->get(metric));
      }
      absl::StrAppendFormat(&line, " %*s", column_, text);
    }
    std::printf("%s\n", line.c_str());
  }
}

void Report::PrintReplaces(const std::vector<std::string>& workloads) const {
  const std::vector<const Cell*> cells = MedianCells(
      *this, workloads, stores_,
      [](const Cell& c) { return c.median->has("replace_latency_max_ns"); });
  if (cells.empty()) return;
  std::printf(
      "\nReplaces: ops/s; bytes written per payload byte (to the device, and "
      "kvindex's own count); the latency of every operation (with _sync a "
      "replace and its flush, with _fsync a durable replace, all threads' "
      "together; p50, p99, p99.9 within 1%%, max exact)\n%-24s "
      "%-*s %10s %9s %9s %9s %9s %9s %9s\n",
      "workload", column_, "store", "ops/s", "dev.w.amp", "kv.w.amp", "p50",
      "p99", "p99.9", "max");
  for (const Cell* c : cells) {
    std::printf("%-24s %-*s %10s %9s %9s %9s %9s %9s %9s\n",
                c->workload.c_str(), column_, c->store.c_str(),
                CellText(c).c_str(),
                MetricText(c, "device_write_amplification", 2).c_str(),
                MetricText(c, "write_amplification_size", 2).c_str(),
                DurationText(c, "replace_latency_p50_ns").c_str(),
                DurationText(c, "replace_latency_p99_ns").c_str(),
                DurationText(c, "replace_latency_p999_ns").c_str(),
                DurationText(c, "replace_latency_max_ns").c_str());
  }
}

void Report::PrintKvIndex(const std::vector<std::string>& workloads) const {
  const std::vector<const Cell*> cells =
      MedianCells(*this, workloads, stores_,
                  [](const Cell& c) { return IsKvIndex(c.store); });
  if (cells.empty()) return;
  std::printf(
      "\nkvindex (its Stats; amplification as in the OCaml benchmark: calls "
      "per op, bytes per payload byte; merge time: the last 10 merges, and all "
      "merges estimated from their mean)\n%-24s %-*s %7s %12s %12s %9s %9s "
      "%9s %9s\n",
      "workload", column_, "store", "merges", "last10 s", "all s (est)",
      "r.calls", "r.bytes", "w.calls", "w.bytes");
  for (const Cell* c : cells) {
    const RunResult& r = *c->median;
    std::printf(
        "%-24s %-*s %7.0f %12.2f %12.2f %9.3f %9.3f %9.3f %9.3f\n",
        c->workload.c_str(), column_, c->store.c_str(), r.get("nb_merges"),
        r.get("merges_duration_us") / 1e6, r.get("merges_total_s_estimate"),
        r.get("read_amplification_calls"), r.get("read_amplification_size"),
        r.get("write_amplification_calls"), r.get("write_amplification_size"));
  }
}

void Report::PrintFsync() const {
  const std::vector<uint32_t>& counts = plan_.fsync_threads;
  // The cells of `workload`'s rows on `store`, one per thread count it ran at.
  const auto cells_of = [&](const std::string& workload,
                            const std::string& store) {
    std::vector<const Cell*> cells;
    for (const uint32_t threads : counts) {
      const Cell* c = Find(ThreadedName(workload, threads), store);
      if (c != nullptr) cells.push_back(c);
    }
    return cells;
  };
  const bool have_baseline = !cells_of(kFsyncBaseline, kBaselineStore).empty();
  const bool have_stores =
      std::any_of(stores_.begin(), stores_.end(), [&](const std::string& s) {
        return !cells_of(kReplaceRandomFsync, s).empty();
      });
  if (!have_baseline && !have_stores) return;
  const bool with_leveldb =
      std::find(stores_.begin(), stores_.end(), "leveldb") != stores_.end();
  std::printf(
      "\nDurable replaces per second (replace_random_fsync: %llu ops split "
      "across the threads, which share one store; each returns once its "
      "binding is durable), against the floor (fsync_baseline: pwrite(2) of "
      "one entry + fdatasync per op, the threads sharing one plain file). "
      "x base: ops/s divided by the baseline's%s, at the same thread count\n",
      static_cast<unsigned long long>(plan_.fsync_ops),
      with_leveldb ? "; x leveldb: by LevelDB's" : "");
  const int group = with_leveldb ? 28 : 18;
  std::string header = absl::StrFormat("%-*s", column_, "");
  std::string columns = absl::StrFormat("%-*s", column_, "store");
  for (const uint32_t threads : counts) {
    absl::StrAppendFormat(
        &header, "%*s", group,
        absl::StrCat(threads, threads == 1 ? " thread" : " threads"));
    absl::StrAppendFormat(&columns, " %9s %7s", "ops/s", "x base");
    if (with_leveldb) absl::StrAppendFormat(&columns, " %9s", "x leveldb");
  }
  std::printf("%s\n%s\n", header.c_str(), columns.c_str());
  if (have_baseline) {
    std::printf("%s\n",
                FsyncRow(kFsyncBaseline, kBaselineStore, with_leveldb).c_str());
  }
  for (const std::string& store : stores_) {
    const std::vector<const Cell*> cells = cells_of(kReplaceRandomFsync, store);
    if (cells.empty()) continue;
    const bool all_skipped =
        std::all_of(cells.begin(), cells.end(),
                    [](const Cell* c) { return !c->skipped.empty(); });
    if (all_skipped) {
      std::printf("%-*s %s\n", column_, store.c_str(),
                  cells[0]->skipped.c_str());
    } else {
      std::printf("%s\n",
                  FsyncRow(kReplaceRandomFsync, store, with_leveldb).c_str());
    }
  }
}

std::string Report::FsyncRow(const std::string& workload,
                             const std::string& store,
                             bool with_leveldb) const {
  std::string line = absl::StrFormat("%-*s", column_, store);
  for (const uint32_t threads : plan_.fsync_threads) {
    const Cell* c = Find(ThreadedName(workload, threads), store);
    const Cell* base =
        Find(ThreadedName(kFsyncBaseline, threads), kBaselineStore);
    absl::StrAppendFormat(&line, " %9s %7s", CellText(c), RatioText(c, base));
    if (with_leveldb) {
      const Cell* leveldb =
          Find(ThreadedName(kReplaceRandomFsync, threads), "leveldb");
      absl::StrAppendFormat(&line, " %9s", RatioText(c, leveldb));
    }
  }
  return line;
}

}  // namespace bench
}  // namespace kvindex
