// RawIndex: the index over encoded keys and values (byte strings of the
// schema's fixed sizes). index/index.h puts typed keys and values on top of it.
//
// A store is a directory: all files live in `<root>/index/` (see
// io/index_file.h for the format, shared with the OCaml `index` library). One
// read-write instance per store (a lock file enforces it across processes and
// within one); any number of read-only instances, in this or other processes,
// that see what the writer flushed as of their last sync().
//
// Thread safety: every method may be called from any thread. Finds run in
// parallel with each other, with replaces and with a background merge.
//
// Errors:
//   - a closed handle, a write on a read-only instance, sync() on a read-write
//     one: kFailedPrecondition;
//   - a wrong key or value size: kInvalidArgument;
//   - a store locked by another writer: kUnavailable;
//   - corrupt or foreign files: kDataLoss naming the file.
// After an IO error on a write path the instance refuses further writes
// (kFailedPrecondition carrying the original error); reads keep working, and
// reopening recovers everything that was flushed with fsync.
#ifndef KVINDEX_INDEX_RAW_INDEX_H_
#define KVINDEX_INDEX_RAW_INDEX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "index/options.h"
#include "io/flush_options.h"

namespace kvindex {

namespace index_internal {
class Instance;
}  // namespace index_internal

class RawIndex {
 public:
  // Opens (creating if needed) the store at `root`. Read-only opens sync once.
  static absl::StatusOr<std::unique_ptr<RawIndex>> Open(const std::string& root,
                                                        const Schema& schema,
                                                        const Options& options);
  // Closes the handle (close(false)) if still open.
  ~RawIndex();
  RawIndex(const RawIndex&) = delete;
  RawIndex& operator=(const RawIndex&) = delete;

  const Schema& schema() const;
  const std::string& root() const;
  bool readonly() const;

  // Copies the value bound to `key` into value_out[0, value_size) and returns
  // true, or returns false (no allocation on a miss).
  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) const;
  absl::StatusOr<bool> Mem(absl::string_view key) const;

  // Binds key to value (in the log; durable after flush with fsync). May start
  // a merge when the log is full, and with Throttle::kBlockWrites may wait for
  // a running one; `overcommit` never starts or waits for a merge.
  absl::Status Replace(absl::string_view key, absl::string_view value,
                       bool overcommit = false);

  // Removes every binding for which keep(key, value) is false. Blocking: runs a
  // merge in the calling thread. Only the newest binding of each key is
  // considered.
  absl::Status Filter(
      const std::function<bool(absl::string_view, absl::string_view)>& keep);

  // Calls f once for every key, with its newest value, in no particular
  // order. It sees one state of the index: writers wait until it returns, so
  // f must not call into this index.
  absl::Status Iter(
      const std::function<void(absl::string_view, absl::string_view)>& f) const;

  // Removes every binding; aborts a running merge.
  absl::Status Clear();
  // Writes the replaces buffered in the log(s) to the file(s); see
  // io/flush_options.h. With options.with_fsync, returns OK only once every
  // replace that returned before this call (from any thread) is durable.
  // Durable flushes from several threads share their writes and fsyncs
  // (group commit): one write and fsync serve all the flushes that arrived
  // while the previous one ran, and the callback runs before that write
  // unless every one of them asked for no_callback.
  absl::Status Flush(const FlushOptions& options = FlushOptions());

  // Starts a merge of the log into the data file (waiting for a running one
  // first) and returns once it runs in the background.
  absl::Status Merge();
  // Merge() if the log holds more than log_size entries, else nothing.
  absl::Status TryMerge();
  // Waits for the merge running (if any) and, in the tiered layout, the
  // compactions in the background. Returns the outcome of the last merge: OK,
  // kAborted (cancelled by clear/close), or the error that stopped it; after
  // an OK merge, the error that stopped a background compaction since the
  // last call, if one did (each such error is returned once).
  absl::Status AwaitMerge();
  // Whether a merge (or, in the tiered layout, a compaction) runs.
  absl::StatusOr<bool> IsMerging() const;

  // Read-only instances: catch up with what the writer flushed.
  absl::Status Sync();

  // Closes this handle. Idempotent. The instance closes with its last handle:
  // the log is flushed with fsync and the lock released. immediately: abort a
  // running merge (and, in the tiered layout, the compactions) instead of
  // waiting for it (its work is redone by the next merge or open).
  absl::Status Close(bool immediately = false);

  // Testing: the log's (and log_async's) distinct bindings as key+value
  // entries.
  std::vector<std::string> TEST_LogEntries() const;
  std::vector<std::string> TEST_LogAsyncEntries() const;

 private:
  friend class InstanceCache;
  explicit RawIndex(std::shared_ptr<index_internal::Instance> instance);
  absl::StatusOr<index_internal::Instance*> Live() const;

  std::shared_ptr<index_internal::Instance> instance_;
  // Checked by every call without a lock: finds on one handle run in parallel.
  std::atomic<bool> closed_{false};
};

// Shares one instance per (root, readonly) among the indexes opened with it
// (OCaml index's `cache`). Thread-safe. Must outlive the indexes opened through
// it.
class InstanceCache {
 public:
  InstanceCache();
  ~InstanceCache();

 private:
  friend class RawIndex;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_RAW_INDEX_H_
