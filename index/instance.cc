// Instance: construction, handles and close; find, iter, replace, flush and
// clear. The other concerns of the class have their own files (instance.h).
#include "index/instance.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/clear_marker.h"
#include "index/stats.h"
#include "index/stats_env.h"
#include "io/index_file.h"
#include "io/status_macros.h"
#include "runset/manifest.h"
#include "runset/policy.h"
#include "runset/run_set.h"

namespace kvindex {
namespace index_internal {

Instance::Instance(const std::string& root, const Schema& schema,
                   const Options& options)
    : root_(root),
      schema_(schema),
      options_(options),
      log_size_bytes_(options.log_size * schema.entry_size()),
      env_(NewStatsEnv(options.env != nullptr ? options.env : Env::Posix())),
      lru_(options.lru_size, schema.key_size, schema.value_size) {}

Instance::~Instance() {
  // A handle-less instance may still have a merge finishing.
  cancel_ = true;
  AcquireMergeLock();
  StopCompaction();
  ReleaseMergeLock(nullptr);
  StopMergeWorker();
  reaper_.Stop();
  absl::MutexLock lock(&handles_mu_);
  if (handles_ > 0) {
    handles_ = 0;
    (void)Shutdown();
  }
}

uint64_t Instance::MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

std::string Instance::Path(absl::string_view name) const {
  return StorePath(root_, name);
}

absl::Status Instance::Hook(HookPoint point) const {
  if (!options_.test_hook) return absl::OkStatus();
  return options_.test_hook(point);
}

absl::Status Instance::CheckOpen() const {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat(root_, ": index is closed"));
  }
  return absl::OkStatus();
}

absl::Status Instance::CheckWritable() const {
  KVINDEX_RETURN_IF_ERROR(CheckOpen());
  return StoppedError();
}

absl::Status Instance::StoppedError() const {
  if (!write_error_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        root_, ": index refuses writes after an IO error (reopen it): ",
        write_error_.ToString()));
  }
  return absl::OkStatus();
}

absl::Status Instance::ReadOnlyError(absl::string_view op) const {
  return absl::FailedPreconditionError(
      absl::StrCat(root_, ": ", op, " is not allowed on a read-only index"));
}

absl::Status Instance::Failed(absl::Status error) {
  if (write_error_.ok() && !error.ok()) write_error_ = error;
  return error;
}

absl::Status Instance::FailedUnderLock(absl::Status error) {
  WriterLock lock(&mu_);
  return Failed(std::move(error));
}

// ---------------------------------------------------------------- handles

bool Instance::AddHandle() {
  absl::MutexLock lock(&handles_mu_);
  if (handles_ == 0) return false;
  ++handles_;
  return true;
}

absl::Status Instance::CloseHandle(bool immediately) {
  if (immediately) {
    cancel_ = true;
    (void)Hook(HookPoint::kCloseAbortSignalled);
  }
  AcquireMergeLock();
  cancel_ = false;
  absl::Status st;
  bool shut_down = false;
  {
    absl::MutexLock lock(&handles_mu_);
    if (handles_ > 0 && --handles_ == 0) {
      // As with a merge: close waits for the compactions (so that the store
      // is left with its runs in shape), close(immediately) cancels them.
      if (immediately) {
        StopCompaction();
      } else {
        AwaitCompactions();
      }
      st = Shutdown();
      shut_down = true;
    }
  }
  ReleaseMergeLock(nullptr);
  // Closed, the instance starts no merge again (StartMerge checks that under
  // the merge lock).
  if (shut_down) {
    StopMergeWorker();
    // Closed, the instance leaves no file of the store open.
    reaper_.Stop();
  }
  return st;
}

absl::Status Instance::Shutdown() {
  WriterLock lock(&mu_);
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status st;
  if (!options_.readonly && !write_error_.ok()) {
    // Whatever the failed write left in the buffers is not durable: say so.
    st = absl::DataLossError(absl::StrCat(
        root_, ": closed without flushing after an earlier IO error: ",
        write_error_.ToString()));
  } else if (!options_.readonly) {
    const FlushOptions durable{.with_fsync = true};
    if (log_ != nullptr) st.Update(log_->Flush(durable));
    if (log_async_ != nullptr) st.Update(log_async_->Flush(durable));
    // Closed explicitly: a log durable to its last record drops its checksum
    // sidecar (IndexFile::Close).
    if (st.ok() && log_ != nullptr) st.Update(log_->file().Close());
    if (st.ok() && log_async_ != nullptr) {
      st.Update(log_async_->file().Close());
    }
  }
  log_.reset();
  log_async_.reset();
  data_.reset();
  runs_.reset();
  lru_.Clear();
  lock_.reset();
  return st;
}

