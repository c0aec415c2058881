// MemEnv: see mem_env.h for the crash model. Implementation notes:
//
// - Paths are normalised (repeated and trailing '/' and leading "./" removed)
// and split
//   into a directory (dirname; "." for a bare name, "/" for "/name") and a
//   name. "/" and
//   "." always exist; other directories exist once CreateDirs made them and are
//   always durable (a simplification: only file entries have a durable/unsynced
//   split).
// - Each directory keeps its current entries, its durable entries (as of the
// last
//   SyncDir) and the entry operations issued since, in order. Durable entries
//   plus all operations replayed in order give the current entries, so a
//   replayed prefix is always a state the directory really had.
// - Each inode keeps its current bytes, its bytes as of the last Sync, and the
// writes
//   issued since. A rename within one directory is one atomic operation; across
//   two directories it is an unlink in one and a link in the other, each
//   durable with its own directory.
// - Files and locks remember the epoch (Restart count) they were made in; a
// File from
//   an older epoch is dead, a lock from an older epoch was already released.

#include "io/mem_env.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {

namespace {
uint64_t NextInodeNumber() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// std::less<> on paths, without memcmp: sanitizers and libFuzzer intercept
// every memcmp and record each unequal result, which made the path lookups of
// the store fuzzers' MemEnv a tenth of their time. Eight bytes at a time (paths
// share long prefixes), then byte by byte from the first word that differs.
// Same order as std::less<> (unsigned bytes); lookups by absl::string_view
// build no string.
struct PathLess {
  using is_transparent = void;
  bool operator()(absl::string_view a, absl::string_view b) const {
    const auto* x = reinterpret_cast<const unsigned char*>(a.data());
    const auto* y = reinterpret_cast<const unsigned char*>(b.data());
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t u;
      uint64_t v;
      std::memcpy(&u, x + i, 8);  // a load, not a call
      std::memcpy(&v, y + i, 8);
      if (u != v) break;
    }
    for (; i < n; ++i) {
      if (x[i] != y[i]) return x[i] < y[i];
    }
    return a.size() < b.size();
  }
};
}  // namespace

struct MemEnv::Inode {
  const uint64_t number = NextInodeNumber();
  std::string data;    // current bytes
  std::string synced;  // bytes as of the last Sync
  // Writes issued since the last Sync, in order: (offset, bytes).
  std::vector<std::pair<uint64_t, std::string>> unsynced;
};

struct MemEnv::State {
  using InodePtr = std::shared_ptr<Inode>;

  // One directory-entry operation: the entries it sets (inode) or removes
  // (nullptr).
  struct DirOp {
    std::vector<std::pair<std::string, InodePtr>> changes;
  };
  // Maps keyed by path or name (PathLess).
  using Entries = std::map<std::string, InodePtr, PathLess>;
  struct Dir {
    Entries current;
    Entries durable;
    std::vector<DirOp> ops;  // issued since the last SyncDir

    void Apply(DirOp op) {
      for (const auto& change : op.changes) {
        if (change.second == nullptr) {
          current.erase(change.first);
        } else {
          current[change.first] = change.second;
        }
      }
      ops.push_back(std::move(op));
    }
    // Makes `op`'s changes durable (a SyncDir or a crash replaying `ops`).
    void Persist(const DirOp& op) {
      for (const auto& change : op.changes) {
        if (change.second == nullptr) {
          durable.erase(change.first);
        } else {
          durable[change.first] = change.second;
        }
      }
    }
  };
  struct ErrorRule {
    uint32_t mask;
    uint64_t skip;
    int64_t count;  // < 0: for ever
    absl::Status error;
  };

  State() {
    dirs["/"];
    dirs["."];
  }

