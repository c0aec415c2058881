// The command line of index_bench: its flags are Abseil flags (defined in
// flags.cc), set from argv and read into a BenchFlags. bench/README.md lists
// them.
//
//   --name=VALUE, --name VALUE    any flag
//   --name, --name=false          a boolean
//
// Dashes and underscores are alike in names (--log-size, --log_size);
// --nb-entries and --nb-exec are the OCaml benchmark's names of --entries and
// --repeat, and --no-settle is --settle=false.
//
// Thread safety: ParseBenchFlags sets process-wide flags; calls must not
// overlap.
#ifndef KVINDEX_BENCH_FLAGS_H_
#define KVINDEX_BENCH_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"

namespace kvindex {
namespace bench {

// The flags' values. An unset optional means the default, which depends on
// --quick (see MakePlan in driver.cc).
struct BenchFlags {
  absl::optional<uint64_t> entries;
  absl::optional<uint64_t> log_size;
  absl::optional<uint64_t> sync_entries;
  absl::optional<uint64_t> fsync_ops;
  uint64_t seed = 0;
  uint64_t key_size = 0;
  uint64_t value_size = 0;
  std::string filter;  // empty: every workload
  uint64_t repeat = 0;
  std::string json;      // empty: no JSON report
  std::string data_dir;  // empty: a fresh temporary directory
  std::vector<std::string> stores;
  bool quick = false;
  bool settle = false;
  bool list = false;
  bool help = false;
  uint64_t batch = 0;
  uint64_t cache_mb = 0;
  std::string key_hash;  // "ocaml" or "xxh3"
  uint64_t lru_size = 0;
  std::string layout;  // of the kvindex store: "single_file" or "tiered"
  bool log_checksums = false;  // kvindex: Options::log_checksums
  // Thread counts of replace_random_fsync and fsync_baseline, distinct, in
  // the order given.
  std::vector<uint32_t> threads;
};

// The most threads --threads may ask for.
constexpr uint32_t kMaxThreads = 1024;

// Sets the flags given in argv[1..argc), the others to their defaults, and
// returns them all.
// kInvalidArgument, naming the flag, for an unknown flag, a bad or missing
// value, an argument that is not a flag, --key-size or --repeat 0, a
// --key-hash other than ocaml and xxh3, a --layout other than single_file
// and tiered, or --threads other than distinct counts in 1..kMaxThreads.
absl::StatusOr<BenchFlags> ParseBenchFlags(int argc, char** argv);

// The --help text: what index_bench does, then every flag with its help and
// default, in alphabetical order.
std::string BenchHelp();

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_FLAGS_H_
