#include "datafile/test_run.h"

#include <utility>

#include "datafile/merge.h"
#include "filter/data_sums.h"
#include "filter/key_filter.h"
#include "log/log_table.h"
#include "testing/keys.h"

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
  if (st.ok() && !result->sums.empty()) {
    st = DataSums::Write(env, DataFile::SumsPath(path), result->sums);
  }
  if (!st.ok()) return st;
  return DataFile::FromFile(std::move(result->file), schema, env);
}

namespace test {

uint64_t MidHash(absl::string_view key) {
  return (static_cast<unsigned char>(key[0]) |
          (static_cast<uint64_t>(static_cast<unsigned char>(key[2])) << 8)) &
         0xfff;
}

Schema TinySchema() {
  return MakeSchema(kSmallKeySize, kSmallValueSize, 2, &TinyHash);
}

Schema MidSchema() {
  return MakeSchema(kSmallKeySize, kSmallValueSize, 12, &MidHash);
}

absl::StatusOr<std::shared_ptr<const DataFile>> WriteSmallTestRun(
    Env* env, const Schema& schema, const std::string& path,
    const SmallBatch& batch, int64_t generation) {
  std::vector<std::string> entries;
  for (const auto& [k, v] : batch) {
    entries.push_back(SmallKey(k) + SmallValue(v));
  }
  return WriteTestRun(env, schema, path, entries, generation);
}

rc::Gen<SmallBatch> GenSmallBatch(bool mid, uint32_t pool) {
  const auto gen_key =
      mid ? rc::gen::apply(
                [](uint32_t k, uint32_t shift) { return k + 4096 * shift; },
                rc::gen::inRange<uint32_t>(0, pool),
                rc::gen::inRange<uint32_t>(0, 3))
          : rc::gen::inRange<uint32_t>(0, pool);
  return rc::gen::container<SmallBatch>(
      rc::gen::pair(gen_key, rc::gen::inRange<uint32_t>(0, 10)));
}

}  // namespace test
}  // namespace kvindex
