// The logic of `index-fsck` (tools/index_fsck.cc), a read-only checker for
// stores of this library and of the OCaml `index` library (docs/format.md):
// `Stat` reads the header of every file in `<root>/index/`, `IntegrityCheck`
// looks for damage.
//
// The store format does not record the key and value sizes nor the key hash, so
// the caller supplies them (Options). Nothing here writes, creates or locks
// anything.
//
// Files are read through the Env as raw bytes, their headers decoded by
// FileHeader::DecodeRaw (io/file_header.h), not through IndexFile: IndexFile
// applies the open-time recovery rules (an offset past the end of the file is
// cut, a partial trailing record is dropped) and refuses bad header values,
// which would hide exactly what a checker must report.
//
// What IntegrityCheck verifies (beyond the OCaml tool, which only checks the
// order):
//  - every file (data, log, log_async, merge): a whole 32-byte header, version
//    "00000001", offset >= 0 and a multiple of the entry size, header + fan-out
//    + offset within the file (bytes past it are trailing garbage: a warning),
//    fan-out size a multiple of 8 (and 0 in logs);
//  - data: records sorted by key hash, no key stored twice, a fan-out table
//    that imports (Fanout::Import) and leads every record's lookup to it (each
//    record lies in Search(hash) of its bucket), each slot equal to the table
//    rebuilt from the records;
//  - data.filter (kvindex's key filter, see filter/key_filter.h): one
//    that finds would use must hold every key of the data file (an error
//    otherwise); one they would not use (damaged, stale) is a warning;
//  - data.sum (kvindex's checksum sidecar, see filter/data_sums.h): with one
//    that merges would use, every block of the data file must match its sum
//    (an error on the data file at the block's first byte, naming the byte
//    range); one they would not use (absent, damaged, stale) is a note;
//  - log.sum, log_async.sum (the logs' checksum sidecars, io/flush_sums.h):
//    one that applies but does not vouch for every record under the offset is
//    a warning (the next writer's open cuts those records); one that does not
//    apply is a note;
//  - lock: holds a decimal PID; generations of data and log_async plausible
//    next to the log's (warnings).
// Duplicate keys are found among records with equal hashes, i.e. everywhere in
// a sorted file; in an unsorted file only adjacent runs are compared.
//
// A store with a `manifest` is in the tiered layout (runset/manifest.h):
//  - the manifest decodes (DecodeManifest: an error naming the field), its
//    entry size is the options', and its generation is the log's, or one more
//    (a merge committed, the log reset was cut short) or less (a clear
//    committed, its manifest was not written yet): warnings, the next writer
//    open finishes either; any other generation is an error;
//  - each listed run `run.<id>` (`data` for id 0) exists, matches the
//    manifest (generation, records, file size) and passes the data file checks
//    above, its key filter being `<run>.filter` and its checksum sidecar
//    `<run>.sum`; when the only run is missing
//    but `data` holds it, a conversion to the single-file layout committed (a
//    warning) and `data` is checked as the run;
//  - the files StaleRunFiles names (retired runs, the output of an uncommitted
//    merge, with their filters and checksum sidecars, manifest.tmp) are
//    warnings, and so is a `data` the manifest
//    neither lists nor retires; a run file of any other id is an error. These
//    are found by listing the store directory, which Env cannot do: the
//    listing reads the file system directly.
// A manifest that does not decode leaves the runs unknown: each run file found
// is then checked on its own as a data file.
//
// Thread safety: the functions are reentrant; they share no state.
#ifndef KVINDEX_TOOLS_FSCK_H_
#define KVINDEX_TOOLS_FSCK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "data/schema.h"
#include "io/env.h"
#include "runset/manifest.h"

