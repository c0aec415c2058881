// The checksum sidecars of data files (filter/data_sums.h) end to end over a
// MemEnv: every merge and compaction writes one beside its output, a merge
// or compaction refuses an input whose bytes differ from its sidecar and
// leaves it in place, a store without sidecars (as the OCaml library writes
// it) merges as before and gains one, and a clear removes them.
#include "filter/data_sums.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "runset/manifest.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr char kRoot[] = "/store";

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

Options StoreOptions(MemEnv* env, Layout layout) {
  Options o;
  o.env = env;
  o.log_size = 8;
  o.lru_size = 0;
  o.layout = layout;
  return o;
}

std::unique_ptr<RawIndex> OpenOrDie(const Options& options) {
  auto index = RawIndex::Open(kRoot, TestSchema(), options);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? *std::move(index) : nullptr;
}

bool Exists(MemEnv* env, const std::string& path) {
  return env->FileExists(path).value();
}

// Whether the sidecar at `path` + ".sum" is usable for the file at `path`
// and every block matches.
bool SumsMatch(MemEnv* env, const std::string& path) {
  const std::string file = env->Contents(path).value();
  if (file.size() < IndexFile::kHeaderSize) return false;
  uint64_t generation = 0;  // header bytes 16-23, big-endian
  for (size_t i = 16; i < 24; ++i) {
    generation = (generation << 8) | static_cast<unsigned char>(file[i]);
  }
  SumsTarget target;
  target.generation = static_cast<int64_t>(generation);
  target.file_bytes = file.size();
  auto sums = DataSums::Read(env, path + ".sum", target);
  return sums.ok() && *sums != nullptr && (*sums)->Verify(file, path).ok();
}

// Writes `count` bindings, key i to value i + plus, then merges.
void WriteAndMerge(RawIndex* index, uint32_t first, uint32_t count,
                   uint32_t plus = 0) {
  for (uint32_t i = first; i < first + count; ++i) {
    ASSERT_OK(index->Replace(test::SmallKey(i), test::SmallValue(i + plus)));
  }
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
}

// Flips one bit of a value in the middle of the data file at `path`, where
// nothing but its checksums can notice it; returns the damaged bytes.
std::string DamageAValue(MemEnv* env, const std::string& path) {
  std::string bytes = env->Contents(path).value();
  const size_t at =
      bytes.size() - 5 * (test::kSmallKeySize + test::kSmallValueSize) - 1;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x20);
  env->SetContents(path, bytes);
  return bytes;
}

TEST(DataSumsStoreTest, EveryMergeWritesTheSidecarOfItsOutput) {
  MemEnv env;
  auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
  ASSERT_NE(index, nullptr);
  const std::string data = StorePath(kRoot, "data");
  for (uint32_t round = 0; round < 4; ++round) {
    WriteAndMerge(index.get(), round * 40, 60);
    EXPECT_TRUE(SumsMatch(&env, data)) << "after merge " << round;
    EXPECT_FALSE(Exists(&env, data + ".sum.tmp"));
  }
  ASSERT_OK(index->Clear());
  EXPECT_FALSE(Exists(&env, data));
  EXPECT_FALSE(Exists(&env, data + ".sum"));
  ASSERT_OK(index->Close());
}

TEST(DataSumsStoreTest, DamagedDataFileFailsTheNextMergeAndStaysInPlace) {
  MemEnv env;
  const std::string data = StorePath(kRoot, "data");
  {
    auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
    ASSERT_NE(index, nullptr);
    WriteAndMerge(index.get(), 0, 100);
    ASSERT_OK(index->Close());
  }
  const std::string damaged = DamageAValue(&env, data);
  auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
  ASSERT_NE(index, nullptr);
  for (uint32_t i = 500; i < 510; ++i) {
    ASSERT_OK(index->Replace(test::SmallKey(i), test::SmallValue(i)));
  }
  ASSERT_OK(index->Merge());
  const absl::Status st = index->AwaitMerge();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(data, ": bytes [0, ")));
  EXPECT_EQ(env.Contents(data).value(), damaged);
  EXPECT_FALSE(Exists(&env, StorePath(kRoot, "merge")));
  // The bindings written since are still there.
  std::string value(test::kSmallValueSize, '\0');
  auto found = index->Find(test::SmallKey(505), value.data());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(*found);
  (void)index->Close();
}

