// Systematic damage to single-file stores written by the library: every
// single-bit flip of every header field of `log` and `data`, truncations at
// record boundaries (and one byte either side) and inside headers, missing
// files and garbage leftovers. Each damaged store is opened read-only and
// read-write; the allowed outcomes are a clean error, or a store whose every
// binding was written (to that key, with that value) at some point: never a
// binding that was not written, and never a data file deleted by an open that
// reports success. KVINDEX_SOAK=1 (--config=soak) flips every bit of every
// store; the default run samples one bit in four of the larger stores.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "io/mem_env.h"
#include "testing/keys.h"

namespace kvindex {
namespace {

constexpr char kRoot[] = "/store";
constexpr char kDir[] = "/store/index";
// Entries of 9 bytes: a header field shifted by a multiple of 8 (a fan-out
// slot) would otherwise land on a record boundary and hide the shift.
constexpr size_t kValueSize = test::kSmallValueSize + 1;
const size_t kEntry = test::kSmallKeySize + kValueSize;

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, kValueSize, 8,
                          &test::FirstByteHash);
}

std::string Value(uint32_t v) { return test::SmallValue(v) + "!"; }

Options StoreOptions(MemEnv* env, bool readonly) {
  Options o;
  o.env = env;
  o.readonly = readonly;
  o.log_size = 1000000;  // merges only when the test asks
  o.lru_size = 0;
  return o;
}

using Files = std::map<std::string, std::string>;
using Written = std::set<std::pair<std::string, std::string>>;

// A store as some writes left it: its files and every binding ever written.
struct Store {
  std::string name;
  Files files;
  Written written;
};

class Writer {
 public:
  explicit Writer(MemEnv* env) : env_(env) { Reopen(); }
  void Reopen() {
    auto index = RawIndex::Open(kRoot, TestSchema(), StoreOptions(env_, false));
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = *std::move(index);
  }
  void Put(uint32_t k, uint32_t v) {
    ASSERT_TRUE(index_->Replace(test::SmallKey(k), Value(v)).ok());
    written_.insert({test::SmallKey(k), Value(v)});
  }
  void Merge() {
    ASSERT_TRUE(index_->Merge().ok());
    ASSERT_TRUE(index_->AwaitMerge().ok());
  }
  RawIndex* index() { return index_.get(); }
  Store Finish(const std::string& name) {
    EXPECT_TRUE(index_->Close().ok());
    index_.reset();
    Store s{name, {}, written_};
    for (const std::string& path : env_->ListFiles()) {
      if (path != std::string(kDir) + "/lock") {
        s.files[path] = env_->Contents(path).value();
      }
    }
    return s;
  }

 private:
  MemEnv* env_;
  std::unique_ptr<RawIndex> index_;
  Written written_;
};

// The stores of the sweep, each written in a MemEnv of its own.
std::vector<Store> MakeStores() {
  std::vector<Store> stores;
  {
    MemEnv env;
    Writer w(&env);
    for (uint32_t k = 0; k < 40; ++k) w.Put(k, k);
    stores.push_back(w.Finish("log_only"));
  }
  {
    MemEnv env;
    Writer w(&env);
    for (uint32_t k = 0; k < 200; ++k) w.Put(k, k);
    w.Merge();
    stores.push_back(w.Finish("merged"));
  }
  {
    MemEnv env;
    Writer w(&env);
    for (uint32_t k = 0; k < 200; ++k) w.Put(k, k);
    w.Merge();
    for (uint32_t k = 0; k < 200; k += 7) w.Put(k, k + 1000);
    stores.push_back(w.Finish("overwritten"));
  }
  {
    MemEnv env;
    Writer w(&env);
    for (uint32_t k = 0; k < 100; ++k) w.Put(k, k);
    w.Merge();
    EXPECT_TRUE(w.index()->Clear().ok());
    for (uint32_t k = 50; k < 80; ++k) w.Put(k, k + 2000);
    stores.push_back(w.Finish("cleared"));
  }
  {
    MemEnv env;
    Writer w(&env);
    for (uint32_t k = 0; k < 150; ++k) w.Put(k, k);
    EXPECT_TRUE(w.index()
                    ->Filter([](absl::string_view key, absl::string_view) {
                      return key[0] % 2 == 0;
                    })
                    .ok());
    for (uint32_t k = 150; k < 170; ++k) w.Put(k, k);
    stores.push_back(w.Finish("filtered"));
  }
  return stores;
}

bool Soak() {
  const char* soak = std::getenv("KVINDEX_SOAK");
  return soak != nullptr && std::string(soak) == "1";
}

class DamageSweep {
 public:
  explicit DamageSweep(const Store& store) : store_(store) {}

