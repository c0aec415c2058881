// The behaviours checked by the OCaml `index` library's own test suite
// (test/unix/{main,force_merge,flush_callback,test_lru}.ml and test/main.ml's
// cache group, see SPEC.md §14), ported to this library's API and run on a
// MemEnv.
//
// Fixture, as upstream's test/unix/common.ml: keys and values are 20-byte
// strings of random printable characters (33-126), log_size 4 (so merges happen
// all the time), lru_size 0; the "full index" holds 103 random bindings,
// flushed and merged; clones reopen the same root through one shared
// InstanceCache (read-write clones share the writer instance, read-only clones
// share one read-only instance).
//
// Upstream passes hooks to each merge/sync/clear call; here a hook is an option
// of the instance, so each context routes Options::test_hook to a slot that a
// test fills for as long as it needs it (ScopedHook).
//
// Differences from upstream by design (checked as OUR semantics, marked
// "By design" where they matter):
//   - Iter visits every key exactly once, with its newest value.
//   - A read-only open with fresh = true is kInvalidArgument (upstream:
//     RO_not_allowed).
//   - Misuse is an absl::Status: kFailedPrecondition for a closed handle, a
//     write on a read-only instance and sync on a writer (upstream: Closed,
//     RO_not_allowed, RW_not_allowed); kUnavailable for a second writer
//     (upstream: Locked).
//   - Find after close is kFailedPrecondition with "closed" in the message.
//   - A read-only sync that sees new data empties the LRU (upstream bug #398).
//   - Merge outcomes come from AwaitMerge() on a live handle (upstream: a
//     future), so tests that close the handle first read the outcome through a
//     second handle.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/stats.h"
#include "io/index_file.h"
#include "io/mem_env.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr size_t kStringSize = 20;
using Idx = Index<FixedString<kStringSize>, FixedString<kStringSize>>;
using Table = std::map<std::string, std::string>;

// Long enough for any step of these tests; a hook that waits longer reports a
// failure instead of hanging the test.
constexpr absl::Duration kWaitTimeout = absl::Seconds(20);

#define KV_EXPECT_OK(expr)                                       \
  do {                                                           \
    const absl::Status kv_status_ = (expr);                      \
    EXPECT_TRUE(kv_status_.ok()) << #expr << ": " << kv_status_; \
  } while (0)

#define KV_ASSERT_OK(expr)                                       \
  do {                                                           \
    const absl::Status kv_status_ = (expr);                      \
    ASSERT_TRUE(kv_status_.ok()) << #expr << ": " << kv_status_; \
  } while (0)

// ---- test utilities --------------------------------------------------------

// A binary semaphore created unavailable (upstream's `Semaphore.make false`).
class Semaphore {
 public:
  void Release() {
    absl::MutexLock lock(&mu_);
    available_ = true;
  }
  void Acquire() {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&available_), kWaitTimeout)) {
      ADD_FAILURE() << "semaphore not released within " << kWaitTimeout;
    }
    available_ = false;
  }

 private:
  absl::Mutex mu_;
  bool available_ ABSL_GUARDED_BY(mu_) = false;
};

void Wait(absl::Notification& n) {
  if (!n.WaitForNotificationWithTimeout(kWaitTimeout)) {
    ADD_FAILURE() << "notification not sent within " << kWaitTimeout;
  }
}

using HookFn = std::function<absl::Status(HookPoint)>;

// Where an instance's Options::test_hook goes; filled by the test that needs
// it. The function is called without the slot's lock, so hooks may block.
class HookSlot {
 public:
  void Set(HookFn fn) {
    absl::MutexLock lock(&mu_);
    fn_ = std::move(fn);
  }
  absl::Status Call(HookPoint point) const {
    HookFn fn;
    {
      absl::MutexLock lock(&mu_);
      fn = fn_;
    }
    return fn ? fn(point) : absl::OkStatus();
  }

 private:
  mutable absl::Mutex mu_;
  HookFn fn_ ABSL_GUARDED_BY(mu_);
};

// Same for the flush callback.
class CallbackSlot {
 public:
  void Set(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    fn_ = std::move(fn);
  }
  void Call() const {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      fn = fn_;
    }
    if (fn) fn();
  }

 private:
  mutable absl::Mutex mu_;
  std::function<void()> fn_ ABSL_GUARDED_BY(mu_);
};

// Installs a hook for the rest of the scope. Declare it after the locals its
// function uses, so that it is removed before they go away.
class ScopedHook {
 public:
  ScopedHook(HookSlot& slot, HookFn fn) : slot_(slot) {
    slot_.Set(std::move(fn));
  }
  ~ScopedHook() { slot_.Set(nullptr); }

 private:
  HookSlot& slot_;
};

class ScopedCallback {
 public:
  ScopedCallback(CallbackSlot& slot, std::function<void()> fn) : slot_(slot) {
    slot_.Set(std::move(fn));
  }
  ~ScopedCallback() { slot_.Set(nullptr); }

 private:
  CallbackSlot& slot_;
};

// A hook that runs `f` at `point` only.
HookFn At(HookPoint point, std::function<void()> f) {
  return [point, f](HookPoint p) {
    if (p == point) f();
    return absl::OkStatus();
  };
}

uint64_t MergesStarted() { return GetStats().nb_merge; }

// ---- lookups ---------------------------------------------------------------

std::optional<std::string> Find(const Idx& index, const std::string& key) {
  auto found = index.Find(key);
  EXPECT_TRUE(found.ok()) << found.status();
  if (!found.ok()) return std::nullopt;
  return *found;
}

void ExpectBindingImpl(const Idx& index, const std::string& key,
                       const std::string& value) {
  EXPECT_EQ(Find(index, key), std::optional<std::string>(value))
      << "binding " << key << " -> " << value;
}

void ExpectAbsentImpl(const Idx& index, const std::string& key) {
  EXPECT_EQ(Find(index, key), std::nullopt) << "key " << key;
}

// With the caller's line in the failure message.
#define KV_EXPECT_BINDING(...)         \
  do {                                 \
    SCOPED_TRACE("KV_EXPECT_BINDING"); \
    ExpectBindingImpl(__VA_ARGS__);    \
  } while (0)
#define KV_EXPECT_ABSENT(...)         \
  do {                                \
    SCOPED_TRACE("KV_EXPECT_ABSENT"); \
    ExpectAbsentImpl(__VA_ARGS__);    \
  } while (0)

bool Mem(const Idx& index, const std::string& key) {
  auto found = index.Mem(key);
  EXPECT_TRUE(found.ok()) << found.status();
  return found.ok() && *found;
}

// Every binding Iter visits. By design, our Iter visits every key exactly once
// (upstream may visit a key twice: the log's value and the data file's older
// one).
Table IterAll(const Idx& index) {
  Table seen;
  size_t visits = 0;
  absl::Status st = index.Iter([&](const std::string& k, const std::string& v) {
    ++visits;
    seen[k] = v;
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(visits, seen.size()) << "Iter visited a key more than once";
  return seen;
}

// Upstream's check_equivalence: every table binding is found and Iter yields
// exactly the table.
void CheckEquivalence(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) KV_EXPECT_BINDING(index, k, v);
  EXPECT_EQ(IterAll(index), tbl);
}

// Upstream's check_equivalence_mem.
void CheckEquivalenceMem(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) EXPECT_TRUE(Mem(index, k)) << k;
  for (const auto& [k, v] : IterAll(index)) EXPECT_EQ(tbl.count(k), 1u) << k;
}

