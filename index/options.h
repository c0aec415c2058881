// Options of an index instance, and the test hooks.
#ifndef KVINDEX_INDEX_OPTIONS_H_
#define KVINDEX_INDEX_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "io/env.h"

namespace kvindex {

class InstanceCache;

// What a write does when the log is over its limit while a merge is still
// running.
enum class Throttle {
  // The write that overflows waits for the running merge, then starts the next
  // one.
  kBlockWrites,
  // Writes never wait: the log grows past log_size until the merge ends.
  kOvercommitMemory,
};

// How a store keeps its bindings on disk (docs/format.md, docs/design.md).
enum class Layout {
  // One data file, rewritten whole by every merge: the OCaml `index.unix`
  // format, byte for byte. Merges cost grows with the store.
  kSingleFile,
  // Several data files ("runs", each in the single-file format with its own
  // key filter) listed by a manifest; a merge writes the log into the
  // smallest free slot, folding in the runs below it, so each binding is
  // rewritten about log2(store / log_size) times. For stores of 10^8 and more
  // bindings. The OCaml library cannot read such a store: open it with
  // kSingleFile first, which compacts it back into one data file.
  kTiered,
};

// Points where tests can pause or fail an index operation (OCaml index's
// hooks).
enum class HookPoint {
  kMergeBefore,           // merge thread started: merge lock held, log flushed
  kMergeAfterFirstEntry,  // first data record handled (only when data exists)
  kMergeCommitted,        // commit: output committed, log not yet reset
  kMergeNextLogBuilt,     // commit: log_async's records copied into
                          // log_tmp and fsynced, writer lock not taken
  kMergeAfterClear,       // commit: log replaced by log_tmp, log_async not
                          // yet removed
  kMergeAfter,            // commit done, merge lock still held
  kMergeEnded,            // merge thread: a merge returned, committed or not
  kClearAbortSignalled,   // clear: cancel flag set, merge lock not yet taken
  kClearIo,               // clear: new log renamed in, old file not yet stamped
  kCloseAbortSignalled,   // close(immediately): cancel flag set
  kSyncBeforeOffsetRead,  // sync: before reading the log header
  kSyncAfterOffsetRead,   // sync: after reading the log header
  kSyncReloadLog,         // sync: generation changed, log and data reopened
  kSyncLogOpened,         // sync: log (re)opened, data file or runs not yet
  kSyncReloadLogAsync,    // sync: log_async (re)opened from its path
  kCompactionBefore,      // tiered: compaction thread, before its output
  kCompactionAfter,       // tiered: compaction committed
  kCompactionEnded,       // tiered: a compaction returned, committed or not
  kFlushAwaitDurable,     // durable flush: records written, fsync awaited
  kFlushSync,             // durable flush: this thread fsyncs the logs
};

// Called at each HookPoint. A non-OK status makes the merge or compaction fail
// there as if an IO error had happened (their points only; ignored elsewhere).
using TestHook = std::function<absl::Status(HookPoint)>;

struct Options {
  // File system; nullptr means Env::Posix(). Not owned; must outlive the index.
  Env* env = nullptr;
  // Read-write: start empty (the previous contents are cleared). Not allowed
  // read-only.
  bool fresh = false;
  // Read-only instance: finds only, sees the writer's flushed data as of its
  // last sync().
  bool readonly = false;
  // Number of entries the log holds before a merge starts (500 000 upstream).
  uint64_t log_size = 500000;
  Throttle throttle = Throttle::kBlockWrites;
  // Read-write only: the layout the store is kept in. Opening a store of the
  // other layout converts it: a single-file store's data file becomes the
  // oldest run of a tiered one; a tiered store is compacted into one data
  // file (a full merge, at open). Read-only instances read either layout,
  // whatever this says.
  Layout layout = Layout::kSingleFile;
  // Called before any binding is written to a file (flushes and merges), from
  // the thread doing the write, with internal locks held: it must not call into
  // the index.
  std::function<void()> flush_callback;
  // Entries in the cache of recent find/replace results; 0 disables it. The
  // cache is set-associative (sets of 8 entries, each evicting its least
  // recently used one): an exact LRU up to 8 entries, a close approximation
  // above, at two cache lines per lookup.
  size_t lru_size = 30000;
  // Read every data file of the store (the data file, or each run of the
  // tiered layout) against its checksum sidecar (docs/format.md §9a) when the
  // instance is opened, read-write or read-only, once its recovery is done:
  // a block that differs fails the open with kDataLoss naming the file and
  // the byte range. Files without a usable sidecar are not checked. Costs a
  // read of the whole store; merges check their inputs anyway, with or
  // without this. An open served by the instance cache (below) checks
  // nothing.
  bool verify_data_on_open = false;
  // Read-write only: keep a journal beside each log (`log.sum`,
  // `log_async.sum`; docs/format.md §9b, outside the OCaml format) with a
  // checksummed frame per flush that carries the flush's records. A durable
  // flush then fsyncs the journal alone (the log is fsynced lazily: at a
  // merge's commit, a clear, a clean close), and a writer's open restores
  // from the frames the records a power cut kept from the log and cuts those
  // no frame vouches for, which only a flush that was never fsynced leaves:
  // on a device that persists pages in any order, a log's offset can reach
  // the disk without the records it covers, and without the journal their
  // pages (zeros, old bytes) would read as bindings. Durable flushes cost
  // less than without it (one fsync of a file grown ahead, no header page
  // rewritten); every flushed record is written twice, and an open reads the
  // journal and fsyncs the log. Off, an open restores from a journal an
  // earlier writer left, then removes it. A clean close fsyncs the log and
  // removes the journal, so that the OCaml library may write the store next;
  // after a crash, open it with kvindex first. Read-only instances read a
  // log's journal when they open the log, whatever this says, and show what
  // the writer's open will leave (the frames' records included) until a
  // writer reopens the log.
  bool log_checksums = false;
  // Share one instance per (root, readonly) among opens that pass the same
  // cache. Not owned; must outlive the indexes opened with it.
  InstanceCache* cache = nullptr;
  // Testing only.
  TestHook test_hook;
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_OPTIONS_H_
