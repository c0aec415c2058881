// index_bench: this library against its peers on the OCaml index benchmark's
// workloads. Usage and the peers' configurations: bench/README.md, or --help.
//
//   ./bazelw run -c opt //bench:index_bench -- --quick
#include "bench/driver.h"
#include "bench/store.h"

int main(int argc, char** argv) {
  using kvindex::bench::NamedStore;
  return kvindex::bench::BenchMain(
      argc, argv,
      {
          NamedStore{"kvindex", &kvindex::bench::NewKvIndexStore},
          NamedStore{"kvindex_tiered", &kvindex::bench::NewKvIndexTieredStore},
          NamedStore{"lmdb", &kvindex::bench::NewLmdbStore},
          NamedStore{"leveldb", &kvindex::bench::NewLevelDbStore},
          NamedStore{"rocksdb", &kvindex::bench::NewRocksDbStore},
          NamedStore{"hashmap", &kvindex::bench::NewHashMapStore},
      });
}
