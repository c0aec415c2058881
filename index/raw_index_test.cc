#include "index/raw_index.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "data/schema.h"
#include "filter/key_filter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/stats.h"
#include "io/env.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "runset/manifest.h"
#include "testing/keys.h"
#include "testing/status.h"

namespace kvindex {
namespace {

using test::StatusIs;
using ::testing::HasSubstr;

constexpr char kRoot[] = "/store";

// 8-byte keys, 4-byte values; the hash is the key's first byte, so that many
// keys share a hash (the interesting case for merges and searches).
Schema TestSchema() { return test::MakeSchema(8, 4, 8, &test::FirstByteHash); }
std::string Key(int i) {
  std::string k = absl::StrCat("k", i);
  k.resize(8, '.');
  k[0] = static_cast<char>('a' + i % 7);
  return k;
}
std::string Value(int i) {
  std::string v = absl::StrCat(i);
  v.resize(4, '_');
  return v.substr(0, 4);
}

// A File that forwards every call to `base`: tests override what they watch.
class ForwardingFile : public File {
 public:
  explicit ForwardingFile(std::unique_ptr<File> base)
      : base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  absl::Status PRead(uint64_t offset, size_t n, char* dst,
                     size_t* bytes_read) const override {
    return base_->PRead(offset, n, dst, bytes_read);
  }
  absl::Status PWrite(uint64_t offset, absl::string_view data) override {
    return base_->PWrite(offset, data);
  }
  absl::Status Sync() override { return base_->Sync(); }
  absl::Status Allocate(uint64_t end) override { return base_->Allocate(end); }
  absl::StatusOr<uint64_t> Size() const override { return base_->Size(); }
  absl::StatusOr<FileId> Id() const override { return base_->Id(); }
  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t size) const override {
    return base_->Map(size);
  }

 protected:
  File& base() { return *base_; }

 private:
  std::unique_ptr<File> base_;
};

// Delays the release of chosen files' mappings (a data file or run keeps
// only its mapping open): Arm() picks the files open now on one path; the
// first of their mappings released after that notifies closing() and blocks
// until Release(), 30 s at most, so that a bug fails the test instead of
// hanging it. Stands for the last unmapping of an unlinked file of gigabytes,
// which the kernel takes seconds to free.
class SlowCloseEnv : public EnvWrapper {
 public:
  SlowCloseEnv(Env* base, std::string path)
      : EnvWrapper(base), path_(std::move(path)) {}

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    auto file = target()->OpenFile(path, mode);
    if (!file.ok() || path != path_) return file;
    absl::MutexLock lock(&mu_);
    return std::unique_ptr<File>(
        new SlowFile(*std::move(file), this, next_serial_++));
  }

  void Arm() {
    absl::MutexLock lock(&mu_);
    armed_below_ = next_serial_;
  }
  absl::Notification& closing() { return closing_; }
  void Release() { release_.Notify(); }
  // The thread that released the slow mapping.
  std::thread::id closed_on() {
    absl::MutexLock lock(&mu_);
    return closed_on_;
  }

 private:
  class SlowRegion : public MappedRegion {
   public:
    SlowRegion(std::shared_ptr<const MappedRegion> base, SlowCloseEnv* env,
               int serial)
        : base_(std::move(base)), env_(env), serial_(serial) {}
    ~SlowRegion() override { env_->Closing(serial_); }
    absl::string_view bytes() const override { return base_->bytes(); }

   private:
    std::shared_ptr<const MappedRegion> base_;
    SlowCloseEnv* const env_;
    const int serial_;
  };

  class SlowFile : public ForwardingFile {
   public:
    SlowFile(std::unique_ptr<File> base, SlowCloseEnv* env, int serial)
        : ForwardingFile(std::move(base)), env_(env), serial_(serial) {}
    absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
        uint64_t size) const override {
      auto region = ForwardingFile::Map(size);
      if (!region.ok()) return region;
      return std::shared_ptr<const MappedRegion>(
          std::make_shared<SlowRegion>(*std::move(region), env_, serial_));
    }

   private:
    SlowCloseEnv* const env_;
    const int serial_;
  };

  void Closing(int serial) {
    {
      absl::MutexLock lock(&mu_);
      if (serial >= armed_below_ || fired_) return;
      fired_ = true;
      closed_on_ = std::this_thread::get_id();
    }
    closing_.Notify();
    release_.WaitForNotificationWithTimeout(absl::Seconds(30));
  }

  const std::string path_;
  absl::Mutex mu_;
  int next_serial_ ABSL_GUARDED_BY(mu_) = 0;
  int armed_below_ ABSL_GUARDED_BY(mu_) = 0;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id closed_on_ ABSL_GUARDED_BY(mu_);
  absl::Notification closing_;
  absl::Notification release_;
};

// Polls IsMerging until it is false, for 10 s at most (a slow close lasts
// 30 s).
bool MergeLockReleased(RawIndex& index) {
  for (int i = 0; i < 1000; ++i) {
    auto merging = index.IsMerging();
    if (!merging.ok()) return false;
    if (!*merging) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

class RawIndexTest : public ::testing::Test {
 protected:
  Options Opts(uint64_t log_size = 4) {
    Options o;
    o.env = &env_;
    o.log_size = log_size;
    o.lru_size = 0;
    return o;
  }
  std::unique_ptr<RawIndex> Open(const Options& o) {
    auto index = RawIndex::Open(kRoot, TestSchema(), o);
    EXPECT_OK(index);
    return index.ok() ? *std::move(index) : nullptr;
  }
  // Cuts the power on `mem` (every write since its file's last fsync lost)
  // and opens the store `o` describes on it, without o's test hook.
  std::unique_ptr<RawIndex> OpenAfterPowerCut(MemEnv& mem, Options o) {
    CrashOptions lose_unsynced;
    lose_unsynced.keep_unsynced_prefix = false;
    mem.Restart(lose_unsynced);
    o.env = &mem;
    o.test_hook = nullptr;
    return Open(o);
  }
  static std::optional<std::string> Get(const RawIndex& index,
                                        const std::string& key) {
    std::string value(4, '\0');
    auto found = index.Find(key, value.data());
    EXPECT_OK(found);
    if (!found.ok() || !*found) return std::nullopt;
    return value;
  }
  static std::map<std::string, std::string> All(const RawIndex& index) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(
        index
            .Iter([&](absl::string_view k, absl::string_view v) {
              // Every key exactly once.
              EXPECT_TRUE(out.emplace(std::string(k), std::string(v)).second)
                  << "visited twice: " << k;
            })
            .ok());
    return out;
  }

  // AClearCutAnywhereOpensWithAllOrNothing, in one layout.
  void ClearCutAnywhere(Layout layout);

  MemEnv env_;
};

TEST_F(RawIndexTest, ReplaceFindAcrossManyMerges) {
  auto index = Open(Opts());
  std::map<std::string, std::string> model;
  for (int i = 0; i < 300; ++i) {
    const std::string k = Key(i % 50), v = Value(i);
    ASSERT_OK(index->Replace(k, v));
    model[k] = v;
  }
  ASSERT_OK(index->AwaitMerge());
  for (const auto& [k, v] : model) EXPECT_EQ(Get(*index, k), v) << k;
  EXPECT_EQ(Get(*index, Key(1000)), std::nullopt);
  EXPECT_EQ(All(*index), model);
  EXPECT_GT(GetStats().nb_merge, 0u);
}

// The merge asks for its output to be written to the device as it goes
// (through the index's stats wrapper of the env), and only the merge does.
TEST_F(RawIndexTest, MergesStartWritebackOfTheirOutputOnly) {
  auto index = Open(Opts(/*log_size=*/1000));  // one merge: the explicit one
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(index->Replace(Key(i), Value(i)));
  }
  ASSERT_OK(index->Flush());
  EXPECT_EQ(env_.WritebackHinted("/store/index/log"), 0u);
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  absl::StatusOr<std::string> data = env_.Contents("/store/index/data");
  ASSERT_OK(data);
  // Every record byte of the output (written as `merge`), once.
  EXPECT_EQ(env_.WritebackHinted("/store/index/merge"),
            40 * (Key(0).size() + Value(0).size()));
  EXPECT_EQ(env_.WritebackHinted("/store/index/log"), 0u);
}

