#include "runset/manifest.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/mem_env.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr char kDir[] = "/s/index";
constexpr char kPath[] = "/s/index/manifest";
constexpr uint32_t kEntrySize = 40;

// bytes of a run of `records` records with a fan-out table of `fans` slots.
uint64_t RunBytes(uint64_t records, uint64_t fans = 4) {
  return 32 + 8 * fans + records * kEntrySize;
}

RunEntry MakeRun(uint64_t id, int64_t generation, uint64_t records,
                 uint32_t slot) {
  RunEntry r;
  r.id = id;
  r.generation = generation;
  r.records = records;
  r.bytes = RunBytes(records);
  r.slot = slot;
  return r;
}

// Runs 9 (slot 0), 6 (slot 2) and the data file (slot 5); 8 and 7 retired.
Manifest Sample() {
  Manifest m;
  m.entry_size = kEntrySize;
  m.generation = 12;
  m.next_id = 10;
  m.runs = {MakeRun(9, 12, 100, 0), MakeRun(6, 9, 400, 2),
            MakeRun(kDataRunId, 3, 9000, 5)};
  m.retired = {8, 7};
  return m;
}

// Replaces the checksum (the last 8 bytes) with the right one.
std::string Reseal(std::string bytes) {
  const uint64_t sum = XXH3_64bits(bytes.data(), bytes.size() - 8);
  absl::big_endian::Store64(&bytes[bytes.size() - 8], sum);
  return bytes;
}

void ExpectDataLoss(absl::string_view bytes, absl::string_view field) {
  absl::StatusOr<Manifest> m = DecodeManifest(bytes, kPath);
  ASSERT_FALSE(m.ok()) << "accepted a manifest with a bad " << field;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr(kPath));
  EXPECT_THAT(m.status().message(), HasSubstr(field));
}

TEST(Manifest, RunFileNames) {
  EXPECT_EQ(RunFileName(kDataRunId), "data");
  EXPECT_EQ(RunFileName(17), "run.17");
  EXPECT_EQ(RunPath(kDir, 3), "/s/index/run.3");
  EXPECT_EQ(ManifestPath(kDir), kPath);
}

TEST(Manifest, EncodesAndDecodesBack) {
  const Manifest m = Sample();
  ASSERT_TRUE(CheckManifest(m, kPath).ok());
  const std::string bytes = EncodeManifest(m);
  EXPECT_EQ(bytes.substr(0, 8), "KVRUNSET");
  EXPECT_EQ(bytes.size(), 40u + 3 * 36 + 2 * 8 + 8);
  absl::StatusOr<Manifest> back = DecodeManifest(bytes, kPath);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(EncodeManifest(*back), bytes);

  Manifest empty;
  empty.entry_size = 1;
  back = DecodeManifest(EncodeManifest(empty), kPath);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, empty);
}

