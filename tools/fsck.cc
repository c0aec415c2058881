#include "tools/fsck.h"

#include <dirent.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "datafile/data_file.h"
#include "fan/fan.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "index/clear_marker.h"
#include "index/recovery_rules.h"
#include "io/file_header.h"
#include "io/flush_sums.h"
#include "io/index_file.h"
#include "nlohmann/json.hpp"
#include "runset/manifest.h"

// The layout checked here is in io/index_file.h (the file) and
// io/file_header.h (its header).

namespace kvindex {
namespace fsck {

namespace {

constexpr size_t kMaxFieldSize = size_t{1} << 20;
constexpr uint64_t kHeaderSize = FileHeader::kSize;
// Byte positions of the header fields.
constexpr uint64_t kOffsetField = FileHeader::kOffsetAt;
constexpr uint64_t kVersionField = FileHeader::kVersionAt;
constexpr uint64_t kGenerationField = FileHeader::kGenerationAt;
constexpr uint64_t kFanSizeField = FileHeader::kFanSizeAt;
// Records read per IO while scanning: about 1 MiB.
constexpr uint64_t kScanBytes = uint64_t{1} << 20;

const char* const kRecordFiles[] = {"data",  "log",     "log_async",
                                    "merge", "compact", "log_tmp"};

uint64_t OcamlHash(absl::string_view key) { return OcamlStringHash(key); }

// Schema::hash is a plain function pointer: one XXH3 function per width.
template <int kBits>
uint64_t Xxh3Bits(absl::string_view key) {
  return Xxh3Hash(key, kBits);
}
template <size_t... I>
constexpr std::array<KeyHashFn, sizeof...(I)> MakeXxh3Table(
    std::index_sequence<I...>) {
  return {{&Xxh3Bits<static_cast<int>(I)>...}};
}
constexpr std::array<KeyHashFn, 65> kXxh3ByBits =
    MakeXxh3Table(std::make_index_sequence<65>());

std::string Hex(uint64_t h) { return absl::StrFormat("0x%x", h); }

// Collects problems for one file, counting those of each kind past the limit.
class Reporter {
 public:
  Reporter(std::vector<Problem>* out, std::string path, size_t limit)
      : out_(out), path_(std::move(path)), limit_(limit) {}

  void Add(Severity severity, Category category,
           absl::optional<uint64_t> offset, std::string message) {
    Problem p;
    p.severity = severity;
    p.category = category;
    p.path = path_;
    p.offset = offset;
    p.message = std::move(message);
    out_->push_back(std::move(p));
  }
  void Error(absl::optional<uint64_t> offset, std::string message) {
    Add(Severity::kError, Category::kDamage, offset, std::move(message));
  }
  void Warning(absl::optional<uint64_t> offset, std::string message) {
    Add(Severity::kWarning, Category::kDamage, offset, std::move(message));
  }
  // A repeated kind of problem: reports the first `limit` of kind `kind`.
  void Limited(absl::string_view kind, Severity severity,
               absl::optional<uint64_t> offset, std::string message) {
    size_t& n = counts_[kind];
    ++n;
    if (n <= limit_)
      Add(severity, Category::kDamage, offset, std::move(message));
  }
  // Adds "... and N more <what>" for every kind that went past the limit.
  void Summarize(absl::string_view kind, Severity severity,
                 absl::string_view what) {
    auto it = counts_.find(kind);
    if (it == counts_.end() || it->second <= limit_) return;
    Add(severity, Category::kDamage, absl::nullopt,
        absl::StrCat("... and ", it->second - limit_, " more ", what, " (",
                     it->second, " in all)"));
  }
  size_t Count(absl::string_view kind) const {
    auto it = counts_.find(kind);
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  std::vector<Problem>* out_;
  std::string path_;
  size_t limit_;
  absl::flat_hash_map<std::string, size_t> counts_;
};

Category CategoryOf(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss ? Category::kDamage
                                                 : Category::kIo;
}

// What can be learned of one store file from its size and its first 32 bytes.
struct Header {
  std::string name;
  std::string path;
  std::unique_ptr<File> file;
  uint64_t file_size = 0;
  // The first 32 bytes were read and carry the supported version.
  bool ok = false;
  int64_t offset = 0;
  int64_t generation = 0;
  int64_t fan_size = 0;
};

// Opens `name` in the store directory. Returns false when the file does not
// exist. Problems that make the header unusable (IO errors, a short file, a
// foreign version) go to `reporter`; the header is then returned with ok ==
// false.
bool LoadHeader(Env* env, const std::string& root, const std::string& name,
                Reporter* reporter, Header* h) {
  h->name = name;
  h->path = StorePath(root, name);
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(h->path, OpenMode::kReadOnly);
  if (absl::IsNotFound(file.status())) return false;
  if (!file.ok()) {
    reporter->Add(Severity::kError, Category::kIo, absl::nullopt,
                  absl::StrCat("cannot open: ", file.status().message()));
    return true;
  }
  h->file = *std::move(file);
  absl::StatusOr<uint64_t> size = h->file->Size();
  if (!size.ok()) {
    reporter->Add(
        Severity::kError, Category::kIo, absl::nullopt,
        absl::StrCat("cannot read the size: ", size.status().message()));
    return true;
  }
  h->file_size = *size;
  if (h->file_size < kHeaderSize) {
    reporter->Error(
        h->file_size,
        absl::StrCat("truncated header: the file has ", h->file_size,
                     " bytes, a header needs ", kHeaderSize));
    return true;
  }
  char buf[kHeaderSize];
  absl::Status s = ReadFully(*h->file, 0, sizeof(buf), buf);
  if (!s.ok()) {
    reporter->Add(Severity::kError, CategoryOf(s), 0,
                  absl::StrCat("cannot read the header: ", s.message()));
    return true;
  }
  if (h->file_size == kHeaderSize &&
      std::all_of(buf, buf + sizeof(buf), [](char c) { return c == 0; })) {
    reporter->Error(0,
                    "a header of zeros and nothing else: what a power cut "
                    "leaves of a file whose header never reached the disk "
                    "(the writer rewrites it, readers take it as absent)");
    return true;
  }
  // The fields as stored: CheckHeader reports the values no writer produces.
  absl::StatusOr<FileHeader> header =
      FileHeader::DecodeRaw(absl::string_view(buf, sizeof(buf)), h->path);
  if (!header.ok()) {
    // All kHeaderSize bytes are there: only the version can be refused.
    const absl::string_view version(buf + kVersionField,
                                    FileHeader::kVersion.size());
    reporter->Add(
        Severity::kError, Category::kForeign, kVersionField,
        absl::StrCat("unsupported version '", absl::CHexEscape(version),
                     "' (current version is ", FileHeader::kVersion,
                     "): not a store file, or a newer format"));
    return true;
  }
  h->offset = header->offset;
  h->generation = header->generation;
  h->fan_size = header->fan_size;
  h->ok = true;
  return true;
}

// The part of a file that can be scanned, once the header was checked.
struct Extent {
  bool usable = false;
  uint64_t header_size = 0;  // 32 + fan-out size
  uint64_t records = 0;      // whole records present below the offset
  uint64_t claimed = 0;      // records the offset claims (rounded down)
};

// Whether bytes [from, to) of `file` are all zero (false if they cannot be
// read).
bool AllZeros(const File& file, uint64_t from, uint64_t to) {
  std::string chunk;
  for (uint64_t at = from; at < to;) {
    chunk.resize(static_cast<size_t>(std::min<uint64_t>(to - at, 1 << 16)));
    if (!ReadFully(file, at, chunk.size(), &chunk[0]).ok()) return false;
    if (chunk.find_first_not_of('\0') != std::string::npos) return false;
    at += chunk.size();
  }
  return true;
}

// Checks the header fields against each other and the file size. Zeros past
// a log's records are not reported: a writer with log checksums grows its
// logs ahead of their records (io/index_file.h), and the index ignores
// them like any bytes past the offset.
Extent CheckHeader(const Header& h, const Schema& schema, bool is_log,
                   Reporter* r) {
  Extent e;
  const uint64_t entry = schema.entry_size();
  if (h.fan_size < 0 || h.fan_size % 8 != 0) {
    r->Error(kFanSizeField, absl::StrCat("invalid fan-out size ", h.fan_size,
                                         " (must be a multiple of 8, >= 0)"));
    return e;
  }
  const uint64_t fan = static_cast<uint64_t>(h.fan_size);
  if (fan > h.file_size - kHeaderSize) {
    r->Error(kFanSizeField,
             absl::StrCat("the fan-out table of ", fan,
                          " bytes runs past the end of the file (", h.file_size,
                          " bytes)"));
    return e;
  }
  if (is_log && fan != 0) {
    r->Error(kFanSizeField,
             absl::StrCat(
                 "a log has no fan-out table, but the fan-out size is ", fan));
  }
  if (h.offset < 0) {
    r->Error(kOffsetField, absl::StrCat("negative offset ", h.offset));
    return e;
  }
  e.usable = true;
  e.header_size = kHeaderSize + fan;
  const uint64_t offset = static_cast<uint64_t>(h.offset);
  if (offset % entry != 0) {
    r->Error(kOffsetField,
             absl::StrCat("offset ", offset,
                          " is not a multiple of the entry size ", entry, " (",
                          offset / entry, " records and ", offset % entry,
                          " bytes); are --key-size/--value-size right?"));
  }
  e.claimed = offset / entry;
  const uint64_t held = h.file_size - e.header_size;
  if (offset > held) {
    r->Error(kOffsetField,
             absl::StrCat("offset ", offset, " claims records up to byte ",
                          e.header_size + offset, " but the file ends at byte ",
                          h.file_size, " (", offset - held, " bytes missing)"));
    e.records = held / entry;
    if (held % entry != 0 && e.records < e.claimed) {
      const uint64_t at = e.header_size + e.records * entry;
      r->Error(at, absl::StrCat("truncated record ", e.records, ": only ",
                                held % entry, " of its ", entry,
                                " bytes are in the file"));
    }
  } else {
    e.records = e.claimed;
    if (held > offset &&
        !(is_log && AllZeros(*h.file, e.header_size + offset, h.file_size))) {
      r->Warning(e.header_size + offset,
                 absl::StrCat(held - offset,
                              " bytes of trailing garbage past the committed "
                              "records (an unflushed or torn write; the index "
                              "ignores them)"));
    }
  }
  return e;
}

// Reads records [0, n) of a file in large blocks and calls f(index, record).
// Stops at the first false from f.
template <typename F>
absl::Status ForEachRecord(const File& file, uint64_t header_size, uint64_t n,
                           size_t entry, const ProgressFn& progress,
                           absl::string_view label, F f) {
  const uint64_t per_block = std::max<uint64_t>(1, kScanBytes / entry);
  std::string buf(static_cast<size_t>(std::min(per_block, n) * entry), '\0');
  for (uint64_t first = 0; first < n;) {
    const uint64_t count = std::min(per_block, n - first);
    absl::Status s = ReadFully(file, header_size + first * entry,
                               static_cast<size_t>(count * entry), &buf[0]);
    if (!s.ok()) return s;
    for (uint64_t j = 0; j < count; ++j) {
      if (!f(first + j, buf.data() + j * entry)) return absl::OkStatus();
    }
    first += count;
    if (progress) progress(label, first * entry, n * entry);
  }
  return absl::OkStatus();
}

// The key filter next to a data file or a run (filter/key_filter.h): one that
// the index would not use (absent, damaged, stale) is only a note or a
// warning, but one it would use must hold every key of the data file, or
// finds would miss bindings. Its keys are checked during CheckData's scan of
// the records, so that the data file is read once.
class FilterCheck {
 public:
  // `h` is the data file's header; `is_run`: a run of a tiered store, whose
  // filter only a merge that folds the run replaces.
  FilterCheck(std::vector<Problem>* problems, const Header& h, bool is_run,
              size_t max_reports)
      : name_(absl::StrCat(h.name, ".filter")),
        path_(DataFile::FilterPath(h.path)),
        is_run_(is_run),
        r_(problems, path_, max_reports) {}

