#include "bench/flags.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/optional.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace bench {
namespace {

// Parses `args` (without the program name).
absl::StatusOr<BenchFlags> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "index_bench");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(&a[0]);
  return ParseBenchFlags(static_cast<int>(argv.size()), argv.data());
}

BenchFlags ParseOk(std::vector<std::string> args) {
  absl::StatusOr<BenchFlags> f = Parse(std::move(args));
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : BenchFlags();
}

// Every field of `f` as name=value, in the order of BenchFlags: an unset
// count is "-", a boolean 0 or 1, the stores and thread counts
// comma-separated.
std::string Summary(const BenchFlags& f) {
  const auto count = [](const absl::optional<uint64_t>& n) {
    return n.has_value() ? absl::StrCat(*n) : "-";
  };
  const auto boolean = [](bool b) { return b ? "1" : "0"; };
  return absl::StrCat(
      "entries=", count(f.entries), " log_size=", count(f.log_size),
      " sync_entries=", count(f.sync_entries),
      " fsync_ops=", count(f.fsync_ops), " seed=", f.seed,
      " key_size=", f.key_size, " value_size=", f.value_size,
      " filter=", f.filter, " repeat=", f.repeat, " json=", f.json,
      " data_dir=", f.data_dir, " stores=", absl::StrJoin(f.stores, ","),
      " quick=", boolean(f.quick), " settle=", boolean(f.settle),
      " list=", boolean(f.list), " help=", boolean(f.help), " batch=", f.batch,
      " cache_mb=", f.cache_mb, " key_hash=", f.key_hash,
      " lru_size=", f.lru_size, " layout=", f.layout,
      " threads=", absl::StrJoin(f.threads, ","));
}

TEST(ParseBenchFlags, Defaults) {
  EXPECT_EQ(
      Summary(ParseOk({})),
      "entries=- log_size=- sync_entries=- fsync_ops=- seed=0 "
      "key_size=32 value_size=13 filter= repeat=1 json= data_dir= "
      "stores=kvindex,kvindex_tiered,lmdb,leveldb,rocksdb,hashmap quick=0 "
      "settle=1 list=0 help=0 batch=10000 cache_mb=256 key_hash=ocaml "
      "lru_size=30000 layout=single_file threads=1,4,16");
}

TEST(ParseBenchFlags, ValuesAfterEqualsOrInTheNextArgument) {
  EXPECT_EQ(
      Summary(ParseOk({"--entries=5000",
                       "--log-size",
                       "700",
                       "--sync-entries=40",
                       "--fsync-ops",
                       "9",
                       "--seed=4",
                       "--key-size",
                       "8",
                       "--value-size=4",
                       "--filter",
                       "find",
                       "--repeat=3",
                       "--json",
                       "/tmp/r.json",
                       "--data-dir=/tmp/d",
                       "--stores=lmdb,,kvindex",
                       "--batch=50",
                       "--cache-mb",
                       "8",
                       "--key-hash=xxh3",
                       "--lru-size=0",
                       "--layout",
                       "tiered",
                       "--threads",
                       "8,2",
                       "--quick",
                       "--list"})),
      "entries=5000 log_size=700 sync_entries=40 fsync_ops=9 seed=4 "
      "key_size=8 value_size=4 filter=find repeat=3 json=/tmp/r.json "
      "data_dir=/tmp/d stores=lmdb,kvindex quick=1 settle=1 list=1 help=0 "
      "batch=50 cache_mb=8 key_hash=xxh3 lru_size=0 layout=tiered "
      "threads=8,2");
}

