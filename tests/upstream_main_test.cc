// Port of the OCaml index's test/unix/main.ml: its live, on restart, readonly,
// close, filter and throttle groups. Fixture and differences by design:
// tests/upstream_fixture.h.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "testing/hooks.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

using ::testing::HasSubstr;

// ==== live ==================================================================

TEST_F(UpstreamTest, LiveFindPresent) {
  KV_CONTEXT(ctx, Full());
  CheckEquivalence(*ctx->rw, ctx->tbl);
}

TEST_F(UpstreamTest, LiveFindAbsent) {
  KV_CONTEXT(ctx, Full());
  for (int i = 0; i < 100; ++i)
    KV_EXPECT_ABSENT(*ctx->rw, RandomNewKey(ctx->tbl));
}

TEST_F(UpstreamTest, LiveReplace) {
  KV_CONTEXT(ctx, Full());
  const std::string k = NewKey(), v = NewValue(), v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ctx->rw->Replace(k, v2));
  KV_EXPECT_BINDING(*ctx->rw, k, v2);
}

TEST_F(UpstreamTest, LiveFailAddKey) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = RandomString(2);
  absl::Status st = ctx->rw->Replace(k, NewValue());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  // The untyped API checks too, and names the store.
  st = ctx->rw->raw().Replace(k, NewValue());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr(ctx->root()));
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
}

TEST_F(UpstreamTest, LiveFailAddValue) {
  KV_CONTEXT(ctx, Empty());
  const std::string v = RandomString(200);
  absl::Status st = ctx->rw->Replace(NewKey(), v);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  st = ctx->rw->raw().Replace(NewKey(), v);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr(ctx->root()));
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
}

TEST_F(UpstreamTest, LiveMembership) {
  KV_CONTEXT(ctx, Full());
  CheckEquivalenceMem(*ctx->rw, ctx->tbl);
  EXPECT_FALSE(Mem(*ctx->rw, RandomNewKey(ctx->tbl)));
}

TEST_F(UpstreamTest, LiveClearAndIter) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Clear());
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
}

TEST_F(UpstreamTest, LiveClearAndFind) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Clear());
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ctx->rw, k);
}

TEST_F(UpstreamTest, LiveOpenAfterClear) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Clear());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*rw2, k);
  // Also once the instance really closed: the clear is on disk.
  ctx->CloseAll();
  KV_CLONE(rw3, ctx, /*readonly=*/false);
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*rw3, k);
  EXPECT_TRUE(IterAll(*rw3).empty());
}

TEST_F(UpstreamTest, LiveFilesOnDiskAfterClear) {
  Context* ctx = NewContext(Config());
  auto rw = Idx::Open(ctx->root(), ctx->MakeOptions(false, true, false));
  ASSERT_OK(rw);
  for (int i = 0; i < 103; ++i) ASSERT_OK((*rw)->Replace(NewKey(), NewValue()));
  ASSERT_OK((*rw)->Flush());
  ASSERT_OK((*rw)->Clear());
  ASSERT_OK((*rw)->Close());
  auto log = env_.Contents(ctx->Path("log"));
  ASSERT_OK(log);
  EXPECT_EQ(log->size(), IndexFile::kHeaderSize);
  EXPECT_FALSE(env_.FileExists(ctx->Path("log_async")).value());
  EXPECT_FALSE(env_.FileExists(ctx->Path("data")).value());
  EXPECT_FALSE(env_.FileExists(ctx->Path("merge")).value());
  EXPECT_FALSE(env_.FileExists(ctx->Path("log_tmp")).value());
}

TEST_F(UpstreamTest, LiveDuplicateEntries) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue(),
                    v3 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v1));
  ASSERT_OK(ctx->rw->Replace(k, v2));
  ASSERT_OK(ctx->rw->Replace(k, v3));
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(IterAll(*ctx->rw), (Table{{k, v3}}));
}

// ==== on restart ============================================================

TEST_F(UpstreamTest, OnRestartFindPresent) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  CheckEquivalence(*ctx->rw, ctx->tbl);
  CheckEquivalence(*rw2, ctx->tbl);
}

