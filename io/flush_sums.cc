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

// Frames carry their records (the format written).
constexpr char kMagic[8] = {'k', 'v', 'l', 'o', 'g', 'j', 'n', 'l'};
// The earlier format: 16-byte entries `end sum`, no records (read only).
constexpr char kEntriesMagic[8] = {'k', 'v', 'l', 'o', 'g', 's', 'u', 'm'};
constexpr size_t kEntrySize = 16;
constexpr size_t kGenerationAt = 8;
constexpr size_t kHeaderSizeAt = 16;
constexpr size_t kStartAt = 24;
constexpr size_t kHeaderSumAt = 56;
// Files are read in windows of at least this many bytes.
constexpr size_t kReadChunk = 1 << 16;

uint64_t Sum(absl::string_view records, uint64_t begin) {
  return XXH3_64bits_withSeed(records.data(), records.size(), begin);
}

// Reads a file front to back through a window, so that many small frames (or
// the records they vouch for) cost one read per window, not one each.
class WindowReader {
 public:
  WindowReader(const File& file, uint64_t size) : file_(file), size_(size) {}

  // The `n` bytes at `at`, valid until the next call; false if the file ends
  // first.
  absl::StatusOr<bool> Read(uint64_t at, size_t n, absl::string_view* out) {
    if (at > size_ || n > size_ - at) return false;
    if (at < window_at_ || at + n > window_at_ + window_.size()) {
      const size_t len = static_cast<size_t>(
          std::min<uint64_t>(std::max(n, kReadChunk), size_ - at));
      window_.resize(len);
      KVINDEX_RETURN_IF_ERROR(ReadFully(file_, at, len, &window_[0]));
      window_at_ = at;
    }
    *out = absl::string_view(window_.data() + (at - window_at_), n);
    return true;
  }

 private:
  const File& file_;
  const uint64_t size_;
  uint64_t window_at_ = 0;
  std::string window_;
};

}  // namespace

std::string FlushSums::PathFor(const std::string& log_path) {
  return log_path + ".sum";
}