// ---------------------------------------------------------------- reads

absl::StatusOr<bool> Instance::Find(absl::string_view key,
                                    char* value_out) const {
  if (key.size() != schema_.key_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        root_, ": key of ", key.size(), " bytes, expected ", schema_.key_size));
  }
  const uint64_t hash = schema_.hash(key);
  // The LRU, the logs and the data file are searched in turn, but the memory
  // each one reads first is requested from all of them at once: their cache
  // misses overlap instead of adding up.
  lru_.Prefetch(hash);
  ReaderLock lock(&mu_);
  KVINDEX_RETURN_IF_ERROR(CheckOpen());
  const auto [first, second] = LogsInOrder();
  if (first != nullptr) first->table().Prefetch(hash);
  if (second != nullptr) second->table().Prefetch(hash);
  const char* entry = nullptr;
  if (runs_ == nullptr) {
    const DataFile::Window window =
        data_ != nullptr ? data_->Prefetch(hash) : DataFile::Window{};
    if (lru_.Find(key, hash, value_out)) return true;
    if (first != nullptr) entry = first->Find(key, hash);
    if (entry == nullptr && second != nullptr) entry = second->Find(key, hash);
    if (entry == nullptr && data_ != nullptr) entry = data_->Find(key, window);
  } else {
    RunSet::Lookup lookup;
    runs_->Prefetch(hash, &lookup);
    if (lru_.Find(key, hash, value_out)) return true;
    if (first != nullptr) entry = first->Find(key, hash);
    if (entry == nullptr && second != nullptr) entry = second->Find(key, hash);
    if (entry == nullptr) entry = runs_->Find(key, lookup);
  }
  if (entry == nullptr) return false;
  const absl::string_view value = EntryValue(schema_, entry);
  if (value_out != nullptr && !value.empty()) {
    std::memcpy(value_out, value.data(), value.size());
  }
  // Under mu_ (shared), so that no replace of this key can slip in between.
  lru_.Insert(key, hash, value);
  return true;
}

std::pair<const Log*, const Log*> Instance::LogsInOrder() const {
  if (async_first_) return {log_async_.get(), log_.get()};
  return {log_.get(), log_async_.get()};
}

absl::Status Instance::Iter(const VisitFn& f) const {
  ReaderLock lock(&mu_);
  KVINDEX_RETURN_IF_ERROR(CheckOpen());
  // Not a structured binding: lambdas below capture them (C++17).
  const std::pair<const Log*, const Log*> logs = LogsInOrder();
  const Log* const first = logs.first;
  const Log* const second = logs.second;
  auto in = [&](const Log* log, const char* entry, uint64_t hash) {
    return log != nullptr && log->table().cardinal() > 0 &&
           log->Find(EntryKey(schema_, entry), hash) != nullptr;
  };
  auto visit = [&](const char* entry) {
    f(EntryKey(schema_, entry), EntryValue(schema_, entry));
  };
  // Every key once, with its newest value.
  if (first != nullptr) first->table().ForEach(visit);
  if (second != nullptr) {
    second->table().ForEach([&](const char* entry) {
      if (!in(first, entry, schema_.hash(EntryKey(schema_, entry)))) {
        visit(entry);
      }
    });
  }
  if (data_ == nullptr && runs_ == nullptr) return absl::OkStatus();
  // Records whose key a log holds are skipped. The data file (or the runs'
  // merge) goes in hash order, so walk the logs' keys sorted by hash alongside
  // it (sequential memory access, unlike a table lookup per record).
  std::vector<LogTable::Sorted> shadow;
  for (const Log* log : {first, second}) {
    if (log == nullptr) continue;
    std::vector<LogTable::Sorted> sorted = log->table().SortedByHash();
    shadow.insert(shadow.end(), sorted.begin(), sorted.end());
  }
  std::sort(shadow.begin(), shadow.end(),
            [](const LogTable::Sorted& a, const LogTable::Sorted& b) {
              return a.hash < b.hash;
            });
  size_t next = 0;
  auto shadowed = [&](const char* entry, uint64_t h) {
    while (next < shadow.size() && shadow[next].hash < h) ++next;
    for (size_t k = next; k < shadow.size() && shadow[k].hash == h; ++k) {
      if (std::memcmp(shadow[k].entry, entry, schema_.key_size) == 0) {
        return true;
      }
    }
    return false;
  };
  if (runs_ != nullptr) {
    return runs_->Iter([&](const char* entry, uint64_t hash) {
      if (!shadowed(entry, hash)) visit(entry);
    });
  }
  for (uint64_t i = 0; i < data_->count(); ++i) {
    const char* entry = data_->entry(i);
    if (next < shadow.size() &&
        shadowed(entry, schema_.hash(EntryKey(schema_, entry)))) {
      continue;
    }
    visit(entry);
  }
  return absl::OkStatus();
}