TEST_F(UpstreamTest, OnRestartFindAbsent) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  for (int i = 0; i < 100; ++i) {
    const std::string k = RandomNewKey(ctx->tbl);
    KV_EXPECT_ABSENT(*ctx->rw, k);
    KV_EXPECT_ABSENT(*rw2, k);
  }
}

TEST_F(UpstreamTest, OnRestartReplace) {
  KV_CONTEXT(ctx, Full(Config(), 5));
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  const std::string k = NewKey(), v = NewValue(), v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ctx->rw->Replace(k, v2));
  KV_EXPECT_BINDING(*ctx->rw, k, v2);
  KV_EXPECT_BINDING(*rw2, k, v2);
}

TEST_F(UpstreamTest, OnRestartMembership) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  CheckEquivalenceMem(*rw2, ctx->tbl);
}

// By design: a read-only open with fresh = true is kInvalidArgument (upstream
// RO_not_allowed), whether or not a read-only instance is already cached.
TEST_F(UpstreamTest, OnRestartFailRestartReadonlyFresh) {
  KV_CONTEXT(ctx, Empty());
  auto ro = ctx->TryOpen(/*readonly=*/true, /*fresh=*/true);
  EXPECT_EQ(ro.status().code(), absl::StatusCode::kInvalidArgument)
      << ro.status();
  EXPECT_THAT(ro.status().message(), HasSubstr(ctx->root()));

  KV_CLONE(cached_ro, ctx, /*readonly=*/true);
  (void)cached_ro;
  ro = ctx->TryOpen(/*readonly=*/true, /*fresh=*/true);
  EXPECT_EQ(ro.status().code(), absl::StatusCode::kInvalidArgument)
      << "with a cached read-only instance: " << ro.status();
}

TEST_F(UpstreamTest, OnRestartInSync) {
  KV_CONTEXT(ctx, Full());
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK(rw2->Replace(k2, v2));
  KV_EXPECT_BINDING(*ctx->rw, k2, v2);
  KV_EXPECT_BINDING(*rw2, k1, v1);
}

TEST_F(UpstreamTest, OnRestartDuplicateEntriesInLog) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v1));
  ASSERT_OK(ctx->rw->Replace(k, v2));
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  EXPECT_EQ(IterAll(*rw2), (Table{{k, v2}}));
  // The log holds two records; its test view gives the distinct bindings.
  EXPECT_EQ(rw2->raw().TEST_LogEntries(), std::vector<std::string>{k + v2});
}

// ==== readonly ==============================================================

// A read-only sync interleaved with a merge: the merge waits in kMergeBefore
// (WaitForMerge() returns once it is there) until a sync has read the log
// header; the sync then waits there until the merge reaches `sync_resumes_at`.
class SyncAcrossMerge {
 public:
  SyncAcrossMerge(Context& ctx, HookPoint sync_resumes_at)
      : hook_(ctx.hooks, [this, sync_resumes_at](HookPoint p) {
          if (p == HookPoint::kMergeBefore) {
            merge_started_.Release();
            merge_.Acquire();
          }
          if (p == sync_resumes_at) sync_.Release();
          if (p == HookPoint::kSyncAfterOffsetRead) {
            merge_.Release();
            sync_.Acquire();
          }
          return absl::OkStatus();
        }) {}

  void WaitForMerge() { merge_started_.Acquire(); }

 private:
  Semaphore merge_started_, merge_, sync_;
  ScopedHook hook_;  // last: emptied before the semaphores go away
};

TEST_F(UpstreamTest, ReadonlyAdd) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  // Upstream uses the (empty) table of an empty index here; use real bindings.
  const Table tbl2 = RandomTable(103);
  for (const auto& [k, v] : tbl2) ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ctx->rw->Flush());
  ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, tbl2);
}