// Upstream's check_disjoint: no binding of the table is present.
void CheckDisjoint(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) {
    EXPECT_NE(Find(index, k), std::optional<std::string>(v)) << k;
  }
}

// ---- contexts --------------------------------------------------------------

struct Config {
  uint64_t log_size = 4;
  size_t lru_size = 0;
  Throttle throttle = Throttle::kBlockWrites;
};

// Upstream's Make_context: a root, a shared cache, the main read-write handle,
// the table of its expected bindings and the clones opened on the same root.
class Context {
 public:
  Context(MemEnv* env, std::string root, Config config)
      : env_(env), root_(std::move(root)), config_(config) {}
  ~Context() { CloseAll(); }

  const std::string& root() const { return root_; }
  std::string Path(absl::string_view name) const {
    return StorePath(root_, name);
  }

  Options MakeOptions(bool readonly, bool fresh, bool use_cache = true) {
    Options o;
    o.env = env_;
    o.fresh = fresh;
    o.readonly = readonly;
    o.log_size = config_.log_size;
    o.lru_size = config_.lru_size;
    o.throttle = config_.throttle;
    o.cache = use_cache ? &cache_ : nullptr;
    o.flush_callback = [this] { callback.Call(); };
    o.test_hook = [this](HookPoint p) { return hooks.Call(p); };
    return o;
  }

  absl::StatusOr<std::unique_ptr<Idx>> TryOpen(bool readonly, bool fresh) {
    return Idx::Open(root_, MakeOptions(readonly, fresh));
  }

  // A new handle on the root (upstream's `clone`), closed with the context.
  // nullptr (and a test failure) if the open fails.
  Idx* Clone(bool readonly, bool fresh = false) {
    auto opened = TryOpen(readonly, fresh);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return nullptr;
    handles_.push_back(*std::move(opened));
    return handles_.back().get();
  }

  void CloseAll() {
    hooks.Set(nullptr);
    callback.Set(nullptr);
    for (auto& h : handles_) KV_EXPECT_OK(h->Close());
    handles_.clear();
  }

  Idx* rw = nullptr;
  Table tbl;
  HookSlot hooks;
  CallbackSlot callback;

 private:
  MemEnv* env_;
  const std::string root_;
  const Config config_;
  InstanceCache cache_;  // outlives handles_
  std::vector<std::unique_ptr<Idx>> handles_;
};

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    rng_.seed(std::hash<std::string>()(
        absl::StrCat(info->test_suite_name(), ".", info->name())));
  }

  std::string RandomString(size_t n = kStringSize) {
    std::uniform_int_distribution<int> printable(33, 126);
    std::string s(n, ' ');
    for (char& c : s) c = static_cast<char>(printable(rng_));
    return s;
  }
  std::string NewKey() { return RandomString(); }
  std::string NewValue() { return RandomString(); }
  std::string RandomNewKey(const Table& tbl) {
    for (;;) {
      std::string k = NewKey();
      if (tbl.count(k) == 0) return k;
    }
  }
  Table RandomTable(size_t size) {
    Table t;
    while (t.size() < size) t[NewKey()] = NewValue();
    return t;
  }

  Context* NewContext(Config config) {
    contexts_.push_back(std::make_unique<Context>(
        &env_, absl::StrCat("/tests/index_", contexts_.size() + 1), config));
    return contexts_.back().get();
  }

  // Upstream's empty_index: a fresh read-write index. nullptr on failure.
  Context* Empty(Config config = Config()) {
    Context* ctx = NewContext(config);
    ctx->rw = ctx->Clone(/*readonly=*/false, /*fresh=*/true);
    return ctx->rw == nullptr ? nullptr : ctx;
  }

  // Upstream's full_index: `size` random bindings added, flushed and merged;
  // the flush callback (ctx->callback) is installed only afterwards by the
  // test.
  Context* Full(Config config = Config(), size_t size = 103) {
    Context* ctx = Empty(config);
    if (ctx == nullptr) return nullptr;
    for (size_t i = 0; i < size; ++i) {
      const std::string k = NewKey(), v = NewValue();
      absl::Status st = ctx->rw->Replace(k, v);
      EXPECT_TRUE(st.ok()) << st;
      if (!st.ok()) return nullptr;
      ctx->tbl[k] = v;
    }
    absl::Status st = ctx->rw->Flush();
    if (st.ok()) st = ctx->rw->Merge();
    if (st.ok()) st = ctx->rw->AwaitMerge();
    EXPECT_TRUE(st.ok()) << st;
    return st.ok() ? ctx : nullptr;
  }

  // Upstream's test_fd: at most two descriptors each on data, the logs and the
  // lock file, none on anything else (merge, ...). MemEnv counts a descriptor
  // under the name it was opened with: the writer's log, created as log_tmp and
  // renamed over log by every reset, counts as log_tmp, so it is counted with
  // the logs here.
  void ExpectFewFilesOpen(const Context& ctx) {
    EXPECT_LE(env_.OpenCount(ctx.Path("data")), 2);
    EXPECT_LE(env_.OpenCount(ctx.Path("log")) +
                  env_.OpenCount(ctx.Path("log_tmp")) +
                  env_.OpenCount(ctx.Path("log_async")),
              2);
    EXPECT_LE(env_.OpenCount(ctx.Path("lock")), 2);
    EXPECT_EQ(env_.OpenCount(ctx.Path("merge")), 0);
    for (const std::string& path : env_.ListFiles()) {
      if (path.rfind(ctx.Path(""), 0) != 0) continue;
      const std::string name = path.substr(ctx.Path("").size());
      if (name != "data" && name != "log" && name != "log_tmp" &&
          name != "log_async" && name != "lock") {
        EXPECT_EQ(env_.OpenCount(path), 0) << path;
      }
    }
  }

  MemEnv env_;  // outlives contexts_
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Context>> contexts_;
};

#define KV_CONTEXT(var, expr) \
  Context* var = (expr);      \
  ASSERT_NE(var, nullptr)

#define KV_CLONE(var, ctx, ...)         \
  Idx* var = (ctx)->Clone(__VA_ARGS__); \
  ASSERT_NE(var, nullptr)

// ==== cache (test/main.ml) ==================================================