  // Opens the damaged `files` both ways and checks the outcome; `what`
  // names the damage in failures.
  void Check(const Files& files, const std::string& what) {
    ++cases_;
    for (bool readonly : {true, false}) {
      MemEnv env;
      ASSERT_TRUE(env.CreateDirs(kDir).ok());
      for (const auto& [path, bytes] : files) env.SetContents(path, bytes);
      auto index =
          RawIndex::Open(kRoot, TestSchema(), StoreOptions(&env, readonly));
      if (!index.ok()) continue;  // a clean error
      const std::string where = absl::StrCat(
          store_.name, ", ", what, readonly ? ", read-only" : ", read-write");
      std::string phantom;
      const absl::Status iter =
          (*index)->Iter([&](absl::string_view k, absl::string_view v) {
            if (phantom.empty() &&
                store_.written.count({std::string(k), std::string(v)}) == 0) {
              phantom = absl::StrCat("key ", static_cast<int>(k[0]));
            }
          });
      if (iter.ok()) {
        EXPECT_EQ(phantom, "") << where << ": a binding never written";
      }
      std::string value(kValueSize, '\0');
      for (const auto& [k, v] : store_.written) {
        auto found = (*index)->Find(k, value.data());
        if (found.ok() && *found) {
          EXPECT_EQ(store_.written.count({k, value}), 1u)
              << where << ": find shows a value never written";
        }
      }
      (void)(*index)->Close();
      const std::string data = std::string(kDir) + "/data";
      if (files.count(data) == 1) {
        EXPECT_TRUE(env.FileExists(data).value())
            << where << ": the data file was deleted by an open that succeeded";
      }
    }
  }

  int cases() const { return cases_; }

 private:
  const Store& store_;
  int cases_ = 0;
};

TEST(DamageSweepTest, HeaderBitFlips) {
  for (const Store& store : MakeStores()) {
    SCOPED_TRACE(store.name);
    DamageSweep sweep(store);
    const int step = Soak() || store.name == "log_only" ? 1 : 4;
    for (const char* name : {"log", "data"}) {
      const std::string path = absl::StrCat(kDir, "/", name);
      auto it = store.files.find(path);
      if (it == store.files.end()) continue;
      for (int bit = 0; bit < 32 * 8; bit += step) {
        Files files = store.files;
        files[path][bit / 8] ^= static_cast<char>(1 << (bit % 8));
        sweep.Check(files, absl::StrCat(name, " bit ", bit));
      }
    }
    EXPECT_GT(sweep.cases(), 0);
  }
}

// The checksum sidecar is never required: whatever its damage, the store
// opens as the sweep's rules say (and merges ignore a damaged one).
TEST(DamageSweepTest, ChecksumSidecarBitFlips) {
  for (const Store& store : MakeStores()) {
    SCOPED_TRACE(store.name);
    DamageSweep sweep(store);
    const std::string path = absl::StrCat(kDir, "/data.sum");
    auto it = store.files.find(path);
    if (it == store.files.end()) continue;
    const int bits = static_cast<int>(it->second.size() * 8);
    for (int bit = 0; bit < bits; bit += Soak() ? 1 : 3) {
      Files files = store.files;
      files[path][bit / 8] ^= static_cast<char>(1 << (bit % 8));
      sweep.Check(files, absl::StrCat("data.sum bit ", bit));
    }
    EXPECT_GT(sweep.cases(), 0);
  }
}

TEST(DamageSweepTest, TruncationsMissingFilesAndLeftovers) {
  for (const Store& store : MakeStores()) {
    SCOPED_TRACE(store.name);
    DamageSweep sweep(store);
    for (const char* name : {"log", "data"}) {
      const std::string path = absl::StrCat(kDir, "/", name);
      auto it = store.files.find(path);
      if (it == store.files.end()) continue;
      const size_t size = it->second.size();
      std::vector<size_t> cuts;
      for (size_t at = 0; at < 32 && at < size; at += Soak() ? 1 : 5) {
        cuts.push_back(at);
      }
      for (size_t at = 32; at <= size; at += kEntry) {
        for (size_t c : {at - 1, at, at + 1}) {
          if (c < size) cuts.push_back(c);
        }
      }
      for (size_t c : cuts) {
        Files files = store.files;
        files[path].resize(c);
        sweep.Check(files, absl::StrCat(name, " cut to ", c));
      }
      Files missing = store.files;
      missing.erase(path);
      sweep.Check(missing, absl::StrCat(name, " missing"));
    }
    const std::string garbage(100, '\x5a');
    for (const char* name : {"merge", "log_async", "log_tmp", "clear",
                             "data.sum", "data.sum.tmp"}) {
      Files files = store.files;
      files[absl::StrCat(kDir, "/", name)] = garbage;
      sweep.Check(files, absl::StrCat("garbage ", name));
    }
  }
}

}  // namespace
}  // namespace kvindex
