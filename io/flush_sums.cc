#include "io/flush_sums.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "io/path_status.h"
#include "io/status_macros.h"

namespace kvindex {
namespace {

using io_internal::Annotate;
using io_internal::Dirname;

constexpr char kMagic[8] = {'k', 'v', 'l', 'o', 'g', 's', 'u', 'm'};
constexpr size_t kGenerationAt = 8;
constexpr size_t kHeaderSizeAt = 16;
constexpr size_t kStartAt = 24;
constexpr size_t kHeaderSumAt = 56;
// Entries are read in batches of this many bytes.
constexpr size_t kReadChunk = 1 << 16;

uint64_t Sum(absl::string_view records, uint64_t begin) {
  return XXH3_64bits_withSeed(records.data(), records.size(), begin);
}

}  // namespace

std::string FlushSums::PathFor(const std::string& log_path) {
  return log_path + ".sum";
}

absl::StatusOr<FlushSums::Verdict> FlushSums::Verify(
    Env* env, const File& log, const std::string& log_path, int64_t generation,
    uint64_t header_size, size_t entry_size, uint64_t offset) {
  const std::string path = PathFor(log_path);
  Verdict verdict;
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(path, OpenMode::kReadOnly);
  if (absl::IsNotFound(file.status())) {
    verdict.detail = "no sidecar";
    return verdict;
  }
  if (!file.ok()) return Annotate(file.status(), path, "opening read-only");
  KVINDEX_ASSIGN_OR_RETURN(const uint64_t size, (*file)->Size());

  char header[kHeaderSize];
  if (size < kHeaderSize) {
    verdict.detail = "sidecar shorter than its header";
    return verdict;
  }
  KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(**file, 0, kHeaderSize, header),
                                   path, "reading the header"));
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0 ||
      absl::big_endian::Load64(header + kHeaderSumAt) !=
          XXH3_64bits(header, kHeaderSumAt)) {
    verdict.detail = "sidecar header damaged";
    return verdict;
  }
  const int64_t sidecar_generation =
      static_cast<int64_t>(absl::big_endian::Load64(header + kGenerationAt));
  const uint64_t sidecar_header_size =
      absl::big_endian::Load64(header + kHeaderSizeAt);
  const uint64_t start = absl::big_endian::Load64(header + kStartAt);
  if (sidecar_generation != generation || sidecar_header_size != header_size) {
    verdict.detail =
        absl::StrCat("sidecar describes generation ", sidecar_generation,
                     ", the log is at ", generation);
    return verdict;
  }
  if (start > offset) {
    verdict.detail = absl::StrCat("sidecar starts at ", start,
                                  ", past the log's offset ", offset);
    return verdict;
  }

  verdict.applies = true;
  uint64_t end = start;
  std::string entries;
  std::string records;
  uint64_t at = kHeaderSize;
  while (end < offset) {
    if (entries.size() < kEntrySize) {
      if (at >= size) break;
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(kReadChunk - kReadChunk % kEntrySize, size - at));
      std::string chunk(n, '\0');
      KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(**file, at, n, &chunk[0]),
                                       path, "reading entries"));
      at += n;
      entries += chunk;
      if (entries.size() < kEntrySize) break;  // a torn last entry
    }
    const uint64_t entry_end = absl::big_endian::Load64(entries.data());
    const uint64_t sum = absl::big_endian::Load64(entries.data() + 8);
    entries.erase(0, kEntrySize);
    if (entry_end <= end || entry_end > offset ||
        (entry_end - end) % entry_size != 0) {
      break;
    }
    records.resize(static_cast<size_t>(entry_end - end));
    KVINDEX_RETURN_IF_ERROR(
        Annotate(ReadFully(log, header_size + end, records.size(), &records[0]),
                 log_path, "reading records to check them"));
    if (Sum(records, end) != sum) break;
    end = entry_end;
  }
  verdict.verified_end = end;
  if (end < offset) {
    verdict.detail = absl::StrCat("the sidecar vouches for the records up to ",
                                  end, " of ", offset);
  }
  return verdict;
}

