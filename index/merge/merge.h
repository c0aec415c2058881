// The streaming merge: the hash-sorted newest bindings of the log and the
// records of the old data file, merged in hash order into a new `merge` file
// with its fan-out table.
//
// A log binding overrides every data record of the same key (all data records
// with the same hash are checked against all log bindings with that hash). A
// filter applies to the surviving (newest) binding of each key only, so a
// filtered-out log binding never lets an older data value come back.
//
// The output is built under its own name and only renamed over `data` by the
// caller; on cancel or error the partial file is removed and nothing else
// changes.
#ifndef KVINDEX_INDEX_MERGE_MERGE_H_
#define KVINDEX_INDEX_MERGE_MERGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/data/schema.h"
#include "index/log/log_table.h"
#include "index/merge/data_file.h"
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
};

struct MergeResult {
  // The output, flushed (not yet fsynced) with its fan-out table written.
  std::unique_ptr<IndexFile> file;
  uint64_t entries = 0;
  // The bytes of the output's key filter (see KeyFilter), once the output is
  // committed as `data` with the request's generation. Empty without entries.
  std::string filter;
};

absl::StatusOr<MergeResult> WriteMerge(const MergeRequest& request);

}  // namespace kvindex

#endif  // KVINDEX_INDEX_MERGE_MERGE_H_
