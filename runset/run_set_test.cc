#include "runset/run_set.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "datafile/test_run.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/mem_env.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "runset/manifest.h"
#include "runset/policy.h"
#include "testing/keys.h"

// Counts the allocations of this thread while counting is on: finds must make
// none.
namespace {
thread_local bool counting_allocations = false;
thread_local uint64_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (counting_allocations) ++allocations;
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// The nothrow form too (std::stable_sort's buffer comes from it): replaced
// alone, operator delete would free what the sanitizers' operator new made.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (counting_allocations) ++allocations;
  return std::malloc(n == 0 ? 1 : n);
}
// GCC takes free() in a replacement operator delete for a mismatch with the
// operator new it inlines at call sites; they pair with the malloc above.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr char kDir[] = "/s/index";

// The small records of testing/keys.h, hashed by TinyHash (2 bits: every fourth
// key collides) or MidHash (12 bits: k, k + 4096, k + 8192 collide).
using test::MidSchema;
using test::TinySchema;

std::string Key(uint32_t i) { return test::SmallKey(i); }
std::string Value(uint32_t v) { return test::SmallValue(v); }

using Model = std::map<std::string, std::string>;
using Batch = test::SmallBatch;

// Writes runs for `batches` (oldest first) in `dir` as merges 1, 2, ... would,
// each in a slot of its own, and the manifest that lists them. Returns the
// manifest, and in *model the newest value of each key.
absl::StatusOr<Manifest> WriteRuns(MemEnv* env, const Schema& s,
                                   const std::vector<Batch>& batches,
                                   Model* model) {
  Manifest m;
  m.entry_size = static_cast<uint32_t>(s.entry_size());
  for (const Batch& batch : batches) {
    for (const auto& [k, v] : batch) (*model)[Key(k)] = Value(v);
    MergeOutput out;
    out.generation = m.generation + 1;
    auto run = test::WriteSmallTestRun(env, s, RunPath(kDir, m.next_id), batch,
                                       out.generation);
    if (!run.ok()) return run.status();
    if (*run == nullptr) return absl::InternalError("an empty run");
    absl::StatusOr<RunEntry> entry = DescribeRun(env, **run, m.next_id, 0);
    if (!entry.ok()) return entry.status();
    out.records = entry->records;
    out.bytes = entry->bytes;
    // Nothing folded: the new run takes slot 0, the others move up one.
    MergePlan plan;
    for (RunEntry& older : m.runs) ++older.slot;
    m = ManifestAfterMerge(m, plan, out);
  }
  absl::Status st = WriteManifest(env, kDir, m);
  if (!st.ok()) return st;
  return m;
}

// "" or the first difference between the set and the model: finds (both
// ways), absent keys, and iteration.
std::string Diff(const RunSet& set, const Schema& s, const Model& model,
                 const std::vector<std::string>& absent) {
  for (const auto& [k, v] : model) {
    absl::string_view value;
    if (!set.Find(k, s.hash(k), &value)) {
      return absl::StrCat("key ", absl::CHexEscape(k), " not found");
    }
    if (value != v) return absl::StrCat("key ", absl::CHexEscape(k), ": stale");
    RunSet::Lookup lookup;
    set.Prefetch(s.hash(k), &lookup);
    const char* entry = set.Find(k, lookup);
    if (entry == nullptr || EntryValue(s, entry) != v) {
      return "the two-step find disagrees";
    }
  }
  for (const std::string& k : absent) {
    if (model.count(k) == 0 && set.Find(k, s.hash(k)) != nullptr) {
      return absl::StrCat("absent key ", absl::CHexEscape(k), " found");
    }
  }
  Model seen;
  uint64_t previous_hash = 0;
  std::string problem;
  const absl::Status st = set.Iter([&](const char* entry, uint64_t hash) {
    const std::string k(EntryKey(s, entry));
    if (hash != s.hash(k)) problem = "Iter passed a wrong hash";
    if (hash < previous_hash) problem = "Iter not in hash order";
    previous_hash = hash;
    if (!seen.emplace(k, std::string(EntryValue(s, entry))).second) {
      problem = absl::StrCat("Iter visited ", absl::CHexEscape(k), " twice");
    }
  });
  if (!st.ok()) return st.ToString();
  if (!problem.empty()) return problem;
  if (seen != model) return "Iter's bindings differ from the model";
  return "";
}

class RunSetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.CreateDirs(kDir).ok()); }

  // Three runs over keys 0..29: run 1 (oldest) binds every key, run 2 every
  // second, run 3 (newest) every third, each to a value naming the run.
  Manifest ThreeRuns() {
    std::vector<Batch> batches(3);
    for (uint32_t r = 0; r < 3; ++r) {
      for (uint32_t k = 0; k < 30; k += r + 1) {
        batches[r].push_back({k, 100 * (r + 1) + k});
      }
    }
    return Written(batches);
  }

  Manifest Written(const std::vector<Batch>& batches) {
    absl::StatusOr<Manifest> m = WriteRuns(&env_, schema_, batches, &model_);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : Manifest();
  }

  std::shared_ptr<const RunSet> Open(const Manifest& m,
                                     const RunSet::Runs& open = {}) {
    auto set = RunSet::Open(&env_, kDir, schema_, m, open);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *set : nullptr;
  }

  MemEnv env_;
  Schema schema_ = TinySchema();
  Model model_;
};

std::vector<std::string> Absent() {
  std::vector<std::string> keys;
  for (uint32_t k = 30; k < 60; ++k) keys.push_back(Key(k));
  keys.push_back(Key(4096));
  return keys;
}

TEST_F(RunSetTest, FindsTheNewestValueAndIteratesEachKeyOnce) {
  const Manifest m = ThreeRuns();
  auto set = Open(m);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->runs().size(), 3u);
  EXPECT_EQ(set->runs()[0]->path(), RunPath(kDir, 3));
  EXPECT_EQ(set->records(), 30u + 15 + 10);
  EXPECT_EQ(model_[Key(6)], Value(306));
  EXPECT_EQ(model_[Key(4)], Value(204));
  EXPECT_EQ(model_[Key(5)], Value(105));
  EXPECT_EQ(Diff(*set, schema_, model_, Absent()), "");
  EXPECT_EQ(set->manifest(), m);
  const std::vector<const DataFile*> newest = set->Newest(2);
  ASSERT_EQ(newest.size(), 2u);
  EXPECT_EQ(newest[1], set->runs()[1].get());
  EXPECT_EQ(set->Newest(9).size(), 3u);
}

TEST_F(RunSetTest, AnEmptySetFindsNothing) {
  Manifest m;
  m.entry_size = static_cast<uint32_t>(schema_.entry_size());
  auto set = Open(m);
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(set->empty());
  EXPECT_EQ(Diff(*set, schema_, {}, Absent()), "");
}

TEST_F(RunSetTest, FindsAllocateNothing) {
  schema_ = MidSchema();
  auto set = Open(ThreeRuns());
  ASSERT_NE(set, nullptr);
  uint64_t found = 0;
  const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (uint32_t k = 0; k < 60; ++k) out.push_back(Key(k));
    return out;
  }();
  // The count sees allocations.
  allocations = 0;
  counting_allocations = true;
  const std::string big(1000, 'x');
  counting_allocations = false;
  ASSERT_EQ(big.size(), 1000u);
  ASSERT_GT(allocations, 0u);

  allocations = 0;
  counting_allocations = true;
  for (const std::string& key : keys) {
    absl::string_view value;
    if (set->Find(key, schema_.hash(key), &value)) ++found;
  }
  counting_allocations = false;
  EXPECT_EQ(found, 30u);
  EXPECT_EQ(allocations, 0u);
}

