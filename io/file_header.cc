#include "io/file_header.h"

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "io/status_macros.h"

namespace kvindex {
namespace {

int64_t LoadInt64(absl::string_view bytes, size_t at) {
  return static_cast<int64_t>(absl::big_endian::Load64(bytes.data() + at));
}

absl::Status FieldError(absl::string_view path, absl::string_view field,
                        absl::string_view problem) {
  return absl::DataLossError(
      absl::StrCat(path, ": header field ", field, ": ", problem));
}

// The fields of the first `size` bytes (kSize or kGetSetSize) of `bytes`,
// checked for their length and version only.
absl::StatusOr<FileHeader> DecodeFields(absl::string_view bytes, size_t size,
                                        absl::string_view path) {
  if (bytes.size() < size) {
    return absl::DataLossError(absl::StrCat(
        path, ": truncated header: ", bytes.size(), " bytes, expected ", size));
  }
  const absl::string_view version =
      bytes.substr(FileHeader::kVersionAt, FileHeader::kVersion.size());
  if (version != FileHeader::kVersion) {
    return FieldError(
        path, "version",
        absl::StrCat("unsupported version '", absl::CHexEscape(version),
                     "' (expected ", FileHeader::kVersion, ")"));
  }
  FileHeader header;
  header.offset = LoadInt64(bytes, FileHeader::kOffsetAt);
  header.generation = LoadInt64(bytes, FileHeader::kGenerationAt);
  if (size >= FileHeader::kSize) {
    header.fan_size = LoadInt64(bytes, FileHeader::kFanSizeAt);
  }
  return header;
}

// The range checks of Decode; fan_size only when `has_fan_size`.
absl::Status Validate(const FileHeader& header, bool has_fan_size,
                      absl::string_view path) {
  if (has_fan_size && (header.fan_size < 0 || header.fan_size % 8 != 0)) {
    return FieldError(path, "fan_size",
                      absl::StrCat("invalid fan-out size ", header.fan_size,
                                   " (not a non-negative multiple of 8)"));
  }
  if (header.offset < 0) {
    return FieldError(path, "offset",
                      absl::StrCat("negative offset ", header.offset));
  }
  if (header.generation < 0 || header.generation > FileHeader::kMaxGeneration) {
    return FieldError(
        path, "generation",
        absl::StrCat("implausible generation ", header.generation,
                     " (expected 0 to ", FileHeader::kMaxGeneration, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FileHeader> FileHeader::DecodeRaw(absl::string_view bytes,
                                                 absl::string_view path) {
  return DecodeFields(bytes, kSize, path);
}

absl::StatusOr<FileHeader> FileHeader::Decode(absl::string_view bytes,
                                              absl::string_view path) {
  KVINDEX_ASSIGN_OR_RETURN(FileHeader header, DecodeFields(bytes, kSize, path));
  KVINDEX_RETURN_IF_ERROR(Validate(header, /*has_fan_size=*/true, path));
  return header;
}

absl::StatusOr<FileHeader> FileHeader::DecodeGetSet(absl::string_view bytes,
                                                    absl::string_view path) {
  KVINDEX_ASSIGN_OR_RETURN(FileHeader header,
                           DecodeFields(bytes, kGetSetSize, path));
  KVINDEX_RETURN_IF_ERROR(Validate(header, /*has_fan_size=*/false, path));
  return header;
}

std::string FileHeader::Encode() const {
  std::string bytes(kSize, '\0');
  absl::big_endian::Store64(&bytes[kOffsetAt], static_cast<uint64_t>(offset));
  bytes.replace(kVersionAt, kVersion.size(), kVersion.data(), kVersion.size());
  absl::big_endian::Store64(&bytes[kGenerationAt],
                            static_cast<uint64_t>(generation));
  absl::big_endian::Store64(&bytes[kFanSizeAt],
                            static_cast<uint64_t>(fan_size));
  return bytes;
}

}  // namespace kvindex
