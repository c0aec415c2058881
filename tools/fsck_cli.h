// The command line of `index-fsck`: argument parsing, help texts, output and
// the terminal progress bar, on top of tools/fsck.h. index_fsck.cc only calls
// RunCli.
//
//   index-fsck stat [OPTIONS] DIR
//   index-fsck integrity-check [OPTIONS] DIR
//
// The options are Abseil flags (--name=VALUE, --name VALUE, or a boolean's
// --name alone; dashes and underscores alike), each accepted by the commands
// it applies to.
//
// Thread safety: RunCli sets process-wide flags; calls must not overlap.
#ifndef KVINDEX_TOOLS_FSCK_CLI_H_
#define KVINDEX_TOOLS_FSCK_CLI_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "io/env.h"

namespace kvindex {
namespace fsck {

// Runs the tool with `args` (argv without the program name), writing results to
// `out` and diagnostics, progress and errors to `err`. The progress bar is
// drawn only when `err_is_tty`. Returns the exit status (ExitCode in
// tools/fsck.h).
int RunCli(Env* env, const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, bool err_is_tty);

// The help texts: a command's lists its options with their defaults; any
// other `command` (such as "") gives the top-level help.
std::string HelpText(absl::string_view command);

// One line of the progress bar, without the leading carriage return:
// "checking data [=========>          ]  47% 12.0 MiB / 25.5 MiB".
std::string ProgressLine(absl::string_view label, uint64_t done, uint64_t total,
                         int bar_width);

// A progress bar on a terminal: draws nothing until `delay` has passed since
// construction (short scans stay quiet), then redraws the line at most every
// 100 ms, and erases it in Finish() (or the destructor).
class TerminalProgress {
 public:
  TerminalProgress(std::ostream& err, absl::Duration delay);
  ~TerminalProgress();
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  void Update(absl::string_view label, uint64_t done, uint64_t total);
  void Finish();
  bool drawn() const { return drawn_; }

 private:
  std::ostream& err_;
  absl::Time start_;
  absl::Time last_draw_;
  absl::Duration delay_;
  bool drawn_ = false;
  size_t width_ = 0;
};

}  // namespace fsck
}  // namespace kvindex

#endif  // KVINDEX_TOOLS_FSCK_CLI_H_
