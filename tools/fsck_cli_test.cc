#include "tools/fsck_cli.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "nlohmann/json.hpp"
#include "tools/fsck.h"
#include "tools/fsck_testutil.h"

namespace kvindex {
namespace fsck {
namespace {

using fsck_testing::DataFile;
using fsck_testing::LogFile;
using fsck_testing::MakeRecords;
using fsck_testing::NewRoot;
using fsck_testing::PutBigEndian64;
using fsck_testing::ReadStoreFile;
using fsck_testing::SortByHash;
using fsck_testing::WriteStoreFile;

// The JSON in `text` (a parse error fails the test and gives null).
nlohmann::json ParseJson(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, /*cb=*/nullptr,
                                              /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << "not JSON:\n" << text;
  return json.is_discarded() ? nlohmann::json() : json;
}

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunFsck(const std::vector<std::string>& args, bool tty = false) {
  std::ostringstream out, err;
  Result r;
  r.code = RunCli(Env::Posix(), args, out, err, tty);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// 300 records of 8+4 bytes in data, 10 in the log.
std::string SmallStore(absl::string_view name) {
  Options o;
  o.key_size = 8;
  o.value_size = 4;
  const Schema s = *SchemaFor(o);
  const std::string root = NewRoot(name);
  std::vector<fsck_testing::Record> recs = MakeRecords(s, 310, 11);
  WriteStoreFile(root, "data",
                 DataFile(s,
                          SortByHash(s, std::vector<fsck_testing::Record>(
                                            recs.begin(), recs.begin() + 300)),
                          2));
  WriteStoreFile(
      root, "log",
      LogFile(s,
              std::vector<fsck_testing::Record>(recs.begin() + 300, recs.end()),
              2));
  WriteStoreFile(root, "lock", "4242");
  return root;
}

TEST(RunCli, TopLevelHelp) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {}, {"--help"}, {"-h"}, {"help"}}) {
    Result r = RunFsck(args);
    EXPECT_EQ(r.code, kExitOk);
    EXPECT_TRUE(absl::StartsWith(r.out, "Usage: index-fsck COMMAND")) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "integrity-check")) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "3  no such store")) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "4  foreign file")) << r.out;
    // The files of both layouts.
    EXPECT_TRUE(absl::StrContains(
        r.out,
        "data, log, log_async, merge and lock in DIR/index, and in "
        "kvindex's tiered\nlayout the manifest and the run files it "
        "lists (run.<id>)."))
        << r.out;
    EXPECT_EQ(r.err, "");
  }
}

TEST(RunCli, CommandHelp) {
  for (const std::string command : {"stat", "integrity-check"}) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{command, "--help"},
                                               {command, "-h"},
                                               {command, "/x", "--help"},
                                               {"help", command}}) {
      Result r = RunFsck(args);
      EXPECT_EQ(r.code, kExitOk) << command;
      EXPECT_TRUE(absl::StartsWith(
          r.out, absl::StrCat("Usage: index-fsck ", command, " [OPTIONS] DIR")))
          << r.out;
      // Every option with its default, then its help.
      EXPECT_TRUE(absl::StrContains(
          r.out, "\n  --key-size (default: 32)\n      Key size in bytes."))
          << r.out;
      EXPECT_TRUE(absl::StrContains(r.out, "\n  --value-size (default: 13)\n"))
          << r.out;
      EXPECT_TRUE(absl::StrContains(r.out, "\n  --hash (default: xxh3)\n"))
          << r.out;
      EXPECT_TRUE(absl::StrContains(r.out, "\n  --hash-bits\n")) << r.out;
      EXPECT_TRUE(absl::StrContains(r.out, "\n  --help\n")) << r.out;
      EXPECT_TRUE(
          absl::EndsWith(r.out, "\nExit status: see `index-fsck --help`.\n"))
          << r.out;
      EXPECT_EQ(r.err, "");
    }
  }
  // Each command lists its own options only.
  const std::string stat = RunFsck({"stat", "--help"}).out;
  EXPECT_TRUE(absl::StrContains(stat, "\n  --json\n")) << stat;
  EXPECT_FALSE(absl::StrContains(stat, "--strict")) << stat;
  const std::string check = RunFsck({"integrity-check", "--help"}).out;
  EXPECT_TRUE(absl::StrContains(check, "\n  --strict\n")) << check;
  EXPECT_TRUE(absl::StrContains(check, "\n  --max-reports (default: 10)\n"))
      << check;
  EXPECT_TRUE(absl::StrContains(check, "\n  --no-progress\n")) << check;
  EXPECT_FALSE(absl::StrContains(check, "--json")) << check;
  // The tiered layout's files and JSON member.
  EXPECT_TRUE(absl::StrContains(stat, "the header of each run file run.<id>."))
      << stat;
  EXPECT_TRUE(absl::StrContains(
      stat, "\n      after \"files\" a \"manifest\" member: {\"generation\""))
      << stat;
  EXPECT_TRUE(absl::StrContains(stat, "\"retired\": [N, ...]}")) << stat;
  EXPECT_TRUE(absl::StrContains(check, "\n  manifest     decodes;")) << check;
  EXPECT_TRUE(
      absl::StrContains(check, "\n  run.<id>     each run the manifest lists"))
      << check;
}