TEST_F(UpstreamTest, ReadonlyReadAfterClear) {
  Config config;
  config.lru_size = 10;  // the clear must also empty the LRU
  KV_CONTEXT(ctx, Full(config));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  ASSERT_OK(ctx->rw->Clear());
  ASSERT_OK(ro->Sync());
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ro, k);
  ASSERT_OK(ctx->rw->Close());
  ASSERT_OK(ro->Close());

  KV_CLONE(rw, ctx, /*readonly=*/false);
  KV_CLONE(ro2, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(rw->Replace(k, v));
  KV_EXPECT_BINDING(*rw, k, v);
  KV_EXPECT_ABSENT(*ro2, k);
  ASSERT_OK(rw->Flush());
  ASSERT_OK(ro2->Sync());
  KV_EXPECT_BINDING(*rw, k, v);
  KV_EXPECT_BINDING(*ro2, k, v);
  ASSERT_OK(rw->Clear());
  KV_EXPECT_ABSENT(*rw, k);
  KV_EXPECT_BINDING(*ro2, k, v);  // not synced yet
  ASSERT_OK(ro2->Sync());
  KV_EXPECT_ABSENT(*rw, k);
  KV_EXPECT_ABSENT(*ro2, k);
}

// The read-only instance is snapshot isolated: it keeps reading the old values
// while the writer clears and rewrites them, until a sync (interleaved here
// with the end of a merge) moves it to the new state.
TEST_F(UpstreamTest, ReadonlySnapshotIsolation) {
  Config config;
  config.throttle = Throttle::kOvercommitMemory;
  KV_CONTEXT(ctx, Full(config));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  Table tbl2;
  for (const auto& [k, v] : ctx->tbl) tbl2[k] = NewValue();
  const auto& [k, v] = *tbl2.begin();

  SyncAcrossMerge interleaving(*ctx, HookPoint::kMergeAfter);
  ASSERT_OK(ctx->rw->Clear());
  ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ctx->rw->Merge());
  for (const auto& [k2, v2] : tbl2) ASSERT_OK(ctx->rw->Replace(k2, v2));
  ASSERT_OK(ctx->rw->Flush());
  CheckEquivalence(*ctx->rw, tbl2);
  CheckEquivalence(*ro, ctx->tbl);
  ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, tbl2);
  EXPECT_OK(ctx->rw->AwaitMerge());
}

TEST_F(UpstreamTest, ReadonlyVAfterReplace) {
  KV_CONTEXT(ctx, Full());
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  ASSERT_OK(ctx->rw->Close());
  ASSERT_OK(ro->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false);
  KV_EXPECT_BINDING(*rw, k, v);
}

// By design: misuse of a read-only instance is kFailedPrecondition (upstream
// RO_not_allowed; upstream's merge on a read-only instance even fails an
// assertion).
TEST_F(UpstreamTest, ReadonlyAddNotAllowed) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v = NewValue();
  absl::Status st = ro->Replace(k, v);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr(ctx->root()));
  EXPECT_EQ(ro->Clear().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->Merge().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->TryMerge().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->IsMerging().status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->Filter([](const std::string&, const std::string&) {
                return false;
              }).code(),
            absl::StatusCode::kFailedPrecondition);
  // And the writer cannot sync (upstream RW_not_allowed).
  EXPECT_EQ(ctx->rw->Sync().code(), absl::StatusCode::kFailedPrecondition);
  KV_EXPECT_ABSENT(*ro, k);
}

TEST_F(UpstreamTest, ReadonlyFailReadIfNoFlush) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k);
}

TEST_F(UpstreamTest, ReadonlyVIsInSync) {
  KV_CONTEXT(ctx, Full());
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k, v));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_EXPECT_BINDING(*ro, k, v);
  CheckEquivalence(*ro, [&] {
    Table t = ctx->tbl;
    t[k] = v;
    return t;
  }());
}

// The reader, synced, finds `key` -> `value`; after the writer's clear it
// still does, until its next sync.
void ExpectClearSeenAtNextSync(Context& ctx, Idx& ro, const std::string& key,
                               const std::string& value) {
  ASSERT_OK(ro.Sync());
  KV_EXPECT_BINDING(ro, key, value);
  ASSERT_OK(ctx.rw->Clear());
  KV_EXPECT_BINDING(ro, key, value);
  ASSERT_OK(ro.Sync());
  KV_EXPECT_ABSENT(ro, key);
}

