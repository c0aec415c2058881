#include "bench/driver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bench/flags.h"
#include "bench/latency_histogram.h"
#include "bench/measure.h"
#include "bench/report.h"
#include "bench/store.h"
#include "bench/workload_filter.h"
#include "bench/workloads.h"
#include "data/schema.h"
#include "nlohmann/json.hpp"

namespace kvindex {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

constexpr uint64_t kDefaultEntries = 10000000;
constexpr uint64_t kDefaultLogSize = 500000;
constexpr uint64_t kDefaultFsyncOps = 20000;
// --quick: every workload on every store in about a minute on a 2-core machine.
// The log size keeps the default run's entries/log_size ratio (20 merges).
constexpr uint64_t kQuickEntries = 800000;
constexpr uint64_t kQuickSyncEntries = 50000;
constexpr uint64_t kQuickFsyncOps = 1000;

// The sizes of the run: the flags, with the defaults of a full or a --quick run.
Plan MakePlan(const BenchFlags& flags) {
  Plan plan;
  plan.key_size = flags.key_size;
  plan.value_size = flags.value_size;
  plan.entries =
      flags.entries.value_or(flags.quick ? kQuickEntries : kDefaultEntries);
  uint64_t default_log =
      flags.quick ? std::max<uint64_t>(1, plan.entries / 20) : kDefaultLogSize;
  plan.log_size = flags.log_size.value_or(default_log);
  plan.sync_entries = std::min(
      plan.entries, flags.sync_entries.value_or(flags.quick ? kQuickSyncEntries
                                                            : plan.entries));
  plan.fsync_ops =
      flags.fsync_ops.value_or(flags.quick ? kQuickFsyncOps : kDefaultFsyncOps);
  plan.fsync_ops = std::min(plan.fsync_ops, plan.entries);
  plan.fsync_threads = flags.threads;
  return plan;
}

// A row of the report: a workload, or the fsync baseline, at a thread count.
struct Row {
  std::string name;  // ThreadedName(the workload's name, threads)
  const Workload* workload = nullptr;  // null: the fsync baseline
  uint32_t threads = 1;
};

// Every row, in the order they run: the workloads, replace_random_fsync once
// per thread count, each followed by the baseline of the same count (measured
// close in time: the disk's fsync rate drifts).
std::vector<Row> AllRows(const Plan& plan) {
  std::vector<Row> rows;
  for (const Workload& w : AllWorkloads()) {
    if (w.kind != Kind::kReplaceFsync) {
      rows.push_back(Row{w.name, &w, 1});
      continue;
    }
    for (const uint32_t threads : plan.fsync_threads) {
      rows.push_back(Row{ThreadedName(w.name, threads), &w, threads});
      rows.push_back(
          Row{ThreadedName(kFsyncBaseline, threads), nullptr, threads});
    }
  }
  return rows;
}

// What --list says of a row.
std::string RowDescription(const Row& row) {
  std::string text = row.workload != nullptr
                         ? row.workload->description
                         : "pwrite(2) + fdatasync per entry on a plain file "
                           "(with replace_random_fsync)";
  if (row.workload == nullptr || row.workload->kind == Kind::kReplaceFsync) {
    absl::StrAppend(&text, ", ", row.threads,
                    row.threads == 1 ? " thread" : " threads");
  }
  return text;
}

// The rows --filter selects, in the order of `all`: those whose name matches,
// the baseline of each thread count whose replace_random_fsync row matches,
// and replace_random first when a selected row reads its store
// (*replace_random_is_dependency then says so).
std::vector<Row> ChooseRows(const std::vector<Row>& all,
                            const WorkloadFilter& filter,
                            bool* replace_random_is_dependency) {
  std::vector<Row> chosen;
  bool need_replace_random = false;
  bool have_replace_random = false;
  for (const Row& row : all) {
    const bool selected =
        filter.Matches(row.name) ||
        (row.workload == nullptr &&
         filter.Matches(ThreadedName(kReplaceRandomFsync, row.threads)));
    if (!selected) continue;
    chosen.push_back(row);
    if (row.workload == nullptr) continue;
    need_replace_random |= row.workload->on_replace_random;
    have_replace_random |= row.name == kReplaceRandom;
  }
  *replace_random_is_dependency = need_replace_random && !have_replace_random;
  if (*replace_random_is_dependency) {
    const auto replace_random =
        std::find_if(all.begin(), all.end(),
                     [](const Row& row) { return row.name == kReplaceRandom; });
    chosen.insert(chosen.begin(), *replace_random);
  }
  return chosen;
}

// ---------------------------------------------------------------------------------
// One run, in a child process

using MetricList = std::vector<std::pair<std::string, double>>;

// The replace latency metrics of bench/README.md ("JSON").
void AppendLatency(const LatencyHistogram& latency_ns, MetricList& m) {
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  m.emplace_back("replace_latency_p50_ns", d(latency_ns.Quantile(1, 2)));
  m.emplace_back("replace_latency_p99_ns", d(latency_ns.Quantile(99, 100)));
  m.emplace_back("replace_latency_p999_ns", d(latency_ns.Quantile(999, 1000)));
  m.emplace_back("replace_latency_max_ns", d(latency_ns.max()));
}

struct ChildSpec {
  const Workload* workload = nullptr;  // null: the fsync baseline
  const NamedStore* store = nullptr;
  std::string dir;
  uint32_t threads = 1;  // of replace_random_fsync and the baseline
  bool settle = false;   // after the run: reopen, Settle(), close (untimed)
};

// The fsync baseline's run: no store, so only its timing.
absl::StatusOr<MetricList> RunBaselineChild(const ChildSpec& spec,
                                            const Pools& pools,
                                            const Plan& plan) {
  absl::StatusOr<Timed> timed =
      RunFsyncBaseline(spec.dir, pools, plan, spec.threads);
  if (!timed.ok()) return timed.status();
  MetricList m = {{"seconds", timed->seconds},
                  {"ops", static_cast<double>(plan.fsync_ops)},
                  {"cpu_s", timed->cpu_seconds},
                  {"threads", static_cast<double>(spec.threads)}};
  AppendLatency(timed->latency_ns, m);
  return m;
}

absl::StatusOr<MetricList> RunChild(const ChildSpec& spec, const Pools& pools,
                                    const Plan& plan,
                                    const StoreConfig& config) {
  if (spec.workload == nullptr) return RunBaselineChild(spec, pools, plan);
  const Workload& w = *spec.workload;
  bool hwm_reset = ResetPeakRss();
  const uint64_t rss_start = ProcStatusBytes("VmRSS");
  const uint64_t anon_start = ProcStatusBytes("RssAnon");
  AnonRssSampler anon_sampler;

  std::unique_ptr<Store> store = spec.store->factory(config);
  Clock::time_point open_start = Clock::now();
  absl::Status s = store->Open(spec.dir, w.mode);
  if (!s.ok()) return s;
  const double open_s = Seconds(Clock::now() - open_start);

  const ProcIo io0 = ReadProcIo();
  absl::StatusOr<Timed> timed = RunTimed(*store, w, pools, plan, spec.threads);
  if (!timed.ok()) return timed.status();

  // A non-durable store's Close only persists for the benchmark's sake (the
  // hash map's dump): keep it out of the I/O counts.
  ProcIo io1 = ReadProcIo();
  Clock::time_point close_start = Clock::now();
  s = store->Close();
  if (!s.ok()) return s;
  const double close_s = Seconds(Clock::now() - close_start);
  if (store->Durable()) io1 = ReadProcIo();
  const uint64_t hwm = ProcStatusBytes("VmHWM");
  const uint64_t anon_peak = anon_sampler.Stop();
  const uint64_t disk = DiskUsage(spec.dir);
  MetricList store_metrics = store->Metrics();

  double settle_s = 0;
  const bool settle = spec.settle && store->HasSettle();
  if (settle) {
    Clock::time_point settle_start = Clock::now();
    s = store->Open(spec.dir, OpenMode::kReadWrite);
    if (s.ok()) s = store->Settle();
    if (s.ok()) s = store->Close();
    if (!s.ok()) return s;
    settle_s = Seconds(Clock::now() - settle_start);
  }

  const double ops = static_cast<double>(OpsOf(w, plan));
  const double payload = ops * static_cast<double>(plan.entry_size());
  const double secs = std::max(timed->seconds, 1e-9);
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  MetricList m = {
      {"seconds", timed->seconds},
      {"ops", ops},
      {"ops_per_s", ops / secs},
      {"cpu_s", timed->cpu_seconds},
      {"mb_per_s", payload / (1 << 20) / secs},
      {"open_s", open_s},
      {"close_s", close_s},
      {"peak_rss_mib", d(hwm) / (1 << 20)},
      {"rss_start_mib", d(rss_start) / (1 << 20)},
      {"peak_rss_growth_mib",
       hwm_reset ? (d(hwm) - d(rss_start)) / (1 << 20) : -1.0},
      {"peak_anon_growth_mib",
       (d(std::max(anon_peak, anon_start)) - d(anon_start)) / (1 << 20)},
      {"disk_mib", d(disk) / (1 << 20)},
      {"sys_read_calls", d(io1.syscr - io0.syscr)},
      {"sys_read_bytes", d(io1.rchar - io0.rchar)},
      {"sys_write_calls", d(io1.syscw - io0.syscw)},
      {"sys_write_bytes", d(io1.wchar - io0.wchar)},
      {"device_read_bytes", d(io1.read_bytes - io0.read_bytes)},
      {"device_write_bytes",
       d(io1.write_bytes - io0.write_bytes) -
           d(io1.cancelled_write_bytes - io0.cancelled_write_bytes)},
  };
  if (w.kind == Kind::kIter) m.emplace_back("visited", d(timed->visited));
  if (w.kind == Kind::kReplaceFsync) m.emplace_back("threads", d(spec.threads));
  if (IsReplace(w)) AppendLatency(timed->latency_ns, m);
  if (settle) m.emplace_back("settle_s", settle_s);
  for (auto& kv : store_metrics) m.push_back(std::move(kv));
  return m;
}

// ---------------------------------------------------------------------------------
// Fork, collect

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Runs `spec` in a forked child; the child reports its metrics through a pipe.
RunResult Fork(const ChildSpec& spec, const Pools& pools, const Plan& plan,
               const StoreConfig& config) {
  RunResult result;
  int fds[2];
  if (pipe(fds) != 0) {
    result.error = absl::StrCat("pipe: ", std::strerror(errno));
    return result;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    result.error = absl::StrCat("fork: ", std::strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    absl::StatusOr<MetricList> m = RunChild(spec, pools, plan, config);
    std::string out;
    if (m.ok()) {
      out = "ok\n";
      for (const auto& kv : *m) {
        absl::StrAppend(&out, kv.first, " ",
                        absl::StrFormat("%.17g", kv.second), "\n");
      }
    } else {
      out = absl::StrCat("error ", m.status().ToString(), "\n");
    }
    bool written = WriteAll(fds[1], out);
    close(fds[1]);
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(m.ok() && written ? 0 : 1);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    result.error = absl::StrCat("child killed by signal ", WTERMSIG(status),
                                " (", strsignal(WTERMSIG(status)), ")");
    return result;
  }
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  if (lines.empty()) {
    result.error = absl::StrCat("child exited with status ",
                                WEXITSTATUS(status), " and no report");
    return result;
  }
  if (lines[0] != "ok") {
    result.error = absl::string_view(lines[0]).substr(0, 6) == "error "
                       ? lines[0].substr(6)
                       : lines[0];
    return result;
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> kv = absl::StrSplit(lines[i], ' ');
    double v = 0;
    if (kv.size() == 2 && absl::SimpleAtod(kv[1], &v)) {
      result.metrics[kv[0]] = v;
      result.order.push_back(kv[0]);
    }
  }
  result.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!result.ok) result.error = "child failed after reporting";
  return result;
}

// The progress line of a successful run, on stderr.
void PrintRunLine(const std::string& workload, const std::string& store,
                  const RunResult& r) {
  std::string extra;
  if (r.has("nb_merges")) {
    absl::StrAppendFormat(&extra, "  merges %.0f", r.get("nb_merges"));
  }
  if (r.has("replace_latency_max_ns")) {
    absl::StrAppend(&extra, "  p99.9 ",
                    HumanDuration(r.get("replace_latency_p999_ns")), " max ",
                    HumanDuration(r.get("replace_latency_max_ns")));
  }
  std::fprintf(stderr,
               "  %-24s %-14s %8.2f s (cpu %6.2f s) %10s ops/s %8.1f MB/s  mem "
               "+%.0f MiB (anon +%.0f)%s\n",
               workload.c_str(), store.c_str(), r.get("seconds"),
               r.get("cpu_s"), HumanRate(r.get("ops_per_s")).c_str(),
               r.get("mb_per_s"), r.get("peak_rss_growth_mib"),
               r.get("peak_anon_growth_mib"), extra.c_str());
}

// Derived metrics, computed once the child's raw counts are in.
void AddDerived(RunResult& r, const Plan& plan) {
  if (!r.ok) return;
  const double ops = std::max(1.0, r.get("ops"));
  const double payload = ops * static_cast<double>(plan.entry_size());
  auto add = [&](const std::string& name, double v) {
    if (r.metrics.emplace(name, v).second) r.order.push_back(name);
  };
  if (!r.has("ops_per_s")) {
    const double secs = std::max(1e-9, r.get("seconds"));
    add("ops_per_s", ops / secs);
    add("mb_per_s", payload / (1 << 20) / secs);
  }
  if (r.has("cpu_s")) add("cpu_us_per_op", r.get("cpu_s") / ops * 1e6);
  if (r.has("close_s")) {
    // Work a store defers to close (kvindex: the merge in flight; RocksDB: the
    // memtable flush) is not in ops_per_s; this one charges it.
    add("ops_per_s_with_close",
        ops / std::max(1e-9, r.get("seconds") + r.get("close_s")));
  }
  if (r.has("sys_read_calls")) {
    add("sys_read_calls_per_op", r.get("sys_read_calls") / ops);
    add("sys_read_amplification", r.get("sys_read_bytes") / payload);
    add("sys_write_calls_per_op", r.get("sys_write_calls") / ops);
    add("sys_write_amplification", r.get("sys_write_bytes") / payload);
    add("device_write_amplification",
        std::max(0.0, r.get("device_write_bytes")) / payload);
  }
  if (r.has("kv_nb_reads")) {
    // The OCaml benchmark's definitions, from the library's own Stats.
    add("read_amplification_calls", r.get("kv_nb_reads") / ops);
    add("read_amplification_size", r.get("kv_bytes_read") / payload);
    add("write_amplification_calls", r.get("kv_nb_writes") / ops);
    add("write_amplification_size", r.get("kv_bytes_written") / payload);
    // Stats keeps the last 10 merge durations only: the total over all merges
    // is estimated from their mean.
    const double recorded = r.get("merges_recorded");
    add("merges_total_s_estimate",
        recorded > 0
            ? r.get("merges_duration_us") / recorded * r.get("nb_merges") / 1e6
            : 0.0);
  }
}

// The "config" object of the JSON report.
nlohmann::ordered_json ConfigJson(const BenchFlags& flags, const Plan& plan,
                                  const std::vector<std::string>& stores,
                                  const std::vector<std::string>& workloads,
                                  const std::string& load_start,
                                  const std::string& load_end) {
  nlohmann::ordered_json config;
  config["key_size"] = plan.key_size;
  config["value_size"] = plan.value_size;
  config["nb_entries"] = plan.entries;
  config["log_size"] = plan.log_size;
  config["seed"] = flags.seed;
  config["repeat"] = flags.repeat;
  config["sync_entries"] = plan.sync_entries;
  config["fsync_ops"] = plan.fsync_ops;
  config["fsync_threads"] = plan.fsync_threads;
  config["batch"] = flags.batch;
  config["cache_mb"] = flags.cache_mb;
  config["key_hash"] = flags.key_hash;
  config["lru_size"] = flags.lru_size;
  config["layout"] = flags.layout;
  config["log_checksums"] = flags.log_checksums;
  config["settle"] = flags.settle;
  config["quick"] = flags.quick;
  config["filter"] = flags.filter;
  config["stores"] = stores;
  config["workloads"] = workloads;
  config["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  config["loadavg_start"] = load_start;
  config["loadavg_end"] = load_end;
  return config;
}

// Writes {"config": ..., "results": [...]} to `path`.
absl::Status WriteJsonReport(const std::string& path,
                             nlohmann::ordered_json config,
                             const Report& report) {
  nlohmann::ordered_json json;
  json["config"] = std::move(config);
  json["results"] = report.ResultsJson();
  std::ofstream out(path);
  // Invalid UTF-8 (in a --filter, say) is replaced rather than thrown on.
  out << json.dump(2, ' ', /*ensure_ascii=*/false,
                   nlohmann::ordered_json::error_handler_t::replace)
      << "\n";
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// The rows that run round by round together: a durable row and the baseline
// of its thread count right after it (so that both meet the disk in the same
// state, round after round); any other row alone.
std::vector<std::vector<Row>> RoundGroups(const std::vector<Row>& chosen) {
  std::vector<std::vector<Row>> groups;
  for (const Row& row : chosen) {
    const bool baseline_of_previous =
        row.workload == nullptr && !groups.empty() &&
        groups.back().size() == 1 && groups.back()[0].workload != nullptr &&
        groups.back()[0].workload->kind == Kind::kReplaceFsync &&
        groups.back()[0].threads == row.threads;
    if (baseline_of_previous) {
      groups.back().push_back(row);
    } else {
      groups.push_back({row});
    }
  }
  return groups;
}

// One cell of a round group: what each of its rounds runs.
struct Slot {
  const Row* row = nullptr;
  const NamedStore* store = nullptr;
  Cell* cell = nullptr;
  std::string dir;
};

// Runs `slot` once, as round `round` of `rounds`, into its cell. Returns
// whether the run succeeded.
bool RunSlot(const Slot& slot, uint64_t round, uint64_t rounds, bool settle,
             const Pools& pools, const Plan& plan, const StoreConfig& config) {
  ChildSpec spec;
  spec.workload = slot.row->workload;
  spec.store = slot.store;
  spec.dir = slot.dir;
  spec.threads = slot.row->threads;
  // The last round of replace_random settles the store the later workloads
  // read.
  spec.settle =
      settle && slot.row->name == kReplaceRandom && round + 1 == rounds;
  RunResult r = Fork(spec, pools, plan, config);
  AddDerived(r, plan);
  const bool ok = r.ok;
  if (!ok) {
    std::fprintf(stderr, "  %-24s %-14s FAILED: %s\n", slot.row->name.c_str(),
                 slot.store->name.c_str(), r.error.c_str());
  } else if (slot.row->workload == nullptr) {
    std::fprintf(stderr, "  %-24s %-14s %8.2f s %10s ops/s\n",
                 slot.row->name.c_str(), kBaselineStore, r.get("seconds"),
                 HumanRate(r.get("ops_per_s")).c_str());
  } else {
    PrintRunLine(slot.row->name, slot.store->name, r);
  }
  slot.cell->runs.push_back(std::move(r));
  return ok;
}

}  // namespace

int BenchMain(int argc, char** argv, const std::vector<NamedStore>& stores) {
  absl::StatusOr<BenchFlags> parsed = ParseBenchFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "index_bench: %s\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  const BenchFlags& flags = *parsed;
  if (flags.help) {
    std::printf("%s", BenchHelp().c_str());
    return 0;
  }
  const Plan plan = MakePlan(flags);
  const std::vector<Row> all_rows = AllRows(plan);
  if (flags.list) {
    for (const Row& row : all_rows) {
      std::printf("%-24s %s\n", row.name.c_str(), RowDescription(row).c_str());
    }
    return 0;
  }
  std::vector<const NamedStore*> selected;
  for (const std::string& name : flags.stores) {
    auto it = std::find_if(stores.begin(), stores.end(),
                           [&](const NamedStore& n) { return n.name == name; });
    if (it == stores.end()) {
      std::vector<std::string> known;
      for (const NamedStore& n : stores) known.push_back(n.name);
      std::fprintf(stderr, "index_bench: unknown store '%s' (known: %s)\n",
                   name.c_str(), absl::StrJoin(known, ",").c_str());
      return 2;
    }
    selected.push_back(&*it);
  }
  if (plan.entries == 0 || plan.entries > UINT32_MAX) {
    std::fprintf(stderr, "index_bench: --entries must be in 1..%u\n",
                 UINT32_MAX);
    return 2;
  }

  // Which rows run: the filter's matches, the baselines of the durable rows,
  // and replace_random when a row needs its store.
  const absl::StatusOr<WorkloadFilter> filter =
      WorkloadFilter::Compile(flags.filter);
  if (!filter.ok()) {
    std::fprintf(stderr, "index_bench: --filter: %s\n",
                 std::string(filter.status().message()).c_str());
    return 2;
  }
  bool replace_random_is_dependency = false;
  const std::vector<Row> chosen =
      ChooseRows(all_rows, *filter, &replace_random_is_dependency);
  if (chosen.empty()) {
    std::fprintf(stderr, "index_bench: --filter '%s' matches no workload\n",
                 flags.filter.c_str());
    return 2;
  }

  // The data directory.
  bool temporary = flags.data_dir.empty();
  std::string data_dir = flags.data_dir;
  if (temporary) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    if (tmp == nullptr || *tmp == '\0') tmp = std::getenv("TMPDIR");
    if (tmp == nullptr || *tmp == '\0') tmp = "/tmp";
    std::string pattern = absl::StrCat(tmp, "/index_bench.XXXXXX");
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      std::fprintf(stderr, "index_bench: mkdtemp %s: %s\n", pattern.c_str(),
                   std::strerror(errno));
      return 1;
    }
    data_dir = buf.data();
  } else {
    const absl::Status s = MakeDirectories(data_dir);
    if (!s.ok()) {
      std::fprintf(stderr, "index_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }

  StoreConfig config;
  config.key_size = plan.key_size;
  config.value_size = plan.value_size;
  config.entries = plan.entries;
  config.log_size = plan.log_size;
  config.key_hash = flags.key_hash;
  config.lru_size = flags.lru_size;
  config.layout = flags.layout;
  config.log_checksums = flags.log_checksums;
  config.batch = flags.batch;
  config.cache_mb = flags.cache_mb;

  bool need_absent = false, need_sorted = false;
  bool need_replace_random = false;
  for (const Row& row : chosen) {
    const Workload* w = row.workload;
    if (w == nullptr) continue;
    need_replace_random |= w->on_replace_random;
    need_absent |= w->kind == Kind::kFindAbsent;
    need_sorted |= w->order == Order::kByKey || w->order == Order::kByHashUp ||
                   w->order == Order::kByHashDown;
  }
  const std::string load_start = LoadAverage();
  Clock::time_point all_start = Clock::now();
  std::fprintf(
      stderr,
      "index_bench: %llu entries (key %zu B, value %zu B), data in %s; "
      "generating keys...\n",
      static_cast<unsigned long long>(plan.entries), plan.key_size,
      plan.value_size, data_dir.c_str());
  const Pools pools(plan, flags.seed,
                    flags.key_hash == "xxh3" ? &Xxh3KeyHash64 : &OcamlKeyHash,
                    need_absent, need_sorted);

  std::vector<std::string> store_names;
  for (const NamedStore* n : selected) store_names.push_back(n->name);
  Report report(plan, flags.seed, flags.repeat, flags.layout, store_names);
  std::vector<std::string> workload_names;
  bool all_ok = true;

  // Every cell of a round group runs once per round, so that a drift of the
  // machine's speed between rounds hits every cell of the group alike.
  const NamedStore baseline{kBaselineStore, nullptr};
  for (const Row& row : chosen) workload_names.push_back(row.name);
  for (const std::vector<Row>& group : RoundGroups(chosen)) {
    std::vector<Slot> slots;
    for (const Row& row : group) {
      if (row.workload == nullptr) {
        Slot slot;
        slot.row = &row;
        slot.store = &baseline;
        slot.cell = &report.Add(row.name, kBaselineStore);
        slot.dir = absl::StrCat(data_dir, "/", kBaselineStore);
        slots.push_back(std::move(slot));
        continue;
      }
      const Workload* w = row.workload;
      const bool is_replace_random = row.name == kReplaceRandom;
      for (const NamedStore* store : selected) {
        Cell& cell = report.Add(row.name, store->name);
        cell.dependency = is_replace_random && replace_random_is_dependency;
        if (w->kind == Kind::kReplaceFsync &&
            !store->factory(config)->Durable()) {
          cell.skipped = "not durable: no fsync to measure";
          continue;
        }
        Slot slot;
        slot.row = &row;
        slot.store = store;
        slot.cell = &cell;
        slot.dir =
            absl::StrCat(data_dir, "/", store->name, "/",
                         w->on_replace_random ? kReplaceRandom : row.name);
        slots.push_back(std::move(slot));
      }
    }
    for (uint64_t round = 0; round < flags.repeat; ++round) {
      for (const Slot& slot : slots) {
        if (!RunSlot(slot, round, flags.repeat,
                     flags.settle && need_replace_random, pools, plan,
                     config)) {
          all_ok = false;
        }
      }
    }
    for (const Slot& slot : slots) {
      PickMedian(*slot.cell);
      // Fresh stores that nothing else reads: free the space now when the
      // directory is ours.
      const Workload* w = slot.row->workload;
      if (temporary && w != nullptr && !w->on_replace_random &&
          slot.row->name != kReplaceRandom) {
        std::error_code ec;
        std::filesystem::remove_all(slot.dir, ec);
      }
    }
  }
  const double total_s = Seconds(Clock::now() - all_start);
  const std::string load_end = LoadAverage();

  std::vector<std::string> table_rows;
  for (const Row& row : chosen) {
    if (row.workload != nullptr) table_rows.push_back(row.name);
  }
  report.PrintTables(table_rows, load_start, load_end, total_s);
  if (!flags.json.empty()) {
    const absl::Status written =
        WriteJsonReport(flags.json,
                        ConfigJson(flags, plan, store_names, workload_names,
                                   load_start, load_end),
                        report);
    if (!written.ok()) {
      std::fprintf(stderr, "index_bench: %s\n",
                   std::string(written.message()).c_str());
      all_ok = false;
    }
  }
  if (temporary) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  }
  return all_ok ? 0 : 1;
}

}  // namespace bench
}  // namespace kvindex