std::vector<std::string> Instance::LogEntries(bool async) const {
  ReaderLock lock(&mu_);
  std::vector<std::string> out;
  const Log* log = async ? log_async_.get() : log_.get();
  if (log == nullptr) return out;
  log->table().ForEach([&](const char* entry) {
    out.emplace_back(entry, schema_.entry_size());
  });
  return out;
}

// ---------------------------------------------------------------- writes

absl::Status Instance::Replace(absl::string_view key, absl::string_view value,
                               bool overcommit) {
  const bool timed = stats_internal::TimeThisReplace();
  const auto start = timed ? std::chrono::steady_clock::now()
                           : std::chrono::steady_clock::time_point();
  bool over = false;
  {
    WriterLock lock(&mu_);
    if (options_.readonly) {
      stats_internal::AddReplace(false, 0);
      KVINDEX_RETURN_IF_ERROR(CheckOpen());
      return ReadOnlyError("replace");
    }
    KVINDEX_RETURN_IF_ERROR(CheckWritable());
    absl::Status st = CheckSizes(schema_, key, value);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(root_, ": ", st.message()));
    }
    Log* target = log_async_ != nullptr ? log_async_.get() : log_.get();
    const uint64_t hash = schema_.hash(key);
    KVINDEX_RETURN_IF_ERROR(Failed(target->Append(key, value, hash)));
    lru_.Insert(key, hash, value);
    over = target->file().offset() > log_size_bytes_;
  }
  stats_internal::AddReplace(
      timed, timed ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count()
                   : 0);
  if (!over || overcommit) return absl::OkStatus();
  if (options_.throttle == Throttle::kOvercommitMemory) {
    absl::MutexLock lock(&merge_mu_);
    if (merging_) return absl::OkStatus();
  }
  return StartMerge(MergeWhen::kIfLogFull, nullptr, /*blocking=*/false);
}

absl::Status Instance::Flush(const FlushOptions& options) {
  if (!options.with_fsync) {
    WriterLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckFlushAllowed());
    return WriteLogs(options.no_callback);
  }
  uint64_t ticket = 0;
  {
    // Shared: durable flushes take their tickets side by side; only the
    // leader's write (exclusive) must not come between a flag and a ticket.
    ReaderLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckFlushAllowed());
    // The thread that leads the next fsync writes these records with the
    // others' (group commit): no write competes with a running fsync.
    if (!options.no_callback) callback_wanted_ = true;
    ticket = group_commit_.NextTicket();
  }
  stats_internal::AddDurableFlush();
  (void)Hook(HookPoint::kFlushAwaitDurable);
  return group_commit_.AwaitDurable(
      ticket, [&] { return WriteAndSyncLogs(options.no_callback); });
}

absl::Status Instance::CheckFlushAllowed() const {
  KVINDEX_RETURN_IF_ERROR(CheckOpen());
  if (options_.readonly) return ReadOnlyError("flush");
  return CheckWritable();
}

absl::Status Instance::WriteLogs(bool no_callback) {
  const FlushOptions write{.no_callback = no_callback};
  KVINDEX_RETURN_IF_ERROR(Failed(log_->Flush(write)));
  if (log_async_ != nullptr) {
    KVINDEX_RETURN_IF_ERROR(Failed(log_async_->Flush(write)));
  }
  return absl::OkStatus();
}

