#include "index/instance.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "filter/key_filter.h"
#include "datafile/merge.h"
#include "index/stats.h"
#include "index/stats_env.h"
#include "io/index_file.h"

namespace kvindex {
namespace index_internal {
namespace {

#define KV_RETURN_IF_ERROR(expr) \
  do {                           \
    absl::Status _st = (expr);   \
    if (!_st.ok()) return _st;   \
  } while (0)

uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

constexpr uint64_t kMaxLruBytes = uint64_t{1} << 40;

absl::Status ReadOnlyError(const std::string& root, absl::string_view op) {
  return absl::FailedPreconditionError(
      absl::StrCat(root, ": ", op, " is not allowed on a read-only index"));
}

}  // namespace

// What a merge works on, captured under mu_ when it starts.
struct Instance::MergeJob {
  const Log* log = nullptr;              // frozen during the merge
  std::shared_ptr<const DataFile> data;  // may be null
  int64_t generation = 0;                // the merge's result generation
  KeepFn keep;                           // filter, optional
  std::chrono::steady_clock::time_point start;
};

Instance::Instance(const std::string& root, const Schema& schema,
                   const Options& options)
    : root_(root),
      schema_(schema),
      options_(options),
      log_size_bytes_(options.log_size * schema.entry_size()),
      env_(NewStatsEnv(options.env != nullptr ? options.env : Env::Posix())),
      lru_(options.lru_size, schema.key_size, schema.value_size) {}

Instance::~Instance() {
  // A handle-less instance may still have a merge thread finishing.
  cancel_ = true;
  AcquireMergeLock();
  ReleaseMergeLock(nullptr);
  JoinMergeThread();
  absl::MutexLock lock(&handles_mu_);
  if (handles_ > 0) {
    handles_ = 0;
    (void)Shutdown();
  }
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
  KV_RETURN_IF_ERROR(CheckOpen());
  if (!write_error_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        root_, ": index refuses writes after an IO error (reopen it): ",
        write_error_.ToString()));
  }
  return absl::OkStatus();
}

absl::Status Instance::Failed(absl::Status error) {
  if (write_error_.ok() && !error.ok()) write_error_ = error;
  return error;
}

// ---------------------------------------------------------------- open

absl::StatusOr<std::shared_ptr<Instance>> Instance::Create(
    const std::string& root, const Schema& schema, const Options& options) {
  KV_RETURN_IF_ERROR(schema.Validate());
  if (options.log_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(root, ": log_size must be positive"));
  }
  // The LRU's slab is allocated at open: refuse sizes no machine could hold
  // rather than fail the allocation.
  if (options.lru_size > kMaxLruBytes / schema.entry_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": lru_size ", options.lru_size, " entries of ",
        schema.entry_size(), " bytes exceeds ", kMaxLruBytes, " bytes"));
  }
  if (options.readonly && options.fresh) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": a read-only index cannot be opened with fresh = true"));
  }
  std::shared_ptr<Instance> instance(new Instance(root, schema, options));
  if (options.readonly) {
    KV_RETURN_IF_ERROR(instance->Sync());
  } else {
    KV_RETURN_IF_ERROR(instance->OpenWriter());
  }
  return instance;
}

absl::StatusOr<std::shared_ptr<const DataFile>> Instance::OpenData(
    int64_t generation) {
  auto data = DataFile::Open(env_.get(), Path("data"), schema_);
  if (!data.ok()) return data.status();
  if (*data != nullptr && (*data)->generation() < generation) {
    return std::shared_ptr<const DataFile>();
  }
  return data;
}

absl::StatusOr<int64_t> Instance::DataFileGeneration() {
  auto file =
      IndexFile::OpenReadOnly(env_.get(), Path("data"), schema_.entry_size());
  if (!file.ok()) return file.status();
  return *file == nullptr ? -1 : (*file)->generation();
}

