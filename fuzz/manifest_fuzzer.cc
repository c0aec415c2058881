// The manifest of the tiered layout (runset/manifest.h) from arbitrary bytes.
// Every input is decoded twice: as it is, and with its last 8 bytes replaced
// by the checksum of the others, so that inputs reach the checks of the fields
// behind the checksum. Either way DecodeManifest never crashes, refuses with
// kDataLoss naming the file, and a manifest it accepts encodes back to exactly
// the input bytes (one manifest, one encoding).
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_util.h"
#include "runset/manifest.h"

namespace kvindex {
namespace fuzz {
namespace {

constexpr char kPath[] = "/fuzz/index/manifest";

void Check(const std::string& bytes) {
  absl::StatusOr<Manifest> m = DecodeManifest(bytes, kPath);
  if (!m.ok()) {
    FUZZ_LOG("refused: ", m.status().ToString());
    FUZZ_CHECK(m.status().code() == absl::StatusCode::kDataLoss,
               m.status().ToString());
    FUZZ_CHECK(absl::StrContains(m.status().message(), kPath),
               m.status().ToString());
    return;
  }
  FUZZ_LOG("decoded: ", m->runs.size(), " runs, ", m->retired.size(),
           " retired, generation ", m->generation, ", next id ", m->next_id);
  FUZZ_CHECK(CheckManifest(*m, kPath).ok(), "decoded an invalid manifest");
  FUZZ_CHECK(EncodeManifest(*m) == bytes,
             absl::StrCat("a decoded manifest of ", bytes.size(),
                          " bytes encodes to other bytes"));
}

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  kvindex::fuzz::Check(bytes);
  if (size >= 8) {
    const uint64_t sum = XXH3_64bits(bytes.data(), size - 8);
    absl::big_endian::Store64(&bytes[size - 8], sum);
    kvindex::fuzz::Check(bytes);
  }
  return 0;
}
