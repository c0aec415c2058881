#include "index/merge/data_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "search/search.h"

namespace kvindex {

absl::StatusOr<std::shared_ptr<const DataFile>> DataFile::Open(
    Env* env, const std::string& path, const Schema& schema) {
  auto file = IndexFile::OpenReadOnly(env, path, schema.entry_size());
  if (!file.ok()) return file.status();
  if (*file == nullptr) return std::shared_ptr<const DataFile>();
  return FromFile(*std::move(file), schema);
}

absl::StatusOr<std::shared_ptr<const DataFile>> DataFile::FromFile(
    std::unique_ptr<IndexFile> file, const Schema& schema) {
  const size_t e = schema.entry_size();
  const uint64_t bytes = file->flushed_offset();
  if (bytes < e) return std::shared_ptr<const DataFile>();
  auto table = file->ReadFanout();
  if (!table.ok()) return table.status();
  auto fanout =
      Fanout::Import(*table, schema.hash_bits, e, bytes, file->path());
  if (!fanout.ok()) return fanout.status();
  auto region = file->Map();
  if (!region.ok()) return region.status();
  if ((*region)->bytes().size() < file->header_size() + bytes) {
    return absl::DataLossError(
        absl::StrCat(file->path(), ": mapped ", (*region)->bytes().size(),
                     " bytes, expected ", file->header_size() + bytes));
  }
  std::shared_ptr<DataFile> data(new DataFile(schema, *std::move(fanout)));
  data->path_ = file->path();
  data->generation_ = file->generation();
  data->records_ = (*region)->bytes().data() + file->header_size();
  data->count_ = bytes / e;
  data->region_ = *std::move(region);
  // The mapping outlives the file handle; the descriptor is not needed any
  // more.
  (void)file->Close();
  return std::shared_ptr<const DataFile>(std::move(data));
}

const char* DataFile::Find(absl::string_view key, uint64_t hash) const {
  const Fanout::Range range = fanout_.Search(hash);
  const size_t e = schema_.entry_size();
  MappedArray array(records_, count_, e);
  auto i = InterpolationSearch(array, schema_, key, hash, range.low / e,
                               range.high / e);
  return i.has_value() ? entry(*i) : nullptr;
}

}  // namespace kvindex