// Each broken invariant, encoded with a right checksum, is refused naming its
// field; CheckManifest refuses the same manifest as an invalid argument.
TEST(Manifest, DecodeNamesEveryBrokenInvariant) {
  struct Case {
    const char* field;
    std::function<void(Manifest&)> damage;
  };
  const std::vector<Case> cases = {
      {"entry_size", [](Manifest& m) { m.entry_size = 0; }},
      {"generation", [](Manifest& m) { m.generation = -1; }},
      {"generation",
       [](Manifest& m) { m.generation = (int64_t{1} << 62) + 1; }},
      {"next_id", [](Manifest& m) { m.next_id = 0; }},
      {"next_id", [](Manifest& m) { m.runs[0].id = m.next_id; }},
      {"duplicate id", [](Manifest& m) { m.runs[1].id = m.runs[0].id; }},
      {"newest first", [](Manifest& m) { std::swap(m.runs[1], m.runs[2]); }},
      {"slot", [](Manifest& m) { m.runs[2].slot = kMaxRuns; }},
      {"generation", [](Manifest& m) { m.runs[0].generation = 13; }},
      {"generation", [](Manifest& m) { m.runs[1].generation = 12; }},
      {"generation", [](Manifest& m) { m.runs[2].generation = -1; }},
      {"records", [](Manifest& m) { m.runs[1].records = 0; }},
      {"bytes", [](Manifest& m) { m.runs[1].bytes = RunBytes(400, 0); }},
      {"bytes", [](Manifest& m) { m.runs[1].bytes = RunBytes(400, 3); }},
      {"bytes", [](Manifest& m) { m.runs[1].bytes = RunBytes(400) + 4; }},
      {"bytes", [](Manifest& m) { m.runs[1].bytes = 31; }},
      {"bytes", [](Manifest& m) { m.runs[2].records = ~uint64_t{0} / 8; }},
      {"retired id", [](Manifest& m) { m.retired[0] = m.next_id; }},
      {"live run", [](Manifest& m) { m.retired[1] = 6; }},
      {"duplicate", [](Manifest& m) { m.retired[1] = m.retired[0]; }},
      {"out of order",
       [](Manifest& m) { std::swap(m.retired[0], m.retired[1]); }},
      {"run_count",
       [](Manifest& m) {
         m.runs.clear();
         m.retired.clear();
         m.next_id = 1000;
         for (uint32_t i = 0; i <= kMaxRuns; ++i) {
           m.runs.push_back(MakeRun(900 - i, 900 - i, 1, i));
         }
       }},
      {"retired_count",
       [](Manifest& m) {
         m.retired.clear();
         m.next_id = 1000;
         for (uint64_t i = 0; i <= kMaxRuns; ++i) m.retired.push_back(900 - i);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    Manifest m = Sample();
    c.damage(m);
    ExpectDataLoss(EncodeManifest(m), c.field);
    const absl::Status st = CheckManifest(m, kPath);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_THAT(st.message(), HasSubstr(c.field));
  }
}

TEST(Manifest, DecodeRefusesDamagedBytes) {
  const std::string good = EncodeManifest(Sample());
  std::string bytes = good;
  bytes[0] = 'X';
  ExpectDataLoss(bytes, "magic");
  bytes = good;
  absl::big_endian::Store32(&bytes[8], 2);
  ExpectDataLoss(Reseal(bytes), "version");
  bytes = good;
  bytes[60] ^= 1;  // inside the first run
  ExpectDataLoss(bytes, "checksum");
  ExpectDataLoss(good + "x", "trailing");
  ExpectDataLoss(Reseal(good + "12345678"), "trailing");
  // Every prefix is refused: too short for the header, for its counts, or
  // (the last 8 bytes short) for its checksum.
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    ExpectDataLoss(good.substr(0, n), "truncated");
  }
}

// Whatever the fields, a manifest that decodes encodes to the same bytes.
RC_GTEST_PROP(ManifestProperty, DecodedManifestsEncodeToTheirBytes, ()) {
  Manifest m;
  m.entry_size = *rc::gen::inRange<uint32_t>(0, 3);
  m.generation = *rc::gen::inRange<int64_t>(-1, 6);
  m.next_id = *rc::gen::inRange<uint64_t>(0, 8);
  const auto ids = *rc::gen::container<std::vector<uint64_t>>(
      rc::gen::inRange<uint64_t>(0, 8));
  for (const uint64_t id : ids) {
    RunEntry r;
    r.id = id;
    r.generation = *rc::gen::inRange<int64_t>(-1, 6);
    r.records = *rc::gen::inRange<uint64_t>(0, 4);
    r.bytes =
        32 + 8 * *rc::gen::inRange<uint64_t>(0, 5) + r.records * m.entry_size;
    r.slot = *rc::gen::inRange<uint32_t>(0, 5);
    m.runs.push_back(r);
  }
  m.retired = *rc::gen::container<std::vector<uint64_t>>(
      rc::gen::inRange<uint64_t>(0, 8));
  const std::string bytes = EncodeManifest(m);
  absl::StatusOr<Manifest> back = DecodeManifest(bytes, kPath);
  RC_ASSERT(back.ok() == CheckManifest(m, kPath).ok());
  if (back.ok()) {
    RC_ASSERT(*back == m);
    RC_ASSERT(EncodeManifest(*back) == bytes);
  } else {
    RC_ASSERT(back.status().code() == absl::StatusCode::kDataLoss);
  }
}

// ---------------------------------------------------------------------------
// Files.

class ManifestFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.CreateDirs(kDir).ok()); }

  std::optional<Manifest> Read() {
    absl::StatusOr<std::optional<Manifest>> m = ReadManifest(&env_, kDir);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::nullopt;
  }

  bool Exists(const std::string& path) {
    absl::StatusOr<bool> e = env_.FileExists(path);
    return e.ok() && *e;
  }

  MemEnv env_;
};

