#include "tools/fsck_cli.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/optional.h"
#include "io/index_file.h"
#include "tools/fsck.h"

namespace kvindex {
namespace fsck {

namespace {

constexpr absl::string_view kTopHelp =
    R"(Usage: index-fsck COMMAND [OPTIONS] DIR

Checks a store of the kvindex library or of the OCaml `index` library: the files
data, log, log_async, merge and lock in DIR/index. Read-only: it never creates,
modifies or locks anything, and may run while a writer has the store open (it
then sees a snapshot that can be mid-update).

Commands:
  stat             Print the header of every file of the store.
  integrity-check  Search the store for damage.
  help [COMMAND]   Show this help, or a command's.

Run `index-fsck COMMAND --help` for a command's options.

The format records neither the key and value sizes nor the key hash: pass them
with --key-size, --value-size and --hash (defaults: 32, 13, xxh3).

Exit status:
  0  no problem found (warnings do not count, unless --strict)
  1  the store is damaged: at least one error was reported
  2  bad command line
  3  no such store: DIR or DIR/index does not exist, or holds no store file
  4  foreign file: a file of DIR/index has an unsupported version (not 00000001)
  5  a read failed (permissions, I/O error)
When several apply, the first of 3, 5, 4, 1 in this order is returned.
)";

constexpr absl::string_view kCommonOptions =
    R"(  --key-size N       Key size in bytes (default 32). Not stored in the files.
  --value-size N     Value size in bytes (default 13). Not stored in the files.
                     The defaults are the OCaml library's benchmark and
                     irmin-pack's sizes; the CLI test store uses 20 and 20.
  --hash ocaml|xxh3  Key hash the data file is sorted by. xxh3 (default):
                     kvindex's FixedString keys. ocaml: OCaml's Hashtbl.hash, as
                     used by the OCaml library's String_fixed keys and kvindex's
                     OcamlFixedString.
  --hash-bits N      Significant bits of the hash (default 64 for xxh3, 30 for
                     ocaml); must be the writer's, because the fan-out table
                     buckets hashes by their top bits.
  -h, --help         Show this help.
)";

constexpr absl::string_view kStatHelp =
    R"(Usage: index-fsck stat [OPTIONS] DIR

Prints, for each of data, log, log_async and merge present in DIR/index, the
header fields (version, generation, offset, fan-out size), the number of entries
the offset covers and the file size, then the contents of the lock file (the
writer's PID). Header values are shown as stored, without validation: use
integrity-check for that.

Options:
  --json             Print JSON in the shape of the OCaml index-fsck `stat`:
                     {"entry_size": S, "files": {"data": {"size": S, "offset": N,
                     "generation": N, "fanout_size": S}, ..., "lock": "<PID>"}},
                     where S is a size string like "35.6 KiB" (truncated to one
                     decimal), plus the numbers "entry_bytes", and per file
                     "entries", "bytes" and "fanout_bytes". A missing store
                     prints "files": {} (and exits with 3).
)";

constexpr absl::string_view kCheckHelp =
    R"(Usage: index-fsck integrity-check [OPTIONS] DIR

Searches DIR/index for damage. Each problem is printed on one line as
  error: PATH: byte OFFSET: what is wrong
(or `warning:`), followed by a summary of each file. Checks:
  every file   a whole 32-byte header with version 00000001; offset >= 0, a
               multiple of the entry size and within the file (a file shorter
               than header + fan-out + offset is an error; bytes past it are
               trailing garbage, which the index ignores: a warning); fan-out
               size a multiple of 8, and 0 in log and log_async
  data         records sorted by the key hash; no key stored twice (among
               records with equal hashes); the fan-out table valid and
               consistent with the records: every record reachable through
               its bucket, each slot equal to the table rebuilt from the data
  data.filter  kvindex's key filter: one that finds would use holds every key
               of the data file (an error otherwise); one they would not use
               (damaged, built for another data file) is a warning
  merge        only the header (a leftover of an interrupted merge)
  lock         holds a decimal PID (a warning otherwise)
  generations  data and log_async at the log's generation or one more (a
               warning otherwise)

Options:
  --strict           Warnings make the exit status 1 too.
  --max-reports N    Problems of one kind reported per file before the rest
                     are only counted (default 10).
  --no-progress      Never draw the progress bar. It is drawn on stderr only
                     when stderr is a terminal, and only for scans that take
                     longer than half a second.
)";

struct Args {
  std::string command;
  Options options;
  bool json = false;
  bool strict = false;
  bool progress = true;
  std::string dir;
};

