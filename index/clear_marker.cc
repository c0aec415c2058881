#include "index/clear_marker.h"

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "io/status_macros.h"

namespace kvindex {
namespace {

constexpr char kPrefix[] = "kvindex clear to generation ";

}  // namespace

std::string ClearMarkerPath(const std::string& dir) {
  return absl::StrCat(dir, "/clear");
}

absl::Status WriteClearMarker(Env* env, const std::string& dir,
                              int64_t generation) {
  const std::string path = ClearMarkerPath(dir);
  KVINDEX_ASSIGN_OR_RETURN(const bool exists, env->FileExists(path));
  if (exists) KVINDEX_RETURN_IF_ERROR(env->RemoveFile(path));
  KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<File> file,
                           env->OpenFile(path, OpenMode::kCreateReadWrite));
  KVINDEX_RETURN_IF_ERROR(
      file->PWrite(0, absl::StrCat(kPrefix, generation, "\n")));
  KVINDEX_RETURN_IF_ERROR(file->Sync());
  return env->SyncDir(dir);
}

absl::StatusOr<std::optional<int64_t>> ReadClearMarker(Env* env,
                                                       const std::string& dir) {
  const std::string path = ClearMarkerPath(dir);
  // No existence check first: a reader's writer removes the marker at the end
  // of its clear, possibly between the check and the read.
  absl::StatusOr<std::optional<std::string>> text = env->ReadFileIfExists(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::optional<int64_t>();
  absl::string_view rest = **text;
  int64_t generation = 0;
  if (!absl::ConsumePrefix(&rest, kPrefix) ||
      !absl::ConsumeSuffix(&rest, "\n") ||
      !absl::SimpleAtoi(rest, &generation) || generation < 0) {
    // Cut short (a crash or an IO error while it was written, before the
    // clear's commit point) or damaged: no evidence either way.
    return std::optional<int64_t>();
  }
  return std::optional<int64_t>(generation);
}

absl::Status RemoveClearMarker(Env* env, const std::string& dir) {
  const std::string path = ClearMarkerPath(dir);
  KVINDEX_ASSIGN_OR_RETURN(const bool exists, env->FileExists(path));
  if (!exists) return absl::OkStatus();
  // What the marker vouched for goes first: a directory written back in any
  // order could otherwise keep the marker's removal without the removals
  // before it, leaving a data file one generation behind the log with
  // nothing to say why.
  KVINDEX_RETURN_IF_ERROR(env->SyncDir(dir));
  return env->RemoveFile(path);
}

}  // namespace kvindex
