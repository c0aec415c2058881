#include "cli/flags.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"

namespace kvindex {
namespace cli {

std::vector<absl::CommandLineFlag*> FlagsDefinedIn(absl::string_view file) {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& name_and_flag : absl::GetAllFlags()) {
    if (name_and_flag.second->Filename() == file) {
      flags.push_back(name_and_flag.second);
    }
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  return flags;
}

void ResetToDefaults(const std::vector<absl::CommandLineFlag*>& flags) {
  for (absl::CommandLineFlag* flag : flags) {
    std::string error;
    flag->ParseFrom(flag->DefaultValue(), &error);
  }
}

absl::CommandLineFlag* FindFlag(
    const std::vector<absl::CommandLineFlag*>& flags, absl::string_view name) {
  std::string underscored(name);
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  for (absl::CommandLineFlag* flag : flags) {
    if (flag->Name() == underscored) return flag;
  }
  return nullptr;
}

absl::StatusOr<size_t> SetFlag(absl::CommandLineFlag& flag,
                               absl::string_view option,
                               absl::optional<absl::string_view> value,
                               absl::Span<const std::string> rest) {
  size_t taken = 0;
  if (!value.has_value()) {
    if (flag.IsOfType<bool>()) {
      value = "true";
    } else if (!rest.empty()) {
      value = rest[0];
      taken = 1;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", option, "' needs a value"));
    }
  }
  std::string error;
  if (!flag.ParseFrom(*value, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value '", *value, "' for ", option));
  }
  return taken;
}

std::string FlagsHelp(const std::vector<absl::CommandLineFlag*>& flags) {
  std::string text;
  for (const absl::CommandLineFlag* flag : flags) {
    std::string name(flag->Name());
    std::replace(name.begin(), name.end(), '_', '-');
    absl::StrAppend(&text, "  --", name);
    const std::string default_value = flag->DefaultValue();
    if (!default_value.empty() && default_value != "false") {
      absl::StrAppend(&text, " (default: ", default_value, ")");
    }
    for (absl::string_view line : absl::StrSplit(flag->Help(), '\n')) {
      absl::StrAppend(&text, "\n      ", line);
    }
    text += "\n";
  }
  return text;
}

}  // namespace cli
}  // namespace kvindex