  mutable absl::Mutex mu;
  std::map<std::string, Dir, PathLess> dirs ABSL_GUARDED_BY(mu);
  // Open Files by normalised path. A count that drops to 0 stays: the same
  // paths are opened again and again.
  std::map<std::string, int, PathLess> open_counts ABSL_GUARDED_BY(mu);
  std::set<std::string, std::less<>> locks ABSL_GUARDED_BY(mu);
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  uint64_t mutations ABSL_GUARDED_BY(mu) = 0;
  bool crash_armed ABSL_GUARDED_BY(mu) = false;
  uint64_t crash_countdown ABSL_GUARDED_BY(mu) = 0;
  bool crashed ABSL_GUARDED_BY(mu) = false;
  std::vector<ErrorRule> rules ABSL_GUARDED_BY(mu);
  bool short_reads ABSL_GUARDED_BY(mu) = false;
  std::optional<uint64_t> space_limit ABSL_GUARDED_BY(mu);
  // StartWriteback hints, in bytes, by the path the file was opened with.
  Tallies writeback_hinted ABSL_GUARDED_BY(mu);
  // StartReadahead hints, likewise.
  Tallies readahead_hinted ABSL_GUARDED_BY(mu);
  // Bytes mapped by MapResident, likewise.
  Tallies resident_mapped ABSL_GUARDED_BY(mu);

  // Adds `n` to the tally of `key`.
  static void Add(Tallies* tally, absl::string_view key, uint64_t n) {
    auto it = tally->find(key);
    if (it == tally->end()) it = tally->emplace(std::string(key), 0).first;
    it->second += n;
  }

  // --- Paths ---

  // Whether Normalize leaves `path` as it is.
  static bool IsNormal(absl::string_view path) {
    if (path.size() > 2 && path[0] == '.' && path[1] == '/') return false;
    if (path.size() > 1 && path.back() == '/') return false;
    // Each '/' and the byte after it, not a search for "//", which calls
    // memcmp (see PathLess).
    for (size_t i = path.find('/'); i != absl::string_view::npos;
         i = path.find('/', i + 1)) {
      if (i + 1 < path.size() && path[i + 1] == '/') return false;
    }
    return true;
  }
  // `path` with repeated '/' collapsed, a trailing '/' and leading "./"
  // dropped: a view of `path` itself when that changes nothing (the usual
  // case), else of *buf, which then holds the normal form.
  static absl::string_view Normalize(absl::string_view path, std::string* buf) {
    if (IsNormal(path)) return path;
    std::string& out = *buf;
    out.clear();
    out.reserve(path.size());
    for (char c : path) {
      if (c == '/' && !out.empty() && out.back() == '/') continue;
      out.push_back(c);
    }
    while (out.size() > 2 && out[0] == '.' && out[1] == '/') out.erase(0, 2);
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
  }
  static absl::string_view DirName(absl::string_view p) {
    size_t slash = p.rfind('/');
    if (slash == absl::string_view::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
  }
  static absl::string_view BaseName(absl::string_view p) {
    size_t slash = p.rfind('/');
    return slash == absl::string_view::npos ? p : p.substr(slash + 1);
  }
  static std::string Join(absl::string_view dir, absl::string_view name) {
    if (dir == ".") return std::string(name);
    if (dir == "/") return absl::StrCat("/", name);
    return absl::StrCat(dir, "/", name);
  }
  static bool IsRoot(absl::string_view p) { return p == "/" || p == "."; }

  // The directory holding `p`, or nullptr if it does not exist.
  Dir* ParentOf(absl::string_view p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = dirs.find(DirName(p));
    return it == dirs.end() ? nullptr : &it->second;
  }
  InodePtr FindFile(absl::string_view p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (IsRoot(p)) return nullptr;
    Dir* dir = ParentOf(p);
    if (dir == nullptr) return nullptr;
    auto it = dir->current.find(BaseName(p));
    return it == dir->current.end() ? nullptr : it->second;
  }
  bool IsDir(absl::string_view p) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return dirs.find(p) != dirs.end();
  }

  // --- Crash and fault checks ---

  absl::Status CheckAlive(const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (crashed) {
      return absl::AbortedError(absl::StrCat(path, ": simulated crash"));
    }
    return absl::OkStatus();
  }

