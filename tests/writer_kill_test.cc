// A writer process killed for real (SIGKILL) while several of its threads
// replace and flush durably, merges running (POSIX files): every binding a
// thread had acknowledged (its durable flush returned OK) is found after
// reopening, and everything found was written.
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
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/raw_index.h"
#include "testing/keys.h"

namespace kvindex {
namespace {

constexpr uint32_t kWriters = 4;
// Key t * kKeysPerWriter + i is writer t's i-th replace.
constexpr uint32_t kKeysPerWriter = 1u << 20;

Schema TestSchema() {
  return test::MakeSchema(test::kSmallKeySize, test::kSmallValueSize, 8,
                          &test::FirstByteHash);
}

std::string ValueOf(uint32_t key) { return test::SmallValue(key * 7 + 3); }

Options StoreOptions(Layout layout) {
  Options o;
  o.log_size = 40;  // merges all the time: kills land in them too
  o.lru_size = 0;
  o.layout = layout;
  return o;
}

// An acknowledgement: writer `writer`'s replaces up to `index` are durable.
struct Ack {
  uint32_t writer;
  uint32_t index;
};

// The child: kWriters threads replace and flush durably until killed, each
// sending an Ack down `ack_fd` after every durable flush. Never returns.
[[noreturn]] void RunWriters(const std::string& root, Layout layout,
                             int ack_fd) {
  auto index = RawIndex::Open(root, TestSchema(), StoreOptions(layout));
  if (!index.ok()) ::_exit(2);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < kKeysPerWriter; ++i) {
        const uint32_t k = t * kKeysPerWriter + i;
        if (!(*index)->Replace(test::SmallKey(k), ValueOf(k)).ok()) ::_exit(3);
        if (!(*index)->Flush({.with_fsync = true}).ok()) ::_exit(4);
        const Ack ack{t, i};
        // At most PIPE_BUF bytes: written whole, never interleaved.
        if (::write(ack_fd, &ack, sizeof(ack)) != sizeof(ack)) ::_exit(5);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ::_exit(0);
}

class WriterKillTest : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/killXXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(Layouts, WriterKillTest,
                         ::testing::Values(Layout::kSingleFile,
                                           Layout::kTiered),
                         [](const auto& info) {
                           return info.param == Layout::kTiered ? "Tiered"
                                                                : "SingleFile";
                         });

TEST_P(WriterKillTest, AcknowledgedBindingsSurviveSigkill) {
  std::mt19937_64 rng(GetParam() == Layout::kTiered ? 19 : 7);
  const std::string root = dir_ + "/store";
  // Later rounds kill the writer of a store that earlier kills left behind.
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0) << std::strerror(errno);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) {
      ::close(fds[0]);
      RunWriters(root, GetParam(), fds[1]);
    }
    ::close(fds[1]);
    // Kill after a random number of acknowledgements (the writer goes on
    // meanwhile: the kill lands anywhere, merges included).
    const uint64_t kill_after = 20 + rng() % 300;
    std::vector<int64_t> acked(kWriters, -1);
    uint64_t received = 0;
    bool killed = false;
    Ack ack;
    for (;;) {
      const ssize_t n = ::read(fds[0], &ack, sizeof(ack));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) break;  // the child is gone
      ASSERT_EQ(n, static_cast<ssize_t>(sizeof(ack)));
      ASSERT_LT(ack.writer, kWriters);
      acked[ack.writer] = std::max<int64_t>(acked[ack.writer], ack.index);
      if (++received == kill_after && !killed) {
        ASSERT_EQ(::kill(pid, SIGKILL), 0);
        killed = true;
      }
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer exited by itself with status " << status;

    auto index = RawIndex::Open(root, TestSchema(), StoreOptions(GetParam()));
    ASSERT_TRUE(index.ok()) << index.status();
    std::string value(test::kSmallValueSize, '\0');
    for (uint32_t t = 0; t < kWriters; ++t) {
      for (int64_t i = 0; i <= acked[t]; ++i) {
        const uint32_t k = t * kKeysPerWriter + static_cast<uint32_t>(i);
        auto found = (*index)->Find(test::SmallKey(k), value.data());
        ASSERT_TRUE(found.ok()) << found.status();
        ASSERT_TRUE(*found) << "acknowledged key " << k << " is lost";
        ASSERT_EQ(value, ValueOf(k)) << "key " << k;
      }
    }
    uint64_t phantoms = 0;
    ASSERT_TRUE((*index)
                    ->Iter([&](absl::string_view key, absl::string_view v) {
                      const uint32_t k =
                          static_cast<uint8_t>(key[0]) |
                          static_cast<uint32_t>(static_cast<uint8_t>(key[2]))
                              << 8 |
                          static_cast<uint32_t>(static_cast<uint8_t>(key[3]))
                              << 16;
                      if (key != test::SmallKey(k) || v != ValueOf(k)) {
                        ++phantoms;
                      }
                    })
                    .ok());
    EXPECT_EQ(phantoms, 0u);
    ASSERT_TRUE((*index)->Close().ok());
  }
}

}  // namespace
}  // namespace kvindex
