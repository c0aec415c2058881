// Helpers shared by the io files that name a path in their errors and fsync
// the directory holding it (IndexFile, FlushSums). Internal to io/.
#ifndef KVINDEX_IO_PATH_STATUS_H_
#define KVINDEX_IO_PATH_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace io_internal {

// Keeps the code of an Env error and adds what was being done and on which
// file (the path only if the Env did not already name it).
inline absl::Status Annotate(const absl::Status& status, absl::string_view path,
                             absl::string_view what) {
  if (status.ok()) return status;
  if (absl::StrContains(status.message(), path)) {
    return absl::Status(status.code(),
                        absl::StrCat(what, ": ", status.message()));
  }
  return absl::Status(status.code(),
                      absl::StrCat(path, ": ", what, ": ", status.message()));
}

// The directory holding `path` ("." for a bare name).
inline std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace io_internal
}  // namespace kvindex

#endif  // KVINDEX_IO_PATH_STATUS_H_
