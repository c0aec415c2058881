// Runs index_bench with tiny parameters and checks its JSON report: every
// workload on every store ran, with positive ops/s and the expected number of
// operations, and the replace workloads with their latency percentiles; the
// durable replaces at every thread count, next to the fsync baseline; each
// kvindex store is in its layout; filters pull in their dependency; bad flags
// are refused.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kvindex {
namespace bench {
namespace {

using Json = nlohmann::json;

std::string BenchPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/",
                      workspace ? workspace : "kvindex", "/bench/index_bench");
}

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

// Which code ThreadSanitizer judges in an index_bench run.
enum class Sanitized {
  kAll,
  // Only peers run. They are libraries built without ThreadSanitizer: it sees
  // their threads' memory accesses (through the C++ library) but not the
  // synchronisation that orders them, and reports races that are not there.
  kNoneOnlyPeersRun,
};

// Runs index_bench with `args`; its stdout and stderr go to `log`. Returns the
// exit status (or -1 when it did not exit normally).
int RunBench(const std::vector<std::string>& args, const std::string& log,
             Sanitized sanitized = Sanitized::kAll) {
  pid_t pid = fork();
  if (pid == 0) {
    if (sanitized == Sanitized::kNoneOnlyPeersRun) {
      const char* options = std::getenv("TSAN_OPTIONS");
      const std::string quiet = absl::StrCat(
          options ? options : "", options ? ":" : "", "report_bugs=0");
      setenv("TSAN_OPTIONS", quiet.c_str(), /*overwrite=*/1);
    }
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::string path = BenchPath();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json LoadJson(const std::string& path) {
  const std::string text = ReadFile(path);
  Json j = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << ": not JSON:\n" << text;
  return j;
}

const std::vector<std::string>& AllWorkloads() {
  static const auto* const kAll = new std::vector<std::string>{
      "replace_random",          "replace_random_sync",
      "replace_increasing_keys", "replace_increasing_hash",
      "replace_decreasing_hash", "iter_rw",
      "find_random_ro",          "find_random_rw",
      "find_absent_ro",          "find_absent_rw",
      "replace_random_fsync",    "replace_random_fsync_t4",
      "replace_random_fsync_t16"};
  return *kAll;
}

// The default --threads, and the rows they make.
const std::vector<int>& DefaultThreads() {
  static const auto* const kThreads = new std::vector<int>{1, 4, 16};
  return *kThreads;
}

// The row of `workload` at `threads` threads.
std::string Threaded(const std::string& workload, int threads) {
  return threads == 1 ? workload : absl::StrCat(workload, "_t", threads);
}

bool IsDurableReplace(const std::string& workload) {
  return workload.rfind("replace_random_fsync", 0) == 0;
}

// (workload, store) -> result object.
std::map<std::pair<std::string, std::string>, const Json*> Index(
    const Json& report) {
  std::map<std::pair<std::string, std::string>, const Json*> out;
  for (const Json& r : report.at("results")) {
    out[{r.at("name").get<std::string>(), r.at("store").get<std::string>()}] =
        &r;
  }
  return out;
}

// A number of a JSON object (a missing key throws, which fails the test).
double Number(const Json& object, const std::string& key) {
  return object.at(key).get<double>();
}

constexpr int kEntries = 1000;
constexpr int kSyncEntries = 300;
// Not a multiple of 4 or 16: the threads' uneven shares must add up.
constexpr int kFsyncOps = 18;

// Flags as the documentation spells them, and in the other accepted forms
// (underscores, the OCaml name of --entries); CheckAllWorkloads checks that the
// report's config has their values.
std::vector<std::string> TinyArgs(const std::string& stores,
                                  const std::string& json) {
  return {"--nb-entries",
          absl::StrCat(kEntries),
          "--log_size=200",
          "--sync-entries",
          absl::StrCat(kSyncEntries),
          absl::StrCat("--fsync-ops=", kFsyncOps),
          "--batch",
          "100",
          "--cache_mb",
          "8",
          absl::StrCat("--stores=", stores),
          "--json",
          json};
}

// Every operation of a replace workload was timed: the percentiles are in
// order, and an operation takes some time.
void CheckLatencies(const Json& metrics) {
  const double p50 = Number(metrics, "replace_latency_p50_ns");
  const double p99 = Number(metrics, "replace_latency_p99_ns");
  const double p999 = Number(metrics, "replace_latency_p999_ns");
  const double max = Number(metrics, "replace_latency_max_ns");
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, p999);
  EXPECT_LE(p999, max);
  // No operation took longer than the whole timed loop.
  EXPECT_LE(max, Number(metrics, "seconds") * 1e9);
}

// The fsync baseline ran once per default thread count, each time
// --fsync-ops operations, all timed.
void CheckBaselines(
    const std::map<std::pair<std::string, std::string>, const Json*>& results) {
  for (const int threads : DefaultThreads()) {
    const std::string name = Threaded("fsync_baseline", threads);
    SCOPED_TRACE(name);
    auto base = results.find({name, "posix_file"});
    ASSERT_NE(base, results.end());
    ASSERT_TRUE(base->second->contains("metrics")) << *base->second;
    const Json& m = base->second->at("metrics");
    EXPECT_GT(Number(m, "ops_per_s"), 0);
    EXPECT_EQ(Number(m, "ops"), kFsyncOps);
    EXPECT_EQ(Number(m, "threads"), threads);
    CheckLatencies(m);
  }
}

void CheckAllWorkloads(const Json& report,
                       const std::vector<std::string>& stores) {
  auto results = Index(report);
  const Json& config = report.at("config");
  EXPECT_EQ(Number(config, "nb_entries"), kEntries);
  EXPECT_EQ(Number(config, "log_size"), 200);
  EXPECT_EQ(Number(config, "sync_entries"), kSyncEntries);
  EXPECT_EQ(Number(config, "fsync_ops"), kFsyncOps);
  EXPECT_EQ(config.at("fsync_threads"), Json(DefaultThreads()));
  EXPECT_EQ(Number(config, "batch"), 100);
  EXPECT_EQ(Number(config, "cache_mb"), 8);
  EXPECT_EQ(config.at("layout"), "single_file");
  EXPECT_EQ(config.at("stores"), Json(stores));
  for (const std::string& w : AllWorkloads()) {
    for (const std::string& s : stores) {
      SCOPED_TRACE(absl::StrCat(w, " on ", s));
      auto it = results.find({w, s});
      ASSERT_NE(it, results.end());
      const Json& r = *it->second;
      if (IsDurableReplace(w) && s == "hashmap") {
        EXPECT_EQ(r.at("skipped"), "not durable: no fsync to measure");
        EXPECT_FALSE(r.contains("metrics"));
        continue;
      }
      ASSERT_FALSE(r.contains("error")) << r.at("error");
      ASSERT_TRUE(r.contains("metrics"));
      const Json& m = r.at("metrics");
      EXPECT_GT(Number(m, "ops_per_s"), 0);
      EXPECT_GT(Number(m, "seconds"), 0);
      double ops = w == "replace_random_sync" ? kSyncEntries
                   : IsDurableReplace(w)      ? kFsyncOps
                                              : kEntries;
      EXPECT_EQ(Number(m, "ops"), ops);
      EXPECT_GE(Number(m, "peak_rss_mib"), Number(m, "rss_start_mib"));
      EXPECT_GE(Number(m, "cpu_s"), 0);
      EXPECT_GE(Number(m, "peak_anon_growth_mib"), 0);
      EXPECT_TRUE(m.contains("cpu_us_per_op"));
      EXPECT_LE(Number(m, "ops_per_s_with_close"), Number(m, "ops_per_s"));
      EXPECT_GT(Number(m, "ops_per_s_with_close"), 0);
      if (w == "iter_rw") {
        EXPECT_GE(Number(m, "visited"), kEntries);
      }
      if (w.rfind("replace", 0) == 0) {
        EXPECT_GT(Number(m, "disk_mib"), 0);
        CheckLatencies(m);
      } else {
        EXPECT_FALSE(m.contains("replace_latency_max_ns"));
      }
      if (IsDurableReplace(w)) {
        const int threads = w == "replace_random_fsync"      ? 1
                            : w == "replace_random_fsync_t4" ? 4
                                                             : 16;
        EXPECT_EQ(Number(m, "threads"), threads);
      }
      EXPECT_FALSE(r.at("dependency").get<bool>());
      EXPECT_EQ(r.at("runs_ops_per_s").size(), 1u);
    }
  }
  CheckBaselines(results);
}

// The durable replaces' table of index_bench's output `log`: from its title to
// the end.
std::string DurableTable(const std::string& log) {
  const size_t start = log.find("\nDurable replaces per second");
  EXPECT_NE(start, std::string::npos) << log;
  return start == std::string::npos ? "" : log.substr(start);
}

// The line of `table` that starts with `label`, or "" when there is none.
std::string LineStartingWith(const std::string& table,
                             const std::string& label) {
  const size_t start = table.find(absl::StrCat("\n", label));
  if (start == std::string::npos) return "";
  return table.substr(start + 1, table.find('\n', start + 1) - start - 1);
}

// How many times `text` occurs in `line`.
int Occurrences(const std::string& line, const std::string& text) {
  int n = 0;
  for (size_t at = line.find(text); at != std::string::npos;
       at = line.find(text, at + 1)) {
    ++n;
  }
  return n;
}

TEST(IndexBench, EveryWorkloadOnKvIndexAndHashMap) {
  std::string json = TmpDir() + "/kv.json";
  std::string log = TmpDir() + "/kv.log";
  ASSERT_EQ(RunBench(TinyArgs("hashmap,kvindex,kvindex_tiered", json), log), 0)
      << ReadFile(log);
  Json report = LoadJson(json);
  CheckAllWorkloads(report, {"hashmap", "kvindex", "kvindex_tiered"});
  EXPECT_TRUE(report.at("config").at("settle").get<bool>());
  auto results = Index(report);
  // 1000 entries through a log of 200: the library merged.
  const Json& m = results[{"replace_random", "kvindex"}]->at("metrics");
  EXPECT_GE(Number(m, "nb_merges"), 1);
  // The first merge has nothing to copy runs from; some later one does.
  EXPECT_GE(Number(m, "nb_merges_copied_runs"), 1);
  EXPECT_LT(Number(m, "nb_merges_copied_runs"), Number(m, "nb_merges"));
  EXPECT_GT(Number(m, "write_amplification_size"), 1);
  // The table names every workload and the ratio column.
  std::string table = ReadFile(log);
  for (const std::string& w : AllWorkloads()) {
    EXPECT_NE(table.find(w), std::string::npos) << w;
  }
  EXPECT_NE(table.find("hashmap/kv"), std::string::npos);
  EXPECT_NE(table.find("kvindex_tiered/kv"), std::string::npos);
  EXPECT_NE(table.find("kvindex layout single_file"), std::string::npos);
  // The replaces' table, with a row per store.
  EXPECT_NE(table.find("p99.9"), std::string::npos);
  for (const char* store : {"hashmap", "kvindex", "kvindex_tiered"}) {
    EXPECT_NE(table.find(absl::StrCat("\nreplace_random           ", store)),
              std::string::npos)
        << store;
  }
  // The durable replaces' table: a column group per thread count, the
  // baseline's row and each store's; no LevelDB column without LevelDB.
  const std::string durable = DurableTable(table);
  for (const char* text :
       {"1 thread", "4 threads", "16 threads", "x base", "\nposix_file ",
        "\nkvindex ", "\nkvindex_tiered ",
        "\nhashmap        not durable: no fsync to measure"}) {
    EXPECT_NE(durable.find(text), std::string::npos) << text << " in\n"
                                                     << durable;
  }
  EXPECT_EQ(durable.find("x leveldb"), std::string::npos) << durable;
}

// Whether the kvindex store a workload left in `dir` is tiered: only a tiered
// store has a manifest (docs/format.md).
bool IsTiered(const std::string& dir) {
  return std::filesystem::exists(dir + "/index/manifest");
}

TEST(IndexBench, EachKvIndexStoreInItsLayout) {
  const std::string data = TmpDir() + "/layouts";
  std::string log = TmpDir() + "/layouts.log";
  std::string json = TmpDir() + "/layouts.json";
  std::vector<std::string> args = TinyArgs("kvindex,kvindex_tiered", json);
  args.push_back("--filter=replace_random$");
  args.push_back("--data-dir=" + data);
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  EXPECT_FALSE(IsTiered(data + "/kvindex/replace_random"));
  EXPECT_TRUE(IsTiered(data + "/kvindex_tiered/replace_random"));
  const Json report = LoadJson(json);
  auto results = Index(report);
  for (const char* store : {"kvindex", "kvindex_tiered"}) {
    const Json& m = results[{"replace_random", store}]->at("metrics");
    EXPECT_GE(Number(m, "nb_merges"), 1) << store;
  }

  // --layout=tiered makes the kvindex store tiered too.
  args.push_back("--layout=tiered");
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  EXPECT_TRUE(IsTiered(data + "/kvindex/replace_random"));
  EXPECT_EQ(LoadJson(json).at("config").at("layout"), "tiered");
  EXPECT_NE(ReadFile(log).find("kvindex layout tiered"), std::string::npos);
}

TEST(IndexBench, EveryWorkloadOnThePeers) {
  std::string json = TmpDir() + "/peers.json";
  std::string log = TmpDir() + "/peers.log";
  ASSERT_EQ(RunBench(TinyArgs("lmdb,leveldb,rocksdb", json), log,
                     Sanitized::kNoneOnlyPeersRun),
            0)
      << ReadFile(log);
  CheckAllWorkloads(LoadJson(json), {"lmdb", "leveldb", "rocksdb"});
  // With LevelDB, each thread count has a ratio to it: LevelDB's own row
  // is 1.00x there, at each of the three counts.
  const std::string durable = DurableTable(ReadFile(log));
  EXPECT_NE(durable.find("x leveldb"), std::string::npos) << durable;
  for (const char* store : {"posix_file", "lmdb", "rocksdb"}) {
    EXPECT_NE(LineStartingWith(durable, absl::StrCat(store, " ")), "")
        << store << " in\n"
        << durable;
  }
  EXPECT_GE(Occurrences(LineStartingWith(durable, "leveldb "), "1.00x"), 3)
      << durable;
}

// A result's (workload, store).
std::pair<std::string, std::string> Cell(const Json& result) {
  return {result.at("name").get<std::string>(),
          result.at("store").get<std::string>()};
}

TEST(IndexBench, ThreadsNameTheDurableRowsAndFilterSelectsThem) {
  const std::string json = TmpDir() + "/threads.json";
  const std::string log = TmpDir() + "/threads.log";
  std::vector<std::string> args = TinyArgs("kvindex,hashmap", json);
  args.push_back("--threads=2,1");
  // Starts only the 2-thread row's name; its baseline comes with it.
  args.push_back("--filter=replace_random_fsync_t2");
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  Json report = LoadJson(json);
  EXPECT_EQ(report.at("config").at("fsync_threads"), Json({2, 1}));
  std::set<std::pair<std::string, std::string>> cells;
  for (const Json& r : report.at("results")) cells.insert(Cell(r));
  EXPECT_EQ(cells, (std::set<std::pair<std::string, std::string>>{
                       {"replace_random_fsync_t2", "kvindex"},
                       {"replace_random_fsync_t2", "hashmap"},
                       {"fsync_baseline_t2", "posix_file"}}));
  auto results = Index(report);
  const Json& m =
      results[{"replace_random_fsync_t2", "kvindex"}]->at("metrics");
  EXPECT_EQ(Number(m, "ops"), kFsyncOps);
  EXPECT_EQ(Number(m, "threads"), 2);
  CheckLatencies(m);
  const Json& skipped = *results[{"replace_random_fsync_t2", "hashmap"}];
  EXPECT_TRUE(skipped.contains("skipped")) << skipped;

  // "$" leaves the threaded rows out: one thread keeps the plain names.
  args.back() = "--filter=replace_random_fsync$";
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  cells.clear();
  report = LoadJson(json);
  for (const Json& r : report.at("results")) cells.insert(Cell(r));
  EXPECT_EQ(cells, (std::set<std::pair<std::string, std::string>>{
                       {"replace_random_fsync", "kvindex"},
                       {"replace_random_fsync", "hashmap"},
                       {"fsync_baseline", "posix_file"}}));
}

TEST(IndexBench, FilterAddsReplaceRandomAsDependency) {
  std::string json = TmpDir() + "/filter.json";
  std::string log = TmpDir() + "/filter.log";
  std::vector<std::string> args = TinyArgs("kvindex,lmdb", json);
  // POSIX extended syntax, matched from the start of the name.
  args.push_back("--filter=find_(random|nothing)_ro");
  args.push_back("--repeat=3");
  args.push_back("--no-settle");
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  Json report = LoadJson(json);
  EXPECT_EQ(report.at("config").at("filter"), "find_(random|nothing)_ro");
  EXPECT_EQ(Number(report.at("config"), "repeat"), 3);
  EXPECT_FALSE(report.at("config").at("settle").get<bool>());
  std::set<std::string> names;
  for (const Json& r : report.at("results")) {
    const std::string name = r.at("name");
    names.insert(name);
    if (name == "replace_random") {
      EXPECT_TRUE(r.at("dependency").get<bool>());
    } else {
      EXPECT_FALSE(r.at("dependency").get<bool>());
      ASSERT_EQ(r.at("runs_ops_per_s").size(), 3u);
      // The reported run is the median of the three.
      std::vector<double> runs = r.at("runs_ops_per_s");
      std::sort(runs.begin(), runs.end());
      EXPECT_EQ(Number(r.at("metrics"), "ops_per_s"), runs[1]);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"replace_random", "find_random_ro"}));
}