// The stats tell merges that copied the runs of old records from those that
// went record by record: the first merge has no data file to copy from; the
// second has one whose filter (one block, room for 51 keys at 10 bits each)
// the output's can extend, as it has room for the 50 records and bindings
// of the merge; the third would need a bigger filter; Filter always goes
// record by record.
TEST_F(RawIndexTest, StatsCountMergesThatCopiedRuns) {
  auto index = Open(Opts(/*log_size=*/1000));  // explicit merges only
  ResetStats();
  auto replace_and_merge = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
    }
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
  };
  replace_and_merge(0, 40);
  EXPECT_EQ(GetStats().nb_merge, 1u);
  EXPECT_EQ(GetStats().nb_merge_copied_runs, 0u);
  replace_and_merge(35, 45);
  EXPECT_EQ(GetStats().nb_merge, 2u);
  EXPECT_EQ(GetStats().nb_merge_copied_runs, 1u);
  replace_and_merge(45, 60);
  EXPECT_EQ(GetStats().nb_merge, 3u);
  EXPECT_EQ(GetStats().nb_merge_copied_runs, 1u);
  ASSERT_OK(index->Filter([](auto, auto) { return true; }));
  EXPECT_EQ(GetStats().nb_merge, 4u);
  EXPECT_EQ(GetStats().nb_merge_copied_runs, 1u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(i)) << i;
  // The merges' time, a part of it spent checking their inputs' sidecars.
  EXPECT_GT(GetStats().time_merge_us, 0u);
  EXPECT_LE(GetStats().time_verify_us, GetStats().time_merge_us);
  ResetStats();
  EXPECT_EQ(GetStats().nb_merge_copied_runs, 0u);
  EXPECT_EQ(GetStats().time_merge_us, 0u);
  EXPECT_EQ(GetStats().time_verify_us, 0u);
}

// Stats::merge_durations_us holds the last 10 merges' durations, oldest first:
// each is the step the merge added to time_merge_us.
TEST_F(RawIndexTest, StatsKeepTheLastTenMergeDurationsOldestFirst) {
  auto index = Open(Opts(/*log_size=*/1000));  // explicit merges only
  ResetStats();
  std::vector<uint64_t> durations;
  uint64_t total = 0;
  for (int merge = 0; merge < 13; ++merge) {
    ASSERT_OK(index->Replace(Key(merge), Value(merge)));
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    const Stats stats = GetStats();
    durations.push_back(stats.time_merge_us - total);
    total = stats.time_merge_us;
    const size_t kept = std::min<size_t>(durations.size(), 10);
    EXPECT_EQ(stats.merge_durations_us,
              std::vector<uint64_t>(durations.end() - kept, durations.end()))
        << "after merge " << merge;
  }
  ResetStats();
  EXPECT_TRUE(GetStats().merge_durations_us.empty());
}

// Each merge leaves a key filter for its data file, which readers and the
// writer then trust; a clear removes it with the data file.
TEST_F(RawIndexTest, MergesWriteTheKeyFilterAndClearRemovesIt) {
  const std::string filter_path = "/store/index/data.filter";
  auto index = Open(Opts());
  EXPECT_FALSE(env_.Contents(filter_path).ok());
  std::map<std::string, std::string> model;
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(index->Replace(Key(i), Value(i)));
    model[Key(i)] = Value(i);
  }
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  absl::StatusOr<std::string> bytes = env_.Contents(filter_path);
  ASSERT_OK(bytes);
  EXPECT_GT(bytes->size(), KeyFilter::kHeaderSize);
  EXPECT_FALSE(env_.Contents(filter_path + ".tmp").ok());

  Options ro = Opts();
  ro.readonly = true;
  auto reader = Open(ro);
  for (const auto& [k, v] : model) {
    EXPECT_EQ(Get(*index, k), v) << k;
    EXPECT_EQ(Get(*reader, k), v) << k;
  }
  EXPECT_EQ(Get(*reader, Key(1000)), std::nullopt);

  ASSERT_OK(index->Clear());
  EXPECT_FALSE(env_.Contents(filter_path).ok());
  EXPECT_FALSE(env_.Contents("/store/index/data").ok());
}

TEST_F(RawIndexTest, AbsurdLruSizeIsInvalidArgument) {
  Options o = Opts();
  o.lru_size = ~size_t{0} / 2;
  auto index = RawIndex::Open(kRoot, TestSchema(), o);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(index.status().message()), HasSubstr("lru_size"));
  o.lru_size = 1000;  // a sane size opens
  EXPECT_OK(RawIndex::Open(kRoot, TestSchema(), o));
}

TEST_F(RawIndexTest, WrongSizesAreInvalidArgument) {
  auto index = Open(Opts());
  EXPECT_EQ(index->Replace("ab", Value(1)).code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = index->Replace(Key(1), std::string(200, 'v'));
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("value")));
  EXPECT_EQ(index->Find("ab", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(All(*index).empty());
}

TEST_F(RawIndexTest, DuplicatesInLogSurviveReopenAsOneBinding) {
  {
    auto index = Open(Opts(100));
    ASSERT_OK(index->Replace(Key(1), Value(1)));
    ASSERT_OK(index->Replace(Key(1), Value(2)));
    ASSERT_OK(index->Close());
  }
  auto index = Open(Opts(100));
  EXPECT_EQ(All(*index),
            (std::map<std::string, std::string>{{Key(1), Value(2)}}));
}

TEST_F(RawIndexTest, FreshOpenClearsAndDoubleRestartStaysEmpty) {
  {
    auto index = Open(Opts());
    ASSERT_OK(index->Replace(Key(1), Value(1)));
  }
  Options o = Opts();
  o.fresh = true;
  {
    auto index = Open(o);
    EXPECT_EQ(Get(*index, Key(1)), std::nullopt);
  }
  auto index = Open(Opts());
  EXPECT_EQ(Get(*index, Key(1)), std::nullopt);
}

TEST_F(RawIndexTest, MisuseIsFailedPrecondition) {
  auto rw = Open(Opts());
  EXPECT_EQ(rw->Sync().code(), absl::StatusCode::kFailedPrecondition);
  Options ro = Opts();
  ro.readonly = true;
  auto r = Open(ro);
  EXPECT_EQ(r->Replace(Key(1), Value(1)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r->Clear().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r->Merge().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r->IsMerging().status().code(),
            absl::StatusCode::kFailedPrecondition);
  ro.fresh = true;
  EXPECT_EQ(RawIndex::Open(kRoot, TestSchema(), ro).status().code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_OK(rw->Close());
  EXPECT_OK(rw->Close());  // idempotent
  for (absl::Status s :
       {rw->Replace(Key(1), Value(1)), rw->Clear(), rw->Flush(), rw->Merge(),
        rw->TryMerge(), rw->Find(Key(1), nullptr).status(),
        rw->Mem(Key(1)).status(), rw->Iter([](auto, auto) {})}) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("closed")));
  }
}

TEST_F(RawIndexTest, SecondWriterIsRefused) {
  auto first = Open(Opts());
  auto second = RawIndex::Open(kRoot, TestSchema(), Opts());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_OK(first->Close());
  EXPECT_OK(RawIndex::Open(kRoot, TestSchema(), Opts()));
}

TEST_F(RawIndexTest, ReadOnlySeesFlushedDataAfterSyncOnly) {
  auto rw = Open(Opts(1000));
  Options ro_opts = Opts();
  ro_opts.readonly = true;
  auto ro = Open(ro_opts);
  ASSERT_OK(rw->Replace(Key(1), Value(1)));
  ASSERT_OK(ro->Sync());
  EXPECT_EQ(Get(*ro, Key(1)), std::nullopt);  // not flushed
  ASSERT_OK(rw->Flush());
  EXPECT_EQ(Get(*ro, Key(1)), std::nullopt);  // not synced
  ASSERT_OK(ro->Sync());
  EXPECT_EQ(Get(*ro, Key(1)), Value(1));
  // After a clear the reader keeps its view until it syncs.
  ASSERT_OK(rw->Clear());
  EXPECT_EQ(Get(*ro, Key(1)), Value(1));
  ASSERT_OK(ro->Sync());
  EXPECT_EQ(Get(*ro, Key(1)), std::nullopt);
}

TEST_F(RawIndexTest, ReadOnlyFollowsMergesAndDoesNotServeStaleCache) {
  auto rw = Open(Opts(3));
  Options ro_opts = Opts();
  ro_opts.readonly = true;
  ro_opts.lru_size = 100;
  auto ro = Open(ro_opts);
  std::map<std::string, std::string> model;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 5; ++i) {
      const std::string k = Key(i * 3 + round % 2), v = Value(round * 10 + i);
      ASSERT_OK(rw->Replace(k, v));
      model[k] = v;
    }
    ASSERT_OK(rw->Flush());
    if (round % 3 == 0) {
      ASSERT_OK(rw->AwaitMerge());
    }
    ASSERT_OK(ro->Sync());
    for (const auto& [k, v] : model) EXPECT_EQ(Get(*ro, k), v) << round;
  }
}

TEST_F(RawIndexTest, FilterDoesNotResurrectOlderValues) {
  auto index = Open(Opts(100));
  ASSERT_OK(index->Replace(Key(1), "old_"));
  ASSERT_OK(index->Replace(Key(2), "keep"));
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  ASSERT_OK(index->Replace(Key(1), "new_"));
  // Rejects the newest binding of Key(1), would accept its older data value.
  ASSERT_TRUE(index
                  ->Filter([](absl::string_view, absl::string_view v) {
                    return v != "new_";
                  })
                  .ok());
  EXPECT_EQ(Get(*index, Key(1)), std::nullopt);
  EXPECT_EQ(Get(*index, Key(2)), "keep");
}

