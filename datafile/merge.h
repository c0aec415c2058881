// The streaming merge: the hash-sorted newest bindings of the log and the
// records of the older runs (the one data file of the default layout, or the
// runs of the tiered layout that the merge folds), merged in hash order into a
// new output file with its fan-out table and key filter.
//
// Newest binding wins: a log binding overrides every run record of the same
// key, and a run's record overrides those of the same key in older runs (all
// records with one hash are compared by key across the log and every run:
// equal hashes sit together in each input, in any order). A keep filter
// applies to the surviving (newest) binding of each key only, so a
// filtered-out newer binding never lets an older value come back.
//
// Two ways, with the same output byte for byte:
// - record by record: every run record is hashed, placed and added to a new
//   key filter (several runs are read together, see NewestRecords);
// - copying runs, when there is exactly one older run and it has a key filter
//   the output's can extend (same shape; no keep filter): the run's records
//   between two log bindings are copied as they are, found by a search guided
//   by its fan-out table; a record is hashed only at a run's ends, in these
//   searches and at the output's bucket boundaries, and the output's filter
//   is the run's plus the log's keys. Most merges of the default layout take
//   this way: its cost follows the log and the number of fan-out buckets, not
//   the records. Unsorted records are then noticed only where a copied stretch
//   starts or ends.
//
// Checksums (filter/data_sums.h): before it writes anything, the merge checks
// every block of every run that has a usable checksum sidecar
// (`<run>.sum`) against it, and fails with kDataLoss naming the run and the
// byte range of the first block that differs rather than carry damage into
// its output; a run without a usable sidecar is read unchecked. The output's
// own sidecar is computed while the output is written (its header and fan-out
// table, written last, at the end), never by reading it back.
//
// The output is built under its own name and only renamed (or listed in a
// manifest) by the caller; on cancel or error the partial file is removed and
// nothing else changes.
#ifndef KVINDEX_DATAFILE_MERGE_H_
#define KVINDEX_DATAFILE_MERGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "io/env.h"
#include "io/index_file.h"
#include "log/log_table.h"

namespace kvindex {

struct MergeRequest {
  Env* env = nullptr;
  // Path of the output file (a stale file there is overwritten).
  std::string path;
  Schema schema;
  // Newest binding of each key of the log. Not modified during the merge.
  const LogTable* log = nullptr;
  // The current data file of the default layout, or nullptr: the one older
  // run. Must be null when older_runs is not empty.
  const DataFile* data = nullptr;
  // The older runs the merge folds, newest first (the tiered layout); when not
  // empty they are the merge's runs instead of `data`. None may be null.
  std::vector<const DataFile*> older_runs;
  // Generation stamped in the output header.
  int64_t generation = 0;
  // Bindings for which keep(key, value) is false are dropped. Optional.
  std::function<bool(absl::string_view, absl::string_view)> keep;
  // Checked between records: once true the merge stops with kAborted.
  const std::atomic<bool>* cancel = nullptr;
  // Called once after the first record of an older run was handled (test
  // hook).
  std::function<absl::Status()> after_first_entry;
  // Whether stretches of the one older run may be copied as they are (see
  // above); false handles every record one by one.
  bool copy_runs = true;
  // Whether the runs are checked against their checksum sidecars first (see
  // above).
  bool verify_runs = true;
};

struct MergeResult {
  // The output, flushed (not yet fsynced) with its fan-out table written.
  std::unique_ptr<IndexFile> file;
  uint64_t entries = 0;
  // The bytes of the output's key filter (see KeyFilter), sized for the
  // records the merge could write (the log's keys plus the runs' records) and
  // bound to the output's generation, records and fan-out table
  // (wherever the output is committed). Empty without entries.
  std::string filter;
  // The bytes of the output's checksum sidecar (see DataSums), bound to the
  // output's generation, size and DataId. Empty without entries.
  std::string sums;
  // Whether stretches of the older run were copied as they are.
  bool copied_runs = false;
  // Time spent reading the inputs against their checksum sidecars (µs), with
  // MergeRequest::verify_runs.
  uint64_t verify_us = 0;
};

// kInvalidArgument for a request with both `data` and `older_runs`, or a null
// run; kDataLoss naming the run when one is not sorted by hash, or when a
// block of it does not match its checksum sidecar (with the byte range); kAborted on
// cancel; IO errors as they come.
absl::StatusOr<MergeResult> WriteMerge(const MergeRequest& request);

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_MERGE_H_