TEST_F(ManifestFileTest, ReadsWhatWasWritten) {
  EXPECT_EQ(Read(), std::nullopt);
  ASSERT_TRUE(WriteManifest(&env_, kDir, Sample()).ok());
  EXPECT_EQ(Read(), Sample());
  EXPECT_FALSE(Exists(absl::StrCat(kDir, "/manifest.tmp")));
  Manifest next = Sample();
  next.runs.pop_back();
  next.retired = {kDataRunId};
  ASSERT_TRUE(WriteManifest(&env_, kDir, next).ok());
  EXPECT_EQ(Read(), next);
}

TEST_F(ManifestFileTest, AStaleLongerTmpFileDoesNotSpoilTheNextManifest) {
  env_.SetContents(absl::StrCat(kDir, "/manifest.tmp"), std::string(500, 'z'));
  Manifest small;
  small.entry_size = kEntrySize;
  ASSERT_TRUE(WriteManifest(&env_, kDir, small).ok());
  EXPECT_EQ(Read(), small);
}

TEST_F(ManifestFileTest, ADamagedManifestIsDataLossNamingIt) {
  std::string bytes = EncodeManifest(Sample());
  bytes[50] ^= 4;
  env_.SetContents(kPath, bytes);
  absl::StatusOr<std::optional<Manifest>> m = ReadManifest(&env_, kDir);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(), HasSubstr(kPath));
}

TEST_F(ManifestFileTest, AnInvalidManifestIsRefusedBeforeAnyWrite) {
  Manifest bad = Sample();
  bad.runs[0].records = 0;
  const uint64_t before = env_.mutation_count();
  const absl::Status st = WriteManifest(&env_, kDir, bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr(kPath));
  EXPECT_EQ(env_.mutation_count(), before);
  EXPECT_EQ(Read(), std::nullopt);
}

TEST_F(ManifestFileTest, IoErrorsAreReported) {
  env_.InjectError(kOpSync, 0, 1, absl::InternalError("EIO"));
  const absl::Status st = WriteManifest(&env_, kDir, Sample());
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  env_.ClearInjectedErrors();
  EXPECT_EQ(Read(), std::nullopt);
}

// A crash at any write point of WriteManifest, whatever survives of what was
// not synced, leaves the old manifest or the new one, never a mix, a damaged
// file or none.
TEST_F(ManifestFileTest, ACrashAtAnyPointLeavesTheOldOrTheNewManifest) {
  Manifest old_manifest = Sample();
  Manifest new_manifest = Sample();
  new_manifest.generation = 13;
  new_manifest.next_id = 11;
  new_manifest.runs.insert(new_manifest.runs.begin(), MakeRun(10, 13, 50, 1));
  new_manifest.runs.erase(new_manifest.runs.begin() + 1);  // run 9, folded
  new_manifest.retired = {9};
  ASSERT_TRUE(CheckManifest(new_manifest, kPath).ok());
  // A stale tmp file makes the removal of one a write point too.
  const std::string tmp = absl::StrCat(kDir, "/manifest.tmp");
  bool saw_old = false, saw_new = false;
  for (uint64_t n = 0;; ++n) {
    bool completed = false;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      SCOPED_TRACE(absl::StrCat("crash after ", n, " writes, seed ", seed));
      MemEnv env;
      ASSERT_TRUE(env.CreateDirs(kDir).ok());
      ASSERT_TRUE(WriteManifest(&env, kDir, old_manifest).ok());
      env.SetContents(tmp, std::string(300, 'z'));
      env.CrashAfter(n);
      const absl::Status st = WriteManifest(&env, kDir, new_manifest);
      completed = !env.crashed();
      if (completed) {
        ASSERT_TRUE(st.ok()) << st;
      }
      CrashOptions crash;
      crash.seed = seed;
      crash.keep_unsynced_prefix = seed % 3 != 0;
      crash.tear_last_write = seed % 2 == 0;
      crash.dir_ops_in_any_order = seed >= 3;
      env.Restart(crash);
      absl::StatusOr<std::optional<Manifest>> m = ReadManifest(&env, kDir);
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_TRUE(m->has_value());
      const bool is_old = **m == old_manifest;
      const bool is_new = **m == new_manifest;
      ASSERT_TRUE(is_old || is_new);
      if (completed) {
        ASSERT_TRUE(is_new) << "a completed write was lost";
      }
      saw_old |= is_old;
      saw_new |= is_new;
    }
    if (completed) break;
    ASSERT_LT(n, 100u) << "WriteManifest never completes";
  }
  EXPECT_TRUE(saw_old);
  EXPECT_TRUE(saw_new);
}

