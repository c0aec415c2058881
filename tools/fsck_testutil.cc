#include "tools/fsck_testutil.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "fan/fan.h"
#include "filter/key_filter.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace fsck_testing {

std::string Header(int64_t offset, int64_t generation, int64_t fan_size,
                   absl::string_view version) {
  std::string h(32, '\0');
  PutBigEndian64(&h, 0, static_cast<uint64_t>(offset));
  h.replace(8, 8, std::string(version).substr(0, 8));
  h.resize(32, '\0');
  PutBigEndian64(&h, 16, static_cast<uint64_t>(generation));
  PutBigEndian64(&h, 24, static_cast<uint64_t>(fan_size));
  return h;
}

std::vector<Record> MakeRecords(const Schema& schema, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> printable(33, 126);
  absl::flat_hash_set<std::string> keys;
  std::vector<Record> out;
  while (static_cast<int>(out.size()) < n) {
    Record r;
    for (size_t i = 0; i < schema.key_size; ++i) {
      r.key.push_back(static_cast<char>(printable(rng)));
    }
    for (size_t i = 0; i < schema.value_size; ++i) {
      r.value.push_back(static_cast<char>(printable(rng)));
    }
    if (keys.insert(r.key).second) out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> SortByHash(const Schema& schema,
                               std::vector<Record> records) {
  std::stable_sort(records.begin(), records.end(),
                   [&](const Record& a, const Record& b) {
                     return schema.hash(a.key) < schema.hash(b.key);
                   });
  return records;
}

uint64_t FanSlots(const Schema& schema, uint64_t records) {
  return uint64_t{1} << Fanout::BitsFor(schema.hash_bits, schema.entry_size(),
                                        records);
}

uint64_t DataRecordPos(const Schema& schema, uint64_t records, uint64_t i) {
  return 32 + 8 * FanSlots(schema, records) + i * schema.entry_size();
}

std::string DataFile(const Schema& schema, const std::vector<Record>& records,
                     int64_t generation) {
  const size_t entry = schema.entry_size();
  FanoutBuilder builder(schema.hash_bits, entry, records.size());
  std::string body;
  for (size_t i = 0; i < records.size(); ++i) {
    builder.Update(schema.hash(records[i].key), i * entry);
    body += records[i].key;
    body += records[i].value;
  }
  const std::string table = std::move(builder).Finish().Export();
  return Header(static_cast<int64_t>(body.size()), generation,
                static_cast<int64_t>(table.size())) +
         table + body;
}

std::string LogFile(const Schema& schema, const std::vector<Record>& records,
                    int64_t generation) {
  std::string body;
  for (const Record& r : records) body += r.key + r.value;
  (void)schema;
  return Header(static_cast<int64_t>(body.size()), generation, 0) + body;
}

void PutBigEndian64(std::string* bytes, size_t pos, uint64_t v) {
  if (bytes->size() < pos + 8) bytes->resize(pos + 8, '\0');
  absl::big_endian::Store64(&(*bytes)[pos], v);
}

namespace {

// The header fields of a data file's bytes.
struct DataShape {
  int64_t generation = 0;
  uint64_t records = 0;
  uint64_t fan_size = 0;
};

DataShape ShapeOf(const Schema& schema, absl::string_view data) {
  DataShape shape;
  shape.records = absl::big_endian::Load64(data.data()) / schema.entry_size();
  shape.generation =
      static_cast<int64_t>(absl::big_endian::Load64(data.data() + 16));
  shape.fan_size = absl::big_endian::Load64(data.data() + 24);
  return shape;
}

}  // namespace

std::string FilterFile(const Schema& schema, absl::string_view data,
                       const std::vector<Record>& keys) {
  const DataShape shape = ShapeOf(schema, data);
  const size_t entry = schema.entry_size();
  const size_t first = 32 + shape.fan_size;
  const absl::string_view fanout = data.substr(32, shape.fan_size);
  const absl::string_view first_record = data.substr(first, entry);
  const absl::string_view last_record =
      data.substr(first + (shape.records - 1) * entry, entry);
  KeyFilterBuilder builder(shape.records, schema.hash_bits);
  for (const Record& r : keys) builder.Add(r.key, schema.hash(r.key));
  return builder.Finish(FilterTargetOf(shape.generation, shape.records,
                                       first_record, last_record, fanout));
}

RunEntry RunEntryOf(const Schema& schema, uint64_t id, uint32_t slot,
                    absl::string_view data) {
  const DataShape shape = ShapeOf(schema, data);
  RunEntry entry;
  entry.id = id;
  entry.generation = shape.generation;
  entry.records = shape.records;
  entry.bytes = data.size();
  entry.slot = slot;
  return entry;
}

std::string NewRoot(absl::string_view name, bool with_index) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  static int counter = 0;
  const std::string root =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "-", ++counter);
  std::string cmd = absl::StrCat("rm -rf '", root, "'");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(::mkdir(root.c_str(), 0755), 0) << root;
  if (with_index) {
    EXPECT_EQ(::mkdir((root + "/index").c_str(), 0755), 0) << root;
  }
  return root;
}

void WriteStoreFile(const std::string& root, absl::string_view name,
                    absl::string_view bytes) {
  const std::string path = absl::StrCat(root, "/index/", name);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string ReadStoreFile(const std::string& root, absl::string_view name) {
  const std::string path = absl::StrCat(root, "/index/", name);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace fsck_testing
}  // namespace kvindex
