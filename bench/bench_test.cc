// Runs index_bench with tiny parameters and checks its JSON report: every
// workload on every store ran, with positive ops/s and the expected number of
// operations; filters pull in their dependency; bad flags are refused.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace bench {
namespace {

// A small JSON reader: enough for the report (objects, arrays, strings without
// \u escapes beyond ASCII, numbers, true/false/null).
struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  bool Has(const std::string& k) const {
    return type == kObject && object.count(k) > 0;
  }
  const Json& operator[](const std::string& k) const {
    static const Json kNone;
    auto it = object.find(k);
    return it == object.end() ? kNone : it->second;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  bool Parse(Json* out) {
    if (!Value(out)) return false;
    Space();
    return i_ == s_.size();
  }
  size_t position() const { return i_; }

 private:
  void Space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) {
      ++i_;
    }
  }
  bool Literal(const char* word) {
    std::string w = word;
    if (s_.compare(i_, w.size(), w) != 0) return false;
    i_ += w.size();
    return true;
  }
  bool String(std::string* out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c == '\\') {
        if (i_ >= s_.size()) return false;
        char e = s_[i_++];
        switch (e) {
          case 'n':
            *out += '\n';
            break;
          case 't':
            *out += '\t';
            break;
          case 'u':
            if (i_ + 4 > s_.size()) return false;
            *out += static_cast<char>(std::stoi(s_.substr(i_, 4), nullptr, 16));
            i_ += 4;
            break;
          default:
            *out += e;
        }
      } else {
        *out += c;
      }
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool Value(Json* out) {
    Space();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      out->type = Json::kObject;
      Space();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      for (;;) {
        Space();
        std::string key;
        if (!String(&key)) return false;
        Space();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        if (!Value(&out->object[key])) return false;
        Space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        return false;
      }
    }
    if (c == '[') {
      ++i_;
      out->type = Json::kArray;
      Space();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      for (;;) {
        out->array.emplace_back();
        if (!Value(&out->array.back())) return false;
        Space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        return false;
      }
    }
    if (c == '"') {
      out->type = Json::kString;
      return String(&out->string);
    }
    if (Literal("true")) {
      out->type = Json::kBool;
      out->boolean = true;
      return true;
    }
    if (Literal("false")) {
      out->type = Json::kBool;
      return true;
    }
    if (Literal("null")) return true;
    const char* start = s_.c_str() + i_;
    char* end = nullptr;
    out->number = std::strtod(start, &end);
    if (end == start) return false;
    out->type = Json::kNumber;
    i_ += static_cast<size_t>(end - start);
    return true;
  }

  const std::string& s_;
  size_t i_ = 0;
};

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

// Runs index_bench with `args`; its stdout and stderr go to `log`. Returns the
// exit status (or -1 when it did not exit normally).
int RunBench(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
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
  std::string text = ReadFile(path);
  Json j;
  JsonParser p(text);
  EXPECT_TRUE(p.Parse(&j)) << path << ": not JSON near byte " << p.position()
                           << ":\n"
                           << text;
  return j;
}

const std::vector<std::string>& AllWorkloads() {
  static const auto* const kAll = new std::vector<std::string>{
      "replace_random",          "replace_random_sync",
      "replace_increasing_keys", "replace_increasing_hash",
      "replace_decreasing_hash", "iter_rw",
      "find_random_ro",          "find_random_rw",
      "find_absent_ro",          "find_absent_rw",
      "replace_random_fsync"};
  return *kAll;
}

// (workload, store) -> result object.
std::map<std::pair<std::string, std::string>, const Json*> Index(
    const Json& report) {
  std::map<std::pair<std::string, std::string>, const Json*> out;
  for (const Json& r : report["results"].array) {
    out[{r["name"].string, r["store"].string}] = &r;
  }
  return out;
}

constexpr int kEntries = 1000;
constexpr int kSyncEntries = 300;
constexpr int kFsyncOps = 10;

std::vector<std::string> TinyArgs(const std::string& stores,
                                  const std::string& json) {
  return {"--entries",
          absl::StrCat(kEntries),
          "--log-size",
          "200",
          "--sync-entries",
          absl::StrCat(kSyncEntries),
          "--fsync-ops",
          absl::StrCat(kFsyncOps),
          "--batch",
          "100",
          "--cache-mb",
          "8",
          absl::StrCat("--stores=", stores),
          "--json",
          json};
}