TEST_F(UpstreamTest, ReadonlyReadValuesAddedInLogBeforeClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  ExpectClearSeenAtNextSync(*ctx, *ro, k1, v1);
}

TEST_F(UpstreamTest, ReadonlyReadValuesAddedInIndexBeforeClear) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  ASSERT_OK(ctx->rw->Clear());
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndMerge(*ctx->rw, k1, v1));
  ExpectClearSeenAtNextSync(*ctx, *ro, k1, v1);
}

TEST_F(UpstreamTest, ReadonlyReadOldValuesInLogAfterClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k1, v1);
  ASSERT_OK(ctx->rw->Clear());
  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k2, v2));
  KV_EXPECT_BINDING(*ro, k1, v1);
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k2, v2);
  KV_EXPECT_ABSENT(*ctx->rw, k1);
  KV_EXPECT_ABSENT(*ro, k1);
}

TEST_F(UpstreamTest, ReadonlyReadOldValuesInIndexAfterClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  ASSERT_OK(ctx->rw->Clear());
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndMerge(*ctx->rw, k1, v1));
  ASSERT_OK(ro->Sync());
  ASSERT_OK(ctx->rw->Clear());
  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK(ReplaceAndMerge(*ctx->rw, k2, v2));
  KV_EXPECT_BINDING(*ro, k1, v1);  // still the old data file
  KV_EXPECT_ABSENT(*ctx->rw, k1);
  ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k1);
  KV_EXPECT_BINDING(*ro, k2, v2);
}

TEST_F(UpstreamTest, ReadonlyOpenAfterClear) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Clear());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ro, k);
  EXPECT_TRUE(IterAll(*ro).empty());
}

// A read-only sync paused right after reading the log header while a whole
// merge finishes still finds the writes made into log_async during the merge.
TEST_F(UpstreamTest, ReadonlyRaceBetweenSyncAndMerge) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1(kStringSize, '1'), k2(kStringSize, '2'),
      k3(kStringSize, '3');
  const std::string v1 = NewValue(), v2 = NewValue(), v3 = NewValue();
  SyncAcrossMerge interleaving(*ctx, HookPoint::kMergeAfter);
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  ASSERT_OK(ctx->rw->Merge());
  interleaving.WaitForMerge();
  ASSERT_OK(ctx->rw->Replace(k2, v2));
  ASSERT_OK(ctx->rw->Replace(k3, v3));
  ASSERT_OK(ctx->rw->Flush());
  ASSERT_OK(ro->Sync());
  EXPECT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_EXPECT_BINDING(*ro, k2, v2);
  KV_EXPECT_BINDING(*ro, k3, v3);
}

// A sync run inside clear's IO_clear hook (new log renamed in, old one not yet
// stamped) does not stop the next sync from seeing later writes.
TEST_F(UpstreamTest, ReadonlyRaceBetweenSyncAndClear) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  {
    ScopedHook hook(ctx->hooks,
                    At(HookPoint::kClearIo, [&] { EXPECT_OK(ro->Sync()); }));
    ASSERT_OK(ctx->rw->Clear());
  }
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k, v));
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  KV_EXPECT_BINDING(*ro, k, v);
  CheckEquivalence(*ro, Table{{k, v}});
}

// A sync paused after reading the log header, across the merge's log reset
// (After_clear), still finds the binding merged by it.
TEST_F(UpstreamTest, ReadonlyRaceBetweenSyncAndEndOfMerge) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1(kStringSize, '1'), k2(kStringSize, '2');
  const std::string v1 = NewValue(), v2 = NewValue();
  SyncAcrossMerge interleaving(*ctx, HookPoint::kMergeAfterClear);
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ctx->rw->Replace(k2, v2));
  interleaving.WaitForMerge();
  ASSERT_OK(ro->Sync());
  EXPECT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_BINDING(*ro, k1, v1);
}

