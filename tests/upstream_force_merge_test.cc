// Port of the OCaml index's test/unix/force_merge.ml: forced merges racing
// with writes, finds, syncs, clears and closes, paused at their hooks.
// Fixture and differences by design: tests/upstream_fixture.h.
#include <atomic>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "io/mem_env.h"
#include "testing/hooks.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

using test::Wait;

TEST_F(UpstreamTest, MergeReadonlyInSequence) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  KV_CLONE(r2, ctx, /*readonly=*/true);
  KV_CLONE(r3, ctx, /*readonly=*/true);
  for (Idx* r : {r1, r2, r3}) {
    for (const auto& [k, v] : ctx->tbl) KV_EXPECT_BINDING(*r, k, v);
  }
  ExpectFewFilesOpen(*ctx);
}

TEST_F(UpstreamTest, MergeReadonlyInterleaved) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  KV_CLONE(r2, ctx, /*readonly=*/true);
  KV_CLONE(r3, ctx, /*readonly=*/true);
  for (const auto& [k, v] : ctx->tbl) {
    KV_EXPECT_BINDING(*r1, k, v);
    KV_EXPECT_BINDING(*r2, k, v);
    KV_EXPECT_BINDING(*r3, k, v);
  }
  ExpectFewFilesOpen(*ctx);
}

// Ten rounds of writes, flushes, forced merges (each queued behind the previous
// one) and read-only syncs; every merge completes.
TEST_F(UpstreamTest, MergeInterleavedMerge) {
  KV_CONTEXT(ctx, Full());
  Idx* w = ctx->rw;
  KV_CLONE(r1, ctx, /*readonly=*/true);
  KV_CLONE(r2, ctx, /*readonly=*/true);
  KV_CLONE(r3, ctx, /*readonly=*/true);
  std::atomic<int> started{0}, completed{0};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) ++started;
    if (p == HookPoint::kMergeAfter) ++completed;
    return absl::OkStatus();
  });
  auto sync = [](std::initializer_list<Idx*> rs) {
    for (Idx* r : rs) EXPECT_OK(r->Sync());
  };
  auto write = [&](const std::string& k, const std::string& v) {
    EXPECT_OK(w->Replace(k, v));
    EXPECT_OK(w->Flush());
  };
  auto merge = [&] { EXPECT_OK(w->Merge()); };
  int merges = 0;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string k1 = NewKey(), v1 = NewValue();
    write(k1, v1);
    merge();
    sync({r1, r2, r3});
    for (Idx* r : {r1, r2, r3}) KV_EXPECT_BINDING(*r, k1, v1);

    std::string k2 = NewKey(), v2 = NewValue();
    write(k2, v2);
    sync({r1, r2, r3});
    KV_EXPECT_BINDING(*r1, k1, v1);
    merge();
    KV_EXPECT_BINDING(*r2, k2, v2);
    KV_EXPECT_BINDING(*r3, k1, v1);

    k2 = NewKey();
    v2 = NewValue();
    const std::string k3 = NewKey(), v3 = NewValue();
    KV_EXPECT_BINDING(*r1, k1, v1);
    write(k2, v2);
    sync({r1});
    merge();
    KV_EXPECT_BINDING(*r1, k1, v1);
    write(k3, v3);
    sync({r3});
    merge();
    KV_EXPECT_BINDING(*r3, k3, v3);

    k2 = NewKey();
    v2 = NewValue();
    write(k2, v2);
    sync({r2, r3});
    KV_EXPECT_BINDING(*w, k2, v2);
    merge();
    KV_EXPECT_BINDING(*w, k2, v2);
    KV_EXPECT_BINDING(*r2, k2, v2);
    KV_EXPECT_BINDING(*r3, k1, v1);

    k2 = NewKey();
    v2 = NewValue();
    write(k2, v2);
    sync({r2, r3});
    KV_EXPECT_BINDING(*r2, k1, v1);
    merge();
    KV_EXPECT_BINDING(*w, k2, v2);
    KV_EXPECT_BINDING(*r2, k2, v2);
    KV_EXPECT_BINDING(*r3, k2, v2);
    merges += 6;
  }
  EXPECT_OK(w->AwaitMerge());
  EXPECT_EQ(started.load(), merges);
  EXPECT_EQ(completed.load(), merges) << "every merge completed";
  // A reader synced while a merge ran keeps that merge's log_async open until
  // its next sync; upstream's fd count depends on that timing, so sync first.
  sync({r1, r2, r3});
  ExpectFewFilesOpen(*ctx);
}

