#include "log/log.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/flush_sums.h"
#include "io/status_macros.h"

namespace kvindex {
namespace {

// Logs are written without a fan-out table (the OCaml library's too): a
// header that claims one is damaged, and reading records after it would
// misplace every one of them.
absl::Status CheckNoFanout(const IndexFile& file) {
  if (file.fan_size() == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      file.path(), ": header field fan_size: ", file.fan_size(),
      " bytes, but a log has no fan-out table (the header is damaged)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> Log::OpenReadWrite(
    Env* env, const std::string& path, const Schema& schema, bool fresh,
    int64_t generation, IndexFile::FlushCallback flush_callback,
    bool checksums) {
  IndexFile::ReadWriteOptions options;
  options.fresh = fresh;
  options.generation = generation;
  options.fan_size = 0;
  options.entry_size = schema.entry_size();
  options.flush_callback = std::move(flush_callback);
  if (fresh) {
    // A journal of the file's earlier life must be gone before the fresh
    // header is: a reader opening the fresh file would otherwise show the
    // journal's records until the writer replaced it.
    absl::Status removed = FlushSums::RemoveStale(env, path);
    if (!removed.ok()) return removed;
  }
  auto file = IndexFile::OpenReadWrite(env, path, options);
  if (!file.ok()) return file.status();
  absl::Status no_fanout = CheckNoFanout(**file);
  if (!no_fanout.ok()) return no_fanout;
  absl::Status sums =
      checksums ? (*file)->StartFlushSums() : (*file)->DropFlushSums();
  if (!sums.ok()) return sums;
  std::unique_ptr<Log> log(new Log(schema, *std::move(file)));
  absl::Status s = log->LoadNewRecords();
  if (!s.ok()) return s;
  return log;
}

absl::Status Log::RemoveOrphanJournal(Env* env, const std::string& path) {
  absl::StatusOr<bool> log_exists = env->FileExists(path);
  if (!log_exists.ok()) return log_exists.status();
  if (*log_exists) return absl::OkStatus();
  const std::string journal = FlushSums::PathFor(path);
  for (const std::string& orphan : {journal, journal + ".tmp"}) {
    absl::StatusOr<bool> exists = env->FileExists(orphan);
    if (!exists.ok()) return exists.status();
    if (!*exists) continue;
    absl::Status removed = env->RemoveFile(orphan);
    if (!removed.ok()) return removed;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Log>> Log::OpenReadOnly(Env* env,
                                                       const std::string& path,
                                                       const Schema& schema) {
  auto file = IndexFile::OpenReadOnly(env, path, schema.entry_size());
  if (!file.ok()) return file.status();
  if (*file == nullptr) return std::unique_ptr<Log>();
  absl::Status no_fanout = CheckNoFanout(**file);
  if (!no_fanout.ok()) return no_fanout;
  // A writer's open cuts what its checksum sidecar does not vouch for; until
  // then, a reader must not show it either.
  absl::Status capped = (*file)->CapToFlushSums();
  if (!capped.ok()) return capped;
  std::unique_ptr<Log> log(new Log(schema, *std::move(file)));
  absl::Status s = log->LoadNewRecords();
  if (!s.ok()) return s;
  return log;
}

absl::Status Log::Append(absl::string_view key, absl::string_view value) {
  return Append(key, value, schema_.hash(key));
}

absl::Status Log::Append(absl::string_view key, absl::string_view value,
                         uint64_t hash) {
  // One buffer per thread: appends are serialised by the caller anyway, and
  // this keeps the write path free of allocations.
  thread_local std::string entry;
  entry.resize(schema_.entry_size());
  EncodeEntry(schema_, key, value, entry.data());
  return AppendEntry(entry.data(), hash);
}

absl::Status Log::AppendEntry(const char* entry) {
  return AppendEntry(entry, schema_.hash(EntryKey(schema_, entry)));
}

absl::Status Log::AppendEntry(const char* entry, uint64_t hash) {
  // IndexFile::Append keeps the record in its write buffer even when the
  // automatic flush it may trigger fails, so the table must show it either way:
  // the file and the table never disagree on what the log holds.
  const uint64_t before = file_->offset();
  absl::Status s =
      file_->Append(absl::string_view(entry, schema_.entry_size()));
  if (file_->offset() > before) table_.Add(entry, hash);
  return s;
}

absl::Status Log::LoadNewRecords() {
  auto pending = ReadPending();
  if (!pending.ok()) return pending.status();
  AddRecords(*pending);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Log::ReadPending() const {
  const uint64_t from = table_.records() * schema_.entry_size();
  const uint64_t to = file_->offset();
  if (to < from) {
    return absl::DataLossError(absl::StrCat(
        file_->path(), ": log offset went back from ", from, " to ", to));
  }
  std::string bytes(static_cast<size_t>(to - from), '\0');
  size_t got = 0;
  absl::Status s = file_->Read(from, bytes.size(), bytes.data(), &got);
  if (!s.ok()) return s;
  if (got != bytes.size()) {
    return absl::DataLossError(absl::StrCat(file_->path(), ": expected ",
                                            bytes.size(), " bytes at offset ",
                                            from, ", read ", got));
  }
  return bytes;
}

void Log::AddRecords(absl::string_view records) {
  const size_t e = schema_.entry_size();
  for (size_t i = 0; i + e <= records.size(); i += e) {
    table_.Add(records.data() + i);
  }
}

absl::Status Log::Flush(const FlushOptions& options) {
  return file_->Flush(options);
}

absl::Status Log::ReplaceWith(IndexFile::Replacement& file, Log& source,
                              const std::function<void()>& hook) {
  if (file.end() != source.file().offset()) {
    return absl::FailedPreconditionError(
        absl::StrCat(file_->path(), ": its replacement holds ", file.end(),
                     " bytes of records, ", source.file().path(), " ",
                     source.file().offset()));
  }
  KVINDEX_RETURN_IF_ERROR(file_->ReplaceWith(file, hook));
  table_ = std::move(source.table_);
  source.table_ = LogTable(schema_);
  return absl::OkStatus();
}

absl::Status Log::Clear(int64_t generation, bool reopen,
                        const std::function<void()>& hook) {
  table_.Clear();
  return file_->Clear(generation, reopen, hook);
}

}  // namespace kvindex
