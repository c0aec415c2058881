#include "tools/fsck.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/schema.h"
#include "filter/data_sums.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/index_file.h"
#include "nlohmann/json.hpp"
#include "runset/manifest.h"
#include "tools/fsck_testutil.h"

namespace kvindex {
namespace fsck {
namespace {

using fsck_testing::DataFile;
using fsck_testing::DataRecordPos;
using fsck_testing::FanSlots;
using fsck_testing::FilterFile;
using fsck_testing::Header;
using fsck_testing::LogFile;
using fsck_testing::MakeRecords;
using fsck_testing::NewRoot;
using fsck_testing::PutBigEndian64;
using fsck_testing::ReadStoreFile;
using fsck_testing::Record;
using fsck_testing::RunEntryOf;
using fsck_testing::SortByHash;
using fsck_testing::WriteStoreFile;

// The CLI test store of the OCaml library (docs/format.md §3.5): 20-byte keys
// and values.
Options Opts20() {
  Options o;
  o.key_size = 20;
  o.value_size = 20;
  return o;
}

Schema SchemaOf(const Options& o) {
  absl::StatusOr<Schema> s = SchemaFor(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

constexpr int kDataRecords = 909;
constexpr int kLogRecords = 92;

// data: 909 records (36 360 bytes, 16 fan-out slots), log: 92 records, both
// generation 9, and a lock holding a PID: the shape of the worked example of
// docs/format.md §3.5.
std::string CleanStore(absl::string_view name, const Options& o = Opts20()) {
  const Schema s = SchemaOf(o);
  const std::string root = NewRoot(name);
  std::vector<Record> all = MakeRecords(s, kDataRecords + kLogRecords, 7);
  std::vector<Record> data(all.begin(), all.begin() + kDataRecords);
  std::vector<Record> log(all.begin() + kDataRecords, all.end());
  WriteStoreFile(root, "data", DataFile(s, SortByHash(s, data), 9));
  WriteStoreFile(root, "log", LogFile(s, log, 9));
  WriteStoreFile(root, "lock", "12345");
  return root;
}

Report Check(const std::string& root, const Options& o = Opts20()) {
  absl::StatusOr<Report> r = IntegrityCheck(Env::Posix(), root, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : Report();
}

std::string Dump(const Report& r) {
  std::vector<std::string> lines;
  for (const Problem& p : r.problems) lines.push_back(FormatProblem(p));
  for (const std::string& n : r.notes) lines.push_back("note: " + n);
  return absl::StrJoin(lines, "\n");
}

// The problems about file `name` at byte `offset` whose message contains
// `text`.
int CountAt(const Report& r, const std::string& root, absl::string_view name,
            absl::optional<uint64_t> offset, absl::string_view text,
            Severity severity = Severity::kError) {
  int n = 0;
  for (const Problem& p : r.problems) {
    if (p.path == absl::StrCat(root, "/index/", name) && p.offset == offset &&
        p.severity == severity && absl::StrContains(p.message, text)) {
      ++n;
    }
  }
  return n;
}

TEST(HumanSize, TruncatesToOneDecimalInBinaryUnits) {
  EXPECT_EQ(HumanSize(0), "0.0 B");
  EXPECT_EQ(HumanSize(40), "40.0 B");
  EXPECT_EQ(HumanSize(1023), "1023.0 B");
  EXPECT_EQ(HumanSize(1024), "1.0 KiB");
  EXPECT_EQ(HumanSize(3712), "3.6 KiB");    // 3.625: truncated, not rounded
  EXPECT_EQ(HumanSize(36520), "35.6 KiB");  // 35.66
  EXPECT_EQ(HumanSize(1048575), "1023.9 KiB");
  EXPECT_EQ(HumanSize(int64_t{1} << 20), "1.0 MiB");
  EXPECT_EQ(HumanSize(int64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(HumanSize(int64_t{1} << 40), "1.0 TiB");
  EXPECT_EQ(HumanSize(int64_t{1} << 50), "1.0 PiB");
  EXPECT_EQ(HumanSize(int64_t{1} << 60), "1.0 EiB");
}

// The helper lays out headers exactly as the worked example of an OCaml store
// in docs/format.md §3.5: the log of the CLI test store.
TEST(TestUtil, HeaderMatchesTheSpecExample) {
  const std::string expected(
      "\x00\x00\x00\x00\x00\x00\x0e\x60"
      "00000001"
      "\x00\x00\x00\x00\x00\x00\x00\x09"
      "\x00\x00\x00\x00\x00\x00\x00\x00",
      32);
  EXPECT_EQ(Header(3680, 9, 0), expected);
  const Schema s = SchemaOf(Opts20());
  // 909 records x 40 B -> 16 fans (docs/format.md §6.2).
  EXPECT_EQ(FanSlots(s, 909), 16u);
  EXPECT_EQ(DataRecordPos(s, 909, 0), 160u);
}

TEST(SchemaFor, ValidatesOptions) {
  Options o;
  absl::StatusOr<Schema> s = SchemaFor(o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->key_size, 32u);
  EXPECT_EQ(s->value_size, 13u);
  EXPECT_EQ(s->hash_bits, 64);
  EXPECT_EQ(s->hash("abc"), Xxh3Hash("abc", 64));
  EXPECT_EQ(HashName(o), "xxh3-64");

  o.hash_bits = 20;
  s = SchemaFor(o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->hash("abc"), Xxh3Hash("abc", 20));

  o.hash = HashKind::kOcaml;
  o.hash_bits = 0;
  s = SchemaFor(o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->hash_bits, 30);
  EXPECT_EQ(s->hash("abc"), 767105082u);
  EXPECT_EQ(HashName(o), "ocaml-30");

  o.hash_bits = 29;  // OCaml hashes have 30 bits
  EXPECT_EQ(SchemaFor(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.hash_bits = 65;
  EXPECT_EQ(SchemaFor(o).status().code(), absl::StatusCode::kInvalidArgument);
  Options zero;
  zero.key_size = 0;
  EXPECT_EQ(SchemaFor(zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IntegrityCheck(Env::Posix(), "/nonexistent", zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stat(Env::Posix(), "/nonexistent", zero).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FormatProblem, NamesFileAndOffset) {
  Problem p;
  p.path = "/s/index/data";
  p.offset = 160;
  p.message = "bad";
  EXPECT_EQ(FormatProblem(p), "error: /s/index/data: byte 160: bad");
  p.severity = Severity::kWarning;
  p.offset = absl::nullopt;
  EXPECT_EQ(FormatProblem(p), "warning: /s/index/data: bad");
}

TEST(Stat, JsonHasTheOcamlShape) {
  const std::string root = CleanStore("stat_json");
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), root, Opts20());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->problems.empty());
  EXPECT_EQ(StatJson(*st),
            R"({
  "entry_size": "40.0 B",
  "entry_bytes": 40,
  "files": {
    "data": {
      "size": "35.6 KiB",
      "offset": 36360,
      "generation": 9,
      "fanout_size": "128.0 B",
      "entries": 909,
      "bytes": 36520,
      "fanout_bytes": 128
    },
    "log": {
      "size": "3.6 KiB",
      "offset": 3680,
      "generation": 9,
      "fanout_size": "0.0 B",
      "entries": 92,
      "bytes": 3712,
      "fanout_bytes": 0
    },
    "lock": "12345"
  }
}
)");
  EXPECT_EQ(ExitCodeFor(st->problems, false), kExitOk);
}

TEST(Stat, TextListsEveryFile) {
  const std::string root = CleanStore("stat_text");
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), root, Opts20());
  ASSERT_TRUE(st.ok());
  const std::string text = StatText(*st);
  EXPECT_TRUE(absl::StrContains(
      text,
      "data       version 00000001, generation 9, offset 36360 (909 entries), "
      "fan-out 128 B (16 slots), 36520 B on disk (35.6 KiB)\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "log_async  absent\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "lock       \"12345\"\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "entry size 40 B (key 20 + value 20)"))
      << text;
}

TEST(Stat, MissingStorePrintsNoFiles) {
  const std::string root = NewRoot("stat_missing", /*with_index=*/false);
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), root, Opts20());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(StatJson(*st), R"({
  "entry_size": "40.0 B",
  "entry_bytes": 40,
  "files": {}
}
)");
  ASSERT_EQ(st->problems.size(), 1u);
  EXPECT_EQ(st->problems[0].category, Category::kNoStore);
  EXPECT_EQ(st->problems[0].path, root + "/index");
  EXPECT_EQ(st->problems[0].message, "no such store");
  EXPECT_EQ(ExitCodeFor(st->problems, false), kExitNoStore);
}

TEST(Stat, UnreadableHeadersAreReportedInTheJson) {
  const std::string root = NewRoot("stat_bad");
  WriteStoreFile(root, "log", std::string(20, 'x'));
  WriteStoreFile(root, "data", Header(0, 1, 0, "00000002"));
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), root, Opts20());
  ASSERT_TRUE(st.ok());
  const std::string json = StatJson(*st);
  EXPECT_TRUE(absl::StrContains(
      json,
      "\"log\": {\n      \"size\": \"20.0 B\",\n      \"bytes\": 20,\n"
      "      \"error\": \"truncated header"))
      << json;
  EXPECT_TRUE(absl::StrContains(json, "unsupported version '00000002'"))
      << json;
  EXPECT_EQ(ExitCodeFor(st->problems, false), kExitForeign);
}

TEST(Stat, JsonStringsAreAscii) {
  const std::string root = CleanStore("stat_json_bytes");
  // A damaged lock: a PID, a line break, U+00E9 in UTF-8 between quotes, a
  // tab, a control byte and a byte that is not UTF-8.
  WriteStoreFile(root, "lock", "12345\n\"\xc3\xa9\"\t\x01\xff");
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), root, Opts20());
  ASSERT_TRUE(st.ok()) << st.status();
  const std::string json = StatJson(*st);
  EXPECT_TRUE(absl::EndsWith(json, R"(
    "lock": "12345\n\"\u00e9\"\t\u0001\ufffd"
  }
}
)")) << json;
  const nlohmann::json parsed =
      nlohmann::json::parse(json, /*cb=*/nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(parsed.is_discarded()) << json;
  // The byte that is not UTF-8 reads back as U+FFFD.
  EXPECT_EQ(parsed.at("files").at("lock"),
            "12345\n\"\xc3\xa9\"\t\x01\xef\xbf\xbd");
}

TEST(IntegrityCheck, CleanStorePasses) {
  const std::string root = CleanStore("clean");
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, true), kExitOk);
  const std::string dump = Dump(r);
  EXPECT_TRUE(absl::StrContains(dump,
                                "data: 909 records, sorted by xxh3-64, no "
                                "repeated key, fan-out 16 slots"))
      << dump;
  EXPECT_TRUE(absl::StrContains(dump, "log: 92 records")) << dump;
  EXPECT_TRUE(absl::StrContains(dump, "lock: PID 12345")) << dump;
}

