// RunSet: the open runs of a tiered store, as one committed manifest lists
// them, newest first. Finds look in each run from the newest and stop at the
// first hit; iteration yields each key once with its newest value.
//
// A find of an absent key has to ask every run, so it first issues every run's
// prefetch (DataFile::Prefetch: its filter block, and the records it will
// probably read) and only then checks the runs in order: their cache misses
// overlap instead of adding up. No find allocates.
//
// Thread safety: immutable; share freely. The runs (std::shared_ptr) keep
// their mappings alive for finds still running when a newer set replaces this
// one, and for sets that reuse them.
#ifndef KVINDEX_RUNSET_RUN_SET_H_
#define KVINDEX_RUNSET_RUN_SET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "io/env.h"
#include "runset/manifest.h"

namespace kvindex {

class RunSet {
 public:
  using Runs = std::vector<std::shared_ptr<const DataFile>>;

  // Opens the runs `manifest` lists in the store directory `dir` and checks
  // each against it (generation, records, file size): a missing or different
  // run is kDataLoss naming its file and the field; a manifest for another
  // entry size is kInvalidArgument. Runs in `open` (say, the previous set's,
  // and a merge's output) with the same path, generation and records are
  // shared instead of opened again. A manifest whose only run is missing
  // while `data` matches it is a committed conversion to the default layout
  // (see runset/manifest.h): `data` is that run.
  static absl::StatusOr<std::shared_ptr<const RunSet>> Open(
      Env* env, const std::string& dir, const Schema& schema,
      const Manifest& manifest, const Runs& open = {});

  // What a read-only instance does when the log tells it the writer moved on:
  // reads the manifest and opens its runs (sharing those of `previous`, which
  // may be null), reading the manifest again while the writer replaces it in
  // between (a merge commits a new one, then deletes the runs it folded). A
  // manifest older than `log_generation` belongs to a store cleared since:
  // no runs. nullptr when there is no manifest (a default-layout store).
  static absl::StatusOr<std::shared_ptr<const RunSet>> Load(
      Env* env, const std::string& dir, const Schema& schema,
      int64_t log_generation, const RunSet* previous);

  // The manifest the set was opened from.
  const Manifest& manifest() const { return manifest_; }
  // Newest first, one per run of the manifest.
  const Runs& runs() const { return runs_; }
  bool empty() const { return runs_.empty(); }
  // The newest `n` runs (at most all), for MergeRequest::older_runs.
  std::vector<const DataFile*> Newest(size_t n) const;
  // Records of all runs; a key held by several runs counts in each.
  uint64_t records() const { return records_; }

  // A find in two steps, like DataFile's: Prefetch starts loading what each
  // run's lookup reads first, so that the caller can do other work (its log
  // lookups) while the misses are served; Find then checks the runs newest
  // first. A Lookup is filled by Prefetch and read by Find on the same set.
  class Lookup {
   public:
    Lookup() {}

   private:
    friend class RunSet;
    DataFile::Window* windows() {
      return reinterpret_cast<DataFile::Window*>(storage_);
    }
    const DataFile::Window* windows() const {
      return reinterpret_cast<const DataFile::Window*>(storage_);
    }
    size_t count_ = 0;
    // Only the windows of the set's runs are constructed (most sets hold a
    // few runs; a find should not pay for kMaxRuns).
    alignas(DataFile::Window) unsigned char storage_[kMaxRuns *
                                                     sizeof(DataFile::Window)];
  };
  static_assert(std::is_trivially_destructible<DataFile::Window>::value,
                "Lookup never destroys its windows");

  void Prefetch(uint64_t hash, Lookup* lookup) const;
  // The entry (key then value) of `key` in the newest run holding it, or
  // nullptr.
  const char* Find(absl::string_view key, const Lookup& lookup) const;
  const char* Find(absl::string_view key, uint64_t hash) const;
  // The value of `key`, a view into its run valid while the set lives.
  bool Find(absl::string_view key, uint64_t hash,
            absl::string_view* value_out) const;

  // Calls visit(entry, hash) for each key of the runs once, with its newest
  // entry, in hash order. kDataLoss naming the run if one is not sorted by
  // hash (then some keys were visited, none twice).
  absl::Status Iter(
      absl::FunctionRef<void(const char* entry, uint64_t hash)> visit) const;

 private:
  RunSet(const Schema& schema, Manifest manifest, Runs runs);

  Schema schema_;
  Manifest manifest_;
  Runs runs_;
  uint64_t records_ = 0;
};

// The run entry that lists `run`, taken from its header and its file's size
// (for a data file taken over, or a merge output).
absl::StatusOr<RunEntry> DescribeRun(Env* env, const DataFile& run, uint64_t id,
                                     uint32_t slot);

}  // namespace kvindex

#endif  // KVINDEX_RUNSET_RUN_SET_H_