// Parses a non-negative decimal option value.
bool ParseCount(absl::string_view text, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  if (text.empty() || text[0] == '+' || text[0] == '-' ||
      !absl::SimpleAtoi(text, &v) || v > max) {
    return false;
  }
  *out = v;
  return true;
}

// Parses the command's arguments (after the command name). Returns an error
// message for a bad command line; sets *help for --help.
std::string ParseArgs(const std::vector<std::string>& args, Args* a,
                      bool* help) {
  bool positional_only = false;
  std::vector<std::string> positional;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (positional_only || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      positional_only = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      *help = true;
      continue;
    }
    std::string name = arg;
    absl::optional<std::string> value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos && absl::StartsWith(arg, "--")) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const bool check = a->command == "integrity-check";
    const bool stat = a->command == "stat";
    const bool takes_value = name == "--key-size" || name == "--value-size" ||
                             name == "--hash" || name == "--hash-bits" ||
                             (check && name == "--max-reports");
    const bool is_flag =
        (stat && name == "--json") ||
        (check && (name == "--strict" || name == "--no-progress"));
    if (!takes_value && !is_flag) {
      return absl::StrCat("unknown option '", name, "'");
    }
    if (is_flag) {
      if (value) return absl::StrCat("option '", name, "' takes no value");
      if (name == "--json") a->json = true;
      if (name == "--strict") a->strict = true;
      if (name == "--no-progress") a->progress = false;
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return absl::StrCat("option '", name, "' needs a value");
      }
      value = args[++i];
    }
    uint64_t n = 0;
    if (name == "--hash") {
      if (*value == "xxh3") {
        a->options.hash = HashKind::kXxh3;
      } else if (*value == "ocaml") {
        a->options.hash = HashKind::kOcaml;
      } else {
        return absl::StrCat("--hash must be ocaml or xxh3, not '", *value, "'");
      }
    } else if (!ParseCount(*value, name == "--hash-bits" ? 64 : (1u << 30),
                           &n)) {
      return absl::StrCat("invalid value '", *value, "' for ", name);
    } else if (name == "--key-size") {
      a->options.key_size = static_cast<size_t>(n);
    } else if (name == "--value-size") {
      a->options.value_size = static_cast<size_t>(n);
    } else if (name == "--hash-bits") {
      if (n == 0) return "--hash-bits must be in [1, 64]";
      a->options.hash_bits = static_cast<int>(n);
    } else if (name == "--max-reports") {
      a->options.max_reports = static_cast<size_t>(n);
    }
  }
  if (*help) return "";
  if (positional.empty()) return "missing DIR (the store's root directory)";
  if (positional.size() > 1) {
    return absl::StrCat("one DIR expected, got ", positional.size(), " ('",
                        positional[0], "', '", positional[1], "', ...)");
  }
  a->dir = positional[0];
  absl::StatusOr<Schema> schema = SchemaFor(a->options);
  if (!schema.ok()) return std::string(schema.status().message());
  return "";
}

// Prints the problems: a missing store as a one-line error on `err`, the others
// on `out`.
void PrintProblems(const std::vector<Problem>& problems, std::ostream& out,
                   std::ostream& err) {
  for (const Problem& p : problems) {
    if (p.category == Category::kNoStore) {
      err << "index-fsck: " << p.path << ": " << p.message << "\n";
    } else {
      out << FormatProblem(p) << "\n";
    }
  }
}

int RunStat(Env* env, const Args& a, std::ostream& out, std::ostream& err) {
  absl::StatusOr<StoreStat> st = Stat(env, a.dir, a.options);
  if (!st.ok()) {
    err << "index-fsck stat: " << st.status().message() << "\n";
    return kExitUsage;
  }
  out << (a.json ? StatJson(*st) : StatText(*st));
  // Stat's output is the data; its problems are diagnostics.
  PrintProblems(st->problems, err, err);
  return ExitCodeFor(st->problems, /*strict=*/false);
}

