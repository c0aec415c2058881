// IndexFile: the OCaml index.unix file format (see index_file.h for the
// grammar, io/file_header.h for the header's bytes).
//
// The offset field is the commit point: a flush writes the record bytes first
// and the offset after them, so a crash in between leaves the old offset and
// some garbage past it.

#include "io/index_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "io/file_header.h"
#include "io/path_status.h"
#include "io/status_macros.h"

namespace kvindex {

namespace {

using io_internal::Annotate;
using io_internal::Dirname;

constexpr uint64_t kMaxInt64 =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// The part of an encoded header a writer rewrites in place.
absl::string_view GetSetPart(const std::string& encoded) {
  return absl::string_view(encoded).substr(0, FileHeader::kGetSetSize);
}

// The logical offset a handle uses for a header claiming `claimed` bytes of
// records in a file of `file_size` bytes: cut to what the file holds, then to
// whole records.
uint64_t UsableOffset(uint64_t claimed, uint64_t file_size,
                      uint64_t header_size, size_t entry_size) {
  const uint64_t held = file_size > header_size ? file_size - header_size : 0;
  uint64_t offset = std::min(claimed, held);
  return offset - offset % entry_size;
}

}  // namespace

IndexFile::IndexFile(Env* env, std::string path, std::unique_ptr<File> file,
                     bool readonly)
    : env_(env),
      path_(std::move(path)),
      file_(std::move(file)),
      readonly_(readonly) {}

IndexFile::~IndexFile() = default;

namespace {

// Reads and validates the header of an existing file of `file_size` >= 32
// bytes, whose fan-out table must fit in the file.
absl::StatusOr<FileHeader> LoadHeader(const File& file, const std::string& path,
                                      uint64_t file_size) {
  char buf[FileHeader::kSize];
  KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(file, 0, sizeof(buf), buf), path,
                                   "reading the header"));
  KVINDEX_ASSIGN_OR_RETURN(
      const FileHeader header,
      FileHeader::Decode(absl::string_view(buf, sizeof(buf)), path));
  if (static_cast<uint64_t>(header.fan_size) > file_size - FileHeader::kSize) {
    return absl::DataLossError(
        absl::StrCat(path, ": header field fan_size: invalid fan-out size ",
                     header.fan_size, " (the file has ", file_size, " bytes)"));
  }
  return header;
}

// Whether a file of `file_size` bytes is what a power cut can leave of a file
// whose header was written but not yet fsynced: shorter than a header, or a
// header's length of zeros (a page that never reached the disk). Either
// claims no records.
absl::StatusOr<bool> NeverWritten(const File& file, const std::string& path,
                                  uint64_t file_size) {
  if (file_size < FileHeader::kSize) return true;
  if (file_size > FileHeader::kSize) return false;
  char buf[FileHeader::kSize];
  KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(file, 0, sizeof(buf), buf), path,
                                   "reading the header"));
  return std::all_of(buf, buf + sizeof(buf), [](char c) { return c == 0; });
}

}  // namespace