absl::StatusOr<std::unique_ptr<FlushSums>> FlushSums::Create(
    Env* env, const std::string& log_path, int64_t generation,
    uint64_t header_size, uint64_t start) {
  const std::string path = PathFor(log_path);
  const std::string tmp = path + ".tmp";
  KVINDEX_ASSIGN_OR_RETURN(const bool stale, env->FileExists(tmp));
  // Left by a crash: its entries must not reappear in the new sidecar.
  if (stale) {
    KVINDEX_RETURN_IF_ERROR(
        Annotate(env->RemoveFile(tmp), tmp, "removing a stale file"));
  }
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(tmp, OpenMode::kCreateReadWrite);
  if (!file.ok()) return Annotate(file.status(), tmp, "creating");
  char header[kHeaderSize] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  absl::big_endian::Store64(header + kGenerationAt,
                            static_cast<uint64_t>(generation));
  absl::big_endian::Store64(header + kHeaderSizeAt, header_size);
  absl::big_endian::Store64(header + kStartAt, start);
  absl::big_endian::Store64(header + kHeaderSumAt,
                            XXH3_64bits(header, kHeaderSumAt));
  KVINDEX_RETURN_IF_ERROR(
      Annotate((*file)->PWrite(0, absl::string_view(header, kHeaderSize)), tmp,
               "writing the header"));
  KVINDEX_RETURN_IF_ERROR(Annotate((*file)->Sync(), tmp, "syncing"));
  KVINDEX_RETURN_IF_ERROR(Annotate(env->RenameFile(tmp, path), tmp,
                                   absl::StrCat("renaming to ", path)));
  return std::unique_ptr<FlushSums>(
      new FlushSums(path, std::shared_ptr<File>(*std::move(file)), start));
}

absl::Status FlushSums::RemoveStale(Env* env, const std::string& log_path) {
  const std::string path = PathFor(log_path);
  KVINDEX_ASSIGN_OR_RETURN(const bool exists, env->FileExists(path));
  if (!exists) return absl::OkStatus();
  KVINDEX_RETURN_IF_ERROR(
      Annotate(env->RemoveFile(path), path, "removing a stale sidecar"));
  return Annotate(env->SyncDir(Dirname(log_path)), path,
                  "syncing the directory");
}

absl::Status FlushSums::Add(uint64_t begin, absl::string_view records) {
  const bool again = entries_ > 0 && begin == last_begin_ && begin != end_;
  if (begin != end_ && !again) {
    return absl::InternalError(absl::StrCat(path_, ": entry for records at ",
                                            begin, ", expected ", end_));
  }
  const uint64_t slot = again ? entries_ - 1 : entries_;
  const uint64_t entry_end = kHeaderSize + (slot + 1) * kEntrySize;
  // Zeros past the entries end them for Verify (an entry must end past the
  // one before), so the file may be grown ahead like the log.
  grow_ahead_.Before(file_.get(), entry_end);
  char entry[kEntrySize];
  const uint64_t new_end = begin + records.size();
  absl::big_endian::Store64(entry, new_end);
  absl::big_endian::Store64(entry + 8, Sum(records, begin));
  KVINDEX_RETURN_IF_ERROR(
      Annotate(file_->PWrite(kHeaderSize + slot * kEntrySize,
                             absl::string_view(entry, kEntrySize)),
               path_, "writing an entry"));
  entries_ = slot + 1;
  last_begin_ = begin;
  end_ = new_end;
  return absl::OkStatus();
}

absl::Status FlushSums::Syncer::Sync() const {
  if (file_ == nullptr) return absl::OkStatus();
  return Annotate(file_->Sync(), path_, "syncing");
}

}  // namespace kvindex