TEST(IntegrityCheck, OcamlStoreNeedsTheOcamlHash) {
  Options o = Opts20();
  o.hash = HashKind::kOcaml;
  const std::string root = CleanStore("ocaml", o);
  Report r = Check(root, o);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "sorted by ocaml-30")) << Dump(r);

  // Checked with the default hash, the order is wrong; the report says which
  // hash fits.
  Report wrong = Check(root);
  EXPECT_EQ(ExitCodeFor(wrong.problems, false), kExitDamaged);
  EXPECT_TRUE(absl::StrContains(
      Dump(wrong),
      "hint: the records of data are sorted by the ocaml hash: "
      "run again with --hash ocaml"))
      << Dump(wrong);
}

TEST(IntegrityCheck, EmptyDataAndLogPass) {
  const Schema s = SchemaOf(Opts20());
  const std::string root = NewRoot("empty");
  WriteStoreFile(root, "data", DataFile(s, {}, 3));  // 1 slot, no records
  WriteStoreFile(root, "log", LogFile(s, {}, 3));
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  // A header-only data file without a fan-out table (what a first merge
  // creates).
  WriteStoreFile(root, "data", Header(0, 3, 0));
  r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  // No data file at all: a store that has not merged yet.
  ASSERT_EQ(std::remove((root + "/index/data").c_str()), 0);
  r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "data: absent")) << Dump(r);
}

TEST(IntegrityCheck, UnsortedRecords) {
  const std::string root = CleanStore("unsorted");
  const Schema s = SchemaOf(Opts20());
  std::string data = ReadStoreFile(root, "data");
  // Swap records 100 and 101: record 101 then holds the smaller hash.
  const size_t a = DataRecordPos(s, kDataRecords, 100);
  const size_t e = s.entry_size();
  std::string r100 = data.substr(a, e);
  data.replace(a, e, data.substr(a + e, e));
  data.replace(a + e, e, r100);
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", a + e, "record 101 is out of order"), 1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
  EXPECT_TRUE(absl::StrContains(Dump(r), "1 out of order for xxh3-64"))
      << Dump(r);
}

TEST(IntegrityCheck, ReportsAreCappedPerKind) {
  const Schema s = SchemaOf(Opts20());
  const std::string root = NewRoot("capped");
  std::vector<Record> recs = SortByHash(s, MakeRecords(s, 200, 3));
  std::reverse(recs.begin(), recs.end());  // 199 records out of order
  std::string data = LogFile(s, recs, 1);  // records only; add a 1-slot table
  std::string table(8, '\0');
  data = Header(200 * 40, 1, 8) + table + data.substr(32);
  WriteStoreFile(root, "data", data);
  Options o = Opts20();
  o.max_reports = 3;
  Report r = Check(root, o);
  int order = 0;
  for (const Problem& p : r.problems) {
    if (absl::StrContains(p.message, "is out of order")) ++order;
  }
  EXPECT_EQ(order, 3) << Dump(r);
  EXPECT_EQ(CountAt(r, root, "data", absl::nullopt,
                    "... and 196 more records out of order (199 in all)"),
            1)
      << Dump(r);
}