absl::StatusOr<std::unique_ptr<IndexFile>> IndexFile::OpenReadWrite(
    Env* env, const std::string& path, const ReadWriteOptions& options) {
  if (options.entry_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": entry size must be positive"));
  }
  if (options.fan_size % 8 != 0 || options.fan_size > kMaxInt64) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": fan-out size ", options.fan_size,
                     " is not a non-negative multiple of 8"));
  }
  absl::StatusOr<bool> exists = env->FileExists(path);
  if (!exists.ok())
    return Annotate(exists.status(), path, "checking existence");
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(path, OpenMode::kCreateReadWrite);
  if (!file.ok()) return Annotate(file.status(), path, "opening read-write");

  uint64_t file_size = 0;
  if (*exists) {
    absl::StatusOr<uint64_t> size = (*file)->Size();
    if (!size.ok()) return Annotate(size.status(), path, "reading the size");
    file_size = *size;
  }

  std::unique_ptr<IndexFile> handle(
      new IndexFile(env, path, *std::move(file), /*readonly=*/false));
  handle->entry_size_ = options.entry_size;
  handle->flush_callback_ = options.flush_callback;
  handle->write_behind_ = options.write_behind;
  handle->stale_end_ = file_size;

  // A file shorter than its header, or a header of zeros, is what a crash
  // right after creation can leave (upstream did not fsync new files): it
  // holds nothing, so start it afresh.
  bool never_written = !*exists;
  if (*exists) {
    KVINDEX_ASSIGN_OR_RETURN(never_written,
                             NeverWritten(*handle->file_, path, file_size));
  }
  if (never_written || options.fresh) {
    FileHeader header;
    header.generation = options.generation;
    header.fan_size = static_cast<int64_t>(options.fan_size);
    KVINDEX_RETURN_IF_ERROR(Annotate(handle->file_->PWrite(0, header.Encode()),
                                     path, "writing the header"));
    KVINDEX_RETURN_IF_ERROR(
        Annotate(handle->file_->Sync(), path, "syncing the header"));
    handle->fan_size_ = options.fan_size;
    handle->generation_ = options.generation;
    handle->header_rewritten_ = true;
    if (never_written) {
      // Make the directory entry durable too, so that a crash cannot leave the
      // synced file unreachable (or an older, shorter one in its place).
      KVINDEX_RETURN_IF_ERROR(
          Annotate(env->SyncDir(Dirname(path)), path, "syncing the directory"));
    }
    return handle;
  }

  absl::StatusOr<FileHeader> header =
      LoadHeader(*handle->file_, path, file_size);
  if (!header.ok()) return header.status();
  handle->fan_size_ = static_cast<uint64_t>(header->fan_size);
  handle->generation_ = header->generation;
  handle->offset_ =
      UsableOffset(static_cast<uint64_t>(header->offset), file_size,
                   handle->header_size(), handle->entry_size_);
  handle->flushed_ = handle->offset_;
  return handle;
}

absl::Status IndexFile::RecoverFromFlushSums(absl::string_view what) {
  if (file_ == nullptr || readonly_ || sums_ != nullptr || !buffer_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": ", what, " on a read-write handle before any append"));
  }
  // A journal left beside a file this handle started afresh describes the
  // file's earlier life, even at the same generation: it must not bring
  // those records back.
  if (header_rewritten_) return absl::OkStatus();
  KVINDEX_ASSIGN_OR_RETURN(
      const FlushSums::Verdict verdict,
      FlushSums::Verify(env_, *file_, path_, generation_, header_size(),
                        entry_size_, offset_, file_.get()));
  if (!verdict.applies && offset_ == 0) return absl::OkStatus();
  restored_bytes_ = verdict.restored_bytes;
  if (verdict.applies && verdict.verified_end != offset_) {
    // Past verified_end no frame vouches for the records: they were never
    // fsynced (a durable flush fsyncs its frame), and after a power cut they
    // may be pages the disk never got. Short of it, the offset never reached
    // the disk, but the frames did. Either way the frames decide, on disk too,
    // before anyone reads the records.
    if (verdict.verified_end < offset_) {
      unvouched_bytes_cut_ = offset_ - verdict.verified_end;
    }
    offset_ = verdict.verified_end;
    flushed_ = offset_;
    KVINDEX_RETURN_IF_ERROR(
        WriteOffset("setting the offset to the journal's records"));
  }
  // The log is fsynced lazily (its frames make flushes durable): whatever
  // replaces the sidecar must find its records durable in the log itself.
  KVINDEX_RETURN_IF_ERROR(Annotate(file_->Sync(), path_, "syncing"));
  synced_writes_ = writes_.load();
  return absl::OkStatus();
}