  // Consumes the injection rules for one operation of kind `op`.
  absl::Status Inject(uint32_t op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (size_t i = 0; i < rules.size(); ++i) {
      ErrorRule& rule = rules[i];
      if ((rule.mask & op) == 0) continue;
      if (rule.skip > 0) {
        --rule.skip;
        continue;
      }
      if (rule.count == 0) continue;
      absl::Status error(rule.error.code(),
                         absl::StrCat(path, ": ", rule.error.message()));
      if (rule.count > 0 && --rule.count == 0) {
        rules.erase(rules.begin() + static_cast<std::ptrdiff_t>(i));
      }
      return error;
    }
    return absl::OkStatus();
  }

  // Both checks, in order: a crashed env fails before any injection is
  // consumed.
  absl::Status Begin(uint32_t op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    absl::Status s = CheckAlive(path);
    if (!s.ok()) return s;
    return Inject(op, path);
  }

  uint64_t SpaceUsed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::set<const Inode*> counted;
    uint64_t used = 0;
    for (const auto& [name, dir] : dirs) {
      for (const auto& [file, inode] : dir.current) {
        if (counted.insert(inode.get()).second) used += inode->data.size();
      }
    }
    return used;
  }

  // kResourceExhausted if growing a file by `growth` bytes overflows the
  // space limit.
  absl::Status CheckSpace(const std::string& path, uint64_t growth) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!space_limit.has_value() || growth == 0) return absl::OkStatus();
    const uint64_t used = SpaceUsed();
    if (used <= *space_limit && growth <= *space_limit - used) {
      return absl::OkStatus();
    }
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": no space left on device (ENOSPC)"));
  }

  // Records one successful mutating operation; may reach the crash point.
  void Mutated() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++mutations;
    if (crash_armed && --crash_countdown == 0) {
      crash_armed = false;
      crashed = true;
    }
  }

  // --- Crash ---

  // A deterministic uniform draw in [0, n].
  static uint64_t Draw(std::mt19937_64* rng, uint64_t n) {
    if (n == 0) return 0;
    if (n == UINT64_MAX) return (*rng)();
    return (*rng)() % (n + 1);
  }

  static void ApplyWrite(std::string* bytes, uint64_t offset,
                         absl::string_view data) {
    if (data.empty()) return;
    uint64_t end = offset + data.size();
    if (bytes->size() < end) bytes->resize(static_cast<size_t>(end), '\0');
    std::memcpy(&(*bytes)[static_cast<size_t>(offset)], data.data(),
                data.size());
  }

  // The bytes a power cut leaves of `inode` under
  // CrashOptions::pages_in_any_order.
  static std::string PagesInAnyOrder(const Inode& inode, uint64_t page_size,
                                     std::mt19937_64* rng) {
    if (page_size == 0) page_size = 1;
    const auto& writes = inode.unsynced;
    // The length after each prefix of the writes; one of them survives.
    std::vector<uint64_t> lengths{inode.synced.size()};
    for (const auto& w : writes) {
      lengths.push_back(
          std::max<uint64_t>(lengths.back(), w.first + w.second.size()));
    }
    const uint64_t length = lengths[Draw(rng, writes.size())];
    std::string bytes = inode.synced;
    bytes.resize(length, '\0');
    // Pages in order, and for each the writes that touched it, in issue order.
    std::map<uint64_t, std::vector<size_t>> touched;
    for (size_t i = 0; i < writes.size(); ++i) {
      const uint64_t begin = writes[i].first;
      const uint64_t end = begin + writes[i].second.size();
      for (uint64_t page = begin / page_size; page * page_size < end; ++page) {
        touched[page].push_back(i);
      }
    }
    for (const auto& [page, which] : touched) {
      const uint64_t page_begin = page * page_size;
      const uint64_t page_end = std::min(page_begin + page_size, length);
      if (page_begin >= page_end) break;
      const size_t version = static_cast<size_t>(Draw(rng, which.size()));
      for (size_t j = 0; j < version; ++j) {
        const auto& w = writes[which[j]];
        const uint64_t begin = std::max(page_begin, w.first);
        const uint64_t end = std::min(page_end, w.first + w.second.size());
        if (begin >= end) continue;
        bytes.replace(begin, end - begin, w.second, begin - w.first,
                      end - begin);
      }
    }
    return bytes;
  }

  void Crash(const CrashOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::mt19937_64 rng(options.seed);
    // Every inode a post-crash name could refer to, in a deterministic order.
    std::vector<InodePtr> inodes;
    std::unordered_set<const Inode*> seen;
    auto add = [&](const InodePtr& inode) {
      if (inode != nullptr && seen.insert(inode.get()).second) {
        inodes.push_back(inode);
      }
    };
    for (const auto& [name, dir] : dirs) {
      (void)name;
      for (const auto& entry : dir.durable) add(entry.second);
      for (const auto& op : dir.ops) {
        for (const auto& change : op.changes) add(change.second);
      }
      for (const auto& entry : dir.current) add(entry.second);
    }

    for (const InodePtr& inode : inodes) {
      const size_t n = inode->unsynced.size();
      if (n == 0) {  // nothing to lose, and no draw
        inode->data = inode->synced;
        continue;
      }
      std::string bytes = inode->synced;
      if (options.pages_in_any_order) {
        bytes = PagesInAnyOrder(*inode, options.page_size, &rng);
      } else if (options.keep_unsynced_prefix) {
        const size_t k = static_cast<size_t>(Draw(&rng, n));
        for (size_t i = 0; i < k; ++i) {
          ApplyWrite(&bytes, inode->unsynced[i].first,
                     inode->unsynced[i].second);
        }
        size_t later = k;  // the first write not yet applied
        if (k < n && options.tear_last_write) {
          const auto& next = inode->unsynced[k];
          const size_t torn =
              static_cast<size_t>(Draw(&rng, next.second.size()));
          ApplyWrite(&bytes, next.first,
                     absl::string_view(next.second).substr(0, torn));
          later = k + 1;
        }
        if (options.overwrites_overtake_appends) {
          // Overwrites within the kept length never grow it, so every later
          // write is judged against the same length.
          const uint64_t kept_length = bytes.size();
          for (size_t i = later; i < n; ++i) {
            const auto& w = inode->unsynced[i];
            if (w.first + w.second.size() > kept_length) continue;
            if (Draw(&rng, 1) == 1) ApplyWrite(&bytes, w.first, w.second);
          }
        }
      }
      inode->data = bytes;
      inode->synced = std::move(bytes);
      inode->unsynced.clear();
    }

    for (auto& [name, dir] : dirs) {
      (void)name;
      const size_t j =
          options.keep_unsynced_prefix || options.pages_in_any_order
              ? static_cast<size_t>(Draw(&rng, dir.ops.size()))
              : 0;
      for (size_t i = 0; i < dir.ops.size(); ++i) {
        const bool kept =
            options.dir_ops_in_any_order ? Draw(&rng, 1) == 1 : i < j;
        if (kept) dir.Persist(dir.ops[i]);
      }
      dir.ops.clear();
      dir.current = dir.durable;
    }
  }
};