TEST(IntegrityCheck, FanoutSlotTooSmallHidesRecords) {
  const std::string root = CleanStore("fan_small");
  const Schema s = SchemaOf(Opts20());
  std::string data = ReadStoreFile(root, "data");
  const uint64_t slot3 = absl::big_endian::Load64(&data[32 + 3 * 8]);
  const uint64_t slot2 = absl::big_endian::Load64(&data[32 + 2 * 8]);
  ASSERT_GE(slot3 - s.entry_size(), slot2);  // bucket 3 holds >= 2 records
  PutBigEndian64(&data, 32 + 3 * 8, slot3 - s.entry_size());
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  EXPECT_EQ(
      CountAt(r, root, "data", 32 + 3 * 8,
              absl::StrCat("fan-out slot 3 holds ", slot3 - 40, ", expected ",
                           slot3, ": 1 record(s) cannot be found by lookups")),
      1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, FanoutSlotTooLargeHidesTheNextBucket) {
  const std::string root = CleanStore("fan_large");
  std::string data = ReadStoreFile(root, "data");
  const uint64_t slot5 = absl::big_endian::Load64(&data[32 + 5 * 8]);
  const uint64_t slot6 = absl::big_endian::Load64(&data[32 + 6 * 8]);
  // Slot 5 pointing at bucket 6's last record: bucket 6's other records fall
  // below its range.
  PutBigEndian64(&data, 32 + 5 * 8, slot6);
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 32 + 5 * 8,
                    absl::StrCat("fan-out slot 5 holds ", slot6, ", expected ",
                                 slot5)),
            1)
      << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "cannot be found by lookups"));
}

TEST(IntegrityCheck, FanoutSlotsThatBreakTheTableRules) {
  const std::string root = CleanStore("fan_rules");
  std::string data = ReadStoreFile(root, "data");
  const std::string clean = data;
  // Not a multiple of the entry size.
  PutBigEndian64(&data, 32 + 4 * 8,
                 absl::big_endian::Load64(&data[32 + 4 * 8]) + 1);
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 32 + 4 * 8,
                    "is not a multiple of the entry size 40"),
            1)
      << Dump(r);
  // Decreasing.
  data = clean;
  PutBigEndian64(&data, 32 + 7 * 8, 0);
  WriteStoreFile(root, "data", data);
  r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 32 + 7 * 8, "fan-out slot 7 (0)"), 1)
      << Dump(r);
  EXPECT_EQ(
      CountAt(r, root, "data", 32 + 8 * 8, "is smaller than the previous slot"),
      0)
      << Dump(r);  // slot 8 follows slot 6, not the damaged 7
  // Past the records.
  data = clean;
  PutBigEndian64(&data, 32 + 15 * 8, 36360);
  WriteStoreFile(root, "data", data);
  r = Check(root);
  EXPECT_EQ(
      CountAt(r, root, "data", 32 + 15 * 8, "points past the last record"), 1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, FanoutSizeProblems) {
  const std::string root = CleanStore("fan_size");
  std::string data = ReadStoreFile(root, "data");
  // 3 slots: not a power of two.
  std::string three = data;
  PutBigEndian64(&three, 24, 24);
  WriteStoreFile(root, "data", three);
  Report r = Check(root);
  EXPECT_EQ(
      CountAt(r, root, "data", 24, "3 slots, which is not a power of two"), 1)
      << Dump(r);
  // Not a multiple of 8.
  std::string odd = data;
  PutBigEndian64(&odd, 24, 12);
  WriteStoreFile(root, "data", odd);
  r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 24, "invalid fan-out size 12"), 1)
      << Dump(r);
  // Records but no table.
  const Schema s = SchemaOf(Opts20());
  std::vector<Record> recs = SortByHash(s, MakeRecords(s, 5, 1));
  WriteStoreFile(root, "data",
                 Header(200, 1, 0) + LogFile(s, recs, 1).substr(32));
  r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 24, "5 records but no fan-out table"), 1)
      << Dump(r);
  // Too many slots for the hash width.
  Options narrow = Opts20();
  narrow.hash_bits = 2;
  const Schema sn = SchemaOf(narrow);
  std::string big = Header(200, 1, 64) + std::string(64, '\0') +
                    LogFile(s, SortByHash(sn, recs), 1).substr(32);
  WriteStoreFile(root, "data", big);
  r = Check(root, narrow);
  EXPECT_EQ(CountAt(r, root, "data", 24, "more than 2^hash_bits"), 1)
      << Dump(r);
}

TEST(IntegrityCheck, OffsetBeyondTheFile) {
  const std::string root = CleanStore("offset_beyond");
  std::string data = ReadStoreFile(root, "data");
  PutBigEndian64(&data, 0, 36360 + 5 * 40);
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "data", 0,
                    "offset 36560 claims records up to byte 36720 but the file "
                    "ends at byte 36520 (200 bytes missing)"),
            1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, OffsetNotAMultipleOfTheEntrySize) {
  const std::string root = CleanStore("offset_misaligned");
  std::string log = ReadStoreFile(root, "log");
  PutBigEndian64(&log, 0, 3680 - 3);
  WriteStoreFile(root, "log", log);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", 0,
                    "offset 3677 is not a multiple of the entry size 40 (91 "
                    "records and 37 bytes)"),
            1)
      << Dump(r);
  // The 3 bytes past the offset are trailing garbage.
  EXPECT_EQ(CountAt(r, root, "log", 32 + 3677, "3 bytes of trailing garbage",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, TruncatedTrailingRecordIsAnError) {
  const std::string root = CleanStore("torn_record");
  std::string data = ReadStoreFile(root, "data");
  data.resize(data.size() - 7);  // the last record loses 7 bytes
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  const Schema s = SchemaOf(Opts20());
  EXPECT_EQ(CountAt(r, root, "data", 0, "(7 bytes missing)"), 1) << Dump(r);
  EXPECT_EQ(CountAt(r, root, "data", DataRecordPos(s, kDataRecords, 908),
                    "truncated record 908: only 33 of its 40 bytes"),
            1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, GarbagePastTheOffsetIsAWarning) {
  const std::string root = CleanStore("garbage");
  std::string log = ReadStoreFile(root, "log");
  log += std::string(17, 'g');  // a torn, uncommitted append
  WriteStoreFile(root, "log", log);
  Report r = Check(root);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  EXPECT_EQ(CountAt(r, root, "log", 3712, "17 bytes of trailing garbage",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitOk);
  EXPECT_EQ(ExitCodeFor(r.problems, true), kExitDamaged);
}

// A writer with log checksums grows its logs ahead of their records: zeros
// past a log's offset are no problem, but a byte that is not zero among them
// is still garbage.
TEST(IntegrityCheck, ZerosPastALogsOffsetAreReservedSpace) {
  const std::string root = CleanStore("reserved");
  std::string log = ReadStoreFile(root, "log");
  const std::string committed = log;
  log += std::string(300000, '\0');
  WriteStoreFile(root, "log", log);
  Report r = Check(root);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, true), kExitOk);

  log[committed.size() + 299990] = 'g';
  WriteStoreFile(root, "log", log);
  r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", 3712, "300000 bytes of trailing garbage",
                    Severity::kWarning),
            1)
      << Dump(r);
}