TEST(RunCli, HelpLinesFitIn80Columns) {
  for (const std::string command : {"", "stat", "integrity-check"}) {
    const std::string help = HelpText(command);
    for (absl::string_view line : absl::StrSplit(help, '\n')) {
      EXPECT_LE(line.size(), 80u) << command << ": " << line;
    }
  }
}

TEST(RunCli, BadCommandLines) {
  const std::vector<std::vector<std::string>> bad = {
      {"frobnicate", "/x"},
      {"--json"},
      {"help", "frobnicate"},
      {"stat"},
      {"stat", "/a", "/b"},
      {"stat", "--strict", "/a"},  // integrity-check only
      {"integrity-check", "--json", "/a"},
      {"stat", "--no-such-option", "/a"},
      {"stat", "-x", "/a"},
      {"stat", "--key-size", "0", "/a"},
      {"stat", "--key-size=-1", "/a"},
      {"stat", "--key-size"},
      {"stat", "--value-size=abc", "/a"},
      {"stat", "--hash", "md5", "/a"},
      {"stat", "--hash-bits=0", "/a"},
      {"stat", "--hash-bits=65", "/a"},
      {"stat", "--hash=ocaml", "--hash-bits=20", "/a"},
      {"integrity-check", "--max-reports", "x", "/a"},
      {"integrity-check", "--strict=maybe", "/a"},
  };
  for (const std::vector<std::string>& args : bad) {
    Result r = RunFsck(args);
    EXPECT_EQ(r.code, kExitUsage) << args[0] << " " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "index-fsck")) << r.err;
    EXPECT_EQ(r.out, "") << r.out;
  }
  Result r = RunFsck({"stat", "--hash", "md5", "/a"});
  EXPECT_EQ(r.err,
            "index-fsck stat: --hash must be ocaml or xxh3, not 'md5'\n"
            "Try 'index-fsck stat --help'.\n");
  r = RunFsck({"integrity-check", "--json", "/a"});
  EXPECT_EQ(r.err,
            "index-fsck integrity-check: unknown option '--json'\n"
            "Try 'index-fsck integrity-check --help'.\n");
  r = RunFsck({"stat", "--value-size=abc", "/a"});
  EXPECT_EQ(r.err,
            "index-fsck stat: invalid value 'abc' for --value-size\n"
            "Try 'index-fsck stat --help'.\n");
  r = RunFsck({"stat", "--key-size"});
  EXPECT_EQ(r.err,
            "index-fsck stat: option '--key-size' needs a value\n"
            "Try 'index-fsck stat --help'.\n");
}

