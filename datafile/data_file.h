// DataFile: the immutable, hash-sorted data file of a store, memory-mapped,
// with its fan-out table and, when a valid one lies next to it
// (`<path>.filter`, see KeyFilter), its key filter. Lookups are a filter check,
// a fan-out bucket then an interpolation search, with no system call and no
// allocation.
//
// Thread safety: immutable; share freely (std::shared_ptr keeps the mapping
// alive for lookups still running when a merge swaps in a new data file).
#ifndef KVINDEX_DATAFILE_DATA_FILE_H_
#define KVINDEX_DATAFILE_DATA_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/attributes.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/compact_fanout.h"
#include "fan/fan.h"
#include "filter/key_filter.h"
#include "io/env.h"
#include "io/index_file.h"
#include "search/search.h"

namespace kvindex {

class DataFile {
 public:
  // Opens `path` read-only. nullptr if it is absent, shorter than a header, or
  // holds no records (a data file without records is treated as no data file).
  // A filter that cannot be used (absent, damaged, stale, unreadable) is not:
  // it only makes finds of absent keys faster.
  static absl::StatusOr<std::shared_ptr<const DataFile>> Open(
      Env* env, const std::string& path, const Schema& schema);
  // Takes over a freshly written file (the merge output).
  static absl::StatusOr<std::shared_ptr<const DataFile>> FromFile(
      std::unique_ptr<IndexFile> file, const Schema& schema, Env* env);

  // Where a lookup of one hash reads, worked out once: the records
  // [first, last] of its fan-out bucket, whose hashes are [hash_min,
  // hash_max].
  struct Window {
    uint64_t hash = 0;
    // Whether the fields below are worked out; when not (Prefetch may leave
    // it to Find), Find works them out from `hash`.
    bool located = false;
    uint64_t first = 0, last = 0, hash_min = 0, hash_max = 0;
    // The search's first probe (BoundedFirstProbe); none when the search
    // reads no record.
    std::optional<uint64_t> first_probe;
    // The trend of filter verdicts the prefetch decision follows (see
    // Prefetch), or nullptr for the thread's shared one.
    int* trend = nullptr;
  };

  // The entry (key then value) of `key`, or nullptr.
  const char* Find(absl::string_view key, uint64_t hash) const {
    return Find(key, WindowOf(hash));
  }
  // A lookup in two steps, so that its memory accesses overlap with other
  // work: Prefetch starts loading into the CPU cache, without a filter, every
  // record the search will probably read; with one, its block, and those
  // records only while the filter's verdicts on this thread have mostly been
  // "maybe present" (for an absent key they are a wasted memory read and page
  // walk; for a present one, a head start).
  // Find (with the same window) checks the filter, requests the other records
  // the search will probably read, compares their keys and only if the key is
  // not among them searches the bucket.
  // `trend`: where this thread keeps the verdicts of this file's filter, when
  // one find consults several files whose verdicts differ (the runs of the
  // tiered layout: the newest say "absent" to most present keys, the oldest
  // "maybe"); nullptr shares one trend per thread.
  Window Prefetch(uint64_t hash, int* trend = nullptr) const;
  const char* Find(absl::string_view key, const Window& w) const;
  // The same, given the key's KeyFingerprint, for a caller that checks the
  // key against several files' filters (the runs of the tiered layout) and
  // works it out once.
  const char* Find(absl::string_view key, const Window& w,
                   uint64_t fingerprint) const;

  // Finds (of all data files of the process) that searched the whole file
  // because the records around their bucket's window showed that the fan-out
  // table does not match the records: damage the open's checks missed, or a
  // bug in the window. Never with a table a merge wrote; tests check that it
  // stays at zero.
  static uint64_t WholeFileSearches();

  uint64_t count() const { return count_; }
  const char* entry(uint64_t i) const {
    return records_ + i * schema_.entry_size();
  }
  int64_t generation() const { return generation_; }
  const Fanout& fanout() const { return fanout_; }
  // The table finds read (empty when they read fanout() itself).
  const CompactFanout& compact_fanout() const { return compact_; }
  const std::string& path() const { return path_; }
  // The key filter in use, or nullptr.
  const KeyFilter* filter() const { return filter_.get(); }
  // Where the filter of the data file at `data_path` lives.
  static std::string FilterPath(const std::string& data_path) {
    return data_path + ".filter";
  }
  // Where the checksum sidecar of the data file at `data_path` lives (see
  // filter/data_sums.h).
  static std::string SumsPath(const std::string& data_path) {
    return data_path + ".sum";
  }
  // The whole file as mapped: header, fan-out table and records.
  absl::string_view file_bytes() const { return region_->bytes(); }
  // DataId of this file (filter/key_filter.h): what binds its filter to it,
  // recorded in its checksum sidecar.
  uint64_t data_id() const { return data_id_; }
  // Reads every block of the file against its checksum sidecar (SumsPath,
  // filter/data_sums.h): OK when they all match, or when there is no usable
  // sidecar (absent, damaged, stale, unreadable: a sidecar is never
  // required); otherwise kDataLoss naming the file and the byte range of the
  // first block that differs.
  absl::Status VerifySums(Env* env) const;

 private:
  Window WindowOf(uint64_t hash) const;
  // Fills in the fields of `w` below its hash.
  void Locate(Window* w) const;
  // Requests the cache lines of records [low, high] (at most a fixed number of
  // lines, around record `centre`). Always inlined: GCC takes a function
  // whose only effect is prefetching for one without effects and drops the
  // calls to it.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void PrefetchRecords(uint64_t low, uint64_t high,
                                                    uint64_t centre) const;
  // The records the search of `w` will probably read (BoundedLikelyProbes),
  // nullopt when it reads none.
  std::optional<ProbeRange> LikelyProbes(const Window& w) const;
  // Whether the records just outside the window hash outside its bucket, as
  // they do when the fan-out table matches the records.
  bool Encloses(const Window& w) const;

  DataFile(const Schema& schema, Fanout fanout)
      : schema_(schema), fanout_(std::move(fanout)) {}

  Schema schema_;
  Fanout fanout_;
  CompactFanout compact_;  // what finds read; empty: they read fanout_
  std::string path_;
  int64_t generation_ = 0;
  uint64_t data_id_ = 0;
  std::shared_ptr<const MappedRegion> region_;
  std::shared_ptr<const KeyFilter> filter_;
  const char* records_ = nullptr;
  uint64_t count_ = 0;
};

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_DATA_FILE_H_