  // Reads the filter and decides whether finds would use it.
  void Load(Env* env, const Header& h, const Extent& e, const Schema& schema,
            std::vector<std::string>* notes) {
    absl::StatusOr<bool> exists = env->FileExists(path_);
    if (!exists.ok()) {
      Fail(exists.status());
      return;
    }
    if (!*exists) {
      notes->push_back(absl::StrCat(
          name_, ": absent (finds of absent keys search the ",
          is_run_ ? "run itself)" : "data file; the next merge writes one)"));
      return;
    }
    if (e.records == 0) return;
    const size_t entry = schema.entry_size();
    std::string first(entry, '\0'), last(entry, '\0');
    std::string fanout(e.header_size - kHeaderSize, '\0');
    absl::Status s = ReadFully(*h.file, e.header_size, entry, &first[0]);
    if (s.ok()) {
      s = ReadFully(*h.file, e.header_size + (e.records - 1) * entry, entry,
                    &last[0]);
    }
    if (s.ok() && !fanout.empty()) {
      s = ReadFully(*h.file, kHeaderSize, fanout.size(), &fanout[0]);
    }
    if (!s.ok()) {
      Fail(s);
      return;
    }
    absl::StatusOr<std::string> bytes = env->ReadFileToString(path_);
    if (!bytes.ok()) {
      Fail(bytes.status());
      return;
    }
    bytes_ = *std::move(bytes);
    std::string why;
    filter_ = KeyFilter::Parse(
        bytes_, FilterTargetOf(h.generation, e.records, first, last, fanout),
        schema.hash_bits, &why);
    if (filter_ == nullptr) {
      r_.Warning(
          absl::nullopt,
          absl::StrCat("not used by finds (", why, "); ",
                       is_run_ ? "the merge that folds the run deletes it"
                               : "the next merge replaces it"));
      notes->push_back(absl::StrCat(name_, ": not used (", why, ")"));
    }
  }

  // One data record, at byte `at` of the data file.
  void Visit(uint64_t i, uint64_t at, absl::string_view key, uint64_t hash) {
    if (filter_ == nullptr || filter_->MayContain(hash, KeyFingerprint(key))) {
      return;
    }
    ++missing_;
    r_.Limited("filter", Severity::kError, absl::nullopt,
               absl::StrCat("lacks the key of data record ", i, " (data byte ",
                            at, "): finds would miss it"));
  }

  // After the scan; `complete`: every record was visited.
  void Finish(bool complete, std::vector<std::string>* notes) {
    if (filter_ == nullptr || !complete) return;
    r_.Summarize("filter", Severity::kError, "keys missing from the filter");
    notes->push_back(
        absl::StrCat(name_, ": ", filter_->blocks(), " blocks of 64 bytes, ",
                     filter_->probes(), " bits per key, for this data file; ",
                     missing_ == 0 ? "holds every key"
                                   : absl::StrCat(missing_, " keys missing")));
  }

 private:
  void Fail(const absl::Status& s) {
    r_.Add(Severity::kError, CategoryOf(s), absl::nullopt,
           std::string(s.message()));
  }