TEST_F(RawIndexTest, FilterAllThenFindAndReopen) {
  auto index = Open(Opts(2));
  for (int i = 0; i < 10; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
  ASSERT_OK(index->Filter([](auto, auto) { return false; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(*index, Key(i)), std::nullopt);
  ASSERT_OK(index->Close());
  auto reopened = Open(Opts(2));
  EXPECT_TRUE(All(*reopened).empty());
}

TEST_F(RawIndexTest, EqualHashOverrideInMerge) {
  // All keys share hash 'a' (Key(i) for i % 7 == 0): every merge must replace
  // the old data record of each key, whatever the order of equal hashes.
  auto index = Open(Opts(2));
  std::map<std::string, std::string> model;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 6; ++i) {
      const std::string k = Key(i * 7), v = Value(round * 100 + i);
      ASSERT_OK(index->Replace(k, v));
      model[k] = v;
    }
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    for (const auto& [k, v] : model) EXPECT_EQ(Get(*index, k), v);
    EXPECT_EQ(All(*index), model);
  }
}

TEST_F(RawIndexTest, ClearAbortsARunningMergeAndTheNextOneCompletes) {
  absl::Notification in_merge, release;
  std::atomic<bool> block{true};
  Options o = Opts(1000);
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeAfterFirstEntry && block.exchange(false)) {
      in_merge.Notify();
      release.WaitForNotification();
    }
    // Let the merge go on only once the clear has asked it to stop, so that it
    // sees the request.
    if (p == HookPoint::kClearAbortSignalled && !release.HasBeenNotified()) {
      release.Notify();
    }
    return absl::OkStatus();
  };
  auto index = Open(o);
  for (int i = 0; i < 10; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  ASSERT_OK(index->Replace(Key(50), Value(50)));
  block = true;
  ASSERT_OK(index->Merge());
  in_merge.WaitForNotification();
  ASSERT_OK(index->Clear());  // waits for the merge it stopped
  EXPECT_EQ(index->AwaitMerge().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(All(*index).empty());
  ASSERT_OK(index->Replace(Key(1), Value(1)));
  ASSERT_OK(index->Merge());
  EXPECT_OK(index->AwaitMerge());
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  EXPECT_FALSE(env_.FileExists("/store/index/merge").value());
}

TEST_F(RawIndexTest, MergeFailureKeepsIndexUsableAndNothingIsLost) {
  std::atomic<int> fail_after_clear{1};
  Options o = Opts(1000);
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeAfterClear && fail_after_clear-- > 0) {
      return absl::InternalError("injected merge failure");
    }
    return absl::OkStatus();
  };
  std::map<std::string, std::string> model;
  {
    auto index = Open(o);
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
      model[Key(i)] = Value(i);
    }
    ASSERT_OK(index->Merge());
    EXPECT_EQ(index->AwaitMerge().code(), absl::StatusCode::kInternal);
    for (int i = 5; i < 10; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
      model[Key(i)] = Value(i);
    }
    EXPECT_EQ(All(*index), model);
    ASSERT_OK(index->Merge());  // replays log_async first
    ASSERT_OK(index->AwaitMerge());
    EXPECT_EQ(All(*index), model);
    ASSERT_OK(index->Replace(Key(20), Value(20)));
    model[Key(20)] = Value(20);
    ASSERT_OK(index->Close(/*immediately=*/true));
  }
  auto index = Open(Opts(1000));
  EXPECT_EQ(All(*index), model);
}

// A merge that fails anywhere (its writes, fsyncs, renames, directory fsyncs
// or reads failing after any number of good ones) leaves no output file: it
// was renamed by a commit, or removed when the merge failed, not left for the
// next merge or open (it can be as large as the store).
TEST_F(RawIndexTest, AFailedMergeLeavesNoOutputBehind) {
  for (const Layout layout : {Layout::kSingleFile, Layout::kTiered}) {
    for (const uint32_t ops :
         {kOpWrite, kOpSync, kOpRename, kOpSyncDir, kOpRead}) {
      for (uint64_t skip = 0; skip < 24; ++skip) {
        SCOPED_TRACE(absl::StrCat(
            layout == Layout::kTiered ? "tiered" : "single", ", operations ",
            ops, " failing after ", skip, " good ones"));
        MemEnv env;
        Options o = Opts(4);
        o.env = &env;
        o.layout = layout;
        std::map<std::string, std::string> model;
        auto index = Open(o);
        ASSERT_NE(index, nullptr);
        for (int i = 0; i < 12; ++i) {  // a data file or runs, and a log
          ASSERT_OK(index->Replace(Key(i), Value(i)));
          model[Key(i)] = Value(i);
          ASSERT_OK(index->AwaitMerge());
        }
        ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
        env.InjectError(ops, skip, -1, absl::InternalError("injected EIO"));
        const absl::Status started = index->Merge();
        const absl::Status merged = index->AwaitMerge();
        env.ClearInjectedErrors();
        if (started.ok() && merged.ok()) continue;  // nothing failed
        for (const std::string& path : env.ListFiles()) {
          EXPECT_FALSE(absl::EndsWith(path, "/merge"))
              << path << " left behind by "
              << (started.ok() ? merged : started);
        }
        (void)index->Close();  // fails if the merge stopped the writer
        index = Open(o);
        ASSERT_NE(index, nullptr);
        EXPECT_EQ(All(*index), model);
      }
    }
  }
}

TEST_F(RawIndexTest, FilesOnDiskAfterClear) {
  auto index = Open(Opts(2));
  for (int i = 0; i < 10; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
  ASSERT_OK(index->AwaitMerge());
  ASSERT_OK(index->Clear());
  EXPECT_EQ(env_.Contents("/store/index/log")->size(), IndexFile::kHeaderSize);
  EXPECT_FALSE(env_.FileExists("/store/index/data").value());
  EXPECT_FALSE(env_.FileExists("/store/index/log_async").value());
}

TEST_F(RawIndexTest, FlushCallbackRunsOncePerNonEmptyFlush) {
  int calls = 0;
  Options o = Opts(1000);
  o.flush_callback = [&] { ++calls; };
  auto index = Open(o);
  ASSERT_OK(index->Flush());
  EXPECT_EQ(calls, 0);
  ASSERT_OK(index->Replace(Key(1), Value(1)));
  ASSERT_OK(index->Flush());
  EXPECT_EQ(calls, 1);
  ASSERT_OK(index->Replace(Key(2), Value(2)));
  FlushOptions no_cb;
  no_cb.no_callback = true;
  ASSERT_OK(index->Flush(no_cb));
  EXPECT_EQ(calls, 1);
  ASSERT_OK(index->Close());
  EXPECT_EQ(calls, 1);  // nothing left to flush
}

TEST_F(RawIndexTest, LruSizeOneHitsAndEvicts) {
  Options o = Opts(1000);
  o.lru_size = 1;
  auto index = Open(o);
  ASSERT_OK(index->Replace(Key(1), Value(1)));
  ResetStats();
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  EXPECT_EQ(GetStats().lru_hits, 1u);
  EXPECT_EQ(GetStats().lru_misses, 0u);
  ASSERT_OK(index->Replace(Key(2), Value(2)));
  ResetStats();
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  EXPECT_EQ(GetStats().lru_misses, 1u);
  EXPECT_EQ(GetStats().lru_hits, 1u);
  ASSERT_OK(index->Clear());
  ResetStats();
  EXPECT_EQ(Get(*index, Key(1)), std::nullopt);
  EXPECT_EQ(GetStats().lru_hits, 0u);
}

// Every replace is counted; the latency is measured on one in
// kReplaceSampling of them (the first one of a thread included).
TEST_F(RawIndexTest, ReplaceLatencyIsMeasuredOnASample) {
  auto index = Open(Opts(100000));
  std::thread writer([&] {
    ResetStats();
    for (int i = 0; i < 100; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
    }
    const Stats st = GetStats();
    EXPECT_EQ(st.nb_replace, 100u);
    EXPECT_EQ(st.nb_replace_timed,
              (100 + kReplaceSampling - 1) / kReplaceSampling);
    EXPECT_GT(st.replace_mean_ns, 0u);
  });
  writer.join();
  ResetStats();
  EXPECT_EQ(GetStats().nb_replace_timed, 0u);
  EXPECT_EQ(GetStats().replace_mean_ns, 0u);
}

// Opening a store asks for its data file to be read into the cache (it may
// have been evicted since it was written) and maps its filter to stay
// resident; a merge's own output, just written, is not read again.
TEST_F(RawIndexTest, OpeningAStoreReadsItsDataFileAhead) {
  {
    auto index = Open(Opts(1000));
    for (int i = 0; i < 40; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
    }
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->AwaitMerge());
    EXPECT_EQ(env_.ReadaheadHinted("/store/index/data"), 0u);
    EXPECT_EQ(env_.ReadaheadHinted("/store/index/merge"), 0u);
    ASSERT_OK(index->Close());
  }
  absl::StatusOr<std::string> data = env_.Contents("/store/index/data");
  absl::StatusOr<std::string> filter =
      env_.Contents("/store/index/data.filter");
  ASSERT_OK(data);
  ASSERT_OK(filter);
  auto reopened = Open(Opts(1000));
  EXPECT_EQ(env_.ReadaheadHinted("/store/index/data"), data->size());
  // The filter was mapped resident once when the merge committed it, and once
  // now.
  EXPECT_EQ(env_.ResidentMapped("/store/index/data.filter"),
            2 * filter->size());
  EXPECT_EQ(env_.ReadaheadHinted("/store/index/data.filter"), 0u);
  EXPECT_EQ(Get(*reopened, Key(7)), Value(7));
}

