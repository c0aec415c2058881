// The benchmark driver behind index_bench: the workloads of the OCaml index
// benchmark on the chosen stores (flags.h), each (store, workload) run in a
// forked child, then the comparison table and the JSON report. See
// bench/README.md.
#ifndef KVINDEX_BENCH_DRIVER_H_
#define KVINDEX_BENCH_DRIVER_H_

#include <string>
#include <vector>

#include "bench/store.h"

namespace kvindex {
namespace bench {

struct NamedStore {
  std::string name;
  StoreFactory factory;
};

// Runs the benchmark with the given stores available to --stores. Returns the
// process exit code: 0 when every run succeeded, 1 when one failed, 2 on bad
// flags.
int BenchMain(int argc, char** argv, const std::vector<NamedStore>& stores);

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_DRIVER_H_