  const std::string name_;
  const std::string path_;
  const bool is_run_;
  Reporter r_;
  std::string bytes_;  // what filter_ points into
  std::unique_ptr<const KeyFilter> filter_;
  uint64_t missing_ = 0;
};

// The checksum sidecar next to a data file or a run (filter/data_sums.h): one
// that merges would not use (absent, damaged, stale) is a note; with one they
// would use, every block of the data file must match its sum, or the next
// merge that reads the file refuses it.
void CheckSums(Env* env, const Header& h, const ProgressFn& progress,
               Reporter* r, std::vector<std::string>* notes) {
  const std::string name = absl::StrCat(h.name, ".sum");
  const std::string path = DataFile::SumsPath(h.path);
  SumsTarget target;
  target.generation = h.generation;
  target.file_bytes = h.file_size;
  std::string why;
  absl::StatusOr<std::unique_ptr<const DataSums>> sums =
      DataSums::Read(env, path, target, &why);
  if (!sums.ok()) {
    r->Add(Severity::kError, CategoryOf(sums.status()), absl::nullopt,
           absl::StrCat(name, ": ", sums.status().message()));
    return;
  }
  if (*sums == nullptr) {
    notes->push_back(absl::StrCat(
        name, ": ",
        why == "absent" ? "absent" : absl::StrCat("not used (", why, ")"),
        "; merges read ", h.name, " unchecked until one writes a new one"));
    return;
  }
  const DataSums& s = **sums;
  std::string buf;
  uint64_t bad = 0;
  for (uint64_t i = 0; i < s.blocks(); ++i) {
    const uint64_t begin = s.BlockBegin(i);
    const uint64_t end = s.BlockEnd(i);
    buf.resize(static_cast<size_t>(end - begin));
    absl::Status st = ReadFully(*h.file, begin, buf.size(), &buf[0]);
    if (!st.ok()) {
      r->Add(Severity::kError, CategoryOf(st), begin,
             std::string(st.message()));
      return;
    }
    if (!s.Matches(i, buf)) {
      ++bad;
      r->Limited("sums", Severity::kError, begin,
                 absl::StrCat("bytes [", begin, ", ", end,
                              ") do not match their checksum in ", name,
                              ": the file is damaged there (merges refuse "
                              "to read it)"));
    }
    if (progress) progress(name, end, s.target().file_bytes);
  }
  r->Summarize("sums", Severity::kError, "damaged blocks");
  notes->push_back(absl::StrCat(
      name, ": ", s.blocks(), s.blocks() == 1 ? " block" : " blocks", " of ",
      s.block_size(), " bytes; ",
      bad == 0 ? "all match" : absl::StrCat(bad, " do not match")));
}

// A journal whose log is gone: removing log_async after its copy into the
// log removes the file first, and a failure or a crash may keep the journal.
// It vouches for nothing; the writer's next open removes it.
void NoteOrphanJournal(Env* env, const std::string& log_path,
                       const std::string& name,
                       std::vector<std::string>* notes) {
  const std::string journal = FlushSums::PathFor(log_path);
  for (const std::string& path : {journal, journal + ".tmp"}) {
    absl::StatusOr<bool> exists = env->FileExists(path);
    if (!exists.ok() || !*exists) continue;
    notes->push_back(absl::StrCat(
        name, path.size() > journal.size() ? ".sum.tmp" : ".sum",
        ": a journal without its log (", name,
        " is absent): it vouches for nothing, and the index removes it at "
        "its next open"));
  }
}

// The journal of a log (io/flush_sums.h, Options::log_checksums): absent is
// normal (the option is off, or the last writer closed cleanly); one that
// does not apply is a note; one that applies but does not match every record
// is a warning, since the next writer's open restores or cuts those records.
void CheckLogSums(Env* env, const Header& h, const Extent& e,
                  const Schema& schema, Reporter* r,
                  std::vector<std::string>* notes) {
  const std::string name = absl::StrCat(h.name, ".sum");
  absl::StatusOr<bool> exists = env->FileExists(FlushSums::PathFor(h.path));
  if (exists.ok() && !*exists) return;
  const uint64_t entry = schema.entry_size();
  absl::StatusOr<FlushSums::Verdict> verdict =
      FlushSums::Verify(env, *h.file, h.path, h.generation, e.header_size,
                        entry, e.records * entry);
  if (!exists.ok() || !verdict.ok()) {
    const absl::Status& st = exists.ok() ? verdict.status() : exists.status();
    r->Add(Severity::kError, CategoryOf(st), absl::nullopt,
           absl::StrCat(name, ": ", st.message()));
    return;
  }
  if (!verdict->applies) {
    notes->push_back(absl::StrCat(name, ": not used (", verdict->detail,
                                  "); the next writer's open replaces it"));
    return;
  }
  const uint64_t vouched = verdict->verified_end / entry;
  const uint64_t restorable = verdict->restorable_end / entry;
  if (restorable > vouched) {
    r->Warning(e.header_size + verdict->verified_end,
               absl::StrCat(name, " holds ", restorable - vouched,
                            " records from record ", vouched,
                            " on that the log does not (pages a power cut "
                            "kept from the disk): the next writer's open "
                            "restores them"));
  }
  if (restorable < e.records) {
    r->Warning(
        e.header_size + verdict->restorable_end,
        absl::StrCat(name, " vouches for ", restorable, " of the ", e.records,
                     " records: the rest were flushed without an "
                     "fsync and may be pages a power cut kept from "
                     "the disk; the next writer's open cuts them"));
  }
  if (restorable > vouched || restorable < e.records) return;
  notes->push_back(
      absl::StrCat(name, ": vouches for all ", e.records, " records"));
}

// The fan-out table of a data file, validated slot by slot.
struct FanCheck {
  bool present = false;
  std::vector<uint64_t> slots;
  // Set when Fanout::Import accepts the table.
  absl::optional<Fanout> fanout;
};

FanCheck CheckFanout(const Header& h, const Extent& e, const Schema& schema,
                     Reporter* r) {
  FanCheck fc;
  const uint64_t fan = e.header_size - kHeaderSize;
  const uint64_t entry = schema.entry_size();
  if (fan == 0) {
    if (e.claimed > 0) {
      r->Error(kFanSizeField,
               absl::StrCat("the data file has ", e.claimed,
                            " records but no fan-out table (fan-out size 0)"));
    }
    return fc;
  }
  std::string bytes(static_cast<size_t>(fan), '\0');
  absl::Status s = ReadFully(*h.file, kHeaderSize, bytes.size(), &bytes[0]);
  if (!s.ok()) {
    r->Add(Severity::kError, CategoryOf(s), kHeaderSize,
           absl::StrCat("cannot read the fan-out table: ", s.message()));
    return fc;
  }
  fc.present = true;
  const uint64_t count = fan / 8;
  bool bad = false;
  if ((count & (count - 1)) != 0) {
    r->Error(kFanSizeField,
             absl::StrCat("the fan-out table has ", count,
                          " slots, which is not a power of two"));
    bad = true;
  } else if (schema.hash_bits < 64 &&
             count > (uint64_t{1} << schema.hash_bits)) {
    r->Error(kFanSizeField,
             absl::StrCat("the fan-out table has ", count,
                          " slots, more than 2^hash_bits (hash bits ",
                          schema.hash_bits, "); is --hash-bits right?"));
    bad = true;
  }
  // Data bytes as the header claims them: slots refer to those.
  const uint64_t data_bytes = e.claimed * entry;
  fc.slots.resize(static_cast<size_t>(count));
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = kHeaderSize + 8 * i;
    const uint64_t slot = absl::big_endian::Load64(bytes.data() + 8 * i);
    fc.slots[static_cast<size_t>(i)] = slot;
    if (slot < prev) {
      r->Limited(
          "slot", Severity::kError, at,
          absl::StrCat("fan-out slot ", i, " (", slot,
                       ") is smaller than the previous slot (", prev, ")"));
      bad = true;
    }
    if (slot % entry != 0) {
      r->Limited("slot", Severity::kError, at,
                 absl::StrCat("fan-out slot ", i, " (", slot,
                              ") is not a multiple of the entry size ", entry));
      bad = true;
    }
    if (data_bytes == 0 ? slot != 0 : slot >= data_bytes) {
      r->Limited(
          "slot", Severity::kError, at,
          absl::StrCat("fan-out slot ", i, " (", slot,
                       ") points past the last record (the records hold ",
                       data_bytes, " bytes)"));
      bad = true;
    }
    prev = std::max(prev, slot);
  }
  r->Summarize("slot", Severity::kError, "invalid fan-out slots");
  absl::StatusOr<Fanout> imported =
      Fanout::Import(bytes, schema.hash_bits, entry, data_bytes, h.path);
  if (imported.ok()) {
    fc.fanout = *std::move(imported);
  } else if (!bad) {
    r->Error(kHeaderSize, std::string(imported.status().message()));
  }
  return fc;
}

uint64_t HashOf(const Schema& schema, const char* record) {
  return schema.hash(EntryKey(schema, record));
}

// Whether the data is sorted by `schema`'s hash (used for hints only).
bool IsSorted(const Header& h, const Extent& e, const Schema& schema) {
  bool sorted = true;
  bool first = true;
  uint64_t prev = 0;
  absl::Status s =
      ForEachRecord(*h.file, e.header_size, e.records, schema.entry_size(),
                    nullptr, "", [&](uint64_t, const char* rec) {
                      const uint64_t hash = HashOf(schema, rec);
                      if (!first && hash < prev) sorted = false;
                      first = false;
                      prev = hash;
                      return sorted;
                    });
  return s.ok() && sorted;
}

void CheckData(const Header& h, const Extent& e, const Schema& schema,
               const Options& options, const ProgressFn& progress, Reporter* r,
               FilterCheck* filter, std::vector<std::string>* notes) {
  const uint64_t entry = schema.entry_size();
  FanCheck fc = CheckFanout(h, e, schema, r);
  const Fanout* fan = fc.fanout ? &*fc.fanout : nullptr;
  const size_t nb_fans = fan != nullptr ? fan->nb_fans() : 0;

  // Per bucket: whether it holds a record, the offset of its last record, and
  // how many records a wrong slot hides from lookups.
  std::vector<bool> seen(nb_fans, false);
  std::vector<uint64_t> last(nb_fans, 0);
  std::vector<uint64_t> hidden(nb_fans, 0);
  struct Unreachable {
    uint64_t index, hash, low, high;
    size_t bucket, blamed;
  };
  std::vector<Unreachable> unreachable;

  // Keys of the current run of equal hashes -> their record index.
  absl::flat_hash_map<std::string, uint64_t> run;
  std::string prev_key;
  uint64_t prev_hash = 0;
  const std::string hash_name = HashName(options);

  absl::Status s = ForEachRecord(
      *h.file, e.header_size, e.records, entry, progress, h.name,
      [&](uint64_t i, const char* rec) {
        const absl::string_view key = EntryKey(schema, rec);
        const uint64_t hash = schema.hash(key);
        const uint64_t off = i * entry;
        const uint64_t at = e.header_size + off;
        filter->Visit(i, at, key, hash);
        if (i > 0 && hash < prev_hash) {
          r->Limited("order", Severity::kError, at,
                     absl::StrCat("record ", i, " is out of order: its ",
                                  hash_name, " hash ", Hex(hash),
                                  " is smaller than the previous record's ",
                                  Hex(prev_hash)));
        }
        if (i > 0 && hash == prev_hash) {
          // A run of equal hashes: remember its keys (most runs have one
          // record, so the map is only filled from the second record on).
          if (run.empty()) run.emplace(prev_key, i - 1);
          auto inserted = run.emplace(std::string(key), i);
          if (!inserted.second) {
            const uint64_t j = inserted.first->second;
            r->Limited("duplicate", Severity::kError, at,
                       absl::StrCat("record ", i, " repeats the key of record ",
                                    j, " (byte ", e.header_size + j * entry,
                                    "): key \"", absl::CHexEscape(key), "\""));
          }
        } else if (!run.empty()) {
          run.clear();
        }
        prev_key.assign(key.data(), key.size());
        prev_hash = hash;
        if (fan != nullptr) {
          const size_t b = fan->Bucket(hash);
          seen[b] = true;
          last[b] = off;
          const Fanout::Range range = fan->Search(hash);
          if (off < range.low || off > range.high) {
            // Too far right: this bucket's slot is too small; too far left: the
            // previous bucket's slot (the range's low end) is too large.
            const size_t blamed = off > range.high ? b : b - 1;
            ++hidden[blamed];
            if (unreachable.size() < options.max_reports) {
              unreachable.push_back(
                  {i, hash, range.low, range.high, b, blamed});
            }
          }
        }
        return true;
      });
  filter->Finish(s.ok(), notes);
  if (!s.ok()) {
    r->Add(Severity::kError, CategoryOf(s), absl::nullopt,
           absl::StrCat("cannot read the records: ", s.message()));
    return;
  }
  r->Summarize("order", Severity::kError, "records out of order");
  r->Summarize("duplicate", Severity::kError, "repeated keys");

  size_t wrong_slots = 0;
  size_t hidden_total = 0;
  if (fan != nullptr) {
    // The table a writer builds from these records (docs/format.md §6.3: each
    // slot holds the start of its bucket's last record; empty buckets repeat
    // the previous slot).
    std::vector<uint64_t> expected(nb_fans, 0);
    uint64_t prev = 0;
    for (size_t b = 0; b < nb_fans; ++b) {
      expected[b] = seen[b] && last[b] != 0 ? last[b] : prev;
      prev = expected[b];
    }
    for (size_t b = 0; b < nb_fans; ++b) {
      hidden_total += hidden[b];
      if (fc.slots[b] == expected[b]) continue;
      ++wrong_slots;
      const uint64_t at = kHeaderSize + 8 * b;
      if (hidden[b] > 0) {
        r->Limited("fan", Severity::kError, at,
                   absl::StrCat("fan-out slot ", b, " holds ", fc.slots[b],
                                ", expected ", expected[b], ": ", hidden[b],
                                " record(s) cannot be found by lookups that "
                                "trust the table (the "
                                "OCaml library's; kvindex then searches the "
                                "whole file)"));
      } else {
        r->Limited("fan", Severity::kWarning, at,
                   absl::StrCat("fan-out slot ", b, " holds ", fc.slots[b],
                                ", expected ", expected[b],
                                " (lookups still find every record)"));
      }
    }
    r->Summarize("fan", Severity::kError, "wrong fan-out slots");
    // Records outside their range although the slots are the expected ones:
    // only possible when the data is out of order.
    for (const Unreachable& u : unreachable) {
      if (fc.slots[u.blamed] != expected[u.blamed]) continue;
      r->Error(e.header_size + u.index * entry,
               absl::StrCat("record ", u.index, " (hash ", Hex(u.hash),
                            ", fan-out bucket ", u.bucket,
                            ") lies outside its fan-out range [", u.low, ", ",
                            u.high,
                            "]: lookups that trust the table cannot find it"));
    }
  }

  const size_t out_of_order = r->Count("order");
  if (out_of_order > 0) {
    // A common mistake is the wrong --hash: say so when the other hash fits.
    Schema other = schema;
    const bool was_ocaml = options.hash == HashKind::kOcaml;
    other.hash = was_ocaml ? kXxh3ByBits[64] : &OcamlHash;
    other.hash_bits = was_ocaml ? 64 : kOcamlHashBits;
    if (IsSorted(h, e, other)) {
      notes->push_back(absl::StrCat(
          "hint: the records of ", h.name, " are sorted by the ",
          was_ocaml ? "xxh3" : "ocaml", " hash: run again with --hash ",
          was_ocaml ? "xxh3" : "ocaml"));
    }
  }

  std::string note = absl::StrCat(h.name, ": ", e.records, " records");
  if (out_of_order == 0) {
    absl::StrAppend(&note, ", sorted by ", hash_name);
  } else {
    absl::StrAppend(&note, ", ", out_of_order, " out of order for ", hash_name);
  }
  const size_t dups = r->Count("duplicate");
  absl::StrAppend(&note, dups == 0
                             ? ", no repeated key"
                             : absl::StrCat(", ", dups, " repeated keys"));
  if (fan != nullptr) {
    absl::StrAppend(&note, ", fan-out ", nb_fans,
                    nb_fans == 1 ? " slot" : " slots");
    if (wrong_slots > 0) absl::StrAppend(&note, " (", wrong_slots, " wrong)");
    if (hidden_total > 0) {
      absl::StrAppend(&note, ", ", hidden_total, " records unreachable");
    }
  } else if (fc.present) {
    absl::StrAppend(&note, ", fan-out table invalid");
  }
  notes->push_back(std::move(note));
}

// The checks of a complete data file (`data`, or a run of a tiered store)
// whose header is usable: its key filter, fan-out table and records.
void CheckDataFile(Env* env, const Header& h, const Extent& e, bool is_run,
                   const Schema& schema, const Options& options,
                   const ProgressFn& progress, Reporter* r, Report* report) {
  FilterCheck filter(&report->problems, h, is_run, options.max_reports);
  filter.Load(env, h, e, schema, &report->notes);
  CheckData(h, e, schema, options, progress, r, &filter, &report->notes);
  CheckSums(env, h, progress, r, &report->notes);
}

// A data file's header checked on its own; the extent is unusable (and a note
// says so) when the header is.
Extent CheckDataHeader(const Header& h, const Schema& schema, Reporter* r,
                       std::vector<std::string>* notes) {
  if (!h.ok) {
    notes->push_back(absl::StrCat(h.name, ": unreadable header"));
    return Extent();
  }
  Extent e = CheckHeader(h, schema, /*is_log=*/false, r);
  if (!e.usable) notes->push_back(absl::StrCat(h.name, ": invalid header"));
  return e;
}

// ---- The tiered layout (runset/manifest.h) ----

// Byte positions of the manifest's fields: after the 8-byte magic and the
// 4-byte version.
constexpr uint64_t kManifestEntrySizeField = 12;
constexpr uint64_t kManifestGenerationField = 16;

// The manifest of a store, as found on disk.
struct ManifestLoad {
  bool exists = false;
  absl::optional<Manifest> manifest;  // set when it decodes
  std::string error;                  // why not, when it exists
};

// Reads and decodes the manifest; an unreadable or undecodable one is an
// error in `problems`.
ManifestLoad LoadManifest(Env* env, const std::string& root, size_t max_reports,
                          std::vector<Problem>* problems) {
  ManifestLoad load;
  const std::string path = ManifestPath(StoreDir(root));
  absl::StatusOr<std::string> bytes = env->ReadFileToString(path);
  if (absl::IsNotFound(bytes.status())) return load;
  load.exists = true;
  Reporter r(problems, path, max_reports);
  if (!bytes.ok()) {
    load.error = absl::StrCat("cannot read: ", bytes.status().message());
    r.Add(Severity::kError, Category::kIo, absl::nullopt, load.error);
    return load;
  }
  absl::StatusOr<Manifest> m = DecodeManifest(*bytes, path);
  if (!m.ok()) {
    // The message names the path, which the problem carries already.
    absl::string_view why = m.status().message();
    absl::ConsumePrefix(&why, absl::StrCat(path, ": "));
    load.error = std::string(why);
    r.Error(absl::nullopt, load.error);
    return load;
  }
  load.manifest = *std::move(m);
  return load;
}

enum class RunFileKind { kRun, kFilter, kFilterTmp, kSums, kSumsTmp };

struct RunFile {
  uint64_t id = 0;
  RunFileKind kind = RunFileKind::kRun;
};

// The run a file of the store directory belongs to, when its name is one the
// tiered layout gives: RunFileName(id), its filter with ".filter" and
// ".filter.tmp" (where KeyFilter::Write writes it first), and its checksum
// sidecar with ".sum" and ".sum.tmp" (DataSums::Write).
absl::optional<RunFile> ParseRunFile(absl::string_view name) {
  RunFile f;
  if (absl::ConsumeSuffix(&name, ".filter.tmp")) {
    f.kind = RunFileKind::kFilterTmp;
  } else if (absl::ConsumeSuffix(&name, ".filter")) {
    f.kind = RunFileKind::kFilter;
  } else if (absl::ConsumeSuffix(&name, ".sum.tmp")) {
    f.kind = RunFileKind::kSumsTmp;
  } else if (absl::ConsumeSuffix(&name, ".sum")) {
    f.kind = RunFileKind::kSums;
  }
  if (name == RunFileName(kDataRunId)) {
    f.id = kDataRunId;
    return f;
  }
  absl::string_view digits = name;
  // RunFileName(id) == name rejects what SimpleAtoi accepts but a writer never
  // names a run: signs, leading zeros, "run.0".
  if (!absl::ConsumePrefix(&digits, "run.") ||
      !absl::SimpleAtoi(digits, &f.id) || RunFileName(f.id) != name) {
    return absl::nullopt;
  }
  return f;
}

bool Lists(const Manifest& m, uint64_t id) {
  return std::any_of(m.runs.begin(), m.runs.end(),
                     [id](const RunEntry& run) { return run.id == id; });
}

bool Retires(const Manifest& m, uint64_t id) {
  return std::find(m.retired.begin(), m.retired.end(), id) != m.retired.end();
}

// The names in directory `dir`, sorted. Env has no directory listing
// (io/env.h), so this one reads the file system directly.
absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot list the directory: ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  int error = 0;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      error = errno;
      break;
    }
    const absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot list the directory: ", std::strerror(error)));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string ManifestNote(const Manifest& m) {
  std::vector<std::string> runs;
  for (const RunEntry& run : m.runs) runs.push_back(RunFileName(run.id));
  std::string note = absl::StrCat("manifest: generation ", m.generation,
                                  ", next id ", m.next_id, ", ", m.runs.size(),
                                  m.runs.size() == 1 ? " run" : " runs");
  if (!runs.empty())
    absl::StrAppend(&note, " (", absl::StrJoin(runs, ", "), ")");
  if (!m.retired.empty()) {
    absl::StrAppend(&note, ", retired ids ", absl::StrJoin(m.retired, ", "));
  }
  return note;
}

// The header fields of a run that its manifest entry repeats.
void CompareWithEntry(const Header& h, const RunEntry& entry,
                      const Schema& schema, Reporter* r) {
  if (h.file == nullptr) return;  // not opened: reported already
  if (h.file_size != entry.bytes) {
    r->Error(absl::nullopt,
             absl::StrCat("the file has ", h.file_size,
                          " bytes, but the manifest lists run ", entry.id,
                          " with ", entry.bytes, " bytes"));
  }
  if (!h.ok) return;
  if (h.generation != entry.generation) {
    r->Error(kGenerationField,
             absl::StrCat("generation ", h.generation,
                          ", but the manifest lists run ", entry.id,
                          " with generation ", entry.generation));
  }
  if (h.offset >= 0 &&
      static_cast<uint64_t>(h.offset) / schema.entry_size() != entry.records) {
    r->Error(kOffsetField,
             absl::StrCat("the offset claims ",
                          static_cast<uint64_t>(h.offset) / schema.entry_size(),
                          " records, but the manifest lists run ", entry.id,
                          " with ", entry.records, " records"));
  }
}

// A listed run found under `h`: it matches its entry and is a sound data file.
void CheckRun(Env* env, const Header& h, const RunEntry& entry,
              const Schema& schema, const Options& options,
              const ProgressFn& progress, Reporter* r, Report* report) {
  CompareWithEntry(h, entry, schema, r);
  const Extent e = CheckDataHeader(h, schema, r, &report->notes);
  if (e.usable) {
    CheckDataFile(env, h, e, /*is_run=*/true, schema, options, progress, r,
                  report);
  }
}

// Whether `data` holds `entry`, the only run of `m`, missing under its own
// name: the conversion back to the single-file layout renamed it, and
// committed (runset/manifest.h). Loads data's header into `h`.
bool DataHoldsRun(Env* env, const std::string& root, const Manifest& m,
                  const RunEntry& entry, const Schema& schema, Header* h) {
  if (m.runs.size() != 1 || entry.id == kDataRunId) return false;
  std::vector<Problem> ignored;  // data is checked as the run if it holds it
  Reporter quiet(&ignored, "", 0);
  if (!LoadHeader(env, root, RunFileName(kDataRunId), &quiet, h) || !h->ok) {
    return false;
  }
  return h->generation == entry.generation && h->file_size == entry.bytes &&
         h->offset >= 0 &&
         static_cast<uint64_t>(h->offset) / schema.entry_size() ==
             entry.records;
}

// One run the manifest lists. Sets `*data_holds_run` when `data` stands for
// it (see DataHoldsRun).
void CheckListedRun(Env* env, const std::string& root, const Manifest& m,
                    const RunEntry& entry, const Schema& schema,
                    const Options& options, const ProgressFn& progress,
                    bool* data_holds_run, Report* report) {
  const std::string name = RunFileName(entry.id);
  Reporter r(&report->problems, StorePath(root, name), options.max_reports);
  Header h;
  if (LoadHeader(env, root, name, &r, &h)) {
    CheckRun(env, h, entry, schema, options, progress, &r, report);
    return;
  }
  if (DataHoldsRun(env, root, m, entry, schema, &h)) {
    *data_holds_run = true;
    r.Warning(absl::nullopt,
              absl::StrCat("missing, but data holds run ", entry.id,
                           ": a conversion to the single-file layout "
                           "committed (a writer opening the store in that "
                           "layout finishes it)"));
    Reporter data(&report->problems, h.path, options.max_reports);
    CheckRun(env, h, entry, schema, options, progress, &data, report);
    return;
  }
  r.Error(absl::nullopt,
          absl::StrCat("missing: the manifest lists run ", entry.id,
                       " (generation ", entry.generation, ", ", entry.records,
                       " records); the index refuses to open the store"));
}

// What a run file is, as the start of a phrase naming its run.
const char* RunFileWhat(RunFileKind kind) {
  switch (kind) {
    case RunFileKind::kRun:
      return "";
    case RunFileKind::kFilter:
      return "the key filter of ";
    case RunFileKind::kFilterTmp:
      return "a key filter being written for ";
    case RunFileKind::kSums:
      return "the checksum sidecar of ";
    case RunFileKind::kSumsTmp:
      return "a checksum sidecar being written for ";
  }
  return "";
}

// Why a file of StaleRunFiles(m) is stale; `run` is its parse (none for
// manifest.tmp).
std::string StaleReason(const Manifest& m, const absl::optional<RunFile>& run) {
  if (!run) return "a manifest being written when its writer stopped";
  const char* what = RunFileWhat(run->kind);
  if (run->id == m.next_id) {
    return absl::StrCat(what, "the output of a merge that did not commit (run ",
                        run->id, ", the manifest's next id)");
  }
  return absl::StrCat(what, "run ", run->id,
                      ", which the manifest retires (a committed merge folded "
                      "it)");
}

// The files the next writer open deletes (StaleRunFiles), when present; a
// `data` that holds the only run is not one of them.
void CheckStaleFiles(Env* env, const std::string& root, const Manifest& m,
                     bool data_holds_run, const Options& options,
                     Report* report) {
  const std::string dir = StoreDir(root);
  for (const std::string& path : StaleRunFiles(dir, m)) {
    const absl::optional<RunFile> run =
        ParseRunFile(absl::string_view(path).substr(dir.size() + 1));
    if (data_holds_run && run && run->id == kDataRunId) continue;
    Reporter r(&report->problems, path, options.max_reports);
    absl::StatusOr<bool> exists = env->FileExists(path);
    if (!exists.ok()) {
      r.Add(Severity::kError, Category::kIo, absl::nullopt,
            std::string(exists.status().message()));
      continue;
    }
    if (!*exists) continue;
    r.Warning(absl::nullopt,
              absl::StrCat("leftover: ", StaleReason(m, run),
                           "; the next writer open deletes it (the index "
                           "never reads it)"));
  }
}

// `data` and its filter next to a manifest that neither lists nor retires id
// 0: the index ignores them. A data file without records is what a merge of
// an empty log leaves, which the takeover does not list: only a note.
void CheckUnlistedData(Env* env, const std::string& root, const Manifest& m,
                       bool data_holds_run, const Options& options,
                       Report* report) {
  if (data_holds_run || Lists(m, kDataRunId) || Retires(m, kDataRunId)) return;
  const std::string data = RunFileName(kDataRunId);
  std::vector<Problem> ignored;  // an ignored file's damage does not matter
  Reporter quiet(&ignored, "", 0);
  Header h;
  if (LoadHeader(env, root, data, &quiet, &h)) {
    if (h.ok && h.offset == 0) {
      report->notes.push_back(
          "data: no records, not a run of the manifest (the index ignores it)");
    } else {
      Reporter r(&report->problems, h.path, options.max_reports);
      r.Warning(absl::nullopt,
                "leftover: the manifest neither lists nor retires it (run 0); "
                "the index ignores it");
    }
  }
  const std::string filter = DataFile::FilterPath(StorePath(root, data));
  const std::string sums = DataFile::SumsPath(StorePath(root, data));
  for (const std::string& path :
       {filter, filter + ".tmp", sums, sums + ".tmp"}) {
    absl::StatusOr<bool> exists = env->FileExists(path);
    if (!exists.ok() || !*exists) continue;
    Reporter r(&report->problems, path, options.max_reports);
    r.Warning(absl::nullopt,
              absl::StrCat("leftover: a ",
                           path == filter || path == filter + ".tmp"
                               ? "key filter"
                               : "checksum sidecar",
                           " of data, which the manifest neither "
                           "lists nor retires (run 0); the index ignores it"));
  }
}

// The names in the store directory of `root`, sorted; nullopt when it cannot
// be listed, after reporting why as an I/O error of the directory.
absl::optional<std::vector<std::string>> ListStoreDir(const std::string& root,
                                                      const Options& options,
                                                      Report* report) {
  const std::string dir = StoreDir(root);
  absl::StatusOr<std::vector<std::string>> names = ListDirectory(dir);
  if (!names.ok()) {
    Reporter r(&report->problems, dir, options.max_reports);
    r.Add(Severity::kError, Category::kIo, absl::nullopt,
          std::string(names.status().message()));
    return absl::nullopt;
  }
  return *std::move(names);
}

// Run files of ids the manifest does not account for: neither listed, nor
// stale (see StaleRunFiles). `data` is checked by CheckUnlistedData.
void CheckUnknownRunFiles(const std::string& root, const Manifest& m,
                          const Options& options, Report* report) {
  const absl::optional<std::vector<std::string>> names =
      ListStoreDir(root, options, report);
  if (!names) return;
  const std::vector<std::string> stale = StaleRunFiles(StoreDir(root), m);
  for (const std::string& name : *names) {
    const absl::optional<RunFile> run = ParseRunFile(name);
    if (!run || run->id == kDataRunId) continue;
    const std::string path = StorePath(root, name);
    if (std::find(stale.begin(), stale.end(), path) != stale.end()) continue;
    Reporter r(&report->problems, path, options.max_reports);
    if (!Lists(m, run->id)) {
      r.Error(absl::nullopt,
              absl::StrCat("unknown file: ",
                           run->kind == RunFileKind::kRun ? ""
                           : run->kind == RunFileKind::kFilter ||
                                   run->kind == RunFileKind::kFilterTmp
                               ? "a filter of "
                               : "a checksum sidecar of ",
                           "run ", run->id,
                           ", which the manifest neither lists nor retires "
                           "(next id ",
                           m.next_id, ")"));
    } else if (run->kind == RunFileKind::kFilterTmp ||
               run->kind == RunFileKind::kSumsTmp) {
      r.Warning(
          absl::nullopt,
          absl::StrCat("leftover: ", RunFileWhat(run->kind), "run ", run->id,
                       " when its writer stopped; never read (deleted "
                       "once a merge folds the run)"));
    }
  }
}

// With a manifest that does not decode, the runs are unknown: each data file
// of the directory (`data`, `run.<id>`) is checked on its own.
void CheckRunFilesAlone(Env* env, const std::string& root, const Schema& schema,
                        const Options& options, const ProgressFn& progress,
                        Report* report) {
  report->notes.push_back(
      "manifest: unusable; each run file is checked on its own");
  const absl::optional<std::vector<std::string>> names =
      ListStoreDir(root, options, report);
  if (!names) return;
  for (const std::string& name : *names) {
    const absl::optional<RunFile> run = ParseRunFile(name);
    if (!run || run->kind != RunFileKind::kRun) continue;
    Reporter r(&report->problems, StorePath(root, name), options.max_reports);
    Header h;
    if (!LoadHeader(env, root, name, &r, &h)) continue;
    const Extent e = CheckDataHeader(h, schema, &r, &report->notes);
    if (e.usable) {
      CheckDataFile(env, h, e, run->id != kDataRunId, schema, options, progress,
                    &r, report);
    }
  }
}

// A tiered store: its manifest, its runs and the run files next to them.
// `log` is the log's header, when usable.
void CheckTieredStore(Env* env, const std::string& root, const Schema& schema,
                      const Options& options, const ProgressFn& progress,
                      const ManifestLoad& load, bool cleared, Report* report) {
  if (!load.manifest) {
    CheckRunFilesAlone(env, root, schema, options, progress, report);
    return;
  }
  const Manifest& m = *load.manifest;
  report->notes.push_back(ManifestNote(m));
  Reporter r(&report->problems, ManifestPath(StoreDir(root)),
             options.max_reports);
  if (m.entry_size != schema.entry_size()) {
    r.Error(kManifestEntrySizeField,
            absl::StrCat("entry_size ", m.entry_size, ", but keys and values ",
                         "of ", schema.entry_size(),
                         " bytes; are --key-size/--value-size right?"));
  }
  bool data_holds_run = false;
  if (cleared) {
    report->notes.push_back(
        "runs: not checked (a clear made them stale; the next writer open "
        "deletes them)");
  } else {
    for (const RunEntry& entry : m.runs) {
      CheckListedRun(env, root, m, entry, schema, options, progress,
                     &data_holds_run, report);
    }
  }
  CheckStaleFiles(env, root, m, data_holds_run, options, report);
  CheckUnlistedData(env, root, m, data_holds_run, options, report);
  CheckUnknownRunFiles(root, m, options, report);
}

// Store and index directory exist; otherwise a kNoStore problem.
bool CheckStoreDir(Env* env, const std::string& root,
                   std::vector<Problem>* problems) {
  auto add = [&](const std::string& path, Category c, std::string message) {
    Problem p;
    p.category = c;
    p.path = path;
    p.message = std::move(message);
    problems->push_back(std::move(p));
  };
  absl::StatusOr<bool> root_exists = env->FileExists(root);
  if (!root_exists.ok()) {
    add(root, Category::kIo, std::string(root_exists.status().message()));
    return false;
  }
  if (!*root_exists) {
    add(root, Category::kNoStore, "no such directory");
    return false;
  }
  const std::string dir = StoreDir(root);
  absl::StatusOr<bool> dir_exists = env->FileExists(dir);
  if (!dir_exists.ok()) {
    add(dir, Category::kIo, std::string(dir_exists.status().message()));
    return false;
  }
  if (!*dir_exists) {
    add(dir, Category::kNoStore, "no such store");
    return false;
  }
  return true;
}

void AddNoFiles(const std::string& root, std::vector<Problem>* problems) {
  Problem p;
  p.category = Category::kNoStore;
  p.path = StoreDir(root);
  p.message =
      "no such store (none of data, log, log_async, merge, lock, manifest "
      "exists)";
  problems->push_back(std::move(p));
}

// The lock file's contents, or nullopt when it does not exist.
absl::optional<std::string> ReadLock(Env* env, const std::string& root,
                                     std::vector<Problem>* problems) {
  const std::string path = StorePath(root, "lock");
  absl::StatusOr<std::string> contents = env->ReadFileToString(path);
  if (absl::IsNotFound(contents.status())) return absl::nullopt;
  if (!contents.ok()) {
    Problem p;
    p.category = Category::kIo;
    p.path = path;
    p.message = absl::StrCat("cannot read: ", contents.status().message());
    problems->push_back(std::move(p));
    return std::string();
  }
  return *std::move(contents);
}

// Adds the header of file `name` to `st`, if the file exists; problems that
// make it unusable go to st->problems, and the first of them to its error.
void AddFileStat(Env* env, const std::string& root, const std::string& name,
                 const Options& options, StoreStat* st) {
  Header h;
  Reporter reporter(&st->problems, StorePath(root, name), options.max_reports);
  const size_t before = st->problems.size();
  if (!LoadHeader(env, root, name, &reporter, &h)) return;
  FileStat f;
  f.name = name;
  f.path = h.path;
  f.file_size = h.file_size;
  f.header_ok = h.ok;
  if (h.ok) {
    f.offset = h.offset;
    f.generation = h.generation;
    f.fan_size = h.fan_size;
  } else if (st->problems.size() > before) {
    f.error = st->problems.back().message;
  }
  st->files.push_back(std::move(f));
}

// StatJson's member for one file: its header, or why it is unusable.
nlohmann::ordered_json FileJson(const FileStat& f, int64_t entry) {
  nlohmann::ordered_json json;
  json["size"] = HumanSize(static_cast<int64_t>(f.file_size));
  if (!f.header_ok) {
    json["bytes"] = f.file_size;
    json["error"] = f.error;
    return json;
  }
  json["offset"] = f.offset;
  json["generation"] = f.generation;
  json["fanout_size"] = HumanSize(f.fan_size);
  json["entries"] = f.offset > 0 && entry > 0 ? f.offset / entry : 0;
  json["bytes"] = f.file_size;
  json["fanout_bytes"] = f.fan_size;
  return json;
}

// StatJson's "manifest" member: the manifest's fields, or why it is unusable.
nlohmann::ordered_json ManifestJson(const StoreStat& st) {
  nlohmann::ordered_json json;
  if (!st.manifest) {
    json["error"] = st.manifest_error;
    return json;
  }
  const Manifest& m = *st.manifest;
  json["generation"] = m.generation;
  json["next_id"] = m.next_id;
  json["entry_bytes"] = m.entry_size;
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const RunEntry& run : m.runs) {
    nlohmann::ordered_json r;
    r["id"] = run.id;
    r["file"] = RunFileName(run.id);
    r["slot"] = run.slot;
    r["records"] = run.records;
    r["bytes"] = run.bytes;
    r["generation"] = run.generation;
    runs.push_back(std::move(r));
  }
  json["runs"] = std::move(runs);
  json["retired"] = m.retired;
  return json;
}

