// Not upstream tests: library bugs that the ports of the OCaml test suite
// (upstream_force_merge_test's MergeInterleavedMerge) and multiprocess_test
// hit only now and then, made deterministic. Fixture:
// tests/upstream_fixture.h.
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "io/env.h"
#include "testing/hooks.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

// An Env that runs a callback right after a read-only open of one path, i.e.
// between the reader's open(2) and its first header read.
class OpenHookEnv : public EnvWrapper {
 public:
  explicit OpenHookEnv(Env* base) : EnvWrapper(base) {}

  void OnNextReadOnlyOpen(const std::string& path, std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    path_ = path;
    fn_ = std::move(fn);
  }
  bool fired() const {
    absl::MutexLock lock(&mu_);
    return fired_;
  }

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    auto file = target()->OpenFile(path, mode);
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      if (file.ok() && mode == OpenMode::kReadOnly && fn_ && path == path_) {
        fn = std::move(fn_);
        fn_ = nullptr;
        fired_ = true;
      }
    }
    if (fn) fn();
    return file;
  }

 private:
  mutable absl::Mutex mu_;
  std::string path_ ABSL_GUARDED_BY(mu_);
  std::function<void()> fn_ ABSL_GUARDED_BY(mu_);
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
};

// Opens a read-only instance of the context's root on `env`, outside the
// context's cache.
absl::StatusOr<std::unique_ptr<Idx>> OpenReaderOn(Context& ctx, Env* env) {
  Options options = ctx.MakeOptions(/*readonly=*/true, /*fresh=*/false,
                                    /*use_cache=*/false);
  options.env = env;
  return Idx::Open(ctx.root(), options);
}

// A reader reopening `log` after a generation change opens the file at the
// path; if the writer resets the log (clear, or the end of a merge) between
// that open and the reader's header read, the reader holds the replaced file,
// already stamped {offset 0, new generation}. Its generation then matches the
// stamp, the dead file never changes again, and no later sync may leave the
// reader stuck: it must see what the writer flushes afterwards.
TEST_F(UpstreamTest, RegressionReaderReopensLogWhileWriterResetsIt) {
  KV_CONTEXT(ctx, Empty());
  OpenHookEnv hooked(&env_);
  auto ro = OpenReaderOn(*ctx, &hooked);
  ASSERT_OK(ro);

  const std::string k1 = NewKey(), v1 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k1, v1));
  ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k1, v1);

  ASSERT_OK(ctx->rw->Clear());  // the reader's log is now stale
  hooked.OnNextReadOnlyOpen(ctx->Path("log"), [&] {
    // The reader has the current log open; reset it under its feet.
    EXPECT_OK(ctx->rw->Clear());
  });
  ASSERT_OK((*ro)->Sync());  // reloads the log
  ASSERT_TRUE(hooked.fired());
  KV_EXPECT_ABSENT(**ro, k1);

  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k2, v2));
  ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k2, v2);
  // Merges do not unstick it either.
  const std::string k3 = NewKey(), v3 = NewValue();
  ASSERT_OK(ReplaceAndMerge(*ctx->rw, k3, v3));
  ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k2, v2);
  KV_EXPECT_BINDING(**ro, k3, v3);
  EXPECT_OK((*ro)->Close());
}

// Same race on log_async: the reader opens log_async while the merge that owns
// it ends (the file is deleted and stamped {0, G+2}) and a second merge ends
// too, so the reader's generation reaches the stamp's. It must still find, in a
// later merge's log_async, the writes flushed during that merge.
TEST_F(UpstreamTest, RegressionReaderOpensLogAsyncWhileMergeEnds) {
  KV_CONTEXT(ctx, Full());
  OpenHookEnv hooked(&env_);
  auto ro = OpenReaderOn(*ctx, &hooked);
  ASSERT_OK(ro);

  Semaphore release;
  std::atomic<bool> block{true};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    if (block) release.Acquire();
                  }));
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  ASSERT_OK(ctx->rw->Merge());  // blocked in Before; log_async exists
  hooked.OnNextReadOnlyOpen(ctx->Path("log_async"), [&] {
    block = false;
    release.Release();
    EXPECT_OK(ctx->rw->AwaitMerge());  // log_async deleted and stamped
    EXPECT_OK(ctx->rw->Merge());       // one more generation
    EXPECT_OK(ctx->rw->AwaitMerge());
  });
  ASSERT_OK((*ro)->Sync());
  ASSERT_TRUE(hooked.fired());
  ASSERT_OK((*ro)->Sync());

  block = true;
  ASSERT_OK(ctx->rw->Merge());  // blocked in Before
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));  // into the new log_async
  ASSERT_OK(ctx->rw->Flush());
  ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k, v);
  block = false;
  release.Release();
  EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_OK((*ro)->Close());
}

