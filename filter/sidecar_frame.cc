#include "filter/sidecar_frame.h"

#include <xxhash.h>

#include <cstring>

#include "absl/base/internal/endian.h"

namespace kvindex {
namespace {

constexpr size_t kBodySumAt = 48;
constexpr size_t kHeaderSumAt = 56;
static_assert(kHeaderSumAt + 8 == kSidecarHeaderSize);

}  // namespace

uint64_t Xxh3(absl::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

void SealSidecar(const char (&magic)[kSidecarMagicSize], std::string& sidecar) {
  std::memcpy(&sidecar[0], magic, kSidecarMagicSize);
  absl::big_endian::Store64(
      &sidecar[kBodySumAt],
      Xxh3(absl::string_view(sidecar).substr(kSidecarHeaderSize)));
  absl::big_endian::Store64(
      &sidecar[kHeaderSumAt],
      Xxh3(absl::string_view(sidecar.data(), kHeaderSumAt)));
}

std::string CheckSidecarHeader(absl::string_view bytes,
                               const char (&magic)[kSidecarMagicSize]) {
  if (bytes.size() < kSidecarHeaderSize) return "shorter than its header";
  const char* h = bytes.data();
  if (std::memcmp(h, magic, kSidecarMagicSize) != 0) return "bad magic";
  if (absl::big_endian::Load64(h + kHeaderSumAt) !=
      Xxh3(absl::string_view(h, kHeaderSumAt))) {
    return "header checksum mismatch";
  }
  return "";
}

bool SidecarBodyMatches(absl::string_view bytes) {
  return absl::big_endian::Load64(bytes.data() + kBodySumAt) ==
         Xxh3(bytes.substr(kSidecarHeaderSize));
}

}  // namespace kvindex
