#include "datafile/data_file.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "filter/data_sums.h"
#include "io/status_macros.h"
#include "search/search.h"

namespace kvindex {
namespace {

// Which way the filter's verdicts on this thread went lately (for the files
// that keep no trend of their own, see DataFile::Window): present keys push the
// count up, absent ones down, within +-kTrendLimit. Workloads tend to be mostly
// one or the other, so this predicts the next verdict well enough to decide
// whether to start loading a record before it.
thread_local int filter_trend = 0;
constexpr int kTrendLimit = 8;

int* TrendOf(const DataFile::Window& w) {
  return w.trend != nullptr ? w.trend : &filter_trend;
}

bool ExpectMayContain(const int* trend) { return *trend > 0; }

void RecordVerdict(bool may_contain, int* trend) {
  if (may_contain) {
    if (*trend < kTrendLimit) ++*trend;
  } else if (*trend > -kTrendLimit) {
    --*trend;
  }
}

std::atomic<uint64_t> whole_file_searches{0};

// Records sampled at open to check that the header's fields fit them.
constexpr uint64_t kSampledRecords = 64;

// A data file ends where the records its header claims do: merges write data
// files whole and never in place, so a header offset that does not match is
// damage (it would drop records, or read other bytes as records).
absl::Status CheckExtent(const IndexFile& file) {
  absl::StatusOr<uint64_t> size = file.FileSize();
  if (!size.ok()) return size.status();
  const uint64_t claimed = file.claimed_offset();
  if (*size != file.header_size() + claimed) {
    return absl::DataLossError(absl::StrCat(
        file.path(), ": header fields offset and fan_size: the file has ",
        *size, " bytes, but its header accounts for ",
        file.header_size() + claimed, " (32, a fan-out table of ",
        file.fan_size(), " and ", claimed,
        " bytes of records): a data file ends where its records do"));
  }
  if (claimed != file.flushed_offset()) {
    return absl::DataLossError(
        absl::StrCat(file.path(), ": header field offset: ", claimed,
                     " bytes of records is not a whole number of records"));
  }
  return absl::OkStatus();
}

// The fan-out table of a data file against its records: no smaller than any
// writer makes it for that many records (both libraries size it for an upper
// bound of the records a merge writes, Fanout::BitsFor), and sampled records
// lie, in hash order, where the table says their hashes are. A damaged fan-out
// size would otherwise make records out of other bytes.
absl::Status CheckFanoutAgainstRecords(const IndexFile& file,
                                       const Fanout& fanout,
                                       const Schema& schema,
                                       const char* records, uint64_t count) {
  const size_t e = schema.entry_size();
  const int needed = Fanout::BitsFor(schema.hash_bits, e, count);
  if (fanout.bits() < needed) {
    return absl::DataLossError(absl::StrCat(
        file.path(), ": header field fan_size: a fan-out table of 2^",
        fanout.bits(), " slots is too small for ", count,
        " records (a merge writes at least 2^", needed, ")"));
  }
  const uint64_t samples = std::min(count, kSampledRecords);
  uint64_t previous_hash = 0;
  for (uint64_t k = 0; k < samples; ++k) {
    const uint64_t i = samples == 1 ? 0 : k * (count - 1) / (samples - 1);
    const uint64_t hash = schema.hash(EntryKey(schema, records + i * e));
    const Fanout::Range range = fanout.Search(hash);
    const uint64_t at = i * e;
    if (hash < previous_hash || at < range.low || at > range.high) {
      return absl::DataLossError(absl::StrCat(
          file.path(), ": record ", i,
          " is not where the header's fan-out table and the records' hash "
          "order put it (a damaged header or records)"));
    }
    previous_hash = hash;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const DataFile>> DataFile::Open(
    Env* env, const std::string& path, const Schema& schema) {
  auto file = IndexFile::OpenReadOnly(env, path, schema.entry_size());
  if (!file.ok()) return file.status();
  if (*file == nullptr) return std::shared_ptr<const DataFile>();
  // Written a while ago, the file may have been partly evicted from the page
  // cache: one sequential read now rather than a random one per page that
  // finds touch (a merge's own output, just written, needs none).
  (*file)->StartReadahead();
  return FromFile(*std::move(file), schema, env);
}

absl::StatusOr<std::shared_ptr<const DataFile>> DataFile::FromFile(
    std::unique_ptr<IndexFile> file, const Schema& schema, Env* env) {
  const size_t e = schema.entry_size();
  KVINDEX_RETURN_IF_ERROR(CheckExtent(*file));
  const uint64_t bytes = file->flushed_offset();
  if (bytes < e) return std::shared_ptr<const DataFile>();
  auto table = file->ReadFanout();
  if (!table.ok()) return table.status();
  auto fanout =
      Fanout::Import(*table, schema.hash_bits, e, bytes, file->path());
  if (!fanout.ok()) return fanout.status();
  auto region = file->Map();
  if (!region.ok()) return region.status();
  if ((*region)->bytes().size() < file->header_size() + bytes) {
    return absl::DataLossError(
        absl::StrCat(file->path(), ": mapped ", (*region)->bytes().size(),
                     " bytes, expected ", file->header_size() + bytes));
  }
  KVINDEX_RETURN_IF_ERROR(CheckFanoutAgainstRecords(
      *file, *fanout, schema, (*region)->bytes().data() + file->header_size(),
      bytes / e));
  std::shared_ptr<DataFile> data(new DataFile(schema, *std::move(fanout)));
  data->path_ = file->path();
  data->generation_ = file->generation();
  data->records_ = (*region)->bytes().data() + file->header_size();
  data->count_ = bytes / e;
  data->region_ = *std::move(region);
  data->compact_ = CompactFanout::Of(data->fanout_, data->count_, e);
  const FilterTarget target = FilterTargetOf(
      data->generation_, data->count_, absl::string_view(data->entry(0), e),
      absl::string_view(data->entry(data->count_ - 1), e), *table);
  data->data_id_ = target.data_id;
  auto filter =
      KeyFilter::Open(env, FilterPath(data->path_), target, schema.hash_bits);
  if (filter.ok()) data->filter_ = *std::move(filter);
  // The mapping outlives the file handle; the descriptor is not needed any
  // more.
  (void)file->Close();
  return std::shared_ptr<const DataFile>(std::move(data));
}

absl::Status DataFile::VerifySums(Env* env) const {
  const absl::string_view file = file_bytes();
  SumsTarget target;
  target.generation = generation_;
  target.file_bytes = file.size();
  target.data_id = data_id_;
  absl::StatusOr<std::unique_ptr<const DataSums>> sums =
      DataSums::Read(env, SumsPath(path_), target);
  if (!sums.ok() || *sums == nullptr) return absl::OkStatus();
  return (*sums)->Verify(file, path_);
}

uint64_t DataFile::WholeFileSearches() {
  return whole_file_searches.load(std::memory_order_relaxed);
}

DataFile::Window DataFile::WindowOf(uint64_t hash) const {
  Window w;
  w.hash = hash;
  Locate(&w);
  return w;
}

void DataFile::Locate(Window* w) const {
  const uint64_t hash = w->hash;
  const size_t e = schema_.entry_size();
  const size_t bucket = fanout_.Bucket(hash);
  const Fanout::HashRange hashes = fanout_.BucketHashes(bucket);
  // The records of the slots before and of the bucket.
  uint64_t low, high;
  if (!compact_.empty()) {
    low = bucket == 0 ? 0 : compact_.SlotRecord(bucket - 1);
    high = compact_.SlotRecord(bucket);
  } else {
    const Fanout::Range range = fanout_.Search(hash);
    low = range.low / e;
    high = range.high / e;
  }
  // The slot before the bucket holds its predecessor's last record, which is
  // outside the bucket; except that a slot of 0 may also mean "no record
  // before", when record 0 opens this bucket.
  uint64_t first = low;
  if (bucket > 0 &&
      !(low == 0 && count_ > 0 &&
        schema_.hash(EntryKey(schema_, records_)) >= hashes.low)) {
    first = low + 1;
  }
  w->located = true;
  w->first = first;
  w->last = high;
  w->hash_min = hashes.low;
  w->hash_max = hashes.high;
  w->first_probe = BoundedFirstProbe(count_, w->first, w->last, w->hash_min,
                                     w->hash_max, hash);
}

inline void DataFile::PrefetchRecords(uint64_t low, uint64_t high,
                                      uint64_t centre) const {
  constexpr uintptr_t kLine = 64;
  // A bucket of skewed hashes can be far wider than the ~1 KiB of a uniform
  // one: at most kMaxLines, around `centre`.
  constexpr uintptr_t kMaxLines = 24;
  auto address = [&](uint64_t i) {
    return reinterpret_cast<uintptr_t>(entry(i));
  };
  uintptr_t begin = address(low) & ~(kLine - 1);
  uintptr_t end = address(high) + schema_.key_size;
  if (end - begin > kMaxLines * kLine) {
    const uintptr_t half = kMaxLines / 2 * kLine;
    const uintptr_t at = address(centre) & ~(kLine - 1);
    if (at - begin > half) begin = at - half;
    end = std::min(end, begin + kMaxLines * kLine);
  }
  for (uintptr_t line = begin; line < end; line += kLine) {
    __builtin_prefetch(reinterpret_cast<const void*>(line));
  }
}

std::optional<ProbeRange> DataFile::LikelyProbes(const Window& w) const {
  if (!w.first_probe.has_value()) return std::nullopt;
  return BoundedLikelyProbesAround(*w.first_probe, count_, w.first, w.last,
                                   w.hash_min, w.hash_max, w.hash);
}

DataFile::Window DataFile::Prefetch(uint64_t hash, int* trend) const {
  // One Window, returned from every path: a copy of it here stalled every
  // find on loads that overlapped its stores.
  Window w;
  w.hash = hash;
  w.trend = trend;
  // With a filter, its block now, and the records the search will probably
  // read only when its verdict will likely be "maybe" (otherwise Find
  // requests them after the verdict): the first probe's record before the
  // verdict made finds of present keys 6-10% faster, of absent ones 10-15%
  // slower.
  if (filter_ != nullptr) {
    filter_->Prefetch(hash);
    if (!ExpectMayContain(TrendOf(w))) return w;
  }
  Locate(&w);
  const std::optional<ProbeRange> likely = LikelyProbes(w);
  if (likely.has_value()) {
    PrefetchRecords(likely->low, likely->high, likely->first_probe);
  }
  return w;
}

bool DataFile::Encloses(const Window& w) const {
  auto hash_at = [&](uint64_t i) {
    return schema_.hash(EntryKey(schema_, entry(i)));
  };
  return (w.first == 0 || w.first > count_ ||
          hash_at(w.first - 1) < w.hash_min) &&
         (w.last + 1 >= count_ || hash_at(w.last + 1) > w.hash_max);
}

const char* DataFile::Find(absl::string_view key, const Window& given) const {
  return Find(key, given, filter_ != nullptr ? KeyFingerprint(key) : 0);
}

const char* DataFile::Find(absl::string_view key, const Window& given,
                           uint64_t fingerprint) const {
  const uint64_t hash = given.hash;
  if (filter_ != nullptr) {
    const bool may_contain = filter_->MayContain(hash, fingerprint);
    RecordVerdict(may_contain, TrendOf(given));
    if (!may_contain) return nullptr;
  }
  const Window w = given.located ? given : WindowOf(hash);
  // The records around the first probe where the key most likely sits (see
  // Prefetch), requested together so that their misses overlap, then compared
  // by key bytes: no record is hashed unless the key lies outside them.
  MappedArray array(records_, count_, schema_.entry_size());
  const std::optional<ProbeRange> likely = LikelyProbes(w);
  if (likely.has_value()) {
    if (filter_ != nullptr) {
      PrefetchRecords(likely->low, likely->high, likely->first_probe);
    }
    const std::optional<uint64_t> i =
        FindKeyInRange(array, schema_, key, *likely);
    if (i.has_value()) return entry(*i);
  }
  auto i = BoundedInterpolationSearch(array, schema_, key, hash, w.first,
                                      w.last, w.hash_min, w.hash_max);
  if (i.has_value()) return entry(*i);
  // A miss is only trusted if the records around the window lie outside the
  // bucket. Otherwise the fan-out table does not match the records (damage
  // that Fanout::Import cannot see): search the whole file rather than miss a
  // binding. With a filter this path is rare (its false positives).
  if (Encloses(w)) return nullptr;
  whole_file_searches.fetch_add(1, std::memory_order_relaxed);
  i = InterpolationSearch(array, schema_, key, hash, 0, count_ - 1);
  return i.has_value() ? entry(*i) : nullptr;
}

}  // namespace kvindex
