#include "datafile/merge.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "datafile/newest_records.h"
#include "fan/fan.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "io/file_header.h"

namespace kvindex {
namespace {

// The records of the one older run by index, with their hashes. Hashes are
// remembered for a few recent indexes: the searches and the runs they delimit
// ask for the same records again.
class OldRecords {
 public:
  OldRecords(const DataFile& data, const Schema& schema)
      : data_(data), schema_(schema), entry_size_(schema.entry_size()) {}

  uint64_t count() const { return data_.count(); }
  const char* entry(uint64_t i) const { return data_.entry(i); }

  // Requests the records a little ahead of record i (which the merge has
  // reached) into the CPU cache: the searches probe them before the copy reads
  // them in order, and a probe that waits for memory costs more than the hash.
  void PrefetchAhead(uint64_t i) {
    constexpr uintptr_t kLine = 64;
    constexpr uintptr_t kAheadBytes = 8192;
    const uintptr_t at = reinterpret_cast<uintptr_t>(entry(i)) & ~(kLine - 1);
    const uintptr_t end =
        std::min(at + kAheadBytes, reinterpret_cast<uintptr_t>(entry(count())));
    if (prefetched_ < at) prefetched_ = at;
    for (; prefetched_ < end; prefetched_ += kLine) {
      __builtin_prefetch(reinterpret_cast<const void*>(prefetched_));
    }
  }

  uint64_t Hash(uint64_t i) {
    Memo& m = memo_[i % kMemo];
    if (!m.valid || m.index != i) {
      m.valid = true;
      m.index = i;
      m.hash = schema_.hash(EntryKey(schema_, data_.entry(i)));
    }
    return m.hash;
  }

  // The first record in [from, limit) whose hash is at least x, or limit;
  // records before `from` must hash below x. The data file's fan-out table
  // narrows the search to x's bucket, but only once the records at the
  // answer's edges confirm it: a table that does not match the records costs
  // a search of [from, limit), never a wrong answer.
  uint64_t LowerBound(uint64_t x, uint64_t from, uint64_t limit) {
    if (from >= limit) return limit;
    const Fanout& fan = data_.fanout();
    const Fanout::Range range = fan.Search(x);
    const Fanout::HashRange hashes = fan.BucketHashes(fan.Bucket(x));
    const uint64_t lo =
        std::min(std::max(range.low / entry_size_, from), limit);
    const uint64_t hi =
        std::min(std::max(range.high / entry_size_ + 1, lo), limit);
    const uint64_t guess = Search(x, lo, hi, hashes.low, hashes.high);
    if (Confirms(x, guess, from, limit)) return guess;
    return Search(x, from, limit, 0, ~uint64_t{0});
  }

 private:
  static constexpr size_t kMemo = 8;
  struct Memo {
    bool valid = false;
    uint64_t index = 0;
    uint64_t hash = 0;
  };

  // Whether i is the first record in [from, limit) hashing to x or more.
  bool Confirms(uint64_t x, uint64_t i, uint64_t from, uint64_t limit) {
    return (i == from || Hash(i - 1) < x) && (i == limit || Hash(i) >= x);
  }

  // The first record in [lo, hi) with a hash of at least x, or hi, assuming
  // the records of [lo, hi) hash within [hash_lo, hash_hi]: a few steps of
  // interpolation (the hashes are close to uniform), then bisection.
  uint64_t Search(uint64_t x, uint64_t lo, uint64_t hi, uint64_t hash_lo,
                  uint64_t hash_hi) {
    for (int step = 0; lo < hi; ++step) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (step < 3 && hash_hi > hash_lo && x >= hash_lo && x <= hash_hi) {
        const unsigned __int128 span = hash_hi - hash_lo;
        const uint64_t at = static_cast<uint64_t>(
            static_cast<unsigned __int128>(x - hash_lo) * (hi - lo) / span);
        mid = lo + std::min(at, hi - lo - 1);
      }
      const uint64_t h = Hash(mid);
      if (h < x) {
        lo = mid + 1;
        hash_lo = h;
      } else {
        hi = mid;
        hash_hi = h;
      }
    }
    return lo;
  }

  const DataFile& data_;
  const Schema& schema_;
  const uint64_t entry_size_;
  Memo memo_[kMemo];
  uintptr_t prefetched_ = 0;  // lines below this were requested
};

class MergeWriter {
 public:
  MergeWriter(const MergeRequest& request, std::vector<const DataFile*> runs,
              std::unique_ptr<IndexFile> file, FanoutBuilder fan,
              uint64_t expected)
      : r_(request),
        runs_(std::move(runs)),
        file_(std::move(file)),
        fan_(std::move(fan)),
        filter_(expected, request.schema.hash_bits),
        sums_(file_->header_size()) {}