namespace kvindex {
namespace fsck {

enum class HashKind {
  kXxh3,   // XXH3-64, low hash_bits bits: kvindex's FixedString (64 bits)
  kOcaml,  // OCaml Hashtbl.hash (30 bits): OCaml's String_fixed,
           // OcamlFixedString
};

// Defaults: 32-byte keys and 13-byte values (the OCaml library's benchmarks and
// irmin-pack's index), XXH3 with 64 bits (kvindex's FixedString).
struct Options {
  size_t key_size = 32;
  size_t value_size = 13;
  HashKind hash = HashKind::kXxh3;
  // 0: the hash's own width (64 for XXH3, 30 for OCaml). Must match the
  // writer's hash size, because the fan-out table buckets hashes by their top
  // bits.
  int hash_bits = 0;
  // Problems of one kind reported per file before the rest are only counted.
  size_t max_reports = 10;
};

// The schema the options describe: kInvalidArgument for a zero key size, sizes
// above 1 MiB, or hash bits outside [1, 64] (XXH3) / [30, 64] (OCaml).
absl::StatusOr<Schema> SchemaFor(const Options& options);
// "xxh3-64", "ocaml-30", ...
std::string HashName(const Options& options);

enum class Severity { kWarning, kError };

enum class Category {
  kDamage,   // the bytes break a rule of the format
  kForeign,  // not a store file of a supported version
  kNoStore,  // the directory or the store in it does not exist
  kIo,       // the file system refused a read
};

struct Problem {
  Severity severity = Severity::kError;
  Category category = Category::kDamage;
  std::string path;                 // file or directory concerned
  absl::optional<uint64_t> offset;  // byte offset in the file, when one applies
  std::string message;
};

// "error: PATH: byte N: MESSAGE" (or "warning: ...", without "byte N" when no
// offset).
std::string FormatProblem(const Problem& p);

// One file's header as found on disk (values are the raw header fields).
struct FileStat {
  // "data", "log", "log_async", "merge", or a run's file name ("run.<id>").
  std::string name;
  std::string path;
  uint64_t file_size = 0;
  // False when the header could not be read or is foreign: `error` says why and
  // the fields below are unset.
  bool header_ok = false;
  std::string error;
  int64_t offset = 0;
  int64_t generation = 0;
  int64_t fan_size = 0;
};

struct StoreStat {
  std::string root;
  size_t key_size = 0;
  size_t value_size = 0;
  // The present ones, in the order data, log, log_async, merge, then the
  // manifest's runs other than `data`, newest first.
  std::vector<FileStat> files;
  bool has_lock = false;
  std::string lock;  // raw contents of the lock file
  // The manifest of a tiered store, when it exists and decodes.
  absl::optional<Manifest> manifest;
  // Why the manifest that exists is unusable (also in `problems`); empty
  // otherwise.
  std::string manifest_error;
  // No store, unreadable or foreign files (the header values are not
  // validated).
  std::vector<Problem> problems;
};

// kInvalidArgument for invalid options (see SchemaFor); everything found on
// disk, including a missing store, is in the result.
absl::StatusOr<StoreStat> Stat(Env* env, const std::string& root,
                               const Options& options);

// The OCaml index-fsck `stat` JSON: {"entry_size": S, "files": {"data":
// {"size": S, "offset": N, "generation": N, "fanout_size": S}, ..., "lock":
// "<contents>"}} with S a HumanSize string, plus the numeric fields
// "entry_bytes" (top level) and "entries", "bytes", "fanout_bytes" (per file).
// A file whose header is unusable has only "size", "bytes" and "error".
// A tiered store's run files are in "files" under their names ("run.<id>"),
// and its manifest follows "files": {"manifest": {"generation": N, "next_id":
// N, "entry_bytes": N, "runs": [{"id": N, "file": "run.<id>", "slot": N,
// "records": N, "bytes": N, "generation": N}, ...], "retired": [N, ...]}}, or
// {"manifest": {"error": "..."}} when it does not decode.
// Two-space indentation, keys in that order, the numbers of "retired" on one
// line, newline at the end. Strings are ASCII: other characters are \uXXXX
// escapes, and bytes that are not UTF-8 (say, in a damaged lock file) are
// U+FFFD.
std::string StatJson(const StoreStat& stat);
// A human-readable rendering of the same information.
std::string StatText(const StoreStat& stat);

// A byte count as the OCaml tool prints it: base 1024 units B, KiB, MiB, GiB,
// TiB, PiB, EiB, the mantissa truncated (not rounded) to one decimal: "%.1f
// <unit>". HumanSize(36520) == "35.6 KiB".
std::string HumanSize(int64_t bytes);

// Called during long scans: `done` of `total` bytes of file `label` examined.
using ProgressFn =
    std::function<void(absl::string_view label, uint64_t done, uint64_t total)>;

struct Report {
  std::vector<Problem> problems;
  // One line per file checked, e.g. "data: 909 records, sorted by xxh3-64,
  // ...", and hints ("hint: ...").
  std::vector<std::string> notes;
  size_t errors() const;
  size_t warnings() const;
};

// kInvalidArgument for invalid options (see SchemaFor); everything found on
// disk, including a missing store, is in the report.
absl::StatusOr<Report> IntegrityCheck(Env* env, const std::string& root,
                                      const Options& options,
                                      const ProgressFn& progress = nullptr);

// Exit status of the CLI; documented in its --help.
enum ExitCode : int {
  kExitOk = 0,
  kExitDamaged = 1,
  kExitUsage = 2,
  kExitNoStore = 3,
  kExitForeign = 4,
  kExitIo = 5,
};

// The status for a list of problems: the first of kExitNoStore, kExitIo,
// kExitForeign, kExitDamaged that some error calls for; with `strict`, warnings
// count as damage.
int ExitCodeFor(const std::vector<Problem>& problems, bool strict);

}  // namespace fsck
}  // namespace kvindex

#endif  // KVINDEX_TOOLS_FSCK_H_
