#include "bench/store.h"

#include <filesystem>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvindex {
namespace bench {

absl::Status MakeDirectories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir, ": cannot create directory: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status ResetDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir, ": cannot remove directory: ", ec.message()));
  }
  return MakeDirectories(dir);
}

}  // namespace bench
}  // namespace kvindex
