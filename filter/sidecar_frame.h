// The frame the sidecars beside a data file share (data.filter, data.sum;
// docs/format.md §9 and §9a): a 64-byte header that starts with the sidecar's
// 8-byte magic and ends with two XXH3-64 sums, big-endian: at byte 48 the sum
// of the body (every byte after the header), at byte 56 the sum of the
// header's first 56 bytes. Bytes 8 to 47 hold the sidecar's own fields.
#ifndef KVINDEX_FILTER_SIDECAR_FRAME_H_
#define KVINDEX_FILTER_SIDECAR_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace kvindex {

inline constexpr size_t kSidecarHeaderSize = 64;
inline constexpr size_t kSidecarMagicSize = 8;

uint64_t Xxh3(absl::string_view bytes);

// Writes `magic` and both sums into `sidecar`, a header (its own fields
// already set) followed by the body.
void SealSidecar(const char (&magic)[kSidecarMagicSize], std::string& sidecar);

// "" if `bytes` holds a whole header with `magic` and a matching header sum;
// otherwise what is wrong, for an error message.
std::string CheckSidecarHeader(absl::string_view bytes,
                               const char (&magic)[kSidecarMagicSize]);

// Whether the body sum in the header of `bytes` (at least a header long)
// matches the body.
bool SidecarBodyMatches(absl::string_view bytes);

}  // namespace kvindex

#endif  // KVINDEX_FILTER_SIDECAR_FRAME_H_
