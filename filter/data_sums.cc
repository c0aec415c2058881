#include "filter/data_sums.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "filter/sidecar_frame.h"

namespace kvindex {
namespace {

constexpr char kMagic[kSidecarMagicSize] = {'K', 'V', 'S', 'U',
                                            'M', 'S', '0', '1'};

// Header field offsets, between the frame's magic and sums
// (sidecar_frame.h).
constexpr size_t kBlockSizeAt = 8;
constexpr size_t kGenerationAt = 16;
constexpr size_t kFileBytesAt = 24;
constexpr size_t kDataIdAt = 32;
constexpr size_t kBlocksAt = 40;

uint64_t BlocksOf(uint64_t file_bytes, uint64_t block_size) {
  return file_bytes / block_size + (file_bytes % block_size != 0 ? 1 : 0);
}

std::string Encode(uint64_t block_size, const SumsTarget& target,
                   const std::vector<uint64_t>& sums) {
  std::string out(DataSums::kHeaderSize + 8 * sums.size(), '\0');
  for (size_t i = 0; i < sums.size(); ++i) {
    absl::big_endian::Store64(&out[DataSums::kHeaderSize + 8 * i], sums[i]);
  }
  absl::big_endian::Store64(&out[kBlockSizeAt], block_size);
  absl::big_endian::Store64(&out[kGenerationAt],
                            static_cast<uint64_t>(target.generation));
  absl::big_endian::Store64(&out[kFileBytesAt], target.file_bytes);
  absl::big_endian::Store64(&out[kDataIdAt], target.data_id);
  absl::big_endian::Store64(&out[kBlocksAt], sums.size());
  SealSidecar(kMagic, out);
  return out;
}

}  // namespace

DataSumsBuilder::DataSumsBuilder(uint64_t head_bytes, uint64_t block_size)
    : block_size_(block_size),
      head_blocks_end_(BlocksOf(head_bytes, block_size) * block_size),
      at_(head_bytes) {}

void DataSumsBuilder::Sum(absl::string_view block) {
  tail_sums_.push_back(Xxh3(block));
}

void DataSumsBuilder::Append(absl::string_view bytes) {
  if (at_ < head_blocks_end_) {
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(bytes.size(), head_blocks_end_ - at_));
    head_rest_.append(bytes.data(), n);
    bytes.remove_prefix(n);
    at_ += n;
  }
  at_ += bytes.size();
  while (!bytes.empty()) {
    if (pending_.empty() && bytes.size() >= block_size_) {
      Sum(bytes.substr(0, block_size_));
      bytes.remove_prefix(block_size_);
      continue;
    }
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(bytes.size(), block_size_ - pending_.size()));
    pending_.append(bytes.data(), n);
    bytes.remove_prefix(n);
    if (pending_.size() == block_size_) {
      Sum(pending_);
      pending_.clear();
    }
  }
}

std::string DataSumsBuilder::Finish(absl::string_view head,
                                    const SumsTarget& target) {
  std::vector<uint64_t> sums;
  sums.reserve(BlocksOf(target.file_bytes, block_size_));
  // The head's whole blocks as they are; the block it ends in (if any) with
  // the bytes appended up to that block's end.
  while (head.size() >= block_size_) {
    sums.push_back(Xxh3(head.substr(0, static_cast<size_t>(block_size_))));
    head.remove_prefix(static_cast<size_t>(block_size_));
  }
  if (!head.empty() || !head_rest_.empty()) {
    std::string block(head);
    block += head_rest_;
    sums.push_back(Xxh3(block));
  }
  sums.insert(sums.end(), tail_sums_.begin(), tail_sums_.end());
  if (!pending_.empty()) sums.push_back(Xxh3(pending_));
  return Encode(block_size_, target, sums);
}

std::string DataSumsOf(absl::string_view file, const SumsTarget& target,
                       uint64_t block_size) {
  DataSumsBuilder builder(0, block_size);
  builder.Append(file);
  return builder.Finish("", target);
}

