#include "tests/upstream_fixture.h"

#include <cstdlib>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "index/stats.h"
#include "io/index_file.h"
#include "testing/status.h"

namespace kvindex {
namespace upstream {

uint64_t MergesStarted() { return GetStats().nb_merge; }

// ---- lookups ---------------------------------------------------------------

std::optional<std::string> Find(const Idx& index, const std::string& key) {
  auto found = index.Find(key);
  EXPECT_OK(found);
  if (!found.ok()) return std::nullopt;
  return *found;
}

bool Mem(const Idx& index, const std::string& key) {
  auto found = index.Mem(key);
  EXPECT_OK(found);
  return found.ok() && *found;
}

void ExpectBindingImpl(const Idx& index, const std::string& key,
                       const std::string& value) {
  EXPECT_EQ(Find(index, key), std::optional<std::string>(value))
      << "binding " << key << " -> " << value;
}

void ExpectAbsentImpl(const Idx& index, const std::string& key) {
  EXPECT_EQ(Find(index, key), std::nullopt) << "key " << key;
}

Table IterAll(const Idx& index) {
  Table seen;
  size_t visits = 0;
  absl::Status st = index.Iter([&](const std::string& k, const std::string& v) {
    ++visits;
    seen[k] = v;
  });
  EXPECT_OK(st);
  EXPECT_EQ(visits, seen.size()) << "Iter visited a key more than once";
  return seen;
}

void CheckEquivalence(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) KV_EXPECT_BINDING(index, k, v);
  EXPECT_EQ(IterAll(index), tbl);
}

void CheckEquivalenceMem(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) EXPECT_TRUE(Mem(index, k)) << k;
  for (const auto& [k, v] : IterAll(index)) EXPECT_EQ(tbl.count(k), 1u) << k;
}

void CheckDisjoint(const Idx& index, const Table& tbl) {
  for (const auto& [k, v] : tbl) {
    EXPECT_NE(Find(index, k), std::optional<std::string>(v)) << k;
  }
}

// ---- writes ----------------------------------------------------------------

absl::Status ReplaceAndFlush(Idx& index, const std::string& key,
                             const std::string& value) {
  absl::Status st = index.Replace(key, value);
  if (st.ok()) st = index.Flush();
  return st;
}

absl::Status ReplaceAndMerge(Idx& index, const std::string& key,
                             const std::string& value) {
  absl::Status st = index.Replace(key, value);
  if (st.ok()) st = index.Merge();
  if (st.ok()) st = index.AwaitMerge();
  return st;
}

// ---- contexts --------------------------------------------------------------

Context::Context(MemEnv* env, std::string root, Config config)
    : env_(env), root_(std::move(root)), config_(config) {}

Context::~Context() { CloseAll(); }

std::string Context::Path(absl::string_view name) const {
  return StorePath(root_, name);
}

Layout UpstreamLayout() {
  const char* layout = std::getenv("KVINDEX_UPSTREAM_LAYOUT");
  return layout != nullptr && std::string(layout) == "tiered"
             ? Layout::kTiered
             : Layout::kSingleFile;
}

HookPoint MergeHoldPoint() {
  return UpstreamLayout() == Layout::kTiered ? HookPoint::kMergeBefore
                                             : HookPoint::kMergeAfterFirstEntry;
}

Options Context::MakeOptions(bool readonly, bool fresh, bool use_cache) {
  Options o;
  o.env = env_;
  o.fresh = fresh;
  o.readonly = readonly;
  o.log_size = config_.log_size;
  o.lru_size = config_.lru_size;
  o.throttle = config_.throttle;
  o.layout = UpstreamLayout();
  o.cache = use_cache ? &cache_ : nullptr;
  o.flush_callback = [this] { callback.Call(); };
  o.test_hook = [this](HookPoint p) { return hooks.Call(p); };
  return o;
}

absl::StatusOr<std::unique_ptr<Idx>> Context::TryOpen(bool readonly,
                                                      bool fresh) {
  return Idx::Open(root_, MakeOptions(readonly, fresh));
}

Idx* Context::Clone(bool readonly, bool fresh) {
  auto opened = TryOpen(readonly, fresh);
  EXPECT_OK(opened);
  if (!opened.ok()) return nullptr;
  handles_.push_back(*std::move(opened));
  return handles_.back().get();
}

void Context::CloseAll() {
  hooks.Set(nullptr);
  callback.Set(nullptr);
  for (auto& h : handles_) EXPECT_OK(h->Close());
  handles_.clear();
}

void UpstreamTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rng_.seed(std::hash<std::string>()(
      absl::StrCat(info->test_suite_name(), ".", info->name())));
}

std::string UpstreamTest::RandomString(size_t n) {
  std::uniform_int_distribution<int> printable(33, 126);
  std::string s(n, ' ');
  for (char& c : s) c = static_cast<char>(printable(rng_));
  return s;
}

std::string UpstreamTest::RandomNewKey(const Table& tbl) {
  for (;;) {
    std::string k = NewKey();
    if (tbl.count(k) == 0) return k;
  }
}

Table UpstreamTest::RandomTable(size_t size) {
  Table t;
  while (t.size() < size) t[NewKey()] = NewValue();
  return t;
}

Context* UpstreamTest::NewContext(Config config) {
  contexts_.push_back(std::make_unique<Context>(
      &env_, absl::StrCat("/tests/index_", contexts_.size() + 1), config));
  return contexts_.back().get();
}

Context* UpstreamTest::Empty(Config config) {
  Context* ctx = NewContext(config);
  ctx->rw = ctx->Clone(/*readonly=*/false, /*fresh=*/true);
  return ctx->rw == nullptr ? nullptr : ctx;
}

Context* UpstreamTest::Full(Config config, size_t size) {
  Context* ctx = Empty(config);
  if (ctx == nullptr) return nullptr;
  for (size_t i = 0; i < size; ++i) {
    const std::string k = NewKey(), v = NewValue();
    absl::Status st = ctx->rw->Replace(k, v);
    EXPECT_OK(st);
    if (!st.ok()) return nullptr;
    ctx->tbl[k] = v;
  }
  absl::Status st = ctx->rw->Flush();
  if (st.ok()) st = ctx->rw->Merge();
  if (st.ok()) st = ctx->rw->AwaitMerge();
  EXPECT_OK(st);
  return st.ok() ? ctx : nullptr;
}

void UpstreamTest::ExpectFewFilesOpen(const Context& ctx) {
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

// ---- merges held by hooks --------------------------------------------------

MergeAbortGate::MergeAbortGate(Context& ctx, HookPoint reached_at,
                               HookPoint held_at)
    : hook_(ctx.hooks, [this, reached_at, held_at](HookPoint p) {
        if (!armed_) return absl::OkStatus();
        if (p == reached_at) reached_.Release();
        if (p == held_at) abort_signalled_.Acquire();
        switch (p) {
          case HookPoint::kMergeAfterClear:
          case HookPoint::kMergeAfter:
            ++commit_hooks_;
            break;
          case HookPoint::kClearAbortSignalled:
          case HookPoint::kCloseAbortSignalled:
            abort_signalled_.Release();
            break;
          default:
            break;
        }
        return absl::OkStatus();
      }) {}

}  // namespace upstream
}  // namespace kvindex
