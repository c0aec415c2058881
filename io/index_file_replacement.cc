// IndexFile::Reader and IndexFile::Replacement: copying a file's records into
// a new file built aside, for IndexFile::ReplaceWith to swap in.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/file_header.h"
#include "io/index_file.h"
#include "io/path_status.h"
#include "io/status_macros.h"

namespace kvindex {
namespace {

using io_internal::Annotate;

// Bytes copied per read and write: large enough that a copy of a few hundred
// MB makes few system calls, small enough not to hold much memory.
constexpr uint64_t kCopyChunk = uint64_t{1} << 20;

}  // namespace

IndexFile::Reader IndexFile::reader() const {
  return Reader(file_, path_, header_size());
}

absl::Status IndexFile::Reader::Read(uint64_t from, uint64_t to,
                                     std::string* out) const {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  }
  if (from > to) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": records [", from, ", ", to, ") to read"));
  }
  const size_t at = out->size();
  out->resize(at + (to - from));
  return Annotate(
      ReadFully(*file_, header_size_ + from, to - from, out->data() + at),
      path_, "reading records");
}

absl::StatusOr<std::unique_ptr<IndexFile::Replacement>>
IndexFile::Replacement::Create(Env* env, const std::string& path,
                               int64_t generation) {
  const std::string tmp = path + "_tmp";
  absl::StatusOr<bool> stale = env->FileExists(tmp);
  if (!stale.ok()) return Annotate(stale.status(), tmp, "checking existence");
  if (*stale) {
    // Left by a crash; removing it keeps its old bytes out of the new file.
    KVINDEX_RETURN_IF_ERROR(
        Annotate(env->RemoveFile(tmp), tmp, "removing a stale file"));
  }
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(tmp, OpenMode::kCreateReadWrite);
  if (!file.ok()) return Annotate(file.status(), tmp, "creating");
  FileHeader header;
  header.generation = generation;
  KVINDEX_RETURN_IF_ERROR(
      Annotate((*file)->PWrite(0, header.Encode()), tmp, "writing the header"));
  return std::unique_ptr<Replacement>(
      new Replacement(tmp, *std::move(file), generation));
}

absl::Status IndexFile::Replacement::CopyFrom(const Reader& source,
                                              uint64_t to) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(tmp_path_, ": already swapped in"));
  }
  if (to < end_) {
    return absl::InvalidArgumentError(absl::StrCat(
        tmp_path_, ": copy up to ", to, ", behind its end ", end_));
  }
  std::string chunk;
  while (end_ < to) {
    const uint64_t next = std::min(to, end_ + kCopyChunk);
    chunk.clear();
    KVINDEX_RETURN_IF_ERROR(source.Read(end_, next, &chunk));
    KVINDEX_RETURN_IF_ERROR(Annotate(file_->PWrite(kHeaderSize + end_, chunk),
                                     tmp_path_, "writing records"));
    end_ = next;
  }
  return absl::OkStatus();
}

absl::Status IndexFile::Replacement::Sync() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(tmp_path_, ": already swapped in"));
  }
  FileHeader header;
  header.offset = static_cast<int64_t>(end_);
  header.generation = generation_;
  KVINDEX_RETURN_IF_ERROR(Annotate(file_->PWrite(0, header.Encode()), tmp_path_,
                                   "writing the header"));
  KVINDEX_RETURN_IF_ERROR(Annotate(file_->Sync(), tmp_path_, "syncing"));
  synced_ = true;
  synced_end_ = end_;
  return absl::OkStatus();
}

}  // namespace kvindex
