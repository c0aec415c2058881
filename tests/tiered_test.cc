// The tiered layout (Layout::kTiered) end to end over a MemEnv: newest binding
// wins across the log and the runs, runs follow the binary counter, readers
// see one consistent set of runs, a crash at every write point of merges,
// clears and conversions keeps every binding flushed with fsync and invents
// none, and stores move between the two layouts.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/stats.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "runset/manifest.h"
#include "testing/hooks.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

constexpr char kRoot[] = "/store";
using Model = std::map<std::string, std::string>;

// 4-byte keys whose hash is their first byte: many keys per hash, so runs
// hold equal hashes next to each other and across fan-out buckets.
Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

Options TieredOptions(MemEnv* env, uint64_t log_size = 8) {
  Options o;
  o.env = env;
  o.log_size = log_size;
  o.lru_size = 0;
  o.layout = Layout::kTiered;
  return o;
}

Options SingleFileOptions(MemEnv* env, uint64_t log_size = 8) {
  Options o = TieredOptions(env, log_size);
  o.layout = Layout::kSingleFile;
  return o;
}

std::unique_ptr<RawIndex> OpenOrDie(const Options& options) {
  auto index = RawIndex::Open(kRoot, TestSchema(), options);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? *std::move(index) : nullptr;
}

std::optional<Manifest> ManifestOf(MemEnv* env) {
  auto m = ReadManifest(env, StoreDir(kRoot));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : std::nullopt;
}

// The value of `key`, or nullopt; fails the test on an error.
std::optional<std::string> FindValue(RawIndex* index, absl::string_view key) {
  std::string value(test::kSmallValueSize, '\0');
  auto found = index->Find(key, value.data());
  EXPECT_TRUE(found.ok()) << found.status();
  if (!found.ok() || !*found) return std::nullopt;
  return value;
}

// Every key of `model` is found with its value (each run's window right: no
// find needs a whole-run search), and iteration visits exactly the model's
// bindings, each key once.
void ExpectMatches(RawIndex* index, const Model& model) {
  const uint64_t whole_file_searches = GetStats().nb_find_whole_file;
  for (const auto& [key, value] : model) {
    const std::optional<std::string> found = FindValue(index, key);
    ASSERT_TRUE(found.has_value()) << "missing key " << absl::CEscape(key);
    EXPECT_EQ(*found, value) << "key " << absl::CEscape(key);
  }
  EXPECT_EQ(GetStats().nb_find_whole_file, whole_file_searches);
  Model seen;
  int visits = 0;
  ASSERT_OK(index->Iter([&](absl::string_view k, absl::string_view v) {
    ++visits;
    seen[std::string(k)] = std::string(v);
  }));
  EXPECT_EQ(visits, static_cast<int>(model.size())) << "a key visited twice";
  EXPECT_EQ(seen, model);
}

// Writes `count` bindings over `keys` distinct keys (so most overwrite an
// older binding in some run), recording them in `model`.
void WriteSome(RawIndex* index, Model* model, uint32_t first, uint32_t count,
               uint32_t keys) {
  for (uint32_t i = first; i < first + count; ++i) {
    const std::string key = test::SmallKey((i * 7919u) % keys);
    const std::string value = test::SmallValue(i);
    ASSERT_OK(index->Replace(key, value));
    (*model)[key] = value;
  }
}

TEST(TieredTest, NewestBindingWinsAcrossLogAndRuns) {
  MemEnv env;
  auto index = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(index, nullptr);
  Model model;
  for (uint32_t round = 0; round < 12; ++round) {
    WriteSome(index.get(), &model, round * 50, 50, 300);
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    ExpectMatches(index.get(), model);
  }
  // Bindings still in the log shadow the runs' older ones too.
  WriteSome(index.get(), &model, 5000, 5, 300);
  ExpectMatches(index.get(), model);
  // Several runs hold older values of the same keys.
  std::optional<Manifest> m = ManifestOf(&env);
  ASSERT_TRUE(m.has_value());
  EXPECT_GE(m->runs.size(), 2u);
  EXPECT_FALSE(env.FileExists(StorePath(kRoot, "data")).value());
  ASSERT_OK(index->Close());
  // And after a reopen.
  index = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(index, nullptr);
  ExpectMatches(index.get(), model);
}

TEST(TieredTest, RunsFollowTheBinaryCounter) {
  MemEnv env;
  constexpr uint32_t kLogSize = 40;
  auto index = OpenOrDie(TieredOptions(&env, kLogSize));
  ASSERT_NE(index, nullptr);
  Model model;
  // Distinct keys, one full log per merge: once the compactions are done
  // (AwaitMerge waits for them), after M merges the runs hold 2^k logs for
  // each binary digit k of M, newest (smallest) first.
  for (uint32_t merge = 1; merge <= 11; ++merge) {
    for (uint32_t i = 0; i < kLogSize; ++i) {
      const std::string key = test::SmallKey(merge * 100 + i);
      ASSERT_OK(index->Replace(key, test::SmallValue(merge)));
      model[key] = test::SmallValue(merge);
    }
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    std::optional<Manifest> m = ManifestOf(&env);
    ASSERT_TRUE(m.has_value());
    uint32_t slots = 0;
    uint64_t previous = 0;
    for (const RunEntry& run : m->runs) {
      EXPECT_EQ(run.records, uint64_t{kLogSize} << run.slot);
      EXPECT_GT(run.records, previous)
          << "runs are not newest (smallest) first";
      previous = run.records;
      slots |= 1u << run.slot;
    }
    EXPECT_EQ(slots, merge) << "after merge " << merge;
    // Only the live runs' files exist: the folded ones are gone, with their
    // key filters and checksum sidecars.
    for (const std::string& path : env.ListFiles()) {
      if (!absl::StrContains(path, "/run.")) continue;
      absl::string_view run_path = path;
      if (!absl::ConsumeSuffix(&run_path, ".filter")) {
        absl::ConsumeSuffix(&run_path, ".sum");
      }
      bool listed = false;
      for (const RunEntry& run : m->runs) {
        listed |= run_path == RunPath(StoreDir(kRoot), run.id);
      }
      EXPECT_TRUE(listed) << path << " is not a live run or one of its files";
    }
  }
  ExpectMatches(index.get(), model);
}

