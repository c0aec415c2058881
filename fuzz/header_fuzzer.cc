// header_fuzzer: arbitrary bytes as the files of a store.
//
// Input grammar:
//   input := cfg:u8 piece ("KVF|" piece)*
//   cfg   bits 0-2: files present: data, log, log_async (piece 0, 1, 2; a
//                   missing piece is an empty file)
//         bits 3-4: schema (key/value sizes and hash, see kSchemas)
//         bit 5:    LRU on
//         bits 6-7: log_size - 1
//   piece 3 (optional): entry-sized chunks (key then value) to replace after
//         the read-write open; without it one fixed binding is written.
//
// Properties:
//   IndexFile::OpenReadOnly / OpenReadWrite accept a file exactly when its
//   header is valid (as documented in io/index_file.h), expose header, fan-out
//   and records as the bytes say (offset cut to the file and to whole records),
//   and a read-write append lands right after the old records. RawIndex::Open
//   (read-only, then read-write) returns a clear error (kDataLoss naming the
//   file) or an instance whose Find/Mem/Iter agree with each other; the writer
//   then takes writes, merges, closes and reopens, and finds its writes again
//   (when the data file was well formed: sorted, with a consistent fan-out
//   table). No instance shows a binding that is neither a record of a file,
//   read by the format's rules (a log has no fan-out table; records end at the
//   offset, cut to whole records), nor one of the writes. Over a plain store
//   (nothing to recover: a valid log, no log_async, a well-formed data file of
//   the log's generation), an open that succeeds shows exactly the files'
//   bindings, each key's newest: no silent loss. Nothing may crash, hang or allocate in proportion to a header
//   field.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "fan/fan.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/store_util.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/index_file.h"
#include "io/mem_env.h"
#include "testing/keys.h"