absl::Status IndexFile::StartFlushSums() {
  KVINDEX_RETURN_IF_ERROR(RecoverFromFlushSums("checksums start"));
  KVINDEX_ASSIGN_OR_RETURN(sums_, FlushSums::Create(env_, path_, generation_,
                                                    header_size(), offset_));
  return Annotate(env_->SyncDir(Dirname(path_)), path_,
                  "syncing the directory");
}

absl::Status IndexFile::DropFlushSums() {
  KVINDEX_ASSIGN_OR_RETURN(const bool exists,
                           env_->FileExists(FlushSums::PathFor(path_)));
  if (!exists) return absl::OkStatus();
  KVINDEX_RETURN_IF_ERROR(RecoverFromFlushSums("a journal is dropped"));
  return FlushSums::RemoveStale(env_, path_);
}

absl::Status IndexFile::CapToFlushSums() {
  if (file_ == nullptr || !readonly_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": only read-only handles cap to checksums"));
  }
  std::string unheld;
  KVINDEX_ASSIGN_OR_RETURN(
      const FlushSums::Verdict verdict,
      FlushSums::Verify(env_, *file_, path_, generation_, header_size(),
                        entry_size_, offset_, nullptr, &unheld));
  if (!verdict.applies ||
      (verdict.verified_end == offset_ && verdict.restorable_end == offset_)) {
    return absl::OkStatus();
  }
  // The records past restorable_end were never fsynced: hidden. The ones
  // from verified_end on are served from the journal's frames, as the
  // writer's open will write them back.
  if (verdict.restorable_end < offset_) {
    unvouched_bytes_cut_ = offset_ - verdict.restorable_end;
  }
  capped_ = true;
  cap_end_ = verdict.restorable_end;
  cap_claimed_ = claimed_;
  cap_generation_ = generation_;
  overlay_begin_ = verdict.verified_end;
  overlay_ = std::move(unheld);
  offset_ = flushed_ = cap_end_;
  return absl::OkStatus();
}

absl::Status IndexFile::SyncFileAndSums() {
  const uint64_t writes = writes_.load();
  KVINDEX_RETURN_IF_ERROR(syncer().Sync());
  unsynced_writes_ = false;
  if (sums_ == nullptr) synced_writes_ = writes;  // the syncer synced the file
  return absl::OkStatus();
}

absl::Status IndexFile::SyncFile() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  // A write that lands after this load keeps the counts apart, and the next
  // SyncFile syncs again.
  const uint64_t writes = writes_.load();
  if (writes == synced_writes_.load()) return absl::OkStatus();
  KVINDEX_RETURN_IF_ERROR(Annotate(file_->Sync(), path_, "syncing"));
  synced_writes_ = writes;
  return absl::OkStatus();
}

IndexFile::Syncer IndexFile::syncer() const {
  if (sums_ == nullptr) return Syncer(file_, path_, FlushSums::Syncer());
  return Syncer(file_, path_, sums_->syncer());
}

absl::StatusOr<std::unique_ptr<IndexFile>> IndexFile::OpenReadOnly(
    Env* env, const std::string& path, size_t entry_size) {
  if (entry_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": entry size must be positive"));
  }
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFileIfExists(path, OpenMode::kReadOnly);
  if (!file.ok()) return Annotate(file.status(), path, "opening read-only");
  if (*file == nullptr) return nullptr;
  absl::StatusOr<uint64_t> size = (*file)->Size();
  if (!size.ok()) return Annotate(size.status(), path, "reading the size");
  KVINDEX_ASSIGN_OR_RETURN(const bool never_written,
                           NeverWritten(**file, path, *size));
  if (never_written) return nullptr;

  absl::StatusOr<FileHeader> header = LoadHeader(**file, path, *size);
  if (!header.ok()) return header.status();
  std::unique_ptr<IndexFile> handle(
      new IndexFile(env, path, *std::move(file), /*readonly=*/true));
  handle->entry_size_ = entry_size;
  handle->fan_size_ = static_cast<uint64_t>(header->fan_size);
  handle->generation_ = header->generation;
  handle->claimed_ = static_cast<uint64_t>(header->offset);
  handle->offset_ =
      UsableOffset(handle->claimed_, *size, handle->header_size(), entry_size);
  handle->flushed_ = handle->offset_;
  return handle;
}