// Four syncs during one blocked merge: the log is never reloaded (same
// generation) and log_async is opened exactly once.
TEST_F(UpstreamTest, ReadonlyReloadLogAndLogAsync) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  std::atomic<int> reload_log{0}, reload_log_async{0};
  Semaphore merge, sync;
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    switch (p) {
      case HookPoint::kMergeBefore:
        sync.Release();
        merge.Acquire();
        break;
      case HookPoint::kMergeAfterClear:
        sync.Release();
        break;
      case HookPoint::kSyncReloadLog:
        ++reload_log;
        break;
      case HookPoint::kSyncReloadLogAsync:
        ++reload_log_async;
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k2, v2));
  sync.Acquire();
  for (int i = 0; i < 4; ++i) ASSERT_OK(ro->Sync());
  merge.Release();
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_EXPECT_BINDING(*ro, k2, v2);
  EXPECT_EQ(reload_log.load(), 0) << "reloadings of log per merge";
  EXPECT_EQ(reload_log_async.load(), 1) << "reloadings of log_async per merge";
  EXPECT_OK(ctx->rw->AwaitMerge());
}

// ==== close =================================================================

TEST_F(UpstreamTest, CloseAndReopen) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(w, ctx, /*readonly=*/false);
  CheckEquivalence(*w, ctx->tbl);
}

// Upstream's check_logs: the distinct bindings of log and log_async; nullopt
// for log_async means that no log_async file exists.
void CheckLogs(MemEnv& env, const Context& ctx, const Idx& rw, size_t log_size,
               std::optional<size_t> log_async_size, const char* where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(rw.raw().TEST_LogEntries().size(), log_size) << "log entries";
  EXPECT_EQ(env.FileExists(ctx.Path("log_async")).value(),
            log_async_size.has_value())
      << "log_async present";
  EXPECT_EQ(rw.raw().TEST_LogAsyncEntries().size(), log_async_size.value_or(0))
      << "log_async entries";
}

// The merge thread fails right after the log reset (upstream: an exception in
// the After_clear hook); the handle is closed immediately; reopening finds
// everything, including what was written during the merge.
TEST_F(UpstreamTest, CloseAndReopenMore) {
  Config config;
  config.log_size = 2;
  KV_CONTEXT(ctx, Full(config));
  Semaphore merge;
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p != HookPoint::kMergeAfterClear) return absl::OkStatus();
    merge.Release();
    return absl::InternalError("Stop");
  });
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue(), k3 = NewKey(), v3 = NewValue();
  // Upstream closes first and then awaits the merge's future; the outcome is
  // read from the handle here, so before closing it.
  auto close = [&](Idx* rw, size_t log_size, size_t log_async_size,
                   const char* where) {
    merge.Acquire();
    CheckLogs(env_, *ctx, *rw, log_size, log_async_size, where);
    absl::Status result = rw->AwaitMerge();
    EXPECT_EQ(result.code(), absl::StatusCode::kInternal) << result;
    EXPECT_THAT(result.message(), HasSubstr("Stop"));
    EXPECT_OK(rw->Close(/*immediately=*/true));
  };

  ASSERT_OK(ctx->rw->Replace(k1, v1));
  CheckLogs(env_, *ctx, *ctx->rw, 1, std::nullopt, "k1 in log");
  ASSERT_OK(ctx->rw->Merge());
  close(ctx->rw, 0, 0, "first failed merge");

  KV_CLONE(rw, ctx, /*readonly=*/false, /*fresh=*/false);
  ctx->tbl[k1] = v1;
  CheckEquivalence(*rw, ctx->tbl);

  ASSERT_OK(rw->Replace(k2, v2));
  CheckLogs(env_, *ctx, *rw, 1, std::nullopt, "k2 in log");
  ASSERT_OK(rw->Merge());
  ASSERT_OK(rw->Replace(k3, v3));
  // Upstream: log 0, log_async 1. Here the commit swapped in a log holding
  // log_async's records before the hook, and left log_async's file behind.
  close(rw, 1, 0, "second failed merge");

  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/false);
  ctx->tbl[k2] = v2;
  ctx->tbl[k3] = v3;
  CheckEquivalence(*rw2, ctx->tbl);
}