// --- Files, regions, locks
// ------------------------------------------------------

namespace {

class SnapshotRegion final : public MappedRegion {
 public:
  explicit SnapshotRegion(std::string bytes) : bytes_(std::move(bytes)) {}
  absl::string_view bytes() const override { return bytes_; }

 private:
  const std::string bytes_;
};

}  // namespace

class MemEnv::MemFile final : public File {
 public:
  MemFile(std::shared_ptr<State> state, std::string path, absl::string_view key,
          std::shared_ptr<Inode> inode, bool writable, uint64_t epoch)
      : state_(std::move(state)),
        path_(std::move(path)),
        normal_path_(key == path_ ? std::string() : std::string(key)),
        inode_(std::move(inode)),
        writable_(writable),
        epoch_(epoch) {}

  ~MemFile() override {
    absl::MutexLock l(&state_->mu);
    auto it = state_->open_counts.find(key());
    if (it != state_->open_counts.end() && it->second > 0) --it->second;
  }

  const std::string& path() const override { return path_; }

  absl::Status PRead(uint64_t offset, size_t n, char* dst,
                     size_t* bytes_read) const override {
    *bytes_read = 0;
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpRead);
    if (!s.ok()) return s;
    const std::string& data = inode_->data;
    if (n == 0 || offset >= data.size()) return absl::OkStatus();
    size_t want = n;
    if (state_->short_reads && want > 1) want /= 2;
    size_t got = std::min<uint64_t>(want, data.size() - offset);
    std::memcpy(dst, data.data() + offset, got);
    *bytes_read = got;
    return absl::OkStatus();
  }

  absl::Status PWrite(uint64_t offset, absl::string_view data) override {
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpWrite);
    if (!s.ok()) return s;
    if (!writable_) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, ": write to a file opened read-only"));
    }
    const uint64_t end = offset + data.size();
    if (end > inode_->data.size()) {
      s = state_->CheckSpace(path_, end - inode_->data.size());
      if (!s.ok()) return s;
    }
    if (!data.empty()) {
      State::ApplyWrite(&inode_->data, offset, data);
      inode_->unsynced.emplace_back(offset, std::string(data));
    }
    state_->Mutated();
    return absl::OkStatus();
  }

  // A write of zeros past the end: for the crash model, space that may or may
  // not survive a crash like any other unsynced write, and reads as zeros
  // where it does. Counts as a write for error injection and crash points.
  absl::Status Allocate(uint64_t end) override {
    uint64_t size;
    {
      absl::MutexLock l(&state_->mu);
      size = inode_->data.size();
    }
    if (end <= size) return absl::OkStatus();
    return PWrite(size, std::string(static_cast<size_t>(end - size), '\0'));
  }

  void StartWriteback(uint64_t, uint64_t n) override {
    // Nothing to start in memory; recorded so that tests can see the hint.
    absl::MutexLock l(&state_->mu);
    State::Add(&state_->writeback_hinted, key(), n);
  }

  void StartReadahead(uint64_t, uint64_t n) const override {
    absl::MutexLock l(&state_->mu);
    State::Add(&state_->readahead_hinted, key(), n);
  }

  absl::Status Sync() override {
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpSync);
    if (!s.ok()) return s;
    inode_->synced = inode_->data;
    inode_->unsynced.clear();
    state_->Mutated();
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() const override {
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpRead);
    if (!s.ok()) return s;
    return static_cast<uint64_t>(inode_->data.size());
  }

  absl::StatusOr<FileId> Id() const override {
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpRead);
    if (!s.ok()) return s;
    return FileId{0, inode_->number};
  }

  absl::StatusOr<std::shared_ptr<const MappedRegion>> MapResident(
      uint64_t size) const override {
    auto region = Map(size);
    if (region.ok()) {
      absl::MutexLock l(&state_->mu);
      State::Add(&state_->resident_mapped, key(), size);
    }
    return region;
  }

  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t size) const override {
    absl::MutexLock l(&state_->mu);
    absl::Status s = Begin(kOpRead);
    if (!s.ok()) return s;
    if (size > inode_->data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": cannot map ", size,
                       " bytes of a file of size ", inode_->data.size()));
    }
    return std::shared_ptr<const MappedRegion>(std::make_shared<SnapshotRegion>(
        inode_->data.substr(0, static_cast<size_t>(size))));
  }

 private:
  absl::Status Begin(uint32_t op) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    if (epoch_ != state_->epoch) {
      return absl::AbortedError(absl::StrCat(
          path_, ": simulated crash: file was opened before Restart"));
    }
    return state_->Begin(op, path_);
  }

  const std::shared_ptr<State> state_;
  // The normalised path, which keys the env's per-path tallies.
  absl::string_view key() const {
    return normal_path_.empty() ? absl::string_view(path_)
                                : absl::string_view(normal_path_);
  }

  const std::string path_;         // as given to OpenFile
  const std::string normal_path_;  // normalised, if that is not path_ itself
  const std::shared_ptr<Inode> inode_;
  const bool writable_;
  const uint64_t epoch_;
};

