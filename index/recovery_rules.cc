#include "index/recovery_rules.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvindex {
namespace {

// g + 1 without overflow (generations are at most FileHeader::kMaxGeneration,
// far below the limit, but a damaged one need not be).
bool IsNext(int64_t g, int64_t after) {
  return after < std::numeric_limits<int64_t>::max() && g == after + 1;
}

}  // namespace

absl::StatusOr<DataRecovery> PlanDataRecovery(const DataFacts& f) {
  const int64_t d = f.data_generation;
  const int64_t l = f.log_generation;
  if (d == l) return DataRecovery::kKeep;
  if (IsNext(d, l)) {
    if (f.log_async_generation == d) return DataRecovery::kFinishMergeCommit;
    return absl::DataLossError(absl::StrCat(
        f.data_path, ": header field generation: ", d,
        " is one ahead of the log's (", l,
        "), which only a merge cut short before its log reset leaves, but "
        "that merge's log_async (generation ",
        d, ") is ",
        f.log_async_generation.has_value()
            ? absl::StrCat("at generation ", *f.log_async_generation)
            : std::string("missing"),
        ": a damaged header; nothing was changed"));
  }
  if (IsNext(l, d)) {
    if (f.log_records == 0 && f.clear_marker_generation == l) {
      return DataRecovery::kRemoveCleared;
    }
    const std::string against =
        f.log_records != 0 ? absl::StrCat("the log holds ", f.log_records,
                                          " records written since")
        : f.clear_marker_generation.has_value()
            ? absl::StrCat("the clear marker is at generation ",
                           *f.clear_marker_generation)
            : std::string("there is no clear marker");
    return absl::DataLossError(absl::StrCat(
        f.data_path, ": header field generation: ", d,
        " is one behind the log's (", l,
        "), which only a clear cut short after its log reset leaves, but ",
        against, ": a damaged header; nothing was changed"));
  }
  return absl::DataLossError(absl::StrCat(
      f.data_path, ": header field generation: ", d, " next to the log's (", l,
      ") is a state no merge or clear leaves (the data file is at the log's "
      "generation, one ahead or one behind): a damaged header; nothing was "
      "changed"));
}

absl::StatusOr<bool> PlanLogAsyncRecovery(const LogAsyncFacts& f) {
  const int64_t a = f.log_async_generation;
  const int64_t l = f.log_generation;
  if (IsNext(a, l)) return true;
  if (a == l) {
    if (f.committed_generation == l) return true;
    if (f.committed_generation < l) return false;
  }
  // A merge committed and reset the log to `a` but failed before its copy;
  // then a clear to `l` reset the log again and was cut before it removed
  // log_async: what log_async holds was written before the clear.
  if (IsNext(l, a) && f.clear_marker_generation == l &&
      f.committed_generation < l) {
    return false;
  }
  return absl::DataLossError(absl::StrCat(
      f.log_async_path, ": header field generation: ", a,
      " next to the log's (", l, ") and the last merge commit's (",
      f.committed_generation,
      ") is a state no merge or clear leaves (log_async is one ahead of the "
      "log, or at its generation, or one behind it with the marker of a "
      "clear to the log's generation): a damaged header; nothing was "
      "changed"));
}

}  // namespace kvindex