// Cache.Noop: without a cache nothing is shared. A second writer is refused,
// and two read-only opens are independent instances.
TEST_F(UpstreamTest, CacheNoopSharesNothing) {
  Context* ctx = NewContext(Config());
  auto rw = Idx::Open(ctx->root(), ctx->MakeOptions(false, true, false));
  ASSERT_TRUE(rw.ok()) << rw.status();
  // By design: a second writer is kUnavailable (upstream: Locked).
  auto rw2 = Idx::Open(ctx->root(), ctx->MakeOptions(false, false, false));
  EXPECT_EQ(rw2.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rw2.status().message(), HasSubstr(ctx->root()));

  auto ro1 = Idx::Open(ctx->root(), ctx->MakeOptions(true, false, false));
  ASSERT_TRUE(ro1.ok()) << ro1.status();
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK((*rw)->Replace(k, v));
  KV_ASSERT_OK((*rw)->Flush());
  auto ro2 = Idx::Open(ctx->root(), ctx->MakeOptions(true, false, false));
  ASSERT_TRUE(ro2.ok()) << ro2.status();
  KV_EXPECT_BINDING(**ro2, k, v);  // synced at open
  KV_EXPECT_ABSENT(**ro1, k);      // its own, older view
  KV_EXPECT_OK((*ro2)->Close());
  KV_EXPECT_OK((*ro1)->Close());
  KV_EXPECT_OK((*rw)->Close());
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
  ASSERT_TRUE(rw1.ok()) << rw1.status();
  auto rw2 = Idx::Open(ctx->root(), b);
  ASSERT_TRUE(rw2.ok()) << rw2.status();  // shared: no lock conflict
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK((*rw1)->Replace(k, v));
  KV_EXPECT_BINDING(**rw2, k, v);  // unflushed, yet visible: same instance
  KV_ASSERT_OK((*rw2)->Flush());
  EXPECT_EQ(calls_a, 1);  // the instance was created with a's callback
  EXPECT_EQ(calls_b, 0);

  Options ro = a;
  ro.readonly = true;
  ro.fresh = false;
  auto ro1 = Idx::Open(ctx->root(), ro);
  ASSERT_TRUE(ro1.ok()) << ro1.status();
  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK((*rw1)->Replace(k2, v2));
  KV_ASSERT_OK((*rw1)->Flush());
  KV_EXPECT_ABSENT(**ro1, k2);
  auto ro2 =
      Idx::Open(ctx->root(), ro);  // a cache hit syncs the shared instance
  ASSERT_TRUE(ro2.ok()) << ro2.status();
  KV_EXPECT_BINDING(**ro1, k2, v2);

  KV_ASSERT_OK((*rw1)->Close());
  KV_ASSERT_OK((*rw2)->Close());
  calls_a = 0;
  auto rw3 =
      Idx::Open(ctx->root(), b);  // removed from the cache: a new instance
  ASSERT_TRUE(rw3.ok()) << rw3.status();
  KV_ASSERT_OK((*rw3)->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK((*rw3)->Flush());
  EXPECT_EQ(calls_a, 0);
  EXPECT_EQ(calls_b, 1);
  KV_EXPECT_BINDING(**rw3, k2, v2);
  KV_ASSERT_OK((*rw3)->Close());

  // A store deleted behind the cache's back gets a new (empty) read-only
  // instance; the existing one keeps its view.
  for (const char* name : {"log", "data", "log_async"}) {
    if (env_.FileExists(ctx->Path(name)).value()) {
      KV_ASSERT_OK(env_.RemoveFile(ctx->Path(name)));
    }
  }
  auto ro3 = Idx::Open(ctx->root(), ro);
  ASSERT_TRUE(ro3.ok()) << ro3.status();
  KV_EXPECT_ABSENT(**ro3, k2);
  KV_EXPECT_BINDING(**ro1, k2, v2);
  for (auto* h : {&ro1, &ro2, &ro3}) KV_EXPECT_OK((**h)->Close());
}

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
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Replace(k, v2));
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
  KV_ASSERT_OK(ctx->rw->Clear());
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
}

TEST_F(UpstreamTest, LiveClearAndFind) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Clear());
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ctx->rw, k);
}

TEST_F(UpstreamTest, LiveOpenAfterClear) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Clear());
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
  ASSERT_TRUE(rw.ok()) << rw.status();
  for (int i = 0; i < 103; ++i)
    KV_ASSERT_OK((*rw)->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK((*rw)->Flush());
  KV_ASSERT_OK((*rw)->Clear());
  KV_ASSERT_OK((*rw)->Close());
  auto log = env_.Contents(ctx->Path("log"));
  ASSERT_TRUE(log.ok()) << log.status();
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
  KV_ASSERT_OK(ctx->rw->Replace(k, v1));
  KV_ASSERT_OK(ctx->rw->Replace(k, v2));
  KV_ASSERT_OK(ctx->rw->Replace(k, v3));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->AwaitMerge());
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
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Replace(k, v2));
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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK(rw2->Replace(k2, v2));
  KV_EXPECT_BINDING(*ctx->rw, k2, v2);
  KV_EXPECT_BINDING(*rw2, k1, v1);
}

TEST_F(UpstreamTest, OnRestartDuplicateEntriesInLog) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v1));
  KV_ASSERT_OK(ctx->rw->Replace(k, v2));
  KV_ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  EXPECT_EQ(IterAll(*rw2), (Table{{k, v2}}));
  // The log holds two records; its test view gives the distinct bindings
  // (§16.19).
  EXPECT_EQ(rw2->raw().TEST_LogEntries(), std::vector<std::string>{k + v2});
}

// ==== readonly ==============================================================

TEST_F(UpstreamTest, ReadonlyAdd) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  // Upstream uses the (empty) table of an empty index here; use real bindings.
  const Table tbl2 = RandomTable(103);
  for (const auto& [k, v] : tbl2) KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, tbl2);
}

TEST_F(UpstreamTest, ReadonlyReadAfterClear) {
  Config config;
  config.lru_size = 10;  // the clear must also empty the LRU
  KV_CONTEXT(ctx, Full(config));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_ASSERT_OK(ctx->rw->Clear());
  KV_ASSERT_OK(ro->Sync());
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ro, k);
  KV_ASSERT_OK(ctx->rw->Close());
  KV_ASSERT_OK(ro->Close());

  KV_CLONE(rw, ctx, /*readonly=*/false);
  KV_CLONE(ro2, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(rw->Replace(k, v));
  KV_EXPECT_BINDING(*rw, k, v);
  KV_EXPECT_ABSENT(*ro2, k);
  KV_ASSERT_OK(rw->Flush());
  KV_ASSERT_OK(ro2->Sync());
  KV_EXPECT_BINDING(*rw, k, v);
  KV_EXPECT_BINDING(*ro2, k, v);
  KV_ASSERT_OK(rw->Clear());
  KV_EXPECT_ABSENT(*rw, k);
  KV_EXPECT_BINDING(*ro2, k, v);  // not synced yet
  KV_ASSERT_OK(ro2->Sync());
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

  Semaphore merge, sync;
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) merge.Acquire();
    if (p == HookPoint::kMergeAfter) sync.Release();
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Clear());
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Merge());
  for (const auto& [k2, v2] : tbl2) KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  CheckEquivalence(*ctx->rw, tbl2);
  CheckEquivalence(*ro, ctx->tbl);
  ctx->hooks.Set([&](HookPoint p) {
    if (p == HookPoint::kMergeBefore) merge.Acquire();
    if (p == HookPoint::kMergeAfter) sync.Release();
    if (p == HookPoint::kSyncAfterOffsetRead) {
      merge.Release();
      sync.Acquire();
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, tbl2);
  merge.Release();
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
}

TEST_F(UpstreamTest, ReadonlyVAfterReplace) {
  KV_CONTEXT(ctx, Full());
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_ASSERT_OK(ctx->rw->Close());
  KV_ASSERT_OK(ro->Close());
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
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k);
}