class MemEnv::MemLock final : public FileLock {
 public:
  MemLock(std::shared_ptr<State> state, std::string key, uint64_t epoch)
      : state_(std::move(state)), key_(std::move(key)), epoch_(epoch) {}
  ~MemLock() override {
    absl::MutexLock l(&state_->mu);
    // A Restart since then already released it (and someone may hold it now).
    if (epoch_ == state_->epoch) state_->locks.erase(key_);
  }

 private:
  const std::shared_ptr<State> state_;
  const std::string key_;
  const uint64_t epoch_;
};

// --- MemEnv
// ----------------------------------------------------------------------

MemEnv::MemEnv() : state_(std::make_shared<State>()) {}
MemEnv::~MemEnv() = default;

absl::StatusOr<std::unique_ptr<File>> MemEnv::OpenFile(const std::string& path,
                                                       OpenMode mode) {
  absl::StatusOr<std::unique_ptr<File>> file = OpenFileIfExists(path, mode);
  if (file.ok() && *file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": open: no such file or directory"));
  }
  return file;
}

absl::StatusOr<std::unique_ptr<File>> MemEnv::OpenFileIfExists(
    const std::string& path, OpenMode mode) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpOpen, path);
  if (!s.ok()) return s;
  if (key.empty()) return absl::InvalidArgumentError("open: empty path");
  if (state_->IsDir(key)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": open: is a directory"));
  }
  std::shared_ptr<Inode> inode = state_->FindFile(key);
  if (inode == nullptr) {
    if (mode != OpenMode::kCreateReadWrite) {
      return std::unique_ptr<File>();
    }
    State::Dir* dir = state_->ParentOf(key);
    if (dir == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          path, ": open: directory ", State::DirName(key), " does not exist"));
    }
    inode = std::make_shared<Inode>();
    State::DirOp op;
    op.changes.emplace_back(std::string(State::BaseName(key)), inode);
    dir->Apply(std::move(op));
  }
  auto count = state_->open_counts.find(key);
  if (count == state_->open_counts.end()) {
    count = state_->open_counts.emplace(std::string(key), 0).first;
  }
  ++count->second;
  return std::unique_ptr<File>(new MemFile(state_, path, key, std::move(inode),
                                           mode != OpenMode::kReadOnly,
                                           state_->epoch));
}

