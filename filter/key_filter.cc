#include "filter/key_filter.h"

#include <xxhash.h>

#include <cstring>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "filter/sidecar_frame.h"

namespace kvindex {
namespace {

constexpr char kMagic[kSidecarMagicSize] = {'K', 'V', 'F', 'I',
                                            'L', 'T', 'R', '1'};
constexpr size_t kBlockBytes = 64;
constexpr size_t kBlockBits = kBlockBytes * 8;

// Header field offsets, between the frame's magic and sums
// (sidecar_frame.h).
constexpr size_t kProbesAt = 8;
constexpr size_t kHashBitsAt = 12;
constexpr size_t kGenerationAt = 16;
constexpr size_t kRecordsAt = 24;
constexpr size_t kDataIdAt = 32;
constexpr size_t kBlocksAt = 40;

// Calls f(bit) for the `probes` bits of a fingerprint within its block
// (double hashing on 32-bit halves; the top 9 bits of each sum are the bit).
template <typename F>
void ForEachBit(uint64_t fingerprint, uint32_t probes, F&& f) {
  uint32_t h = static_cast<uint32_t>(fingerprint);
  const uint32_t delta =
      static_cast<uint32_t>((fingerprint * 0x9E3779B97F4A7C15ULL) >> 32) | 1u;
  for (uint32_t i = 0; i < probes; ++i) {
    f(h >> 23);
    h += delta;
  }
}

}  // namespace

uint64_t DataId(absl::string_view first_record, absl::string_view last_record,
                absl::string_view fanout_table) {
  // Each part's hash seeds the next: the boundaries between them matter.
  uint64_t id = Xxh3(first_record);
  id = XXH3_64bits_withSeed(last_record.data(), last_record.size(), id);
  return XXH3_64bits_withSeed(fanout_table.data(), fanout_table.size(), id);
}

FilterTarget FilterTargetOf(int64_t generation, uint64_t records,
                            absl::string_view first_record,
                            absl::string_view last_record,
                            absl::string_view fanout_table) {
  FilterTarget target;
  target.generation = generation;
  target.records = records;
  target.data_id = DataId(first_record, last_record, fanout_table);
  return target;
}

uint64_t KeyFingerprint(absl::string_view key) { return Xxh3(key); }

uint64_t KeyFilterBuilder::BlocksFor(uint64_t expected_keys) {
  // More keys than fit in memory anyway: no overflow below.
  constexpr uint64_t kMaxKeys = uint64_t{1} << 56;
  if (expected_keys > kMaxKeys) expected_keys = kMaxKeys;
  const uint64_t needed =
      (expected_keys * kBitsPerKey + kBlockBits - 1) / kBlockBits;
  uint64_t blocks = 1;
  while (blocks < needed) blocks <<= 1;
  return blocks;
}

KeyFilterBuilder::KeyFilterBuilder(uint64_t expected_keys, int hash_bits)
    : hash_bits_(hash_bits), blocks_(BlocksFor(expected_keys)), bits_() {
  bits_.assign(blocks_ * kBlockBytes, '\0');
}

bool KeyFilterBuilder::CanInclude(const KeyFilter& base) const {
  return base.blocks() == blocks_ && base.probes() == kProbes &&
         base.hash_bits() == hash_bits_;
}

void KeyFilterBuilder::Include(const KeyFilter& base) {
  const absl::string_view from = base.bits();
  for (size_t i = 0; i < bits_.size(); ++i) {
    bits_[i] = static_cast<char>(bits_[i] | from[i]);
  }
}

void KeyFilterBuilder::Add(absl::string_view key, uint64_t key_hash) {
  char* block =
      &bits_[KeyFilter::BlockOf(key_hash, hash_bits_, blocks_) * kBlockBytes];
  ForEachBit(KeyFingerprint(key), kProbes, [&](uint32_t bit) {
    block[bit >> 3] = static_cast<char>(block[bit >> 3] | (1 << (bit & 7)));
  });
}

std::string KeyFilterBuilder::Finish(const FilterTarget& target) const {
  std::string out(KeyFilter::kHeaderSize, '\0');
  absl::big_endian::Store32(&out[kProbesAt], kProbes);
  absl::big_endian::Store32(&out[kHashBitsAt],
                            static_cast<uint32_t>(hash_bits_));
  absl::big_endian::Store64(&out[kGenerationAt],
                            static_cast<uint64_t>(target.generation));
  absl::big_endian::Store64(&out[kRecordsAt], target.records);
  absl::big_endian::Store64(&out[kDataIdAt], target.data_id);
  absl::big_endian::Store64(&out[kBlocksAt], blocks_);
  out += bits_;
  SealSidecar(kMagic, out);
  return out;
}

bool KeyFilter::Init(absl::string_view bytes, const FilterTarget& target,
                     int hash_bits, std::string* why) {
  auto reject = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return false;
  };
  std::string wrong = CheckSidecarHeader(bytes, kMagic);
  if (!wrong.empty()) return reject(std::move(wrong));
  const char* h = bytes.data();
  const uint32_t probes = absl::big_endian::Load32(h + kProbesAt);
  const uint64_t blocks = absl::big_endian::Load64(h + kBlocksAt);
  FilterTarget own;
  own.generation =
      static_cast<int64_t>(absl::big_endian::Load64(h + kGenerationAt));
  own.records = absl::big_endian::Load64(h + kRecordsAt);
  own.data_id = absl::big_endian::Load64(h + kDataIdAt);
  if (probes == 0 || probes > 32) return reject("bad probe count");
  if (absl::big_endian::Load32(h + kHashBitsAt) !=
      static_cast<uint32_t>(hash_bits)) {
    return reject("built for another key hash width");
  }
  const uint64_t body = bytes.size() - kHeaderSize;
  if (blocks == 0 || body % kBlockBytes != 0 || body / kBlockBytes != blocks) {
    return reject(absl::StrCat("size ", bytes.size(), " does not hold ", blocks,
                               " blocks"));
  }
  if (!SidecarBodyMatches(bytes)) return reject("checksum mismatch");
  const absl::string_view bits = bytes.substr(kHeaderSize);
  if (!(own == target)) return reject("built for another data file");
  bits_ = reinterpret_cast<const unsigned char*>(bits.data());
  blocks_ = blocks;
  probes_ = probes;
  hash_bits_ = hash_bits;
  return true;
}

