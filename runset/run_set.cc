#include "runset/run_set.h"

#include <new>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datafile/newest_records.h"
#include "filter/key_filter.h"

namespace kvindex {
namespace {

// Each retry means the writer committed another manifest between our read of
// the manifest and our open of its runs: a handful is already unlikely.
constexpr int kLoadAttempts = 100;

absl::StatusOr<uint64_t> FileSize(Env* env, const std::string& path) {
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFile(path, OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  return (*file)->Size();
}

// The open run at `path` from `open` that `entry` describes, or nullptr.
std::shared_ptr<const DataFile> Reusable(const RunSet::Runs& open,
                                         const std::string& path,
                                         const RunEntry& entry) {
  for (const auto& run : open) {
    if (run != nullptr && run->path() == path &&
        run->generation() == entry.generation &&
        run->count() == entry.records) {
      return run;
    }
  }
  return nullptr;
}

// Opens the run at `path` and checks it against `entry`. A missing (or empty)
// file is kNotFound, anything else that does not match kDataLoss.
absl::StatusOr<std::shared_ptr<const DataFile>> OpenRun(
    Env* env, const std::string& path, const Schema& schema,
    const RunEntry& entry, const std::string& manifest_path) {
  auto run = DataFile::Open(env, path, schema);
  if (!run.ok()) return run.status();
  if (*run == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": run ", entry.id,
                                            " listed in ", manifest_path,
                                            " is missing or holds no records"));
  }
  auto mismatch = [&](absl::string_view field, auto found, auto listed) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", field, " ", found, ", but ", manifest_path,
                     " lists run ", entry.id, " with ", listed));
  };
  if ((*run)->generation() != entry.generation) {
    return mismatch("generation", (*run)->generation(), entry.generation);
  }
  if ((*run)->count() != entry.records) {
    return mismatch("records", (*run)->count(), entry.records);
  }
  absl::StatusOr<uint64_t> bytes = FileSize(env, path);
  if (!bytes.ok()) return bytes.status();
  if (*bytes != entry.bytes) return mismatch("bytes", *bytes, entry.bytes);
  return run;
}

// The run `entry` of `manifest`, from `open` or opened.
absl::StatusOr<std::shared_ptr<const DataFile>> OpenListedRun(
    Env* env, const std::string& dir, const Schema& schema,
    const Manifest& manifest, const RunEntry& entry, const RunSet::Runs& open) {
  const std::string manifest_path = ManifestPath(dir);
  const std::string path = RunPath(dir, entry.id);
  if (auto run = Reusable(open, path, entry)) return run;
  auto opened = OpenRun(env, path, schema, entry, manifest_path);
  if (!absl::IsNotFound(opened.status())) return opened;
  // The conversion back to the default layout renames the only run to `data`
  // before it removes the manifest.
  if (manifest.runs.size() == 1 && entry.id != kDataRunId) {
    const std::string data_path = RunPath(dir, kDataRunId);
    if (auto run = Reusable(open, data_path, entry)) return run;
    auto data = OpenRun(env, data_path, schema, entry, manifest_path);
    if (data.ok()) return data;
  }
  return absl::DataLossError(opened.status().message());
}

}  // namespace

RunSet::RunSet(const Schema& schema, Manifest manifest, Runs runs)
    : schema_(schema), manifest_(std::move(manifest)), runs_(std::move(runs)) {
  for (const auto& run : runs_) records_ += run->count();
}

absl::StatusOr<std::shared_ptr<const RunSet>> RunSet::Open(
    Env* env, const std::string& dir, const Schema& schema,
    const Manifest& manifest, const Runs& open) {
  const std::string manifest_path = ManifestPath(dir);
  if (manifest.entry_size != schema.entry_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        manifest_path, ": records of ", manifest.entry_size,
        " bytes, but keys and values of ", schema.entry_size(), " bytes"));
  }
  Runs runs;
  runs.reserve(manifest.runs.size());
  for (const RunEntry& entry : manifest.runs) {
    auto run = OpenListedRun(env, dir, schema, manifest, entry, open);
    if (!run.ok()) return run.status();
    runs.push_back(*std::move(run));
  }
  return std::shared_ptr<const RunSet>(
      new RunSet(schema, manifest, std::move(runs)));
}