TEST_F(RawIndexTest, SharedInstanceThroughCache) {
  InstanceCache cache;
  Options o = Opts(1000);
  o.cache = &cache;
  auto a = Open(o);
  auto b = Open(o);  // same instance: no lock conflict
  ASSERT_OK(a->Replace(Key(1), Value(1)));
  EXPECT_EQ(Get(*b, Key(1)), Value(1));
  ASSERT_OK(a->Close());
  EXPECT_EQ(Get(*b, Key(1)), Value(1));  // b still open
  EXPECT_EQ(a->Find(Key(1), nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RawIndexTest, IoErrorRefusesWritesAndReopenRecoversDurableData) {
  std::map<std::string, std::string> durable;
  {
    auto index = Open(Opts(1000));
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
      durable[Key(i)] = Value(i);
    }
    FlushOptions sync;
    sync.with_fsync = true;
    ASSERT_OK(index->Flush(sync));
    ASSERT_OK(index->Replace(Key(9), Value(9)));
    env_.InjectError(kOpWrite, 0, -1, absl::ResourceExhaustedError("ENOSPC"));
    absl::Status s = index->Flush(sync);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    s = index->Replace(Key(10), Value(10));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("ENOSPC")));
    for (const auto& [k, v] : durable) EXPECT_EQ(Get(*index, k), v);
    env_.ClearInjectedErrors();
  }
  auto index = Open(Opts(1000));
  for (const auto& [k, v] : durable) EXPECT_EQ(Get(*index, k), v);
  EXPECT_EQ(Get(*index, Key(10)), std::nullopt);
}

// A single-file merge under way when a write error stops the writer still
// commits (unlike a tiered one, its commit depends on nothing the failure
// made stale: one merge at a time, data replaced by the commit itself): the
// frozen log goes into data and log_async's records into the reset log.
// Every write acknowledged as durable before the failure survives, with or
// without a power loss after it, and a write the stopped writer refused
// never appears.
TEST_F(RawIndexTest, AMergeUnderWayWhenAWriteStopsTheWriterLosesNothing) {
  for (const uint32_t failing : {kOpWrite, kOpSync}) {
    for (const bool power_loss : {false, true}) {
      SCOPED_TRACE(absl::StrCat(failing == kOpWrite ? "write" : "fsync",
                                " fails",
                                power_loss ? ", then power loss" : ""));
      env_ = MemEnv();
      absl::Notification held, release;
      std::atomic<bool> hold{true};
      Options o = Opts(1000);
      o.test_hook = [&](HookPoint p) {
        if (p == HookPoint::kMergeBefore && hold.exchange(false)) {
          held.Notify();
          release.WaitForNotification();
        }
        return absl::OkStatus();
      };
      FlushOptions sync;
      sync.with_fsync = true;
      std::map<std::string, std::string> durable;
      {
        auto index = Open(o);
        ASSERT_NE(index, nullptr);
        for (int i = 0; i < 5; ++i) {
          ASSERT_OK(index->Replace(Key(i), Value(i)));
          durable[Key(i)] = Value(i);
        }
        ASSERT_OK(index->Merge());
        held.WaitForNotification();
        // The log is frozen: these go to log_async.
        ASSERT_OK(index->Replace(Key(5), Value(5)));
        ASSERT_OK(index->Flush(sync));
        durable[Key(5)] = Value(5);
        env_.InjectError(failing, 0, -1, absl::InternalError("injected EIO"));
        ASSERT_OK(index->Replace(Key(6), Value(6)));
        EXPECT_FALSE(index->Flush(sync).ok());
        EXPECT_THAT(index->Replace(Key(7), Value(7)),
                    StatusIs(absl::StatusCode::kFailedPrecondition));
        env_.ClearInjectedErrors();
        release.Notify();
        EXPECT_OK(index->AwaitMerge());  // committed
        EXPECT_FALSE(env_.FileExists(StorePath(kRoot, "log_async")).value());
        EXPECT_FALSE(index->Close().ok());  // it refuses writes: not durable
      }
      if (power_loss) env_.Restart(CrashOptions());
      o.test_hook = nullptr;
      auto index = Open(o);
      ASSERT_NE(index, nullptr);
      for (const auto& [k, v] : durable) EXPECT_EQ(Get(*index, k), v) << k;
      EXPECT_EQ(Get(*index, Key(7)), std::nullopt);
      // Nothing else, but perhaps the write whose flush failed.
      for (const auto& [k, v] : All(*index)) {
        const auto it = durable.find(k);
        EXPECT_TRUE((it != durable.end() && it->second == v) ||
                    (k == Key(6) && v == Value(6)))
            << k << " = " << v << " was never written";
      }
    }
  }
}

// A merge that fails leaves its log_async open; the next merge copies it into
// the log and then removes it. When the removal fails, the file stays on disk
// one generation ahead of the log, and the reopen copies it over the log
// again: it must bring back no value older than what the log got.
TEST_F(RawIndexTest, ALogAsyncWhoseRemovalFailedBringsBackNoOlderValue) {
  {
    auto index = Open(Opts(1000));
    ASSERT_OK(index->Replace(Key(1), Value(1)));
    // Every merge fails at its rename over `data`, leaving log_async open.
    env_.InjectError(kOpRename, 0, -1, absl::InternalError("EIO"));
    (void)index->Merge();
    EXPECT_FALSE(index->AwaitMerge().ok());
    ASSERT_OK(index->Replace(Key(2), Value(2)));
    ASSERT_OK(index->Flush(FlushOptions()));  // Key(2) = Value(2) in its file
    ASSERT_OK(index->Replace(Key(2), Value(3)));  // newer, buffered only
    ASSERT_OK(index->Replace(Key(3), Value(4)));
    env_.ClearInjectedErrors();
    env_.InjectError(kOpRemove, 0, 1, absl::InternalError("EIO"));
    const absl::Status merged = index->Merge();
    EXPECT_THAT(merged,
                StatusIs(absl::StatusCode::kInternal, HasSubstr("log_async")));
    env_.ClearInjectedErrors();
    ASSERT_TRUE(env_.FileExists(StorePath(kRoot, "log_async")).value());
  }
  auto index = Open(Opts(1000));
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  EXPECT_EQ(Get(*index, Key(2)), Value(3));
  EXPECT_EQ(Get(*index, Key(3)), Value(4));
}

// Wraps the files opened on one path: the first fsync of one of them after
// Arm() runs ArmedSync() in place of the fsync.
class ArmedSyncEnv : public EnvWrapper {
 public:
  ArmedSyncEnv(Env* base, std::string path)
      : EnvWrapper(base), path_(std::move(path)) {}

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    auto file = target()->OpenFile(path, mode);
    if (!file.ok() || path != path_) return file;
    return std::unique_ptr<File>(new ArmedFile(*std::move(file), this));
  }
  absl::StatusOr<std::unique_ptr<File>> OpenFileIfExists(
      const std::string& path, OpenMode mode) override {
    auto file = target()->OpenFileIfExists(path, mode);
    if (!file.ok() || *file == nullptr || path != path_) return file;
    return std::unique_ptr<File>(new ArmedFile(*std::move(file), this));
  }

  void Arm() { armed_ = true; }

 protected:
  // `file` is the wrapped file, whose Sync() is the real fsync.
  virtual absl::Status ArmedSync(File& file) = 0;

 private:
  class ArmedFile : public ForwardingFile {
   public:
    ArmedFile(std::unique_ptr<File> base, ArmedSyncEnv* env)
        : ForwardingFile(std::move(base)), env_(env) {}
    absl::Status Sync() override {
      if (env_->armed_.exchange(false)) return env_->ArmedSync(base());
      return ForwardingFile::Sync();
    }

   private:
    ArmedSyncEnv* const env_;
  };

  const std::string path_;
  std::atomic<bool> armed_{false};
};

// Holds the first fsync of the file at `path` after Arm(): notifies syncing()
// and waits for Release(), 10 s at most, so that a bug fails the test instead
// of hanging it.
class HeldSyncEnv : public ArmedSyncEnv {
 public:
  using ArmedSyncEnv::ArmedSyncEnv;