// The (workload, store) of each run line in an index_bench log, in the order
// the runs happened.
std::vector<std::pair<std::string, std::string>> RunsInOrder(
    const std::string& log) {
  std::vector<std::pair<std::string, std::string>> runs;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string workload, store, seconds;
    // A run line: two spaces, the workload, the store, then its seconds
    // ("0.12 s") or FAILED.
    if (line.rfind("  ", 0) != 0 || !(words >> workload >> store >> seconds)) {
      continue;
    }
    const bool is_workload =
        workload.rfind("fsync_baseline", 0) == 0 ||
        std::find(AllWorkloads().begin(), AllWorkloads().end(), workload) !=
            AllWorkloads().end();
    if (is_workload) runs.emplace_back(workload, store);
  }
  return runs;
}

TEST(IndexBench, RoundsRunEveryStoreOfAWorkloadInTurn) {
  const std::string json = TmpDir() + "/rounds.json";
  const std::string log = TmpDir() + "/rounds.log";
  std::vector<std::string> args = TinyArgs("kvindex,kvindex_tiered", json);
  args.push_back("--threads=1");
  args.push_back("--filter=find_random_ro|replace_random_fsync");
  args.push_back("--repeat=2");
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  using Run = std::pair<std::string, std::string>;
  const std::vector<Run> expected = {
      // replace_random, which find_random_ro reads, then find_random_ro:
      // round by round, each store once per round.
      {"replace_random", "kvindex"},
      {"replace_random", "kvindex_tiered"},
      {"replace_random", "kvindex"},
      {"replace_random", "kvindex_tiered"},
      {"find_random_ro", "kvindex"},
      {"find_random_ro", "kvindex_tiered"},
      {"find_random_ro", "kvindex"},
      {"find_random_ro", "kvindex_tiered"},
      // The durable row's rounds take its baseline along.
      {"replace_random_fsync", "kvindex"},
      {"replace_random_fsync", "kvindex_tiered"},
      {"fsync_baseline", "posix_file"},
      {"replace_random_fsync", "kvindex"},
      {"replace_random_fsync", "kvindex_tiered"},
      {"fsync_baseline", "posix_file"},
  };
  EXPECT_EQ(RunsInOrder(ReadFile(log)), expected) << ReadFile(log);
  // Every cell kept both rounds' rates, in round order.
  Json report = LoadJson(json);
  for (const Json& r : report.at("results")) {
    EXPECT_EQ(r.at("runs_ops_per_s").size(), 2u) << r.at("name");
  }
}