TEST(IntegrityCheck, DuplicateKey) {
  const Schema s = SchemaOf(Opts20());
  const std::string root = NewRoot("duplicate");
  std::vector<Record> recs = SortByHash(s, MakeRecords(s, 50, 9));
  Record again = recs[20];
  again.value = std::string(20, 'v');
  recs.insert(recs.begin() + 21, again);  // records 20 and 21 share a key
  WriteStoreFile(root, "data", DataFile(s, recs, 1));
  Report r = Check(root);
  EXPECT_EQ(
      CountAt(r, root, "data", DataRecordPos(s, 51, 21),
              absl::StrCat("record 21 repeats the key of record 20 (byte ",
                           DataRecordPos(s, 51, 20), ")")),
      1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, EqualHashesWithDifferentKeysAreFine) {
  // With 2 hash bits, most records share a hash with their neighbours.
  Options narrow = Opts20();
  narrow.hash_bits = 2;
  const Schema s = SchemaOf(narrow);
  const std::string root = NewRoot("collisions");
  WriteStoreFile(root, "data",
                 DataFile(s, SortByHash(s, MakeRecords(s, 300, 4)), 1));
  Report r = Check(root, narrow);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
}

TEST(IntegrityCheck, WrongVersionIsForeign) {
  const std::string root = CleanStore("version");
  std::string data = ReadStoreFile(root, "data");
  data.replace(8, 8, "00000002");
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  ASSERT_EQ(CountAt(r, root, "data", 8, "unsupported version '00000002'"), 1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitForeign);
}

TEST(IntegrityCheck, TruncatedHeader) {
  const std::string root = CleanStore("short_header");
  WriteStoreFile(root, "log", ReadStoreFile(root, "log").substr(0, 20));
  Report r = Check(root);
  EXPECT_EQ(
      CountAt(r, root, "log", 20,
              "truncated header: the file has 20 bytes, a header needs 32"),
      1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(IntegrityCheck, AHeaderOfZerosIsNamedAsSuch) {
  const std::string root = CleanStore("zero_header");
  WriteStoreFile(root, "log", std::string(32, '\0'));
  const Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", 0, "a header of zeros and nothing else"), 1)
      << Dump(r);
}

TEST(IntegrityCheck, NegativeOffset) {
  const std::string root = CleanStore("negative");
  std::string log = ReadStoreFile(root, "log");
  PutBigEndian64(&log, 0, static_cast<uint64_t>(int64_t{-40}));
  WriteStoreFile(root, "log", log);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", 0, "negative offset -40"), 1) << Dump(r);
}

TEST(IntegrityCheck, LogWithAFanoutSize) {
  const std::string root = CleanStore("log_fan");
  std::string log = ReadStoreFile(root, "log");
  PutBigEndian64(&log, 24, 40);
  PutBigEndian64(&log, 0, 3680 - 40);
  WriteStoreFile(root, "log", log);
  Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", 24, "a log has no fan-out table"), 1)
      << Dump(r);
}

TEST(IntegrityCheck, GenerationsAndLock) {
  const std::string root = CleanStore("generations");
  std::string data = ReadStoreFile(root, "data");
  PutBigEndian64(&data, 16, 4);
  WriteStoreFile(root, "data", data);
  WriteStoreFile(root, "lock", "not a pid");
  Report r = Check(root);
  // A writer refuses to open it (index/recovery_rules.h): an error.
  EXPECT_EQ(CountAt(r, root, "data", 16,
                    "generation: 4 next to the log's (9) is a state no merge "
                    "or clear leaves",
                    Severity::kError),
            1)
      << Dump(r);
  EXPECT_EQ(
      CountAt(r, root, "lock", 0, "does not hold a PID", Severity::kWarning), 1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
}

// The generations a merge or clear cut short leaves are notes (the next open
// finishes them); the same states without the evidence of a second file are
// errors, as the writer's open refuses them.
TEST(IntegrityCheck, GenerationsOfInterruptedCommitsAndTheirLookalikes) {
  const Schema s = SchemaOf(Opts20());
  struct Case {
    const char* name;
    int64_t data_generation;  // the log's is 9; -1: no data file
    bool empty_log;
    int64_t log_async_generation;  // -1: none
    int64_t marker;                // the clear marker's; -1: none
    const char* error_in;          // nullptr: no error
    const char* text;              // in the note or the error
  };
  const Case cases[] = {
      {"merge-cut", 10, false, 10, -1, nullptr, "a merge commit cut short"},
      {"merge-lookalike", 10, false, -1, -1, "data",
       "log_async (generation 10) is missing"},
      {"clear-cut", 8, true, -1, 9, nullptr, "a clear cut short"},
      {"clear-lookalike", 8, false, -1, 9, "data", "the log holds"},
      {"clear-without-marker", 8, true, -1, -1, "data",
       "there is no clear marker"},
      {"merge-running", 9, false, 10, -1, nullptr,
       "log_async: holds the writes of a merge cut short"},
      {"stale-async", 9, false, 7, -1, "log_async", "no merge or clear leaves"},
      // A merge reset the log to 8 and failed before copying log_async back;
      // a clear to 9 was cut after its log reset.
      {"clear-cut-after-merge-reset", 8, true, 8, 9, nullptr,
       "log_async: left by a clear cut short"},
      {"async-behind-without-marker", 9, true, 8, -1, "log_async",
       "no merge or clear leaves"},
      {"async-behind-no-data-no-marker", -1, true, 8, -1, "log_async",
       "no merge or clear leaves"},
      {"async-behind-no-data-marker-ahead", -1, true, 8, 10, "log_async",
       "no merge or clear leaves"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string root = CleanStore(absl::StrCat("gen-", c.name));
    if (c.data_generation < 0) {
      ASSERT_EQ(std::remove((root + "/index/data").c_str()), 0);
    } else {
      std::string data = ReadStoreFile(root, "data");
      PutBigEndian64(&data, 16, static_cast<uint64_t>(c.data_generation));
      WriteStoreFile(root, "data", data);
    }
    if (c.empty_log) WriteStoreFile(root, "log", LogFile(s, {}, 9));
    if (c.marker >= 0) {
      WriteStoreFile(
          root, "clear",
          absl::StrCat("kvindex clear to generation ", c.marker, "\n"));
    }
    if (c.log_async_generation >= 0) {
      WriteStoreFile(root, "log_async", LogFile(s, {}, c.log_async_generation));
    }
    Report r = Check(root);
    if (c.error_in == nullptr) {
      EXPECT_EQ(r.errors(), 0u) << Dump(r);
      EXPECT_TRUE(absl::StrContains(Dump(r), c.text)) << Dump(r);
    } else {
      EXPECT_EQ(r.errors(), 1u) << Dump(r);
      EXPECT_EQ(CountAt(r, root, c.error_in, 16, c.text, Severity::kError), 1)
          << Dump(r);
    }
  }
}

TEST(IntegrityCheck, LeftoverMergeIsOnlyHeaderChecked) {
  const std::string root = CleanStore("merge");
  const Schema s = SchemaOf(Opts20());
  // A crashed merge: records appended, fan-out table not written yet (zeros).
  std::vector<Record> recs = SortByHash(s, MakeRecords(s, 300, 5));
  std::string merge = DataFile(s, recs, 10);
  for (size_t i = 32; i < 32 + 8 * FanSlots(s, 300); ++i) merge[i] = '\0';
  WriteStoreFile(root, "merge", merge);
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "merge: 300 records; a leftover"))
      << Dump(r);
}

TEST(IntegrityCheck, LeftoverNextLogIsANote) {
  const std::string root = CleanStore("log_tmp");
  const Schema s = SchemaOf(Opts20());
  // A merge commit cut short while it built the next log.
  WriteStoreFile(root, "log_tmp", LogFile(s, MakeRecords(s, 7, 3), 10));
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "log_tmp: 7 records; a leftover"))
      << Dump(r);
}

TEST(IntegrityCheck, MissingStore) {
  const std::string root = NewRoot("missing", /*with_index=*/false);
  Report r = Check(root + "/nope");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].path, root + "/nope");
  EXPECT_EQ(r.problems[0].message, "no such directory");
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitNoStore);

  r = Check(root);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(FormatProblem(r.problems[0]),
            absl::StrCat("error: ", root, "/index: no such store"));
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitNoStore);

  const std::string empty = NewRoot("empty_index");
  r = Check(empty);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(absl::StrContains(r.problems[0].message, "none of data, log"));
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitNoStore);
}

