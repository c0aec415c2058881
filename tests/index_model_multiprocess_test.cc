// A read-only instance in another process, on a real directory (Env::Posix()):
// the parent writes generated sequences (replace, flush, merge, try_merge,
// filter, clear, close and reopen) into a writer and, now and then, asks the forked child to sync
// and report what it sees through a pipe, reading the answer a few operations
// later. Every report must be a state the model says may have been flushed
// while the request was pending, i.e. state(p) for p in [F at the request, H at
// the answer], and p never decreases from one report to the next
// (model/model.h).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "model/model.h"
#include "rapidcheck.h"
#include "tests/index_model_util.h"

namespace kvindex {
namespace index_model_test {
namespace {

using model::IndexModel;

constexpr int kReplyTimeoutMs = 30000;

bool WriteFully(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly n bytes; false on EOF, error or (timeout_ms >= 0) timeout.
bool ReadFully(int fd, size_t n, std::string* out, int timeout_ms) {
  out->assign(n, '\0');
  size_t done = 0;
  while (done < n) {
    if (timeout_ms >= 0) {
      pollfd p = {fd, POLLIN, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
    }
    const ssize_t got = ::read(fd, &(*out)[done], n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += static_cast<size_t>(got);
  }
  return true;
}

// Messages child -> parent: 4-byte length, then 'S' + per pool key (1 presence
// byte
// + value) or 'E' + error text.
std::string Frame(const std::string& payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  return std::string(reinterpret_cast<const char*>(&n), 4) + payload;
}

// The child: on 'S' opens (first time) or syncs its read-only instance and
// reports every pool key; on 'Q' or EOF exits. Never returns.
[[noreturn]] void ChildMain(const std::string& root, int hash_bits,
                            size_t lru_size, int in, int out) {
  const Schema schema = TestSchema(hash_bits);
  std::unique_ptr<RawIndex> reader;
  std::string cmd;
  while (ReadFully(in, 1, &cmd, -1) && cmd[0] == 'S') {
    absl::Status s;
    if (reader == nullptr) {
      Options o;
      o.readonly = true;
      o.lru_size = lru_size;
      auto r = RawIndex::Open(root, schema, o);
      if (r.ok()) {
        reader = *std::move(r);
      } else {
        s = r.status();
      }
    } else {
      s = reader->Sync();
    }
    std::string payload = "S";
    if (s.ok()) {
      char value[kValueSize];
      for (int i = 0; i < kNumKeys && s.ok(); ++i) {
        absl::StatusOr<bool> found = reader->Find(PoolKey(i), value);
        if (!found.ok()) {
          s = found.status();
        } else if (*found) {
          payload += '\1';
          payload.append(value, kValueSize);
        } else {
          payload += '\0';
          payload.append(kValueSize, '\0');
        }
      }
    }
    if (!s.ok()) payload = "E" + s.ToString();
    if (!WriteFully(out, Frame(payload))) break;
  }
  reader.reset();
  ::_exit(0);
}

struct ParentOp {
  enum Kind {
    kReplace,
    kReplaceOvercommit,
    kFlush,
    kFlushFsync,
    kMerge,
    kTryMerge,
    kAwaitMerge,
    kFilter,
    kClear,
    kCloseReopen,
    kRequest,  // ask the child to sync and report (if no request is pending)
    kCollect,  // read and check the pending report
  };
  Kind kind = kReplace;
  std::string key, value;
};

void showValue(const ParentOp& op, std::ostream& os) {
  static const char* const kNames[] = {
      "Replace", "ReplaceOvercommit", "Flush",       "FlushFsync",
      "Merge",   "TryMerge",          "AwaitMerge",  "Filter",
      "Clear",   "CloseReopen",       "RequestSync", "CollectReport"};
  os << kNames[op.kind];
  if (op.kind <= ParentOp::kReplaceOvercommit) {
    os << "(" << op.key << ", " << op.value << ")";
  }
}

// Filter drops about a third of the values.
bool KeptByFilter(absl::string_view value) {
  return static_cast<unsigned char>(value.back()) % 3 != 0;
}

rc::Gen<ParentOp> GenParentOp() {
  return rc::gen::exec([] {
    ParentOp op;
    op.kind = *rc::gen::weightedElement<ParentOp::Kind>({
        {8, ParentOp::kReplace},
        {4, ParentOp::kReplaceOvercommit},
        {3, ParentOp::kFlush},
        {1, ParentOp::kFlushFsync},
        {1, ParentOp::kMerge},
        {1, ParentOp::kTryMerge},
        {1, ParentOp::kAwaitMerge},
        {1, ParentOp::kFilter},
        {1, ParentOp::kClear},
        {1, ParentOp::kCloseReopen},
        {4, ParentOp::kRequest},
        {4, ParentOp::kCollect},
    });
    op.key = *GenKey();
    op.value = *GenValue();
    return op;
  });
}

// Owns the child process, the pipes and the directory; kills the child (by its
// pid) if the case ends early.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (to_child_ >= 0) ::close(to_child_);
    if (from_child_ >= 0) ::close(from_child_);
    if (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  void Start(int hash_bits, size_t lru_size) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/kvmpXXXXXX";
    if (::mkdtemp(&tmpl[0]) == nullptr) Fail("mkdtemp failed");
    dir_ = tmpl;
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) Fail("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) Fail("fork failed");
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      ChildMain(dir_, hash_bits, lru_size, down[0], up[1]);
    }
    ::close(down[0]);
    ::close(up[1]);
    to_child_ = down[1];
    from_child_ = up[0];
  }

  const std::string& dir() const { return dir_; }
  void Request() {
    if (!WriteFully(to_child_, "S")) Fail("cannot write to the child");
  }
  // The child's report as a map.
  model::Map Collect() {
    std::string len, payload;
    if (!ReadFully(from_child_, 4, &len, kReplyTimeoutMs)) {
      Fail("no report from the child within the timeout");
    }
    uint32_t n = 0;
    std::memcpy(&n, len.data(), 4);
    if (!ReadFully(from_child_, n, &payload, kReplyTimeoutMs)) {
      Fail("truncated report from the child");
    }
    if (payload.empty() || payload[0] != 'S') {
      Fail("child's read-only instance failed: " + payload.substr(1));
    }
    model::Map m;
    for (int i = 0; i < kNumKeys; ++i) {
      const size_t at = 1 + static_cast<size_t>(i) * (1 + kValueSize);
      if (payload[at] == '\1')
        m[PoolKey(i)] = payload.substr(at + 1, kValueSize);
    }
    return m;
  }
  void Quit() {
    WriteFully(to_child_, "Q");
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Fail("child exited abnormally, status " + std::to_string(status));
    }
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

std::unique_ptr<RawIndex> OpenWriter(const std::string& root,
                                     const Schema& schema, uint64_t log_size,
                                     bool fresh) {
  Options o;
  o.log_size = log_size;
  o.fresh = fresh;
  o.lru_size = 4;
  auto w = RawIndex::Open(root, schema, o);
  if (!w.ok()) Fail("opening the writer: " + w.status().ToString());
  return *std::move(w);
}

void RunCase() {
  const int hash_bits = *rc::gen::element(2, 8);
  const uint64_t log_size = *Uniform<uint64_t>(1, 9);
  const size_t lru_size = *rc::gen::element<size_t>(0, 4);
  const std::vector<ParentOp> ops = *rc::gen::container<std::vector<ParentOp>>(
      static_cast<size_t>(*Uniform(5, 40)), GenParentOp());

  Child child;
  child.Start(hash_bits, lru_size);  // before any thread exists in this process
  const Schema schema = TestSchema(hash_bits);
  std::unique_ptr<RawIndex> writer =
      OpenWriter(child.dir(), schema, log_size, /*fresh=*/true);
  IndexModel m;
  std::optional<size_t> pending_lo;  // F when the pending request was sent
  size_t min_position = 0;
  int reports = 0;

  auto collect = [&] {
    const model::Map seen = child.Collect();
    const size_t lo = *pending_lo, hi = m.maybe_flushed();
    pending_lo.reset();
    const std::string why = m.ExplainRange(seen, lo, hi, /*prefix=*/true);
    if (!why.empty())
      Fail("child report " + std::to_string(reports) + ": " + why);
    const std::vector<size_t> at = m.Matching(seen, lo, hi);
    if (at.back() < min_position) {
      Fail("child went back in time: " + model::ShowMap(seen) +
           " is at most state(" + std::to_string(at.back()) +
           "), an earlier report was at least state(" +
           std::to_string(min_position) + ")");
    }
    min_position = at.front();
    ++reports;
  };

  FlushOptions fsync;
  fsync.with_fsync = true;
  for (const ParentOp& op : ops) {
    switch (op.kind) {
      case ParentOp::kReplace:
      case ParentOp::kReplaceOvercommit: {
        const bool over = op.kind == ParentOp::kReplaceOvercommit;
        AssertOk(writer->Replace(op.key, op.value, over), "replace");
        m.Replace(op.key, op.value, over);
        break;
      }
      case ParentOp::kFlush:
        AssertOk(writer->Flush(), "flush");
        m.Flush(false);
        break;
      case ParentOp::kFlushFsync:
        AssertOk(writer->Flush(fsync), "flush+fsync");
        m.Flush(true);
        break;
      case ParentOp::kMerge:
        AssertOk(writer->Merge(), "merge");
        m.Merge();
        break;
      case ParentOp::kTryMerge:
        AssertOk(writer->TryMerge(), "try_merge");
        m.TryMerge();
        break;
      case ParentOp::kFilter:
        AssertOk(writer->Filter([](absl::string_view, absl::string_view v) {
          return KeptByFilter(v);
        }),
                 "filter");
        m.Filter([](const std::string&, const std::string& v) {
          return KeptByFilter(v);
        });
        break;
      case ParentOp::kAwaitMerge: {
        const absl::Status s = writer->AwaitMerge();
        if (!s.ok() && !(m.merge_may_have_aborted() && absl::IsAborted(s))) {
          Fail("await_merge: " + s.ToString());
        }
        m.AwaitMerge();
        break;
      }
      case ParentOp::kClear:
        AssertOk(writer->Clear(), "clear");
        m.Clear();
        break;
      case ParentOp::kCloseReopen:
        AssertOk(writer->Close(), "close");
        writer.reset();
        m.Close();
        writer = OpenWriter(child.dir(), schema, log_size, /*fresh=*/false);
        m.Reopen();
        break;
      case ParentOp::kRequest:
        if (!pending_lo) {
          child.Request();
          pending_lo = m.flushed();
        }
        break;
      case ParentOp::kCollect:
        if (pending_lo) collect();
        break;
    }
  }
  if (pending_lo) collect();
  // The writer itself shows exactly the model's bindings; after a flush the
  // child sees them too.
  const model::Map mine = [&] {
    auto r = ReadAll(*writer);
    if (!r.ok()) Fail("writer find: " + r.status().ToString());
    return *r;
  }();
  if (mine != m.Bindings()) {
    Fail("writer shows " + model::ShowMap(mine) + ", model " +
         model::ShowMap(m.Bindings()));
  }
  AssertOk(writer->Flush(), "final flush");
  m.Flush(false);
  child.Request();
  pending_lo = m.flushed();
  collect();
  child.Quit();
  AssertOk(writer->Close(), "close");
}

TEST(IndexModelMultiprocessTest, ChildReaderSeesFlushedStates) {
  CheckProperty(&RunCase, 150, 5000);
}

}  // namespace
}  // namespace index_model_test
}  // namespace kvindex