  // Whether runs can be copied (see merge.h).
  bool CanCopyRuns() const {
    return r_.copy_runs && !r_.keep && runs_.size() == 1 &&
           runs_[0]->filter() != nullptr &&
           filter_.CanInclude(*runs_[0]->filter());
  }

  absl::Status Run(bool copy_runs) {
    const std::vector<LogTable::Sorted> log = r_.log->SortedByHash();
    absl::Status st;
    if (copy_runs) {
      filter_.Include(*runs_[0]->filter());
      st = CopyRuns(log);
    } else {
      st = RecordByRecord(log);
    }
    if (!st.ok()) return st;
    if (Cancelled()) return Aborted();

    const Fanout fanout = std::move(fan_).Finish();
    fanout_bytes_ = fanout.Export();
    st = file_->WriteFanout(fanout_bytes_);
    if (!st.ok()) return st;
    return file_->Flush(FlushOptions{.no_callback = true});
  }

  std::unique_ptr<IndexFile> TakeFile() { return std::move(file_); }
  uint64_t entries() const { return entries_; }

  // The output's checksum sidecar; call after a successful Run.
  std::string Sums() {
    FileHeader header;
    header.offset = static_cast<int64_t>(entries_ * r_.schema.entry_size());
    header.generation = r_.generation;
    header.fan_size = static_cast<int64_t>(fanout_bytes_.size());
    SumsTarget target;
    target.generation = r_.generation;
    target.file_bytes = FileHeader::kSize + fanout_bytes_.size() +
                        entries_ * r_.schema.entry_size();
    target.data_id =
        entries_ == 0
            ? 0
            : DataId(absl::string_view(first_entry_, r_.schema.entry_size()),
                     absl::string_view(last_entry_, r_.schema.entry_size()),
                     fanout_bytes_);
    return sums_.Finish(header.Encode() + fanout_bytes_, target);
  }

  // The output's key filter; call after a successful Run.
  std::string Filter() const {
    if (entries_ == 0) return "";
    return filter_.Finish(FilterTargetOf(
        r_.generation, entries_,
        absl::string_view(first_entry_, r_.schema.entry_size()),
        absl::string_view(last_entry_, r_.schema.entry_size()), fanout_bytes_));
  }

 private:
  // Bytes of old records appended at once: the output's write buffer flushes
  // past about 1 MB, and a cancel is checked between pieces.
  static constexpr uint64_t kPieceBytes = 1 << 20;

  bool Keep(const char* entry) const {
    return !r_.keep ||
           r_.keep(EntryKey(r_.schema, entry), EntryValue(r_.schema, entry));
  }

  bool Cancelled() const {
    return r_.cancel != nullptr && r_.cancel->load(std::memory_order_relaxed);
  }

  absl::Status Aborted() const {
    return absl::AbortedError(
        absl::StrCat(r_.path, ": merge cancelled by clear or close"));
  }

  absl::Status Unsorted(const DataFile& run, uint64_t index) const {
    return absl::DataLossError(
        absl::StrCat(run.path(), ": records not sorted by hash at offset ",
                     index * r_.schema.entry_size()));
  }

  // Runs the test hook once, as soon as `handled` run records were handled.
  absl::Status AfterDataRecords(uint64_t handled) {
    if (handled == 0 || hook_called_ || !r_.after_first_entry) {
      return absl::OkStatus();
    }
    hook_called_ = true;
    return r_.after_first_entry();
  }

  // Writes one record; `to_filter`: its key is not in the filter yet.
  absl::Status Emit(uint64_t hash, const char* entry, bool to_filter) {
    const absl::string_view record(entry, r_.schema.entry_size());
    fan_.Update(hash, file_->offset());
    if (to_filter) filter_.Add(EntryKey(r_.schema, entry), hash);
    if (entries_ == 0) first_entry_ = entry;
    last_entry_ = entry;
    ++entries_;
    return Append(record);
  }

  // Appends record bytes to the output and to its checksums.
  absl::Status Append(absl::string_view bytes) {
    sums_.Append(bytes);
    return file_->Append(bytes);
  }