TEST(RunCli, OptionForms) {
  const std::string root = SmallStore("cli_forms");
  // Underscores, a boolean's explicit value, and "--" before DIR.
  Result r = RunFsck({"integrity-check", "--key_size", "8", "--value-size=4",
                      "--strict=false", "--max_reports=1", "--", root});
  EXPECT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "(key 8 B, value 4 B, hash xxh3-64)"))
      << r.out;
  // Each call starts from the defaults: the sizes above are gone.
  r = RunFsck({"integrity-check", "--hash=ocaml", root});
  EXPECT_TRUE(absl::StrContains(r.out, "(key 32 B, value 13 B, hash ocaml-30)"))
      << r.out;
}

TEST(RunCli, StatJson) {
  const std::string root = SmallStore("cli_stat");
  Result r =
      RunFsck({"stat", "--key-size=8", "--value-size", "4", "--json", root});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.err, "");
  const nlohmann::json json = ParseJson(r.out);
  EXPECT_EQ(json.at("entry_size"), "12.0 B");
  EXPECT_EQ(json.at("entry_bytes"), 12);
  const nlohmann::json& files = json.at("files");
  EXPECT_EQ(files.size(), 3u);  // data, log, lock
  EXPECT_EQ(files.at("data").at("offset"), 3600);
  EXPECT_EQ(files.at("data").at("entries"), 300);
  EXPECT_EQ(files.at("data").at("generation"), 2);
  EXPECT_EQ(files.at("data").at("fanout_bytes"), 8);
  EXPECT_EQ(files.at("log").at("entries"), 10);
  EXPECT_EQ(files.at("log").at("size"), "152.0 B");
  EXPECT_EQ(files.at("lock"), "4242");
  // The OCaml tool's layout, byte for byte.
  EXPECT_EQ(r.out, R"({
  "entry_size": "12.0 B",
  "entry_bytes": 12,
  "files": {
    "data": {
      "size": "3.5 KiB",
      "offset": 3600,
      "generation": 2,
      "fanout_size": "8.0 B",
      "entries": 300,
      "bytes": 3640,
      "fanout_bytes": 8
    },
    "log": {
      "size": "152.0 B",
      "offset": 120,
      "generation": 2,
      "fanout_size": "0.0 B",
      "entries": 10,
      "bytes": 152,
      "fanout_bytes": 0
    },
    "lock": "4242"
  }
}
)");
}

TEST(RunCli, StatOfAMissingStore) {
  const std::string root = NewRoot("cli_missing", /*with_index=*/false);
  Result r = RunFsck({"stat", "--json", root});
  EXPECT_EQ(r.code, kExitNoStore);
  EXPECT_TRUE(absl::StrContains(r.out, "\"files\": {}")) << r.out;
  const nlohmann::json json = ParseJson(r.out);
  EXPECT_TRUE(json.at("files").is_object());
  EXPECT_TRUE(json.at("files").empty());
  EXPECT_EQ(r.err,
            absl::StrCat("index-fsck: ", root, "/index: no such store\n"));

  r = RunFsck({"integrity-check", root + "/absent"});
  EXPECT_EQ(r.code, kExitNoStore);
  EXPECT_EQ(r.err,
            absl::StrCat("index-fsck: ", root, "/absent: no such directory\n"));
}

TEST(RunCli, IntegrityCheckCleanAndDamaged) {
  const std::string root = SmallStore("cli_check");
  Result r =
      RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("index-fsck: checking ", root,
                          "/index (key 8 B, value 4 B, hash xxh3-64)\n")))
      << r.out;
  EXPECT_TRUE(
      absl::StrContains(r.out, "  data: 300 records, sorted by xxh3-64"))
      << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "index-fsck: no problem found\n")) << r.out;

  // The default sizes (32 + 13) do not fit this store.
  r = RunFsck({"integrity-check", root});
  EXPECT_EQ(r.code, kExitDamaged);
  EXPECT_TRUE(
      absl::StrContains(r.out, "is not a multiple of the entry size 45"))
      << r.out;

  std::string log = ReadStoreFile(root, "log");
  PutBigEndian64(&log, 0, 10 * 12 + 24);  // two records past the end
  WriteStoreFile(root, "log", log);
  r = RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitDamaged);
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("error: ", root,
                          "/index/log: byte 0: offset 144 claims records up to "
                          "byte 176 but the file ends at byte 152")))
      << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "index-fsck: 1 error, 0 warnings\n"))
      << r.out;
}

