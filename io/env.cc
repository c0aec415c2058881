#include "io/env.h"

#include <utility>

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

absl::StatusOr<std::unique_ptr<File>> Env::OpenFileIfExists(
    const std::string& path, OpenMode mode) {
  absl::StatusOr<std::unique_ptr<File>> file = OpenFile(path, mode);
  if (absl::IsNotFound(file.status())) return std::unique_ptr<File>();
  return file;
}

absl::StatusOr<std::optional<std::string>> Env::ReadFileIfExists(
    const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (absl::IsNotFound(bytes.status())) return std::optional<std::string>();
  if (!bytes.ok()) return bytes.status();
  return std::optional<std::string>(*std::move(bytes));
}

absl::Status WriteFileAside(Env* env, const std::string& path,
                            absl::string_view bytes) {
  const std::string tmp = path + ".tmp";
  absl::StatusOr<bool> exists = env->FileExists(tmp);
  if (!exists.ok()) return exists.status();
  // Opening never truncates: start from a new file.
  if (*exists) {
    absl::Status st = env->RemoveFile(tmp);
    if (!st.ok()) return st;
  }
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(tmp, OpenMode::kCreateReadWrite);
  if (!file.ok()) return file.status();
  absl::Status st = (*file)->PWrite(0, bytes);
  file->reset();
  if (st.ok()) st = env->RenameFile(tmp, path);
  if (!st.ok()) (void)env->RemoveFile(tmp);
  return st;
}

}  // namespace kvindex