absl::StatusOr<bool> Instance::LogAsyncWanted(int64_t async_generation,
                                              int64_t log_generation) {
  if (async_generation > log_generation) return true;
  if (async_generation < log_generation) return false;
  auto data_generation = DataFileGeneration();
  if (!data_generation.ok()) return data_generation.status();
  return *data_generation == log_generation;
}

absl::Status Instance::OpenWriter() {
  KV_RETURN_IF_ERROR(env_->CreateDirs(StoreDir(root_)));
  auto lock = env_->LockFile(Path("lock"));
  if (!lock.ok()) return lock.status();
  lock_ = *std::move(lock);

  WriterLock l(&mu_);
  auto log = Log::OpenReadWrite(env_.get(), Path("log"), schema_,
                                /*fresh=*/false, /*generation=*/0,
                                options_.flush_callback);
  if (!log.ok()) return log.status();
  log_ = *std::move(log);
  generation_ = log_->generation();
  if (options_.fresh) return ClearLocked();

  // A data file one generation ahead of the log: a merge renamed its output
  // over the data file, then a crash came before it reset the log. Every
  // binding of that log went into the data file (or was filtered out), so
  // finish the commit.
  auto data_generation = DataFileGeneration();
  if (!data_generation.ok()) return data_generation.status();
  if (*data_generation == generation_ + 1) {
    KV_RETURN_IF_ERROR(log_->Clear(*data_generation, /*reopen=*/true));
    generation_ = *data_generation;
  }

  // A data file older than the log belongs to a clear that a crash interrupted
  // after its commit point (the log reset): it is deleted.
  auto data = DataFile::Open(env_.get(), Path("data"), schema_);
  if (!data.ok()) return data.status();
  if (*data != nullptr && (*data)->generation() < generation_) {
    KV_RETURN_IF_ERROR(env_->RemoveFile(Path("data")));
    RemoveFilter();
    KV_RETURN_IF_ERROR(env_->SyncDir(StoreDir(root_)));
  } else {
    data_ = *std::move(data);
  }
  KV_RETURN_IF_ERROR(RecoverLogAsync());
  // A merge output or a filter being written when a crash came is never used;
  // the next merge rewrites them anyway.
  RemoveIfPresent(Path("merge"));
  RemoveIfPresent(DataFile::FilterPath(Path("data")) + ".tmp");
  return absl::OkStatus();
}

// Best effort: what it removes is never read again (a filter left behind names
// a generation no data file will have).
void Instance::RemoveIfPresent(const std::string& path) {
  auto exists = env_->FileExists(path);
  if (exists.ok() && *exists) (void)env_->RemoveFile(path);
}

void Instance::RemoveFilter() {
  RemoveIfPresent(DataFile::FilterPath(Path("data")));
}

// Copies the bindings of `from` (a log_async) into the log, then makes them
// durable there: only after that may `from` be deleted. only_missing: keys the
// log already holds keep their (newer) value.
absl::Status Instance::CopyIntoLog(const Log& from, bool only_missing) {
  Log* const log = log_.get();  // lambdas cannot show the analysis mu_ is held
  bool copied = false;
  absl::Status st;
  from.table().ForEachWithHash([&](const char* entry, uint64_t hash) {
    if (!st.ok() || (only_missing &&
                     log->Find(EntryKey(schema_, entry), hash) != nullptr)) {
      return;
    }
    st = log->AppendEntry(entry, hash);
    copied = true;
  });
  KV_RETURN_IF_ERROR(Failed(st));
  if (!copied) return absl::OkStatus();
  return Failed(log->file().Flush({true, true}));
}