// After a merge-thread failure the instance keeps working, and the next merge
// replays the leftover log_async first (upstream's writes go there; here, past
// the swap of the next log, they go to the log).
TEST_F(UpstreamTest, CloseCrashAndContinue) {
  Config config;
  config.log_size = 2;
  KV_CONTEXT(ctx, Full(config));
  Idx* rw = ctx->rw;
  std::atomic<bool> fail{false};
  Semaphore merge;
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p != HookPoint::kMergeAfterClear || !fail) return absl::OkStatus();
    merge.Release();
    return absl::InternalError("Stop");
  });
  auto force_merge = [&](const char* where) {
    fail = false;
    EXPECT_OK(rw->Merge());
    EXPECT_OK(rw->AwaitMerge());
    CheckLogs(env_, *ctx, *rw, 0, std::nullopt, where);
  };
  auto failing_merge = [&] {
    fail = true;
    EXPECT_OK(rw->Merge());
    merge.Acquire();
    absl::Status result = rw->AwaitMerge();
    EXPECT_EQ(result.code(), absl::StatusCode::kInternal) << result;
    fail = false;
  };
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue(), k3 = NewKey(), v3 = NewValue();

  force_merge("empty log and log_async");
  ASSERT_OK(rw->Replace(k1, v1));
  CheckLogs(env_, *ctx, *rw, 1, std::nullopt, "k1 in log");
  failing_merge();
  CheckLogs(env_, *ctx, *rw, 0, 0, "k1 merged, merge thread failed");
  ctx->tbl[k1] = v1;
  CheckEquivalence(*rw, ctx->tbl);

  // Upstream writes go to the leftover log_async. Here the commit swapped in
  // the next log before the hook: writes go there, and log_async's file,
  // left behind, holds nothing the log lacks.
  ASSERT_OK(rw->Replace(k2, v2));
  CheckLogs(env_, *ctx, *rw, 1, 0, "k2 in the log");
  ctx->tbl[k2] = v2;
  CheckEquivalence(*rw, ctx->tbl);

  failing_merge();  // replays log_async first
  CheckLogs(env_, *ctx, *rw, 0, 0, "log_async replayed and merged");
  CheckEquivalence(*rw, ctx->tbl);

  ASSERT_OK(rw->Replace(k3, v3));
  CheckLogs(env_, *ctx, *rw, 1, 0, "k3 in the log");
  ctx->tbl[k3] = v3;
  CheckEquivalence(*rw, ctx->tbl);

  force_merge("full merge");
  CheckEquivalence(*rw, ctx->tbl);
  EXPECT_OK(rw->Close());
}

TEST_F(UpstreamTest, CloseFindAbsent) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false);
  for (int i = 0; i < 100; ++i) KV_EXPECT_ABSENT(*rw, RandomNewKey(ctx->tbl));
}

TEST_F(UpstreamTest, CloseReplace) {
  KV_CONTEXT(ctx, Full(Config(), 5));
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false);
  const std::string k = NewKey(), v = NewValue(), v2 = NewValue();
  ASSERT_OK(rw->Replace(k, v));
  ASSERT_OK(rw->Replace(k, v2));
  KV_EXPECT_BINDING(*rw, k, v2);
}

TEST_F(UpstreamTest, CloseOpenTwoInstancesCloseOne) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  ASSERT_OK(ctx->rw->Close());
  CheckEquivalence(*ro, ctx->tbl);
}

TEST_F(UpstreamTest, CloseAndReopenOnReadonly) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  CheckEquivalence(*ro, ctx->tbl);
}