std::unique_ptr<const DataSums> DataSums::Parse(absl::string_view bytes,
                                                const SumsTarget& target,
                                                std::string* why) {
  auto reject = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return nullptr;
  };
  std::string wrong = CheckSidecarHeader(bytes, kMagic);
  if (!wrong.empty()) return reject(std::move(wrong));
  const char* h = bytes.data();
  const uint64_t block_size = absl::big_endian::Load64(h + kBlockSizeAt);
  if (block_size < kMinBlockSize || block_size > kMaxBlockSize ||
      (block_size & (block_size - 1)) != 0) {
    return reject(absl::StrCat("bad block size ", block_size));
  }
  SumsTarget own;
  own.generation =
      static_cast<int64_t>(absl::big_endian::Load64(h + kGenerationAt));
  own.file_bytes = absl::big_endian::Load64(h + kFileBytesAt);
  own.data_id = absl::big_endian::Load64(h + kDataIdAt);
  const uint64_t blocks = absl::big_endian::Load64(h + kBlocksAt);
  if (blocks != BlocksOf(own.file_bytes, block_size)) {
    return reject(absl::StrCat(blocks, " sums for a file of ", own.file_bytes,
                               " bytes in blocks of ", block_size));
  }
  const uint64_t body = bytes.size() - kHeaderSize;
  if (body % 8 != 0 || body / 8 != blocks) {
    return reject(absl::StrCat("size ", bytes.size(), " does not hold ", blocks,
                               " sums"));
  }
  if (!SidecarBodyMatches(bytes)) return reject("checksum mismatch");
  const absl::string_view array = bytes.substr(kHeaderSize);
  if (!own.Binds(target)) {
    return reject(absl::StrCat("built for another data file (generation ",
                               own.generation, ", ", own.file_bytes,
                               " bytes)"));
  }
  std::unique_ptr<DataSums> sums(new DataSums());
  sums->block_size_ = block_size;
  sums->target_ = own;
  sums->sums_.resize(blocks);
  for (uint64_t i = 0; i < blocks; ++i) {
    sums->sums_[i] = absl::big_endian::Load64(array.data() + 8 * i);
  }
  return sums;
}

absl::StatusOr<std::unique_ptr<const DataSums>> DataSums::Read(
    Env* env, const std::string& path, const SumsTarget& target,
    std::string* why) {
  auto file = env->OpenFileIfExists(path, OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  if (*file == nullptr) {
    if (why != nullptr) *why = "absent";
    return std::unique_ptr<const DataSums>();
  }
  auto size = (*file)->Size();
  if (!size.ok()) return size.status();
  // Far more than any data file needs (8 bytes per block): not a sidecar.
  constexpr uint64_t kMaxBytes = uint64_t{1} << 32;
  if (*size > kMaxBytes) {
    if (why != nullptr) *why = absl::StrCat("size ", *size, " is too large");
    return std::unique_ptr<const DataSums>();
  }
  std::string bytes(static_cast<size_t>(*size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    size_t read = 0;
    absl::Status st =
        (*file)->PRead(got, bytes.size() - got, bytes.data() + got, &read);
    if (!st.ok()) return st;
    if (read == 0) break;
    got += read;
  }
  bytes.resize(got);
  return Parse(bytes, target, why);
}

absl::Status DataSums::Write(Env* env, const std::string& path,
                             absl::string_view bytes) {
  return WriteFileAside(env, path, bytes);
}

bool DataSums::Matches(uint64_t i, absl::string_view bytes) const {
  return i < sums_.size() && bytes.size() == BlockEnd(i) - BlockBegin(i) &&
         Xxh3(bytes) == sums_[i];
}

std::vector<DataSums::BadRange> DataSums::BadBlocks(absl::string_view file,
                                                    size_t limit) const {
  std::vector<BadRange> bad;
  for (uint64_t i = 0; i < sums_.size() && bad.size() < limit; ++i) {
    const uint64_t begin = BlockBegin(i);
    const uint64_t end = BlockEnd(i);
    const bool matches =
        end <= file.size() &&
        Matches(i, file.substr(static_cast<size_t>(begin),
                               static_cast<size_t>(end - begin)));
    if (!matches) bad.push_back(BadRange{begin, end});
  }
  return bad;
}

absl::Status DataSums::Verify(absl::string_view file,
                              absl::string_view path) const {
  if (file.size() != target_.file_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", file.size(), " bytes, but its checksums (",
                     path, ".sum) cover ", target_.file_bytes));
  }
  const std::vector<BadRange> bad = BadBlocks(file, 1);
  if (bad.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(path, ": bytes [", bad[0].begin, ", ", bad[0].end,
                   ") do not match their checksum in ", path,
                   ".sum: the file is damaged there"));
}

}  // namespace kvindex