absl::Status IndexFile::Append(absl::string_view bytes) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (readonly_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": read-only"));
  }
  buffer_.append(bytes.data(), bytes.size());
  offset_ += bytes.size();
  // On a failed auto-flush the bytes stay buffered; the error is reported here.
  if (buffer_.size() > kAutoFlushBytes) return Flush();
  return absl::OkStatus();
}

absl::Status IndexFile::WriteOffset(absl::string_view what) {
  char offset[8];
  absl::big_endian::Store64(offset, offset_);
  return Annotate(file_->PWrite(FileHeader::kOffsetAt,
                                absl::string_view(offset, sizeof(offset))),
                  path_, what);
}

absl::Status IndexFile::WriteBuffer() {
  KVINDEX_RETURN_IF_ERROR(
      Annotate(file_->PWrite(header_size() + flushed_, buffer_), path_,
               absl::StrCat("writing ", buffer_.size(), " bytes of records")));
  if (write_behind_) {
    file_->StartWriteback(header_size() + flushed_, buffer_.size());
  }
  // Records written over left-over bytes overwrite them in place, and a file
  // system may write the offset (another overwrite) back before them: a crash
  // would then show the left-over bytes as records. Syncing first keeps the
  // order. Appends past the old end need no sync: an offset that reaches the
  // disk before them claims bytes the file does not hold, and readers cut it
  // to the whole records there (format.md §3.4). With a journal the order
  // does not matter: its frame carries these bytes, and an open writes them
  // back wherever the log does not hold them (io/flush_sums.h).
  if (sums_ == nullptr && header_size() + flushed_ < stale_end_) {
    KVINDEX_RETURN_IF_ERROR(
        Annotate(file_->Sync(), path_, "syncing records over left-over bytes"));
  }
  unsynced_writes_ = true;
  writes_.fetch_add(1);
  // The frame goes before the offset: an offset the journal knows of always
  // has the frame that carries its records.
  if (sums_ != nullptr) KVINDEX_RETURN_IF_ERROR(sums_->Add(flushed_, buffer_));
  // Only once the records are in the file may the offset make them visible.
  KVINDEX_RETURN_IF_ERROR(WriteOffset("writing the offset"));
  // The buffer is dropped only now: after a failure above it is still there,
  // and a later flush writes it again at the same place.
  buffer_.clear();
  flushed_ = offset_;
  return absl::OkStatus();
}

absl::Status IndexFile::Flush(const FlushOptions& options) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (readonly_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": read-only"));
  }
  if (!buffer_.empty()) {
    if (!options.no_callback && flush_callback_) flush_callback_();
    KVINDEX_RETURN_IF_ERROR(WriteBuffer());
  }
  if (options.with_fsync) KVINDEX_RETURN_IF_ERROR(SyncFileAndSums());
  return absl::OkStatus();
}

absl::Status IndexFile::Syncer::Sync() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  // With a journal its frames carry the records: one fsync, of the journal
  // alone, makes them durable (the log is fsynced lazily).
  if (sums_.active()) return sums_.Sync();
  return Annotate(file_->Sync(), path_, "syncing");
}