// A forced merge flushes the log first; a write made at the very end of the
// merge (in its After hook) is not flushed, so a read-only sync does not see
// it.
TEST_F(UpstreamTest, MergeWriteAtEndOfMerge) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  {
    ScopedHook hook(ctx->hooks, At(HookPoint::kMergeAfter, [&] {
                      EXPECT_OK(ctx->rw->Replace(k2, v2));
                    }));
    ASSERT_OK(ctx->rw->Merge());
    ASSERT_OK(ctx->rw->AwaitMerge());
  }
  ASSERT_OK(r1->Sync());
  KV_EXPECT_BINDING(*r1, k1, v1);
  KV_EXPECT_ABSENT(*r1, k2);
  KV_EXPECT_BINDING(*ctx->rw, k2, v2);
}

// A write made while the merge runs (Before hook) goes to log_async and is
// found by the writer; the read-only instance finds the value flushed at the
// merge start.
TEST_F(UpstreamTest, MergeWriteInLogAsync) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    EXPECT_OK(ctx->rw->Replace(k2, v2));
                    KV_EXPECT_BINDING(*ctx->rw, k2, v2);
                    EXPECT_EQ(ctx->rw->raw().TEST_LogAsyncEntries(),
                              std::vector<std::string>{k2 + v2});
                  }));
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(r1->Sync());
  KV_EXPECT_BINDING(*r1, k1, v1);
  EXPECT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_BINDING(*ctx->rw, k2, v2);
}

// Finds from the writer (in After hooks) and from a read-only instance (in
// Before hooks) succeed across four queued merges.
TEST_F(UpstreamTest, MergeFindWhileMerging) {
  KV_CONTEXT(ctx, Full());
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  std::atomic<Idx*> r1{nullptr};
  std::atomic<int> writer_checks{0}, reader_checks{0};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeAfter) {
      KV_EXPECT_BINDING(*ctx->rw, k1, v1);
      ++writer_checks;
    }
    Idx* r = r1.load();
    if (p == HookPoint::kMergeBefore && r != nullptr) {
      KV_EXPECT_BINDING(*r, k1, v1);
      ++reader_checks;
    }
    return absl::OkStatus();
  });
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ctx->rw->Merge());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  r1 = ro;
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ctx->rw->Merge());
  EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(writer_checks.load(), 4);
  EXPECT_GE(reader_checks.load(), 2);
}

// One merge of the context's writer, awaited, that runs `f` at `point`: `f`
// must run exactly once.
void MergeRunningAt(Context& ctx, HookPoint point,
                    const std::function<void()>& f) {
  std::atomic<int> ran{0};
  ScopedHook hook(ctx.hooks, At(point, [&] {
                    f();
                    ++ran;
                  }));
  ASSERT_OK(ctx.rw->Merge());
  EXPECT_OK(ctx.rw->AwaitMerge());
  EXPECT_EQ(ran.load(), 1);
}

// Writes and flushes `key` -> `value`, syncs `reader` and expects it to find
// the binding.
void ExpectFlushedBindingSynced(Idx& writer, Idx& reader,
                                const std::string& key,
                                const std::string& value) {
  EXPECT_OK(ReplaceAndFlush(writer, key, value));
  EXPECT_OK(reader.Sync());
  KV_EXPECT_BINDING(reader, key, value);
}

// In the merge's Before hook: write, flush, sync a reader: it finds the binding
// in log_async (the new generation's log_async, with an empty log at its side).
TEST_F(UpstreamTest, MergeFindInAsyncWithoutLog) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  MergeRunningAt(*ctx, HookPoint::kMergeBefore,
                 [&] { ExpectFlushedBindingSynced(*ctx->rw, *r1, k1, v1); });
}