absl::StatusOr<FlushSums::Verdict> FlushSums::Verify(
    Env* env, const File& log, const std::string& log_path, int64_t generation,
    uint64_t header_size, size_t entry_size, uint64_t offset,
    File* restore_into, std::string* unheld) {
  const std::string path = PathFor(log_path);
  Verdict verdict;
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFileIfExists(path, OpenMode::kReadOnly);
  if (!file.ok()) return Annotate(file.status(), path, "opening read-only");
  if (*file == nullptr) {
    verdict.detail = "no sidecar";
    return verdict;
  }
  KVINDEX_ASSIGN_OR_RETURN(const uint64_t size, (*file)->Size());

  char header[kHeaderSize];
  if (size < kHeaderSize) {
    verdict.detail = "sidecar shorter than its header";
    return verdict;
  }
  KVINDEX_RETURN_IF_ERROR(Annotate(ReadFully(**file, 0, kHeaderSize, header),
                                   path, "reading the header"));
  const bool frames = std::memcmp(header, kMagic, sizeof(kMagic)) == 0;
  if ((!frames &&
       std::memcmp(header, kEntriesMagic, sizeof(kEntriesMagic)) != 0) ||
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
  KVINDEX_ASSIGN_OR_RETURN(const uint64_t log_size, log.Size());
  WindowReader sidecar(**file, size);
  WindowReader log_reader(log, log_size);
  // Frames from `start` to `end` are whole; `matching` while the log holds
  // every record they carry.
  uint64_t end = start;
  bool matching = true;
  verdict.verified_end = start;
  verdict.restorable_end = start;
  uint64_t at = kHeaderSize;
  while (true) {
    // The next frame (or entry) header: its end and sum.
    if (!frames && end >= offset) break;
    absl::string_view head;
    absl::StatusOr<bool> got = sidecar.Read(at, kFrameHeaderSize, &head);
    if (!got.ok()) return Annotate(got.status(), path, "reading frames");
    if (!*got) break;  // a torn last frame, or the end
    const uint64_t frame_end = absl::big_endian::Load64(head.data());
    const uint64_t sum = absl::big_endian::Load64(head.data() + 8);
    if (frame_end <= end || (frame_end - end) % entry_size != 0 ||
        (!frames && frame_end > offset)) {
      break;
    }
    const uint64_t n = frame_end - end;
    absl::string_view carried;  // the frame's own records
    if (frames) {
      if (n > size - at - kFrameHeaderSize) break;  // torn
      got =
          sidecar.Read(at + kFrameHeaderSize, static_cast<size_t>(n), &carried);
      if (!got.ok()) return Annotate(got.status(), path, "reading frames");
      if (!*got || Sum(carried, end) != sum) break;  // torn or damaged
      at += kFrameHeaderSize + n;
    } else {
      at += kEntrySize;
    }
    // What the log holds at that place. A writer also compares past the
    // first mismatch and past the offset (which may not have reached the
    // disk while the records did): it writes back only the frames whose
    // records the log lacks, and its open fsyncs the log either way.
    absl::string_view held;
    bool held_whole = false;
    if (restore_into != nullptr || (matching && frame_end <= offset)) {
      got = log_reader.Read(header_size + end, static_cast<size_t>(n), &held);
      if (!got.ok()) {
        return Annotate(got.status(), log_path,
                        "reading records to check them");
      }
      held_whole = *got;
    }
    const bool held_matches =
        held_whole && (frames ? held == carried : Sum(held, end) == sum);
    if (!held_matches) {
      if (!frames) break;
      // From here on a reader does not trust the log's bytes, even where
      // they would match: it serves every later frame's records itself.
      matching = false;
    }
    if (!held_matches && restore_into != nullptr) {
      KVINDEX_RETURN_IF_ERROR(
          Annotate(restore_into->PWrite(header_size + end, carried), log_path,
                   "restoring records from the journal"));
      verdict.restored_bytes += n;
    } else if (!matching && unheld != nullptr) {
      unheld->append(carried.data(), carried.size());
    }
    end = frame_end;
    if (matching || restore_into != nullptr) verdict.verified_end = end;
    verdict.restorable_end = end;
  }
  if (verdict.verified_end < offset) {
    verdict.detail = absl::StrCat("the sidecar vouches for the records up to ",
                                  verdict.verified_end, " of ", offset);
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
  const bool again = has_frames_ && begin == last_begin_ && begin != end_;
  if (begin != end_ && !again) {
    return absl::InternalError(absl::StrCat(path_, ": frame for records at ",
                                            begin, ", expected ", end_));
  }
  const uint64_t at = again ? last_at_ : next_at_;
  const uint64_t new_end = begin + records.size();
  frame_.resize(kFrameHeaderSize);
  absl::big_endian::Store64(&frame_[0], new_end);
  absl::big_endian::Store64(&frame_[8], Sum(records, begin));
  frame_.append(records.data(), records.size());
  // Zeros past the frames end them for Verify (a frame must end past the one
  // before), so the file may be grown ahead: its fdatasync then has no new
  // size to commit.
  grow_ahead_.Before(file_.get(), at + frame_.size());
  KVINDEX_RETURN_IF_ERROR(
      Annotate(file_->PWrite(at, frame_), path_, "writing a frame"));
  has_frames_ = true;
  last_at_ = at;
  next_at_ = at + frame_.size();
  last_begin_ = begin;
  end_ = new_end;
  if (frame_.capacity() > (size_t{1} << 20)) std::string().swap(frame_);
  return absl::OkStatus();
}

absl::Status FlushSums::Syncer::Sync() const {
  if (file_ == nullptr) return absl::OkStatus();
  return Annotate(file_->Sync(), path_, "syncing");
}

}  // namespace kvindex