// A log_async left by a merge that did not finish (crash, error, abort) holds
// writes that reached no other file: copy them into the log, fsync, then delete
// it. Its generation tells whether it is still wanted: the merge that created
// it with generation G+1 either never committed (log still at G) or committed
// (data and log at G+1, the copy maybe not done). Anything else is left over
// from a clear.
absl::Status Instance::RecoverLogAsync() {
  std::unique_ptr<Log> stale = std::move(log_async_);
  if (stale == nullptr) {
    auto exists = env_->FileExists(Path("log_async"));
    if (!exists.ok()) return exists.status();
    if (!*exists) return absl::OkStatus();
    auto opened = Log::OpenReadWrite(env_.get(), Path("log_async"), schema_,
                                     /*fresh=*/false, generation_ + 1,
                                     options_.flush_callback);
    if (!opened.ok()) return opened.status();
    stale = *std::move(opened);
    auto wanted = LogAsyncWanted(stale->generation(), generation_);
    if (!wanted.ok()) return wanted.status();
    if (!*wanted) {
      return Failed(stale->Clear(generation_, /*reopen=*/false));
    }
  }
  // Once the merge reset the log (same generation), the log may already hold
  // the copies of these bindings, and newer values than the ones log_async's
  // file kept: only keys the log lacks still need the copy.
  const bool log_was_reset = stale->generation() <= generation_;
  if (log_was_reset) {
    // The log's records may be in the file but not durable (its fsync may have
    // failed): they only count as copies once fsynced.
    KV_RETURN_IF_ERROR(Failed(log_->file().Flush({false, true})));
  }
  KV_RETURN_IF_ERROR(CopyIntoLog(*stale, /*only_missing=*/log_was_reset));
  return Failed(stale->Clear(generation_, /*reopen=*/false));
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
  KV_RETURN_IF_ERROR(CheckWritable());
  KV_RETURN_IF_ERROR(CheckGenerationRoom());
  ++generation_;
  lru_.Clear();
  // Nothing old stays visible, even if an IO error stops the clear half-way:
  // the instance then refuses writes and shows the cleared (possibly partial)
  // state.
  std::unique_ptr<Log> old_async = std::move(log_async_);
  data_.reset();
  KV_RETURN_IF_ERROR(Failed(log_->Clear(generation_, /*reopen=*/true, [this] {
    (void)Hook(HookPoint::kClearIo);
  })));
  if (old_async != nullptr) {
    KV_RETURN_IF_ERROR(Failed(old_async->Clear(generation_, /*reopen=*/false)));
  } else {
    auto exists = env_->FileExists(Path("log_async"));
    if (!exists.ok()) return Failed(exists.status());
    if (*exists)
      KV_RETURN_IF_ERROR(Failed(env_->RemoveFile(Path("log_async"))));
  }
  auto exists = env_->FileExists(Path("data"));
  if (!exists.ok()) return Failed(exists.status());
  if (*exists) KV_RETURN_IF_ERROR(Failed(env_->RemoveFile(Path("data"))));
  RemoveFilter();
  return Failed(env_->SyncDir(StoreDir(root_)));
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
  {
    absl::MutexLock lock(&handles_mu_);
    if (handles_ > 0 && --handles_ == 0) st = Shutdown();
  }
  ReleaseMergeLock(nullptr);
  JoinMergeThread();
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
    if (log_ != nullptr) st.Update(log_->file().Flush({true, true}));
    if (log_async_ != nullptr) {
      st.Update(log_async_->file().Flush({true, true}));
    }
  }
  log_.reset();
  log_async_.reset();
  data_.reset();
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
  KV_RETURN_IF_ERROR(CheckOpen());
  const auto [first, second] = LogsInOrder();
  if (first != nullptr) first->table().Prefetch(hash);
  if (second != nullptr) second->table().Prefetch(hash);
  const DataFile::Window window =
      data_ != nullptr ? data_->Prefetch(hash) : DataFile::Window{};
  if (lru_.Find(key, hash, value_out)) return true;
  const char* entry = nullptr;
  if (first != nullptr) entry = first->Find(key, hash);
  if (entry == nullptr && second != nullptr) entry = second->Find(key, hash);
  if (entry == nullptr && data_ != nullptr) entry = data_->Find(key, window);
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
  KV_RETURN_IF_ERROR(CheckOpen());
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
  if (data_ != nullptr) {
    // Data records whose key a log holds are skipped. The data file is sorted
    // by hash, so walk the logs' keys sorted by hash alongside it (sequential
    // memory access, unlike a table lookup per record).
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
    for (uint64_t i = 0; i < data_->count(); ++i) {
      const char* entry = data_->entry(i);
      if (next < shadow.size()) {
        const uint64_t h = schema_.hash(EntryKey(schema_, entry));
        while (next < shadow.size() && shadow[next].hash < h) ++next;
        bool shadowed = false;
        for (size_t k = next; k < shadow.size() && shadow[k].hash == h; ++k) {
          if (std::memcmp(shadow[k].entry, entry, schema_.key_size) == 0) {
            shadowed = true;
            break;
          }
        }
        if (shadowed) continue;
      }
      visit(entry);
    }
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
      KV_RETURN_IF_ERROR(CheckOpen());
      return ReadOnlyError(root_, "replace");
    }
    KV_RETURN_IF_ERROR(CheckWritable());
    absl::Status st = CheckSizes(schema_, key, value);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(root_, ": ", st.message()));
    }
    Log* target = log_async_ != nullptr ? log_async_.get() : log_.get();
    const uint64_t hash = schema_.hash(key);
    KV_RETURN_IF_ERROR(Failed(target->Append(key, value, hash)));
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
  WriterLock lock(&mu_);
  KV_RETURN_IF_ERROR(CheckOpen());
  if (options_.readonly) return ReadOnlyError(root_, "flush");
  KV_RETURN_IF_ERROR(CheckWritable());
  const IndexFile::FlushOptions o{!options.no_callback, options.with_fsync};
  KV_RETURN_IF_ERROR(Failed(log_->file().Flush(o)));
  if (log_async_ != nullptr) {
    KV_RETURN_IF_ERROR(Failed(log_async_->file().Flush(o)));
  }
  return absl::OkStatus();
}

