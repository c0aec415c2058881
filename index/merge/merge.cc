#include "index/merge/merge.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fan/fan.h"
#include "index/filter/key_filter.h"

namespace kvindex {
namespace {

class MergeWriter {
 public:
  MergeWriter(const MergeRequest& request, std::unique_ptr<IndexFile> file,
              FanoutBuilder fan, uint64_t expected)
      : r_(request),
        file_(std::move(file)),
        fan_(std::move(fan)),
        filter_(expected, request.schema.hash_bits) {}

  bool Keep(const char* entry) const {
    return !r_.keep ||
           r_.keep(EntryKey(r_.schema, entry), EntryValue(r_.schema, entry));
  }

  absl::Status Emit(uint64_t hash, const char* entry) {
    const absl::string_view record(entry, r_.schema.entry_size());
    fan_.Update(hash, file_->offset());
    filter_.Add(EntryKey(r_.schema, entry), hash);
    if (entries_ == 0) first_entry_ = entry;
    last_entry_ = entry;
    ++entries_;
    return file_->Append(record);
  }

  bool Cancelled() const {
    return r_.cancel != nullptr && r_.cancel->load(std::memory_order_relaxed);
  }

  absl::Status Run() {
    const Schema& s = r_.schema;
    const std::vector<LogTable::Sorted> log = r_.log->SortedByHash();
    size_t next = 0;  // first log binding not yet written
    auto emit_log_below = [&](uint64_t hash, bool inclusive) -> absl::Status {
      while (next < log.size() &&
             (log[next].hash < hash || (inclusive && log[next].hash == hash))) {
        if (Keep(log[next].entry)) {
          absl::Status st = Emit(log[next].hash, log[next].entry);
          if (!st.ok()) return st;
        }
        ++next;
      }
      return absl::OkStatus();
    };

    const uint64_t count = r_.data == nullptr ? 0 : r_.data->count();
    uint64_t previous = 0;
    for (uint64_t i = 0; i < count; ++i) {
      if (Cancelled()) return Aborted();
      const char* d = r_.data->entry(i);
      const uint64_t h = s.hash(EntryKey(s, d));
      if (h < previous) {
        return absl::DataLossError(absl::StrCat(
            r_.data->path(), ": records not sorted by hash at offset ",
            i * s.entry_size()));
      }
      previous = h;
      absl::Status st = emit_log_below(h, /*inclusive=*/false);
      if (!st.ok()) return st;
      // Any log binding with this hash may carry the same key: the log wins.
      bool overridden = false;
      for (size_t j = next; j < log.size() && log[j].hash == h; ++j) {
        if (std::memcmp(log[j].entry, d, s.key_size) == 0) {
          overridden = true;
          break;
        }
      }
      if (!overridden && Keep(d)) {
        st = Emit(h, d);
        if (!st.ok()) return st;
      }
      if (i == 0 && r_.after_first_entry) {
        st = r_.after_first_entry();
        if (!st.ok()) return st;
      }
    }
    if (Cancelled()) return Aborted();
    absl::Status st = emit_log_below(0, /*inclusive=*/false);
    // Everything left in the log (emit_log_below(+inf)).
    while (st.ok() && next < log.size()) {
      if (Keep(log[next].entry)) st = Emit(log[next].hash, log[next].entry);
      ++next;
    }
    if (!st.ok()) return st;
    if (Cancelled()) return Aborted();

    const Fanout fanout = std::move(fan_).Finish();
    fanout_bytes_ = fanout.Export();
    st = file_->WriteFanout(fanout_bytes_);
    if (!st.ok()) return st;
    return file_->Flush(IndexFile::FlushOptions{/*call_callback=*/false,
                                                /*fsync=*/false});
  }

  absl::Status Aborted() const {
    return absl::AbortedError(
        absl::StrCat(r_.path, ": merge cancelled by clear or close"));
  }

  std::unique_ptr<IndexFile> TakeFile() { return std::move(file_); }
  uint64_t entries() const { return entries_; }

  // The output's key filter; call after a successful Run.
  std::string Filter() const {
    if (entries_ == 0) return "";
    return filter_.Finish(FilterTargetOf(
        r_.generation, entries_,
        absl::string_view(first_entry_, r_.schema.entry_size()),
        absl::string_view(last_entry_, r_.schema.entry_size()), fanout_bytes_));
  }

 private:
  const MergeRequest& r_;
  std::unique_ptr<IndexFile> file_;
  FanoutBuilder fan_;
  KeyFilterBuilder filter_;
  std::string fanout_bytes_;  // as written to the output
  uint64_t entries_ = 0;
  // The first and last records written; they point into the log or the old
  // data file, both alive during the merge.
  const char* first_entry_ = nullptr;
  const char* last_entry_ = nullptr;
};

}  // namespace

absl::StatusOr<MergeResult> WriteMerge(const MergeRequest& request) {
  const Schema& s = request.schema;
  const uint64_t expected =
      request.log->cardinal() +
      (request.data == nullptr ? 0 : request.data->count());
  FanoutBuilder fan(s.hash_bits, s.entry_size(), expected);
  IndexFile::ReadWriteOptions options;
  options.fresh = true;
  options.generation = request.generation;
  options.fan_size = fan.exported_size();
  options.entry_size = s.entry_size();
  // The output is fsynced before it is committed: have the device write it
  // while the merge goes on rather than all at that fsync.
  options.write_behind = true;
  auto file = IndexFile::OpenReadWrite(request.env, request.path, options);
  if (!file.ok()) return file.status();

  MergeWriter writer(request, *std::move(file), std::move(fan), expected);
  absl::Status st = writer.Run();
  std::unique_ptr<IndexFile> out = writer.TakeFile();
  if (!st.ok()) {
    // Leave nothing behind: the next merge starts from scratch (and a crash
    // here leaves a stale file that the next merge overwrites).
    (void)out->Close();
    (void)request.env->RemoveFile(request.path);
    return st;
  }
  MergeResult result;
  result.file = std::move(out);
  result.entries = writer.entries();
  result.filter = writer.Filter();
  return result;
}

}  // namespace kvindex