std::unique_ptr<const KeyFilter> KeyFilter::Parse(absl::string_view bytes,
                                                  const FilterTarget& target,
                                                  int hash_bits,
                                                  std::string* why) {
  std::unique_ptr<KeyFilter> filter(new KeyFilter());
  if (!filter->Init(bytes, target, hash_bits, why)) return nullptr;
  return filter;
}

absl::StatusOr<std::shared_ptr<const KeyFilter>> KeyFilter::Open(
    Env* env, const std::string& path, const FilterTarget& target,
    int hash_bits) {
  auto file = env->OpenFileIfExists(path, OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return std::shared_ptr<const KeyFilter>();
  auto size = (*file)->Size();
  if (!size.ok()) return size.status();
  // Every find of an absent key reads a random block: the filter should be
  // in memory, in pages whose TLB entries cover it (see File::MapResident).
  auto region = (*file)->MapResident(*size);
  if (!region.ok()) return region.status();
  std::shared_ptr<KeyFilter> filter(new KeyFilter());
  if (!filter->Init((*region)->bytes(), target, hash_bits, nullptr)) {
    return std::shared_ptr<const KeyFilter>();
  }
  filter->region_ = *std::move(region);
  return std::shared_ptr<const KeyFilter>(std::move(filter));
}

absl::Status KeyFilter::Write(Env* env, const std::string& path,
                              absl::string_view bytes) {
  return WriteFileAside(env, path, bytes);
}

const unsigned char* KeyFilter::Block(uint64_t key_hash) const {
  return bits_ + BlockOf(key_hash, hash_bits_, blocks_) * kBlockBytes;
}

bool KeyFilter::MayContain(uint64_t key_hash, uint64_t fingerprint) const {
  const unsigned char* block = Block(key_hash);
  bool all = true;
  ForEachBit(fingerprint, probes_, [&](uint32_t bit) {
    all = all && (block[bit >> 3] & (1u << (bit & 7))) != 0;
  });
  return all;
}

}  // namespace kvindex