absl::Status Instance::Clear() {
  {
    ReaderLock lock(&mu_);
    KV_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError(root_, "clear");
  }
  cancel_ = true;
  (void)Hook(HookPoint::kClearAbortSignalled);
  AcquireMergeLock();
  cancel_ = false;
  absl::Status st;
  {
    WriterLock lock(&mu_);
    st = CheckOpen();
    if (st.ok()) st = ClearLocked();
  }
  ReleaseMergeLock(nullptr);
  return st;
}

absl::Status Instance::Filter(const KeepFn& keep) {
  {
    ReaderLock lock(&mu_);
    KV_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError(root_, "filter");
  }
  return StartMerge(MergeWhen::kAlways, keep, /*blocking=*/true);
}

absl::Status Instance::Merge(bool force) {
  {
    ReaderLock lock(&mu_);
    KV_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError(root_, "merge");
  }
  return StartMerge(force ? MergeWhen::kAlways : MergeWhen::kIfLogFull, nullptr,
                    /*blocking=*/false);
}

absl::StatusOr<bool> Instance::IsMerging() const {
  {
    ReaderLock lock(&mu_);
    KV_RETURN_IF_ERROR(CheckOpen());
    if (options_.readonly) return ReadOnlyError(root_, "is_merging");
  }
  absl::MutexLock lock(&merge_mu_);
  return merging_;
}

absl::Status Instance::AwaitMerge() {
  absl::MutexLock lock(&merge_mu_);
  merge_mu_.Await(absl::Condition(
      +[](bool* merging) { return !*merging; }, &merging_));
  return merge_result_;
}

// ---------------------------------------------------------------- merge

void Instance::AcquireMergeLock() {
  std::thread previous;
  {
    absl::MutexLock lock(&merge_mu_);
    merge_mu_.Await(absl::Condition(
        +[](bool* merging) { return !*merging; }, &merging_));
    merging_ = true;
    previous = std::move(merge_thread_);
  }
  if (previous.joinable()) previous.join();
}

