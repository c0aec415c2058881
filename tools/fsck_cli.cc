#include "tools/fsck_cli.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "cli/flags.h"
#include "io/index_file.h"
#include "tools/fsck.h"

// The options of the commands (FlagsOf below says which command takes which).
// Help texts are printed as they are: a line break keeps them within 80
// columns.
ABSL_FLAG(uint64_t, key_size, kvindex::fsck::Options().key_size,
          "Key size in bytes. Not stored in the files.");
ABSL_FLAG(uint64_t, value_size, kvindex::fsck::Options().value_size,
          "Value size in bytes. Not stored in the files. The default sizes are "
          "the\nOCaml library's benchmark and irmin-pack's; the CLI test "
          "store uses 20\nand 20.");
ABSL_FLAG(std::string, hash, "xxh3",
          "Key hash the data file is sorted by, ocaml or xxh3. xxh3: "
          "kvindex's\nFixedString keys. ocaml: OCaml's Hashtbl.hash, as used "
          "by the OCaml\nlibrary's String_fixed keys and kvindex's "
          "OcamlFixedString.");
ABSL_FLAG(absl::optional<int>, hash_bits, absl::nullopt,
          "Significant bits of the hash (default 64 for xxh3, 30 for ocaml); "
          "must be\nthe writer's, because the fan-out table buckets hashes by "
          "their top bits.");
ABSL_FLAG(bool, help, false, "Show this help (also -h).");
ABSL_FLAG(bool, json, false,
          "Print JSON in the shape of the OCaml index-fsck `stat`:\n"
          "{\"entry_size\": S, \"files\": {\"data\": {\"size\": S, "
          "\"offset\": N,\n\"generation\": N, \"fanout_size\": S}, ..., "
          "\"lock\": \"<PID>\"}}, where S is a\nsize string like \"35.6 "
          "KiB\" (truncated to one decimal), plus the numbers\n"
          "\"entry_bytes\", and per file \"entries\", \"bytes\" and "
          "\"fanout_bytes\". A\nmissing store prints \"files\": {} (and "
          "exits with 3).\n"
          "A tiered store lists its run files in \"files\" as \"run.<id>\", "
          "and adds\nafter \"files\" a \"manifest\" member: "
          "{\"generation\": N, \"next_id\": N,\n\"entry_bytes\": N, "
          "\"runs\": [{\"id\": N, \"file\": \"run.<id>\", \"slot\": N,\n"
          "\"records\": N, \"bytes\": N, \"generation\": N}, ...], "
          "\"retired\": [N, ...]},\nor {\"error\": \"...\"} when the "
          "manifest does not decode.");
ABSL_FLAG(bool, strict, false, "Warnings make the exit status 1 too.");
ABSL_FLAG(uint64_t, max_reports, kvindex::fsck::Options().max_reports,
          "Problems of one kind reported per file before the rest are only "
          "counted.");
ABSL_FLAG(bool, no_progress, false,
          "Never draw the progress bar. It is drawn on stderr only when stderr "
          "is a\nterminal, and only for scans that take longer than half a "
          "second.");

namespace kvindex {
namespace fsck {

namespace {

constexpr absl::string_view kTopHelp =
    R"(Usage: index-fsck COMMAND [OPTIONS] DIR

Checks a store of the kvindex library or of the OCaml `index` library: the files
data, log, log_async, merge and lock in DIR/index, and in kvindex's tiered
layout the manifest and the run files it lists (run.<id>). Read-only: it never
creates, modifies or locks anything, and may run while a writer has the store
open (it then sees a snapshot that can be mid-update).

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

constexpr absl::string_view kStatHelp =
    R"(Usage: index-fsck stat [OPTIONS] DIR

Prints, for each of data, log, log_async and merge present in DIR/index, the
header fields (version, generation, offset, fan-out size), the number of entries
the offset covers and the file size, then the contents of the lock file (the
writer's PID). A store in the tiered layout adds its manifest (generation, next
run id, entry size, each run with its file, slot, records, bytes and generation,
the retired run ids) and the header of each run file run.<id>. Header values are
shown as stored, without validation: use integrity-check for that.
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
  data.sum     kvindex's checksum sidecar: with one that merges would use,
               every block of the data file matches its checksum (an error
               naming the byte range otherwise); one they would not use
               (absent, damaged, stale) is a note
  merge        only the header (a leftover of an interrupted merge)
  lock         holds a decimal PID (a warning otherwise)
  generations  by the rules of a writer's open: data at the log's generation,
               one more with its merge's log_async (a merge stopped before
               its log reset) or one less with an empty log (a clear stopped
               after it); log_async one more than the log, or equal when a
               merge committed at that generation (a note when a clear left
               it); anything else is an error (the writer refuses to open)
In the tiered layout (a store with a manifest file):
  manifest     decodes; its entry size is --key-size + --value-size; its
               generation is the log's: older (a clear stopped before it
               wrote the manifest) or one more (a merge stopped before it
               reset the log) is a warning, more than one ahead an error
  run.<id>     each run the manifest lists (`data` for run 0) exists, matches
               the manifest (generation, records, file size) and passes the
               data checks above, its key filter being run.<id>.filter and
               its checksum sidecar run.<id>.sum;
               retired runs, the output of a merge that did not commit,
               manifest.tmp and a `data` the manifest does not list are
               leftovers (warnings); a run file of any other id is an error
)";