TEST_F(UpstreamTest, ReadonlyVIsInSync) {
  KV_CONTEXT(ctx, Full());
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_EXPECT_BINDING(*ro, k, v);
  CheckEquivalence(*ro, [&] {
    Table t = ctx->tbl;
    t[k] = v;
    return t;
  }());
}

TEST_F(UpstreamTest, ReadonlyReadValuesAddedInLogBeforeClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ctx->rw->Clear());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k1);
}

TEST_F(UpstreamTest, ReadonlyReadValuesAddedInIndexBeforeClear) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_ASSERT_OK(ctx->rw->Clear());
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->AwaitMerge());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ctx->rw->Clear());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k1);
}

TEST_F(UpstreamTest, ReadonlyReadOldValuesInLogAfterClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ctx->rw->Clear());
  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k2, v2);
  KV_EXPECT_ABSENT(*ctx->rw, k1);
  KV_EXPECT_ABSENT(*ro, k1);
}

TEST_F(UpstreamTest, ReadonlyReadOldValuesInIndexAfterClear) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_ASSERT_OK(ctx->rw->Clear());
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->AwaitMerge());
  KV_ASSERT_OK(ro->Sync());
  KV_ASSERT_OK(ctx->rw->Clear());
  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_BINDING(*ro, k1, v1);  // still the old data file
  KV_EXPECT_ABSENT(*ctx->rw, k1);
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_ABSENT(*ro, k1);
  KV_EXPECT_BINDING(*ro, k2, v2);
}

TEST_F(UpstreamTest, ReadonlyOpenAfterClear) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Clear());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ro, k);
  EXPECT_TRUE(IterAll(*ro).empty());
}

// A read-only sync paused right after reading the log header while a whole
// merge finishes still finds the writes made into log_async during the merge.
TEST_F(UpstreamTest, ReadonlyRaceBetweenSyncAndMerge) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  Semaphore replace, merge, sync;
  const std::string k1(kStringSize, '1'), k2(kStringSize, '2'),
      k3(kStringSize, '3');
  const std::string v1 = NewValue(), v2 = NewValue(), v3 = NewValue();
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    switch (p) {
      case HookPoint::kMergeBefore:
        replace.Release();
        merge.Acquire();
        break;
      case HookPoint::kMergeAfter:
        sync.Release();
        break;
      case HookPoint::kSyncAfterOffsetRead:
        merge.Release();
        sync.Acquire();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Merge());
  replace.Acquire();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Replace(k3, v3));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
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
                    At(HookPoint::kClearIo, [&] { KV_EXPECT_OK(ro->Sync()); }));
    KV_ASSERT_OK(ctx->rw->Clear());
  }
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  KV_EXPECT_BINDING(*ro, k, v);
  CheckEquivalence(*ro, Table{{k, v}});
}

// A sync paused after reading the log header, across the merge's log reset
// (After_clear), still finds the binding merged by it.
TEST_F(UpstreamTest, ReadonlyRaceBetweenSyncAndEndOfMerge) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  Semaphore merge, sync;
  const std::string k1(kStringSize, '1'), k2(kStringSize, '2');
  const std::string v1 = NewValue(), v2 = NewValue();
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    switch (p) {
      case HookPoint::kMergeBefore:
        sync.Release();
        merge.Acquire();
        break;
      case HookPoint::kMergeAfterClear:
        sync.Release();
        break;
      case HookPoint::kSyncAfterOffsetRead:
        merge.Release();
        sync.Acquire();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  sync.Acquire();  // the merge is in Before
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  sync.Release();
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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  sync.Acquire();
  for (int i = 0; i < 4; ++i) KV_ASSERT_OK(ro->Sync());
  merge.Release();
  KV_EXPECT_BINDING(*ro, k1, v1);
  KV_EXPECT_BINDING(*ro, k2, v2);
  EXPECT_EQ(reload_log.load(), 0) << "reloadings of log per merge";
  EXPECT_EQ(reload_log_async.load(), 1) << "reloadings of log_async per merge";
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
}

// ==== close =================================================================

TEST_F(UpstreamTest, CloseAndReopen) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Close());
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
// everything, including what was written into log_async meanwhile.
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
    KV_EXPECT_OK(rw->Close(/*immediately=*/true));
  };

  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  CheckLogs(env_, *ctx, *ctx->rw, 1, std::nullopt, "k1 in log");
  KV_ASSERT_OK(ctx->rw->Merge());
  close(ctx->rw, 0, 0, "first failed merge");

  KV_CLONE(rw, ctx, /*readonly=*/false, /*fresh=*/false);
  ctx->tbl[k1] = v1;
  CheckEquivalence(*rw, ctx->tbl);

  KV_ASSERT_OK(rw->Replace(k2, v2));
  CheckLogs(env_, *ctx, *rw, 1, std::nullopt, "k2 in log");
  KV_ASSERT_OK(rw->Merge());
  KV_ASSERT_OK(rw->Replace(k3, v3));
  close(rw, 0, 1, "second failed merge");

  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/false);
  ctx->tbl[k2] = v2;
  ctx->tbl[k3] = v3;
  CheckEquivalence(*rw2, ctx->tbl);
}

// After a merge-thread failure the instance keeps working: writes go to the
// leftover log_async, and the next merge replays it first.
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
    KV_EXPECT_OK(rw->Merge());
    KV_EXPECT_OK(rw->AwaitMerge());
    CheckLogs(env_, *ctx, *rw, 0, std::nullopt, where);
  };
  auto failing_merge = [&] {
    fail = true;
    KV_EXPECT_OK(rw->Merge());
    merge.Acquire();
    absl::Status result = rw->AwaitMerge();
    EXPECT_EQ(result.code(), absl::StatusCode::kInternal) << result;
    fail = false;
  };
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue(), k3 = NewKey(), v3 = NewValue();

  force_merge("empty log and log_async");
  KV_ASSERT_OK(rw->Replace(k1, v1));
  CheckLogs(env_, *ctx, *rw, 1, std::nullopt, "k1 in log");
  failing_merge();
  CheckLogs(env_, *ctx, *rw, 0, 0, "k1 merged, merge thread failed");
  ctx->tbl[k1] = v1;
  CheckEquivalence(*rw, ctx->tbl);

  KV_ASSERT_OK(rw->Replace(k2, v2));
  CheckLogs(env_, *ctx, *rw, 0, 1, "k2 in the leftover log_async");
  ctx->tbl[k2] = v2;
  CheckEquivalence(*rw, ctx->tbl);

  failing_merge();  // replays log_async first
  CheckLogs(env_, *ctx, *rw, 0, 0, "log_async replayed and merged");
  CheckEquivalence(*rw, ctx->tbl);

  KV_ASSERT_OK(rw->Replace(k3, v3));
  CheckLogs(env_, *ctx, *rw, 0, 1, "k3 in log_async");
  ctx->tbl[k3] = v3;
  CheckEquivalence(*rw, ctx->tbl);

  force_merge("full merge");
  CheckEquivalence(*rw, ctx->tbl);
  KV_EXPECT_OK(rw->Close());
}