// A tiered store with logs of kLogSize entries, whose hooks each test fills
// (hooks_); merged_ is released at every kMergeAfter. Compactions run beside
// the writer: the first one can be held at kCompactionBefore.
class CompactionTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kLogSize = 8;

  void SetUp() override {
    Options options = TieredOptions(&env_, kLogSize);
    options.test_hook = [this](HookPoint p) {
      if (p == HookPoint::kMergeAfter) merged_.Release();
      return hooks_.Call(p);
    };
    index_ = OpenOrDie(options);
    ASSERT_NE(index_, nullptr);
  }

  // Writes `logs` full logs of new keys, merging after each and waiting for
  // that merge, and records them in model_.
  void WriteLogs(uint32_t logs) {
    for (uint32_t l = 0; l < logs; ++l) {
      for (uint32_t i = 0; i < kLogSize; ++i, ++next_key_) {
        const std::string key = test::SmallKey(next_key_);
        ASSERT_OK(index_->Replace(key, test::SmallValue(next_key_)));
        model_[key] = test::SmallValue(next_key_);
      }
      ASSERT_OK(index_->Merge());
      merged_.Acquire();
    }
  }

  // For a hook: holds the first compaction at kCompactionBefore, announcing it
  // through compaction_held_, until compaction_go_ is released.
  void HoldFirstCompaction(HookPoint p) {
    if (p == HookPoint::kCompactionBefore && compactions_++ == 0) {
      compaction_held_.Release();
      compaction_go_.Acquire();
    }
  }

  std::optional<Manifest> CurrentManifest() { return ManifestOf(&env_); }

  // Closes the index and opens the store again (no hooks).
  void Reopen() {
    ASSERT_OK(index_->Close());
    index_ = OpenOrDie(TieredOptions(&env_, kLogSize));
    ASSERT_NE(index_, nullptr);
  }

  MemEnv env_;
  test::HookSlot hooks_;
  test::Semaphore merged_, compaction_held_, compaction_go_;
  std::atomic<int> compactions_{0};
  Model model_;
  uint32_t next_key_ = 0;
  std::unique_ptr<RawIndex> index_;
};

// A compaction runs beside the writer: log merges go on committing runs in
// front of the runs it folds while it is held, and once it commits the runs
// are in shape and every binding is there.
TEST_F(CompactionTest, LogMergesDoNotWaitForACompaction) {
  test::ScopedHook hook(hooks_, [&](HookPoint p) {
    HoldFirstCompaction(p);
    return absl::OkStatus();
  });
  // Two logs: two runs of one log each, which the first compaction folds.
  WriteLogs(2);
  compaction_held_.Acquire();
  // Three more logs while it is held: three more runs, in front of its two.
  WriteLogs(3);
  std::optional<Manifest> m = CurrentManifest();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->runs.size(), 5u);
  ASSERT_OK_AND_ASSIGN(const bool merging, index_->IsMerging());
  EXPECT_TRUE(merging);  // the compaction
  ExpectMatches(index_.get(), model_);
  compaction_go_.Release();
  ASSERT_OK(index_->AwaitMerge());
  EXPECT_GE(compactions_.load(), 2);  // the held one, then the carries after
  m = CurrentManifest();
  ASSERT_TRUE(m.has_value());
  // Five logs: runs of 1 and 4 logs, newest (smallest) first.
  ASSERT_EQ(m->runs.size(), 2u);
  EXPECT_EQ(m->runs[0].records, kLogSize);
  EXPECT_EQ(m->runs[1].records, 4 * kLogSize);
  ExpectMatches(index_.get(), model_);
  Reopen();
  ExpectMatches(index_.get(), model_);
}

// A compaction that fails changes nothing: AwaitMerge reports it, the index
// goes on writing, and the next merge's compaction does the work.
TEST_F(CompactionTest, AFailedCompactionLeavesTheRunsAndIsRetried) {
  std::atomic<bool> fail{true};
  test::ScopedHook hook(hooks_, [&](HookPoint p) {
    if (p == HookPoint::kCompactionBefore && fail) {
      return absl::UnavailableError("compaction refused by the test");
    }
    return absl::OkStatus();
  });
  WriteLogs(2);
  EXPECT_THAT(index_->AwaitMerge(),
              test::StatusIs(absl::StatusCode::kUnavailable));
  std::optional<Manifest> m = CurrentManifest();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->runs.size(), 2u);
  ExpectMatches(index_.get(), model_);
  fail = false;
  WriteLogs(1);
  ASSERT_OK(index_->AwaitMerge());
  m = CurrentManifest();
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->runs.size(), 2u);  // 3 logs: runs of 1 and 2
  EXPECT_EQ(m->runs[0].records, kLogSize);
  EXPECT_EQ(m->runs[1].records, 2 * kLogSize);
  ExpectMatches(index_.get(), model_);
}