  absl::Notification& syncing() { return syncing_; }
  void Release() { release_.Notify(); }
  // Whether the held fsync was released before its time ran out.
  bool released_in_time() const { return released_in_time_; }

 private:
  absl::Status ArmedSync(File& file) override {
    syncing_.Notify();
    released_in_time_ =
        release_.WaitForNotificationWithTimeout(absl::Seconds(10));
    return file.Sync();
  }

  std::atomic<bool> released_in_time_{false};
  absl::Notification syncing_;
  absl::Notification release_;
};

// A merge's commit builds the next log from log_async's records, and fsyncs
// it, before it takes the writer lock: replaces go on during that fsync, and
// what they write then is made durable by the commit too.
TEST_F(RawIndexTest, ReplacesGoOnWhileAMergeCommitBuildsTheNextLog) {
  MemEnv mem;
  HeldSyncEnv env(&mem, StorePath(kRoot, "log_tmp"));
  Options o = Opts(1000);
  o.env = &env;
  absl::Notification log_async_written;
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) {
      log_async_written.WaitForNotificationWithTimeout(absl::Seconds(10));
    } else if (p == HookPoint::kMergeCommitted) {
      env.Arm();
    }
    return absl::OkStatus();
  };
  {
    auto index = Open(o);
    ASSERT_NE(index, nullptr);
    ASSERT_OK(index->Replace(Key(0), Value(0)));
    ASSERT_OK(index->Merge());
    ASSERT_OK(index->Replace(Key(1), Value(1)));  // into log_async
    log_async_written.Notify();
    ASSERT_TRUE(
        env.syncing().WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_OK(index->Replace(Key(2), Value(2)));  // during the fsync
    env.Release();
    ASSERT_OK(index->AwaitMerge());
    EXPECT_TRUE(env.released_in_time())
        << "the replace waited for the fsync of the next log";
    EXPECT_EQ(Get(*index, Key(2)), Value(2));
  }
  // The commit made the log_async records durable, those written during the
  // fsync of the next log too: no flush of the user's was needed.
  auto index = OpenAfterPowerCut(mem, o);
  ASSERT_NE(index, nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(i)) << i;
}

// A commit builds the next log from log_async, then under the writer lock
// copies into it the records written meanwhile (here a megabyte) and swaps it
// in. A crash at any point of that leaves the old log with log_async, from
// which the next open recovers a prefix of the writes, or the new log with
// all of them: never the low-hash keys written last without the high-hash
// keys written before them.
TEST_F(RawIndexTest, ACrashInACommitShowsOnlyAPrefixOfTheWrites) {
  // Entries of 4 KiB: what is written during the held fsync (240 entries)
  // stays in log_async's buffer until the commit.
  const Schema schema = test::MakeSchema(8, 4088, 8, &test::FirstByteHash);
  constexpr int kLow = 220;      // in log_async before the commit
  constexpr int kHigh = 40;      // written first during the held fsync
  constexpr int kLowLast = 200;  // then these low keys again
  // Keys whose first byte (the schema's hash) sorts them by group.
  auto key = [](bool low, int i) {
    std::string k = absl::StrCat(low ? "\x01" : "\xf0", i);
    k.resize(8, '.');
    return k;
  };
  const std::string first(4088, 'f');  // the low keys' value before
  const std::string last(4088, 'l');
  int low_shown = 0;
  // Every operation from the end of the copy ahead on, until the commit
  // completes without a crash.
  bool crashed = true;
  uint64_t crash_at = 0;
  for (; crashed; ++crash_at) {
    for (uint64_t seed = 0; seed < 4 && crashed; ++seed) {
      MemEnv mem;
      HeldSyncEnv env(&mem, StorePath(kRoot, "log_tmp"));
      Options o = Opts(uint64_t{1} << 30);  // merges only when asked
      o.env = &env;
      absl::Notification log_async_written;
      o.test_hook = [&](HookPoint p) {
        if (p == HookPoint::kMergeBefore) {
          log_async_written.WaitForNotificationWithTimeout(absl::Seconds(10));
        }
        if (p == HookPoint::kMergeCommitted) env.Arm();
        if (p == HookPoint::kMergeNextLogBuilt) mem.CrashAfter(crash_at);
        return absl::OkStatus();
      };
      {
        auto index = RawIndex::Open(kRoot, schema, o);
        ASSERT_OK(index);
        ASSERT_OK((*index)->Replace(key(false, -1), last));
        ASSERT_OK((*index)->Flush(FlushOptions{.with_fsync = true}));
        ASSERT_OK((*index)->Merge());
        for (int i = 0; i < kLow; ++i) {  // into log_async
          ASSERT_OK((*index)->Replace(key(true, i), first));
        }
        log_async_written.Notify();
        ASSERT_TRUE(
            env.syncing().WaitForNotificationWithTimeout(absl::Seconds(10)));
        for (int i = 0; i < kHigh; ++i) {
          ASSERT_OK((*index)->Replace(key(false, i), last));
        }
        for (int i = 0; i < kLowLast; ++i) {
          ASSERT_OK((*index)->Replace(key(true, i), last));
        }
        env.Release();
        (void)(*index)->AwaitMerge();
        ASSERT_TRUE(env.released_in_time());
        crashed = mem.crashed();
      }
      CrashOptions co;
      co.seed = seed;
      mem.Restart(co);
      o.env = &mem;
      o.test_hook = nullptr;
      auto index = RawIndex::Open(kRoot, schema, o);
      ASSERT_OK(index) << crash_at << " " << seed;
      int low = 0, high = 0;
      ASSERT_OK((*index)->Iter([&](absl::string_view k, absl::string_view v) {
        if (k[0] == '\x01' && v == last) ++low;
        if (k[0] == '\xf0' && k != key(false, -1)) ++high;
      }));
      EXPECT_TRUE(low == 0 || high == kHigh)
          << "crash after " << crash_at << " operations, seed " << seed << ": "
          << low << " keys written last shown, " << high << " of the " << kHigh
          << " written before them";
      low_shown += low > 0;
    }
  }
  EXPECT_GT(crash_at, 5u);  // the swap's operations were crashed
  EXPECT_GT(low_shown, 0);  // not only states from before the swap
}

// A commit that fails past the swap of the next log (here: the hook after
// it) leaves log_async's file behind, at the log's generation, holding older
// copies of what the log holds. Writes must go to the log from then on: a
// reader prefers the log once it has that generation, and the next open
// copies from log_async only the keys the log lacks.
TEST_F(RawIndexTest, WritesAfterACommitFailedPastItsSwapGoToTheLog) {
  MemEnv mem;
  Options o = Opts(1000);
  o.env = &mem;
  std::atomic<bool> fail{true};
  RawIndex* writer = nullptr;
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) {
      // Into log_async, so that the next log holds a copy of it.
      EXPECT_OK(writer->Replace(Key(2), Value(20)));
    }
    if (p == HookPoint::kMergeAfterClear && fail.exchange(false)) {
      return absl::InternalError("Stop");
    }
    return absl::OkStatus();
  };
  auto index = Open(o);
  ASSERT_NE(index, nullptr);
  writer = index.get();
  ASSERT_OK(index->Replace(Key(1), Value(1)));
  ASSERT_OK(index->Merge());
  EXPECT_THAT(index->AwaitMerge(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("Stop")));
  ASSERT_TRUE(mem.FileExists(StorePath(kRoot, "log_async")).value());
  ASSERT_OK(index->Replace(Key(2), Value(21)));
  ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
  EXPECT_EQ(Get(*index, Key(2)), Value(21));
  Options ro = o;
  ro.readonly = true;
  ro.test_hook = nullptr;
  auto reader = Open(ro);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Get(*reader, Key(2)), Value(21));
  reader.reset();
  writer = nullptr;
  index.reset();
  auto reopened = OpenAfterPowerCut(mem, o);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(Get(*reopened, Key(1)), Value(1));
  EXPECT_EQ(Get(*reopened, Key(2)), Value(21));
}

// A next log that a crash left behind (its directory entry made durable by
// some later fsync of the directory) is removed by the writer's open: it may
// hold as much as log_async did, and nothing reads it.
TEST_F(RawIndexTest, AnOpenRemovesALeftoverNextLog) {
  {
    auto index = Open(Opts(1000));
    ASSERT_NE(index, nullptr);
    ASSERT_OK(index->Replace(Key(1), Value(1)));
    ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
  }
  const std::string tmp = StorePath(kRoot, "log_tmp");
  env_.SetContents(tmp, std::string(IndexFile::kHeaderSize + 40, 'x'));
  auto index = Open(Opts(1000));
  ASSERT_NE(index, nullptr);
  EXPECT_FALSE(env_.FileExists(tmp).value());
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
}