TEST_F(ManifestFileTest, StaleRunFilesAreTheRetiredRunsAndTheNextOutput) {
  const Manifest m = Sample();  // runs 9, 6, 0; retired 8, 7; next id 10
  const std::vector<std::string> stale = StaleRunFiles(kDir, m);
  auto has = [&](const std::string& name) {
    return std::find(stale.begin(), stale.end(),
                     absl::StrCat(kDir, "/", name)) != stale.end();
  };
  for (const char* name :
       {"run.8", "run.8.filter", "run.8.filter.tmp", "run.7", "run.7.filter",
        "run.10", "run.10.filter", "run.10.filter.tmp", "manifest.tmp"}) {
    EXPECT_TRUE(has(name)) << name;
  }
  for (const char* name :
       {"run.9", "run.6", "data", "data.filter", "run.9.filter", "manifest"}) {
    EXPECT_FALSE(has(name)) << name;
  }
}

TEST_F(ManifestFileTest, RemoveStaleRunFilesRemovesThemDurably) {
  const Manifest m = Sample();
  ASSERT_TRUE(WriteManifest(&env_, kDir, m).ok());
  const std::vector<std::string> live = {"run.9", "run.9.filter", "run.6",
                                         "data", "data.filter"};
  const std::vector<std::string> stale = {"run.8", "run.8.filter", "run.10",
                                          "manifest.tmp"};
  for (const auto& names : {live, stale}) {
    for (const std::string& name : names) {
      env_.SetContents(absl::StrCat(kDir, "/", name), "x");
    }
  }
  ASSERT_TRUE(RemoveStaleRunFiles(&env_, kDir, m).ok());
  // Nothing unsynced survives this crash.
  env_.Restart(CrashOptions{.seed = 0, .keep_unsynced_prefix = false});
  for (const std::string& name : live) {
    EXPECT_TRUE(Exists(absl::StrCat(kDir, "/", name))) << name;
  }
  for (const std::string& name : stale) {
    EXPECT_FALSE(Exists(absl::StrCat(kDir, "/", name))) << name;
  }
  EXPECT_EQ(Read(), m);
  // Nothing left to remove: no error.
  EXPECT_TRUE(RemoveStaleRunFiles(&env_, kDir, m).ok());
}

// After a conversion back to the default layout renamed the only run to
// `data`, a manifest that retires the old `data` must not remove the new one;
// an old `data` (another generation) goes.
TEST_F(ManifestFileTest, ARetiredDataFileThatHoldsAListedRunIsKept) {
  Manifest m;
  m.entry_size = kEntrySize;
  m.generation = 9;
  m.next_id = 5;
  m.runs = {MakeRun(4, 9, 10, 3)};
  m.retired = {3, kDataRunId};
  ASSERT_TRUE(CheckManifest(m, kPath).ok());
  auto header = [](int64_t generation) {
    std::string h(32, '\0');
    absl::big_endian::Store64(&h[16], static_cast<uint64_t>(generation));
    return h;
  };
  const std::string data = absl::StrCat(kDir, "/data");
  for (const int64_t generation : {int64_t{9}, int64_t{2}}) {
    SCOPED_TRACE(generation);
    env_.SetContents(data, header(generation) + std::string(400, 'r'));
    env_.SetContents(data + ".filter", "f");
    env_.SetContents(absl::StrCat(kDir, "/run.3"), header(7));
    ASSERT_TRUE(RemoveStaleRunFiles(&env_, kDir, m).ok());
    EXPECT_FALSE(Exists(absl::StrCat(kDir, "/run.3")));
    EXPECT_EQ(Exists(data), generation == 9);
    EXPECT_EQ(Exists(data + ".filter"), generation == 9);
  }
  // Shorter than a header: not a run.
  env_.SetContents(data, "short");
  ASSERT_TRUE(RemoveStaleRunFiles(&env_, kDir, m).ok());
  EXPECT_FALSE(Exists(data));
}

}  // namespace
}  // namespace kvindex
