// Checks of the data files a store holds, for the model-based property tests.
//
// A fan-out table that does not match its records, or a data file whose
// records are out of order in a way a find does not trip on, changes no
// answer: finds that miss in their bucket fall back to a search of the whole
// file (docs/design.md §4.6), and merges confirm the table against the records
// (§3.3). Only speed suffers, so the model cannot see it; these checks read the
// files themselves.
#ifndef KVINDEX_TESTS_INDEX_MODEL_DATA_FILES_H_
#define KVINDEX_TESTS_INDEX_MODEL_DATA_FILES_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "data/schema.h"

namespace kvindex {
namespace index_model_test {

// Whether a file of a store's index directory is a committed data file: the
// single-file layout's `data` or a tiered run `run.<id>` (not a filter, not a
// merge or compaction still being written).
bool IsDataFileName(absl::string_view name);

struct DataFileShape {
  uint64_t records = 0;
  uint64_t buckets = 0;  // slots of its fan-out table
};

// "" if the bytes of a data file are well formed (docs/format.md §3, §6): a
// header, a fan-out table of 2^k slots, records sorted by key hash with no key
// twice, and each slot equal to the one its records call for (the start of
// the last record of its bucket, or the slot before for an empty bucket).
// Otherwise the problems, one per line. `shape` (if given) gets the file's
// record and bucket counts.
std::string DataFileProblems(absl::string_view bytes, const Schema& schema,
                             DataFileShape* shape = nullptr);

}  // namespace index_model_test
}  // namespace kvindex

#endif  // KVINDEX_TESTS_INDEX_MODEL_DATA_FILES_H_
