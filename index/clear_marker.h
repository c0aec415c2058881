// The clear marker: `<root>/index/clear`, written (durably) by a clear before
// its commit point, the log reset to `generation`, and removed once the clear
// has removed everything older. It is the second fact that lets an open tell a
// clear cut after its commit point (the data file or manifest one generation
// behind an empty log: finish the clear) from a log whose generation was
// damaged (refuse, changing nothing): recovery_rules.h. The OCaml library
// neither writes nor reads it.
//
// Format: one line of text, "kvindex clear to generation <N>\n".
#ifndef KVINDEX_INDEX_CLEAR_MARKER_H_
#define KVINDEX_INDEX_CLEAR_MARKER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/env.h"

namespace kvindex {

// Path of the marker of the store whose files are in `dir` (`<root>/index`).
std::string ClearMarkerPath(const std::string& dir);

// Writes the marker for a clear to `generation`, durably (file and
// directory), replacing any.
absl::Status WriteClearMarker(Env* env, const std::string& dir,
                              int64_t generation);

// The generation of the marker, or nullopt without one. A marker that does
// not parse (cut short by a crash or an IO error before its clear's commit
// point, or damaged) is no evidence: nullopt too.
absl::StatusOr<std::optional<int64_t>> ReadClearMarker(Env* env,
                                                       const std::string& dir);

// Removes the marker if there is one, after a directory fsync that makes every
// earlier operation in `dir` durable (the removals of what the marker vouched
// for); the removal itself is durable with the next directory sync.
absl::Status RemoveClearMarker(Env* env, const std::string& dir);

}  // namespace kvindex

#endif  // KVINDEX_INDEX_CLEAR_MARKER_H_
