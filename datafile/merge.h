// The streaming merge: the hash-sorted newest bindings of the log and the
// records of the old data file, merged in hash order into a new `merge` file
// with its fan-out table.
//
// A log binding overrides every data record of the same key (all data records
// with the same hash are checked against all log bindings with that hash). A
// filter applies to the surviving (newest) binding of each key only, so a
// filtered-out log binding never lets an older data value come back.
//
// Two ways, with the same output byte for byte:
// - record by record: every data record is hashed, placed and added to a new
//   key filter;
// - copying runs, when the data file has a key filter the output's can extend
//   (same shape; no keep filter): the data records between two log bindings
//   are copied as they are, found by a search guided by the data file's
//   fan-out table; a record is hashed only at a run's ends, in these searches
//   and at the output's bucket boundaries, and the output's filter is the data
//   file's plus the log's keys. Most merges take this way: its cost follows
//   the log and the number of fan-out buckets, not the records. Unsorted data
//   records are then noticed only where a run starts or ends.
//
// The output is built under its own name and only renamed over `data` by the
// caller; on cancel or error the partial file is removed and nothing else
// changes.
#ifndef KVINDEX_DATAFILE_MERGE_H_
#define KVINDEX_DATAFILE_MERGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "log/log_table.h"
#include "datafile/data_file.h"
#include "io/env.h"
#include "io/index_file.h"

namespace kvindex {

struct MergeRequest {
  Env* env = nullptr;
  // Path of the output file (a stale file there is overwritten).
  std::string path;
  Schema schema;
  // Newest binding of each key of the log. Not modified during the merge.
  const LogTable* log = nullptr;
  // The current data file, or nullptr.
  const DataFile* data = nullptr;
  // Generation stamped in the output header.
  int64_t generation = 0;
  // Bindings for which keep(key, value) is false are dropped. Optional.
  std::function<bool(absl::string_view, absl::string_view)> keep;
  // Checked between records: once true the merge stops with kAborted.
  const std::atomic<bool>* cancel = nullptr;
  // Called once after the first data record was handled (test hook).
  std::function<absl::Status()> after_first_entry;
  // Whether runs of data records may be copied as they are (see above); false
  // handles every record one by one.
  bool copy_runs = true;
};

struct MergeResult {
  // The output, flushed (not yet fsynced) with its fan-out table written.
  std::unique_ptr<IndexFile> file;
  uint64_t entries = 0;
  // The bytes of the output's key filter (see KeyFilter), once the output is
  // committed as `data` with the request's generation. Empty without entries.
  std::string filter;
  // Whether runs of data records were copied as they are.
  bool copied_runs = false;
};

absl::StatusOr<MergeResult> WriteMerge(const MergeRequest& request);

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_MERGE_H_