absl::Status IndexFile::Read(uint64_t offset, size_t n, char* dst,
                             size_t* bytes_read) const {
  *bytes_read = 0;
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (offset >= offset_) return absl::OkStatus();
  const size_t total =
      static_cast<size_t>(std::min<uint64_t>(n, offset_ - offset));
  size_t done = 0;
  // Read-only handles capped to a journal serve its frames' records from
  // overlay_begin_ on (CapToFlushSums).
  const uint64_t file_end = overlay_.empty() ? flushed_ : overlay_begin_;
  if (offset < file_end) {
    done = static_cast<size_t>(std::min<uint64_t>(total, file_end - offset));
    KVINDEX_RETURN_IF_ERROR(
        Annotate(ReadFully(*file_, header_size() + offset, done, dst), path_,
                 absl::StrCat("reading records at ", offset)));
  }
  if (done < total && !overlay_.empty()) {
    const uint64_t at = offset + done - overlay_begin_;
    const size_t k = static_cast<size_t>(
        std::min<uint64_t>(total - done, overlay_.size() - at));
    std::memcpy(dst + done, overlay_.data() + at, k);
    done += k;
  }
  if (done < total) {
    // The rest lies in the write buffer, which starts at logical offset
    // flushed_.
    const uint64_t in_buffer = offset + done - flushed_;
    std::memcpy(dst + done, buffer_.data() + in_buffer, total - done);
  }
  *bytes_read = total;
  return absl::OkStatus();
}

absl::StatusOr<IndexFile::Header> IndexFile::ReadHeader() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  char buf[FileHeader::kGetSetSize];
  KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(*file_, 0, sizeof(buf), buf),
                                   path_, "reading the header"));
  KVINDEX_ASSIGN_OR_RETURN(
      const FileHeader decoded,
      FileHeader::DecodeGetSet(absl::string_view(buf, sizeof(buf)), path_));
  Header header;
  header.offset = decoded.offset;
  header.generation = decoded.generation;
  generation_ = header.generation;
  if (readonly_) {
    // Another process is writing: take its committed offset, within what the
    // file holds and in whole records, exactly as at open.
    absl::StatusOr<uint64_t> size = file_->Size();
    if (!size.ok()) return Annotate(size.status(), path_, "reading the size");
    claimed_ = static_cast<uint64_t>(header.offset);
    offset_ = UsableOffset(claimed_, *size, header_size(), entry_size_);
    if (capped_ && claimed_ == cap_claimed_ && generation_ == cap_generation_) {
      offset_ = overlay_.empty() ? std::min(offset_, cap_end_) : cap_end_;
    } else {
      capped_ = false;
      overlay_.clear();
    }
    flushed_ = offset_;
    header.offset = static_cast<int64_t>(offset_);
  }
  // A read-write handle is the only writer: the file holds what it wrote, and
  // its cached offsets (which count buffered bytes) stay as they are.
  return header;
}

absl::Status IndexFile::WriteHeader(const Header& header) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (readonly_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": read-only"));
  }
  if (header.offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": negative header offset ", header.offset));
  }
  FileHeader bytes;
  bytes.offset = header.offset;
  bytes.generation = header.generation;
  KVINDEX_RETURN_IF_ERROR(Annotate(file_->PWrite(0, GetSetPart(bytes.Encode())),
                                   path_, "writing the header"));
  generation_ = header.generation;
  return absl::OkStatus();
}

absl::StatusOr<std::string> IndexFile::ReadFanout() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  std::string table(fan_size_, '\0');
  if (fan_size_ > 0) {
    KVINDEX_RETURN_IF_ERROR(
        Annotate(ReadFully(*file_, kHeaderSize, table.size(), &table[0]), path_,
                 "reading the fan-out table"));
  }
  return table;
}

absl::Status IndexFile::WriteFanout(absl::string_view table) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (readonly_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": read-only"));
  }
  if (table.size() != fan_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": fan-out table of ", table.size(),
                     " bytes, expected ", fan_size_));
  }
  // The size field and the table are adjacent: one write.
  std::string bytes(8, '\0');
  absl::big_endian::Store64(&bytes[0], fan_size_);
  bytes.append(table.data(), table.size());
  return Annotate(file_->PWrite(FileHeader::kFanSizeAt, bytes), path_,
                  "writing the fan-out table");
}