// A clear that comes while a compaction runs cancels it or waits for it:
// either way nothing cleared comes back, now or after a reopen, and only the
// manifest's files remain.
TEST_F(CompactionTest, ClearWhileACompactionRunsLeavesNothing) {
  test::ScopedHook hook(hooks_, [&](HookPoint p) {
    HoldFirstCompaction(p);
    if (p == HookPoint::kClearAbortSignalled) compaction_go_.Release();
    return absl::OkStatus();
  });
  WriteLogs(2);
  compaction_held_.Acquire();
  ASSERT_OK(index_->Clear());
  ExpectMatches(index_.get(), Model());
  ASSERT_OK(index_->AwaitMerge());
  ExpectMatches(index_.get(), Model());
  std::optional<Manifest> m = CurrentManifest();
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->runs.empty());
  for (const std::string& path : env_.ListFiles()) {
    EXPECT_FALSE(absl::StrContains(path, "/run.")) << path;
    EXPECT_FALSE(absl::EndsWith(path, "/compact")) << path;
  }
  Reopen();
  ExpectMatches(index_.get(), Model());
}

// Writes two logs of `log_size` new keys into `model`, merging each and
// waiting for `merged` (released at kMergeAfter) after each merge.
void WriteTwoMergedLogs(RawIndex* index, Model* model, uint32_t log_size,
                        test::Semaphore& merged) {
  for (uint32_t l = 0; l < 2; ++l) {
    WriteSome(index, model, l * log_size, log_size, 1000);
    ASSERT_OK(index->Merge());
    merged.Acquire();
  }
}

// What a store shows after a power loss that followed WriteTwoMergedLogs and
// more writes: nothing never written (`model`), and every key of the two
// merged logs (durable since their merges).
void ExpectWrittenAndMergedKept(const Model& recovered, const Model& model,
                                uint32_t log_size,
                                absl::string_view when = "after a power loss") {
  for (const auto& [key, value] : recovered) {
    auto it = model.find(key);
    EXPECT_TRUE(it != model.end() && it->second == value)
        << when << ": " << absl::CEscape(key) << " = " << absl::CEscape(value)
        << " was never written";
  }
  for (uint32_t i = 0; i < 2 * log_size; ++i) {
    const std::string key = test::SmallKey((i * 7919u) % 1000);
    EXPECT_EQ(recovered.count(key), 1u)
        << when << ": merged key " << absl::CEscape(key) << " lost";
  }
}

// A read-only instance's Sync succeeds and it shows what
// ExpectWrittenAndMergedKept allows.
void ExpectReaderSyncs(RawIndex* reader, const Model& model, uint32_t log_size,
                       absl::string_view when) {
  ASSERT_OK(reader->Sync());
  Model seen;
  ASSERT_OK(reader->Iter([&](absl::string_view k, absl::string_view v) {
    seen[std::string(k)] = std::string(v);
  }));
  ExpectWrittenAndMergedKept(seen, model, log_size, when);
}

// Which of a tiered store's two background commits fails first.
enum class FirstToFail { kCompaction, kLogMerge };

// A compaction (folding two runs) and a log merge (of a third log) run side
// by side; the one `first` names goes on first with the operations of
// `failing_ops` failing after `first_skip` good ones, then the other with them
// failing after `second_skip`. Once the first failed past its manifest's
// rename (the writer stops), the runs the second would commit against are the
// manifest before the one on disk, whose uncommitted output is the run the new
// one names: the second must commit nothing. Whatever fails, the store then
// reopens with every binding.
void RunTwoFailingCommits(FirstToFail first, uint32_t failing_ops,
                          uint64_t first_skip, uint64_t second_skip) {
  constexpr uint32_t kLogSize = 8;
  SCOPED_TRACE(absl::StrCat(
      first == FirstToFail::kCompaction ? "compaction" : "log merge",
      " first, operations ", failing_ops, " failing after ", first_skip,
      " good ones, then ", second_skip));
  MemEnv env;
  test::Semaphore compaction_held, compaction_go, compaction_ended, merge_held,
      merge_go, merge_ended, merged;
  std::atomic<int> compactions{0};
  std::atomic<bool> hold_merge{false}, in_held_merge{false};
  Options o = TieredOptions(&env, kLogSize);
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kCompactionBefore && compactions++ == 0) {
      compaction_held.Release();
      compaction_go.Acquire();
    }
    if (p == HookPoint::kCompactionEnded && compactions == 1) {
      compaction_ended.Release();
    }
    if (p == HookPoint::kMergeBefore && hold_merge.exchange(false)) {
      merge_held.Release();
      merge_go.Acquire();
      in_held_merge = true;
    }
    if (p == HookPoint::kMergeEnded && in_held_merge.exchange(false)) {
      merge_ended.Release();
    }
    if (p == HookPoint::kMergeAfter) merged.Release();
    return absl::OkStatus();
  };
  auto index = OpenOrDie(o);
  ASSERT_NE(index, nullptr);
  Model model;
  // Two logs: two runs, which the first compaction folds (held).
  WriteTwoMergedLogs(index.get(), &model, kLogSize, merged);
  compaction_held.Acquire();
  // A third log, whose merge is held before it starts its output.
  WriteSome(index.get(), &model, 2 * kLogSize, kLogSize, 1000);
  hold_merge = true;
  ASSERT_OK(index->Merge());
  merge_held.Acquire();
  // A reader follows the store between the failures (it syncs while none
  // is injected: its own reads would fail too).
  Options ro = TieredOptions(&env, kLogSize);
  ro.readonly = true;
  auto reader = OpenOrDie(ro);
  ASSERT_NE(reader, nullptr);
  const auto fail_after = [&](uint64_t skip) {
    env.ClearInjectedErrors();
    env.InjectError(failing_ops, skip, -1, absl::InternalError("injected EIO"));
  };
  if (first == FirstToFail::kCompaction) {
    fail_after(first_skip);
    compaction_go.Release();
    compaction_ended.Acquire();
    env.ClearInjectedErrors();
    ExpectReaderSyncs(reader.get(), model, kLogSize, "reader, first commit");
    fail_after(second_skip);
    merge_go.Release();
  } else {
    fail_after(first_skip);
    merge_go.Release();
    merge_ended.Acquire();
    env.ClearInjectedErrors();
    ExpectReaderSyncs(reader.get(), model, kLogSize, "reader, first commit");
    fail_after(second_skip);
    compaction_go.Release();
  }
  (void)index->AwaitMerge();
  env.ClearInjectedErrors();
  ExpectReaderSyncs(reader.get(), model, kLogSize, "reader, second commit");
  (void)index->Close();
  // No merge or compaction left its output behind: committed (renamed), or
  // removed when it failed, was refused or was cancelled by the close.
  for (const std::string& path : env.ListFiles()) {
    EXPECT_FALSE(absl::EndsWith(path, "/merge") ||
                 absl::EndsWith(path, "/compact"))
        << path << " left behind";
  }
  ExpectReaderSyncs(reader.get(), model, kLogSize, "reader, writer closed");
  ASSERT_OK(reader->Close());
  index.reset();
  env.ClearInjectedErrors();
  {
    auto reopened = RawIndex::Open(kRoot, TestSchema(), TieredOptions(&env));
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    ExpectMatches(reopened->get(), model);
  }
  // Then a power loss, on a file system that writes a directory back in any
  // order: the store still opens, keeps the two logs merged before anything
  // failed (their runs and manifest were durable) and invents nothing.
  CrashOptions crash;
  crash.seed = first_skip * 31 + second_skip;
  crash.dir_ops_in_any_order = true;
  env.Restart(crash);
  auto recovered = RawIndex::Open(kRoot, TestSchema(), TieredOptions(&env));
  ASSERT_TRUE(recovered.ok()) << "after a power loss: " << recovered.status();
  Model seen;
  ASSERT_OK((*recovered)->Iter([&](absl::string_view k, absl::string_view v) {
    seen[std::string(k)] = std::string(v);
  }));
  ExpectWrittenAndMergedKept(seen, model, kLogSize);
}