// The *_tiered_test targets run every test of the port on tiered stores, the
// others on stores in the default layout: a merge leaves a manifest exactly
// in the first.
TEST_F(UpstreamTest, StoresAreInTheTargetsLayout) {
  const char* target = std::getenv("TEST_TARGET");
  ASSERT_NE(target, nullptr) << "run by bazel test, which names the target";
  const bool tiered = absl::EndsWith(target, "_tiered_test");
  EXPECT_EQ(UpstreamLayout() == Layout::kTiered, tiered) << target;
  KV_CONTEXT(ctx, Empty());
  ASSERT_OK(ReplaceAndMerge(*ctx->rw, NewKey(), NewValue()));
  EXPECT_EQ(env_.FileExists(ctx->Path("manifest")).value(), tiered);
  EXPECT_EQ(env_.FileExists(ctx->Path("data")).value(), !tiered);
}

// Upstream: a merge with nothing to merge returns an already completed future.
// Here AwaitMerge() after such a Merge() must not report the outcome of an
// older merge (one aborted by a clear).
TEST_F(UpstreamTest, RegressionAwaitAfterNoOpMergeIsNotAStaleAbort) {
  KV_CONTEXT(ctx, Empty());
  Semaphore release;
  std::atomic<bool> block{true};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore && block) release.Acquire();
    if (p == HookPoint::kClearAbortSignalled) release.Release();
    return absl::OkStatus();
  });
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  ASSERT_OK(ctx->rw->Merge());
  ASSERT_OK(ctx->rw->Clear());
  EXPECT_EQ(ctx->rw->AwaitMerge().code(), absl::StatusCode::kAborted);
  block = false;
  ASSERT_OK(ctx->rw->Merge());  // empty index: nothing to merge
  EXPECT_OK(ctx->rw->AwaitMerge());
  // A merge that does run resets the outcome.
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  ASSERT_OK(ctx->rw->Merge());
  EXPECT_OK(ctx->rw->AwaitMerge());
}

// A sync reads log_async first, then the log. If the merge ends in between, the
// reader keeps the log_async records it read (older) next to the new log that
// holds newer copies of them, and log_async is searched first. Its view must
// still be the state after some prefix of the writes: here k -> v2 with k2 ->
// v3, never k -> v1 next to k2 -> v3 (k -> v2 was written before k2 -> v3).
TEST_F(UpstreamTest, RegressionSyncAcrossMergeEndKeepsNoStaleLogAsyncValue) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue(),
                    k2 = NewKey(), v3 = NewValue();
  Semaphore release;
  std::atomic<bool> in_sync{false};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) release.Acquire();
    if (p == HookPoint::kSyncBeforeOffsetRead && in_sync.exchange(false)) {
      // The reader has read log_async (k -> v1); the writer moves on and the
      // merge ends before the reader reads the log header.
      EXPECT_OK(ctx->rw->Replace(k, v2));
      EXPECT_OK(ctx->rw->Replace(k2, v3));
      EXPECT_OK(ctx->rw->Flush());
      release.Release();
      EXPECT_OK(ctx->rw->AwaitMerge());
    }
    return absl::OkStatus();
  });
  ASSERT_OK(ctx->rw->Merge());  // blocked in Before
  ASSERT_OK(ReplaceAndFlush(*ctx->rw, k, v1));
  in_sync = true;
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k2, v3);
  KV_EXPECT_BINDING(*ro, k, v2);
  EXPECT_EQ(IterAll(*ro)[k], v2);
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