// Under mu_, everything buffered is written (the callback runs unless no
// durable flush of the group wanted it) and the last ticket noted: its
// records, and every earlier one's, are now in the logs open, or were made
// durable by the commit that replaced a log (a merge fsyncs its output and the
// new log before it resets a log; a clear discards them). The fsyncs run
// without mu_, so that replaces and flushes go on and gather for the next one.
absl::StatusOr<uint64_t> Instance::WriteAndSyncLogs(bool no_callback) {
  std::vector<IndexFile::Syncer> files;
  uint64_t covered = 0;
  {
    WriterLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckOpen());
    KVINDEX_RETURN_IF_ERROR(CheckWritable());
    const bool callback = callback_wanted_.exchange(false) || !no_callback;
    KVINDEX_RETURN_IF_ERROR(WriteLogs(!callback));
    covered = group_commit_.TakeGroup();
    for (const Log* log : {log_.get(), log_async_.get()}) {
      if (log != nullptr) files.push_back(log->file().syncer());
    }
  }
  (void)Hook(HookPoint::kFlushSync);
  stats_internal::AddFlushFsync();
  for (const IndexFile::Syncer& file : files) {
    const absl::Status st = file.Sync();
    if (!st.ok()) {
      WriterLock lock(&mu_);
      return Failed(st);
    }
  }
  return covered;
}

absl::Status Instance::Clear() {
  {
    ReaderLock lock(&mu_);
    KVINDEX_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError("clear");
  }
  cancel_ = true;
  (void)Hook(HookPoint::kClearAbortSignalled);
  AcquireMergeLock();
  cancel_ = false;
  StopCompaction();
  absl::Status st;
  {
    WriterLock lock(&mu_);
    st = CheckOpen();
    if (st.ok()) st = ClearLocked();
  }
  ReleaseMergeLock(nullptr);
  return st;
}

// A merge or clear needs generations up to generation_ + 2 (a merge stamps its
// log_async with that): refuse rather than write a header no one can read.
absl::Status Instance::CheckGenerationRoom() const {
  if (generation_ > IndexFile::kMaxGeneration - 2) {
    return absl::ResourceExhaustedError(absl::StrCat(
        Path("log"), ": generation ", generation_, " is at its limit"));
  }
  return absl::OkStatus();
}

// Clear's commit point is the log reset (a new, empty log with a new
// generation, fsynced): a crash after it leaves a data file older than the log,
// which the next open deletes, and a log_async the next open ignores.
absl::Status Instance::ClearLocked() {
  KVINDEX_RETURN_IF_ERROR(CheckWritable());
  KVINDEX_RETURN_IF_ERROR(CheckGenerationRoom());
  // The marker, durable before the commit point, is what lets an open finish
  // a clear cut after it (recovery_rules.h).
  KVINDEX_RETURN_IF_ERROR(
      Failed(WriteClearMarker(env_.get(), StoreDir(root_), generation_ + 1)));
  ++generation_;
  lru_.Clear();
  // Nothing old stays visible, even if an IO error stops the clear half-way:
  // the instance then refuses writes and shows the cleared (possibly partial)
  // state.
  std::unique_ptr<Log> old_async = std::move(log_async_);
  data_.reset();
  if (runs_ != nullptr) {
    // No run is named any more; the manifest follows the log reset.
    KVINDEX_ASSIGN_OR_RETURN(
        runs_, RunSet::Open(env_.get(), StoreDir(root_), schema_,
                            ClearedManifest(runs_->manifest(), generation_)));
  }
  KVINDEX_RETURN_IF_ERROR(
      Failed(log_->Clear(generation_, /*reopen=*/true,
                         [this] { (void)Hook(HookPoint::kClearIo); })));
  if (old_async != nullptr) {
    KVINDEX_RETURN_IF_ERROR(
        Failed(old_async->Clear(generation_, /*reopen=*/false)));
  } else {
    auto exists = env_->FileExists(Path("log_async"));
    if (!exists.ok()) return Failed(exists.status());
    if (*exists) {
      KVINDEX_RETURN_IF_ERROR(Failed(env_->RemoveFile(Path("log_async"))));
    }
  }
  // A tiered store's clear: a manifest without runs, then their files.
  KVINDEX_ASSIGN_OR_RETURN(const bool tiered,
                           env_->FileExists(ManifestPath(StoreDir(root_))));
  if (tiered) {
    KVINDEX_RETURN_IF_ERROR(Failed(ClearRuns()));
  } else {
    auto exists = env_->FileExists(Path("data"));
    if (!exists.ok()) return Failed(exists.status());
    if (*exists) {
      KVINDEX_RETURN_IF_ERROR(Failed(env_->RemoveFile(Path("data"))));
    }
    RemoveSidecars();
  }
  // Last: everything the marker was needed for is gone (RemoveClearMarker
  // makes that durable before the marker goes).
  KVINDEX_RETURN_IF_ERROR(
      Failed(RemoveClearMarker(env_.get(), StoreDir(root_))));
  return Failed(env_->SyncDir(StoreDir(root_)));
}

}  // namespace index_internal
}  // namespace kvindex