TEST(IntegrityCheck, ProgressReachesTheEnd) {
  const std::string root = CleanStore("progress");
  uint64_t last_done = 0, last_total = 0;
  int calls = 0;
  absl::StatusOr<Report> r = IntegrityCheck(
      Env::Posix(), root, Opts20(),
      [&](absl::string_view label, uint64_t done, uint64_t total) {
        EXPECT_EQ(label, "data");
        EXPECT_GE(done, last_done);
        last_done = done;
        last_total = total;
        ++calls;
      });
  ASSERT_TRUE(r.ok());
  EXPECT_GE(calls, 1);
  EXPECT_EQ(last_done, 36360u);
  EXPECT_EQ(last_total, 36360u);
}

// ---- The tiered layout (runset/manifest.h) ----

// A tiered store laid out byte by byte: run.5 (100 records, generation 9,
// slot 0), run.3 (200 records, generation 7, slot 1) and `data` taken over as
// run 0 (400 records, generation 4, slot 3), each with a key filter holding
// its keys; a manifest at generation 9 with next id 6 and run 4 retired (its
// files deleted already); a log of 20 records at generation 9; a lock.
struct TieredStore {
  std::string root;
  Manifest manifest;
};

void WriteManifestFile(const std::string& root, const Manifest& m) {
  ASSERT_TRUE(CheckManifest(m, "test").ok()) << CheckManifest(m, "test");
  WriteStoreFile(root, "manifest", EncodeManifest(m));
}

TieredStore MakeTieredStore(absl::string_view name) {
  const Schema s = SchemaOf(Opts20());
  TieredStore t;
  t.root = NewRoot(name);
  const std::vector<Record> all = MakeRecords(s, 720, 11);
  struct Run {
    uint64_t id;
    uint32_t slot;
    int64_t generation;
    int first, count;
  };
  for (const Run& run : {Run{5, 0, 9, 0, 100}, Run{3, 1, 7, 100, 200},
                         Run{kDataRunId, 3, 4, 300, 400}}) {
    const std::vector<Record> records =
        SortByHash(s, std::vector<Record>(all.begin() + run.first,
                                          all.begin() + run.first + run.count));
    const std::string file = DataFile(s, records, run.generation);
    WriteStoreFile(t.root, RunFileName(run.id), file);
    WriteStoreFile(t.root, RunFileName(run.id) + ".filter",
                   FilterFile(s, file, records));
    t.manifest.runs.push_back(RunEntryOf(s, run.id, run.slot, file));
  }
  t.manifest.entry_size = 40;
  t.manifest.generation = 9;
  t.manifest.next_id = 6;
  t.manifest.retired = {4};
  WriteManifestFile(t.root, t.manifest);
  WriteStoreFile(
      t.root, "log",
      LogFile(s, std::vector<Record>(all.begin() + 700, all.end()), 9));
  WriteStoreFile(t.root, "lock", "12345");
  return t;
}

void RemoveStoreFile(const std::string& root, absl::string_view name) {
  const std::string path = absl::StrCat(root, "/index/", name);
  ASSERT_EQ(std::remove(path.c_str()), 0) << path;
}

// The size of a data file of `records` records (DataFile's).
uint64_t DataFileSize(uint64_t records) {
  return DataRecordPos(SchemaOf(Opts20()), records, records);
}

TEST(TieredIntegrityCheck, CleanStorePasses) {
  const TieredStore t = MakeTieredStore("tiered_clean");
  Report r = Check(t.root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, /*strict=*/true), kExitOk);
  const std::string dump = Dump(r);
  for (const char* note :
       {"manifest: generation 9, next id 6, 3 runs (run.5, run.3, data), "
        "retired ids 4",
        "run.5: 100 records, sorted by xxh3-64, no repeated key",
        "run.3: 200 records, sorted by xxh3-64, no repeated key",
        "data: 400 records, sorted by xxh3-64, no repeated key",
        "log: 20 records"}) {
    EXPECT_TRUE(absl::StrContains(dump, note)) << note << "\n" << dump;
  }
  // Each run's filter holds its keys.
  for (const char* filter :
       {"run.5.filter: ", "run.3.filter: ", "data.filter: "}) {
    EXPECT_EQ(std::count_if(r.notes.begin(), r.notes.end(),
                            [&](const std::string& note) {
                              return absl::StartsWith(note, filter) &&
                                     absl::EndsWith(note, "holds every key");
                            }),
              1)
        << filter << "\n"
        << dump;
  }
}

TEST(TieredStat, ListsTheManifestAndEachRunFile) {
  const TieredStore t = MakeTieredStore("tiered_stat");
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), t.root, Opts20());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->problems.empty());
  ASSERT_TRUE(st->manifest.has_value());
  EXPECT_EQ(*st->manifest, t.manifest);
  std::vector<std::string> names;
  for (const FileStat& f : st->files) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"data", "log", "run.5", "run.3"}));
  EXPECT_EQ(st->files[2].generation, 9);
  EXPECT_EQ(st->files[2].offset, 100 * 40);

  const std::string json = StatJson(*st);
  EXPECT_TRUE(absl::StrContains(
      json, absl::StrCat(R"(
    "run.3": {
      "size": ")",
                         HumanSize(static_cast<int64_t>(DataFileSize(200))),
                         R"(",
      "offset": 8000,
      "generation": 7,)")))
      << json;
  EXPECT_TRUE(absl::EndsWith(json, absl::StrCat(R"(
    "lock": "12345"
  },
  "manifest": {
    "generation": 9,
    "next_id": 6,
    "entry_bytes": 40,
    "runs": [
      {
        "id": 5,
        "file": "run.5",
        "slot": 0,
        "records": 100,
        "bytes": )",
                                                DataFileSize(100), R"(,
        "generation": 9
      },
      {
        "id": 3,
        "file": "run.3",
        "slot": 1,
        "records": 200,
        "bytes": )",
                                                DataFileSize(200), R"(,
        "generation": 7
      },
      {
        "id": 0,
        "file": "data",
        "slot": 3,
        "records": 400,
        "bytes": )",
                                                DataFileSize(400), R"(,
        "generation": 4
      }
    ],
    "retired": [
      4
    ]
  }
}
)"))) << json;

  const std::string text = StatText(*st);
  for (const std::string& line :
       {std::string("manifest   generation 9, next id 6, entry size 40 B, 3 "
                    "runs, retired ids 4\n"),
        absl::StrCat("  run 5: run.5, slot 0, 100 records, ", DataFileSize(100),
                     " B, generation 9\n"),
        absl::StrCat("  run 0: data, slot 3, 400 records, ", DataFileSize(400),
                     " B, generation 4\n"),
        std::string("run.3      version 00000001, generation 7, offset 8000 "
                    "(200 entries)")}) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n" << text;
  }
}

