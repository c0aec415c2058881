// The fixture of the ports of the OCaml `index` library's test suite
// (upstream_*_test.cc, one per OCaml test file), run on a MemEnv.
//
// As upstream's test/unix/common.ml: keys and values are 20-byte strings of
// random printable characters (33-126), log_size 4 (so merges happen all the
// time), lru_size 0; the "full index" holds 103 random bindings, flushed and
// merged; clones reopen the same root through one shared InstanceCache
// (read-write clones share the writer instance, read-only clones share one
// read-only instance). The random strings are seeded by the test's name, so
// each test sees the same ones on every run.
//
// Upstream passes hooks to each merge/sync/clear call; here a hook is an option
// of the instance, so each context routes Options::test_hook to a slot that a
// test fills for as long as it needs it (ScopedHook, testing/hooks.h).
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
//   - A read-only sync that sees new data empties the LRU (docs/design.md §13.3).
//   - Merge outcomes come from AwaitMerge() on a live handle (upstream: a
//     future), so tests that close the handle first read the outcome through a
//     second handle.
#ifndef KVINDEX_TESTS_UPSTREAM_FIXTURE_H_
#define KVINDEX_TESTS_UPSTREAM_FIXTURE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/options.h"
#include "io/mem_env.h"
#include "testing/hooks.h"

namespace kvindex {
namespace upstream {

// The hook tools (testing/hooks.h) that the ports pause merges and syncs with.
using test::At;
using test::ScopedHook;
using test::Semaphore;

inline constexpr size_t kStringSize = 20;
using Idx = Index<FixedString<kStringSize>, FixedString<kStringSize>>;
using Table = std::map<std::string, std::string>;

// Merges started so far in this process (GetStats().nb_merge).
uint64_t MergesStarted();

// ---- lookups ---------------------------------------------------------------

// The value bound to `key`, or nullopt; a failed find is a test failure.
std::optional<std::string> Find(const Idx& index, const std::string& key);
bool Mem(const Idx& index, const std::string& key);

void ExpectBindingImpl(const Idx& index, const std::string& key,
                       const std::string& value);
void ExpectAbsentImpl(const Idx& index, const std::string& key);

// With the caller's line in the failure message.
#define KV_EXPECT_BINDING(...)                           \
  do {                                                   \
    SCOPED_TRACE("KV_EXPECT_BINDING");                   \
    ::kvindex::upstream::ExpectBindingImpl(__VA_ARGS__); \
  } while (0)
#define KV_EXPECT_ABSENT(...)                           \
  do {                                                  \
    SCOPED_TRACE("KV_EXPECT_ABSENT");                   \
    ::kvindex::upstream::ExpectAbsentImpl(__VA_ARGS__); \
  } while (0)

// Every binding Iter visits. By design, our Iter visits every key exactly once
// (upstream may visit a key twice: the log's value and the data file's older
// one).
Table IterAll(const Idx& index);

// Upstream's check_equivalence: every table binding is found and Iter yields
// exactly the table.
void CheckEquivalence(const Idx& index, const Table& tbl);

// Upstream's check_equivalence_mem.
void CheckEquivalenceMem(const Idx& index, const Table& tbl);

// Upstream's check_disjoint: no binding of the table is present.
void CheckDisjoint(const Idx& index, const Table& tbl);

// ---- writes ----------------------------------------------------------------

// Replace, then Flush: the first error.
absl::Status ReplaceAndFlush(Idx& index, const std::string& key,
                             const std::string& value);

// Replace, then a merge, awaited: the first error.
absl::Status ReplaceAndMerge(Idx& index, const std::string& key,
                             const std::string& value);

// ---- contexts --------------------------------------------------------------

// The layout every context opens its stores in: Layout::kTiered when the
// environment variable KVINDEX_UPSTREAM_LAYOUT is "tiered" (the *_tiered_test
// targets of tests/BUILD.bazel), the default layout otherwise.
Layout UpstreamLayout();

// Where a test holds a merge to abort it while it reads old records: after
// its first record of the data file in the default layout; at its start in
// the tiered layout, whose merges write the log alone and read no run (they
// never reach kMergeAfterFirstEntry).
HookPoint MergeHoldPoint();

struct Config {
  uint64_t log_size = 4;
  size_t lru_size = 0;
  Throttle throttle = Throttle::kBlockWrites;
};

// Upstream's Make_context: a root, a shared cache, the main read-write handle,
// the table of its expected bindings and the clones opened on the same root.
class Context {
 public:
  Context(MemEnv* env, std::string root, Config config);
  ~Context();

