#include "datafile/test_run.h"

#include <utility>

#include "datafile/merge.h"
#include "filter/key_filter.h"
#include "log/log_table.h"

namespace kvindex {

absl::StatusOr<std::shared_ptr<const DataFile>> WriteTestRun(
    Env* env, const Schema& schema, const std::string& path,
    const std::vector<std::string>& entries, int64_t generation) {
  LogTable log(schema);
  for (const std::string& entry : entries) log.Add(entry.data());
  MergeRequest request;
  request.env = env;
  request.path = path + ".tmp";
  request.schema = schema;
  request.log = &log;
  request.generation = generation;
  absl::StatusOr<MergeResult> result = WriteMerge(request);
  if (!result.ok()) return result.status();
  absl::Status st = result->file->RenameTo(path);
  if (st.ok() && !result->filter.empty()) {
    st = KeyFilter::Write(env, DataFile::FilterPath(path), result->filter);
  }
  if (!st.ok()) return st;
  return DataFile::FromFile(std::move(result->file), schema, env);
}

}  // namespace kvindex
