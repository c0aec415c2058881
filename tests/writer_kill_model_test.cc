// A writer process killed for real (SIGKILL, POSIX files) at random points of
// a random mix of replaces, flushes, merges, filters and clears, while reader
// processes sync and iterate. Checked against the reference model
// (model/model.h):
//   - every reader, at every sync, shows exactly one state of the writer's
//     history, never an earlier one than at its previous sync;
//   - the store reopened after the kill shows a state the model allows after
//     a crash: at least everything acknowledged as durable, nothing never
//     written, writes never reordered.
// Each round continues the store the previous kill left behind; the default
// suite kills the writer 2 x kRounds times (each round that ends before its
// ops do), KVINDEX_SOAK=1 ten times more.
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "model/model.h"
#include "testing/keys.h"

namespace kvindex {
namespace {

using model::IndexModel;
using model::Map;
using model::Outcome;

// ThreadSanitizer runs the processes several times slower: fewer rounds keep
// the test within its size there (the other configurations make up the
// kills).
#if defined(__SANITIZE_THREAD__)
constexpr int kRounds = 25;
#else
constexpr int kRounds = 60;
#endif
constexpr int kOpsPerRound = 160;
constexpr int kReaders = 2;
// 3 keys per hash over 24 hashes: equal hashes in the log table, the data
// files' fan-out and the searches.
constexpr uint32_t kKeys = 72;

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

std::string KeyNumber(uint32_t j) {
  return test::SmallKey(j % 24 + 256 * (j / 24));
}

// `log_checksums`: Options::log_checksums, which the rounds alternate (a
// writer killed with the sidecar, reopened without it, and the reverse).
Options StoreOptions(Layout layout, bool readonly, bool log_checksums = false) {
  Options o;
  o.log_checksums = log_checksums;
  o.log_size = 12;  // merges all the time: kills land in them too
  o.lru_size = readonly ? 0 : 16;
  o.layout = layout;
  o.readonly = readonly;
  return o;
}

// Filter keeps a binding unless its value's first byte is a multiple of 3.
bool Keep(absl::string_view, absl::string_view value) {
  return static_cast<uint8_t>(value[0]) % 3 != 0;
}

struct Op {
  enum Kind {
    kReplace,
    kFlush,
    kFlushFsync,
    kTryMerge,
    kMerge,
    kAwaitMerge,
    kFilter,
    kClear
  };
  Kind kind;
  std::string key;
  std::string value;
};

std::vector<Op> RandomOps(std::mt19937_64& rng, uint32_t round) {
  std::vector<Op> ops;
  for (int i = 0; i < kOpsPerRound; ++i) {
    const uint64_t dice = rng() % 200;
    Op op{Op::kReplace, "", ""};
    if (dice < 130) {
      op.key = KeyNumber(rng() % kKeys);
      // Unique per (round, op): an old value can never pass for a new one.
      op.value = test::SmallValue(static_cast<uint32_t>(rng() % 251) |
                                  round << 8 | static_cast<uint32_t>(i) << 20);
    } else if (dice < 158) {
      op.kind = Op::kFlushFsync;
    } else if (dice < 166) {
      op.kind = Op::kFlush;
    } else if (dice < 176) {
      op.kind = Op::kTryMerge;
    } else if (dice < 184) {
      op.kind = Op::kMerge;
    } else if (dice < 190) {
      op.kind = Op::kAwaitMerge;
    } else if (dice < 197) {
      op.kind = Op::kFilter;
    } else {
      op.kind = Op::kClear;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

absl::Status Run(RawIndex& index, const Op& op) {
  switch (op.kind) {
    case Op::kReplace:
      return index.Replace(op.key, op.value);
    case Op::kFlush:
      return index.Flush({.with_fsync = false});
    case Op::kFlushFsync:
      return index.Flush({.with_fsync = true});
    case Op::kTryMerge:
      return index.TryMerge();
    case Op::kMerge:
      return index.Merge();
    case Op::kAwaitMerge: {
      // A merge cancelled by a clear reports kAborted: not a failure.
      const absl::Status s = index.AwaitMerge();
      return absl::IsAborted(s) ? absl::OkStatus() : s;
    }
    case Op::kFilter:
      return index.Filter(&Keep);
    case Op::kClear:
      return index.Clear();
  }
  return absl::InternalError("unknown op");
}

// Applies `op` to the model; `outcome` kFailed when it may have done any part
// of its work (the kill landed in it).
void Apply(IndexModel& m, const Op& op, Outcome outcome) {
  switch (op.kind) {
    case Op::kReplace:
      m.Replace(op.key, op.value, /*overcommit=*/false, outcome);
      break;
    case Op::kFlush:
      m.Flush(/*fsync=*/false, outcome);
      break;
    case Op::kFlushFsync:
      m.Flush(/*fsync=*/true, outcome);
      break;
    case Op::kTryMerge:
      m.TryMerge(outcome);
      break;
    case Op::kMerge:
      m.Merge(outcome);
      break;
    case Op::kAwaitMerge:
      if (outcome == Outcome::kOk) m.AwaitMerge();
      break;
    case Op::kFilter:
      m.Filter(
          [](const std::string& k, const std::string& v) { return Keep(k, v); },
          outcome);
      break;
    case Op::kClear:
      m.Clear(outcome);
      break;
  }
}

// A model whose history starts at `bindings`, all durable.
IndexModel ModelOf(const Map& bindings) {
  IndexModel m;
  for (const auto& [k, v] : bindings) m.Replace(k, v);
  m.Flush(/*fsync=*/true);
  return m;
}

absl::StatusOr<Map> ReadAll(const RawIndex& index) {
  Map all;
  absl::Status s = index.Iter([&](absl::string_view k, absl::string_view v) {
    all[std::string(k)] = std::string(v);
  });
  if (!s.ok()) return s;
  return all;
}

// The child: runs `ops`, writing each op's number down `ack_fd` once it
// returned OK. Never returns.
[[noreturn]] void RunWriter(const std::string& root, Layout layout,
                            bool log_checksums, const std::vector<Op>& ops,
                            int ack_fd) {
  auto index = RawIndex::Open(root, TestSchema(),
                              StoreOptions(layout, false, log_checksums));
  if (!index.ok()) {
    std::cerr << "writer: " << index.status() << "\n";
    ::_exit(2);
  }
  for (uint32_t i = 0; i < ops.size(); ++i) {
    const absl::Status s = Run(**index, ops[i]);
    if (!s.ok()) {
      std::cerr << "writer: op " << i << ": " << s << "\n";
      ::_exit(3);
    }
    if (::write(ack_fd, &i, sizeof(i)) != sizeof(i)) ::_exit(4);
  }
  ::_exit(0);
}

// A reader process: until `stop_fd` reaches its end, syncs and checks that it
// shows one state of `history` (every op applied) from position `start` (the
// round's first) on, at a position that never goes back. Exits 0 if every check held, 1 (with the explanation on stderr)
// otherwise.
[[noreturn]] void RunReader(const std::string& root, Layout layout,
                            const IndexModel& history, size_t start,
                            int stop_fd) {
  auto fail = [](const std::string& why) {
    std::cerr << "reader " << ::getpid() << ": " << why << "\n";
    ::_exit(1);
  };
  auto index = RawIndex::Open(root, TestSchema(), StoreOptions(layout, true));
  if (!index.ok()) fail(absl::StrCat("open: ", index.status().ToString()));
  size_t at = start;
  for (bool last = false; !last;) {
    char byte;
    last = ::read(stop_fd, &byte, 1) == 0;  // the test's end closed it
    const absl::Status synced = (*index)->Sync();
    if (!synced.ok()) fail(absl::StrCat("sync: ", synced.ToString()));
    const absl::StatusOr<Map> shown = ReadAll(**index);
    if (!shown.ok()) fail(absl::StrCat("iter: ", shown.status().ToString()));
    const std::vector<size_t> p = history.Matching(*shown, at, history.end());
    if (p.empty()) {
      fail(absl::StrCat("shows no state of the writer at or after step ", at,
                        ":\n",
                        history.ExplainRange(*shown, at, history.end(),
                                             /*prefix=*/true)));
    }
    at = p.front();
  }
  ::_exit(0);
}

class WriterKillModelTest : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/killmXXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(Layouts, WriterKillModelTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered),
                         [](const auto& info) {
                           return info.param == Layout::kTiered ? "Tiered"
                                                                : "SingleFile";
                         });

TEST_P(WriterKillModelTest, ReadersAndReopenMatchTheModel) {
  const Layout layout = GetParam();
  const bool soak = std::getenv("KVINDEX_SOAK") != nullptr;
  const int rounds = soak ? 10 * kRounds : kRounds;
  std::mt19937_64 rng(layout == Layout::kTiered ? 23 : 11);
  const std::string root = dir_ + "/store";
  {
    auto created =
        RawIndex::Open(root, TestSchema(), StoreOptions(layout, false));
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_TRUE((*created)->Close().ok());
  }
  Map durable;  // what the store holds at the start of the round
  int killed_rounds = 0;
  int killed_in_merge = 0;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::vector<Op> ops = RandomOps(rng, static_cast<uint32_t>(round));
    IndexModel history = ModelOf(durable);
    for (const Op& op : ops) Apply(history, op, Outcome::kOk);

    int acks[2];
    ASSERT_EQ(::pipe(acks), 0) << std::strerror(errno);
    const pid_t writer = ::fork();
    ASSERT_GE(writer, 0) << std::strerror(errno);
    if (writer == 0) {
      ::close(acks[0]);
      RunWriter(root, layout, /*log_checksums=*/round % 2 == 1, ops, acks[1]);
    }
    ::close(acks[1]);

    int stop[2];
    ASSERT_EQ(::pipe(stop), 0) << std::strerror(errno);
    std::vector<pid_t> readers;
    for (int r = 0; r < kReaders; ++r) {
      const pid_t reader = ::fork();
      ASSERT_GE(reader, 0) << std::strerror(errno);
      if (reader == 0) {
        ::close(stop[1]);
        ::close(acks[0]);
        ::fcntl(stop[0], F_SETFL, O_NONBLOCK);
        RunReader(root, layout, history, durable.size(), stop[0]);
      }
      readers.push_back(reader);
    }
    ::close(stop[0]);

    // Kill after a random number of acknowledged ops, a random moment later.
    const uint32_t kill_after = static_cast<uint32_t>(rng() % kOpsPerRound);
    const useconds_t delay = static_cast<useconds_t>(rng() % 2000);
    int64_t last_done = -1;
    bool killed = false;
    uint32_t done;
    for (;;) {
      const ssize_t n = ::read(acks[0], &done, sizeof(done));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) break;  // the writer is gone
      ASSERT_EQ(n, static_cast<ssize_t>(sizeof(done)));
      ASSERT_EQ(done, static_cast<uint32_t>(last_done + 1));
      last_done = done;
      if (done >= kill_after && !killed) {
        ::usleep(delay);
        ASSERT_EQ(::kill(writer, SIGKILL), 0);
        killed = true;
      }
    }
    ::close(acks[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(writer, &status, 0), writer);
    const bool finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ASSERT_TRUE(finished ||
                (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        << "the writer failed by itself with status " << status;
    if (!finished) ++killed_rounds;

    // The readers take one last look at the store the kill left, then stop.
    ::close(stop[1]);
    for (const pid_t reader : readers) {
      ASSERT_EQ(::waitpid(reader, &status, 0), reader);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "a reader failed (its explanation is above), status " << status;
    }

    // The model of what the writer did: every acknowledged op, then the one
    // the kill may have interrupted.
    IndexModel m = ModelOf(durable);
    for (int64_t i = 0; i <= last_done; ++i) Apply(m, ops[i], Outcome::kOk);
    // A finished writer exited without closing: a crash all the same.
    if (!finished && last_done + 1 < kOpsPerRound) {
      Apply(m, ops[last_done + 1], Outcome::kFailed);
    }
    if (std::filesystem::exists(root + "/index/log_async")) ++killed_in_merge;

    auto index = RawIndex::Open(
        root, TestSchema(),
        StoreOptions(layout, false, /*log_checksums=*/round % 4 < 2));
    ASSERT_TRUE(index.ok()) << index.status();
    const absl::StatusOr<Map> got = ReadAll(**index);
    ASSERT_TRUE(got.ok()) << got.status();
    const std::string why = m.CheckRecovered(*got);
    ASSERT_EQ(why, "") << "after the kill, " << last_done + 1
                       << " ops acknowledged:\n"
                       << why;
    std::string value(test::kSmallValueSize, '\0');
    for (uint32_t j = 0; j < kKeys; ++j) {
      const std::string key = KeyNumber(j);
      auto found = (*index)->Find(key, value.data());
      ASSERT_TRUE(found.ok()) << found.status();
      const auto it = got->find(key);
      ASSERT_EQ(*found, it != got->end()) << "find and iter disagree on " << j;
      if (*found) {
        ASSERT_EQ(value, it->second) << "key " << j;
      }
    }
    ASSERT_TRUE((*index)->Close().ok());
    durable = *got;
  }
  // The kills landed mid-run, and some of them in a merge.
  EXPECT_GE(killed_rounds, rounds * 3 / 4);
  EXPECT_GE(killed_in_merge, rounds / 10);
  std::cout << killed_rounds << " kills, " << killed_in_merge
            << " of them during a merge\n";
}

}  // namespace
}  // namespace kvindex