  const std::string& root() const { return root_; }
  std::string Path(absl::string_view name) const;

  // Options routing the test hook and the flush callback to `hooks` and
  // `callback`; through the context's cache unless `use_cache` is false.
  Options MakeOptions(bool readonly, bool fresh, bool use_cache = true);

  absl::StatusOr<std::unique_ptr<Idx>> TryOpen(bool readonly, bool fresh);

  // A new handle on the root (upstream's `clone`), closed with the context.
  // nullptr (and a test failure) if the open fails.
  Idx* Clone(bool readonly, bool fresh = false);

  // Empties the slots and closes every handle.
  void CloseAll();

  Idx* rw = nullptr;
  Table tbl;
  test::HookSlot hooks;
  test::CallbackSlot callback;

 private:
  MemEnv* env_;
  const std::string root_;
  const Config config_;
  InstanceCache cache_;  // outlives handles_
  std::vector<std::unique_ptr<Idx>> handles_;
};

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::string RandomString(size_t n = kStringSize);
  std::string NewKey() { return RandomString(); }
  std::string NewValue() { return RandomString(); }
  std::string RandomNewKey(const Table& tbl);
  Table RandomTable(size_t size);

  Context* NewContext(Config config);

  // Upstream's empty_index: a fresh read-write index. nullptr on failure.
  Context* Empty(Config config = Config());

  // Upstream's full_index: `size` random bindings added, flushed and merged;
  // the flush callback (ctx->callback) is installed only afterwards by the
  // test.
  Context* Full(Config config = Config(), size_t size = 103);

  // Upstream's test_fd: at most two descriptors each on data, the logs and the
  // lock file, none on anything else (merge, ...). MemEnv counts a descriptor
  // under the name it was opened with: the writer's log, created as log_tmp and
  // renamed over log by every reset, counts as log_tmp, so it is counted with
  // the logs here.
  void ExpectFewFilesOpen(const Context& ctx);

  MemEnv env_;  // outlives contexts_
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Context>> contexts_;
};

// ---- merges held by hooks --------------------------------------------------

// Holds the context's merges until a clear or a close(immediately) signals
// their abort (kClearAbortSignalled, kCloseAbortSignalled): WaitForMerge()
// returns once a merge has reached `reached_at`, and the merge waits at
// `held_at` (`reached_at` or a later point) for the signal. Counts the commit
// hooks (kMergeAfterClear, kMergeAfter) that run. Disarm() lets later merges
// run unheld and uncounted.
class MergeAbortGate {
 public:
  MergeAbortGate(Context& ctx, HookPoint reached_at, HookPoint held_at);

  void WaitForMerge() { reached_.Acquire(); }
  int commit_hooks() const { return commit_hooks_.load(); }
  void Disarm() { armed_ = false; }

 private:
  Semaphore reached_, abort_signalled_;
  std::atomic<int> commit_hooks_{0};
  std::atomic<bool> armed_{true};
  ScopedHook hook_;  // last: emptied before the members it uses go away
};

#define KV_CONTEXT(var, expr) \
  Context* var = (expr);      \
  ASSERT_NE(var, nullptr)

#define KV_CLONE(var, ctx, ...)         \
  Idx* var = (ctx)->Clone(__VA_ARGS__); \
  ASSERT_NE(var, nullptr)

}  // namespace upstream
}  // namespace kvindex

#endif  // KVINDEX_TESTS_UPSTREAM_FIXTURE_H_