// The names of the flags each command accepts, in the order of its help.
constexpr absl::string_view kStatFlags[] = {"json", "key_size",  "value_size",
                                            "hash", "hash_bits", "help"};
constexpr absl::string_view kCheckFlags[] = {
    "strict",     "max_reports", "no_progress", "key_size",
    "value_size", "hash",        "hash_bits",   "help"};

// The flags of those names that `command` accepts.
std::vector<absl::CommandLineFlag*> FlagsOf(absl::string_view command) {
  const absl::Span<const absl::string_view> names =
      command == "stat" ? absl::MakeConstSpan(kStatFlags)
                        : absl::MakeConstSpan(kCheckFlags);
  std::vector<absl::CommandLineFlag*> flags;
  for (absl::string_view name : names) {
    flags.push_back(absl::FindCommandLineFlag(name));
  }
  return flags;
}

// Sets the flags that `args` (after the command) give: --name=VALUE,
// --name VALUE, or a boolean's --name alone; -h is --help, and "--" ends the
// options. Returns the other arguments.
//
// The flags are set one by one through their reflection handles (cli/flags.h)
// rather than with absl::ParseCommandLine, which exits with status 1 (here:
// "the store is damaged") on a bad option and after --help, and knows no
// commands.
absl::StatusOr<std::vector<std::string>> SetFlags(
    absl::string_view command, const std::vector<std::string>& args) {
  const std::vector<absl::CommandLineFlag*> flags = FlagsOf(command);
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string option = arg == "-h" ? "--help" : arg.substr(0, eq);
    absl::string_view name = option;
    absl::CommandLineFlag* flag =
        absl::ConsumePrefix(&name, "--") ? cli::FindFlag(flags, name) : nullptr;
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option '", option, "'"));
    }
    absl::optional<absl::string_view> value;
    if (eq != std::string::npos) value = absl::string_view(arg).substr(eq + 1);
    const absl::StatusOr<size_t> taken = cli::SetFlag(
        *flag, option, value, absl::MakeConstSpan(args).subspan(i + 1));
    if (!taken.ok()) return taken.status();
    i += *taken;
  }
  return positional;
}

struct Args {
  Options options;
  bool help = false;
  bool json = false;
  bool strict = false;
  bool progress = true;
  std::string dir;
};

// Parses the command's arguments (after the command name) into flags, then
// into Args.
absl::StatusOr<Args> ParseArgs(absl::string_view command,
                               const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<std::string>> positional = SetFlags(command, args);
  if (!positional.ok()) return positional.status();
  Args a;
  a.help = absl::GetFlag(FLAGS_help);
  if (a.help) return a;
  a.json = absl::GetFlag(FLAGS_json);
  a.strict = absl::GetFlag(FLAGS_strict);
  a.progress = !absl::GetFlag(FLAGS_no_progress);
  a.options.key_size = static_cast<size_t>(absl::GetFlag(FLAGS_key_size));
  a.options.value_size = static_cast<size_t>(absl::GetFlag(FLAGS_value_size));
  a.options.max_reports = static_cast<size_t>(absl::GetFlag(FLAGS_max_reports));
  const std::string hash = absl::GetFlag(FLAGS_hash);
  if (hash == "xxh3") {
    a.options.hash = HashKind::kXxh3;
  } else if (hash == "ocaml") {
    a.options.hash = HashKind::kOcaml;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--hash must be ocaml or xxh3, not '", hash, "'"));
  }
  const absl::optional<int> hash_bits = absl::GetFlag(FLAGS_hash_bits);
  if (hash_bits.has_value()) {
    if (*hash_bits < 1) {
      return absl::InvalidArgumentError("--hash-bits must be in [1, 64]");
    }
    a.options.hash_bits = *hash_bits;
  }
  if (positional->empty()) {
    return absl::InvalidArgumentError(
        "missing DIR (the store's root directory)");
  }
  if (positional->size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("one DIR expected, got ", positional->size(), " ('",
                     (*positional)[0], "', '", (*positional)[1], "', ...)"));
  }
  a.dir = (*positional)[0];
  absl::StatusOr<Schema> schema = SchemaFor(a.options);
  if (!schema.ok()) return schema.status();
  return a;
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
  if (command != "stat" && command != "integrity-check") {
    return std::string(kTopHelp);
  }
  return absl::StrCat(command == "stat" ? kStatHelp : kCheckHelp, "\n",
                      "Options:\n", cli::FlagsHelp(FlagsOf(command)),
                      "\nExit status: see `index-fsck --help`.\n");
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
  // Each call starts from the defaults.
  cli::ResetToDefaults(cli::FlagsDefinedIn(__FILE__));
  const absl::StatusOr<Args> a = ParseArgs(
      command, std::vector<std::string>(args.begin() + 1, args.end()));
  if (!a.ok()) {
    err << "index-fsck " << command << ": " << a.status().message()
        << "\nTry 'index-fsck " << command << " --help'.\n";
    return kExitUsage;
  }
  if (a->help) {
    out << HelpText(command);
    return kExitOk;
  }
  if (command == "stat") return RunStat(env, *a, out, err);
  return RunCheck(env, *a, out, err, err_is_tty);
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
