// Port of the cache group of the OCaml index's test suite (test/main.ml):
// opens through an InstanceCache share one instance, without one nothing is
// shared. Fixture and differences by design: tests/upstream_fixture.h.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "io/mem_env.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

using ::testing::HasSubstr;

// Cache.Noop: without a cache nothing is shared. A second writer is refused,
// and two read-only opens are independent instances.
TEST_F(UpstreamTest, CacheNoopSharesNothing) {
  Context* ctx = NewContext(Config());
  auto rw = Idx::Open(ctx->root(), ctx->MakeOptions(false, true, false));
  ASSERT_OK(rw);
  // By design: a second writer is kUnavailable (upstream: Locked).
  auto rw2 = Idx::Open(ctx->root(), ctx->MakeOptions(false, false, false));
  EXPECT_EQ(rw2.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rw2.status().message(), HasSubstr(ctx->root()));

  auto ro1 = Idx::Open(ctx->root(), ctx->MakeOptions(true, false, false));
  ASSERT_OK(ro1);
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK((*rw)->Replace(k, v));
  ASSERT_OK((*rw)->Flush());
  auto ro2 = Idx::Open(ctx->root(), ctx->MakeOptions(true, false, false));
  ASSERT_OK(ro2);
  KV_EXPECT_BINDING(**ro2, k, v);  // synced at open
  KV_EXPECT_ABSENT(**ro1, k);      // its own, older view
  EXPECT_OK((*ro2)->Close());
  EXPECT_OK((*ro1)->Close());
  EXPECT_OK((*rw)->Close());
}

// Cache.Unbounded: opens through one cache share the instance (options of later
// opens are ignored); once every handle is closed the entry is gone and the
// next open makes a new instance.
TEST_F(UpstreamTest, CacheUnboundedSharesUntilClosed) {
  Context* ctx = NewContext(Config());
  InstanceCache cache;
  int calls_a = 0, calls_b = 0;
  Options a = ctx->MakeOptions(false, true, false);
  a.cache = &cache;
  a.flush_callback = [&] { ++calls_a; };
  Options b = a;
  b.fresh = false;
  b.flush_callback = [&] { ++calls_b; };

  auto rw1 = Idx::Open(ctx->root(), a);
  ASSERT_OK(rw1);
  auto rw2 = Idx::Open(ctx->root(), b);
  ASSERT_OK(rw2);  // shared: no lock conflict
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK((*rw1)->Replace(k, v));
  KV_EXPECT_BINDING(**rw2, k, v);  // unflushed, yet visible: same instance
  ASSERT_OK((*rw2)->Flush());
  EXPECT_EQ(calls_a, 1);  // the instance was created with a's callback
  EXPECT_EQ(calls_b, 0);

  Options ro = a;
  ro.readonly = true;
  ro.fresh = false;
  auto ro1 = Idx::Open(ctx->root(), ro);
  ASSERT_OK(ro1);
  const std::string k2 = NewKey(), v2 = NewValue();
  ASSERT_OK((*rw1)->Replace(k2, v2));
  ASSERT_OK((*rw1)->Flush());
  KV_EXPECT_ABSENT(**ro1, k2);
  auto ro2 =
      Idx::Open(ctx->root(), ro);  // a cache hit syncs the shared instance
  ASSERT_OK(ro2);
  KV_EXPECT_BINDING(**ro1, k2, v2);

  ASSERT_OK((*rw1)->Close());
  ASSERT_OK((*rw2)->Close());
  calls_a = 0;
  auto rw3 =
      Idx::Open(ctx->root(), b);  // removed from the cache: a new instance
  ASSERT_OK(rw3);
  ASSERT_OK((*rw3)->Replace(NewKey(), NewValue()));
  ASSERT_OK((*rw3)->Flush());
  EXPECT_EQ(calls_a, 0);
  EXPECT_EQ(calls_b, 1);
  KV_EXPECT_BINDING(**rw3, k2, v2);
  ASSERT_OK((*rw3)->Close());

  // A store deleted behind the cache's back gets a new (empty) read-only
  // instance; the existing one keeps its view.
  // Every file of it (the tiered layout's manifest and runs too: a manifest
  // without its log would be refused as damage).
  const std::string dir = ctx->root() + "/index/";
  for (const std::string& path : env_.ListFiles()) {
    if (absl::StartsWith(path, dir) && path != dir + "lock") {
      ASSERT_OK(env_.RemoveFile(path));
    }
  }
  auto ro3 = Idx::Open(ctx->root(), ro);
  ASSERT_OK(ro3);
  KV_EXPECT_ABSENT(**ro3, k2);
  KV_EXPECT_BINDING(**ro1, k2, v2);
  for (auto* h : {&ro1, &ro2, &ro3}) EXPECT_OK((**h)->Close());
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