absl::StatusOr<std::shared_ptr<const MappedRegion>> IndexFile::Map() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  absl::StatusOr<std::shared_ptr<const MappedRegion>> region =
      file_->Map(header_size() + flushed_);
  if (!region.ok()) return Annotate(region.status(), path_, "mapping");
  return region;
}

void IndexFile::StartReadahead() const {
  if (file_ != nullptr) file_->StartReadahead(0, header_size() + flushed_);
}

absl::StatusOr<uint64_t> IndexFile::FileSize() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  absl::StatusOr<uint64_t> size = file_->Size();
  if (!size.ok()) return Annotate(size.status(), path_, "reading the size");
  return size;
}

absl::StatusOr<FileId> IndexFile::Id() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  absl::StatusOr<FileId> id = file_->Id();
  if (!id.ok()) return Annotate(id.status(), path_, "identifying the file");
  return id;
}

absl::Status IndexFile::Clear(int64_t generation, bool reopen,
                              const std::function<void()>& hook) {
  KVINDEX_RETURN_IF_ERROR(CheckClearable());
  if (!reopen) return ClearOrReplace(generation, nullptr, hook);
  // The new header-only file is built aside and swapped in atomically: a
  // crash leaves either the old file or the new one, never a half-written
  // log.
  KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<Replacement> empty,
                           Replacement::Create(env_, path_, generation));
  KVINDEX_RETURN_IF_ERROR(empty->Sync());
  return ClearOrReplace(generation, empty.get(), hook);
}

absl::Status IndexFile::ReplaceWith(Replacement& replacement,
                                    const std::function<void()>& hook) {
  KVINDEX_RETURN_IF_ERROR(CheckClearable());
  if (replacement.file_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(replacement.tmp_path_, ": already swapped in"));
  }
  if (!replacement.synced_ || replacement.synced_end_ != replacement.end_) {
    return absl::FailedPreconditionError(absl::StrCat(
        replacement.tmp_path_, ": records copied since its last sync"));
  }
  if (replacement.tmp_path_ != path_ + "_tmp") {
    return absl::InvalidArgumentError(
        absl::StrCat(replacement.tmp_path_, ": not a replacement of ", path_));
  }
  return ClearOrReplace(replacement.generation_, &replacement, hook);
}

absl::Status IndexFile::CheckClearable() const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (readonly_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": read-only"));
  }
  return absl::OkStatus();
}