absl::StatusOr<std::shared_ptr<const RunSet>> RunSet::Load(
    Env* env, const std::string& dir, const Schema& schema,
    int64_t log_generation, const RunSet* previous) {
  const Runs none;
  const Runs& reuse = previous != nullptr ? previous->runs() : none;
  for (int attempt = 0; attempt < kLoadAttempts; ++attempt) {
    absl::StatusOr<std::optional<Manifest>> manifest = ReadManifest(env, dir);
    if (!manifest.ok()) return manifest.status();
    if (!manifest->has_value()) return std::shared_ptr<const RunSet>();
    const Manifest& m = **manifest;
    if (m.generation < log_generation) {
      Manifest cleared = m;
      cleared.runs.clear();
      return std::shared_ptr<const RunSet>(
          new RunSet(schema, std::move(cleared), Runs()));
    }
    absl::StatusOr<std::shared_ptr<const RunSet>> set =
        Open(env, dir, schema, m, reuse);
    if (set.ok()) return set;
    // A run that is missing or different is damage only if the manifest
    // still lists it.
    absl::StatusOr<std::optional<Manifest>> again = ReadManifest(env, dir);
    if (!again.ok()) return again.status();
    if (!again->has_value()) return std::shared_ptr<const RunSet>();
    if (**again == m) return set.status();
  }
  return absl::UnavailableError(absl::StrCat(
      ManifestPath(dir), ": replaced continuously while opening its runs"));
}

std::vector<const DataFile*> RunSet::Newest(size_t n) const {
  std::vector<const DataFile*> out;
  for (size_t i = 0; i < n && i < runs_.size(); ++i) {
    out.push_back(runs_[i].get());
  }
  return out;
}

void RunSet::Prefetch(uint64_t hash, Lookup* lookup) const {
  // One trend of filter verdicts per position, newest first: a present key is
  // usually absent from the newer (smaller) runs and in an older one, so a
  // shared trend would stop prefetching the records of the run that holds it.
  thread_local int trends[kMaxRuns] = {};
  const size_t n = runs_.size();
  DataFile::Window* windows = lookup->windows();
  for (size_t i = 0; i < n; ++i) {
    new (&windows[i]) DataFile::Window(runs_[i]->Prefetch(hash, &trends[i]));
  }
  lookup->count_ = n;
}

const char* RunSet::Find(absl::string_view key, const Lookup& lookup) const {
  const DataFile::Window* windows = lookup.windows();
  // Every run's filter takes the same fingerprint: one hash of the key.
  const uint64_t fingerprint = KeyFingerprint(key);
  for (size_t i = 0; i < lookup.count_ && i < runs_.size(); ++i) {
    const char* entry = runs_[i]->Find(key, windows[i], fingerprint);
    if (entry != nullptr) return entry;
  }
  return nullptr;
}

const char* RunSet::Find(absl::string_view key, uint64_t hash) const {
  Lookup lookup;
  Prefetch(hash, &lookup);
  return Find(key, lookup);
}

bool RunSet::Find(absl::string_view key, uint64_t hash,
                  absl::string_view* value_out) const {
  const char* entry = Find(key, hash);
  if (entry == nullptr) return false;
  if (value_out != nullptr) *value_out = EntryValue(schema_, entry);
  return true;
}

absl::Status RunSet::Iter(
    absl::FunctionRef<void(const char* entry, uint64_t hash)> visit) const {
  NewestRecords records(schema_, Newest(runs_.size()));
  NewestRecords::Record r;
  while (records.Next(&r)) visit(r.entry, r.hash);
  return records.status();
}

absl::StatusOr<RunEntry> DescribeRun(Env* env, const DataFile& run, uint64_t id,
                                     uint32_t slot) {
  absl::StatusOr<uint64_t> bytes = FileSize(env, run.path());
  if (!bytes.ok()) return bytes.status();
  RunEntry entry;
  entry.id = id;
  entry.generation = run.generation();
  entry.records = run.count();
  entry.bytes = *bytes;
  entry.slot = slot;
  return entry;
}

}  // namespace kvindex