// Same with two rounds in one merge: the second sync extends the known
// log_async.
TEST_F(UpstreamTest, MergeFindInAsyncWithLog) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  MergeRunningAt(*ctx, HookPoint::kMergeBefore, [&] {
    ExpectFlushedBindingSynced(*ctx->rw, *r1, k1, v1);
    ExpectFlushedBindingSynced(*ctx->rw, *r1, k2, v2);
    KV_EXPECT_BINDING(*r1, k1, v1);
  });
}

// A reader syncs once after writes into log_async (Before) and once right after
// the log reset (After_clear, the writer's lock held: syncing another instance
// is fine); after the merge it finds both writes.
TEST_F(UpstreamTest, MergeSyncBeforeAndAfterClearingAsync) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) {
      EXPECT_OK(ctx->rw->Replace(k1, v1));
      EXPECT_OK(ctx->rw->Replace(k2, v2));
      EXPECT_OK(ctx->rw->Flush());
      EXPECT_OK(ro->Sync());  // the reader learns log_async's offset
    }
    if (p == HookPoint::kMergeAfterClear) {
      EXPECT_OK(ro->Sync());  // the reader learns the new generation
      KV_EXPECT_BINDING(*ro, k1, v1);
      KV_EXPECT_BINDING(*ro, k2, v2);
    }
    return absl::OkStatus();
  });
  ASSERT_OK(ctx->rw->Merge());
  EXPECT_OK(ctx->rw->AwaitMerge());
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_EXPECT_BINDING(*ro, k2, v2);
  Table all = ctx->tbl;
  all[k1] = v1;
  all[k2] = v2;
  CheckEquivalence(*ro, all);
}

// A sync right after a merge's log reset (After_clear) must not miss the
// flushed binding; nor must a find at that point of a second merge.
TEST_F(UpstreamTest, MergeSyncAndFindAfterLogCleared) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  {
    ScopedHook hook(ctx->hooks, At(HookPoint::kMergeAfterClear,
                                   [&] { EXPECT_OK(ro->Sync()); }));
    ASSERT_OK(ctx->rw->Merge());
    EXPECT_OK(ctx->rw->AwaitMerge());
  }
  KV_EXPECT_BINDING(*ro, k1, v1);
  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k2, v2));
  ASSERT_OK(ro->Sync());
  MergeRunningAt(*ctx, HookPoint::kMergeAfterClear, [&] {
    KV_EXPECT_BINDING(*ro, k1, v1);
    KV_EXPECT_BINDING(*ro, k2, v2);
  });
}

// A whole merge runs inside a reader's sync, between its log_async and log
// steps; the reader still finds the binding (now in the new data file).
TEST_F(UpstreamTest, MergeDuringRoSync) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  std::atomic<int> ran{0};
  ScopedHook hook(ctx->hooks, At(HookPoint::kSyncBeforeOffsetRead, [&] {
                    if (ran++ > 0) return;
                    EXPECT_OK(ctx->rw->Merge());
                    EXPECT_OK(ctx->rw->AwaitMerge());
                  }));
  ASSERT_OK(ro->Sync());
  EXPECT_EQ(ran.load(), 1);
  KV_EXPECT_BINDING(*ro, k1, v1);
  CheckEquivalence(*ro, Table{{k1, v1}});
}