namespace kvindex {
namespace fuzz {
namespace {

constexpr char kRoot[] = "/s";
constexpr absl::string_view kSeparator = "KVF|";
constexpr const char* kFileNames[3] = {"data", "log", "log_async"};

Schema SchemaFor(int sel) {
  switch (sel & 3) {
    case 0:
      return test::MakeSchema(4, 4, 16, &PrefixHash16);
    case 1:
      return test::MakeSchema(8, 8, kOcamlHashBits, &OcamlKeyHash);
    case 2:
      return test::MakeSchema(4, 0, 16, &PrefixHash16);
    default:
      return test::MakeSchema(20, 20, kOcamlHashBits, &OcamlKeyHash);
  }
}

std::vector<absl::string_view> Split(absl::string_view body, size_t max) {
  std::vector<absl::string_view> pieces;
  while (pieces.size() + 1 < max) {
    const size_t at = body.find(kSeparator);
    if (at == absl::string_view::npos) break;
    pieces.push_back(body.substr(0, at));
    body.remove_prefix(at + kSeparator.size());
  }
  pieces.push_back(body);
  return pieces;
}

int64_t Be64(absl::string_view b, size_t at) {
  return static_cast<int64_t>(absl::big_endian::Load64(b.data() + at));
}

// What the header of `bytes` says, per io/index_file.h.
struct Expected {
  // < 32 bytes, or 32 zero bytes: absent (RO) / rewritten (RW)
  bool too_short = false;
  bool valid = false;  // a usable header
  uint64_t header_size = 0;
  uint64_t offset = 0;  // usable record bytes
  int64_t generation = 0;
};

Expected ExpectedHeader(absl::string_view bytes, size_t entry_size) {
  Expected e;
  if (bytes.size() < IndexFile::kHeaderSize ||
      bytes == absl::string_view("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                                 "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                                 IndexFile::kHeaderSize)) {
    e.too_short = true;
    return e;
  }
  const int64_t offset = Be64(bytes, 0);
  const int64_t fan = Be64(bytes, 24);
  if (bytes.substr(8, 8) != IndexFile::kVersion) return e;
  if (fan < 0 || fan % 8 != 0 ||
      static_cast<uint64_t>(fan) > bytes.size() - IndexFile::kHeaderSize) {
    return e;
  }
  if (offset < 0) return e;
  // Generations are 0 .. 2^62 (io/index_file.cc); others are foreign.
  const int64_t generation = Be64(bytes, 16);
  if (generation < 0 || generation > IndexFile::kMaxGeneration) return e;
  e.valid = true;
  e.header_size = IndexFile::kHeaderSize + static_cast<uint64_t>(fan);
  const uint64_t held = bytes.size() - e.header_size;
  e.offset = std::min<uint64_t>(static_cast<uint64_t>(offset), held);
  e.offset -= e.offset % entry_size;
  e.generation = Be64(bytes, 16);
  return e;
}

void CheckHandle(IndexFile& f, absl::string_view bytes, const Expected& e,
                 size_t entry_size) {
  FUZZ_CHECK(f.header_size() == e.header_size,
             absl::StrCat(f.path(), ": header_size ", f.header_size(),
                          ", expected ", e.header_size));
  FUZZ_CHECK(
      f.offset() == e.offset && f.flushed_offset() == e.offset,
      absl::StrCat(f.path(), ": offset ", f.offset(), ", expected ", e.offset));
  FUZZ_CHECK(f.generation() == e.generation, "generation");
  absl::StatusOr<IndexFile::Header> h = f.ReadHeader();
  FUZZ_CHECK(h.ok(), Describe(h.status()));
  FUZZ_CHECK(h->generation == e.generation, "ReadHeader generation");
  FUZZ_CHECK(f.offset() == e.offset, "offset changed by ReadHeader");
  absl::StatusOr<std::string> table = f.ReadFanout();
  FUZZ_CHECK(table.ok(), Describe(table.status()));
  FUZZ_CHECK(*table == bytes.substr(IndexFile::kHeaderSize, f.fan_size()),
             "ReadFanout != the bytes after the header");
  // All records, in one read that asks for one record too many.
  std::string records(e.offset + entry_size, '\0');
  size_t n = 0;
  absl::Status s = f.Read(0, records.size(), &records[0], &n);
  FUZZ_CHECK(s.ok(), Describe(s));
  FUZZ_CHECK(n == e.offset,
             absl::StrCat("Read returned ", n, " bytes, expected ", e.offset));
  FUZZ_CHECK(absl::string_view(records.data(), n) ==
                 bytes.substr(e.header_size, e.offset),
             "Read != record bytes");
  s = f.Read(e.offset, entry_size, &records[0], &n);
  FUZZ_CHECK(s.ok() && n == 0, "Read at the end must return 0 bytes");
  absl::StatusOr<uint64_t> size = f.FileSize();
  FUZZ_CHECK(size.ok() && *size >= bytes.size(), "FileSize");
}

// IndexFile::OpenReadOnly over the bytes.
void CheckReadOnlyFile(const std::string& path, absl::string_view bytes,
                       const Schema& schema, bool is_data) {
  MemEnv env;
  env.SetContents(path, std::string(bytes));
  const size_t entry_size = schema.entry_size();
  const Expected e = ExpectedHeader(bytes, entry_size);
  absl::StatusOr<std::unique_ptr<IndexFile>> f =
      IndexFile::OpenReadOnly(&env, path, entry_size);
  if (e.too_short) {
    FUZZ_CHECK(f.ok() && *f == nullptr,
               "a file shorter than a header must open read-only as absent: " +
                   Describe(f.status()));
    return;
  }
  if (!e.valid) {
    FUZZ_CHECK(
        !f.ok() && f.status().code() == absl::StatusCode::kDataLoss,
        "invalid header accepted or wrong code: " + Describe(f.status()));
    CheckStoreError(f.status(), path, "IndexFile::OpenReadOnly");
    return;
  }
  FUZZ_CHECK(f.ok() && *f != nullptr,
             "valid header refused: " + Describe(f.status()));
  IndexFile& file = **f;
  FUZZ_CHECK(file.readonly(), "readonly()");
  CheckHandle(file, bytes, e, entry_size);
  absl::StatusOr<std::shared_ptr<const MappedRegion>> map = file.Map();
  FUZZ_CHECK(map.ok(), Describe(map.status()));
  FUZZ_CHECK((*map)->bytes() == bytes.substr(0, e.header_size + e.offset),
             "Map() != header + records");
  FUZZ_CHECK(file.Append(std::string(entry_size, 'x')).code() ==
                 absl::StatusCode::kFailedPrecondition,
             "Append on a read-only file");
  FUZZ_CHECK(file.Flush().code() == absl::StatusCode::kFailedPrecondition,
             "Flush on a read-only file");
  if (is_data && file.fan_size() > 0) {
    absl::StatusOr<std::string> table = file.ReadFanout();
    // Any outcome is fine; it must not crash.
    (void)Fanout::Import(*table, schema.hash_bits, entry_size, e.offset, path);
  }
  FUZZ_CHECK(file.Close().ok(), "Close");
}

// IndexFile::OpenReadWrite over the bytes, then one appended record.
void CheckReadWriteFile(const std::string& path, absl::string_view bytes,
                        const Schema& schema) {
  MemEnv env;
  env.SetContents(path, std::string(bytes));
  const size_t entry_size = schema.entry_size();
  Expected e = ExpectedHeader(bytes, entry_size);
  IndexFile::ReadWriteOptions options;
  options.generation = 5;
  options.entry_size = entry_size;
  absl::StatusOr<std::unique_ptr<IndexFile>> f =
      IndexFile::OpenReadWrite(&env, path, options);
  std::string contents(bytes);
  if (e.too_short) {
    FUZZ_CHECK(f.ok(), "short file must be rewritten: " + Describe(f.status()));
    absl::StatusOr<std::string> now = env.Contents(path);
    FUZZ_CHECK(now.ok() && now->size() == IndexFile::kHeaderSize &&
                   Be64(*now, 0) == 0 && Be64(*now, 16) == 5 &&
                   Be64(*now, 24) == 0 &&
                   now->substr(8, 8) == IndexFile::kVersion,
               "rewritten header of a short file");
    contents = *now;
    e = ExpectedHeader(contents, entry_size);
  } else if (!e.valid) {
    FUZZ_CHECK(
        !f.ok() && f.status().code() == absl::StatusCode::kDataLoss,
        "invalid header accepted or wrong code: " + Describe(f.status()));
    CheckStoreError(f.status(), path, "IndexFile::OpenReadWrite");
    return;
  }
  FUZZ_CHECK(f.ok(), "valid header refused: " + Describe(f.status()));
  IndexFile& file = **f;
  CheckHandle(file, contents, e, entry_size);

  const std::string record(entry_size, 'R');
  FUZZ_CHECK(file.Append(record).ok(), "Append");
  FUZZ_CHECK(file.offset() == e.offset + entry_size, "offset after Append");
  std::string back(entry_size, '\0');
  size_t n = 0;
  FUZZ_CHECK(file.Read(e.offset, entry_size, &back[0], &n).ok() &&
                 n == entry_size && back == record,
             "buffered record not readable");
  FlushOptions fo;
  fo.with_fsync = true;
  absl::Status s = file.Flush(fo);
  FUZZ_CHECK(s.ok(), Describe(s));
  absl::StatusOr<std::string> now = env.Contents(path);
  FUZZ_CHECK(now.ok(), "Contents");
  const uint64_t at = e.header_size + e.offset;
  FUZZ_CHECK(
      now->size() >= at + entry_size && now->substr(at, entry_size) == record,
      "appended record not at header_size + old offset");
  FUZZ_CHECK(static_cast<uint64_t>(Be64(*now, 0)) == e.offset + entry_size,
             "offset field after flush");
  FUZZ_CHECK(
      now->substr(8, at - 8) == absl::string_view(contents).substr(8, at - 8),
      "flush changed bytes before the old end of the records");
  FUZZ_CHECK(file.Close().ok(), "Close");
}

// The data file is well formed: its fan-out table passes Fanout::Import and
// its records are sorted by hash. Lookups must then find every record Iter
// shows, even when the table does not match the records (a slot pointing
// inside the next bucket, say: Find then searches the whole file).
bool WellFormedData(absl::string_view bytes, const Schema& schema) {
  const size_t es = schema.entry_size();
  const Expected e = ExpectedHeader(bytes, es);
  if (e.too_short) return true;
  if (!e.valid) return false;
  if (e.offset == 0) return true;
  const absl::string_view table = bytes.substr(
      IndexFile::kHeaderSize, e.header_size - IndexFile::kHeaderSize);
  absl::StatusOr<Fanout> fan =
      Fanout::Import(table, schema.hash_bits, es, e.offset, "data");
  if (!fan.ok()) return false;
  uint64_t prev = 0;
  for (uint64_t off = 0; off < e.offset; off += es) {
    const uint64_t h =
        schema.hash(bytes.substr(e.header_size + off, schema.key_size));
    if (h < prev) return false;
    prev = h;
  }
  return true;
}

struct Store {
  Schema schema;
  Options options;
  std::vector<std::string> candidate_keys;  // looked up by every observation
  // Every record the files hold by the format's rules (key then value): an
  // instance opened over them may show these bindings and no other.
  std::set<std::string> records;
};

// The records of one file by the format (format.md §3, §5, §6): from the
// end of the header (a log has no fan-out table, whatever its header says)
// up to the offset, cut to the file's whole records. None for a header the
// format does not accept.
void AddRecords(absl::string_view bytes, const Schema& schema, bool is_data,
                std::set<std::string>* records) {
  const size_t es = schema.entry_size();
  const Expected e = ExpectedHeader(bytes, es);
  if (!e.valid || (!is_data && e.header_size != IndexFile::kHeaderSize)) {
    return;
  }
  for (uint64_t off = 0; off < e.offset; off += es) {
    records->emplace(bytes.substr(e.header_size + off, es));
  }
}

// No silent loss: over a plain store, whose files need no recovery (a valid
// log, no log_async, and a data file, if any, that is well formed, holds no
// key twice and has the log's generation), exactly the bindings the files
// hold by the format's rules, each key's newest (the log's last record over
// the data file's). nullopt for any other store.
std::optional<std::map<std::string, std::string>> PlainStoreBindings(
    const absl::string_view files[3], const bool present[3], bool well_formed,
    const Schema& schema) {
  const size_t es = schema.entry_size();
  if (!present[1] || present[2] || !well_formed) return std::nullopt;
  const Expected log = ExpectedHeader(files[1], es);
  if (!log.valid || log.header_size != IndexFile::kHeaderSize) {
    return std::nullopt;
  }
  std::map<std::string, std::string> bindings;
  if (present[0]) {
    const Expected data = ExpectedHeader(files[0], es);
    if (!data.valid || data.generation != log.generation) return std::nullopt;
    // A data file is written whole: an offset past its records is damage,
    // which the open may refuse.
    if (static_cast<uint64_t>(Be64(files[0], 0)) != data.offset) {
      return std::nullopt;
    }
    for (uint64_t off = 0; off < data.offset; off += es) {
      const absl::string_view r = files[0].substr(data.header_size + off, es);
      const bool added = bindings
                             .emplace(std::string(r.substr(0, schema.key_size)),
                                      std::string(r.substr(schema.key_size)))
                             .second;
      if (!added) return std::nullopt;
    }
  }
  for (uint64_t off = 0; off < log.offset; off += es) {
    const absl::string_view r = files[1].substr(log.header_size + off, es);
    bindings[std::string(r.substr(0, schema.key_size))] =
        std::string(r.substr(schema.key_size));
  }
  return bindings;
}

// Find, Mem and Iter of one instance agree. `complete`: every key Iter shows
// must be found (lookups can only miss records of a malformed data file).
// `exact`: the bindings it must show (PlainStoreBindings), if known.
void CheckConsistent(const RawIndex& index, const Store& st, bool complete,
                     const char* what,
                     const std::optional<std::map<std::string, std::string>>&
                         exact = std::nullopt) {
  absl::StatusOr<Visits> visits = IterAll(index);
  FUZZ_LOG(what, ": iter ", Describe(visits.status()), " ",
           visits.ok() ? visits->size() : 0, " bindings");
  if (!visits.ok()) {
    CheckStoreError(visits.status(), kRoot, what);
    return;
  }
  std::map<std::string, std::vector<std::string>> values;
  for (const auto& kv : *visits) {
    FUZZ_CHECK(kv.first.size() == st.schema.key_size &&
                   kv.second.size() == st.schema.value_size,
               "Iter binding of the wrong size");
    FUZZ_CHECK(
        st.records.count(kv.first + kv.second) == 1,
        absl::StrCat(what, ": Iter shows ", Hex(kv.first), " = ",
                     Hex(kv.second), ", a binding no file holds as a record"));
    values[kv.first].push_back(kv.second);
  }
  if (exact.has_value()) {
    for (const auto& [key, value] : *exact) {
      auto it = values.find(key);
      FUZZ_CHECK(
          it != values.end(),
          absl::StrCat(what, ": Iter misses ", Hex(key), " = ", Hex(value),
                       ", which the files hold (silent loss)"));
      FUZZ_CHECK(it->second.size() == 1 && it->second[0] == value,
                 absl::StrCat(what, ": Iter shows ", Hex(key), " with ",
                              it->second.size(), " value(s), the first ",
                              Hex(it->second[0]), ", not only its newest ",
                              Hex(value)));
    }
    FUZZ_CHECK(values.size() == exact->size(),
               absl::StrCat(what, ": Iter shows ", values.size(),
                            " keys, the files hold ", exact->size()));
  }
  // Each key looked up once (lookups are most of an input's time): the
  // files' candidates and every key Iter shows, which with `exact` are
  // exactly its keys (checked above).
  std::set<std::string> keys(st.candidate_keys.begin(),
                             st.candidate_keys.end());
  for (const auto& kv : values) keys.insert(kv.first);
  for (const std::string& k : keys) {
    std::string v;
    absl::StatusOr<bool> found = FindValue(index, k, &v);
    if (!found.ok()) {
      CheckStoreError(found.status(), kRoot, what);
      continue;
    }
    if (exact.has_value()) {
      auto newest = exact->find(k);
      FUZZ_CHECK(
          newest == exact->end() || (*found && v == newest->second),
          absl::StrCat(what, ": Find(", Hex(k), ") misses its newest value ",
                       newest == exact->end() ? "" : Hex(newest->second)));
    }
    absl::StatusOr<bool> mem = index.Mem(k);
    FUZZ_CHECK(!mem.ok() || *mem == *found,
               absl::StrCat(what, ": Mem != Find for ", Hex(k)));
    auto it = values.find(k);
    if (*found) {
      FUZZ_CHECK(it != values.end() &&
                     std::find(it->second.begin(), it->second.end(), v) !=
                         it->second.end(),
                 absl::StrCat(what, ": Find(", Hex(k), ") = ", Hex(v),
                              " is not a binding Iter visits"));
    } else if (complete) {
      FUZZ_CHECK(it == values.end(),
                 absl::StrCat(what, ": Iter shows ", Hex(k),
                              " but Find misses it (well-formed data)"));
    }
  }
}

// Candidate keys: the first bytes of every record slot of every file, a few
// constants, and the keys about to be written.
void AddCandidates(absl::string_view bytes, const Schema& schema,
                   std::vector<std::string>* keys) {
  const size_t es = schema.entry_size();
  const Expected e = ExpectedHeader(bytes, es);
  const uint64_t start = e.valid ? e.header_size : IndexFile::kHeaderSize;
  for (uint64_t off = start;
       off + schema.key_size <= bytes.size() && keys->size() < 48; off += es) {
    keys->emplace_back(bytes.substr(off, schema.key_size));
  }
}

void Run(FuzzInput& in) {
  const uint8_t cfg = in.U8();
  Store st;
  st.schema = SchemaFor(cfg >> 3);
  const size_t es = st.schema.entry_size();
  const std::vector<absl::string_view> pieces = Split(in.Rest(), 4);
  std::string file_bytes[3];
  absl::string_view files[3];
  bool present[3];
  for (int i = 0; i < 3; ++i) {
    present[i] = (cfg >> i) & 1;
    if (i < static_cast<int>(pieces.size()))
      file_bytes[i] = std::string(pieces[i]);
    files[i] = file_bytes[i];
  }
  std::vector<std::pair<std::string, std::string>> writes;
  if (pieces.size() > 3) {
    absl::string_view w = pieces[3];
    while (w.size() >= es && writes.size() < 8) {
      writes.emplace_back(
          std::string(w.substr(0, st.schema.key_size)),
          std::string(w.substr(st.schema.key_size, st.schema.value_size)));
      w.remove_prefix(es);
    }
  }
  if (writes.empty()) {
    writes.emplace_back(std::string(st.schema.key_size, 'W'),
                        std::string(st.schema.value_size, 'w'));
  }

  // --- The file layer, on each file alone.
  const std::string root = kRoot;
  for (int i = 0; i < 3; ++i) {
    if (!present[i]) continue;
    const std::string path = StorePath(root, kFileNames[i]);
    CheckReadOnlyFile(path, files[i], st.schema, i == 0);
    CheckReadWriteFile(path, files[i], st.schema);
  }

  // --- The index over all of them.
  MemEnv env;
  FUZZ_CHECK(env.CreateDirs(StoreDir(root)).ok(), "CreateDirs");
  for (int i = 0; i < 3; ++i) {
    if (!present[i]) continue;
    env.SetContents(StorePath(root, kFileNames[i]), std::string(files[i]));
    AddCandidates(files[i], st.schema, &st.candidate_keys);
    AddRecords(files[i], st.schema, i == 0, &st.records);
  }
  for (const auto& w : writes) st.candidate_keys.push_back(w.first);
  bool well_formed = !present[0] || WellFormedData(files[0], st.schema);
  // A generation at the top of its range leaves a merge or clear no room (they
  // are refused with kResourceExhausted): not a store that must keep working.
  for (int i = 0; i < 3; ++i) {
    if (present[i] && files[i].size() >= IndexFile::kHeaderSize &&
        Be64(files[i], 16) > IndexFile::kMaxGeneration - 2) {
      well_formed = false;
    }
  }

  const std::optional<std::map<std::string, std::string>> plain =
      PlainStoreBindings(files, present, well_formed, st.schema);
  FUZZ_LOG("plain store: ", plain.has_value() ? plain->size() : 0, " bindings");

  st.options.env = &env;
  st.options.lru_size = (cfg >> 5) & 1 ? 4 : 0;
  st.options.log_size = 1 + (cfg >> 6);

  {
    Options ro = st.options;
    ro.readonly = true;
    absl::StatusOr<std::unique_ptr<RawIndex>> idx =
        RawIndex::Open(root, st.schema, ro);
    FUZZ_LOG("open read-only: ", Describe(idx.status()),
             " well_formed=", well_formed);
    if (!idx.ok()) {
      CheckStoreError(idx.status(), root, "RawIndex::Open read-only");
    } else {
      CheckConsistent(**idx, st, well_formed, "read-only", plain);
      FUZZ_CHECK((*idx)->Replace(writes[0].first, writes[0].second).code() ==
                     absl::StatusCode::kFailedPrecondition,
                 "Replace on a read-only instance");
      absl::Status s = (*idx)->Sync();
      if (!s.ok()) CheckStoreError(s, root, "read-only Sync");
      CheckConsistent(**idx, st, well_formed, "read-only after sync");
      FUZZ_CHECK((*idx)->Close().ok(), "read-only Close");
    }
  }

  absl::StatusOr<std::unique_ptr<RawIndex>> idx =
      RawIndex::Open(root, st.schema, st.options);
  FUZZ_LOG("open read-write: ", Describe(idx.status()));
  if (!idx.ok()) {
    CheckStoreError(idx.status(), root, "RawIndex::Open read-write");
    return;
  }
  RawIndex& rw = **idx;
  CheckConsistent(rw, st, well_formed, "read-write", plain);
  std::map<std::string, std::string> written;
  for (const auto& w : writes) {
    absl::Status s = rw.Replace(w.first, w.second);
    if (!s.ok()) {
      // A merge over a malformed data file may fail; the writer then refuses
      // writes.
      CheckStoreError(s, root, "Replace");
      FUZZ_CHECK(!well_formed,
                 "Replace failed on a well-formed store: " + Describe(s));
      return;
    }
    written[w.first] = w.second;
    st.records.insert(w.first + w.second);
    std::string v;
    absl::StatusOr<bool> found = FindValue(rw, w.first, &v);
    FUZZ_CHECK(found.ok() && *found && v == w.second,
               absl::StrCat("Find(", Hex(w.first), ") right after Replace: ",
                            found.ok() ? Hex(v) : Describe(found.status())));
  }
  absl::Status s = rw.Merge();
  if (s.ok()) s = rw.AwaitMerge();
  FUZZ_LOG("merge: ", Describe(s));
  if (!s.ok()) {
    CheckStoreError(s, root, "Merge");
    FUZZ_CHECK(!well_formed,
               "Merge failed on a well-formed store: " + Describe(s));
    return;
  }
  CheckConsistent(rw, st, well_formed, "read-write after merge");
  if (well_formed) {
    for (const auto& w : written) {
      std::string v;
      absl::StatusOr<bool> found = FindValue(rw, w.first, &v);
      FUZZ_CHECK(found.ok() && *found && v == w.second,
                 absl::StrCat("Find(", Hex(w.first), ") after merge"));
    }
  }
  s = rw.Close();
  FUZZ_CHECK(s.ok() || !well_formed, "Close: " + Describe(s));
  idx->reset();
  if (!s.ok()) return;

  for (bool readonly : {false, true}) {
    Options o = st.options;
    o.readonly = readonly;
    absl::StatusOr<std::unique_ptr<RawIndex>> again =
        RawIndex::Open(root, st.schema, o);
    FUZZ_LOG("reopen readonly=", readonly, ": ", Describe(again.status()));
    if (!again.ok()) {
      CheckStoreError(again.status(), root, "reopen");
      FUZZ_CHECK(!well_formed, "reopen failed on a well-formed store: " +
                                   Describe(again.status()));
      return;
    }
    CheckConsistent(**again, st, well_formed,
                    readonly ? "reopened read-only" : "reopened read-write");
    if (well_formed) {
      for (const auto& w : written) {
        std::string v;
        absl::StatusOr<bool> found = FindValue(**again, w.first, &v);
        FUZZ_CHECK(found.ok() && *found && v == w.second,
                   absl::StrCat("Find(", Hex(w.first), ") after reopen"));
      }
    }
    FUZZ_CHECK((*again)->Close().ok(), "Close after reopen");
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvindex::fuzz::FuzzInput in(data, size);
  kvindex::fuzz::Run(in);
  return 0;
}