// StatText's line for file `name`: its header, or why it is unusable.
void AppendFileText(const StoreStat& st, absl::string_view name,
                    std::string* out) {
  const uint64_t entry = st.key_size + st.value_size;
  absl::StrAppendFormat(out, "%-10s ", name);
  auto it = std::find_if(st.files.begin(), st.files.end(),
                         [&](const FileStat& f) { return f.name == name; });
  if (it == st.files.end()) {
    out->append("absent\n");
    return;
  }
  const FileStat& f = *it;
  if (!f.header_ok) {
    absl::StrAppend(out, "unreadable: ", f.error, "; ", f.file_size,
                    " B on disk\n");
    return;
  }
  absl::StrAppend(out, "version ", FileHeader::kVersion, ", generation ",
                  f.generation, ", offset ", f.offset, " (");
  if (f.offset >= 0 && entry > 0) {
    const uint64_t off = static_cast<uint64_t>(f.offset);
    absl::StrAppend(out, off / entry, " entries");
    if (off % entry != 0) absl::StrAppend(out, " + ", off % entry, " bytes");
  } else {
    out->append("invalid");
  }
  absl::StrAppend(out, "), fan-out ", f.fan_size, " B");
  if (f.fan_size > 0 && f.fan_size % 8 == 0) {
    absl::StrAppend(out, " (", f.fan_size / 8,
                    f.fan_size == 8 ? " slot)" : " slots)");
  }
  absl::StrAppend(out, ", ", f.file_size, " B on disk (",
                  HumanSize(static_cast<int64_t>(f.file_size)), ")\n");
}