// By design: operations on a closed handle are kFailedPrecondition naming the
// store and saying "closed" (upstream: Closed).
void ExpectAllFailClosed(Idx& index, const std::string& root,
                         const std::string& k, const std::string& v) {
  auto check = [&](const absl::Status& st, const char* op) {
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition)
        << op << ": " << st;
    EXPECT_THAT(st.message(), HasSubstr("closed")) << op;
    EXPECT_THAT(st.message(), HasSubstr(root)) << op;
  };
  check(index.Clear(), "clear");
  check(index.Find(k).status(), "find");
  check(index.Mem(k).status(), "mem");
  check(index.Replace(k, v), "replace");
  check(index.Iter([](const std::string&, const std::string&) {}), "iter");
  check(index.Merge(), "merge");
  check(index.TryMerge(), "try_merge");
  check(index.AwaitMerge(), "await_merge");
  check(index.IsMerging().status(), "is_merging");
  check(index.Flush(), "flush");
  check(index.Sync(), "sync");
  check(
      index.Filter([](const std::string&, const std::string&) { return true; }),
      "filter");
}

TEST_F(UpstreamTest, CloseNonCloseOperationsFailAfterClose) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ro->Close());
  ExpectAllFailClosed(*ro, ctx->root(), k, v);
  ASSERT_OK(ctx->rw->Close());
  ExpectAllFailClosed(*ctx->rw, ctx->root(), k, v);
}

TEST_F(UpstreamTest, CloseDoubleClose) {
  KV_CONTEXT(ctx, Full());
  ASSERT_OK(ctx->rw->Close());
  ASSERT_OK(ctx->rw->Close());
  absl::Status st = ctx->rw->Flush();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("closed"));
}

TEST_F(UpstreamTest, CloseDoubleRestart) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false, /*fresh=*/true);
  KV_EXPECT_ABSENT(*rw, k);
  ASSERT_OK(rw->Close());
  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/false);
  KV_EXPECT_ABSENT(*rw2, k);
}

// After a merge aborted by close(immediately): none of its commit hooks ran,
// and its file is gone, with no descriptor left open on it.
void ExpectNothingOfTheMergeLeft(MemEnv& env, const Context& ctx,
                                 const MergeAbortGate& gate) {
  EXPECT_EQ(gate.commit_hooks(), 0);
  EXPECT_EQ(env.OpenCount(ctx.Path("merge")), 0);
  EXPECT_FALSE(env.FileExists(ctx.Path("merge")).value());
}

// close(immediately) during a merge paused while it reads (MergeHoldPoint):
// the merge aborts (kAborted, not OK, not an error), its After* hooks never
// run, and no descriptor of the merge file stays open. A second handle keeps
// the instance alive to read the outcome and checks that the next merge is not
// cancelled too.
TEST_F(UpstreamTest, CloseAbortedMerge) {
  KV_CONTEXT(ctx, Full(Config(), 100));
  KV_CLONE(other, ctx, /*readonly=*/false);
  MergeAbortGate gate(*ctx, HookPoint::kMergeBefore, MergeHoldPoint());
  ASSERT_OK(ctx->rw->Merge());
  gate.WaitForMerge();
  ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  absl::Status result = other->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  ExpectNothingOfTheMergeLeft(env_, *ctx, gate);
  CheckEquivalence(*other, ctx->tbl);

  gate.Disarm();
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ReplaceAndMerge(*other, k, v));
  ctx->tbl[k] = v;
  CheckEquivalence(*other, ctx->tbl);
}

// Same, closing the last handle (upstream's exact setting): nothing of the
// merge survives, and a reopened index has everything and merges fine.
TEST_F(UpstreamTest, CloseAbortedMergeOnLastHandle) {
  KV_CONTEXT(ctx, Full(Config(), 100));
  MergeAbortGate gate(*ctx, HookPoint::kMergeBefore, MergeHoldPoint());
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  ctx->tbl[k] = v;
  ASSERT_OK(ctx->rw->Merge());
  gate.WaitForMerge();
  ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  ExpectNothingOfTheMergeLeft(env_, *ctx, gate);
  for (const char* name : {"data", "log", "log_async", "lock"}) {
    EXPECT_EQ(env_.OpenCount(ctx->Path(name)), 0) << name;
  }

  gate.Disarm();
  KV_CLONE(rw, ctx, /*readonly=*/false);
  CheckEquivalence(*rw, ctx->tbl);
  ASSERT_OK(ReplaceAndMerge(*rw, NewKey(), NewValue()));
}

// ==== filter ================================================================