absl::Status IndexFile::ClearOrReplace(int64_t generation,
                                       Replacement* replacement,
                                       const std::function<void()>& hook) {
  const bool reopen = replacement != nullptr;
  // Until `path` is replaced or removed, a failure leaves the handle as it was.
  std::unique_ptr<File> new_file;
  std::unique_ptr<FlushSums> new_sums;
  // The records the new file holds (durable: the replacement was synced).
  const uint64_t records = reopen ? replacement->end_ : 0;
  if (reopen) {
    if (sums_ != nullptr) {
      // The old file's records must not depend on the journal replaced here:
      // a crash before the rename below leaves the old file under its name.
      KVINDEX_RETURN_IF_ERROR(SyncFile());
      // Renamed in first: a crash before the log's rename leaves a journal of
      // the new generation, which vouches for nothing in the old log. It
      // starts past the new file's records, which are durable.
      KVINDEX_ASSIGN_OR_RETURN(
          new_sums,
          FlushSums::Create(env_, path_, generation, kHeaderSize, records));
    }
    KVINDEX_RETURN_IF_ERROR(
        Annotate(env_->RenameFile(replacement->tmp_path_, path_),
                 replacement->tmp_path_, absl::StrCat("renaming to ", path_)));
    new_file = std::move(replacement->file_);
  } else {
    KVINDEX_RETURN_IF_ERROR(
        Annotate(env_->RemoveFile(path_), path_, "removing"));
    if (sums_ != nullptr) {
      // The file's removal is made durable first: a crash must not bring it
      // back without the journal its unsynced records depend on.
      KVINDEX_RETURN_IF_ERROR(Annotate(env_->SyncDir(Dirname(path_)), path_,
                                       "syncing the directory"));
      const std::string sums = FlushSums::PathFor(path_);
      KVINDEX_RETURN_IF_ERROR(
          Annotate(env_->RemoveFile(sums), sums, "removing"));
    }
  }

  // The path now names the new file (or nothing): the handle follows it, even
  // if making that durable fails below.
  buffer_.clear();
  offset_ = records;
  flushed_ = records;
  stale_end_ = 0;  // the new file holds its header and records only
  generation_ = generation;
  sums_ = std::move(new_sums);
  unsynced_writes_ = false;
  synced_writes_ = writes_.load();  // the new file was fsynced whole
  std::shared_ptr<File> old = std::move(file_);
  file_ = std::move(new_file);
  if (reopen) fan_size_ = 0;  // the new file has no fan-out table

  const absl::Status synced =
      Annotate(env_->SyncDir(Dirname(path_)), path_, "syncing the directory");
  // Until the directory is synced, a crash may bring the old file back under
  // its name: then it must still hold its records, so it is not stamped.
  if (!synced.ok()) return synced;

  if (hook) hook();

  // Readers still holding the old file see it emptied, with the new generation,
  // and reopen the path.
  FileHeader stamp;
  stamp.generation = generation;
  const absl::Status stamped =
      Annotate(old->PWrite(0, GetSetPart(stamp.Encode())), path_,
               "stamping the replaced file");
  old.reset();
  return stamped;
}

absl::Status IndexFile::RenameTo(const std::string& new_path) {
  if (sums_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": a file with a checksum sidecar cannot be renamed"));
  }
  KVINDEX_RETURN_IF_ERROR(
      Flush(FlushOptions{.no_callback = true, .with_fsync = true}));
  KVINDEX_RETURN_IF_ERROR(Annotate(env_->RenameFile(path_, new_path), path_,
                                   absl::StrCat("renaming to ", new_path)));
  const std::string old_dir = Dirname(path_);
  const std::string new_dir = Dirname(new_path);
  path_ = new_path;
  KVINDEX_RETURN_IF_ERROR(
      Annotate(env_->SyncDir(new_dir), path_, "syncing the directory"));
  if (old_dir != new_dir) {
    KVINDEX_RETURN_IF_ERROR(
        Annotate(env_->SyncDir(old_dir), path_, "syncing the old directory"));
  }
  return absl::OkStatus();
}

absl::Status IndexFile::Close() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  absl::Status closed;
  if (sums_ != nullptr && buffer_.empty() && !unsynced_writes_) {
    // Every record is durable, in the journal: once the log itself is
    // fsynced, nothing is left to vouch for, and without the sidecar a writer
    // that does not keep it (the OCaml library, or this one without the
    // option) may write the log next. The removal is made durable: a sidecar
    // that a power cut brought back would disown what such a writer appended,
    // and the next open with checksums would cut it. A failed removal is
    // harmless (the sidecar vouches for every record, and a writer without
    // the option removes it at its open); a failed fsync keeps the sidecar.
    closed = SyncFile();
    const std::string sums_path = sums_->path();
    if (closed.ok() && env_->RemoveFile(sums_path).ok()) {
      closed = Annotate(env_->SyncDir(Dirname(path_)), sums_path,
                        "syncing the directory after removing");
    }
  }
  sums_.reset();
  buffer_.clear();
  buffer_.shrink_to_fit();
  offset_ = flushed_;
  file_.reset();
  return closed;
}

std::string StoreDir(const std::string& root) {
  return absl::StrCat(root, "/index");
}

std::string StorePath(const std::string& root, absl::string_view name) {
  return absl::StrCat(StoreDir(root), "/", name);
}

}  // namespace kvindex