TEST_F(UpstreamTest, CloseFindAbsent) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false);
  for (int i = 0; i < 100; ++i) KV_EXPECT_ABSENT(*rw, RandomNewKey(ctx->tbl));
}

TEST_F(UpstreamTest, CloseReplace) {
  KV_CONTEXT(ctx, Full(Config(), 5));
  KV_ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false);
  const std::string k = NewKey(), v = NewValue(), v2 = NewValue();
  KV_ASSERT_OK(rw->Replace(k, v));
  KV_ASSERT_OK(rw->Replace(k, v2));
  KV_EXPECT_BINDING(*rw, k, v2);
}

TEST_F(UpstreamTest, CloseOpenTwoInstancesCloseOne) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  KV_ASSERT_OK(ctx->rw->Close());
  CheckEquivalence(*ro, ctx->tbl);
}

TEST_F(UpstreamTest, CloseAndReopenOnReadonly) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Close());
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
  KV_ASSERT_OK(ro->Close());
  ExpectAllFailClosed(*ro, ctx->root(), k, v);
  KV_ASSERT_OK(ctx->rw->Close());
  ExpectAllFailClosed(*ctx->rw, ctx->root(), k, v);
}

TEST_F(UpstreamTest, CloseDoubleClose) {
  KV_CONTEXT(ctx, Full());
  KV_ASSERT_OK(ctx->rw->Close());
  KV_ASSERT_OK(ctx->rw->Close());
  absl::Status st = ctx->rw->Flush();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("closed"));
}

TEST_F(UpstreamTest, CloseDoubleRestart) {
  KV_CONTEXT(ctx, Empty());
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_ASSERT_OK(ctx->rw->Close());
  KV_CLONE(rw, ctx, /*readonly=*/false, /*fresh=*/true);
  KV_EXPECT_ABSENT(*rw, k);
  KV_ASSERT_OK(rw->Close());
  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/false);
  KV_EXPECT_ABSENT(*rw2, k);
}

// close(immediately) during a merge paused after its first record: the merge
// aborts (kAborted, not OK, not an error), its After* hooks never run, and no
// descriptor of the merge file stays open. A second handle keeps the instance
// alive to read the outcome and checks that the next merge is not cancelled too
// (§16.4).
TEST_F(UpstreamTest, CloseAbortedMerge) {
  KV_CONTEXT(ctx, Full(Config(), 100));
  KV_CLONE(other, ctx, /*readonly=*/false);
  Semaphore close_request, abort_signalled;
  std::atomic<int> completed_hooks{0};
  std::atomic<bool> armed{true};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (!armed) return absl::OkStatus();
    switch (p) {
      case HookPoint::kMergeBefore:
        close_request.Release();
        break;
      case HookPoint::kMergeAfterFirstEntry:
        abort_signalled.Acquire();
        break;
      case HookPoint::kMergeAfterClear:
      case HookPoint::kMergeAfter:
        ++completed_hooks;
        break;
      case HookPoint::kCloseAbortSignalled:
        abort_signalled.Release();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Merge());
  close_request.Acquire();
  KV_ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  absl::Status result = other->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_EQ(completed_hooks.load(), 0);
  EXPECT_EQ(env_.OpenCount(ctx->Path("merge")), 0);
  EXPECT_FALSE(env_.FileExists(ctx->Path("merge")).value());
  CheckEquivalence(*other, ctx->tbl);

  armed = false;
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(other->Replace(k, v));
  KV_ASSERT_OK(other->Merge());
  KV_EXPECT_OK(other->AwaitMerge());
  ctx->tbl[k] = v;
  CheckEquivalence(*other, ctx->tbl);
}

// Same, closing the last handle (upstream's exact setting): nothing of the
// merge survives, and a reopened index has everything and merges fine.
TEST_F(UpstreamTest, CloseAbortedMergeOnLastHandle) {
  KV_CONTEXT(ctx, Full(Config(), 100));
  Semaphore close_request, abort_signalled;
  std::atomic<int> completed_hooks{0};
  std::atomic<bool> armed{true};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (!armed) return absl::OkStatus();
    switch (p) {
      case HookPoint::kMergeBefore:
        close_request.Release();
        break;
      case HookPoint::kMergeAfterFirstEntry:
        abort_signalled.Acquire();
        break;
      case HookPoint::kMergeAfterClear:
      case HookPoint::kMergeAfter:
        ++completed_hooks;
        break;
      case HookPoint::kCloseAbortSignalled:
        abort_signalled.Release();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  ctx->tbl[k] = v;
  KV_ASSERT_OK(ctx->rw->Merge());
  close_request.Acquire();
  KV_ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  EXPECT_EQ(completed_hooks.load(), 0);
  EXPECT_EQ(env_.OpenCount(ctx->Path("merge")), 0);
  EXPECT_FALSE(env_.FileExists(ctx->Path("merge")).value());
  for (const char* name : {"data", "log", "log_async", "lock"}) {
    EXPECT_EQ(env_.OpenCount(ctx->Path(name)), 0) << name;
  }

  armed = false;
  KV_CLONE(rw, ctx, /*readonly=*/false);
  CheckEquivalence(*rw, ctx->tbl);
  KV_ASSERT_OK(rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(rw->Merge());
  KV_EXPECT_OK(rw->AwaitMerge());
}

// ==== filter ================================================================

Config FilterConfig() {
  Config c;
  c.lru_size = 10;  // filter must also affect the LRU
  return c;
}

TEST_F(UpstreamTest, FilterNone) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  KV_ASSERT_OK(ctx->rw->Filter(
      [](const std::string&, const std::string&) { return true; }));
  CheckEquivalence(*ctx->rw, ctx->tbl);
}

TEST_F(UpstreamTest, FilterAll) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const auto& [k0, v0] = *ctx->tbl.begin();
  KV_EXPECT_BINDING(*ctx->rw, k0, v0);  // cached in the LRU
  KV_ASSERT_OK(ctx->rw->Filter(
      [](const std::string&, const std::string&) { return false; }));
  CheckEquivalence(*ctx->rw, Table());
  // §16.7: finds on an index whose data file lost every record.
  for (const auto& [k, v] : ctx->tbl) KV_EXPECT_ABSENT(*ctx->rw, k);
}

TEST_F(UpstreamTest, FilterOne) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  KV_EXPECT_BINDING(*ctx->rw, k, ctx->tbl[k]);  // now in the LRU
  ctx->tbl.erase(k);
  KV_ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  KV_EXPECT_ABSENT(*ctx->rw, k);
  CheckEquivalence(*ctx->rw, ctx->tbl);
}

TEST_F(UpstreamTest, FilterCloneThenFilter) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  KV_ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  CheckEquivalence(*ctx->rw, ctx->tbl);
  CheckEquivalence(*rw2, ctx->tbl);
}

TEST_F(UpstreamTest, FilterThenClone) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  KV_ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  KV_CLONE(rw2, ctx, /*readonly=*/false);
  CheckEquivalence(*ctx->rw, ctx->tbl);
  CheckEquivalence(*rw2, ctx->tbl);
}