absl::StatusOr<FileId> MemEnv::PathId(const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->CheckAlive(path);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> inode = state_->FindFile(key);
  if (inode == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no such file or directory"));
  }
  return FileId{0, inode->number};
}

absl::StatusOr<bool> MemEnv::FileExists(const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->CheckAlive(path);
  if (!s.ok()) return s;
  return state_->IsDir(key) || state_->FindFile(key) != nullptr;
}

absl::Status MemEnv::RenameFile(const std::string& src,
                                const std::string& dst) {
  std::string from_buf, to_buf;
  const absl::string_view from = State::Normalize(src, &from_buf);
  const absl::string_view to = State::Normalize(dst, &to_buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpRename, src);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> inode = state_->FindFile(from);
  if (inode == nullptr) {
    if (state_->IsDir(from)) {
      return absl::FailedPreconditionError(absl::StrCat(
          src, ": rename to ", dst, ": renaming directories is not supported"));
    }
    return absl::NotFoundError(
        absl::StrCat(src, ": rename to ", dst, ": no such file or directory"));
  }
  if (state_->IsDir(to)) {
    return absl::FailedPreconditionError(
        absl::StrCat(src, ": rename to ", dst, ": destination is a directory"));
  }
  State::Dir* to_dir = state_->ParentOf(to);
  if (to_dir == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(src, ": rename to ", dst, ": destination directory ",
                     State::DirName(to), " does not exist"));
  }
  if (from != to) {
    State::Dir* from_dir = state_->ParentOf(from);
    if (from_dir == to_dir) {
      State::DirOp op;
      op.changes.reserve(2);
      op.changes.emplace_back(std::string(State::BaseName(from)), nullptr);
      op.changes.emplace_back(std::string(State::BaseName(to)), inode);
      to_dir->Apply(std::move(op));
    } else {
      State::DirOp unlink, link;
      unlink.changes.emplace_back(std::string(State::BaseName(from)), nullptr);
      link.changes.emplace_back(std::string(State::BaseName(to)), inode);
      from_dir->Apply(std::move(unlink));
      to_dir->Apply(std::move(link));
    }
  }
  state_->Mutated();
  return absl::OkStatus();
}