Config FilterConfig() {
  Config c;
  c.lru_size = 10;  // filter must also affect the LRU
  return c;
}

// Filters the bindings of `key` out of `index`.
absl::Status FilterOut(Idx& index, const std::string& key) {
  return index.Filter(
      [&](const std::string& k, const std::string&) { return k != key; });
}

TEST_F(UpstreamTest, FilterNone) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  ASSERT_OK(ctx->rw->Filter(
      [](const std::string&, const std::string&) { return true; }));
  CheckEquivalence(*ctx->rw, ctx->tbl);
}

TEST_F(UpstreamTest, FilterAll) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const auto& [k0, v0] = *ctx->tbl.begin();
  KV_EXPECT_BINDING(*ctx->rw, k0, v0);  // cached in the LRU
  ASSERT_OK(ctx->rw->Filter(
      [](const std::string&, const std::string&) { return false; }));
  CheckEquivalence(*ctx->rw, Table());
  // Finds on an index whose data file lost every record.
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ctx->rw, k);
}

TEST_F(UpstreamTest, FilterOne) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  KV_EXPECT_BINDING(*ctx->rw, k, ctx->tbl[k]);  // now in the LRU
  ctx->tbl.erase(k);
  ASSERT_OK(FilterOut(*ctx->rw, k));
  KV_EXPECT_ABSENT(*ctx->rw, k);
  CheckEquivalence(*ctx->rw, ctx->tbl);
}

TEST_F(UpstreamTest, FilterCloneThenFilter) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  ASSERT_OK(FilterOut(*ctx->rw, k));
  CheckEquivalence(*ctx->rw, ctx->tbl);
  CheckEquivalence(*rw2, ctx->tbl);
}

TEST_F(UpstreamTest, FilterThenClone) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  ASSERT_OK(FilterOut(*ctx->rw, k));
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  CheckEquivalence(*ctx->rw, ctx->tbl);
  CheckEquivalence(*rw2, ctx->tbl);
}

TEST_F(UpstreamTest, FilterEmptyAfterFilterAndFresh) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  ASSERT_OK(FilterOut(*ctx->rw, k));
  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/true);
  CheckEquivalence(*rw2, Table());
}

// ==== throttle ==============================================================

// Overcommit: 103 writes while a forced merge is blocked neither start another
// merge nor block.
TEST_F(UpstreamTest, ThrottleForceMerge) {
  Config config;
  config.throttle = Throttle::kOvercommitMemory;
  KV_CONTEXT(ctx, Full(config));
  Semaphore m;
  ScopedHook hook(ctx->hooks,
                  At(HookPoint::kMergeBefore, [&] { m.Acquire(); }));
  const uint64_t merges = MergesStarted();
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges);
  ASSERT_OK(ctx->rw->Merge());
  EXPECT_EQ(MergesStarted(), merges + 1);
  for (const auto& [k, v] : ctx->tbl) ASSERT_OK(ctx->rw->Replace(k, v));
  EXPECT_EQ(MergesStarted(), merges + 1);
  EXPECT_EQ(ctx->rw->IsMerging().value_or(false), true);
  m.Release();
  EXPECT_OK(ctx->rw->AwaitMerge());
}

// Overcommit: the 5th write starts a merge; 5 more during it start none; after
// it the next write starts one, which completes.
TEST_F(UpstreamTest, ThrottleImplicitMerge) {
  Config config;
  config.throttle = Throttle::kOvercommitMemory;
  KV_CONTEXT(ctx, Empty(config));
  Semaphore m;
  std::atomic<bool> block{true};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    if (block) m.Acquire();
                  }));
  const uint64_t merges = MergesStarted();
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    EXPECT_EQ(MergesStarted(), merges) << "write " << i;
  }
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges + 1) << "the 5th write starts a merge";
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    EXPECT_EQ(MergesStarted(), merges + 1) << "overcommitted write " << i;
  }
  block = false;
  m.Release();
  EXPECT_OK(ctx->rw->AwaitMerge());
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges + 2)
      << "the overcommitted log starts a merge at the next write";
  EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(IterAll(*ctx->rw).size(), 11u);
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
