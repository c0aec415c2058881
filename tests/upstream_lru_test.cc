// Port of the OCaml index's test/unix/test_lru.ml: hits and misses of the LRU
// across replaces, clears, filters and read-only syncs. Fixture and
// differences by design: tests/upstream_fixture.h.
#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "index/index.h"
#include "index/stats.h"
#include "testing/status.h"
#include "tests/upstream_fixture.h"

namespace kvindex {
namespace upstream {
namespace {

void ExpectLruStats(uint64_t hits, uint64_t misses, int line) {
  const Stats s = GetStats();
  EXPECT_EQ(s.lru_hits, hits) << "line " << line;
  EXPECT_EQ(s.lru_misses, misses) << "line " << line;
}

Config LruConfig(size_t size) {
  Config c;
  c.lru_size = size;
  return c;
}

TEST_F(UpstreamTest, LruReplaceAndFind) {
  KV_CONTEXT(ctx, Empty(LruConfig(1)));
  const std::string k1 = NewKey(), v1 = NewValue();
  ResetStats();
  ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);  // replace filled the LRU
  ExpectLruStats(1, 0, __LINE__);

  const std::string k2 = NewKey(), v2 = NewValue();
  ResetStats();
  ASSERT_OK(ctx->rw->Replace(k2, v2));  // evicts k1
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);
  ExpectLruStats(0, 1, __LINE__);
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);  // the miss put k1 back
  ExpectLruStats(1, 1, __LINE__);
}

TEST_F(UpstreamTest, LruMem) {
  KV_CONTEXT(ctx, Empty(LruConfig(1)));
  const std::string k1 = NewKey(), k2 = NewKey();
  ASSERT_OK(ctx->rw->Replace(k1, NewValue()));
  ASSERT_OK(ctx->rw->Replace(k2, NewValue()));
  ResetStats();
  EXPECT_TRUE(Mem(*ctx->rw, k2));
  ExpectLruStats(1, 0, __LINE__);
  ResetStats();
  EXPECT_TRUE(Mem(*ctx->rw, k1));
  ExpectLruStats(0, 1, __LINE__);
  EXPECT_TRUE(Mem(*ctx->rw, k1));
  ExpectLruStats(1, 1, __LINE__);
}

TEST_F(UpstreamTest, LruClear) {
  KV_CONTEXT(ctx, Full(LruConfig(1)));
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  ASSERT_OK(ctx->rw->Clear());
  ResetStats();
  KV_EXPECT_ABSENT(*ctx->rw, k);
  ExpectLruStats(0, 1, __LINE__);
}

TEST_F(UpstreamTest, LruFilter) {
  KV_CONTEXT(ctx, Full(LruConfig(1)));
  const std::string k = NewKey(), v = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v));
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  ResetStats();
  KV_EXPECT_ABSENT(*ctx->rw, k);
  ExpectLruStats(0, 1, __LINE__);
}

// By design (docs/design.md §13.3): a read-only sync that sees new data
// empties the LRU, so a cached binding replaced in the same generation is not
// served stale.
TEST_F(UpstreamTest, LruReadonlySyncDropsStaleBindings) {
  KV_CONTEXT(ctx, Empty(LruConfig(10)));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue();
  ASSERT_OK(ctx->rw->Replace(k, v1));
  ASSERT_OK(ctx->rw->Flush());
  ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k, v1);
  ResetStats();
  KV_EXPECT_BINDING(*ro, k, v1);
  ExpectLruStats(1, 0, __LINE__);  // cached
  ASSERT_OK(ctx->rw->Replace(k, v2));
  ASSERT_OK(ctx->rw->Flush());
  KV_EXPECT_BINDING(*ro, k, v1);  // not synced yet
  ASSERT_OK(ro->Sync());
  ResetStats();
  KV_EXPECT_BINDING(*ro, k, v2);
  ExpectLruStats(0, 1, __LINE__);
}

}  // namespace
}  // namespace upstream
}  // namespace kvindex
