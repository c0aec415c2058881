// Process-wide counters of all index instances (like the OCaml library's
// Stats). Thread-safe. Reads through memory maps (data-file lookups) are not
// counted as reads.
#ifndef KVINDEX_INDEX_STATS_H_
#define KVINDEX_INDEX_STATS_H_

#include <cstdint>
#include <vector>

namespace kvindex {

struct Stats {
  uint64_t bytes_read = 0;
  uint64_t nb_reads = 0;
  uint64_t bytes_written = 0;
  uint64_t nb_writes = 0;
  uint64_t nb_merge = 0;  // merges started, aborted ones included
  // Merges whose output was written by copying the runs of old records
  // between log bindings as they are, rather than record by record (which
  // takes the first merge, a filter that must grow, a missing filter, and
  // Filter). Counted when the output is written, before it is committed.
  uint64_t nb_merge_copied_runs = 0;
  // Compactions of the tiered layout committed (runs folded in the
  // background), and the time they took in all (µs).
  uint64_t nb_compaction = 0;
  uint64_t time_compaction_us = 0;
  // The time all merges took (µs), aborted and failed ones included.
  uint64_t time_merge_us = 0;
  // The part of time_merge_us and time_compaction_us spent reading the
  // inputs against their checksum sidecars before merging them (µs).
  uint64_t time_verify_us = 0;
  uint64_t nb_replace = 0;  // replace calls, refused ones included
  uint64_t nb_sync = 0;
  uint64_t time_sync_us = 0;  // duration of the latest sync
  uint64_t lru_hits = 0;
  uint64_t lru_misses = 0;
  // Flush calls with with_fsync, and the fsyncs of the logs they ran: one
  // fsync serves every durable flush waiting on it (group commit), so the
  // ratio tells how many flushes shared each.
  uint64_t nb_durable_flush = 0;
  uint64_t nb_flush_fsync = 0;
  // Finds that searched a whole data file (or run) because its fan-out table
  // did not match its records around the key's bucket: damage the open's
  // checks did not see (DataFile::WholeFileSearches). Zero for a sound store.
  uint64_t nb_find_whole_file = 0;
  // Log bytes that opens hid or cut because the log's journal did not vouch
  // for them (Options::log_checksums, docs/format.md §9b): records of flushes
  // never fsynced that a power cut may have kept from the disk. Zero unless
  // such a cut came.
  uint64_t log_bytes_unvouched = 0;
  // Log bytes that writers' opens wrote back into a log from its journal's
  // frames: records of durable flushes whose pages a power cut kept from the
  // log. Zero unless such a power cut came.
  uint64_t log_bytes_restored = 0;
  // Durations (µs) of the last 10 merges, oldest first.
  std::vector<uint64_t> merge_durations_us;
  // Mean replace latency (ns) since the last reset, measured on one replace
  // in kReplaceSampling of each thread (its first one included): reading the
  // clock twice would cost a sizeable part of a replace.
  uint64_t replace_mean_ns = 0;
  // How many replaces replace_mean_ns was measured on.
  uint64_t nb_replace_timed = 0;
};

Stats GetStats();
void ResetStats();

inline constexpr uint64_t kReplaceSampling = 16;

namespace stats_internal {
void AddRead(uint64_t bytes);
void AddWrite(uint64_t bytes);
void AddMerge();
void AddMergeCopiedRuns();
void AddMergeDuration(uint64_t us);
void AddCompaction(uint64_t us);
void AddVerify(uint64_t us);
// Whether the calling thread's next replace is one to time.
bool TimeThisReplace();
// A replace; `timed`: it was timed and took `ns`.
void AddReplace(bool timed, uint64_t ns);
void AddSync(uint64_t us);
void AddDurableFlush();
void AddFlushFsync();
void AddLru(bool hit);
// What a log's open made of its journal: bytes hidden or cut, bytes restored.
void AddLogJournal(uint64_t unvouched, uint64_t restored);
}  // namespace stats_internal

}  // namespace kvindex

#endif  // KVINDEX_INDEX_STATS_H_
