// Store: the small interface every benchmarked key-value store is put behind,
// so that the driver (bench/index_bench.cc) runs the same workloads on this
// library and on its peers. Keys and values are byte strings of the fixed sizes
// in StoreConfig.
//
// One Store object is used by one thread, in one process: the driver forks a
// child per (store, workload) and opens the store there. The exception is
// ReplaceDurable, which several threads may call at once.
//
// Errors are absl::Status values naming the store's directory; the driver stops
// the run on the first one.
#ifndef KVINDEX_BENCH_STORE_H_
#define KVINDEX_BENCH_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace bench {

// What every store is told about the run (sizing hints and per-store knobs).
struct StoreConfig {
  size_t key_size = 32;
  size_t value_size = 13;
  // Bindings the run writes (sizes LMDB's map).
  uint64_t entries = 0;
  // kvindex: entries in the log before a merge; key hash "ocaml" (Hashtbl.hash,
  // the OCaml library's String_fixed) or "xxh3"; LRU entries; layout
  // "single_file" or "tiered" (Options::layout).
  uint64_t log_size = 500000;
  std::string key_hash = "ocaml";
  size_t lru_size = 30000;
  std::string layout = "single_file";
  // kvindex: Options::log_checksums.
  bool log_checksums = false;
  // LMDB, LevelDB, RocksDB: puts per write transaction / WriteBatch.
  size_t batch = 10000;
  // LevelDB, RocksDB: block cache size.
  size_t cache_mb = 256;
};

enum class OpenMode {
  kFresh,      // read-write, previous contents removed
  kReadWrite,  // read-write on what is there
  kReadOnly,   // the store's read-only mode where it has one (see
               // ReadOnlyIsNative)
};

class Store {
 public:
  virtual ~Store() = default;

  virtual std::string name() const = 0;
  // False when the store has no read-only mode and kReadOnly opens it
  // read-write (it is then only read).
  virtual bool ReadOnlyIsNative() const = 0;
  // False when Flush(true) cannot make data durable (the in-memory floor).
  virtual bool Durable() const = 0;

  // Opens the store kept in directory `dir` (created if needed).
  virtual absl::Status Open(const std::string& dir, OpenMode mode) = 0;

  // Binds key to value. May be buffered (a write batch) until Flush.
  virtual absl::Status Replace(absl::string_view key,
                               absl::string_view value) = 0;

  // Copies the value bound to `key` into value_out[0, value_size) and returns
  // true, or returns false. Sees this handle's earlier replaces, flushed or
  // not.
  virtual absl::StatusOr<bool> Find(absl::string_view key, char* value_out) = 0;

  // Calls f on every binding (each key at least once).
  virtual absl::Status Iter(
      const std::function<void(absl::string_view, absl::string_view)>& f) = 0;

  // Binds key to value and returns once the binding is durable (safe from a
  // power loss), without going through the store's write batch. Thread-safe:
  // several threads may call it at once on one open store, while no other
  // method runs. Call it with no batched replace pending (after a Flush).
  // Stores whose Durable() is false return kUnimplemented.
  virtual absl::Status ReplaceDurable(absl::string_view key,
                                      absl::string_view value) = 0;

  // Makes every replace so far visible to a store opened afterwards and safe
  // from a crash of this process; with fsync, also from a power loss.
  virtual absl::Status Flush(bool fsync) = 0;

  // Closes the store (flushing). The object may be opened again afterwards.
  virtual absl::Status Close() = 0;

  // After a bulk load, on an open store: brings it to its settled shape (LSM
  // trees: a full compaction). Not timed.
  virtual absl::Status Settle() { return absl::OkStatus(); }
  // Whether Settle() does anything (the driver skips the reopen otherwise).
  virtual bool HasSettle() const { return false; }

  // Store-specific counters accumulated by this process since the child
  // started, as (name, value) pairs reported next to the common metrics.
  virtual std::vector<std::pair<std::string, double>> Metrics() const {
    return {};
  }
};

using StoreFactory = std::function<std::unique_ptr<Store>(const StoreConfig&)>;

// The stores (one .cc each).
std::unique_ptr<Store> NewHashMapStore(const StoreConfig& config);
std::unique_ptr<Store> NewLmdbStore(const StoreConfig& config);
std::unique_ptr<Store> NewLevelDbStore(const StoreConfig& config);
std::unique_ptr<Store> NewRocksDbStore(const StoreConfig& config);
std::unique_ptr<Store> NewKvIndexStore(const StoreConfig& config);
// kvindex in the tiered layout, whatever config.layout says.
std::unique_ptr<Store> NewKvIndexTieredStore(const StoreConfig& config);

// Helpers for the store implementations.
// Removes `dir` and everything below it (absent is fine), then creates it
// empty.
absl::Status ResetDirectory(const std::string& dir);
// Creates `dir` and its parents if missing.
absl::Status MakeDirectories(const std::string& dir);

}  // namespace bench
}  // namespace kvindex

#endif  // KVINDEX_BENCH_STORE_H_
