// Writes a run (a data file with its key filter) holding given entries, the
// way a merge writes one: for tests of the packages that read runs and cannot
// see the log. Test-only.
#ifndef KVINDEX_DATAFILE_TEST_RUN_H_
#define KVINDEX_DATAFILE_TEST_RUN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "io/env.h"

namespace kvindex {

// Writes `entries` (each key then value; a later entry of a key replaces an
// earlier one) to a run at `path` with `generation`, and its filter next to
// it, then opens it. nullptr when no entry is left, as for a data file.
absl::StatusOr<std::shared_ptr<const DataFile>> WriteTestRun(
    Env* env, const Schema& schema, const std::string& path,
    const std::vector<std::string>& entries, int64_t generation);

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_TEST_RUN_H_
