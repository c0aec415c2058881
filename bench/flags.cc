#include "bench/flags.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "cli/flags.h"

// Help texts are printed as they are, one flag per block: a line break keeps
// them within 80 columns. The optional counts are 32-bit (the benchmark's keys
// are numbered in 32 bits): a flag of more than 8 bytes is read under a
// sequence lock, whose fence GCC 12 refuses to build under ThreadSanitizer.
ABSL_FLAG(bool, quick, false,
          "about a minute: 800k entries, log size 40k, fewer sync ops");
ABSL_FLAG(absl::optional<uint32_t>, entries, absl::nullopt,
          "bindings per workload (default 10000000; 800000 with --quick)");
ABSL_FLAG(absl::optional<uint32_t>, log_size, absl::nullopt,
          "kvindex log entries before a merge (default 500000; --entries / 20 "
          "with\n--quick)");
ABSL_FLAG(uint64_t, seed, 0, "key generation seed");
ABSL_FLAG(uint64_t, key_size, 32, "key bytes");
ABSL_FLAG(uint64_t, value_size, 13, "value bytes");
ABSL_FLAG(std::string, filter, "",
          "the workloads whose name matches this POSIX extended regular "
          "expression\nfrom its start, and those whose store they read "
          "(default: all)");
ABSL_FLAG(uint64_t, repeat, 1,
          "rounds: runs per (store, workload), each round running every "
          "store of a\nworkload once (a durable workload and its baseline "
          "together); the run with\nthe median ops/s is reported, ratios are "
          "the median of each round's");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");
ABSL_FLAG(std::string, data_dir, "",
          "where stores live (default: a fresh temporary directory, removed "
          "at the\nend; a given directory is kept)");
ABSL_FLAG(std::vector<std::string>, stores,
          std::vector<std::string>({"kvindex", "kvindex_tiered", "lmdb",
                                    "leveldb", "rocksdb", "hashmap"}),
          "the stores to run, comma-separated, in this order (kvindex: in "
          "the\n--layout; kvindex_tiered: always tiered)");
ABSL_FLAG(absl::optional<uint32_t>, sync_entries, absl::nullopt,
          "replace_random_sync operations (default: --entries; 50000 with "
          "--quick)");
ABSL_FLAG(absl::optional<uint32_t>, fsync_ops, absl::nullopt,
          "replace_random_fsync and fsync_baseline operations (default "
          "20000; 1000\nwith --quick)");
ABSL_FLAG(std::vector<std::string>, threads,
          std::vector<std::string>({"1", "4", "16"}),
          "thread counts of replace_random_fsync and fsync_baseline, "
          "comma-separated:\na row each (replace_random_fsync_t4, ...; with 1 "
          "thread the plain name),\n--fsync-ops split across the threads, "
          "which share one store or file");
ABSL_FLAG(uint64_t, batch, 10000,
          "LMDB/LevelDB/RocksDB puts per transaction/WriteBatch");
ABSL_FLAG(uint64_t, cache_mb, 256, "LevelDB/RocksDB block cache, in MiB");
ABSL_FLAG(std::string, key_hash, "ocaml",
          "kvindex key hash: ocaml (the OCaml library's) or xxh3");
ABSL_FLAG(uint64_t, lru_size, 30000, "kvindex LRU entries");
ABSL_FLAG(std::string, layout, "single_file",
          "the layout of the kvindex store: single_file (one data file, the "
          "OCaml\nformat) or tiered (runs merged as a binary counter)");
ABSL_FLAG(bool, log_checksums, false,
          "kvindex stores keep a checksum sidecar beside each log "
          "(Options::log_checksums)");
ABSL_FLAG(bool, settle, true,
          "the untimed full compaction of the LSM stores after "
          "replace_random\n(--settle=false or --no-settle skips it)");
ABSL_FLAG(bool, list, false, "list the workloads and exit");
ABSL_FLAG(bool, help, false, "show this help and exit");

