#include "io/env.h"

#include "absl/strings/str_cat.h"

namespace kvindex {

absl::Status ReadFully(const File& file, uint64_t offset, size_t n, char* dst) {
  size_t done = 0;
  while (done < n) {
    size_t got = 0;
    absl::Status s = file.PRead(offset + done, n - done, dst + done, &got);
    if (!s.ok()) return s;
    if (got == 0) {
      return absl::DataLossError(
          absl::StrCat(file.path(), ": unexpected end of file reading ", n,
                       " bytes at offset ", offset, " (got ", done, ")"));
    }
    done += got;
  }
  return absl::OkStatus();
}

}  // namespace kvindex