// StatText's lines for the manifest: its fields, its runs, then the header of
// each run file (`data` has its line already).
void AppendManifestText(const StoreStat& st, std::string* out) {
  absl::StrAppendFormat(out, "%-10s ", "manifest");
  if (!st.manifest) {
    absl::StrAppend(out, "unreadable: ", st.manifest_error, "\n");
    return;
  }
  const Manifest& m = *st.manifest;
  absl::StrAppend(out, "generation ", m.generation, ", next id ", m.next_id,
                  ", entry size ", m.entry_size, " B, ", m.runs.size(),
                  m.runs.size() == 1 ? " run" : " runs", ", retired ids ",
                  m.retired.empty() ? "none" : absl::StrJoin(m.retired, ", "),
                  "\n");
  for (const RunEntry& run : m.runs) {
    absl::StrAppend(out, "  run ", run.id, ": ", RunFileName(run.id), ", slot ",
                    run.slot, ", ", run.records, " records, ", run.bytes,
                    " B, generation ", run.generation, "\n");
  }
  for (const RunEntry& run : m.runs) {
    if (run.id != kDataRunId) AppendFileText(st, RunFileName(run.id), out);
  }
}

}  // namespace

absl::StatusOr<Schema> SchemaFor(const Options& options) {
  if (options.key_size == 0 || options.key_size > kMaxFieldSize) {
    return absl::InvalidArgumentError(absl::StrCat("key size must be in [1, ",
                                                   kMaxFieldSize, "], got ",
                                                   options.key_size));
  }
  if (options.value_size > kMaxFieldSize) {
    return absl::InvalidArgumentError(absl::StrCat("value size must be in [0, ",
                                                   kMaxFieldSize, "], got ",
                                                   options.value_size));
  }
  Schema s;
  s.key_size = options.key_size;
  s.value_size = options.value_size;
  const bool ocaml = options.hash == HashKind::kOcaml;
  const int min_bits = ocaml ? kOcamlHashBits : 1;
  s.hash_bits = options.hash_bits == 0 ? (ocaml ? kOcamlHashBits : 64)
                                       : options.hash_bits;
  if (s.hash_bits < min_bits || s.hash_bits > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash bits must be in [", min_bits, ", 64] for the ",
                     ocaml ? "ocaml" : "xxh3", " hash, got ", s.hash_bits));
  }
  s.hash = ocaml ? &OcamlHash : kXxh3ByBits[static_cast<size_t>(s.hash_bits)];
  absl::Status valid = s.Validate();
  if (!valid.ok()) return valid;
  return s;
}