// is_merging: false outside merges, true in Before, After and after
// After_clear.
TEST_F(UpstreamTest, MergeIsMerging) {
  KV_CONTEXT(ctx, Empty());
  auto is_merging = [&] {
    auto r = ctx->rw->IsMerging();
    EXPECT_OK(r);
    return r.ok() && *r;
  };
  auto add_binding_and_merge = [&](HookPoint point) {
    std::atomic<int> checked{0};
    ScopedHook hook(ctx->hooks, [&](HookPoint p) {
      if (p == point) {
        EXPECT_TRUE(is_merging()) << static_cast<int>(point);
        ++checked;
      }
      return absl::OkStatus();
    });
    EXPECT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    EXPECT_OK(ctx->rw->Merge());
    EXPECT_OK(ctx->rw->AwaitMerge());
    EXPECT_EQ(checked.load(), 1);
  };
  EXPECT_FALSE(is_merging()) << "before merge";
  add_binding_and_merge(HookPoint::kMergeBefore);
  EXPECT_FALSE(is_merging()) << "between merges";
  add_binding_and_merge(HookPoint::kMergeAfter);

  // After_clear runs with the writer's lock held, and IsMerging() takes it: the
  // hook cannot call it (by design). Ask from the test thread once the merge
  // passed After_clear, holding the merge in After until the answer is in.
  absl::Notification after_clear, answered;
  {
    ScopedHook hook(ctx->hooks, [&](HookPoint p) {
      if (p == HookPoint::kMergeAfterClear) after_clear.Notify();
      if (p == HookPoint::kMergeAfter) Wait(answered);
      return absl::OkStatus();
    });
    ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    ASSERT_OK(ctx->rw->Merge());
    Wait(after_clear);
    EXPECT_TRUE(is_merging()) << "after clear";
    answered.Notify();
    EXPECT_OK(ctx->rw->AwaitMerge());
  }
  EXPECT_FALSE(is_merging()) << "after merges";
}

// Clear does not wait for a merge blocked in Before: it signals the abort, and
// the merge (no data file yet) returns kAborted.
TEST_F(UpstreamTest, MergeClearIsNotBlocking) {
  KV_CONTEXT(ctx, Empty());
  MergeAbortGate gate(*ctx, HookPoint::kMergeBefore, HookPoint::kMergeBefore);
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  ASSERT_OK(ctx->rw->Merge());
  gate.WaitForMerge();
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  ASSERT_OK(ctx->rw->Clear());
  absl::Status result = ctx->rw->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_EQ(gate.commit_hooks(), 0)
      << "merge should have been aborted by clear";
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
  EXPECT_FALSE(env_.FileExists(ctx->Path("merge")).value());
}

// Abort a merge after its first record with `abort` (clear or
// close(immediately)), then check that a later merge completes.
void AbortMergeTest(Context* ctx, bool by_close,
                    const std::function<std::string()>& new_string) {
  MergeAbortGate gate(*ctx, MergeHoldPoint(), MergeHoldPoint());
  // Upstream awaits the merge future after close; here a second handle on the
  // same instance reads the outcome.
  Idx* other = ctx->Clone(/*readonly=*/false);
  ASSERT_NE(other, nullptr);
  ASSERT_OK(ctx->rw->Merge());
  gate.WaitForMerge();
  if (by_close) {
    ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  } else {
    ASSERT_OK(ctx->rw->Clear());
  }
  absl::Status result = other->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_EQ(gate.commit_hooks(), 0) << "merge should have been aborted";
  gate.Disarm();

  // The same instance merges again (the cancel flag was reset).
  ASSERT_OK(ReplaceAndMerge(*other, new_string(), new_string()));
  // And so does a new instance.
  ctx->CloseAll();
  Idx* rw = ctx->Clone(/*readonly=*/false, /*fresh=*/false);
  ASSERT_NE(rw, nullptr);
  ASSERT_OK(ReplaceAndMerge(*rw, new_string(), new_string()));
}

TEST_F(UpstreamTest, MergeClearAbortsMerge) {
  KV_CONTEXT(ctx, Full());
  AbortMergeTest(ctx, /*by_close=*/false, [this] { return NewKey(); });
}

TEST_F(UpstreamTest, MergeCloseImmediatelyAbortsMerge) {
  KV_CONTEXT(ctx, Full());
  AbortMergeTest(ctx, /*by_close=*/true, [this] { return NewKey(); });
  // Nothing was lost by the aborted merge.
  Idx* rw = ctx->Clone(/*readonly=*/false);
  ASSERT_NE(rw, nullptr);
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_BINDING(*rw, k, v);
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