TEST_F(UpstreamTest, FilterEmptyAfterFilterAndFresh) {
  KV_CONTEXT(ctx, Full(FilterConfig()));
  const std::string k = ctx->tbl.begin()->first;
  ctx->tbl.erase(k);
  KV_ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  KV_CLONE(rw2, ctx, /*readonly=*/false, /*fresh=*/true);
  CheckEquivalence(*rw2, Table());
}

// ==== flush_callback ========================================================

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
    KV_ASSERT_OK(ctx->rw->Close());
  }
  {
    KV_CONTEXT(ctx, Full());
    ScopedCallback cb(ctx->callback, [] {
      ADD_FAILURE() << "closing a clean full index called the flush callback";
    });
    KV_ASSERT_OK(ctx->rw->Close());
  }
  KV_CONTEXT(ctx, Empty());
  std::atomic<int> calls{0};
  ScopedCallback cb(ctx->callback, [&] { ++calls; });
  const uint64_t merges = MergesStarted();
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges) << "one write must not start a merge";
  EXPECT_EQ(calls.load(), 0);
  KV_ASSERT_OK(ctx->rw->Close());
  EXPECT_EQ(calls.load(), 1)
      << "closing a dirty index should call the flush callback once";
}

TEST_F(UpstreamTest, FlushCallbackFlush) {
  KV_CONTEXT(ctx, Empty());
  RequiredCallback required;
  ScopedCallback cb(ctx->callback, [&] { required(); });
  KV_CLONE(ro, ctx, /*readonly=*/true);

  KV_ASSERT_OK(ctx->rw->Flush());  // nothing to persist: no call
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  required.Require([&] { KV_EXPECT_OK(ctx->rw->Flush()); },
                   [&] {
                     // Called before any byte is written: not visible yet.
                     KV_EXPECT_OK(ro->Sync());
                     KV_EXPECT_ABSENT(*ro, k);
                   });
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k, v);

  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  FlushOptions no_callback;
  no_callback.no_callback = true;
  KV_ASSERT_OK(ctx->rw->Flush(no_callback));  // by request: no call
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
  for (const auto& [k, v] : bindings) KV_ASSERT_OK(ctx->rw->Replace(k, v));
  EXPECT_EQ(MergesStarted(), merges);

  Semaphore do_merge;
  ScopedHook hook(ctx->hooks,
                  At(HookPoint::kMergeBefore, [&] { do_merge.Acquire(); }));
  const std::string ko = NewKey(), vo = NewValue();
  required.Require([&] { KV_EXPECT_OK(ctx->rw->Replace(ko, vo)); },
                   [&] {
                     KV_EXPECT_OK(ro->Sync());
                     CheckDisjoint(*ro, bindings);
                   });
  EXPECT_EQ(MergesStarted(), merges + 1) << "the 9th write starts a merge";
  bindings[ko] = vo;
  KV_ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, bindings);

  // Writes during the merge go to log_async.
  const std::string ka = NewKey(), va = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(ka, va));
  EXPECT_EQ(MergesStarted(), merges + 1);
  KV_ASSERT_OK(ro->Sync());
  required.Require([&] { KV_EXPECT_OK(ctx->rw->Flush()); },
                   [&] {
                     KV_EXPECT_OK(ro->Sync());
                     CheckEquivalence(*ro, bindings);
                   },
                   /*at_least_once=*/true);

  // The end of the merge copies log_async into the new log and flushes it: one
  // call.
  required.Require(
      [&] {
        do_merge.Release();
        KV_EXPECT_OK(ctx->rw->AwaitMerge());
      },
      nullptr);
  bindings[ka] = va;
  KV_ASSERT_OK(ro->Sync());
  CheckEquivalence(*ro, bindings);
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
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges);
  KV_ASSERT_OK(ctx->rw->Merge());
  EXPECT_EQ(MergesStarted(), merges + 1);
  for (const auto& [k, v] : ctx->tbl) KV_ASSERT_OK(ctx->rw->Replace(k, v));
  EXPECT_EQ(MergesStarted(), merges + 1);
  EXPECT_EQ(ctx->rw->IsMerging().value_or(false), true);
  m.Release();
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
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
    KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    EXPECT_EQ(MergesStarted(), merges) << "write " << i;
  }
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges + 1) << "the 5th write starts a merge";
  for (int i = 0; i < 5; ++i) {
    KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    EXPECT_EQ(MergesStarted(), merges + 1) << "overcommitted write " << i;
  }
  block = false;
  m.Release();
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  EXPECT_EQ(MergesStarted(), merges + 2)
      << "the overcommitted log starts a merge at the next write";
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(IterAll(*ctx->rw).size(), 11u);
}

// ==== lru ===================================================================

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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);  // replace filled the LRU
  ExpectLruStats(1, 0, __LINE__);

  const std::string k2 = NewKey(), v2 = NewValue();
  ResetStats();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));  // evicts k1
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);
  ExpectLruStats(0, 1, __LINE__);
  KV_EXPECT_BINDING(*ctx->rw, k1, v1);  // the miss put k1 back
  ExpectLruStats(1, 1, __LINE__);
}

TEST_F(UpstreamTest, LruMem) {
  KV_CONTEXT(ctx, Empty(LruConfig(1)));
  const std::string k1 = NewKey(), k2 = NewKey();
  KV_ASSERT_OK(ctx->rw->Replace(k1, NewValue()));
  KV_ASSERT_OK(ctx->rw->Replace(k2, NewValue()));
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
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  KV_ASSERT_OK(ctx->rw->Clear());
  ResetStats();
  KV_EXPECT_ABSENT(*ctx->rw, k);
  ExpectLruStats(0, 1, __LINE__);
}

TEST_F(UpstreamTest, LruFilter) {
  KV_CONTEXT(ctx, Full(LruConfig(1)));
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));
  KV_EXPECT_BINDING(*ctx->rw, k, v);
  KV_ASSERT_OK(ctx->rw->Filter(
      [&](const std::string& key, const std::string&) { return key != k; }));
  ResetStats();
  KV_EXPECT_ABSENT(*ctx->rw, k);
  ExpectLruStats(0, 1, __LINE__);
}

