// Log: a write-ahead log file (`log` or `log_async`) together with its
// in-memory table. Appends go to the file's write buffer and to the table;
// finds never touch the disk.
//
// Thread safety: as LogTable: const methods concurrently, the rest exclusively.
#ifndef KVINDEX_LOG_LOG_H_
#define KVINDEX_LOG_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "io/env.h"
#include "io/flush_options.h"
#include "io/index_file.h"
#include "log/log_table.h"

namespace kvindex {

class Log {
 public:
  // Opens or creates the log at `path` and loads its records. With
  // `checksums`, the log keeps its journal (IndexFile::StartFlushSums: records
  // a power cut kept from the disk are first restored from the journal an
  // earlier writer left, or cut if it never fsynced them); without, such a
  // journal is recovered from the same way, then removed
  // (IndexFile::DropFlushSums).
  static absl::StatusOr<std::unique_ptr<Log>> OpenReadWrite(
      Env* env, const std::string& path, const Schema& schema, bool fresh,
      int64_t generation, IndexFile::FlushCallback flush_callback,
      bool checksums = false);
  // Removes the journal (and a journal being written) of the log at `path`
  // when the log itself is gone: its removal came first and then a failure or
  // a crash. A journal vouches only for the log beside it, so this one holds
  // nothing any log needs. Not durable: one a power cut brings back is
  // removed again, and a fresh log never reads one (OpenReadWrite).
  static absl::Status RemoveOrphanJournal(Env* env, const std::string& path);

  // Opens an existing log read-only and loads its records; nullptr if absent.
  // Records the log's journal does not vouch for (or that the log lost and the
  // journal holds) stay hidden until a writer opens the log and restores them
  // (IndexFile::CapToFlushSums).
  static absl::StatusOr<std::unique_ptr<Log>> OpenReadOnly(
      Env* env, const std::string& path, const Schema& schema);

  // REQUIRES: sizes match the schema (checked by the caller).
  // `hash` is the key's hash (schema.hash), when the caller already has it.
  absl::Status Append(absl::string_view key, absl::string_view value,
                      uint64_t hash);
  absl::Status Append(absl::string_view key, absl::string_view value);
  absl::Status AppendEntry(const char* entry, uint64_t hash);
  absl::Status AppendEntry(const char* entry);
  // See LogTable::Reserve.
  void Reserve(uint64_t records) { table_.Reserve(records); }

  // The newest entry of `key` (key then value bytes), or nullptr.
  const char* Find(absl::string_view key, uint64_t hash) const {
    return table_.Find(key, hash);
  }

  // Loads records [records() * entry_size, file offset) into the table.
  absl::Status LoadNewRecords();
  // The same in two steps, so that read-only instances read the file without
  // holding the lock that protects the table: the bytes of the records not yet
  // loaded, then adding them (whole records).
  absl::StatusOr<std::string> ReadPending() const;
  void AddRecords(absl::string_view records);

  // Writes the appended records to the file: the flush callback (unless
  // options.no_callback), the records, the header offset, then an fsync if
  // options.with_fsync (even with nothing to write). See IndexFile::Flush.
  absl::Status Flush(const FlushOptions& options = FlushOptions());

  // Empties the file (see IndexFile::Clear) and the table.
  absl::Status Clear(int64_t generation, bool reopen,
                     const std::function<void()>& hook = nullptr);
  // Swaps `file` in for this log's file (IndexFile::ReplaceWith) and takes
  // the table of `source`, the log whose records `file` was copied from in
  // full, which is left with an empty table. A merge's commit: the next log
  // is log_async's records, built aside.
  absl::Status ReplaceWith(IndexFile::Replacement& file, Log& source,
                           const std::function<void()>& hook = nullptr);

  const LogTable& table() const { return table_; }
  IndexFile& file() { return *file_; }
  const IndexFile& file() const { return *file_; }
  int64_t generation() const { return file_->generation(); }
  // Bytes of records the open hid or cut because the log's journal did not
  // vouch for them (IndexFile::unvouched_bytes_cut).
  uint64_t unvouched_bytes_cut() const { return file_->unvouched_bytes_cut(); }
  // Bytes of records a writer's open wrote back from the log's journal
  // (IndexFile::restored_bytes).
  uint64_t restored_bytes() const { return file_->restored_bytes(); }

 private:
  Log(const Schema& schema, std::unique_ptr<IndexFile> file)
      : schema_(schema), file_(std::move(file)), table_(schema) {}

  Schema schema_;
  std::unique_ptr<IndexFile> file_;
  LogTable table_;
};

}  // namespace kvindex

#endif  // KVINDEX_LOG_LOG_H_