TEST(TieredStat, UndecodableManifestIsReported) {
  const TieredStore t = MakeTieredStore("tiered_stat_bad");
  std::string manifest = ReadStoreFile(t.root, "manifest");
  manifest[40] ^= 0x01;
  WriteStoreFile(t.root, "manifest", manifest);
  absl::StatusOr<StoreStat> st = Stat(Env::Posix(), t.root, Opts20());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->manifest.has_value());
  EXPECT_EQ(st->manifest_error,
            "manifest: checksum mismatch: the file is damaged");
  ASSERT_EQ(st->problems.size(), 1u);
  EXPECT_EQ(st->problems[0].path, t.root + "/index/manifest");
  EXPECT_TRUE(absl::StrContains(StatJson(*st), R"(
  "manifest": {
    "error": "manifest: checksum mismatch: the file is damaged"
  }
}
)")) << StatJson(*st);
  EXPECT_TRUE(absl::StrContains(StatText(*st),
                                "manifest   unreadable: manifest: checksum"))
      << StatText(*st);
  EXPECT_EQ(ExitCodeFor(st->problems, false), kExitDamaged);
}

TEST(TieredIntegrityCheck, DamagedManifestNamesTheField) {
  const TieredStore t = MakeTieredStore("tiered_bad_manifest");
  const std::string good = ReadStoreFile(t.root, "manifest");
  struct Case {
    std::string bytes;
    const char* message;
  };
  std::string flipped = good;
  flipped[40] ^= 0x01;
  std::string version = good;
  version[11] = 2;
  for (const Case& c :
       {Case{flipped, "manifest: checksum mismatch: the file is damaged"},
        Case{version, "manifest: version 2, expected 1"},
        Case{good.substr(0, 20),
             "manifest: truncated: 20 bytes, at least 48 expected"}}) {
    WriteStoreFile(t.root, "manifest", c.bytes);
    Report r = Check(t.root);
    EXPECT_EQ(CountAt(r, t.root, "manifest", absl::nullopt, c.message), 1)
        << Dump(r);
    EXPECT_EQ(r.errors(), 1u) << Dump(r);
    // The runs are still checked, each on its own.
    EXPECT_TRUE(absl::StrContains(Dump(r),
                                  "each run file is checked on its "
                                  "own"))
        << Dump(r);
    EXPECT_TRUE(absl::StrContains(Dump(r), "run.3: 200 records, sorted"))
        << Dump(r);
    EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
  }
}

TEST(TieredIntegrityCheck, EntrySizeMustBeTheOptions) {
  const TieredStore t = MakeTieredStore("tiered_entry_size");
  Options o = Opts20();
  o.value_size = 21;
  Report r = Check(t.root, o);
  EXPECT_EQ(CountAt(r, t.root, "manifest", 12,
                    "entry_size 40, but keys and values of 41 bytes; are "
                    "--key-size/--value-size right?"),
            1)
      << Dump(r);
}

TEST(TieredIntegrityCheck, RunMustMatchItsManifestEntry) {
  const TieredStore t = MakeTieredStore("tiered_mismatch");
  const std::string good = ReadStoreFile(t.root, "run.3");

  // Another generation: the filter, built for generation 7, is not used.
  std::string regenerated = good;
  PutBigEndian64(&regenerated, 16, 6);
  WriteStoreFile(t.root, "run.3", regenerated);
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.3", 16,
                    "generation 6, but the manifest lists run 3 with "
                    "generation 7"),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.3.filter", absl::nullopt,
                    "not used by finds", Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);

  // One record fewer, consistently: the manifest tells.
  std::string shorter = good.substr(0, good.size() - 40);
  PutBigEndian64(&shorter, 0, 199 * 40);
  WriteStoreFile(t.root, "run.3", shorter);
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.3", absl::nullopt,
                    absl::StrCat("the file has ", good.size() - 40,
                                 " bytes, but the manifest lists run 3 with ",
                                 good.size(), " bytes")),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.3", 0,
                    "the offset claims 199 records, but the manifest lists "
                    "run 3 with 200 records"),
            1)
      << Dump(r);

  // Truncated: the header still claims 200 records.
  WriteStoreFile(t.root, "run.3", good.substr(0, good.size() - 40));
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.3", absl::nullopt,
                    "bytes, but the manifest lists run 3 with"),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.3", 0, "(40 bytes missing)"), 1) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(TieredIntegrityCheck, MissingRunIsAnError) {
  const TieredStore t = MakeTieredStore("tiered_missing");
  RemoveStoreFile(t.root, "run.3");
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.3", absl::nullopt,
                    "missing: the manifest lists run 3 (generation 7, 200 "
                    "records)"),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(TieredIntegrityCheck, DamageInARunNamesTheRun) {
  const TieredStore t = MakeTieredStore("tiered_run_damage");
  const Schema s = SchemaOf(Opts20());
  std::string run = ReadStoreFile(t.root, "run.3");
  // Swap records 50 and 51: record 51 then holds the smaller hash.
  const size_t a = DataRecordPos(s, 200, 50);
  const std::string r50 = run.substr(a, 40);
  run.replace(a, 40, run.substr(a + 40, 40));
  run.replace(a + 40, 40, r50);
  WriteStoreFile(t.root, "run.3", run);
  // A filter for run.5 that finds would trust, but without any key.
  const std::string run5 = ReadStoreFile(t.root, "run.5");
  WriteStoreFile(t.root, "run.5.filter", FilterFile(s, run5, {}));
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.3", a + 40, "record 51 is out of order"), 1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.5.filter", absl::nullopt,
                    "lacks the key of data record 0"),
            1)
      << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "run.5.filter: ")) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "100 keys missing")) << Dump(r);
}

TEST(TieredIntegrityCheck, ManifestGenerationFollowsTheLog) {
  const TieredStore t = MakeTieredStore("tiered_generations");
  const Schema s = SchemaOf(Opts20());
  // A merge committed, the log reset was cut short: its log_async tells.
  WriteStoreFile(t.root, "log", LogFile(s, {}, 8));
  WriteStoreFile(t.root, "log_async", LogFile(s, {}, 9));
  Report r = Check(t.root);
  EXPECT_TRUE(absl::StrContains(Dump(r), "a merge commit cut short"))
      << Dump(r);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  // Without it, the manifest's generation is damage.
  RemoveStoreFile(t.root, "log_async");
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "manifest", 16,
                    "is one ahead of the log's (8), which only a merge cut",
                    Severity::kError),
            1)
      << Dump(r);

  // A clear committed, its manifest was not written yet: its marker tells.
  WriteStoreFile(t.root, "log", LogFile(s, {}, 10));
  WriteStoreFile(t.root, "clear", "kvindex clear to generation 10\n");
  r = Check(t.root);
  EXPECT_TRUE(absl::StrContains(Dump(r), "a clear cut short")) << Dump(r);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "runs: not checked")) << Dump(r);
  // Without it, damage.
  RemoveStoreFile(t.root, "clear");
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "manifest", 16, "there is no clear marker",
                    Severity::kError),
            1)
      << Dump(r);

  // Two ahead: no writer leaves that.
  WriteStoreFile(t.root, "log", LogFile(s, {}, 7));
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "manifest", 16,
                    "generation: 9 next to the log's (7) is a state no merge"),
            1)
      << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(TieredIntegrityCheck, StaleFilesAreWarnings) {
  const TieredStore t = MakeTieredStore("tiered_stale");
  const std::string run5 = ReadStoreFile(t.root, "run.5");
  WriteStoreFile(t.root, "run.4", run5);  // retired
  WriteStoreFile(t.root, "run.4.filter", "f");
  WriteStoreFile(t.root, "run.6", run5);  // next id: an uncommitted output
  WriteStoreFile(t.root, "run.6.filter.tmp", "f");
  WriteStoreFile(t.root, "manifest.tmp", "m");
  WriteStoreFile(t.root, "run.5.filter.tmp", "f");  // of a listed run
  Report r = Check(t.root);
  const struct {
    const char* name;
    const char* message;
  } expected[] = {
      {"run.4",
       "leftover: run 4, which the manifest retires (a committed merge folded "
       "it); the next writer open deletes it"},
      {"run.4.filter",
       "leftover: the key filter of run 4, which the manifest "
       "retires"},
      {"run.6",
       "leftover: the output of a merge that did not commit (run 6, the "
       "manifest's next id)"},
      {"run.6.filter.tmp",
       "leftover: a key filter being written for the output of a merge that "
       "did not commit"},
      {"manifest.tmp",
       "leftover: a manifest being written when its writer stopped"},
      {"run.5.filter.tmp",
       "leftover: a key filter being written for run 5 when its writer "
       "stopped"},
  };
  for (const auto& e : expected) {
    EXPECT_EQ(CountAt(r, t.root, e.name, absl::nullopt, e.message,
                      Severity::kWarning),
              1)
        << e.name << "\n"
        << Dump(r);
  }
  EXPECT_EQ(r.warnings(), 6u) << Dump(r);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, /*strict=*/false), kExitOk);
  EXPECT_EQ(ExitCodeFor(r.problems, /*strict=*/true), kExitDamaged);
}