int RunCheck(Env* env, const Args& a, std::ostream& out, std::ostream& err,
             bool err_is_tty) {
  out << "index-fsck: checking " << StoreDir(a.dir) << " (key "
      << a.options.key_size << " B, value " << a.options.value_size
      << " B, hash " << HashName(a.options) << ")\n";
  absl::optional<TerminalProgress> bar;
  ProgressFn progress;
  if (a.progress && err_is_tty) {
    bar.emplace(err, absl::Milliseconds(500));
    progress = [&bar](absl::string_view label, uint64_t done, uint64_t total) {
      bar->Update(label, done, total);
    };
  }
  absl::StatusOr<Report> report =
      IntegrityCheck(env, a.dir, a.options, progress);
  if (bar) bar->Finish();
  if (!report.ok()) {
    err << "index-fsck integrity-check: " << report.status().message() << "\n";
    return kExitUsage;
  }
  out.flush();
  PrintProblems(report->problems, out, err);
  for (const std::string& note : report->notes) out << "  " << note << "\n";
  const size_t errors = report->errors();
  const size_t warnings = report->warnings();
  if (errors == 0 && warnings == 0) {
    out << "index-fsck: no problem found\n";
  } else {
    out << "index-fsck: " << errors << (errors == 1 ? " error, " : " errors, ")
        << warnings << (warnings == 1 ? " warning" : " warnings") << "\n";
  }
  return ExitCodeFor(report->problems, a.strict);
}

}  // namespace

std::string HelpText(absl::string_view command) {
  if (command == "stat") {
    return absl::StrCat(kStatHelp, kCommonOptions,
                        "\nExit status: see `index-fsck --help`.\n");
  }
  if (command == "integrity-check") {
    return absl::StrCat(kCheckHelp, kCommonOptions,
                        "\nExit status: see `index-fsck --help`.\n");
  }
  return std::string(kTopHelp);
}

int RunCli(Env* env, const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, bool err_is_tty) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    out << HelpText("");
    return kExitOk;
  }
  const std::string& command = args[0];
  if (command == "help") {
    if (args.size() > 2 || (args.size() == 2 && args[1] != "stat" &&
                            args[1] != "integrity-check")) {
      err << "index-fsck: help: unknown command '"
          << (args.size() > 1 ? args[1] : "") << "'\n";
      return kExitUsage;
    }
    out << HelpText(args.size() == 2 ? args[1] : "");
    return kExitOk;
  }
  if (command != "stat" && command != "integrity-check") {
    err << "index-fsck: "
        << (command[0] == '-' ? absl::StrCat("unknown option '", command,
                                             "' (a command comes first)")
                              : absl::StrCat("unknown command '", command, "'"))
        << "\nTry 'index-fsck --help'.\n";
    return kExitUsage;
  }
  Args a;
  a.command = command;
  bool help = false;
  const std::string error = ParseArgs(args, &a, &help);
  if (help) {
    out << HelpText(command);
    return kExitOk;
  }
  if (!error.empty()) {
    err << "index-fsck " << command << ": " << error << "\nTry 'index-fsck "
        << command << " --help'.\n";
    return kExitUsage;
  }
  if (command == "stat") return RunStat(env, a, out, err);
  return RunCheck(env, a, out, err, err_is_tty);
}

std::string ProgressLine(absl::string_view label, uint64_t done, uint64_t total,
                         int bar_width) {
  const double fraction = total == 0
                              ? 1.0
                              : std::min(1.0, static_cast<double>(done) /
                                                  static_cast<double>(total));
  const int filled = static_cast<int>(fraction * bar_width);
  std::string bar(static_cast<size_t>(bar_width), ' ');
  for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
  if (filled < bar_width) bar[static_cast<size_t>(filled)] = '>';
  return absl::StrFormat("checking %s [%s] %3d%% %s / %s", label, bar,
                         static_cast<int>(fraction * 100),
                         HumanSize(static_cast<int64_t>(done)),
                         HumanSize(static_cast<int64_t>(total)));
}

TerminalProgress::TerminalProgress(std::ostream& err, absl::Duration delay)
    : err_(err),
      start_(absl::Now()),
      last_draw_(absl::InfinitePast()),
      delay_(delay) {}

TerminalProgress::~TerminalProgress() { Finish(); }

void TerminalProgress::Update(absl::string_view label, uint64_t done,
                              uint64_t total) {
  const absl::Time now = absl::Now();
  if (now - start_ < delay_) return;
  if (done < total && now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  std::string line = ProgressLine(label, done, total, 30);
  // Pad to the previous width so that a shorter line erases the longer one.
  const size_t len = line.size();
  if (len < width_) line.append(width_ - len, ' ');
  width_ = std::max(width_, len);
  err_ << "\r" << line << std::flush;
  drawn_ = true;
}

void TerminalProgress::Finish() {
  if (!drawn_) return;
  err_ << "\r" << std::string(width_, ' ') << "\r" << std::flush;
  drawn_ = false;
}

}  // namespace fsck
}  // namespace kvindex