TEST_F(RunSetTest, SharesRunsThatAreAlreadyOpen) {
  const Manifest m = ThreeRuns();
  auto first = Open(m);
  ASSERT_NE(first, nullptr);
  auto second = Open(m, first->runs());
  ASSERT_NE(second, nullptr);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(first->runs()[i], second->runs()[i]);
  }
  // A run with another generation under the same name is not shared.
  Manifest other = m;
  other.runs[1].generation = 1;  // run 2 holds 2
  auto mismatched = RunSet::Open(&env_, kDir, schema_, other, first->runs());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunSetTest, ARunThatDoesNotMatchItsEntryIsDataLossNamingIt) {
  const Manifest m = ThreeRuns();
  const std::string run2 = RunPath(kDir, 2);
  struct Case {
    const char* field;
    void (*damage)(RunEntry&);
  };
  const Case cases[] = {
      {"generation", [](RunEntry& r) { r.generation = 1; }},
      {"records", [](RunEntry& r) { r.records += 1; }},
      {"bytes", [](RunEntry& r) { r.bytes += 8 * 64; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    Manifest bad = m;
    c.damage(bad.runs[1]);
    auto set = RunSet::Open(&env_, kDir, schema_, bad);
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(set.status().message(), HasSubstr(run2));
    EXPECT_THAT(set.status().message(), HasSubstr(c.field));
  }
  ASSERT_TRUE(env_.RemoveFile(run2).ok());
  auto set = RunSet::Open(&env_, kDir, schema_, m);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(set.status().message(), HasSubstr(run2));
  EXPECT_THAT(set.status().message(), HasSubstr("missing"));
}

TEST_F(RunSetTest, AManifestForAnotherEntrySizeIsInvalid) {
  Manifest m = ThreeRuns();
  m.entry_size += 1;
  auto set = RunSet::Open(&env_, kDir, schema_, m);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(ManifestPath(kDir)));
}

// Converting back to the default layout renames the only run to `data` before
// removing the manifest: in between, the manifest's run is `data`.
TEST_F(RunSetTest, TheOnlyRunMayHaveBecomeTheDataFile) {
  const Manifest m = Written({{{1, 1}, {2, 2}}});
  const std::string run = RunPath(kDir, m.runs[0].id);
  const std::string data = RunPath(kDir, kDataRunId);
  ASSERT_TRUE(
      env_.RenameFile(DataFile::FilterPath(run), DataFile::FilterPath(data))
          .ok());
  ASSERT_TRUE(env_.RenameFile(run, data).ok());
  auto set = Open(m);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->runs()[0]->path(), data);
  EXPECT_NE(set->runs()[0]->filter(), nullptr);
  EXPECT_EQ(Diff(*set, schema_, model_, Absent()), "");
  // Not with two runs listed: the other run is simply missing.
  model_.clear();
  std::vector<Batch> two = {{{1, 1}}, {{2, 2}}};
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs(kDir).ok());
  absl::StatusOr<Manifest> m2 = WriteRuns(&env, schema_, two, &model_);
  ASSERT_TRUE(m2.ok()) << m2.status();
  ASSERT_TRUE(env.RenameFile(RunPath(kDir, m2->runs[0].id), data).ok());
  auto missing = RunSet::Open(&env, kDir, schema_, *m2);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunSetTest, LoadReadsTheManifest) {
  auto none = RunSet::Load(&env_, kDir, schema_, 0, nullptr);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);

  const Manifest m = ThreeRuns();
  auto set = RunSet::Load(&env_, kDir, schema_, m.generation, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_NE(*set, nullptr);
  EXPECT_EQ((*set)->manifest(), m);
  EXPECT_EQ(Diff(**set, schema_, model_, Absent()), "");
  // Sharing the previous set's runs.
  auto again = RunSet::Load(&env_, kDir, schema_, m.generation, set->get());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->runs()[2], (*set)->runs()[2]);
  // A log newer than the manifest: the store was cleared since.
  auto cleared = RunSet::Load(&env_, kDir, schema_, m.generation + 1, nullptr);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  ASSERT_NE(*cleared, nullptr);
  EXPECT_TRUE((*cleared)->empty());
  EXPECT_EQ(Diff(**cleared, schema_, {}, Absent()), "");
  // A missing run of an unchanged manifest is damage.
  ASSERT_TRUE(env_.RemoveFile(RunPath(kDir, 1)).ok());
  auto damaged = RunSet::Load(&env_, kDir, schema_, m.generation, nullptr);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
}