std::string HashName(const Options& options) {
  const bool ocaml = options.hash == HashKind::kOcaml;
  const int bits = options.hash_bits == 0 ? (ocaml ? kOcamlHashBits : 64)
                                          : options.hash_bits;
  return absl::StrCat(ocaml ? "ocaml" : "xxh3", "-", bits);
}

std::string FormatProblem(const Problem& p) {
  std::string out = absl::StrCat(
      p.severity == Severity::kError ? "error: " : "warning: ", p.path, ": ");
  if (p.offset) absl::StrAppend(&out, "byte ", *p.offset, ": ");
  absl::StrAppend(&out, p.message);
  return out;
}

std::string HumanSize(int64_t bytes) {
  static const char* const kUnits[] = {"B",   "KiB", "MiB", "GiB",
                                       "TiB", "PiB", "EiB"};
  const double n = static_cast<double>(bytes);
  int unit = 0;
  while (unit < 6 && !(n < std::pow(1024.0, unit + 1))) ++unit;
  double mantissa = unit == 0 ? n : n / std::pow(1024.0, unit);
  mantissa = std::trunc(mantissa * 10.0) / 10.0;
  return absl::StrFormat("%.1f %s", mantissa, kUnits[unit]);
}

absl::StatusOr<StoreStat> Stat(Env* env, const std::string& root,
                               const Options& options) {
  absl::StatusOr<Schema> schema = SchemaFor(options);
  if (!schema.ok()) return schema.status();
  StoreStat st;
  st.root = root;
  st.key_size = options.key_size;
  st.value_size = options.value_size;
  if (!CheckStoreDir(env, root, &st.problems)) return st;
  const ManifestLoad manifest =
      LoadManifest(env, root, options.max_reports, &st.problems);
  st.manifest = manifest.manifest;
  st.manifest_error = manifest.error;
  for (const char* name : kRecordFiles) {
    AddFileStat(env, root, name, options, &st);
  }
  if (st.manifest) {
    for (const RunEntry& run : st.manifest->runs) {
      if (run.id != kDataRunId) {
        AddFileStat(env, root, RunFileName(run.id), options, &st);
      }
    }
  }
  absl::optional<std::string> lock = ReadLock(env, root, &st.problems);
  st.has_lock = lock.has_value();
  if (lock) st.lock = *std::move(lock);
  if (st.files.empty() && !st.has_lock && !manifest.exists &&
      st.problems.empty()) {
    AddNoFiles(root, &st.problems);
  }
  return st;
}