// Fails the directory fsync that follows a rename over `data` (from where an
// open finishes the merge), once armed.
class FailSyncAfterDataRenameEnv : public EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  void Arm() { armed_ = true; }
  absl::Status RenameFile(const std::string& src,
                          const std::string& dst) override {
    absl::Status st = EnvWrapper::RenameFile(src, dst);
    if (st.ok() && armed_ && dst == StorePath(kRoot, "data")) {
      armed_ = false;
      fail_sync_ = true;
    }
    return st;
  }
  absl::Status SyncDir(const std::string& path) override {
    if (fail_sync_) {
      fail_sync_ = false;
      return absl::InternalError(absl::StrCat(path, ": EIO (injected)"));
    }
    return EnvWrapper::SyncDir(path);
  }

 private:
  bool armed_ = false;
  bool fail_sync_ = false;
};

// Past its rename over `data`, a merge has committed even if the directory's
// fsync then fails: the writer stops writing (it must not treat log_async as
// a failed merge's and fold it into the log it never reset), and the next
// open finishes the commit, whatever the directory kept.
TEST_F(RawIndexTest, AMergeWhoseCommitFailsAfterItsRenameStopsTheWriter) {
  // Whatever the directory kept of the rename when the power went: both
  // ways must open with every durable binding.
  for (const bool rename_kept : {false, true}) {
    MemEnv mem;
    FailSyncAfterDataRenameEnv env(&mem);
    Options o = Opts(1000);
    o.env = &env;
    {
      auto index = Open(o);
      ASSERT_NE(index, nullptr);
      ASSERT_OK(index->Replace(Key(1), Value(1)));
      ASSERT_OK(index->Replace(Key(2), Value(2)));
      ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
      env.Arm();
      ASSERT_OK(index->Merge());  // started; its commit fails later
      EXPECT_THAT(index->AwaitMerge(),
                  StatusIs(absl::StatusCode::kInternal,
                           HasSubstr("syncing the directory")));
      EXPECT_THAT(index->Replace(Key(3), Value(3)),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_EQ(Get(*index, Key(1)), Value(1));
      (void)index->Close();
    }
    if (rename_kept) {
      ASSERT_OK(mem.SyncDir(StorePath(kRoot, "")));
    }
    auto index = OpenAfterPowerCut(mem, o);
    ASSERT_NE(index, nullptr) << rename_kept;
    EXPECT_EQ(Get(*index, Key(1)), Value(1)) << rename_kept;
    EXPECT_EQ(Get(*index, Key(2)), Value(2)) << rename_kept;
    EXPECT_EQ(Get(*index, Key(3)), std::nullopt) << rename_kept;
  }
}

// Fails the first fsync of a file open on `path` once armed.
class FailSyncOfEnv : public ArmedSyncEnv {
 public:
  using ArmedSyncEnv::ArmedSyncEnv;

  bool failed() const { return failed_; }

 private:
  absl::Status ArmedSync(File&) override {
    failed_ = true;
    return absl::InternalError("EIO (injected)");
  }

  std::atomic<bool> failed_{false};
};

// With log checksums the frozen log is fsynced first at a merge's commit. If
// that fsync fails, the kernel may have dropped the log's pages, and the
// fsync of the log reset could then succeed without them: the merge stops
// there, before its commit point, and so does the writer; the next open
// recovers every durable binding from the files (the journal vouches for the
// records the log lost).
TEST_F(RawIndexTest, AFailedFsyncOfTheFrozenLogStopsTheMergeAndTheWriter) {
  MemEnv mem;
  FailSyncOfEnv env(&mem, StorePath(kRoot, "log"));
  Options o = Opts(1000);
  o.env = &env;
  o.log_checksums = true;
  o.test_hook = [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) env.Arm();
    return absl::OkStatus();
  };
  {
    auto index = Open(o);
    ASSERT_NE(index, nullptr);
    for (int i = 0; i < 3; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
    ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
    ASSERT_OK(index->Merge());
    EXPECT_THAT(index->AwaitMerge(),
                StatusIs(absl::StatusCode::kInternal,
                         AllOf(HasSubstr("EIO (injected)"),
                               HasSubstr(StorePath(kRoot, "log")))));
    EXPECT_TRUE(env.failed());
    EXPECT_THAT(index->Replace(Key(3), Value(3)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(Get(*index, Key(1)), Value(1));  // finds go on
    (void)index->Close();
  }
  // Nothing was committed: the data file is still the one before the merge.
  EXPECT_FALSE(mem.Contents(StorePath(kRoot, "data")).ok());
  auto index = OpenAfterPowerCut(mem, o);
  ASSERT_NE(index, nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(i)) << i;
  EXPECT_EQ(Get(*index, Key(3)), std::nullopt);
}

// Fails the rename to `dst` once armed (the file is left where it was).
class FailRenameToEnv : public EnvWrapper {
 public:
  FailRenameToEnv(Env* base, std::string dst)
      : EnvWrapper(base), dst_(std::move(dst)) {}
  void Arm() { armed_ = true; }
  absl::Status RenameFile(const std::string& src,
                          const std::string& dst) override {
    if (armed_ && dst == dst_) {
      armed_ = false;
      return absl::InternalError(absl::StrCat(src, ": EIO (injected)"));
    }
    return EnvWrapper::RenameFile(src, dst);
  }

 private:
  const std::string dst_;
  bool armed_ = false;
};

// A filter that fails before its commit changes nothing and the writer goes
// on; one that fails after it (here at the log's reset) stops the writer, and
// the next open shows its result: the second filter's output alone, never
// mixed with the first's (recovery_fuzzer's
// regress_failed_filter_then_filter_failing_after_commit).
TEST_F(RawIndexTest, AFailedFilterChangesNothingUnlessItFailedPastItsCommit) {
  FailRenameToEnv env(&env_, StorePath(kRoot, "log"));
  bool fail_merge = false;
  Options o = Opts(1000);
  o.env = &env;
  o.test_hook = [&fail_merge](HookPoint p) {
    return fail_merge && p == HookPoint::kMergeAfterFirstEntry
               ? absl::InternalError("injected merge failure")
               : absl::OkStatus();
  };
  std::map<std::string, std::string> expected;
  {
    auto index = Open(o);
    ASSERT_NE(index, nullptr);
    for (int i = 0; i < 6; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(i)));
      expected[Key(i)] = Value(i);
    }
    ASSERT_OK(index->Merge());  // a data file, for the hook's point
    ASSERT_OK(index->AwaitMerge());
    fail_merge = true;
    EXPECT_THAT(index->Filter([](absl::string_view k, absl::string_view) {
      return k == Key(0);
    }),
                StatusIs(absl::StatusCode::kInternal,
                         HasSubstr("injected merge failure")));
    fail_merge = false;
    EXPECT_EQ(All(*index), expected);
    ASSERT_OK(index->Replace(Key(6), Value(6)));
    expected[Key(6)] = Value(6);

    env.Arm();
    EXPECT_THAT(index->Filter([](absl::string_view k, absl::string_view) {
      return k != Key(1);
    }),
                StatusIs(absl::StatusCode::kInternal, HasSubstr("log_tmp")));
    expected.erase(Key(1));
    EXPECT_THAT(index->Replace(Key(7), Value(7)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    (void)index->Close();
  }
  o.env = &env_;
  auto index = Open(o);
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(All(*index), expected);
}

// A clear cut by a power loss after any of its file operations, on a file
// system that persists a directory's operations in any order (no journal): the
// store opens and shows every binding or none, and none once the clear
// returned. (Found by a soak run of the model tests: the clear marker's
// removal outlived the data file's.)
TEST_F(RawIndexTest, AClearCutAnywhereOpensWithAllOrNothing) {
  for (const Layout layout : {Layout::kSingleFile, Layout::kTiered}) {
    SCOPED_TRACE(layout == Layout::kTiered ? "tiered" : "single file");
    ClearCutAnywhere(layout);
  }
}

void RawIndexTest::ClearCutAnywhere(Layout layout) {
  int cut = 0;
  for (uint64_t crash_at = 0;; ++crash_at) {
    bool finished = false;
    for (uint64_t seed = 0; seed < 16; ++seed) {
      MemEnv env;
      Options o = Opts(1000);
      o.env = &env;
      o.layout = layout;
      std::map<std::string, std::string> all;
      {
        auto index = Open(o);
        ASSERT_NE(index, nullptr);
        for (int i = 0; i < 5; ++i) {
          ASSERT_OK(index->Replace(Key(i), Value(i)));
          all[Key(i)] = Value(i);
          if (i == 3) {  // a data file, and bindings in the log
            ASSERT_OK(index->Merge());
            ASSERT_OK(index->AwaitMerge());
          }
        }
        ASSERT_OK(index->Flush(FlushOptions{.with_fsync = true}));
        env.CrashAfter(crash_at);
        const absl::Status cleared = index->Clear();
        finished = !env.crashed();
        if (finished) {
          ASSERT_OK(cleared);
          ASSERT_OK(index->Close());
        }
      }  // after a crash, its files are dead: closing fails quietly
      CrashOptions co;
      co.seed = seed;
      co.dir_ops_in_any_order = true;
      env.Restart(co);
      auto reopened = RawIndex::Open(kRoot, TestSchema(), o);
      ASSERT_OK(reopened) << "crash after " << crash_at << " operations, seed "
                          << seed;
      const std::map<std::string, std::string> shown = All(**reopened);
      EXPECT_TRUE(shown.empty() || (!finished && shown == all))
          << "crash after " << crash_at << " operations, seed " << seed << ": "
          << shown.size() << " bindings";
    }
    if (finished) break;
    ++cut;
  }
  EXPECT_GT(cut, 5);  // the clear has that many file operations to cut
}

// Crash at every mutating operation of a workload with merges, flushes and a
// clear: the reopened store holds every binding made durable before the crash,
// and nothing that was never written.
TEST_F(RawIndexTest, CrashAtEveryWritePoint) {
  struct Step {
    int kind;  // 0 replace, 1 flush+fsync, 2 merge, 3 clear
    int key;
  };
  std::vector<Step> steps;
  for (int i = 0; i < 40; ++i) {
    steps.push_back({0, i % 13});
    if (i % 5 == 4) steps.push_back({1, 0});
    if (i % 11 == 10) steps.push_back({2, 0});
    if (i == 25) steps.push_back({3, 0});
  }
  for (uint64_t crash_at = 0;; ++crash_at) {
    MemEnv env;
    Options o;
    o.env = &env;
    o.log_size = 3;
    o.lru_size = 0;
    std::map<std::string, std::string> durable;  // as of the last fsync point
    std::map<std::string, std::vector<std::string>> written;
    std::map<std::string, std::string> current;
    bool clear_in_doubt = false;
    env.CrashAfter(crash_at);
    {
      auto index = RawIndex::Open(kRoot, TestSchema(), o);
      if (index.ok()) {
        for (const Step& step : steps) {
          absl::Status s;
          const std::string k = Key(step.key);
          switch (step.kind) {
            case 0: {
              const std::string v = Value(static_cast<int>(written[k].size()));
              // A replace that reports an error (say, its merge could not
              // start) may still have reached the log.
              written[k].push_back(v);
              s = (*index)->Replace(k, v);
              if (s.ok()) current[k] = v;
              break;
            }
            case 1: {
              FlushOptions f;
              f.with_fsync = true;
              s = (*index)->Flush(f);
              if (s.ok()) durable = current;
              break;
            }
            case 2:
              s = (*index)->Merge();
              if (s.ok()) s = (*index)->AwaitMerge();
              if (s.ok()) durable = current;
              break;
            case 3:
              s = (*index)->Clear();
              if (s.ok()) {
                current.clear();
                durable.clear();
                written.clear();
              }
              break;
          }
          if (!s.ok()) {
            // A clear interrupted by the crash may or may not have happened.
            clear_in_doubt = step.kind == 3;
            break;
          }
        }
        (void)(*index)->Close();
      }
    }
    const bool crashed = env.crashed();
    CrashOptions crash{crash_at * 7919 + 1, true, true};
    // Every other crash point with the directory operations in any order.
    crash.dir_ops_in_any_order = crash_at % 2 == 1;
    env.Restart(crash);
    auto index = RawIndex::Open(kRoot, TestSchema(), o);
    ASSERT_TRUE(index.ok())
        << "crash at " << crash_at << ": " << index.status();
    std::map<std::string, std::string> seen = All(**index);
    if (clear_in_doubt && seen.empty()) durable.clear();
    for (const auto& [k, v] : durable) {
      ASSERT_TRUE(seen.count(k)) << "crash at " << crash_at << ": lost " << k;
      const auto& vs = written[k];
      const auto pos = std::find(vs.begin(), vs.end(), v);
      ASSERT_NE(std::find(pos, vs.end(), seen[k]), vs.end())
          << "crash at " << crash_at << ": " << k << " rolled back to "
          << seen[k];
    }
    for (const auto& [k, v] : seen) {
      const auto& vs = written[k];
      ASSERT_NE(std::find(vs.begin(), vs.end(), v), vs.end())
          << "crash at " << crash_at << ": " << k << " -> " << v
          << " was never written";
    }
    if (!crashed) break;  // the workload ran to the end: every point covered
  }
}

TEST_F(RawIndexTest, ParallelFindsDuringReplacesAndMerges) {
  auto index = Open(Opts(16));
  for (int i = 0; i < 100; ++i) ASSERT_OK(index->Replace(Key(i), "init"));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      std::string v(4, '\0');
      while (!stop) {
        for (int i = 0; i < 100; ++i) {
          auto found = index->Find(Key(i), v.data());
          if (!found.ok() || !*found) ++bad;
        }
      }
    });
  }
  for (int round = 0; round < 30; ++round) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_OK(index->Replace(Key(i), Value(round)));
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  ASSERT_OK(index->AwaitMerge());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(29));
}