TEST(TieredIntegrityCheck, RunFilesOfUnknownIdsAreErrors) {
  const TieredStore t = MakeTieredStore("tiered_unknown");
  WriteStoreFile(t.root, "run.2", ReadStoreFile(t.root, "run.5"));
  WriteStoreFile(t.root, "run.9.filter", "f");
  WriteStoreFile(t.root, "run.02", "not a run name");  // never a writer's
  WriteStoreFile(t.root, "notes.txt", "someone's file");
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.2", absl::nullopt,
                    "unknown file: run 2, which the manifest neither lists "
                    "nor retires (next id 6)"),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.9.filter", absl::nullopt,
                    "unknown file: a filter of run 9"),
            1)
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 2u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
}

TEST(TieredIntegrityCheck, DataTheManifestDoesNotListIsALeftover) {
  const TieredStore t = MakeTieredStore("tiered_data_leftover");
  // Neither listed nor retired: the index ignores it.
  Manifest m = t.manifest;
  m.runs.pop_back();
  WriteManifestFile(t.root, m);
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "data", absl::nullopt,
                    "leftover: the manifest neither lists nor retires it (run "
                    "0); the index ignores it",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "data.filter", absl::nullopt,
                    "leftover: a key filter of data", Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 2u) << Dump(r);

  // Retired: the next writer open deletes it.
  m.retired = {4, 0};
  WriteManifestFile(t.root, m);
  r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "data", absl::nullopt,
                    "leftover: run 0, which the manifest retires",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "data.filter", absl::nullopt,
                    "leftover: the key filter of run 0", Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 2u) << Dump(r);

  // Without records (a merge of an empty log writes one), only a note.
  m.retired = {4};
  WriteManifestFile(t.root, m);
  WriteStoreFile(t.root, "data", Header(0, 3, 0));
  RemoveStoreFile(t.root, "data.filter");
  r = Check(t.root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "data: no records, not a run"))
      << Dump(r);
}

// The conversion back to the single-file layout renames the only run to data
// (its commit point), then deletes the manifest: a crash in between leaves
// the manifest listing a run that data holds.
TEST(TieredIntegrityCheck, CommittedConversionToTheSingleFileLayout) {
  const TieredStore t = MakeTieredStore("tiered_conversion");
  Manifest m = t.manifest;
  m.runs.resize(1);  // run.5, everything compacted into it
  m.retired = {3, 0};
  WriteManifestFile(t.root, m);
  RemoveStoreFile(t.root, "run.3");
  RemoveStoreFile(t.root, "run.3.filter");
  WriteStoreFile(t.root, "data", ReadStoreFile(t.root, "run.5"));
  WriteStoreFile(t.root, "data.filter", ReadStoreFile(t.root, "run.5.filter"));
  RemoveStoreFile(t.root, "run.5");
  RemoveStoreFile(t.root, "run.5.filter");
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.5", absl::nullopt,
                    "missing, but data holds run 5: a conversion to the "
                    "single-file layout committed",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 1u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "data: 100 records, sorted"))
      << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "holds every key")) << Dump(r);
}

TEST(ExitCodeFor, PrefersNoStoreThenIoThenForeignThenDamage) {
  auto problem = [](Category c) {
    Problem p;
    p.category = c;
    return p;
  };
  EXPECT_EQ(ExitCodeFor({}, true), kExitOk);
  EXPECT_EQ(
      ExitCodeFor({problem(Category::kDamage), problem(Category::kForeign)},
                  false),
      kExitForeign);
  EXPECT_EQ(
      ExitCodeFor({problem(Category::kForeign), problem(Category::kIo)}, false),
      kExitIo);
  EXPECT_EQ(
      ExitCodeFor({problem(Category::kIo), problem(Category::kNoStore)}, false),
      kExitNoStore);
}

// ---- Checksum sidecars (filter/data_sums.h) ----

// The checksum sidecar of the data file `data` (its bytes) at `generation`,
// in blocks of 512 bytes.
std::string SumsFileOf(absl::string_view data, int64_t generation) {
  SumsTarget target;
  target.generation = generation;
  target.file_bytes = data.size();
  return DataSumsOf(data, target, 512);
}

bool HasNote(const Report& r, absl::string_view text) {
  return std::any_of(r.notes.begin(), r.notes.end(), [&](const std::string& n) {
    return absl::StrContains(n, text);
  });
}

TEST(IntegrityCheck, SumsThatMatchTheDataFilePass) {
  const std::string root = CleanStore("sums_clean");
  const std::string data = ReadStoreFile(root, "data");
  WriteStoreFile(root, "data.sum", SumsFileOf(data, 9));
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "data.sum: 72 blocks of 512 bytes; all match"))
      << Dump(r);
}

TEST(IntegrityCheck, ABlockThatDoesNotMatchItsSumIsAnError) {
  const Schema s = SchemaOf(Opts20());
  const std::string root = CleanStore("sums_damage");
  std::string data = ReadStoreFile(root, "data");
  WriteStoreFile(root, "data.sum", SumsFileOf(data, 9));
  // A value byte of record 300 and the last byte of the file (in the last,
  // short block): nothing but the sums can tell.
  const uint64_t at = DataRecordPos(s, kDataRecords, 300) + 25;
  data[at] = static_cast<char>(data[at] ^ 1);
  data[data.size() - 1] = static_cast<char>(data[data.size() - 1] ^ 0x80);
  WriteStoreFile(root, "data", data);
  Report r = Check(root);
  const uint64_t begin = at / 512 * 512;
  EXPECT_EQ(CountAt(r, root, "data", begin,
                    absl::StrCat("bytes [", begin, ", ", begin + 512,
                                 ") do not match their checksum in data.sum")),
            1)
      << Dump(r);
  const uint64_t last = (data.size() - 1) / 512 * 512;
  EXPECT_EQ(CountAt(r, root, "data", last,
                    absl::StrCat("bytes [", last, ", ", data.size(),
                                 ") do not match their checksum")),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 2u) << Dump(r);
  EXPECT_EQ(ExitCodeFor(r.problems, false), kExitDamaged);
  EXPECT_TRUE(HasNote(r, "data.sum: 72 blocks of 512 bytes; 2 do not match"))
      << Dump(r);
}

