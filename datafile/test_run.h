// Writes a run (a data file with its key filter and checksum sidecar) holding given entries, the
// way a merge writes one: for tests of the packages that read runs and cannot
// see the log. Test-only.
#ifndef KVINDEX_DATAFILE_TEST_RUN_H_
#define KVINDEX_DATAFILE_TEST_RUN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "datafile/data_file.h"
#include "io/env.h"
#include "rapidcheck.h"

namespace kvindex {

// Writes `entries` (each key then value; a later entry of a key replaces an
// earlier one) to a run at `path` with `generation`, and its filter next to
// it (and its checksum sidecar), then opens it. nullptr when no entry is left, as for a data file.
absl::StatusOr<std::shared_ptr<const DataFile>> WriteTestRun(
    Env* env, const Schema& schema, const std::string& path,
    const std::vector<std::string>& entries, int64_t generation);

namespace test {

// Runs of the small records of testing/keys.h: key number k is SmallKey(k),
// value number v is SmallValue(v).

// Twelve bits of a SmallKey: SmallKey(i) hashes to i & 0xfff, so keys i,
// i + 4096 and i + 8192 collide, and a run of a few thousand keys has a fan-out
// table of several buckets. Use with hash_bits = 12.
uint64_t MidHash(absl::string_view key);

// Small records hashed by TinyHash (2 bits: SmallKey(i) hashes to i & 3) or by
// MidHash (12 bits).
Schema TinySchema();
Schema MidSchema();

// Bindings of key numbers to value numbers, oldest first.
using SmallBatch = std::vector<std::pair<uint32_t, uint32_t>>;

// WriteTestRun of the small records of `batch`.
absl::StatusOr<std::shared_ptr<const DataFile>> WriteSmallTestRun(
    Env* env, const Schema& schema, const std::string& path,
    const SmallBatch& batch, int64_t generation);

// Batches for properties: key numbers below `pool`, with `mid` (MidSchema)
// also those plus 4096 or 8192, which share their MidHash; value numbers below
// 10.
rc::Gen<SmallBatch> GenSmallBatch(bool mid, uint32_t pool);

}  // namespace test
}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_TEST_RUN_H_