void Instance::ReleaseMergeLock(const absl::Status* result) {
  absl::MutexLock lock(&merge_mu_);
  merging_ = false;
  if (result != nullptr) merge_result_ = *result;
}

void Instance::JoinMergeThread() {
  std::thread t;
  {
    absl::MutexLock lock(&merge_mu_);
    if (merging_) return;  // someone else owns it now
    t = std::move(merge_thread_);
  }
  if (t.joinable()) t.join();
}

absl::Status Instance::StartMerge(MergeWhen when, const KeepFn& keep,
                                  bool blocking) {
  AcquireMergeLock();
  auto job = std::make_shared<MergeJob>();
  job->start = std::chrono::steady_clock::now();
  job->keep = keep;
  absl::Status st;
  bool nothing_to_do = false;
  {
    WriterLock lock(&mu_);
    st = CheckWritable();
    // A log_async present now is left over from a failed or aborted merge: it
    // is about to be copied into the log, so it counts towards the log's size.
    const uint64_t pending =
        log_ == nullptr
            ? 0
            : log_->file().offset() +
                  (log_async_ == nullptr ? 0 : log_async_->file().offset());
    if (st.ok() && when == MergeWhen::kIfLogFull &&
        pending <= log_size_bytes_) {
      nothing_to_do = true;
    }
    if (st.ok() && !nothing_to_do) st = CheckGenerationRoom();
    if (st.ok() && !nothing_to_do) {
      stats_internal::AddMerge();
      st = RecoverLogAsync();
    }
    if (st.ok() && !nothing_to_do && data_ == nullptr &&
        log_->table().cardinal() == 0) {
      nothing_to_do = true;
    }
    if (st.ok() && !nothing_to_do) {
      // From here on, replaces go to log_async; the log is frozen and must be
      // durable before any of its bindings can reach the data file.
      job->generation = generation_ + 1;
      auto log_async = Log::OpenReadWrite(
          env_.get(), Path("log_async"), schema_,
          /*fresh=*/true, job->generation, options_.flush_callback);
      st = Failed(log_async.status());
      if (st.ok()) {
        log_async_ = *std::move(log_async);
        st = Failed(log_->file().Flush({true, true}));
      }
      job->log = log_.get();
      job->data = data_;
    }
  }
  if (!st.ok() || nothing_to_do) {
    // AwaitMerge reports on the latest Merge call, even one with nothing to do.
    const absl::Status outcome = nothing_to_do ? absl::OkStatus() : st;
    ReleaseMergeLock(&outcome);
    return st;
  }
  if (blocking) {
    absl::Status result = MergeBody(*job);
    stats_internal::AddMergeDuration(MicrosSince(job->start));
    ReleaseMergeLock(&result);
    return result;
  }
  std::thread t([this, job] { RunMerge(job); });
  absl::MutexLock lock(&merge_mu_);
  merge_thread_ = std::move(t);
  return absl::OkStatus();
}

void Instance::RunMerge(std::shared_ptr<MergeJob> job) {
  absl::Status result = MergeBody(*job);
  stats_internal::AddMergeDuration(MicrosSince(job->start));
  ReleaseMergeLock(&result);
}

absl::Status Instance::MergeBody(MergeJob& job) {
  KV_RETURN_IF_ERROR(Hook(HookPoint::kMergeBefore));
  MergeRequest request;
  request.env = env_.get();
  request.path = Path("merge");
  request.schema = schema_;
  request.log = &job.log->table();
  request.data = job.data.get();
  request.generation = job.generation;
  request.keep = job.keep;
  request.cancel = &cancel_;
  request.after_first_entry = [this] {
    return Hook(HookPoint::kMergeAfterFirstEntry);
  };
  auto merged = WriteMerge(request);
  if (!merged.ok()) return merged.status();
  if (merged->copied_runs) stats_internal::AddMergeCopiedRuns();
  KV_RETURN_IF_ERROR(Commit(job, *std::move(merged)));
  return Hook(HookPoint::kMergeAfter);
}