TEST(IntegrityCheck, MissingStaleOrDamagedSumsAreNotes) {
  const std::string root = CleanStore("sums_notes");
  const std::string data = ReadStoreFile(root, "data");
  Report r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "data.sum: absent; merges read data unchecked"))
      << Dump(r);

  // Of another generation (the OCaml library merged since): not used.
  WriteStoreFile(root, "data.sum", SumsFileOf(data, 8));
  r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "data.sum: not used (built for another data file"))
      << Dump(r);

  // Its own checksum wrong.
  std::string sums = SumsFileOf(data, 9);
  sums[100] = static_cast<char>(sums[100] ^ 2);
  WriteStoreFile(root, "data.sum", sums);
  r = Check(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "data.sum: not used (checksum mismatch)")) << Dump(r);
}

TEST(TieredIntegrityCheck, DamagedBlockOfARunNamesTheRun) {
  const TieredStore t = MakeTieredStore("tiered_sums_damage");
  std::string run = ReadStoreFile(t.root, "run.3");
  WriteStoreFile(t.root, "run.3.sum", SumsFileOf(run, 7));
  run[run.size() - 3] = static_cast<char>(run[run.size() - 3] ^ 4);
  WriteStoreFile(t.root, "run.3", run);
  Report r = Check(t.root);
  const uint64_t last = (run.size() - 1) / 512 * 512;
  EXPECT_EQ(CountAt(r, t.root, "run.3", last,
                    absl::StrCat("bytes [", last, ", ", run.size(),
                                 ") do not match their checksum in run.3.sum")),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "run.5.sum: absent")) << Dump(r);
}

TEST(TieredIntegrityCheck, StaleSumsAreWarnings) {
  const TieredStore t = MakeTieredStore("tiered_stale_sums");
  WriteStoreFile(t.root, "run.4.sum", "s");      // retired
  WriteStoreFile(t.root, "run.6.sum.tmp", "s");  // next id
  WriteStoreFile(t.root, "run.5.sum.tmp", "s");  // of a listed run
  WriteStoreFile(t.root, "run.9.sum", "s");      // unknown
  Report r = Check(t.root);
  EXPECT_EQ(CountAt(r, t.root, "run.4.sum", absl::nullopt,
                    "leftover: the checksum sidecar of run 4, which the "
                    "manifest retires",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.6.sum.tmp", absl::nullopt,
                    "leftover: a checksum sidecar being written for the output "
                    "of a merge that did not commit",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.5.sum.tmp", absl::nullopt,
                    "leftover: a checksum sidecar being written for run 5",
                    Severity::kWarning),
            1)
      << Dump(r);
  EXPECT_EQ(CountAt(r, t.root, "run.9.sum", absl::nullopt,
                    "unknown file: a checksum sidecar of run 9"),
            1)
      << Dump(r);
  EXPECT_EQ(r.warnings(), 3u) << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
}

// ---- The logs' journals (io/flush_sums.h) ----

// Appends `n` records to the log of `root` through a handle that keeps its
// journal, and leaves the journal (no close), as a crash would.
void AppendWithLogSums(const std::string& root, const Schema& s, int n) {
  IndexFile::ReadWriteOptions options;
  options.entry_size = s.entry_size();
  absl::StatusOr<std::unique_ptr<IndexFile>> log = IndexFile::OpenReadWrite(
      Env::Posix(), absl::StrCat(root, "/index/log"), options);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->StartFlushSums().ok());
  for (const Record& r : MakeRecords(s, n, 99)) {
    ASSERT_TRUE((*log)->Append(r.key + r.value).ok());
  }
  ASSERT_TRUE((*log)->Flush().ok());
}

// The three records AppendWithLogSums added, as a power cut may leave them
// in the log: zeros. Returns where they start in the file.
uint64_t ZeroAppendedLogRecords(const std::string& root, const Schema& s) {
  std::string log = ReadStoreFile(root, "log");
  const uint64_t at = 32 + kLogRecords * s.entry_size();
  log.replace(at, 3 * s.entry_size(), std::string(3 * s.entry_size(), '\0'));
  WriteStoreFile(root, "log", log);
  return at;
}

TEST(IntegrityCheck, ALogSumThatVouchesForEveryRecordIsANote) {
  const std::string root = CleanStore("log_sums_clean");
  AppendWithLogSums(root, SchemaOf(Opts20()), 3);
  const Report r = Check(root);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  EXPECT_EQ(r.warnings(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r, "log.sum: vouches for all 95 records")) << Dump(r);
}

TEST(IntegrityCheck, RecordsTheLogLostAndItsJournalHoldsAreAWarning) {
  const std::string root = CleanStore("log_sums_restorable");
  const Schema s = SchemaOf(Opts20());
  AppendWithLogSums(root, s, 3);
  // The journal's frame carries the three records the log lost.
  const uint64_t at = ZeroAppendedLogRecords(root, s);
  const Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", at,
                    "log.sum holds 3 records from record 92 on that the log "
                    "does not",
                    Severity::kWarning),
            1)
      << Dump(r);
}

TEST(IntegrityCheck, RecordsALogSumDoesNotVouchForAreAWarning) {
  const std::string root = CleanStore("log_sums_unvouched");
  const Schema s = SchemaOf(Opts20());
  AppendWithLogSums(root, s, 3);
  // The frame of the three records the log lost, lost too.
  const uint64_t at = ZeroAppendedLogRecords(root, s);
  std::string journal = ReadStoreFile(root, "log.sum");
  ASSERT_GT(journal.size(), 64u);
  journal.replace(64, journal.size() - 64,
                  std::string(journal.size() - 64, '\0'));
  WriteStoreFile(root, "log.sum", journal);
  const Report r = Check(root);
  EXPECT_EQ(CountAt(r, root, "log", at, "log.sum vouches for 92 of the 95",
                    Severity::kWarning),
            1)
      << Dump(r);
}

TEST(IntegrityCheck, ALogSumOfAnotherGenerationIsANote) {
  const std::string root = CleanStore("log_sums_stale");
  const Schema s = SchemaOf(Opts20());
  AppendWithLogSums(root, s, 1);
  std::string log = ReadStoreFile(root, "log");
  PutBigEndian64(&log, 16, 10);  // the log's generation: 9 -> 10
  WriteStoreFile(root, "log", log);
  const Report r = Check(root);
  EXPECT_TRUE(HasNote(r, "log.sum: not used (sidecar describes generation 9"))
      << Dump(r);
}

TEST(IntegrityCheck, AJournalWithoutItsLogIsANote) {
  const std::string root = CleanStore("log_sums_orphan");
  AppendWithLogSums(root, SchemaOf(Opts20()), 1);
  WriteStoreFile(root, "log_async.sum", std::string(64, 'j'));
  const Report r = Check(root);
  EXPECT_EQ(r.errors(), 0u) << Dump(r);
  EXPECT_EQ(r.warnings(), 0u) << Dump(r);
  EXPECT_TRUE(HasNote(r,
                      "log_async.sum: a journal without its log (log_async "
                      "is absent)"))
      << Dump(r);
}

}  // namespace
}  // namespace fsck
}  // namespace kvindex