absl::Status MemEnv::RemoveFile(const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpRemove, path);
  if (!s.ok()) return s;
  if (state_->IsDir(key)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": remove: is a directory"));
  }
  if (state_->FindFile(key) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": remove: no such file or directory"));
  }
  State::DirOp op;
  op.changes.emplace_back(std::string(State::BaseName(key)), nullptr);
  state_->ParentOf(key)->Apply(std::move(op));
  state_->Mutated();
  return absl::OkStatus();
}

absl::Status MemEnv::CreateDirs(const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->CheckAlive(path);
  if (!s.ok()) return s;
  if (key.empty()) return absl::InvalidArgumentError("CreateDirs: empty path");
  // Every prefix that ends before a '/', then the whole path.
  for (size_t pos = 1; pos <= key.size(); ++pos) {
    if (pos < key.size() && key[pos] != '/') continue;
    const absl::string_view prefix = key.substr(0, pos);
    if (state_->IsDir(prefix)) continue;
    if (state_->FindFile(prefix) != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix, ": mkdir: exists and is not a directory"));
    }
    state_->dirs[std::string(prefix)];
  }
  return absl::OkStatus();
}

absl::Status MemEnv::SyncDir(const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpSyncDir, path);
  if (!s.ok()) return s;
  auto it = state_->dirs.find(key);
  if (it == state_->dirs.end()) {
    if (state_->FindFile(key) != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": sync directory: not a directory"));
    }
    return absl::NotFoundError(
        absl::StrCat(path, ": sync directory: no such directory"));
  }
  // The durable entries with every operation since replayed are the current
  // ones (State::Dir): replaying costs the operations, not the directory.
  State::Dir& dir = it->second;
  for (const State::DirOp& op : dir.ops) dir.Persist(op);
  dir.ops.clear();
  state_->Mutated();
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemEnv::ReadFileToString(const std::string& path) {
  absl::StatusOr<std::optional<std::string>> bytes = ReadFileIfExists(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": read: no such file or directory"));
  }
  return **std::move(bytes);
}

absl::StatusOr<std::optional<std::string>> MemEnv::ReadFileIfExists(
    const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpRead, path);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> inode = state_->FindFile(key);
  if (inode == nullptr) return std::optional<std::string>();
  return std::optional<std::string>(inode->data);
}

absl::StatusOr<std::unique_ptr<FileLock>> MemEnv::LockFile(
    const std::string& path) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  absl::Status s = state_->Begin(kOpLock, path);
  if (!s.ok()) return s;
  if (state_->IsDir(key)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": lock: is a directory"));
  }
  std::shared_ptr<Inode> inode = state_->FindFile(key);
  if (state_->locks.count(key) > 0) {
    std::string holder;
    if (inode != nullptr) {
      for (char c : inode->data) {
        if (c < '0' || c > '9') break;
        holder.push_back(c);
      }
    }
    if (holder.empty()) holder = "<unknown>";
    return absl::UnavailableError(absl::StrCat(
        "Cannot lock ", path, ": index is already opened in write mode by PID ",
        holder, ". Current PID is ", ::getpid(), "."));
  }
  if (inode == nullptr) {
    State::Dir* dir = state_->ParentOf(key);
    if (dir == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          path, ": lock: directory ", State::DirName(key), " does not exist"));
    }
    inode = std::make_shared<Inode>();
    State::DirOp op;
    op.changes.emplace_back(std::string(State::BaseName(key)), inode);
    dir->Apply(std::move(op));
  }
  // The PID record is informational: it is kept out of the crash model (its
  // bytes are durable at once), only the lock file's directory entry is not.
  inode->data = absl::StrCat(::getpid());
  inode->synced = inode->data;
  inode->unsynced.clear();
  state_->locks.emplace(key);
  return std::unique_ptr<FileLock>(
      new MemLock(state_, std::string(key), state_->epoch));
}

uint64_t MemEnv::mutation_count() const {
  absl::MutexLock l(&state_->mu);
  return state_->mutations;
}