// The fsync order that makes every step crash-safe: the merge output is fsynced
// and renamed over data (durable with the directory), its filter written (not
// synced: a damaged or missing filter is not used), then the log is reset
// (its commit point), the writes made during the merge are copied from
// log_async into the new log and fsynced, and only then is log_async deleted.
absl::Status Instance::Commit(MergeJob& job, MergeResult merged) {
  std::unique_ptr<IndexFile> file = std::move(merged.file);
  if (cancel_) {
    (void)file->Close();
    (void)env_->RemoveFile(Path("merge"));
    return absl::AbortedError(
        absl::StrCat(root_, ": merge cancelled by clear or close"));
  }
  KV_RETURN_IF_ERROR(file->RenameTo(Path("data")));
  // The filter goes next to the committed data file, whose generation it
  // names; it is an accelerator only, so a failure to write it just leaves
  // finds without it (an older filter names another generation).
  if (!merged.filter.empty()) {
    (void)KeyFilter::Write(env_.get(), DataFile::FilterPath(Path("data")),
                           merged.filter);
  }
  auto data = DataFile::FromFile(std::move(file), schema_, env_.get());
  if (!data.ok()) return data.status();

  WriterLock lock(&mu_);
  data_ = *std::move(data);
  generation_ = job.generation;
  if (job.keep) lru_.Clear();
  KV_RETURN_IF_ERROR(Failed(log_->Clear(generation_, /*reopen=*/true)));
  KV_RETURN_IF_ERROR(Hook(HookPoint::kMergeAfterClear));
  KV_RETURN_IF_ERROR(CopyIntoLog(*log_async_, /*only_missing=*/false));
  KV_RETURN_IF_ERROR(
      Failed(log_async_->Clear(generation_ + 1, /*reopen=*/false)));
  log_async_.reset();
  return absl::OkStatus();
}

// ---- read-only sync

absl::StatusOr<std::unique_ptr<Log>> Instance::OpenLive(
    absl::string_view name) {
  const std::string path = Path(name);
  // Each retry means the writer replaced the file between our open and our
  // check: a handful is already unlikely.
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto log = Log::OpenReadOnly(env_.get(), path, schema_);
    if (!log.ok() || *log == nullptr) return log;
    auto live = IsLive(**log, name);
    if (!live.ok()) return live.status();
    if (*live) return log;
  }
  return absl::UnavailableError(
      absl::StrCat(path, ": replaced continuously while opening it"));
}

absl::StatusOr<bool> Instance::IsLive(const Log& log, absl::string_view name) {
  auto at_path = env_->PathId(Path(name));
  if (absl::IsNotFound(at_path.status())) return false;
  if (!at_path.ok()) return at_path.status();
  auto opened = log.file().Id();
  if (!opened.ok()) return opened.status();
  return *at_path == *opened;
}