// What fails in RunTwoFailingCommits: directory fsyncs (the one failure past a
// manifest's rename that needs no read), file fsyncs, renames, writes, reads.
constexpr uint32_t kFailingOps[] = {kOpSyncDir, kOpSync, kOpRename, kOpWrite,
                                    kOpRead};

TEST(TieredTest, ALogMergeCommitsNothingAfterACompactionStoppedTheWriter) {
  for (uint64_t first_skip = 0; first_skip < 12; ++first_skip) {
    for (uint64_t second_skip = 0; second_skip < 12; ++second_skip) {
      for (const uint32_t ops : kFailingOps) {
        RunTwoFailingCommits(FirstToFail::kCompaction, ops, first_skip,
                             second_skip);
      }
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(TieredTest, ACompactionCommitsNothingAfterALogMergeStoppedTheWriter) {
  for (uint64_t first_skip = 0; first_skip < 12; ++first_skip) {
    for (uint64_t second_skip = 0; second_skip < 12; ++second_skip) {
      for (const uint32_t ops : kFailingOps) {
        RunTwoFailingCommits(FirstToFail::kLogMerge, ops, first_skip,
                             second_skip);
      }
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// A clear comes while a log merge is held (and in the tiered layout a
// compaction too), and cancels them, with the operations of `failing_ops`
// failing after `skip` good ones from then on. A clear that returns OK leaves
// an empty store; one that fails leaves, once reopened, either every binding
// or none.
void RunFailingClearOverBackgroundWork(Layout layout, uint32_t failing_ops,
                                       uint64_t skip) {
  constexpr uint32_t kLogSize = 8;
  const bool tiered = layout == Layout::kTiered;
  SCOPED_TRACE(absl::StrCat(tiered ? "tiered" : "single file", ": operations ",
                            failing_ops, " failing after ", skip,
                            " good ones"));
  MemEnv env;
  test::Semaphore compaction_held, merge_held, merged;
  absl::Notification go;
  std::atomic<bool> went{false};
  const auto let_go = [&] {
    if (!went.exchange(true)) go.Notify();
  };
  std::atomic<int> compactions{0};
  std::atomic<bool> hold_merge{false};
  Options o = tiered ? TieredOptions(&env, kLogSize)
                     : SingleFileOptions(&env, kLogSize);
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kCompactionBefore && compactions++ == 0) {
      compaction_held.Release();
      go.WaitForNotification();
    }
    if (p == HookPoint::kMergeBefore && hold_merge.exchange(false)) {
      merge_held.Release();
      go.WaitForNotification();
    }
    if (p == HookPoint::kClearAbortSignalled) let_go();
    if (p == HookPoint::kMergeAfter) merged.Release();
    return absl::OkStatus();
  };
  auto index = OpenOrDie(o);
  ASSERT_NE(index, nullptr);
  Model model;
  WriteTwoMergedLogs(index.get(), &model, kLogSize, merged);
  if (tiered) compaction_held.Acquire();
  WriteSome(index.get(), &model, 2 * kLogSize, kLogSize, 1000);
  hold_merge = true;
  ASSERT_OK(index->Merge());
  merge_held.Acquire();
  env.InjectError(failing_ops, skip, -1, absl::InternalError("injected EIO"));
  const absl::Status cleared = index->Clear();
  let_go();  // if the clear failed before it signalled
  (void)index->AwaitMerge();
  (void)index->Close();
  index.reset();
  env.ClearInjectedErrors();
  o.test_hook = nullptr;
  const auto bindings = [&](const char* when) -> std::optional<Model> {
    auto reopened = RawIndex::Open(kRoot, TestSchema(), o);
    EXPECT_TRUE(reopened.ok())
        << when << ": clear: " << cleared << "; reopen: " << reopened.status();
    if (!reopened.ok()) return std::nullopt;
    Model seen;
    EXPECT_OK((*reopened)->Iter([&](absl::string_view k, absl::string_view v) {
      seen[std::string(k)] = std::string(v);
    }));
    return seen;
  };
  const std::optional<Model> seen = bindings("reopened");
  ASSERT_TRUE(seen.has_value());
  if (cleared.ok()) {
    EXPECT_TRUE(seen->empty()) << seen->size() << " bindings after a clear";
  } else {
    EXPECT_TRUE(seen->empty() || *seen == model)
        << "after a failed clear (" << cleared << "): " << seen->size()
        << " bindings of " << model.size();
  }
  // Then a power loss (directory operations written back in any order): a
  // clear the reopen showed done stays done; one it showed not done stays
  // undone: the two logs merged before (durable) and perhaps some of the
  // third, never a binding that was not written.
  CrashOptions crash;
  crash.seed = skip;
  crash.dir_ops_in_any_order = true;
  env.Restart(crash);
  const std::optional<Model> recovered = bindings("after a power loss");
  ASSERT_TRUE(recovered.has_value());
  if (seen->empty()) {
    EXPECT_TRUE(recovered->empty())
        << recovered->size() << " bindings after a clear and a power loss";
    return;
  }
  ExpectWrittenAndMergedKept(*recovered, model, kLogSize);
}

TEST(TieredTest, AFailingClearOverBackgroundWorkIsAllOrNothing) {
  for (const Layout layout : {Layout::kTiered, Layout::kSingleFile}) {
    for (const uint32_t ops : kFailingOps) {
      for (uint64_t skip = 0; skip < 24; ++skip) {
        RunFailingClearOverBackgroundWork(layout, ops, skip);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

// What the power cut in MakeStoreToRepair interrupts.
enum class Interrupted { kMerge, kClear };

// A store in `layout` that an open has to repair: two merged logs (in the
// tiered layout, two runs) and a third log flushed with fsync, then the power
// lost either while that log's merge was held at its start with more writes
// in log_async, also flushed with fsync, or in a clear right after its commit
// point (its new log in place, its marker left). `model` is what the store
// holds once repaired: every binding (all durable), or none after the clear.
void MakeStoreToRepair(MemEnv* env, Layout layout, Interrupted interrupted,
                       Model* model) {
  constexpr uint32_t kLogSize = 8;
  test::Semaphore merged, merge_held;
  absl::Notification go;
  std::atomic<bool> hold_merge{false};
  Options o = layout == Layout::kTiered ? TieredOptions(env, kLogSize)
                                        : SingleFileOptions(env, kLogSize);
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore && hold_merge.exchange(false)) {
      merge_held.Release();
      go.WaitForNotification();
    }
    if (p == HookPoint::kMergeAfter) merged.Release();
    if (p == HookPoint::kClearIo) env->CrashAfter(0);
    return absl::OkStatus();
  };
  auto index = OpenOrDie(o);
  ASSERT_NE(index, nullptr);
  FlushOptions fsync;
  fsync.with_fsync = true;
  WriteTwoMergedLogs(index.get(), model, kLogSize, merged);
  ASSERT_OK(index->AwaitMerge());  // and the compaction it started
  WriteSome(index.get(), model, 2 * kLogSize, kLogSize - 1, 1000);
  ASSERT_OK(index->Flush(fsync));
  if (interrupted == Interrupted::kClear) {
    EXPECT_FALSE(index->Clear().ok());  // the power lost inside
    index.reset();
    env->Restart(CrashOptions());
    ASSERT_TRUE(env->FileExists(StorePath(kRoot, "clear")).value())
        << "the case needs the cut clear's marker";
    model->clear();
    return;
  }
  hold_merge = true;
  ASSERT_OK(index->Merge());
  merge_held.Acquire();
  WriteSome(index.get(), model, 3 * kLogSize, 3, 1000);  // to log_async
  ASSERT_OK(index->Flush(fsync));
  env->Restart(CrashOptions());
  go.Notify();
  index.reset();  // its files are dead: closing fails quietly
}

// An open that fails anywhere (any kind of operation failing after any number
// of good ones), reopening the layout the store was written in or converting
// it, leaves a store that the next open accepts with what the store held,
// also after a power loss that follows the failed open.
TEST(TieredTest, AnOpenFailingAnywhereLeavesAStoreTheNextOpenAccepts) {
  for (const Interrupted interrupted :
       {Interrupted::kMerge, Interrupted::kClear}) {
    for (const Layout written : {Layout::kTiered, Layout::kSingleFile}) {
      for (const Layout opened : {Layout::kTiered, Layout::kSingleFile}) {
        for (const uint32_t ops : kFailingOps) {
          for (uint64_t skip = 0; skip < 40; ++skip) {
            SCOPED_TRACE(absl::StrCat(
                interrupted == Interrupted::kMerge ? "merge" : "clear",
                " interrupted, ",
                written == Layout::kTiered ? "tiered" : "single file",
                " store opened ",
                opened == Layout::kTiered ? "tiered" : "single file",
                ", operations ", ops, " failing after ", skip, " good ones"));
            MemEnv env;
            Model model;
            MakeStoreToRepair(&env, written, interrupted, &model);
            if (::testing::Test::HasFailure()) return;
            Options o = opened == Layout::kTiered ? TieredOptions(&env)
                                                  : SingleFileOptions(&env);
            env.InjectError(ops, skip, -1, absl::InternalError("injected EIO"));
            {
              auto failing = RawIndex::Open(kRoot, TestSchema(), o);
              if (failing.ok()) (void)(*failing)->Close();
            }
            env.ClearInjectedErrors();
            CrashOptions crash;
            crash.seed = skip;
            crash.dir_ops_in_any_order = true;
            env.Restart(crash);
            auto index = RawIndex::Open(kRoot, TestSchema(), o);
            ASSERT_TRUE(index.ok()) << index.status();
            ExpectMatches(index->get(), model);
            if (::testing::Test::HasFailure()) return;
          }
        }
      }
    }
  }
}

TEST(TieredTest, FilterCompactsIntoOneRunAndNothingOlderResurfaces) {
  MemEnv env;
  auto index = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(index, nullptr);
  Model model;
  for (uint32_t round = 0; round < 6; ++round) {
    WriteSome(index.get(), &model, round * 40, 40, 100);
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
  }
  // Drop every binding whose newest value is odd: older even values of the
  // same keys in older runs must not come back.
  ASSERT_OK(index->Filter([](absl::string_view, absl::string_view value) {
    return (static_cast<unsigned char>(value[0]) & 1) == 0;
  }));
  for (auto it = model.begin(); it != model.end();) {
    if (static_cast<unsigned char>(it->second[0]) & 1) {
      ASSERT_FALSE(FindValue(index.get(), it->first).has_value())
          << absl::CEscape(it->first);
      it = model.erase(it);
    } else {
      ++it;
    }
  }
  ExpectMatches(index.get(), model);
  std::optional<Manifest> m = ManifestOf(&env);
  ASSERT_TRUE(m.has_value());
  EXPECT_LE(m->runs.size(), 1u);
}

TEST(TieredTest, ClearRemovesEveryRun) {
  MemEnv env;
  auto index = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(index, nullptr);
  Model model;
  WriteSome(index.get(), &model, 0, 100, 100);
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  ASSERT_OK(index->Clear());
  ExpectMatches(index.get(), {});
  std::optional<Manifest> m = ManifestOf(&env);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->runs.empty());
  for (const std::string& path : env.ListFiles()) {
    EXPECT_FALSE(absl::StrContains(path, "/run.")) << path;
  }
  Model after;
  WriteSome(index.get(), &after, 200, 30, 50);
  ASSERT_OK(index->Close());
  index = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(index, nullptr);
  ExpectMatches(index.get(), after);
}

TEST(TieredTest, ConvertsFromAndBackToOneDataFile) {
  MemEnv env;
  Model model;
  {
    auto single = OpenOrDie(SingleFileOptions(&env));
    ASSERT_NE(single, nullptr);
    WriteSome(single.get(), &model, 0, 100, 80);
    ASSERT_OK(single->Merge());
    ASSERT_OK(single->AwaitMerge());
    WriteSome(single.get(), &model, 100, 3, 80);
    ASSERT_OK(single->Close());
  }
  {
    // The data file becomes the oldest run.
    auto tiered = OpenOrDie(TieredOptions(&env));
    ASSERT_NE(tiered, nullptr);
    std::optional<Manifest> m = ManifestOf(&env);
    ASSERT_TRUE(m.has_value());
    ASSERT_EQ(m->runs.size(), 1u);
    EXPECT_EQ(m->runs[0].id, kDataRunId);
    ExpectMatches(tiered.get(), model);
    for (uint32_t round = 0; round < 5; ++round) {
      WriteSome(tiered.get(), &model, 200 + round * 30, 30, 120);
      ASSERT_OK(tiered->Merge());
      ASSERT_OK(tiered->AwaitMerge());
    }
    ExpectMatches(tiered.get(), model);
    ASSERT_OK(tiered->Close());
  }
  {
    // Back to one data file: no manifest, no run, a data file of the log's
    // generation holding everything.
    auto single = OpenOrDie(SingleFileOptions(&env));
    ASSERT_NE(single, nullptr);
    ExpectMatches(single.get(), model);
    EXPECT_FALSE(ManifestOf(&env).has_value());
    for (const std::string& path : env.ListFiles()) {
      EXPECT_FALSE(absl::StrContains(path, "/run.")) << path;
    }
    ASSERT_OK(single->Close());
  }
  auto data = IndexFile::OpenReadOnly(&env, StorePath(kRoot, "data"),
                                      TestSchema().entry_size());
  ASSERT_OK(data);
  ASSERT_NE(*data, nullptr);
  auto log = IndexFile::OpenReadOnly(&env, StorePath(kRoot, "log"),
                                     TestSchema().entry_size());
  ASSERT_OK(log);
  ASSERT_NE(*log, nullptr);
  EXPECT_EQ((*data)->generation(), (*log)->generation());
  EXPECT_EQ((*data)->offset() / TestSchema().entry_size(), model.size());
  // A reopen in the single-file layout changes nothing.
  auto again = OpenOrDie(SingleFileOptions(&env));
  ASSERT_NE(again, nullptr);
  ExpectMatches(again.get(), model);
}

TEST(TieredTest, ReadersSeeTheWritersFlushedBindingsAcrossMerges) {
  MemEnv env;
  auto writer = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(writer, nullptr);
  Options ro = TieredOptions(&env);
  ro.readonly = true;
  auto reader = OpenOrDie(ro);
  ASSERT_NE(reader, nullptr);
  // A reader opened with the other layout option reads the tiered store too.
  Options ro_single = ro;
  ro_single.layout = Layout::kSingleFile;
  auto other_reader = OpenOrDie(ro_single);
  ASSERT_NE(other_reader, nullptr);
  Model model;
  for (uint32_t round = 0; round < 10; ++round) {
    WriteSome(writer.get(), &model, round * 37, 37, 150);
    if (round % 3 == 2) {
      ASSERT_OK(writer->Merge());
      ASSERT_OK(writer->AwaitMerge());
    }
    ASSERT_OK(writer->Flush());
    ASSERT_OK(reader->Sync());
    ExpectMatches(reader.get(), model);
    ASSERT_OK(other_reader->Sync());
    ExpectMatches(other_reader.get(), model);
  }
  ASSERT_OK(writer->Clear());
  ASSERT_OK(reader->Sync());
  ExpectMatches(reader.get(), {});
}

// What a store opened after a crash must show: every binding flushed with
// fsync before the crash point, possibly newer ones written after it, and
// nothing that was never written.
struct History {
  Model durable;  // as of the last fsync
  std::map<std::string, std::vector<std::string>> written;  // every value
  // Keys a Filter cut by the crash may have dropped (whether it committed is
  // not known): their newest value when it started failed its predicate.
  std::map<std::string, bool> droppable;
};

void ExpectRecovered(RawIndex* index, const History& history) {
  Model seen;
  ASSERT_OK(index->Iter([&](absl::string_view k, absl::string_view v) {
    EXPECT_EQ(seen.count(std::string(k)), 0u) << "visited twice";
    seen[std::string(k)] = std::string(v);
  }));
  for (const auto& [key, value] : seen) {
    auto it = history.written.find(key);
    ASSERT_NE(it, history.written.end())
        << "key never written: " << absl::CEscape(key);
    bool known = false;
    for (const std::string& v : it->second) known |= v == value;
    EXPECT_TRUE(known) << "value never written for " << absl::CEscape(key);
  }
  for (const auto& [key, value] : history.durable) {
    auto it = seen.find(key);
    if (it == seen.end() && history.droppable.count(key) > 0) continue;
    ASSERT_NE(it, seen.end()) << "durable key lost: " << absl::CEscape(key);
    // A newer value written after the fsync may have survived too; the fsynced
    // one or a later one, never an older one.
    const std::vector<std::string>& values = history.written.at(key);
    size_t durable_at = 0, seen_at = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i] == value) durable_at = i;
      if (values[i] == it->second) seen_at = i;
    }
    EXPECT_GE(seen_at, durable_at) << "older value of " << absl::CEscape(key);
  }
}

// The workload cut by the crash: tiered merges, a clear and a filter, with
// fsynced flushes in between (values are unique per write, so the history
// tells which write a value came from).
void CrashWorkload(MemEnv* env, History* history, bool convert_back) {
  auto index = RawIndex::Open(kRoot, TestSchema(), TieredOptions(env));
  if (!index.ok()) return;
  uint32_t next = 1000;
  auto write = [&](uint32_t count, uint32_t keys) -> bool {
    Model pending;
    for (uint32_t i = 0; i < count; ++i, ++next) {
      const std::string key = test::SmallKey((next * 31u) % keys);
      const std::string value = test::SmallValue(next);
      history->written[key].push_back(value);
      pending[key] = value;
      if (!(*index)->Replace(key, value).ok()) return false;
    }
    FlushOptions fsync;
    fsync.with_fsync = true;
    if (!(*index)->Flush(fsync).ok()) return false;
    for (const auto& [key, value] : pending) history->durable[key] = value;
    return true;
  };
  for (int round = 0; round < 4; ++round) {
    if (!write(20, 60)) return;
    if (!(*index)->Merge().ok() || !(*index)->AwaitMerge().ok()) return;
  }
  for (const auto& [key, values] : history->written) {
    if (static_cast<unsigned char>(values.back()[0]) % 3 == 0) {
      history->droppable[key] = true;
    }
  }
  if (!(*index)
           ->Filter([](absl::string_view, absl::string_view v) {
             return (static_cast<unsigned char>(v[0]) % 3) != 0;
           })
           .ok()) {
    return;
  }
  // Filter drops bindings: what it dropped is no longer owed.
  for (auto it = history->durable.begin(); it != history->durable.end();) {
    if (static_cast<unsigned char>(it->second[0]) % 3 == 0) {
      it = history->durable.erase(it);
    } else {
      ++it;
    }
  }
  history->droppable.clear();
  if (!write(15, 60)) return;
  if (!(*index)->Merge().ok() || !(*index)->AwaitMerge().ok()) return;
  // A clear while a merge runs: until it returns, any key may be gone.
  if (!write(12, 60)) return;
  for (const auto& [key, value] : history->durable) {
    history->droppable[key] = true;
  }
  if (!(*index)->Merge().ok() || !(*index)->Clear().ok()) return;
  history->durable.clear();
  history->droppable.clear();
  if (!write(10, 60)) return;
  if (!(*index)->Merge().ok() || !(*index)->AwaitMerge().ok()) return;
  if (!(*index)->Close().ok()) return;
  if (convert_back) {
    auto single = RawIndex::Open(kRoot, TestSchema(), SingleFileOptions(env));
    if (!single.ok()) return;
    (void)(*single)->Close();
  }
}

void RunCrashCase(uint64_t crash_after, uint64_t seed, bool convert_back,
                  bool* reached_end) {
  MemEnv env;
  History history;
  env.CrashAfter(crash_after);
  CrashWorkload(&env, &history, convert_back);
  *reached_end = !env.crashed();
  CrashOptions crash;
  crash.seed = seed;
  // Every other crash point on a file system that orders no directory
  // operations (a manifest, a run or a log renamed without its predecessors).
  crash.dir_ops_in_any_order = crash_after % 2 == 1;
  env.Restart(crash);
  // Recovery, in either layout, then a look at what survived.
  for (bool tiered : {true, false}) {
    Options o = tiered ? TieredOptions(&env) : SingleFileOptions(&env);
    auto index = RawIndex::Open(kRoot, TestSchema(), o);
    ASSERT_TRUE(index.ok())
        << "crash after " << crash_after << " seed " << seed
        << (crash.dir_ops_in_any_order ? " directory operations in any order"
                                       : "")
        << ": " << index.status();
    ExpectRecovered(index->get(), history);
    ASSERT_OK((*index)->Close());
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "crash after " << crash_after << " seed " << seed
                    << (crash.dir_ops_in_any_order
                            ? " directory operations in any order"
                            : "")
                    << (tiered ? " reopened tiered" : " reopened single-file");
      return;
    }
  }
}

TEST(TieredTest, CrashAtEveryWritePointKeepsDurableAndInventsNothing) {
  for (bool convert_back : {false, true}) {
    bool reached_end = false;
    for (uint64_t n = 0; !reached_end && n < 5000; ++n) {
      RunCrashCase(n, /*seed=*/n * 7 + 1, convert_back, &reached_end);
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_TRUE(reached_end) << "the workload never ran to its end";
  }
}

// A clear that cancels a merge and loses power right after its commit point
// (the log reset) leaves the merge's log_async and the old manifest behind:
// the reopened store is empty, and the writes that went to log_async during
// the merge stay cleared.
TEST(TieredTest, ClearCutAfterItsCommitPointKeepsTheMergesWritesCleared) {
  MemEnv env;
  absl::Notification merge_held, clear_signalled;
  std::atomic<bool> hold_merge{false};
  Options o = TieredOptions(&env, /*log_size=*/1000);
  o.test_hook = [&](HookPoint point) {
    if (point == HookPoint::kMergeBefore && hold_merge.exchange(false)) {
      merge_held.Notify();
      clear_signalled.WaitForNotification();
    }
    if (point == HookPoint::kClearAbortSignalled) clear_signalled.Notify();
    if (point == HookPoint::kClearIo) env.CrashAfter(0);
    return absl::OkStatus();
  };
  auto index = OpenOrDie(o);
  ASSERT_NE(index, nullptr);
  FlushOptions fsync;
  fsync.with_fsync = true;
  ASSERT_OK(index->Replace(test::SmallKey(1), test::SmallValue(1)));
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  ASSERT_OK(index->Replace(test::SmallKey(2), test::SmallValue(2)));
  hold_merge = true;
  ASSERT_OK(index->Merge());
  merge_held.WaitForNotification();
  // The merge froze the log: this write goes to log_async.
  ASSERT_OK(index->Replace(test::SmallKey(3), test::SmallValue(3)));
  ASSERT_OK(index->Flush(fsync));
  EXPECT_FALSE(index->Clear().ok());  // power lost inside the clear
  index.reset();
  env.Restart(CrashOptions());
  ASSERT_TRUE(env.FileExists(StorePath(kRoot, "log_async")).value())
      << "the case needs the cancelled merge's log_async";
  auto reopened = OpenOrDie(TieredOptions(&env));
  ASSERT_NE(reopened, nullptr);
  ExpectMatches(reopened.get(), {});
}

// A crash at the end of a merge commit (log reset, the writes made during the
// merge copied into it, log_async not yet deleted): the older records that
// log_async's file kept must not override the newer copies in the log (the
// same case as raw_index_test's, in the tiered layout).
TEST(TieredTest, CrashAtMergeEndNeverReplaysOlderLogAsyncValues) {
  const std::string a = test::SmallKey(1), b = test::SmallKey(2);
  const std::string v0 = test::SmallValue(0), v1 = test::SmallValue(1),
                    v2 = test::SmallValue(2);
  FlushOptions fsync;
  fsync.with_fsync = true;
  for (uint64_t crash_at = 0;; ++crash_at) {
    MemEnv env;
    absl::Notification release;
    std::atomic<bool> hold{true};
    Options o = TieredOptions(&env, /*log_size=*/100);
    o.test_hook = [&](HookPoint p) {
      if (p == HookPoint::kMergeBefore && hold.exchange(false)) {
        release.WaitForNotification();
      }
      return absl::OkStatus();
    };
    {
      auto w = OpenOrDie(o);
      ASSERT_NE(w, nullptr);
      ASSERT_OK(w->Replace(a, v0));
      ASSERT_OK(w->Replace(b, v0));
      ASSERT_OK(w->Merge());  // held in kMergeBefore
      ASSERT_OK(w->Replace(b, v1));
      ASSERT_OK(w->Flush(fsync));    // log_async's file: b=v1
      ASSERT_OK(w->Replace(b, v2));  // buffered only
      ASSERT_OK(w->Replace(a, v2));
      env.CrashAfter(crash_at);
      release.Notify();
      (void)w->AwaitMerge();
      (void)w->Close();
    }
    const bool crashed = env.crashed();
    env.Restart(CrashOptions{crash_at, /*keep_unsynced_prefix=*/false, true});
    o.test_hook = nullptr;
    auto r = OpenOrDie(o);
    ASSERT_NE(r, nullptr) << "crash at " << crash_at;
    const std::optional<std::string> va = FindValue(r.get(), a);
    const std::optional<std::string> vb = FindValue(r.get(), b);
    // Written in this order: b=v1 (durable), b=v2, a=v2.
    if (va == v2) {
      EXPECT_EQ(vb, v2) << "crash at " << crash_at;
    } else {
      EXPECT_EQ(va, v0) << "crash at " << crash_at;
      EXPECT_TRUE(vb == v1 || vb == v2) << "crash at " << crash_at;
    }
    if (!crashed) break;
  }
}

TEST(TieredTest, DamagedManifestIsDataLossNamingIt) {
  MemEnv env;
  {
    auto index = OpenOrDie(TieredOptions(&env));
    ASSERT_NE(index, nullptr);
    Model model;
    WriteSome(index.get(), &model, 0, 40, 40);
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    ASSERT_OK(index->Close());
  }
  const std::string path = ManifestPath(StoreDir(kRoot));
  auto bytes = env.Contents(path);
  ASSERT_OK(bytes);
  std::string damaged = *bytes;
  damaged[damaged.size() / 2] ^= 0x10;
  env.SetContents(path, damaged);
  for (bool readonly : {false, true}) {
    Options o = TieredOptions(&env);
    o.readonly = readonly;
    auto index = RawIndex::Open(kRoot, TestSchema(), o);
    EXPECT_THAT(index.status(), test::StatusIs(absl::StatusCode::kDataLoss,
                                               ::testing::HasSubstr(path)));
  }
}

}  // namespace
}  // namespace kvindex