TEST(IndexBench, HelpListsTheFlags) {
  std::string log = TmpDir() + "/help.log";
  ASSERT_EQ(RunBench({"--help"}, log), 0);
  const std::string help = ReadFile(log);
  for (const char* flag :
       {"--quick",     "--entries",    "--log-size", "--seed",
        "--key-size",  "--value-size", "--filter",   "--repeat",
        "--json",      "--data-dir",   "--stores",   "--sync-entries",
        "--fsync-ops", "--batch",      "--cache-mb", "--key-hash",
        "--lru-size",  "--layout",     "--settle",   "--list",
        "--threads"}) {
    EXPECT_NE(help.find(absl::StrCat("\n  ", flag)), std::string::npos)
        << flag << " in\n"
        << help;
  }
  EXPECT_NE(help.find("--batch (default: 10000)"), std::string::npos) << help;
}

TEST(IndexBench, RefusesBadFlags) {
  std::string log = TmpDir() + "/bad.log";
  EXPECT_EQ(RunBench({"--no-such-flag"}, log), 2);
  EXPECT_NE(ReadFile(log).find(
                "index_bench: unknown flag --no-such-flag (see --help)"),
            std::string::npos)
      << ReadFile(log);
  EXPECT_EQ(RunBench({"--quick", "extra"}, log), 2);
  EXPECT_NE(ReadFile(log).find("unexpected argument 'extra'"),
            std::string::npos);
  EXPECT_EQ(RunBench({"--stores=kvindex,nosuchdb"}, log), 2);
  EXPECT_NE(ReadFile(log).find("unknown store 'nosuchdb'"), std::string::npos);
  EXPECT_EQ(RunBench({"--entries", "many"}, log), 2);
  EXPECT_NE(ReadFile(log).find("invalid value 'many' for --entries"),
            std::string::npos)
      << ReadFile(log);
  EXPECT_EQ(RunBench({"--layout=log_structured"}, log), 2);
  EXPECT_NE(ReadFile(log).find("--layout: expected single_file or tiered"),
            std::string::npos);
  EXPECT_EQ(RunBench({"--threads=0"}, log), 2);
  EXPECT_NE(ReadFile(log).find("--threads: expected thread counts in 1..1024 "
                               "separated by commas, got '0'"),
            std::string::npos)
      << ReadFile(log);
  EXPECT_EQ(RunBench({"--entries=0"}, log), 2);
  EXPECT_NE(ReadFile(log).find("--entries must be in 1.."), std::string::npos);
  EXPECT_EQ(RunBench({"--filter", "nothing_matches"}, log), 2);
  EXPECT_NE(ReadFile(log).find("matches no workload"), std::string::npos);
  EXPECT_EQ(RunBench({"--filter", "(find"}, log), 2);
  EXPECT_NE(ReadFile(log).find("bad regular expression '(find'"),
            std::string::npos);
}

TEST(IndexBench, FilterMatchesFromTheStartOfTheName) {
  std::string log = TmpDir() + "/start.log";
  // Several names hold "random", none starts with it.
  EXPECT_EQ(RunBench({"--filter", "random"}, log), 2);
  EXPECT_NE(ReadFile(log).find("matches no workload"), std::string::npos);
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