// A reader follows the writer's files by identity (a file renamed over or
// deleted is reopened from its path) and by generation. log_async is looked at
// before log: at the end of a merge the writer resets the log before deleting
// log_async, so in this order a binding may be seen twice but never missed; the
// lookup order (LogsInOrder) then prefers whichever log is newer.
absl::Status Instance::Sync() {
  {
    ReaderLock lock(&mu_);
    KV_RETURN_IF_ERROR(CheckOpen());
    if (!options_.readonly) {
      return absl::FailedPreconditionError(
          absl::StrCat(root_, ": sync is only for read-only instances"));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  absl::MutexLock sync_lock(&sync_mu_);

  // Only this function (under sync_mu_) changes the members below, so it may
  // read them without mu_; it takes mu_ to publish changes.
  Log* log;
  Log* log_async;
  int64_t generation;
  {
    ReaderLock lock(&mu_);
    log = log_.get();
    log_async = log_async_.get();
    generation = generation_;
  }

  // log_async: follow the file its path names; read what was appended to it.
  bool async_live = false;
  if (log_async != nullptr) {
    auto live = IsLive(*log_async, "log_async");
    if (!live.ok()) return live.status();
    async_live = *live;
  }
  if (async_live) {
    const uint64_t known = log_async->file().offset();
    auto h = log_async->file().ReadHeader();
    if (!h.ok()) return h.status();
    async_live = log_async->file().offset() >= known;
  }
  bool replace_async = false;
  std::unique_ptr<Log> new_async;
  std::string async_records;
  if (!async_live) {
    (void)Hook(HookPoint::kSyncReloadLogAsync);
    auto opened = OpenLive("log_async");
    if (!opened.ok()) return opened.status();
    new_async = *std::move(opened);
    replace_async = log_async != nullptr || new_async != nullptr;
  } else {
    auto pending = log_async->ReadPending();
    if (!pending.ok()) return pending.status();
    async_records = *std::move(pending);
  }

  // log: a new file (reset by a merge or a clear) or a new generation means a
  // new data file too.
  (void)Hook(HookPoint::kSyncBeforeOffsetRead);
  bool reload = log == nullptr;
  if (!reload) {
    auto live = IsLive(*log, "log");
    if (!live.ok()) return live.status();
    auto h = log->file().ReadHeader();
    if (!h.ok()) return h.status();
    reload = !*live || h->generation != generation;
  }
  (void)Hook(HookPoint::kSyncAfterOffsetRead);
  std::unique_ptr<Log> new_log;
  std::shared_ptr<const DataFile> new_data;
  std::string log_records;
  if (reload) {
    auto opened = OpenLive("log");
    if (!opened.ok()) return opened.status();
    new_log = *std::move(opened);
    if (new_log == nullptr && log != nullptr) {
      return absl::DataLossError(
          absl::StrCat(Path("log"), ": log file disappeared"));
    }
    if (new_log != nullptr) {
      auto data = OpenData(new_log->generation());
      if (!data.ok()) return data.status();
      new_data = *std::move(data);
    }
    if (log != nullptr) (void)Hook(HookPoint::kSyncReloadLog);
  } else {
    auto pending = log->ReadPending();
    if (!pending.ok()) return pending.status();
    log_records = *std::move(pending);
  }

  // A log_async as old as the log is only wanted in the middle of a merge
  // commit (see LogAsyncWanted); after a clear it must not show.
  {
    Log* async_now = replace_async ? new_async.get() : log_async;
    const Log* log_now = new_log != nullptr ? new_log.get() : log;
    if (async_now != nullptr && log_now != nullptr &&
        async_now->generation() <= log_now->generation()) {
      auto wanted =
          LogAsyncWanted(async_now->generation(), log_now->generation());
      if (!wanted.ok()) return wanted.status();
      if (!*wanted) {
        new_async.reset();
        replace_async = log_async != nullptr;
      }
    }
  }

  {
    WriterLock lock(&mu_);
    const bool changed = replace_async || new_log != nullptr ||
                         !async_records.empty() || !log_records.empty();
    if (replace_async) {
      log_async_ = std::move(new_async);
    } else if (log_async_ != nullptr) {
      log_async_->AddRecords(async_records);
    }
    if (new_log != nullptr) {
      generation_ = new_log->generation();
      log_ = std::move(new_log);
      data_ = std::move(new_data);
    } else if (log_ != nullptr) {
      log_->AddRecords(log_records);
    }
    // A merge creates log_async with the generation it will produce: until the
    // log reaches that generation, log_async holds the newer bindings.
    async_first_ = log_async_ != nullptr && log_ != nullptr &&
                   log_async_->generation() > log_->generation();
    // Any new binding may shadow a cached one.
    if (changed) lru_.Clear();
  }
  stats_internal::AddSync(MicrosSince(start));
  return absl::OkStatus();
}

}  // namespace index_internal
}  // namespace kvindex