void MemEnv::CrashAfter(uint64_t n) {
  absl::MutexLock l(&state_->mu);
  if (n == 0) {
    state_->crash_armed = false;
    state_->crashed = true;
  } else {
    state_->crash_armed = true;
    state_->crash_countdown = n;
  }
}

bool MemEnv::crashed() const {
  absl::MutexLock l(&state_->mu);
  return state_->crashed;
}

void MemEnv::Restart(const CrashOptions& options) {
  absl::MutexLock l(&state_->mu);
  state_->Crash(options);
  state_->crashed = false;
  state_->crash_armed = false;
  state_->locks.clear();
  ++state_->epoch;  // every File and lock from before is dead
}

void MemEnv::InjectError(uint32_t op_mask, uint64_t skip, int64_t count,
                         absl::Status error) {
  absl::MutexLock l(&state_->mu);
  if (count == 0 || error.ok()) return;
  state_->rules.push_back({op_mask, skip, count, std::move(error)});
}

void MemEnv::ClearInjectedErrors() {
  absl::MutexLock l(&state_->mu);
  state_->rules.clear();
}

void MemEnv::SetShortReads(bool on) {
  absl::MutexLock l(&state_->mu);
  state_->short_reads = on;
}

void MemEnv::SetSpaceLimit(std::optional<uint64_t> bytes) {
  absl::MutexLock l(&state_->mu);
  state_->space_limit = bytes;
}

uint64_t MemEnv::SpaceUsed() const {
  absl::MutexLock l(&state_->mu);
  return state_->SpaceUsed();
}

absl::StatusOr<std::string> MemEnv::Contents(const std::string& path) const {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  std::shared_ptr<Inode> inode = state_->FindFile(key);
  if (inode == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  return inode->data;
}

void MemEnv::SetContents(const std::string& path, std::string bytes) {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  // The file's directories are created (always durable) as needed.
  for (size_t pos = 1; pos < key.size(); ++pos) {
    if (key[pos] == '/') state_->dirs[std::string(key.substr(0, pos))];
  }
  State::Dir& dir = state_->dirs[std::string(State::DirName(key))];
  const std::string name(State::BaseName(key));
  std::shared_ptr<Inode>& inode = dir.current[name];
  if (inode == nullptr) inode = std::make_shared<Inode>();
  // The entry is durable at once: no operation still pending may change it
  // (a crash or SyncDir replays them over the durable entries).
  for (State::DirOp& op : dir.ops) {
    op.changes.erase(std::remove_if(op.changes.begin(), op.changes.end(),
                                    [&](const auto& change) {
                                      return change.first == name;
                                    }),
                     op.changes.end());
  }
  // In place, so that open Files see the new bytes, as with a disk edited under
  // them.
  inode->data = std::move(bytes);
  inode->synced = inode->data;
  inode->unsynced.clear();
  dir.durable[name] = inode;
}

std::vector<std::string> MemEnv::ListFiles() const {
  absl::MutexLock l(&state_->mu);
  std::vector<std::string> out;
  for (const auto& [dir_path, dir] : state_->dirs) {
    for (const auto& entry : dir.current) {
      out.push_back(State::Join(dir_path, entry.first));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int MemEnv::OpenCount(const std::string& path) const {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  auto it = state_->open_counts.find(key);
  return it == state_->open_counts.end() ? 0 : it->second;
}

uint64_t MemEnv::Tally(Tallies State::*tally, const std::string& path) const {
  std::string buf;
  const absl::string_view key = State::Normalize(path, &buf);
  absl::MutexLock l(&state_->mu);
  const Tallies& counts = (*state_).*tally;
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

uint64_t MemEnv::WritebackHinted(const std::string& path) const {
  return Tally(&State::writeback_hinted, path);
}

uint64_t MemEnv::ReadaheadHinted(const std::string& path) const {
  return Tally(&State::readahead_hinted, path);
}

uint64_t MemEnv::ResidentMapped(const std::string& path) const {
  return Tally(&State::resident_mapped, path);
}

}  // namespace kvindex