// A store without sidecars, as the OCaml library leaves it: the merge reads
// the data file unchecked (damage included) and writes the first sidecar.
TEST(DataSumsStoreTest, WithoutASidecarTheMergeProceedsAndWritesOne) {
  MemEnv env;
  const std::string data = StorePath(kRoot, "data");
  {
    auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
    ASSERT_NE(index, nullptr);
    WriteAndMerge(index.get(), 0, 100);
    ASSERT_OK(index->Close());
  }
  ASSERT_OK(env.RemoveFile(data + ".sum"));
  DamageAValue(&env, data);
  auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
  ASSERT_NE(index, nullptr);
  WriteAndMerge(index.get(), 500, 10);
  EXPECT_TRUE(SumsMatch(&env, data));
  ASSERT_OK(index->Close());
}

// A stale sidecar (the OCaml library merged since kvindex wrote it) is
// ignored, and replaced at the next merge.
TEST(DataSumsStoreTest, AStaleSidecarIsIgnored) {
  MemEnv env;
  const std::string data = StorePath(kRoot, "data");
  std::string old_sums;
  {
    auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
    ASSERT_NE(index, nullptr);
    WriteAndMerge(index.get(), 0, 100);
    old_sums = env.Contents(data + ".sum").value();
    WriteAndMerge(index.get(), 200, 10);
    ASSERT_OK(index->Close());
  }
  env.SetContents(data + ".sum", old_sums);
  auto index = OpenOrDie(StoreOptions(&env, Layout::kSingleFile));
  ASSERT_NE(index, nullptr);
  WriteAndMerge(index.get(), 500, 10);
  EXPECT_TRUE(SumsMatch(&env, data));
  ASSERT_OK(index->Close());
}

// The tiered layout: each run has its sidecar; a compaction (or a merge) that
// folds a damaged run fails naming it and leaves it listed and in place.
TEST(DataSumsStoreTest, DamagedRunFailsTheCompactionThatFoldsIt) {
  MemEnv env;
  const std::string dir = StoreDir(kRoot);
  {
    auto index = OpenOrDie(StoreOptions(&env, Layout::kTiered));
    ASSERT_NE(index, nullptr);
    WriteAndMerge(index.get(), 0, 8);
    ASSERT_OK(index->Close());
  }
  std::optional<Manifest> m = ReadManifest(&env, dir).value();
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->runs.size(), 1u);
  const std::string run = RunPath(dir, m->runs[0].id);
  ASSERT_TRUE(SumsMatch(&env, run));
  const std::string damaged = DamageAValue(&env, run);

  auto index = OpenOrDie(StoreOptions(&env, Layout::kTiered));
  ASSERT_NE(index, nullptr);
  // A second log-full: the runs of slot 0 are folded together.
  for (uint32_t i = 100; i < 108; ++i) {
    ASSERT_OK(index->Replace(test::SmallKey(i), test::SmallValue(i)));
  }
  ASSERT_OK(index->Merge());
  // The merge of the log adds a run in slot 0 next to the damaged one; the
  // compaction that follows must not fold them, and its error reaches
  // AwaitMerge, once, even after a later merge that succeeded (here one with
  // nothing to do, once the compaction has ended).
  for (int i = 0; i < 10000 && index->IsMerging().value(); ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_FALSE(index->IsMerging().value());
  ASSERT_OK(index->Merge());
  absl::Status st = index->AwaitMerge();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(run, ": bytes [0, ")));
  EXPECT_OK(index->AwaitMerge()) << "the compaction's error was reported";
  auto listed = [&] {
    std::optional<Manifest> now = ReadManifest(&env, dir).value();
    bool found = false;
    if (now.has_value()) {
      for (const RunEntry& r : now->runs) found |= RunPath(dir, r.id) == run;
    }
    return found;
  };
  EXPECT_TRUE(listed());
  m = ReadManifest(&env, dir).value();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->runs.size(), 2u);
  EXPECT_EQ(env.Contents(run).value(), damaged);
  EXPECT_FALSE(Exists(&env, StorePath(kRoot, "compact")));
  EXPECT_FALSE(Exists(&env, StorePath(kRoot, "merge")));

  // A merge that folds every run (a filter) reports it directly.
  st = index->Filter([](absl::string_view, absl::string_view) { return true; });
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(run, ": bytes [0, ")));
  EXPECT_TRUE(listed());
  EXPECT_EQ(env.Contents(run).value(), damaged);
  EXPECT_FALSE(Exists(&env, StorePath(kRoot, "merge")));
  (void)index->Close();
}

