#include "bench/workload_filter.h"

#include <memory>
#include <regex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace bench {

struct WorkloadFilter::Regex {
  std::regex regex;
};

absl::StatusOr<WorkloadFilter> WorkloadFilter::Compile(
    const std::string& pattern) {
  // The group keeps the anchor on every alternative: "a|b" is "^(a|b)".
  const std::string anchored =
      absl::StrCat("^(", pattern.empty() ? ".*" : pattern, ")");
  try {
    return WorkloadFilter(std::make_shared<const Regex>(Regex{
        std::regex(anchored, std::regex::extended | std::regex::nosubs)}));
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad regular expression '", pattern, "': ", e.what()));
  }
}

bool WorkloadFilter::Matches(absl::string_view name) const {
  return std::regex_search(name.begin(), name.end(), regex_->regex);
}

}  // namespace bench
}  // namespace kvindex