// A crash at the very end of a merge commit (log reset, writes made during the
// merge copied into it, log_async not yet deleted) must not let the older
// records that log_async's file kept override the newer copies: found by the
// model test (CrashKeepsDurableAndInventsNothing).
TEST_F(RawIndexTest, CrashAtMergeEndNeverReplaysOlderLogAsyncValues) {
  const std::string a = Key(0), b = Key(7);
  for (uint64_t crash_at = 0;; ++crash_at) {
    MemEnv env;
    absl::Notification release;
    std::atomic<bool> hold{true};
    Options o;
    o.env = &env;
    o.log_size = 100;
    o.lru_size = 0;
    o.test_hook = [&](HookPoint p) {
      if (p == HookPoint::kMergeBefore && hold.exchange(false)) {
        release.WaitForNotification();
      }
      return absl::OkStatus();
    };
    FlushOptions fsync;
    fsync.with_fsync = true;
    {
      auto w = *RawIndex::Open(kRoot, TestSchema(), o);
      ASSERT_OK(w->Replace(a, "v000"));
      ASSERT_OK(w->Replace(b, "v000"));
      ASSERT_OK(w->Merge());  // held in kMergeBefore
      ASSERT_OK(w->Replace(b, "v001"));
      ASSERT_OK(w->Flush(fsync));        // log_async's file: b=v001
      ASSERT_OK(w->Replace(b, "v002"));  // buffered only
      ASSERT_OK(w->Replace(a, "v002"));
      env.CrashAfter(crash_at);
      release.Notify();
      (void)w->AwaitMerge();
      (void)w->Close();
    }
    const bool crashed = env.crashed();
    env.Restart(CrashOptions{crash_at, /*keep_unsynced_prefix=*/false, true});
    o.test_hook = nullptr;
    auto r = RawIndex::Open(kRoot, TestSchema(), o);
    ASSERT_OK(r);
    const auto va = Get(**r, a), vb = Get(**r, b);
    // Written in this order: b=v001 (durable), b=v002, a=v002.
    if (va == "v002") {
      EXPECT_EQ(vb, "v002") << "crash at " << crash_at;
    } else {
      EXPECT_EQ(va, "v000") << "crash at " << crash_at;
      EXPECT_TRUE(vb == "v001" || vb == "v002") << "crash at " << crash_at;
    }
    if (!crashed) break;
  }
}

// A crash anywhere in a merge that writes went to log_async during (flushed
// but not synced, so a power cut may keep any prefix of them, tear the last,
// or keep a later header offset without the records it covers) recovers a
// prefix of the writes, in either layout the reopen asks for (a conversion).
TEST_F(RawIndexTest, ACrashInAMergeWithWritesInLogAsyncRecoversAPrefix) {
  constexpr int kKeys = 6, kBefore = 6, kDuring = 20;
  // Write i (1-based) binds key (i - 1) % kKeys (before the merge) or
  // (i - 1) % (kKeys - 1) (during it) to value i.
  auto key_of = [&](int i) {
    return Key(i <= kBefore ? (i - 1) % kKeys : (i - 1) % (kKeys - 1));
  };
  auto state_after = [&](int p) {
    std::map<std::string, std::string> st;
    for (int i = 1; i <= p; ++i) st[key_of(i)] = Value(i);
    return st;
  };
  for (const Layout written : {Layout::kSingleFile, Layout::kTiered}) {
    for (const Layout reopened : {Layout::kSingleFile, Layout::kTiered}) {
      for (uint64_t crash_at = 0;; ++crash_at) {
        bool crashed = false;
        for (uint64_t seed = 0; seed < 8; ++seed) {
          for (int variant = 0; variant < 3; ++variant) {
            SCOPED_TRACE(absl::StrCat(
                "written ", written == Layout::kTiered ? "tiered" : "single",
                ", reopened ",
                reopened == Layout::kTiered ? "tiered" : "single",
                ", crash after ", crash_at, " mutations, seed ", seed,
                ", variant ", variant));
            MemEnv env;
            absl::Notification release;
            std::atomic<bool> hold{true};
            Options o = Opts(1000);
            o.env = &env;
            o.layout = written;
            o.test_hook = [&](HookPoint p) {
              if (p == HookPoint::kMergeBefore && hold.exchange(false)) {
                release.WaitForNotification();
              }
              return absl::OkStatus();
            };
            {
              auto w = Open(o);
              ASSERT_NE(w, nullptr);
              for (int i = 1; i <= kBefore; ++i) {
                ASSERT_OK(w->Replace(key_of(i), Value(i)));
              }
              ASSERT_OK(w->Merge());  // held; its start made them durable
              for (int i = kBefore + 1; i <= kBefore + kDuring; ++i) {
                ASSERT_OK(w->Replace(key_of(i), Value(i)));
                if (i % 5 == 0) {
                  ASSERT_OK(w->Flush());  // to log_async's file, unsynced
                }
              }
              env.CrashAfter(crash_at);
              release.Notify();
              (void)w->AwaitMerge();
              (void)w->Close();
            }
            crashed = crashed || env.crashed();
            CrashOptions co;
            co.seed = seed * 7 + crash_at;
            co.keep_unsynced_prefix = variant != 0;
            co.tear_last_write = true;
            co.overwrites_overtake_appends = variant == 2;
            env.Restart(co);
            Options ro = Opts(1000);
            ro.env = &env;
            ro.layout = reopened;
            auto r = Open(ro);
            ASSERT_NE(r, nullptr);
            const std::map<std::string, std::string> got = All(*r);
            bool prefix = false;
            for (int p = kBefore; p <= kBefore + kDuring && !prefix; ++p) {
              prefix = got == state_after(p);
            }
            if (!prefix) {
              std::string shown;
              for (const auto& [k, v] : got)
                absl::StrAppend(&shown, k, "=", v, " ");
              ADD_FAILURE() << "not a prefix of the writes: " << shown;
              return;
            }
          }
        }
        if (!crashed) break;
      }
    }
  }
}

