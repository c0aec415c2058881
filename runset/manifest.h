// The manifest: the commit point of the tiered layout, a small file
// `<root>/index/manifest` that lists the live runs of the store. Each run is a
// complete data file in the default layout's format (header, fan-out table,
// records sorted by key hash, key filter `<run>.filter` and checksum sidecar
// `<run>.sum` next to it), named
// after its id by RunFileName: `run.<id>`, or `data` for id 0, the data file of
// a default-layout store taken over as the oldest run. The file is not part of
// the OCaml library's format (which ignores unknown files, but would not see
// the runs either).
//
// File format (integers big-endian, like the rest of the store):
//   magic         "KVRUNSET"    8 bytes
//   version       uint32        1
//   entry_size    uint32        key + value bytes of the store's records
//   generation    int64         the store generation the manifest commits
//   next_id       uint64        the id the next merge output takes
//   run_count     uint32        at most kMaxRuns
//   retired_count uint32        at most kMaxRuns
//   runs          run_count times, newest first:
//     id          uint64
//     generation  int64         stamped in the run's header
//     records     uint64        of the run, at least 1
//     bytes       uint64        size of the run's file
//     slot        uint32        below kMaxRuns (see runset/policy.h)
//   retired       retired_count ids (uint64): the runs the merge or compaction
//                 that wrote this manifest folded, whose files may still exist
//   checksum      uint64        XXH3-64 of every byte above
// Invariants (DecodeManifest checks each): entry_size > 0; generations within
// [0, IndexFile::kMaxGeneration]; next_id >= 1 (id 0 is only ever `data`);
// runs newest first, their generations strictly decreasing, their ids unique
// (in any order: a compaction's output takes next_id and keeps its place behind
// runs flushed while it ran) and below next_id, every generation at most the
// manifest's; slots are the policy's hint and may come in any order; bytes = 32 + fan-out table (8 * 2^k) +
// records * entry_size; retired ids decreasing, below next_id, none listed as a
// run. One manifest has exactly one encoding.
//
// Generations. The manifest's generation plays the role of the default
// layout's data file generation in the log generation protocol: a merge whose
// output has generation G+1 commits by writing a manifest with generation G+1
// (even when its output is empty), and only then resets the log to G+1. A clear
// resets the log to G+1 first, then writes a manifest with no runs.
//
// Recovery at open (a writer; a read-only instance never deletes anything):
//   - manifest generation == log generation + 1: a merge committed, the log
//     was not reset yet; finish as the default layout does (reset the log).
//   - manifest generation < log generation: a clear committed; every listed
//     run is stale, and so is any log_async (the clear removes it before its
//     manifest, whose generation then equals the log's as a merge commit's
//     does): remove log_async, write ClearedManifest (runset/policy.h), then
//     remove the stale files.
//   - manifest generation > log generation + 1: kDataLoss.
//   - StaleRunFiles lists what may then be deleted: the runs the manifest
//     retires (a committed merge's inputs; ids below next_id not listed) and
//     run `next_id` (the output of a merge or compaction that never committed:
//     each writes its output under a name of its own, `merge` or `compact`,
//     and renames it to RunFileName(next_id) just before it writes the
//     manifest that names it, both under one lock, so no other id at or above
//     next_id can exist), with their filters and checksum sidecars (and the
//     `.tmp` files these are written to first), and manifest.tmp. A writer
//     removes them (RemoveStaleRunFiles) at open and under that lock before
//     it writes the next manifest, which no longer names them, and after it.
//   - No manifest: the store is in the default layout. Converting it writes
//     a first manifest listing `data` (if it has records) as the oldest run,
//     after the default layout's own recovery.
// Converting back to the default layout: compact everything into one run N
// (a merge committed as usual, its retired runs removed), rename run N's
// filter and checksum sidecar, then run N, to `data.filter`, `data.sum` and
// `data`, fsync the directory (the
// conversion's commit point), then remove the manifest. A manifest whose only
// run is missing while `data` has that run's generation, records and size
// means the conversion committed (RunSet::Open then reads `data`), and
// RemoveStaleRunFiles never removes a retired `data` whose generation is a
// listed run's.
//
// Thread safety: the functions are thread-safe; writing the manifest needs the
// writer lock of the store.
#ifndef KVINDEX_RUNSET_MANIFEST_H_
#define KVINDEX_RUNSET_MANIFEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/env.h"

namespace kvindex {

// A store's runs fit in 64 slots (2^64 log-fulls), hence at most 64 runs.
inline constexpr size_t kMaxRuns = 64;
// The id of `data`, the data file of a default-layout store taken over as a
// run.
inline constexpr uint64_t kDataRunId = 0;

struct RunEntry {
  uint64_t id = 0;
  int64_t generation = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint32_t slot = 0;

  bool operator==(const RunEntry& o) const {
    return id == o.id && generation == o.generation && records == o.records &&
           bytes == o.bytes && slot == o.slot;
  }
  bool operator!=(const RunEntry& o) const { return !(*this == o); }
};

struct Manifest {
  uint32_t entry_size = 0;
  int64_t generation = 0;
  uint64_t next_id = 1;
  std::vector<RunEntry> runs;     // newest first
  std::vector<uint64_t> retired;  // decreasing

  bool operator==(const Manifest& o) const {
    return entry_size == o.entry_size && generation == o.generation &&
           next_id == o.next_id && runs == o.runs && retired == o.retired;
  }
  bool operator!=(const Manifest& o) const { return !(*this == o); }
};

// "data" for kDataRunId, "run.<id>" otherwise.
std::string RunFileName(uint64_t id);
// `dir` is the store directory, <root>/index.
std::string ManifestPath(const std::string& dir);
std::string RunPath(const std::string& dir, uint64_t id);

// OK if `m` keeps every invariant above; otherwise kInvalidArgument naming
// `path` and the field.
absl::Status CheckManifest(const Manifest& m, absl::string_view path);

// The file's bytes. REQUIRES: CheckManifest(m) is OK.
std::string EncodeManifest(const Manifest& m);

// Parses a manifest's bytes; pure. kDataLoss naming `path` and the field for
// bad magic, version or checksum, truncation, trailing bytes and every broken
// invariant.
absl::StatusOr<Manifest> DecodeManifest(absl::string_view bytes,
                                        absl::string_view path);

// The manifest of the store directory `dir`, or nullopt if there is none.
absl::StatusOr<std::optional<Manifest>> ReadManifest(Env* env,
                                                     const std::string& dir);

// Replaces the manifest of `dir` atomically: writes manifest.tmp, fsyncs it,
// renames it over `manifest` and fsyncs the directory. A crash at any point
// leaves the old manifest or the new one, complete. kInvalidArgument, before
// any write, if `m` breaks an invariant.
absl::Status WriteManifest(Env* env, const std::string& dir, const Manifest& m);

// The files a writer may delete once `m` is the committed manifest (see
// recovery above), whether or not they exist.
std::vector<std::string> StaleRunFiles(const std::string& dir,
                                       const Manifest& m);
// Removes those of StaleRunFiles that exist, except a retired `data` (and its
// filter and checksum sidecar) that is a listed run renamed (see the conversion above), then
// fsyncs the directory if it removed any. Not while a merge writes its output
// (see above).
absl::Status RemoveStaleRunFiles(Env* env, const std::string& dir,
                                 const Manifest& m);

}  // namespace kvindex

#endif  // KVINDEX_RUNSET_MANIFEST_H_