void CheckAllWorkloads(const Json& report,
                       const std::vector<std::string>& stores) {
  auto results = Index(report);
  EXPECT_EQ(report["config"]["nb_entries"].number, kEntries);
  EXPECT_EQ(report["config"]["log_size"].number, 200);
  for (const std::string& w : AllWorkloads()) {
    for (const std::string& s : stores) {
      SCOPED_TRACE(absl::StrCat(w, " on ", s));
      auto it = results.find({w, s});
      ASSERT_NE(it, results.end());
      const Json& r = *it->second;
      if (w == "replace_random_fsync" && s == "hashmap") {
        EXPECT_TRUE(r.Has("skipped"));  // not durable
        continue;
      }
      ASSERT_FALSE(r.Has("error")) << r["error"].string;
      ASSERT_TRUE(r.Has("metrics"));
      const Json& m = r["metrics"];
      EXPECT_GT(m["ops_per_s"].number, 0);
      EXPECT_GT(m["seconds"].number, 0);
      double ops = w == "replace_random_sync"    ? kSyncEntries
                   : w == "replace_random_fsync" ? kFsyncOps
                                                 : kEntries;
      EXPECT_EQ(m["ops"].number, ops);
      EXPECT_GE(m["peak_rss_mib"].number, m["rss_start_mib"].number);
      EXPECT_GE(m["cpu_s"].number, 0);
      EXPECT_GE(m["peak_anon_growth_mib"].number, 0);
      EXPECT_TRUE(m.Has("cpu_us_per_op"));
      EXPECT_LE(m["ops_per_s_with_close"].number, m["ops_per_s"].number);
      EXPECT_GT(m["ops_per_s_with_close"].number, 0);
      if (w == "iter_rw") {
        EXPECT_GE(m["visited"].number, kEntries);
      }
      if (w.rfind("replace", 0) == 0) {
        EXPECT_GT(m["disk_mib"].number, 0);
      }
      EXPECT_FALSE(r["dependency"].boolean);
      EXPECT_EQ(r["runs_ops_per_s"].array.size(), 1u);
    }
  }
  auto base = results.find({"fsync_baseline", "posix_file"});
  ASSERT_NE(base, results.end());
  EXPECT_GT((*base->second)["metrics"]["ops_per_s"].number, 0);
}

TEST(IndexBench, EveryWorkloadOnKvIndexAndHashMap) {
  std::string json = TmpDir() + "/kv.json";
  std::string log = TmpDir() + "/kv.log";
  ASSERT_EQ(RunBench(TinyArgs("hashmap,kvindex", json), log), 0)
      << ReadFile(log);
  Json report = LoadJson(json);
  CheckAllWorkloads(report, {"hashmap", "kvindex"});
  auto results = Index(report);
  // 1000 entries through a log of 200: the library merged.
  const Json& m = (*results[{"replace_random", "kvindex"}])["metrics"];
  EXPECT_GE(m["nb_merges"].number, 1);
  // The first merge has nothing to copy runs from; some later one does.
  EXPECT_GE(m["nb_merges_copied_runs"].number, 1);
  EXPECT_LT(m["nb_merges_copied_runs"].number, m["nb_merges"].number);
  EXPECT_GT(m["write_amplification_size"].number, 1);
  // The table names every workload and the ratio column.
  std::string table = ReadFile(log);
  for (const std::string& w : AllWorkloads()) {
    EXPECT_NE(table.find(w), std::string::npos) << w;
  }
  EXPECT_NE(table.find("hashmap/kv"), std::string::npos);
}

TEST(IndexBench, EveryWorkloadOnThePeers) {
  std::string json = TmpDir() + "/peers.json";
  std::string log = TmpDir() + "/peers.log";
  ASSERT_EQ(RunBench(TinyArgs("lmdb,leveldb,rocksdb", json), log), 0)
      << ReadFile(log);
  CheckAllWorkloads(LoadJson(json), {"lmdb", "leveldb", "rocksdb"});
}

TEST(IndexBench, FilterAddsReplaceRandomAsDependency) {
  std::string json = TmpDir() + "/filter.json";
  std::string log = TmpDir() + "/filter.log";
  std::vector<std::string> args = TinyArgs("kvindex,lmdb", json);
  args.push_back("--filter=find_random_ro");
  args.push_back("--repeat=3");
  ASSERT_EQ(RunBench(args, log), 0) << ReadFile(log);
  Json report = LoadJson(json);
  std::set<std::string> names;
  for (const Json& r : report["results"].array) {
    names.insert(r["name"].string);
    if (r["name"].string == "replace_random") {
      EXPECT_TRUE(r["dependency"].boolean);
    } else {
      EXPECT_FALSE(r["dependency"].boolean);
      EXPECT_EQ(r["runs_ops_per_s"].array.size(), 3u);
      // The reported run is the median of the three.
      std::vector<double> runs;
      for (const Json& v : r["runs_ops_per_s"].array) runs.push_back(v.number);
      std::sort(runs.begin(), runs.end());
      EXPECT_EQ(r["metrics"]["ops_per_s"].number, runs[1]);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"replace_random", "find_random_ro"}));
}

TEST(IndexBench, RefusesBadFlags) {
  std::string log = TmpDir() + "/bad.log";
  EXPECT_EQ(RunBench({"--no-such-flag"}, log), 2);
  EXPECT_NE(ReadFile(log).find("unknown flag --no-such-flag"),
            std::string::npos);
  EXPECT_EQ(RunBench({"--stores=kvindex,nosuchdb"}, log), 2);
  EXPECT_NE(ReadFile(log).find("unknown store 'nosuchdb'"), std::string::npos);
  EXPECT_EQ(RunBench({"--entries", "many"}, log), 2);
  EXPECT_NE(ReadFile(log).find("not a number"), std::string::npos);
  EXPECT_EQ(RunBench({"--filter", "nothing_matches"}, log), 2);
  EXPECT_NE(ReadFile(log).find("matches no workload"), std::string::npos);
  EXPECT_EQ(RunBench({"--filter", "(find"}, log), 2);
  EXPECT_NE(ReadFile(log).find("bad regular expression '(find'"),
            std::string::npos);
}

}  // namespace
}  // namespace bench
}  // namespace kvindex
