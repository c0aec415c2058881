// Runs the real index-fsck binary (fork + exec) on stores laid out by the test.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/fsck.h"
#include "tools/fsck_testutil.h"

namespace kvindex {
namespace {

using fsck_testing::DataFile;
using fsck_testing::LogFile;
using fsck_testing::MakeRecords;
using fsck_testing::NewRoot;
using fsck_testing::PutBigEndian64;
using fsck_testing::ReadStoreFile;
using fsck_testing::Record;
using fsck_testing::SortByHash;
using fsck_testing::WriteStoreFile;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string Binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "kvindex",
                      "/tools/index-fsck");
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Result Exec(const std::vector<std::string>& args) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  const std::string out_path = dir + "/fsck.out";
  const std::string err_path = dir + "/fsck.err";
  const std::string binary = Binary();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  Result r;
  EXPECT_GT(pid, 0);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  EXPECT_NE(r.code, 127) << "cannot exec " << binary;
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

// 909 records of 20 + 20 bytes in data and 92 in the log, generation 9.
std::string Store(absl::string_view name) {
  fsck::Options o;
  o.key_size = 20;
  o.value_size = 20;
  const Schema s = *fsck::SchemaFor(o);
  const std::string root = NewRoot(name);
  std::vector<Record> all = MakeRecords(s, 1001, 1);
  WriteStoreFile(
      root, "data",
      DataFile(
          s, SortByHash(s, std::vector<Record>(all.begin(), all.begin() + 909)),
          9));
  WriteStoreFile(
      root, "log",
      LogFile(s, std::vector<Record>(all.begin() + 909, all.end()), 9));
  WriteStoreFile(root, "lock", "777");
  return root;
}

TEST(IndexFsckBinary, Help) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {}, {"--help"}, {"stat", "--help"}, {"integrity-check", "--help"}}) {
    Result r = Exec(args);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "Usage: index-fsck")) << r.out;
  }
  Result r = Exec({"stat", "--help"});
  EXPECT_TRUE(absl::StrContains(r.out, "\n  --key-size (default: 32)\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\n  --json\n")) << r.out;
  r = Exec({"integrity-check", "-h"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "\n  --max-reports (default: 10)\n"))
      << r.out;
}

TEST(IndexFsckBinary, BadCommandLines) {
  Result r = Exec({"check", "/x"});
  EXPECT_EQ(r.code, fsck::kExitUsage);
  EXPECT_TRUE(absl::StrContains(r.err, "unknown command 'check'")) << r.err;
  r = Exec({"integrity-check", "--no-such-option", "/x"});
  EXPECT_EQ(r.code, fsck::kExitUsage);
  EXPECT_EQ(r.err,
            "index-fsck integrity-check: unknown option '--no-such-option'\n"
            "Try 'index-fsck integrity-check --help'.\n");
  EXPECT_EQ(r.out, "");
  r = Exec({"stat", "--key-size=big", "/x"});
  EXPECT_EQ(r.code, fsck::kExitUsage);
  EXPECT_TRUE(absl::StrContains(r.err, "invalid value 'big' for --key-size"))
      << r.err;
}

TEST(IndexFsckBinary, StatJson) {
  const std::string root = Store("bin_stat");
  Result r =
      Exec({"stat", "--json", "--key-size", "20", "--value-size=20", root});
  EXPECT_EQ(r.code, 0) << r.err;
  const nlohmann::json json =
      nlohmann::json::parse(r.out, /*cb=*/nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << r.out;
  EXPECT_EQ(json.at("entry_bytes"), 40);
  EXPECT_EQ(json.at("files").at("data").at("size"), "35.6 KiB");
  EXPECT_EQ(json.at("files").at("data").at("entries"), 909);
  EXPECT_EQ(json.at("files").at("log").at("offset"), 3680);
  EXPECT_EQ(json.at("files").at("lock"), "777");
  // The OCaml tool's layout, byte for byte.
  EXPECT_EQ(r.out, R"({
  "entry_size": "40.0 B",
  "entry_bytes": 40,
  "files": {
    "data": {
      "size": "35.6 KiB",
      "offset": 36360,
      "generation": 9,
      "fanout_size": "128.0 B",
      "entries": 909,
      "bytes": 36520,
      "fanout_bytes": 128
    },
    "log": {
      "size": "3.6 KiB",
      "offset": 3680,
      "generation": 9,
      "fanout_size": "0.0 B",
      "entries": 92,
      "bytes": 3712,
      "fanout_bytes": 0
    },
    "lock": "777"
  }
}
)");
  r = Exec({"stat", "--key-size=20", "--value-size=20", root});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "offset 36360 (909 entries)")) << r.out;
}

TEST(IndexFsckBinary, IntegrityCheck) {
  const std::string root = Store("bin_check");
  Result r =
      Exec({"integrity-check", "--key-size=20", "--value-size=20", root});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::EndsWith(r.out, "index-fsck: no problem found\n")) << r.out;
  EXPECT_EQ(r.err, "");  // stderr is a file: no progress bar

  std::string data = ReadStoreFile(root, "data");
  PutBigEndian64(&data, 0, 36360 - 1);  // offset not a multiple of 40
  WriteStoreFile(root, "data", data);
  r = Exec({"integrity-check", "--key-size=20", "--value-size=20", root});
  EXPECT_EQ(r.code, fsck::kExitDamaged);
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("error: ", root,
                          "/index/data: byte 0: offset 36359 is not a multiple "
                          "of the entry size 40")))
      << r.out;

  data.replace(8, 8, "00000009");
  WriteStoreFile(root, "data", data);
  r = Exec({"integrity-check", "--key-size=20", "--value-size=20", root});
  EXPECT_EQ(r.code, fsck::kExitForeign);
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat(root,
                          "/index/data: byte 8: unsupported version "
                          "'00000009'")))
      << r.out;
}

TEST(IndexFsckBinary, MissingDirectory) {
  const std::string root = NewRoot("bin_missing", /*with_index=*/false);
  Result r = Exec({"integrity-check", root});
  EXPECT_EQ(r.code, fsck::kExitNoStore);
  EXPECT_EQ(r.err,
            absl::StrCat("index-fsck: ", root, "/index: no such store\n"));
  r = Exec({"stat", root + "/nope"});
  EXPECT_EQ(r.code, fsck::kExitNoStore);
  EXPECT_EQ(r.err,
            absl::StrCat("index-fsck: ", root, "/nope: no such directory\n"));
}

}  // namespace
}  // namespace kvindex