// Plays the writer's commit in the middle of a reader's Load: the first time
// the reader opens `run`, a merge that folded it commits a new manifest and
// deletes it.
class CommitWhileLoading : public EnvWrapper {
 public:
  CommitWhileLoading(MemEnv* env, std::string run, Manifest next)
      : EnvWrapper(env), run_(std::move(run)), next_(std::move(next)) {}

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    if (path == run_ && !committed_) {
      committed_ = true;
      absl::Status st = WriteManifest(target(), kDir, next_);
      if (st.ok()) st = target()->RemoveFile(run_);
      if (!st.ok()) return st;
    }
    return EnvWrapper::OpenFile(path, mode);
  }
  bool committed() const { return committed_; }

 private:
  const std::string run_;
  const Manifest next_;
  bool committed_ = false;
};

TEST_F(RunSetTest, LoadFollowsAWriterThatMovesOnMeanwhile) {
  const Manifest m = ThreeRuns();  // runs 3, 2, 1
  // The writer folds runs 3 and 2 and a log into run 4: their newest
  // bindings (keys that are multiples of 2 or 3), then the log's.
  std::vector<std::string> entries;
  for (uint32_t k = 0; k < 30; ++k) {
    if (k % 2 == 0 || k % 3 == 0) entries.push_back(Key(k) + model_[Key(k)]);
  }
  Model next_model = model_;
  for (uint32_t k = 0; k < 40; k += 5) {
    entries.push_back(Key(k) + Value(900 + k));
    next_model[Key(k)] = Value(900 + k);
  }
  auto run4 =
      WriteTestRun(&env_, schema_, RunPath(kDir, 4), entries, m.generation + 1);
  ASSERT_TRUE(run4.ok()) << run4.status();
  MergeOutput out;
  out.generation = m.generation + 1;
  out.records = (*run4)->count();
  out.bytes = DescribeRun(&env_, **run4, 4, 1)->bytes;
  MergePlan plan;
  plan.fold = 2;
  plan.output_slot = m.runs[1].slot;
  const Manifest next = ManifestAfterMerge(m, plan, out);
  ASSERT_TRUE(CheckManifest(next, "next").ok()) << CheckManifest(next, "next");

  CommitWhileLoading env(&env_, RunPath(kDir, 2), next);
  auto set = RunSet::Load(&env, kDir, schema_, m.generation, nullptr);
  ASSERT_TRUE(env.committed());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->manifest(), next);
  EXPECT_EQ(Diff(**set, schema_, next_model, Absent()), "");
}

// Random runs over a small pool of keys (so that they overlap), with colliding
// hashes: finds and iteration agree with the newest binding of each key.
RC_GTEST_PROP(RunSetModel, FindsAndIterationAgreeWithTheNewestBindings, ()) {
  const bool mid = *rc::gen::arbitrary<bool>();
  const Schema s = mid ? MidSchema() : TinySchema();
  const uint32_t pool = mid ? *rc::gen::inRange<uint32_t>(1, 300)
                            : *rc::gen::inRange<uint32_t>(1, 40);
  const size_t runs = *rc::gen::inRange<size_t>(0, 6);
  const auto batches = *rc::gen::container<std::vector<Batch>>(
      runs, rc::gen::nonEmpty(test::GenSmallBatch(mid, pool)));
  MemEnv env;
  RC_ASSERT(env.CreateDirs(kDir).ok());
  Model model;
  const absl::StatusOr<Manifest> m = WriteRuns(&env, s, batches, &model);
  RC_ASSERT(m.ok());
  auto set = RunSet::Load(&env, kDir, s, m->generation, nullptr);
  RC_ASSERT(set.ok());
  RC_ASSERT(*set != nullptr);
  RC_ASSERT((*set)->runs().size() == runs);
  const std::vector<std::string> absent = {Key(pool), Key(pool + 1),
                                           Key(pool + 4096), Key(pool + 12288)};
  const std::string diff = Diff(**set, s, model, absent);
  RC_ASSERT(diff == "");
}

}  // namespace
}  // namespace kvindex
