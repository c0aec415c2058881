// The recovery rules of a writer's open, from the generations in the files'
// headers (docs/design.md §10): which states a merge or clear cut short at
// any point leaves, and what the open does to finish or undo it. Destructive
// steps (resetting the log, deleting the data file or log_async) are taken
// only on positive evidence from two files; generations that no merge or clear
// leaves (one damaged header field can make them) are kDataLoss naming the
// file, and the open then changes nothing. index-fsck reports the same states
// with the same rules.
#ifndef KVINDEX_INDEX_RECOVERY_RULES_H_
#define KVINDEX_INDEX_RECOVERY_RULES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace kvindex {

// The last merge commit on disk (the single-file layout's data file, the
// tiered layout's manifest) next to the log.
enum class DataRecovery {
  kKeep,               // the commit matches the log (or there is none)
  kFinishMergeCommit,  // a merge committed (renamed its output over `data`,
                       // or wrote its manifest) and was cut before its log
                       // reset: reset the log to its generation
  kRemoveCleared,      // a clear was cut after its log reset: remove what the
                       // commit names (`data`; the manifest's runs)
};

struct DataFacts {
  std::string data_path;    // the data file's or manifest's, for messages
  int64_t data_generation;  // its generation
  int64_t log_generation;
  uint64_t log_records;  // records the log holds
  // log_async's generation, if the file exists (and is not shorter than a
  // header).
  std::optional<int64_t> log_async_generation;
  // The clear marker's generation, if there is one (clear_marker.h).
  std::optional<int64_t> clear_marker_generation;
};

// kFinishMergeCommit needs the merge's log_async (the commit's generation)
// next to a log one generation behind; kRemoveCleared an empty log one
// generation ahead (a clear resets the log last, with nothing after it) and
// the clear's marker at the log's generation.
absl::StatusOr<DataRecovery> PlanDataRecovery(const DataFacts& facts);

struct LogAsyncFacts {
  std::string log_async_path;  // for messages
  int64_t log_async_generation;
  int64_t log_generation;
  // The generation of the last merge commit on disk (the data file's or the
  // manifest's; -1 without either), after PlanDataRecovery's step.
  int64_t committed_generation;
  // The clear marker's generation, if there is one (clear_marker.h).
  std::optional<int64_t> clear_marker_generation = std::nullopt;
};

// Whether a log_async found at open holds writes to copy into the log (true:
// its merge was cut before its commit, or after it but before the copy) or was
// left by a clear (false: it is removed). A merge creates it one generation
// ahead of the log; a clear leaves it at the log's generation with no merge
// committed at that generation, or one behind the log when the merge had
// already reset the log and the clear came before the copy: then the clear's
// marker at the log's generation is the second fact.
absl::StatusOr<bool> PlanLogAsyncRecovery(const LogAsyncFacts& facts);

}  // namespace kvindex

#endif  // KVINDEX_INDEX_RECOVERY_RULES_H_
