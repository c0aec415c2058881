// Port of the OCaml index's test/unix/flush_callback.ml: when the flush
// callback runs. Fixture and differences by design: tests/upstream_fixture.h.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "testing/hooks.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

using test::ScopedCallback;

// Upstream's Mutable_callback: outside Require() any call of the flush callback
// is a failure; inside, the continuation must cause exactly one call (or at
// least one).
class RequiredCallback {
 public:
  void operator()() {
    std::function<void()> on_call;
    {
      absl::MutexLock lock(&mu_);
      if (!expecting_) {
        ADD_FAILURE() << "flush callback call not expected";
        return;
      }
      ++calls_;
      if (!at_least_once_ && calls_ > 1) {
        ADD_FAILURE() << "flush callback already triggered";
      }
      on_call = on_call_;
    }
    if (on_call) on_call();
  }

  void Require(const std::function<void()>& f, std::function<void()> on_call,
               bool at_least_once = false) {
    {
      absl::MutexLock lock(&mu_);
      expecting_ = true;
      at_least_once_ = at_least_once;
      calls_ = 0;
      on_call_ = std::move(on_call);
    }
    f();
    absl::MutexLock lock(&mu_);
    expecting_ = false;
    on_call_ = nullptr;
    EXPECT_GE(calls_, 1) << "flush callback was not called";
  }

 private:
  absl::Mutex mu_;
  bool expecting_ ABSL_GUARDED_BY(mu_) = false;
  bool at_least_once_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> on_call_ ABSL_GUARDED_BY(mu_);
};

TEST_F(UpstreamTest, FlushCallbackClose) {
  {
    Context* ctx = NewContext(Config());
    ScopedCallback cb(ctx->callback, [] {
      ADD_FAILURE() << "closing an empty index called the flush callback";
    });
    ctx->rw = ctx->Clone(false, true);
    ASSERT_NE(ctx->rw, nullptr);
    ASSERT_OK(ctx->rw->Close());
  }
  {
    KV_CONTEXT(ctx, Full());
    ScopedCallback cb(ctx->callback, [] {
      ADD_FAILURE() << "closing a clean full index called the flush callback";
    });
    ASSERT_OK(ctx->rw->Close());
  }
  KV_CONTEXT(ctx, Empty());
  std::atomic<int> calls{0};
  ScopedCallback cb(ctx->callback, [&] { ++calls; });
  const uint64_t merges = MergesStarted();
  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges) << "one write must not start a merge";
  EXPECT_EQ(calls.load(), 0);
  ASSERT_OK(ctx->rw->Close());
  EXPECT_EQ(calls.load(), 1)
      << "closing a dirty index should call the flush callback once";
}

TEST_F(UpstreamTest, FlushCallbackFlush) {
  KV_CONTEXT(ctx, Empty());
  RequiredCallback required;
  ScopedCallback cb(ctx->callback, [&] { required(); });
  KV_CLONE(ro, ctx, /*readonly=*/true);

  ASSERT_OK(ctx->rw->Flush());  // nothing to persist: no call
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  required.Require([&] { EXPECT_OK(ctx->rw->Flush()); },
                   [&] {
                     // Called before any byte is written: not visible yet.
                     EXPECT_OK(ro->Sync());
                     KV_EXPECT_ABSENT(*ro, k);
                   });
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k, v);

  ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  FlushOptions no_callback;
  no_callback.no_callback = true;
  ASSERT_OK(ctx->rw->Flush(no_callback));  // by request: no call
}

// Flushes caused by writes: the log's flush at the start of an implicit merge,
// the explicit flush of log_async during it, and the copy of log_async at its
// end.
TEST_F(UpstreamTest, FlushCallbackReplace) {
  Config config;
  config.log_size = 8;
  KV_CONTEXT(ctx, Empty(config));
  RequiredCallback required;
  ScopedCallback cb(ctx->callback, [&] { required(); });
  KV_CLONE(ro, ctx, /*readonly=*/true);
  Table bindings = RandomTable(8);

  const uint64_t merges = MergesStarted();
  for (const auto& [k, v] : bindings) ASSERT_OK(ctx->rw->Replace(k, v));
  EXPECT_EQ(MergesStarted(), merges);

  Semaphore do_merge;
  ScopedHook hook(ctx->hooks,
                  At(HookPoint::kMergeBefore, [&] { do_merge.Acquire(); }));
  const std::string ko = NewKey(), vo = NewValue();
  required.Require([&] { EXPECT_OK(ctx->rw->Replace(ko, vo)); },
                   [&] {
                     EXPECT_OK(ro->Sync());
                     CheckDisjoint(*ro, bindings);
                   });
  EXPECT_EQ(MergesStarted(), merges + 1) << "the 9th write starts a merge";
  bindings[ko] = vo;
  ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, bindings);

  // Writes during the merge go to log_async.
  const std::string ka = NewKey(), va = NewValue();
  ASSERT_OK(ctx->rw->Replace(ka, va));
  EXPECT_EQ(MergesStarted(), merges + 1);
  ASSERT_OK(ro->Sync());
  required.Require([&] { EXPECT_OK(ctx->rw->Flush()); },
                   [&] {
                     EXPECT_OK(ro->Sync());
                     CheckEquivalence(*ro, bindings);
                   },
                   /*at_least_once=*/true);

  // The end of the merge copies log_async into the new log and flushes it: one
  // call.
  required.Require(
      [&] {
        do_merge.Release();
        EXPECT_OK(ctx->rw->AwaitMerge());
      },
      nullptr);
  bindings[ka] = va;
  ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, bindings);
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