  // The log and every run together: the newest record of each key across the
  // runs (NewestRecords), unless a log binding has its key, then the log.
  absl::Status RecordByRecord(const std::vector<LogTable::Sorted>& log) {
    size_t next = 0;  // first log binding not yet written
    auto emit_log_below = [&](uint64_t hash) -> absl::Status {
      while (next < log.size() && log[next].hash < hash) {
        PrefetchLog(log, next);
        if (Keep(log[next].entry)) {
          absl::Status st = Emit(log[next].hash, log[next].entry, true);
          if (!st.ok()) return st;
        }
        ++next;
      }
      return absl::OkStatus();
    };

    NewestRecords runs(r_.schema, runs_);
    NewestRecords::Record d;
    while (!Cancelled() && runs.Next(&d)) {
      absl::Status st = emit_log_below(d.hash);
      if (!st.ok()) return st;
      // Any log binding with this hash may carry the same key: the log wins.
      if (!Overridden(log, next, d.entry, d.hash) && Keep(d.entry)) {
        st = Emit(d.hash, d.entry, true);
        if (!st.ok()) return st;
      }
      st = AfterDataRecords(runs.consumed());
      if (!st.ok()) return st;
    }
    if (!runs.status().ok()) return runs.status();
    if (Cancelled()) return Aborted();
    // Everything left in the log (all of it for a tiered merge that writes
    // the log alone).
    for (; next < log.size(); ++next) {
      PrefetchLog(log, next);
      if (Keep(log[next].entry)) {
        absl::Status st = Emit(log[next].hash, log[next].entry, true);
        if (!st.ok()) return st;
      }
    }
    return absl::OkStatus();
  }

  // Log bindings lie in the log's memory in the order they were written, not
  // in hash order: each would be a cache miss. Requests the one a few places
  // after `next`. Always inlined: GCC takes a function whose only effect is
  // prefetching for one without effects and drops the calls to it.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void PrefetchLog(
      const std::vector<LogTable::Sorted>& log, size_t next) const {
    constexpr size_t kAhead = 16;
    if (next + kAhead >= log.size()) return;
    const char* entry = log[next + kAhead].entry;
    __builtin_prefetch(entry);
    __builtin_prefetch(entry + r_.schema.entry_size() - 1);
  }

  // Whether a log binding from `next` on, with hash h, has the key of `d`.
  bool Overridden(const std::vector<LogTable::Sorted>& log, size_t next,
                  const char* d, uint64_t h) const {
    for (size_t j = next; j < log.size() && log[j].hash == h; ++j) {
      if (std::memcmp(log[j].entry, d, r_.schema.key_size) == 0) return true;
    }
    return false;
  }

  // The same output as RecordByRecord (one run, without keep), by stretches:
  // the run's records below each log binding's hash are copied at once, the
  // few with its very hash are checked against the log one by one.
  absl::Status CopyRuns(const std::vector<LogTable::Sorted>& log) {
    OldRecords old(*runs_[0], r_.schema);
    const uint64_t n = old.count();
    uint64_t i = 0;  // first old record not yet handled
    size_t next = 0;
    while (next < log.size()) {
      if (Cancelled()) return Aborted();
      PrefetchLog(log, next);
      old.PrefetchAhead(i);
      const uint64_t h = log[next].hash;
      const uint64_t j = old.LowerBound(h, i, n);
      absl::Status st = CopyRun(old, i, j);
      if (!st.ok()) return st;
      i = j;
      for (; i < n && old.Hash(i) == h; ++i) {
        const char* d = old.entry(i);
        if (h < previous_old_) return Unsorted(*runs_[0], i);
        previous_old_ = h;
        if (!Overridden(log, next, d, h)) {
          st = Emit(h, d, /*to_filter=*/false);
          if (!st.ok()) return st;
        }
        st = AfterDataRecords(i + 1);
        if (!st.ok()) return st;
      }
      for (; next < log.size() && log[next].hash == h; ++next) {
        st = Emit(h, log[next].entry, /*to_filter=*/true);
        if (!st.ok()) return st;
      }
    }
    return CopyRun(old, i, n);
  }

  // Copies old records [a, b) to the output, as they are.
  absl::Status CopyRun(OldRecords& old, uint64_t a, uint64_t b) {
    if (a >= b) return absl::OkStatus();
    const size_t e = r_.schema.entry_size();
    const uint64_t first_hash = old.Hash(a);
    const uint64_t last_hash = old.Hash(b - 1);
    if (first_hash < previous_old_) return Unsorted(*runs_[0], a);
    if (last_hash < first_hash) return Unsorted(*runs_[0], b - 1);
    previous_old_ = last_hash;
    // The fan-out table wants the last record of each bucket the run reaches.
    const uint64_t out = file_->offset();  // where record a goes
    uint64_t q = a;
    uint64_t hq = first_hash;
    for (;;) {
      const uint64_t bucket_last = fan_.LastHashOfBucket(hq);
      uint64_t end = b;  // one past the bucket's last record in the run
      if (last_hash > bucket_last) {
        end = old.LowerBound(bucket_last + 1, q + 1, b);
      }
      fan_.Update(hq, out + (end - 1 - a) * e);
      if (end >= b) break;
      q = end;
      hq = old.Hash(q);
      if (hq <= bucket_last) return Unsorted(*runs_[0], q);
    }
    if (entries_ == 0) first_entry_ = old.entry(a);
    last_entry_ = old.entry(b - 1);
    entries_ += b - a;
    const uint64_t per_piece = std::max<uint64_t>(1, kPieceBytes / e);
    for (uint64_t p = a; p < b; p += per_piece) {
      if (Cancelled()) return Aborted();
      const uint64_t p_end = std::min(b, p + per_piece);
      absl::Status st =
          Append(absl::string_view(old.entry(p), (p_end - p) * e));
      if (!st.ok()) return st;
    }
    return AfterDataRecords(b);
  }