// Generations stay readable: at the top of their range, a clear or merge is
// refused instead of writing a header that no open would accept.
TEST_F(RawIndexTest, GenerationAtItsLimitRefusesClearAndMerge) {
  {
    auto index = Open(Opts(100));
    ASSERT_OK(index->Replace(Key(1), Value(1)));
  }
  {
    IndexFile::ReadWriteOptions o;
    o.entry_size = TestSchema().entry_size();
    auto log = IndexFile::OpenReadWrite(&env_, "/store/index/log", o);
    ASSERT_OK(log);
    ASSERT_TRUE((*log)
                    ->WriteHeader({static_cast<int64_t>((*log)->offset()),
                                   IndexFile::kMaxGeneration - 1})
                    .ok());
  }
  auto index = Open(Opts(100));
  EXPECT_EQ(Get(*index, Key(1)), Value(1));
  const absl::Status cleared = index->Clear();
  EXPECT_THAT(cleared, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("/store/index/log")));
  EXPECT_EQ(index->Merge().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_OK(index->Close());
  auto reopened = Open(Opts(100));
  EXPECT_EQ(Get(*reopened, Key(1)), Value(1));
}

TEST_F(RawIndexTest, AMergeReleasesItsLockBeforeTheDataFileItReplacedIsClosed) {
  SlowCloseEnv slow(&env_, StorePath(kRoot, "merge"));
  Options o = Opts(/*log_size=*/1000);  // merges only when asked
  o.env = &slow;
  auto index = Open(o);
  for (int i = 0; i < 5; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
  ASSERT_OK(index->Merge());
  ASSERT_OK(index->AwaitMerge());
  // The data file the first merge wrote (opened as `merge`) is closed slowly.
  slow.Arm();
  for (int i = 5; i < 10; ++i) ASSERT_OK(index->Replace(Key(i), Value(i)));
  ASSERT_OK(index->Merge());
  ASSERT_TRUE(slow.closing().WaitForNotificationWithTimeout(absl::Seconds(30)));
  // While it closes, the merge is over for writers and readers alike.
  EXPECT_TRUE(MergeLockReleased(*index));
  EXPECT_EQ(Get(*index, Key(7)), Value(7));
  EXPECT_NE(slow.closed_on(), std::this_thread::get_id());
  slow.Release();
  EXPECT_OK(index->Close());
}

TEST_F(RawIndexTest, TieredMergeAndCompactionLeaveTheRunsTheyRetiredToClose) {
  SlowCloseEnv slow(&env_, StorePath(kRoot, "merge"));
  absl::Notification third_merge_started, compacted;
  std::atomic<int> merges{0};
  Options o = Opts(/*log_size=*/1000);  // merges only when asked
  o.env = &slow;
  o.layout = Layout::kTiered;
  // The first compaction (of the first two runs, which log merges wrote as
  // `merge`) commits while the third merge runs: whichever of the two lets
  // go of the folded runs last must not close them itself.
  o.test_hook = [&](HookPoint point) {
    if (point == HookPoint::kMergeBefore && ++merges == 3) {
      slow.Arm();
      third_merge_started.Notify();
      compacted.WaitForNotificationWithTimeout(absl::Seconds(30));
    } else if (point == HookPoint::kCompactionBefore) {
      third_merge_started.WaitForNotificationWithTimeout(absl::Seconds(30));
    } else if (point == HookPoint::kCompactionAfter &&
               !compacted.HasBeenNotified()) {
      compacted.Notify();
    }
    return absl::OkStatus();
  };
  auto index = Open(o);
  int next = 0;
  for (int merge = 0; merge < 3; ++merge) {
    for (int i = 0; i < 5; ++i, ++next) {
      ASSERT_OK(index->Replace(Key(next), Value(next)));
    }
    // Waits for the merge before (not for the compaction).
    ASSERT_OK(index->Merge());
  }
  ASSERT_TRUE(slow.closing().WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(compacted.HasBeenNotified());
  EXPECT_TRUE(MergeLockReleased(*index));
  for (int i = 0; i < next; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(i));
  EXPECT_NE(slow.closed_on(), std::this_thread::get_id());
  slow.Release();
  EXPECT_OK(index->AwaitMerge());
  EXPECT_OK(index->Close());
}

TEST_F(RawIndexTest, ATieredMergeThatFoldsEveryRunLeavesThemToClose) {
  SlowCloseEnv slow(&env_, StorePath(kRoot, "merge"));
  Options o = Opts(/*log_size=*/1000);  // merges only when asked
  o.env = &slow;
  o.layout = Layout::kTiered;
  // Without compactions the runs pile up until a log merge folds them all
  // (kMaxRuns): the merge's own view of the runs is then the last to hold
  // them.
  o.test_hook = [](HookPoint point) {
    return point == HookPoint::kCompactionBefore
               ? absl::UnavailableError("compactions are off in this test")
               : absl::OkStatus();
  };
  auto index = Open(o);
  int next = 0;
  auto merge_one_more = [&] {
    ASSERT_OK(index->Replace(Key(next), Value(next)));
    ++next;
    ASSERT_OK(index->Merge());
    // The compactions' refusals.
    (void)index->AwaitMerge();
  };
  for (int i = 0; i + 1 < static_cast<int>(kMaxRuns); ++i) merge_one_more();
  slow.Arm();
  ASSERT_OK(index->Replace(Key(next), Value(next)));
  ++next;
  ASSERT_OK(index->Merge());
  ASSERT_TRUE(slow.closing().WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(MergeLockReleased(*index));
  for (int i = 0; i < next; ++i) EXPECT_EQ(Get(*index, Key(i)), Value(i));
  EXPECT_NE(slow.closed_on(), std::this_thread::get_id());
  slow.Release();
  (void)index->AwaitMerge();
  EXPECT_OK(index->Close());
}

TEST_F(RawIndexTest, AReaderSyncDoesNotCloseTheDataFileItLetGoOf) {
  auto rw = Open(Opts(/*log_size=*/1000));
  for (int i = 0; i < 5; ++i) ASSERT_OK(rw->Replace(Key(i), Value(i)));
  ASSERT_OK(rw->Merge());
  ASSERT_OK(rw->AwaitMerge());
  SlowCloseEnv slow(&env_, StorePath(kRoot, "data"));
  Options ro_opts = Opts();
  ro_opts.env = &slow;
  ro_opts.readonly = true;
  auto ro = Open(ro_opts);
  EXPECT_EQ(Get(*ro, Key(3)), Value(3));
  slow.Arm();
  for (int i = 5; i < 10; ++i) ASSERT_OK(rw->Replace(Key(i), Value(i)));
  ASSERT_OK(rw->Merge());
  ASSERT_OK(rw->AwaitMerge());
  ASSERT_OK(ro->Sync());
  ASSERT_TRUE(slow.closing().WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Finds go on while the old data file closes, on another thread.
  EXPECT_EQ(Get(*ro, Key(8)), Value(8));
  EXPECT_NE(slow.closed_on(), std::this_thread::get_id());
  slow.Release();
  EXPECT_OK(ro->Close());
  EXPECT_OK(rw->Close());
}

}  // namespace
}  // namespace kvindex
