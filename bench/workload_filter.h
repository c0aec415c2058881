// The --filter of index_bench: a POSIX extended regular expression that a
// workload's name must match from its start, as in the OCaml benchmark
// ("find" selects find_random_ro and find_absent_rw, "random" selects nothing,
// "find_(random|absent)_ro" two workloads).
//
// Thread safety: a WorkloadFilter is immutable; Matches may run concurrently.
#ifndef KVINDEX_BENCH_WORKLOAD_FILTER_H_
#define KVINDEX_BENCH_WORKLOAD_FILTER_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace bench {

class WorkloadFilter {
 public:
  // An empty pattern selects every workload. kInvalidArgument, naming the
  // pattern, when it is not a valid expression.
  static absl::StatusOr<WorkloadFilter> Compile(const std::string& pattern);

  bool Matches(absl::string_view name) const;

 private:
  // A std::regex, kept out of this header: GCC 12 reports a false
  // -Wmaybe-uninitialized in <regex>'s compiler under the sanitizers, so only
  // workload_filter.cc instantiates it (and is built without that warning).
  struct Regex;

  explicit WorkloadFilter(std::shared_ptr<const Regex> regex)
      : regex_(std::move(regex)) {}

  std::shared_ptr<const Regex> regex_;
};

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_WORKLOAD_FILTER_H_