TEST(DataSumsStoreTest, FoldedRunsLoseTheirSidecars) {
  MemEnv env;
  auto index = OpenOrDie(StoreOptions(&env, Layout::kTiered));
  ASSERT_NE(index, nullptr);
  for (uint32_t round = 0; round < 6; ++round) {
    WriteAndMerge(index.get(), round * 8, 8);
  }
  ASSERT_OK(index->AwaitMerge());
  std::optional<Manifest> m = ReadManifest(&env, StoreDir(kRoot)).value();
  ASSERT_TRUE(m.has_value());
  for (const RunEntry& r : m->runs) {
    EXPECT_TRUE(SumsMatch(&env, RunPath(StoreDir(kRoot), r.id))) << r.id;
  }
  for (const uint64_t id : m->retired) {
    EXPECT_FALSE(Exists(&env, RunPath(StoreDir(kRoot), id) + ".sum")) << id;
  }
  int sidecars = 0;
  for (const std::string& path : env.ListFiles()) {
    sidecars += absl::EndsWith(path, ".sum") ? 1 : 0;
  }
  EXPECT_EQ(sidecars, static_cast<int>(m->runs.size()));
  ASSERT_OK(index->Close());
}

// Options::verify_data_on_open: a damaged data file or run fails the open,
// read-write and read-only; without the option, or without a sidecar, the
// store opens as before.
TEST(DataSumsStoreTest, VerifyDataOnOpenRefusesADamagedDataFile) {
  for (const Layout layout : {Layout::kSingleFile, Layout::kTiered}) {
    SCOPED_TRACE(layout == Layout::kTiered ? "tiered" : "single file");
    MemEnv env;
    {
      auto index = OpenOrDie(StoreOptions(&env, layout));
      ASSERT_NE(index, nullptr);
      WriteAndMerge(index.get(), 0, 100);
      ASSERT_OK(index->Close());
    }
    std::string path = StorePath(kRoot, "data");
    if (layout == Layout::kTiered) {
      std::optional<Manifest> m = ReadManifest(&env, StoreDir(kRoot)).value();
      ASSERT_TRUE(m.has_value());
      ASSERT_FALSE(m->runs.empty());
      path = RunPath(StoreDir(kRoot), m->runs.back().id);  // the largest
    }
    Options verify = StoreOptions(&env, layout);
    verify.verify_data_on_open = true;
    Options reader = verify;
    reader.readonly = true;
    {
      // Intact: opens.
      auto index = OpenOrDie(verify);
      ASSERT_NE(index, nullptr);
      ASSERT_OK(index->Close());
      auto ro = OpenOrDie(reader);
      ASSERT_NE(ro, nullptr);
      ASSERT_OK(ro->Close());
    }
    DamageAValue(&env, path);
    for (const Options& o : {verify, reader}) {
      auto index = RawIndex::Open(kRoot, TestSchema(), o);
      ASSERT_FALSE(index.ok());
      EXPECT_EQ(index.status().code(), absl::StatusCode::kDataLoss)
          << index.status();
      EXPECT_THAT(index.status().message(),
                  HasSubstr(absl::StrCat(path, ": bytes [0, ")));
    }
    {
      // Without the option the open does not read the whole file.
      auto index = OpenOrDie(StoreOptions(&env, layout));
      ASSERT_NE(index, nullptr);
      ASSERT_OK(index->Close());
    }
    ASSERT_OK(env.RemoveFile(path + ".sum"));
    auto index = OpenOrDie(verify);
    ASSERT_NE(index, nullptr);
    ASSERT_OK(index->Close());
  }
}

}  // namespace
}  // namespace kvindex