TEST(ParseBenchFlags, UnderscoresAndTheOcamlNames) {
  absl::StatusOr<BenchFlags> f =
      Parse({"--log_size=70", "--nb-entries", "900", "--nb_exec=5"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->log_size, 70u);
  EXPECT_EQ(f->entries, 900u);
  EXPECT_EQ(f->repeat, 5u);
}

TEST(ParseBenchFlags, Booleans) {
  EXPECT_FALSE(ParseOk({"--no-settle"}).settle);
  EXPECT_FALSE(ParseOk({"--settle=false"}).settle);
  EXPECT_FALSE(ParseOk({"--settle=no"}).settle);
  EXPECT_TRUE(ParseOk({"--settle=false", "--settle"}).settle);
  EXPECT_TRUE(ParseOk({"--quick=true"}).quick);
  EXPECT_FALSE(ParseOk({"--quick=0"}).quick);
  EXPECT_TRUE(ParseOk({"--help"}).help);
}

TEST(ParseBenchFlags, ThreadCountsKeepTheirOrder) {
  EXPECT_EQ(ParseOk({"--threads=16,1,1024"}).threads,
            (std::vector<uint32_t>{16, 1, 1024}));
  EXPECT_EQ(ParseOk({"--threads", "3"}).threads, std::vector<uint32_t>{3});
  // --quick does not change them.
  EXPECT_EQ(ParseOk({"--quick"}).threads, (std::vector<uint32_t>{1, 4, 16}));
}

TEST(ParseBenchFlags, EachParseStartsFromTheDefaults) {
  ASSERT_EQ(ParseOk({"--repeat=7"}).repeat, 7u);
  EXPECT_EQ(ParseOk({}).repeat, 1u);
}

TEST(ParseBenchFlags, RefusesBadCommandLines) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--no-such-flag"}, "unknown flag --no-such-flag (see --help)"},
           {{"--no_such_flag=1"}, "unknown flag --no_such_flag (see --help)"},
           {{"entries"}, "unexpected argument 'entries'"},
           {{"-entries=5"}, "unexpected argument '-entries=5'"},
           {{"--entries", "many"}, "invalid value 'many' for --entries"},
           {{"--log_size=-1"}, "invalid value '-1' for --log_size"},
           {{"--quick=maybe"}, "invalid value 'maybe' for --quick"},
           {{"--seed"}, "option '--seed' needs a value"},
           {{"--key-size=0"}, "--key-size must be positive"},
           {{"--repeat", "0"}, "--repeat must be positive"},
           {{"--key-hash=md5"}, "--key-hash: expected ocaml or xxh3"},
           {{"--layout=tired"},
            "--layout: expected single_file or tiered, got 'tired'"},
           {{"--threads=0"},
            "--threads: expected thread counts in 1..1024 separated by "
            "commas, got '0'"},
           {{"--threads=x"},
            "--threads: expected thread counts in 1..1024 separated by "
            "commas, got 'x'"},
           {{"--threads=1,-4"}, "--threads: expected thread counts in 1..1024"},
           {{"--threads=1025"}, "got '1025'"},
           {{"--threads=1,,4"}, "separated by commas, got ''"},
           {{"--threads="}, "--threads: expected a thread count"},
           {{"--threads=4,1,4"}, "--threads: 4 given twice"},
       }) {
    absl::StatusOr<BenchFlags> f = Parse(c.args);
    EXPECT_TRUE(absl::IsInvalidArgument(f.status())) << c.args[0];
    EXPECT_TRUE(absl::StrContains(f.status().message(), c.message))
        << f.status();
  }
}

TEST(BenchHelp, ListsEveryFlagWithItsDefault) {
  const std::string help = BenchHelp();
  EXPECT_TRUE(absl::StartsWith(help, "index_bench: ")) << help;
  for (const char* flag :
       {"--quick\n",
        "--entries\n",
        "--log-size\n",
        "--seed (default: 0)\n",
        "--key-size (default: 32)\n",
        "--value-size (default: 13)\n",
        "--filter\n",
        "--repeat (default: 1)\n",
        "--json\n",
        "--data-dir\n",
        "--stores (default: "
        "kvindex,kvindex_tiered,lmdb,leveldb,rocksdb,hashmap)\n",
        "--sync-entries\n",
        "--fsync-ops\n",
        "--batch (default: 10000)\n",
        "--cache-mb (default: 256)\n",
        "--key-hash (default: ocaml)\n",
        "--lru-size (default: 30000)\n",
        "--layout (default: single_file)\n",
        "--threads (default: 1,4,16)\n",
        "--settle (default: true)\n",
        "--list\n",
        "--help\n"}) {
    EXPECT_TRUE(absl::StrContains(help, absl::StrCat("\n  ", flag))) << flag;
  }
  // In alphabetical order, each followed by its help.
  EXPECT_LT(help.find("--batch"), help.find("--cache-mb"));
  EXPECT_TRUE(absl::StrContains(
      help, "--batch (default: 10000)\n      LMDB/LevelDB/RocksDB puts per"));
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
