// Test helpers for index-fsck: store files laid out byte by byte
// (docs/format.md §3), so the checker is tested against the format itself
// rather than against the writer.
#ifndef KVINDEX_TOOLS_FSCK_TESTUTIL_H_
#define KVINDEX_TOOLS_FSCK_TESTUTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "runset/manifest.h"

namespace kvindex {
namespace fsck_testing {

struct Record {
  std::string key;
  std::string value;
};

// The 32-byte header: offset, version, generation, fan-out size.
std::string Header(int64_t offset, int64_t generation, int64_t fan_size,
                   absl::string_view version = "00000001");

// `n` records with distinct keys of printable bytes, deterministic in `seed`.
std::vector<Record> MakeRecords(const Schema& schema, int n, uint64_t seed);

// Records sorted by the schema's hash (stable).
std::vector<Record> SortByHash(const Schema& schema,
                               std::vector<Record> records);

// A data file: header (offset = all records) + fan-out table built with
// FanoutBuilder over the records as given (pass them sorted) + the records.
std::string DataFile(const Schema& schema, const std::vector<Record>& records,
                     int64_t generation);

// A log file: header with fan-out size 0 + the records in the given order.
std::string LogFile(const Schema& schema, const std::vector<Record>& records,
                    int64_t generation);

// Byte position of record i in a data file of `records` records (after the
// fan-out).
uint64_t DataRecordPos(const Schema& schema, uint64_t records, uint64_t i);
// Number of fan-out slots DataFile writes for `records` records.
uint64_t FanSlots(const Schema& schema, uint64_t records);

void PutBigEndian64(std::string* bytes, size_t pos, uint64_t v);

// The key filter (filter/key_filter.h) of the data file `data` (DataFile's
// bytes), holding the keys of `keys` (pass the file's records for a sound
// filter).
std::string FilterFile(const Schema& schema, absl::string_view data,
                       const std::vector<Record>& keys);

// The manifest entry of run `id` in slot `slot` whose file holds `data`
// (DataFile's bytes).
RunEntry RunEntryOf(const Schema& schema, uint64_t id, uint32_t slot,
                    absl::string_view data);

// A new empty directory under TEST_TMPDIR; with `with_index`, also its index/.
std::string NewRoot(absl::string_view name, bool with_index = true);
// Writes `bytes` to <root>/index/<name>.
void WriteStoreFile(const std::string& root, absl::string_view name,
                    absl::string_view bytes);
std::string ReadStoreFile(const std::string& root, absl::string_view name);

}  // namespace fsck_testing
}  // namespace kvindex

#endif  // KVINDEX_TOOLS_FSCK_TESTUTIL_H_