// By design (upstream bug #398 / §16.3): a read-only sync that sees new data
// empties the LRU, so a cached binding replaced in the same generation is not
// served stale.
TEST_F(UpstreamTest, LruReadonlySyncDropsStaleBindings) {
  KV_CONTEXT(ctx, Empty(LruConfig(10)));
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k = NewKey(), v1 = NewValue(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k, v1);
  ResetStats();
  KV_EXPECT_BINDING(*ro, k, v1);
  ExpectLruStats(1, 0, __LINE__);  // cached
  KV_ASSERT_OK(ctx->rw->Replace(k, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_EXPECT_BINDING(*ro, k, v1);  // not synced yet
  KV_ASSERT_OK(ro->Sync());
  ResetStats();
  KV_EXPECT_BINDING(*ro, k, v2);
  ExpectLruStats(0, 1, __LINE__);
}

// ==== merge (force_merge.ml) ================================================

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
    for (Idx* r : rs) KV_EXPECT_OK(r->Sync());
  };
  auto write = [&](const std::string& k, const std::string& v) {
    KV_EXPECT_OK(w->Replace(k, v));
    KV_EXPECT_OK(w->Flush());
  };
  auto merge = [&] { KV_EXPECT_OK(w->Merge()); };
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
  KV_EXPECT_OK(w->AwaitMerge());
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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  {
    ScopedHook hook(ctx->hooks, At(HookPoint::kMergeAfter, [&] {
                      KV_EXPECT_OK(ctx->rw->Replace(k2, v2));
                    }));
    KV_ASSERT_OK(ctx->rw->Merge());
    KV_ASSERT_OK(ctx->rw->AwaitMerge());
  }
  KV_ASSERT_OK(r1->Sync());
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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    KV_EXPECT_OK(ctx->rw->Replace(k2, v2));
                    KV_EXPECT_BINDING(*ctx->rw, k2, v2);
                    EXPECT_EQ(ctx->rw->raw().TEST_LogAsyncEntries(),
                              std::vector<std::string>{k2 + v2});
                  }));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(r1->Sync());
  KV_EXPECT_BINDING(*r1, k1, v1);
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_BINDING(*ctx->rw, k2, v2);
}

// Finds from the writer (in After hooks) and from a read-only instance (in
// Before hooks) succeed across four queued merges.
TEST_F(UpstreamTest, MergeFindWhileMerging) {
  KV_CONTEXT(ctx, Full());
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
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
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  r1 = ro;
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(writer_checks.load(), 4);
  EXPECT_GE(reader_checks.load(), 2);
}

// In the merge's Before hook: write, flush, sync a reader: it finds the binding
// in log_async (the new generation's log_async, with an empty log at its side).
TEST_F(UpstreamTest, MergeFindInAsyncWithoutLog) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  std::atomic<int> ran{0};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    KV_EXPECT_OK(ctx->rw->Replace(k1, v1));
                    KV_EXPECT_OK(ctx->rw->Flush());
                    KV_EXPECT_OK(r1->Sync());
                    KV_EXPECT_BINDING(*r1, k1, v1);
                    ++ran;
                  }));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(ran.load(), 1);
}

// Same with two rounds in one merge: the second sync extends the known
// log_async.
TEST_F(UpstreamTest, MergeFindInAsyncWithLog) {
  KV_CONTEXT(ctx, Full());
  KV_CLONE(r1, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue(), k2 = NewKey(),
                    v2 = NewValue();
  std::atomic<int> ran{0};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    KV_EXPECT_OK(ctx->rw->Replace(k1, v1));
                    KV_EXPECT_OK(ctx->rw->Flush());
                    KV_EXPECT_OK(r1->Sync());
                    KV_EXPECT_BINDING(*r1, k1, v1);
                    KV_EXPECT_OK(ctx->rw->Replace(k2, v2));
                    KV_EXPECT_OK(ctx->rw->Flush());
                    KV_EXPECT_OK(r1->Sync());
                    KV_EXPECT_BINDING(*r1, k2, v2);
                    KV_EXPECT_BINDING(*r1, k1, v1);
                    ++ran;
                  }));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(ran.load(), 1);
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
      KV_EXPECT_OK(ctx->rw->Replace(k1, v1));
      KV_EXPECT_OK(ctx->rw->Replace(k2, v2));
      KV_EXPECT_OK(ctx->rw->Flush());
      KV_EXPECT_OK(ro->Sync());  // the reader learns log_async's offset
    }
    if (p == HookPoint::kMergeAfterClear) {
      KV_EXPECT_OK(ro->Sync());  // the reader learns the new generation
      KV_EXPECT_BINDING(*ro, k1, v1);
      KV_EXPECT_BINDING(*ro, k2, v2);
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  KV_ASSERT_OK(ro->Sync());
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
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  {
    ScopedHook hook(ctx->hooks, At(HookPoint::kMergeAfterClear,
                                   [&] { KV_EXPECT_OK(ro->Sync()); }));
    KV_ASSERT_OK(ctx->rw->Merge());
    KV_EXPECT_OK(ctx->rw->AwaitMerge());
  }
  KV_EXPECT_BINDING(*ro, k1, v1);
  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK(ro->Sync());
  std::atomic<int> ran{0};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeAfterClear, [&] {
                    KV_EXPECT_BINDING(*ro, k1, v1);
                    KV_EXPECT_BINDING(*ro, k2, v2);
                    ++ran;
                  }));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  EXPECT_EQ(ran.load(), 1);
}

// A whole merge runs inside a reader's sync, between its log_async and log
// steps; the reader still finds the binding (now in the new data file).
TEST_F(UpstreamTest, MergeDuringRoSync) {
  KV_CONTEXT(ctx, Empty());
  KV_CLONE(ro, ctx, /*readonly=*/true);
  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  std::atomic<int> ran{0};
  ScopedHook hook(ctx->hooks, At(HookPoint::kSyncBeforeOffsetRead, [&] {
                    if (ran++ > 0) return;
                    KV_EXPECT_OK(ctx->rw->Merge());
                    KV_EXPECT_OK(ctx->rw->AwaitMerge());
                  }));
  KV_ASSERT_OK(ro->Sync());
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
    EXPECT_TRUE(r.ok()) << r.status();
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
    KV_EXPECT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    KV_EXPECT_OK(ctx->rw->Merge());
    KV_EXPECT_OK(ctx->rw->AwaitMerge());
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
    KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
    KV_ASSERT_OK(ctx->rw->Merge());
    Wait(after_clear);
    EXPECT_TRUE(is_merging()) << "after clear";
    answered.Notify();
    KV_EXPECT_OK(ctx->rw->AwaitMerge());
  }
  EXPECT_FALSE(is_merging()) << "after merges";
}

