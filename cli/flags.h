// Command lines on Abseil flags (ABSL_FLAG), for index-fsck (tools/) and
// index_bench (bench/). The flags are found and set one by one through the
// flag registry (absl/flags/reflection.h) rather than by
// absl::ParseCommandLine, which exits the process with status 1 on a bad flag
// and after --help: here every error is a Status, so that each tool keeps its
// own exit codes, words its own message for an unknown flag and decides which
// other arguments it takes.
//
// A tool's parser, for each command line:
//   flags = FlagsDefinedIn(__FILE__)      (or a list of its own)
//   ResetToDefaults(flags)                each command line starts afresh
//   for each argument "--NAME[=VALUE]":
//     flag = FindFlag(flags, NAME)        null: an unknown flag
//     i += *SetFlag(*flag, "--NAME", VALUE, the arguments after it)
// and its --help lists the flags with FlagsHelp(flags).
//
// Forms: --name=VALUE, --name VALUE, and a boolean's --name alone (true);
// dashes and underscores are alike in names.
//
// Thread safety: the flags are process-wide. ResetToDefaults and SetFlag must
// not run while another thread sets or reads the same flags.
#ifndef KVINDEX_CLI_FLAGS_H_
#define KVINDEX_CLI_FLAGS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"

namespace kvindex {
namespace cli {

// The flags defined with ABSL_FLAG in the source file `file` (pass __FILE__
// from that file), sorted by name.
std::vector<absl::CommandLineFlag*> FlagsDefinedIn(absl::string_view file);

// Sets each of `flags` back to its default value.
void ResetToDefaults(const std::vector<absl::CommandLineFlag*>& flags);

// The flag of `flags` called `name` (without "--"; dashes are taken as
// underscores, so "key-size" finds key_size), or null when there is none.
absl::CommandLineFlag* FindFlag(
    const std::vector<absl::CommandLineFlag*>& flags, absl::string_view name);

// Sets `flag` from its argument on a command line. `option` is the flag as the
// argument spells it, without a value ("--key-size"): the errors name it.
// `value` is the text after the argument's '=', if it has one; `rest` holds the
// arguments after it. Without a value, a boolean flag is set to true and any
// other flag takes the first of `rest` as its value.
//
// Returns how many of `rest` it took (0 or 1), or kInvalidArgument, leaving
// the flag as it was:
//   option '--key-size' needs a value    no value, and `rest` is empty
//   invalid value 'abc' for --key-size   the flag's type does not parse it
absl::StatusOr<size_t> SetFlag(absl::CommandLineFlag& flag,
                               absl::string_view option,
                               absl::optional<absl::string_view> value,
                               absl::Span<const std::string> rest);

// The --help entries of `flags`, in their order. Each is "  --name" (dashes for
// underscores), then " (default: VALUE)" unless the default is empty or
// false, then each line of the flag's help text indented by six spaces:
//   --key-size (default: 32)
//       Key size in bytes.
std::string FlagsHelp(const std::vector<absl::CommandLineFlag*>& flags);

}  // namespace cli
}  // namespace kvindex

#endif  // KVINDEX_CLI_FLAGS_H_