TEST(RunCli, StrictCountsWarnings) {
  const std::string root = SmallStore("cli_strict");
  WriteStoreFile(root, "log", ReadStoreFile(root, "log") + "xyz");
  Result r =
      RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitOk) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("warning: ", root,
                          "/index/log: byte 152: 3 bytes of trailing garbage")))
      << r.out;
  r = RunFsck(
      {"integrity-check", "--strict", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitDamaged) << r.out;
}

TEST(RunCli, ForeignFile) {
  const std::string root = SmallStore("cli_foreign");
  std::string data = ReadStoreFile(root, "data");
  data.replace(8, 8, "\x01garbage");
  WriteStoreFile(root, "data", data);
  Result r =
      RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitForeign);
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("error: ", root,
                          "/index/data: byte 8: unsupported version "
                          "'\\x01garbage' (current version is 00000001)")))
      << r.out;
  r = RunFsck({"stat", "--key-size=8", "--value-size=4", root});
  EXPECT_EQ(r.code, kExitForeign);
  EXPECT_TRUE(absl::StrContains(r.out, "data       unreadable: unsupported"))
      << r.out;
}

TEST(RunCli, NoProgressBarWithoutATerminal) {
  const std::string root = SmallStore("cli_tty");
  Result r =
      RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root},
              /*tty=*/false);
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.err, "");
  // On a terminal, a scan this short finishes before the bar's delay.
  r = RunFsck({"integrity-check", "--key-size=8", "--value-size=4", root},
              /*tty=*/true);
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.err, "");
}

TEST(ProgressLine, Renders) {
  EXPECT_EQ(ProgressLine("data", 0, 100, 10),
            "checking data [>         ]   0% 0.0 B / 100.0 B");
  EXPECT_EQ(ProgressLine("data", 50, 100, 10),
            "checking data [=====>    ]  50% 50.0 B / 100.0 B");
  EXPECT_EQ(ProgressLine("data", 2048, 2048, 10),
            "checking data [==========] 100% 2.0 KiB / 2.0 KiB");
  EXPECT_EQ(ProgressLine("log", 0, 0, 4),
            "checking log [====] 100% 0.0 B / 0.0 B");
}

TEST(TerminalProgress, DrawsAfterTheDelayAndErasesItself) {
  std::ostringstream err;
  {
    TerminalProgress bar(err, absl::ZeroDuration());
    bar.Update("data", 10, 100);
    EXPECT_TRUE(bar.drawn());
    bar.Update("data", 100, 100);  // the last update is always drawn
    bar.Finish();
    EXPECT_FALSE(bar.drawn());
  }
  const std::string s = err.str();
  EXPECT_TRUE(absl::StartsWith(s, "\rchecking data [")) << s;
  EXPECT_TRUE(absl::StrContains(s, " 10% ")) << s;
  EXPECT_TRUE(absl::StrContains(s, "100% 100.0 B / 100.0 B")) << s;
  EXPECT_TRUE(absl::EndsWith(s, "\r")) << s;  // erased

  std::ostringstream quiet;
  {
    TerminalProgress bar(quiet, absl::Hours(1));
    bar.Update("data", 10, 100);
    EXPECT_FALSE(bar.drawn());
  }
  EXPECT_EQ(quiet.str(), "");
}

}  // namespace
}  // namespace fsck
}  // namespace kvindex