// Clear does not wait for a merge blocked in Before: it signals the abort, and
// the merge (no data file yet) returns kAborted.
TEST_F(UpstreamTest, MergeClearIsNotBlocking) {
  KV_CONTEXT(ctx, Empty());
  Semaphore merge_started, merge;
  std::atomic<int> after{0};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    switch (p) {
      case HookPoint::kMergeBefore:
        merge_started.Release();
        merge.Acquire();
        break;
      case HookPoint::kMergeAfter:
        ++after;
        break;
      case HookPoint::kClearAbortSignalled:
        merge.Release();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(ctx->rw->Merge());
  merge_started.Acquire();
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(ctx->rw->Clear());
  absl::Status result = ctx->rw->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_EQ(after.load(), 0) << "merge should have been aborted by clear";
  EXPECT_TRUE(IterAll(*ctx->rw).empty());
  EXPECT_FALSE(env_.FileExists(ctx->Path("merge")).value());
}

// Abort a merge after its first record with `abort` (clear or
// close(immediately)), then check that a later merge completes.
void AbortMergeTest(Context* ctx, bool by_close,
                    const std::function<std::string()>& new_string) {
  Semaphore merge_started, merge;
  std::atomic<int> completed_hooks{0};
  std::atomic<bool> armed{true};
  ScopedHook hook(ctx->hooks, [&](HookPoint p) {
    if (!armed) return absl::OkStatus();
    switch (p) {
      case HookPoint::kMergeAfterFirstEntry:
        merge_started.Release();
        merge.Acquire();
        break;
      case HookPoint::kMergeAfter:
      case HookPoint::kMergeAfterClear:
        ++completed_hooks;
        break;
      case HookPoint::kClearAbortSignalled:
      case HookPoint::kCloseAbortSignalled:
        merge.Release();
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  // Upstream awaits the merge future after close; here a second handle on the
  // same instance reads the outcome.
  Idx* other = ctx->Clone(/*readonly=*/false);
  ASSERT_NE(other, nullptr);
  KV_ASSERT_OK(ctx->rw->Merge());
  merge_started.Acquire();
  if (by_close) {
    KV_ASSERT_OK(ctx->rw->Close(/*immediately=*/true));
  } else {
    KV_ASSERT_OK(ctx->rw->Clear());
  }
  absl::Status result = other->AwaitMerge();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_EQ(completed_hooks.load(), 0) << "merge should have been aborted";
  armed = false;

  // The same instance merges again (the cancel flag was reset).
  KV_ASSERT_OK(other->Replace(new_string(), new_string()));
  KV_ASSERT_OK(other->Merge());
  KV_EXPECT_OK(other->AwaitMerge());
  // And so does a new instance.
  ctx->CloseAll();
  Idx* rw = ctx->Clone(/*readonly=*/false, /*fresh=*/false);
  ASSERT_NE(rw, nullptr);
  KV_ASSERT_OK(rw->Replace(new_string(), new_string()));
  KV_ASSERT_OK(rw->Merge());
  KV_EXPECT_OK(rw->AwaitMerge());
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

// ==== regressions ===========================================================
//
// Not upstream tests: library bugs that the ports above (MergeInterleavedMerge)
// and multiprocess_test hit only now and then, made deterministic.

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

// A reader reopening `log` after a generation change opens the file at the
// path; if the writer resets the log (clear, or the end of a merge) between
// that open and the reader's header read, the reader holds the replaced file,
// already stamped {offset 0, new generation}. Its generation then matches the
// stamp, the dead file never changes again, and no later sync may leave the
// reader stuck: it must see what the writer flushes afterwards.
TEST_F(UpstreamTest, RegressionReaderReopensLogWhileWriterResetsIt) {
  KV_CONTEXT(ctx, Empty());
  OpenHookEnv hooked(&env_);
  Options ro_options = ctx->MakeOptions(/*readonly=*/true, /*fresh=*/false,
                                        /*use_cache=*/false);
  ro_options.env = &hooked;
  auto ro = Idx::Open(ctx->root(), ro_options);
  ASSERT_TRUE(ro.ok()) << ro.status();

  const std::string k1 = NewKey(), v1 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k1, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k1, v1);

  KV_ASSERT_OK(ctx->rw->Clear());  // the reader's log is now stale
  hooked.OnNextReadOnlyOpen(ctx->Path("log"), [&] {
    // The reader has the current log open; reset it under its feet.
    KV_EXPECT_OK(ctx->rw->Clear());
  });
  KV_ASSERT_OK((*ro)->Sync());  // reloads the log
  ASSERT_TRUE(hooked.fired());
  KV_EXPECT_ABSENT(**ro, k1);

  const std::string k2 = NewKey(), v2 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k2, v2));
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k2, v2);
  // Merges do not unstick it either.
  const std::string k3 = NewKey(), v3 = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k3, v3));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->AwaitMerge());
  KV_ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k2, v2);
  KV_EXPECT_BINDING(**ro, k3, v3);
  KV_EXPECT_OK((*ro)->Close());
}

// Same race on log_async: the reader opens log_async while the merge that owns
// it ends (the file is deleted and stamped {0, G+2}) and a second merge ends
// too, so the reader's generation reaches the stamp's. It must still find, in a
// later merge's log_async, the writes flushed during that merge.
TEST_F(UpstreamTest, RegressionReaderOpensLogAsyncWhileMergeEnds) {
  KV_CONTEXT(ctx, Full());
  OpenHookEnv hooked(&env_);
  Options ro_options = ctx->MakeOptions(/*readonly=*/true, /*fresh=*/false,
                                        /*use_cache=*/false);
  ro_options.env = &hooked;
  auto ro = Idx::Open(ctx->root(), ro_options);
  ASSERT_TRUE(ro.ok()) << ro.status();

  Semaphore release;
  std::atomic<bool> block{true};
  ScopedHook hook(ctx->hooks, At(HookPoint::kMergeBefore, [&] {
                    if (block) release.Acquire();
                  }));
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(ctx->rw->Merge());  // blocked in Before; log_async exists
  hooked.OnNextReadOnlyOpen(ctx->Path("log_async"), [&] {
    block = false;
    release.Release();
    KV_EXPECT_OK(ctx->rw->AwaitMerge());  // log_async deleted and stamped
    KV_EXPECT_OK(ctx->rw->Merge());       // one more generation
    KV_EXPECT_OK(ctx->rw->AwaitMerge());
  });
  KV_ASSERT_OK((*ro)->Sync());
  ASSERT_TRUE(hooked.fired());
  KV_ASSERT_OK((*ro)->Sync());

  block = true;
  KV_ASSERT_OK(ctx->rw->Merge());  // blocked in Before
  const std::string k = NewKey(), v = NewValue();
  KV_ASSERT_OK(ctx->rw->Replace(k, v));  // into the new log_async
  KV_ASSERT_OK(ctx->rw->Flush());
  KV_ASSERT_OK((*ro)->Sync());
  KV_EXPECT_BINDING(**ro, k, v);
  block = false;
  release.Release();
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  KV_EXPECT_OK((*ro)->Close());
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
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_ASSERT_OK(ctx->rw->Clear());
  EXPECT_EQ(ctx->rw->AwaitMerge().code(), absl::StatusCode::kAborted);
  block = false;
  KV_ASSERT_OK(ctx->rw->Merge());  // empty index: nothing to merge
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
  // A merge that does run resets the outcome.
  KV_ASSERT_OK(ctx->rw->Replace(NewKey(), NewValue()));
  KV_ASSERT_OK(ctx->rw->Merge());
  KV_EXPECT_OK(ctx->rw->AwaitMerge());
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
      KV_EXPECT_OK(ctx->rw->Replace(k, v2));
      KV_EXPECT_OK(ctx->rw->Replace(k2, v3));
      KV_EXPECT_OK(ctx->rw->Flush());
      release.Release();
      KV_EXPECT_OK(ctx->rw->AwaitMerge());
    }
    return absl::OkStatus();
  });
  KV_ASSERT_OK(ctx->rw->Merge());  // blocked in Before
  KV_ASSERT_OK(ctx->rw->Replace(k, v1));
  KV_ASSERT_OK(ctx->rw->Flush());
  in_sync = true;
  KV_ASSERT_OK(ro->Sync());
  KV_EXPECT_BINDING(*ro, k2, v3);
  KV_EXPECT_BINDING(*ro, k, v2);
  EXPECT_EQ(IterAll(*ro)[k], v2);
}

}  // namespace
}  // namespace kvindex