  const MergeRequest& r_;
  const std::vector<const DataFile*> runs_;  // newest first
  std::unique_ptr<IndexFile> file_;
  FanoutBuilder fan_;
  KeyFilterBuilder filter_;
  DataSumsBuilder sums_;
  std::string fanout_bytes_;  // as written to the output
  uint64_t entries_ = 0;
  // The first and last records written; they point into the log or a run,
  // all alive during the merge.
  const char* first_entry_ = nullptr;
  const char* last_entry_ = nullptr;
  // Hash of the last old record handled by CopyRuns (for its order check).
  uint64_t previous_old_ = 0;
  bool hook_called_ = false;
};

// The runs a request merges, newest first.
absl::StatusOr<std::vector<const DataFile*>> RunsOf(const MergeRequest& r) {
  if (r.older_runs.empty()) {
    if (r.data == nullptr) return std::vector<const DataFile*>();
    return std::vector<const DataFile*>{r.data};
  }
  if (r.data != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.path, ": a merge request names both a data file and older runs"));
  }
  for (const DataFile* run : r.older_runs) {
    if (run == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path, ": a merge request names a null run"));
    }
  }
  return r.older_runs;
}

// Every block of every run with a usable checksum sidecar against its sums.
absl::Status VerifyRuns(Env* env, const std::vector<const DataFile*>& runs) {
  for (const DataFile* run : runs) {
    absl::Status st = run->VerifySums(env);
    if (!st.ok()) {
      return absl::DataLossError(absl::StrCat(
          st.message(), "; the merge stopped before writing its output"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MergeResult> WriteMerge(const MergeRequest& request) {
  const Schema& s = request.schema;
  absl::StatusOr<std::vector<const DataFile*>> runs = RunsOf(request);
  if (!runs.ok()) return runs.status();
  uint64_t verify_us = 0;
  if (request.verify_runs) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status verified = VerifyRuns(request.env, *runs);
    if (!verified.ok()) return verified;
    verify_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - start)
            .count());
  }
  uint64_t expected = request.log->cardinal();
  for (const DataFile* run : *runs) expected += run->count();
  FanoutBuilder fan(s.hash_bits, s.entry_size(), expected);
  IndexFile::ReadWriteOptions options;
  options.fresh = true;
  options.generation = request.generation;
  options.fan_size = fan.exported_size();
  options.entry_size = s.entry_size();
  // The output is fsynced before it is committed: have the device write it
  // while the merge goes on rather than all at that fsync.
  options.write_behind = true;
  // A stale output (a crash or a failed removal) is removed, not reused: a
  // shorter output would keep its tail, and a data file must end where its
  // records do.
  absl::StatusOr<bool> stale = request.env->FileExists(request.path);
  if (!stale.ok()) return stale.status();
  if (*stale) {
    absl::Status removed = request.env->RemoveFile(request.path);
    if (!removed.ok()) return removed;
  }
  auto file = IndexFile::OpenReadWrite(request.env, request.path, options);
  if (!file.ok()) return file.status();

  MergeWriter writer(request, *std::move(runs), *std::move(file),
                     std::move(fan), expected);
  const bool copy_runs = writer.CanCopyRuns();
  absl::Status st = writer.Run(copy_runs);
  std::unique_ptr<IndexFile> out = writer.TakeFile();
  if (!st.ok()) {
    // Leave nothing behind: the next merge starts from scratch (and a crash
    // here leaves a stale file that the next merge removes first).
    (void)out->Close();
    (void)request.env->RemoveFile(request.path);
    return st;
  }
  MergeResult result;
  result.file = std::move(out);
  result.entries = writer.entries();
  result.filter = writer.Filter();
  if (result.entries > 0) result.sums = writer.Sums();
  result.copied_runs = copy_runs;
  result.verify_us = verify_us;
  return result;
}

}  // namespace kvindex