std::string StatJson(const StoreStat& st) {
  const int64_t entry = static_cast<int64_t>(st.key_size + st.value_size);
  nlohmann::ordered_json json;
  json["entry_size"] = HumanSize(entry);
  json["entry_bytes"] = entry;
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  for (const FileStat& f : st.files) files[f.name] = FileJson(f, entry);
  if (st.has_lock) files["lock"] = st.lock;
  json["files"] = std::move(files);
  if (st.manifest || !st.manifest_error.empty()) {
    json["manifest"] = ManifestJson(st);
  }
  // Bytes that are not UTF-8 (a damaged lock file) become U+FFFD.
  std::string out = json.dump(2, ' ', /*ensure_ascii=*/true,
                              nlohmann::ordered_json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

std::string StatText(const StoreStat& st) {
  const uint64_t entry = st.key_size + st.value_size;
  std::string out = absl::StrCat(
      "store ", st.root, " (", StoreDir(st.root), "): entry size ", entry,
      " B (key ", st.key_size, " + value ", st.value_size, ")\n");
  for (const char* name : kRecordFiles) AppendFileText(st, name, &out);
  absl::StrAppendFormat(&out, "%-10s ", "lock");
  if (st.has_lock) {
    absl::StrAppend(&out, "\"", absl::CHexEscape(st.lock), "\"\n");
  } else {
    out.append("absent\n");
  }
  if (st.manifest || !st.manifest_error.empty()) AppendManifestText(st, &out);
  return out;
}

size_t Report::errors() const {
  return std::count_if(problems.begin(), problems.end(), [](const Problem& p) {
    return p.severity == Severity::kError;
  });
}

size_t Report::warnings() const { return problems.size() - errors(); }

absl::StatusOr<Report> IntegrityCheck(Env* env, const std::string& root,
                                      const Options& options,
                                      const ProgressFn& progress) {
  absl::StatusOr<Schema> schema = SchemaFor(options);
  if (!schema.ok()) return schema.status();
  Report report;
  if (!CheckStoreDir(env, root, &report.problems)) return report;

  const ManifestLoad manifest =
      LoadManifest(env, root, options.max_reports, &report.problems);
  bool any = manifest.exists;
  Header log_header;
  bool log_ok = false;
  Header data_header;
  bool data_ok = false;
  Header async_header;
  bool async_ok = false;
  for (const char* name : kRecordFiles) {
    const std::string n = name;
    // Next to a manifest, data is a run or a leftover: CheckTieredStore.
    if (n == "data" && manifest.exists) continue;
    Reporter r(&report.problems, StorePath(root, name), options.max_reports);
    Header h;
    if (!LoadHeader(env, root, name, &r, &h)) {
      if (n == "data") {
        report.notes.push_back("data: absent (nothing merged yet)");
      } else if (n == "log") {
        report.notes.push_back("log: absent");
      }
      if (n == "log" || n == "log_async") {
        NoteOrphanJournal(env, StorePath(root, name), n, &report.notes);
      }
      continue;
    }
    any = true;
    if (!h.ok) {
      report.notes.push_back(absl::StrCat(n, ": unreadable header"));
      continue;
    }
    const bool is_log = n == "log" || n == "log_async" || n == "log_tmp";
    Extent e = CheckHeader(h, *schema, is_log, &r);
    if (!e.usable) {
      report.notes.push_back(absl::StrCat(n, ": invalid header"));
      continue;
    }
    if (n == "data") {
      CheckDataFile(env, h, e, /*is_run=*/false, *schema, options, progress, &r,
                    &report);
      data_ok = true;
      data_header = std::move(h);
    } else if (n == "merge") {
      report.notes.push_back(absl::StrCat(
          "merge: ", e.records,
          " records; a leftover of an interrupted merge (the index ignores and "
          "later overwrites it)"));
    } else if (n == "compact") {
      report.notes.push_back(absl::StrCat(
          "compact: ", e.records,
          " records; a leftover of an interrupted compaction of the tiered "
          "layout (the index removes it at its next open)"));
    } else if (n == "log_tmp") {
      report.notes.push_back(absl::StrCat(
          "log_tmp: ", e.records,
          " records; a leftover of a log replaced by an interrupted merge "
          "commit or clear (the index removes it at its next open)"));
    } else {
      report.notes.push_back(absl::StrCat(n, ": ", e.records, " records"));
      CheckLogSums(env, h, e, *schema, &r, &report.notes);
      if (n == "log") {
        log_ok = true;
        log_header = std::move(h);
      } else {
        async_ok = true;
        async_header = std::move(h);
      }
    }
  }

  bool tiered_cleared = false;
  // Generations: what a writer's open would do about them, by the same rules
  // (index/recovery_rules.h): finish a merge commit or a clear cut short (a
  // note), or refuse a state no merge or clear leaves (an error).
  if (log_ok) {
    const uint64_t entry = schema->entry_size();
    auto report_refusal = [&](const std::string& path, const absl::Status& st) {
      Reporter r(&report.problems, path, options.max_reports);
      r.Error(kGenerationField,
              std::string(absl::StripPrefix(st.message(), path + ": ")));
    };
    const std::optional<int64_t> async_generation =
        async_ok ? std::optional<int64_t>(async_header.generation)
                 : std::nullopt;
    const std::string dir = StoreDir(root);
    std::optional<int64_t> marker;
    absl::StatusOr<std::optional<int64_t>> read_marker =
        ReadClearMarker(env, dir);
    if (!read_marker.ok()) {
      Reporter r(&report.problems, ClearMarkerPath(dir), options.max_reports);
      r.Error(0, std::string(absl::StripPrefix(read_marker.status().message(),
                                               ClearMarkerPath(dir) + ": ")));
    } else if (read_marker->has_value()) {
      marker = *read_marker;
      report.notes.push_back(absl::StrCat(
          "clear: the marker of a clear to generation ", **read_marker,
          " (the index removes it at its next open)"));
    }
    // The last commit (`name`: data or manifest) next to the log; nullopt
    // when the open would refuse it.
    auto check_commit =
        [&](const std::string& name, const std::string& path,
            int64_t generation,
            const std::string& removed) -> std::optional<DataRecovery> {
      absl::StatusOr<DataRecovery> plan =
          PlanDataRecovery({path, generation, log_header.generation,
                            static_cast<uint64_t>(log_header.offset) / entry,
                            async_generation, marker});
      if (!plan.ok()) {
        report_refusal(path, plan.status());
        return std::nullopt;
      }
      if (*plan == DataRecovery::kFinishMergeCommit) {
        report.notes.push_back(absl::StrCat(
            name,
            ": one generation ahead of the log, with its merge's log_async: a "
            "merge commit cut short (the index resets the log to generation ",
            generation, " at its next open)"));
      } else if (*plan == DataRecovery::kRemoveCleared) {
        report.notes.push_back(absl::StrCat(
            name,
            ": one generation behind an empty log, with the clear's marker: a "
            "clear cut short (the index removes ",
            removed, " at its next open)"));
      }
      return *plan;
    };
    int64_t committed = -1;
    bool data_refused = false;
    if (manifest.exists && manifest.manifest.has_value()) {
      committed = manifest.manifest->generation;
      const std::optional<DataRecovery> plan =
          check_commit("manifest", ManifestPath(dir), committed,
                       "the runs it lists, and log_async,");
      tiered_cleared = plan == DataRecovery::kRemoveCleared;
      // log_async goes with a clear's leftovers.
      data_refused = !plan.has_value() || tiered_cleared;
    }
    if (data_ok) {
      committed = data_header.generation;
      const std::optional<DataRecovery> plan =
          check_commit("data", data_header.path, committed, "the data file");
      data_refused = !plan.has_value();
      if (plan == DataRecovery::kRemoveCleared) committed = -1;
    }
    if (async_ok && !data_refused) {
      // A commit cut short before its log reset is finished first.
      const int64_t log_generation = committed == log_header.generation + 1
                                         ? committed
                                         : log_header.generation;
      absl::StatusOr<bool> wanted =
          PlanLogAsyncRecovery({async_header.path, async_header.generation,
                                log_generation, committed, marker});
      if (!wanted.ok()) {
        report_refusal(async_header.path, wanted.status());
      } else {
        report.notes.push_back(
            *wanted ? "log_async: holds the writes of a merge cut short (the "
                      "index copies them into the log at its next open)"
                    : "log_async: left by a clear cut short (the index removes "
                      "it at its next open)");
      }
    }
  }
  if (manifest.exists) {
    CheckTieredStore(env, root, *schema, options, progress, manifest,
                     tiered_cleared, &report);
  }

  absl::optional<std::string> lock = ReadLock(env, root, &report.problems);
  if (lock) {
    any = true;
    const absl::string_view pid = absl::StripAsciiWhitespace(*lock);
    const bool digits =
        !pid.empty() && std::all_of(pid.begin(), pid.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        });
    if (!digits) {
      Reporter r(&report.problems, StorePath(root, "lock"),
                 options.max_reports);
      r.Warning(0, absl::StrCat("the lock file does not hold a PID: \"",
                                absl::CHexEscape(*lock), "\""));
    } else {
      report.notes.push_back(absl::StrCat("lock: PID ", pid));
    }
  }
  absl::StatusOr<bool> tmp = env->FileExists(StorePath(root, "log_tmp"));
  if (tmp.ok() && *tmp) {
    report.notes.push_back(
        "log_tmp: leftover of an interrupted log reset (the index ignores it)");
  }
  if (!any) AddNoFiles(root, &report.problems);
  return report;
}

int ExitCodeFor(const std::vector<Problem>& problems, bool strict) {
  bool no_store = false, io = false, foreign = false, damage = false;
  for (const Problem& p : problems) {
    if (p.severity == Severity::kWarning) {
      damage |= strict;
      continue;
    }
    switch (p.category) {
      case Category::kNoStore:
        no_store = true;
        break;
      case Category::kIo:
        io = true;
        break;
      case Category::kForeign:
        foreign = true;
        break;
      case Category::kDamage:
        damage = true;
        break;
    }
  }
  if (no_store) return kExitNoStore;
  if (io) return kExitIo;
  if (foreign) return kExitForeign;
  if (damage) return kExitDamaged;
  return kExitOk;
}

}  // namespace fsck
}  // namespace kvindex