namespace kvindex {
namespace bench {
namespace {

constexpr char kAbout[] =
    R"(index_bench: this library against LMDB, LevelDB, RocksDB and a hash map,
on the workloads of the OCaml index benchmark. See bench/README.md.

Flags take their value as --name=VALUE or --name VALUE, booleans --name or
--name=false; dashes and underscores are alike in names. --nb-entries and
--nb-exec are the OCaml benchmark's names of --entries and --repeat, and
--no-settle is --settle=false.

)";

// A flag as the command line gives it: the flag's name (dashes turned into
// underscores, the OCaml names and --no-settle resolved) and the value after
// '=', if any.
struct Given {
  std::string name;
  absl::optional<std::string> value;  // after '=', if any
};

Given Spelled(absl::string_view arg) {
  Given given;
  const size_t eq = arg.find('=');
  given.name = std::string(arg.substr(0, eq));
  if (eq != absl::string_view::npos) {
    given.value = std::string(arg.substr(eq + 1));
  }
  std::replace(given.name.begin(), given.name.end(), '-', '_');
  if (given.name == "nb_entries") given.name = "entries";
  if (given.name == "nb_exec") given.name = "repeat";
  if (given.name == "no_settle") {
    given.name = "settle";
    given.value = "false";
  }
  return given;
}

// Sets the flags one by one through their reflection handles (cli/flags.h)
// rather than with absl::ParseCommandLine, which exits with status 1 on a bad
// flag and after --help: index_bench exits with 2 on a bad command line, 0
// after --help.
absl::Status SetFlags(int argc, char** argv) {
  const std::vector<absl::CommandLineFlag*> flags =
      cli::FlagsDefinedIn(__FILE__);
  cli::ResetToDefaults(flags);
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--") || arg.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", args[i], "'"));
    }
    const std::string option = absl::StrCat("--", arg.substr(0, arg.find('=')));
    const Given given = Spelled(arg);
    absl::CommandLineFlag* flag = cli::FindFlag(flags, given.name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", option, " (see --help)"));
    }
    const absl::StatusOr<size_t> taken = cli::SetFlag(
        *flag, option, given.value, absl::MakeConstSpan(args).subspan(i + 1));
    if (!taken.ok()) return taken.status();
    i += *taken;
  }
  return absl::OkStatus();
}

// --threads: distinct thread counts in 1..kMaxThreads.
absl::StatusOr<std::vector<uint32_t>> ParseThreadCounts(
    const std::vector<std::string>& given) {
  if (given.empty()) {
    return absl::InvalidArgumentError("--threads: expected a thread count");
  }
  std::vector<uint32_t> counts;
  for (const std::string& text : given) {
    uint32_t count = 0;
    if (!absl::SimpleAtoi(text, &count) || count == 0 || count > kMaxThreads) {
      return absl::InvalidArgumentError(
          absl::StrCat("--threads: expected thread counts in 1..", kMaxThreads,
                       " separated by commas, got '", text, "'"));
    }
    if (std::find(counts.begin(), counts.end(), count) != counts.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--threads: ", count, " given twice"));
    }
    counts.push_back(count);
  }
  return counts;
}

}  // namespace

absl::StatusOr<BenchFlags> ParseBenchFlags(int argc, char** argv) {
  absl::Status s = SetFlags(argc, argv);
  if (!s.ok()) return s;
  BenchFlags flags;
  flags.entries = absl::GetFlag(FLAGS_entries);
  flags.log_size = absl::GetFlag(FLAGS_log_size);
  flags.sync_entries = absl::GetFlag(FLAGS_sync_entries);
  flags.fsync_ops = absl::GetFlag(FLAGS_fsync_ops);
  flags.seed = absl::GetFlag(FLAGS_seed);
  flags.key_size = absl::GetFlag(FLAGS_key_size);
  flags.value_size = absl::GetFlag(FLAGS_value_size);
  flags.filter = absl::GetFlag(FLAGS_filter);
  flags.repeat = absl::GetFlag(FLAGS_repeat);
  flags.json = absl::GetFlag(FLAGS_json);
  flags.data_dir = absl::GetFlag(FLAGS_data_dir);
  for (std::string& store : absl::GetFlag(FLAGS_stores)) {
    if (!store.empty()) flags.stores.push_back(std::move(store));
  }
  flags.quick = absl::GetFlag(FLAGS_quick);
  flags.settle = absl::GetFlag(FLAGS_settle);
  flags.list = absl::GetFlag(FLAGS_list);
  flags.help = absl::GetFlag(FLAGS_help);
  flags.batch = absl::GetFlag(FLAGS_batch);
  flags.cache_mb = absl::GetFlag(FLAGS_cache_mb);
  flags.key_hash = absl::GetFlag(FLAGS_key_hash);
  flags.lru_size = absl::GetFlag(FLAGS_lru_size);
  flags.layout = absl::GetFlag(FLAGS_layout);
  flags.log_checksums = absl::GetFlag(FLAGS_log_checksums);
  if (flags.key_size == 0) {
    return absl::InvalidArgumentError("--key-size must be positive");
  }
  if (flags.repeat == 0) {
    return absl::InvalidArgumentError("--repeat must be positive");
  }
  if (flags.key_hash != "ocaml" && flags.key_hash != "xxh3") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--key-hash: expected ocaml or xxh3, got '", flags.key_hash, "'"));
  }
  if (flags.layout != "single_file" && flags.layout != "tiered") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--layout: expected single_file or tiered, got '", flags.layout, "'"));
  }
  absl::StatusOr<std::vector<uint32_t>> threads =
      ParseThreadCounts(absl::GetFlag(FLAGS_threads));
  if (!threads.ok()) return threads.status();
  flags.threads = *std::move(threads);
  return flags;
}

std::string BenchHelp() {
  return absl::StrCat(kAbout, cli::FlagsHelp(cli::FlagsDefinedIn(__FILE__)));
}

}  // namespace bench
}  // namespace kvindex
