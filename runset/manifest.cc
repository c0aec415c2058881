#include "runset/manifest.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "datafile/data_file.h"

namespace kvindex {
namespace {

constexpr char kMagic[] = "KVRUNSET";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kVersion = 1;
// magic, version, entry_size, generation, next_id, run_count, retired_count.
constexpr size_t kFixedSize = kMagicSize + 4 + 4 + 8 + 8 + 4 + 4;
constexpr size_t kRunSize = 8 + 8 + 8 + 8 + 4;
constexpr size_t kChecksumSize = 8;
// The bound of the generations in file headers: a manifest pairs with them.
constexpr int64_t kMaxGeneration = int64_t{1} << 62;
// The data file header all runs start with.
constexpr uint64_t kRunHeaderSize = 32;

constexpr char kManifestName[] = "manifest";
constexpr char kManifestTmpName[] = "manifest.tmp";

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  absl::big_endian::Store32(b, v);
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  absl::big_endian::Store64(b, v);
  out->append(b, 8);
}

// Reads fixed-size integers from the front of the bytes; the caller checked
// the length.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : p_(bytes.data()) {}
  uint32_t U32() {
    const uint32_t v = absl::big_endian::Load32(p_);
    p_ += 4;
    return v;
  }
  uint64_t U64() {
    const uint64_t v = absl::big_endian::Load64(p_);
    p_ += 8;
    return v;
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  void Skip(size_t n) { p_ += n; }

 private:
  const char* p_;
};

uint64_t Checksum(absl::string_view content) {
  return XXH3_64bits(content.data(), content.size());
}

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Why `run` cannot be, or "".
std::string RunProblem(const Manifest& m, const RunEntry& run) {
  if (run.id >= m.next_id) {
    return absl::StrCat("id ", run.id, " is not below next_id ", m.next_id);
  }
  if (run.slot >= kMaxRuns) {
    return absl::StrCat("slot ", run.slot, " is not below ", kMaxRuns);
  }
  if (run.generation < 0 || run.generation > m.generation) {
    return absl::StrCat("generation ", run.generation, " is outside [0, ",
                        m.generation, "] (the manifest's)");
  }
  if (run.records == 0) return "records 0: a run holds at least one record";
  const unsigned __int128 least =
      static_cast<unsigned __int128>(run.records) * m.entry_size +
      kRunHeaderSize;
  const unsigned __int128 fanout = run.bytes >= least
                                       ? run.bytes - least
                                       : static_cast<unsigned __int128>(0);
  if (run.bytes < least || fanout % 8 != 0 ||
      !IsPowerOfTwo(static_cast<uint64_t>(fanout / 8))) {
    return absl::StrCat("bytes ", run.bytes, " do not hold a 32-byte header, ",
                        "a fan-out table of 8 * 2^k bytes and ", run.records,
                        " records of ", m.entry_size, " bytes");
  }
  return "";
}

// Why `m` cannot be, or "".
std::string ManifestProblem(const Manifest& m) {
  if (m.entry_size == 0) return "entry_size 0";
  if (m.generation < 0 || m.generation > kMaxGeneration) {
    return absl::StrCat("generation ", m.generation, " is outside [0, ",
                        kMaxGeneration, "]");
  }
  if (m.next_id == 0) {
    return "next_id 0: id 0 names the data file and is never given to a run";
  }
  if (m.runs.size() > kMaxRuns) {
    return absl::StrCat("run_count ", m.runs.size(), " exceeds ", kMaxRuns);
  }
  if (m.retired.size() > kMaxRuns) {
    return absl::StrCat("retired_count ", m.retired.size(), " exceeds ",
                        kMaxRuns);
  }
  for (size_t i = 0; i < m.runs.size(); ++i) {
    const RunEntry& run = m.runs[i];
    std::string why = RunProblem(m, run);
    if (why.empty() && i > 0) {
      // Ids are unique but unordered: a compaction's output takes the next id
      // and sits behind newer runs. Generations order the runs.
      const RunEntry& newer = m.runs[i - 1];
      for (size_t j = 0; j < i && why.empty(); ++j) {
        if (m.runs[j].id == run.id) why = "duplicate id";
      }
      if (why.empty() && run.generation >= newer.generation) {
        why = absl::StrCat("generation ", run.generation,
                           " is not below the newer run's (", newer.generation,
                           "): runs are listed newest first");
      }
    }
    if (!why.empty())
      return absl::StrCat("run #", i, " (id ", run.id, "): ", why);
  }
  for (size_t i = 0; i < m.retired.size(); ++i) {
    const uint64_t id = m.retired[i];
    std::string why;
    if (id >= m.next_id) {
      why = absl::StrCat("is not below next_id ", m.next_id);
    } else if (i > 0 && id == m.retired[i - 1]) {
      why = "is a duplicate";
    } else if (i > 0 && id > m.retired[i - 1]) {
      why = "is out of order: retired ids decrease";
    } else {
      for (const RunEntry& run : m.runs) {
        if (run.id == id) why = "is also listed as a live run";
      }
    }
    if (!why.empty()) return absl::StrCat("retired id ", id, " ", why);
  }
  return "";
}

absl::Status RemoveIfPresent(Env* env, const std::string& path, bool* removed) {
  // Most of the files asked for are absent: probe first rather than build an
  // error for each.
  const absl::StatusOr<bool> exists = env->FileExists(path);
  if (!exists.ok()) return exists.status();
  if (!*exists) return absl::OkStatus();
  const absl::Status st = env->RemoveFile(path);
  if (st.ok()) {
    *removed = true;
    return absl::OkStatus();
  }
  return absl::IsNotFound(st) ? absl::OkStatus() : st;
}

// Whether the file at `path` is one of m's runs under another name: a retired
// `data` file is, once the conversion back to the default layout renamed the
// only run to `data`. A run's generation tells (no two runs share one); it is
// the third big-endian int64 of the data file header.
absl::StatusOr<bool> HoldsListedRun(Env* env, const std::string& path,
                                    const Manifest& m) {
  constexpr uint64_t kGenerationAt = 16;
  absl::StatusOr<std::unique_ptr<File>> file =
      env->OpenFileIfExists(path, OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return false;
  char bytes[8];
  const absl::Status st =
      ReadFully(**file, kGenerationAt, sizeof(bytes), bytes);
  if (absl::IsDataLoss(st)) return false;  // shorter than a header
  if (!st.ok()) return st;
  const int64_t generation =
      static_cast<int64_t>(absl::big_endian::Load64(bytes));
  for (const RunEntry& run : m.runs) {
    if (run.generation == generation) return true;
  }
  return false;
}

}  // namespace

std::string RunFileName(uint64_t id) {
  return id == kDataRunId ? "data" : absl::StrCat("run.", id);
}

std::string ManifestPath(const std::string& dir) {
  return absl::StrCat(dir, "/", kManifestName);
}

std::string RunPath(const std::string& dir, uint64_t id) {
  return absl::StrCat(dir, "/", RunFileName(id));
}

absl::Status CheckManifest(const Manifest& m, absl::string_view path) {
  const std::string why = ManifestProblem(m);
  if (why.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid manifest: ", why));
}

std::string EncodeManifest(const Manifest& m) {
  std::string out;
  out.reserve(kFixedSize + m.runs.size() * kRunSize + m.retired.size() * 8 +
              kChecksumSize);
  out.append(kMagic, kMagicSize);
  PutU32(&out, kVersion);
  PutU32(&out, m.entry_size);
  PutU64(&out, static_cast<uint64_t>(m.generation));
  PutU64(&out, m.next_id);
  PutU32(&out, static_cast<uint32_t>(m.runs.size()));
  PutU32(&out, static_cast<uint32_t>(m.retired.size()));
  for (const RunEntry& run : m.runs) {
    PutU64(&out, run.id);
    PutU64(&out, static_cast<uint64_t>(run.generation));
    PutU64(&out, run.records);
    PutU64(&out, run.bytes);
    PutU32(&out, run.slot);
  }
  for (const uint64_t id : m.retired) PutU64(&out, id);
  PutU64(&out, Checksum(out));
  return out;
}

absl::StatusOr<Manifest> DecodeManifest(absl::string_view bytes,
                                        absl::string_view path) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(path, ": manifest: ", why));
  };
  if (bytes.size() < kFixedSize + kChecksumSize) {
    return bad(absl::StrCat("truncated: ", bytes.size(), " bytes, at least ",
                            kFixedSize + kChecksumSize, " expected"));
  }
  if (bytes.substr(0, kMagicSize) != absl::string_view(kMagic, kMagicSize)) {
    return bad("bad magic: not a manifest");
  }
  Reader in(bytes);
  in.Skip(kMagicSize);
  const uint32_t version = in.U32();
  if (version != kVersion) {
    return bad(absl::StrCat("version ", version, ", expected ", kVersion));
  }
  Manifest m;
  m.entry_size = in.U32();
  m.generation = in.I64();
  m.next_id = in.U64();
  const uint32_t run_count = in.U32();
  const uint32_t retired_count = in.U32();
  if (run_count > kMaxRuns) {
    return bad(absl::StrCat("run_count ", run_count, " exceeds ", kMaxRuns));
  }
  if (retired_count > kMaxRuns) {
    return bad(
        absl::StrCat("retired_count ", retired_count, " exceeds ", kMaxRuns));
  }
  const size_t size =
      kFixedSize + run_count * kRunSize + retired_count * 8 + kChecksumSize;
  if (bytes.size() < size) {
    return bad(absl::StrCat("truncated: ", bytes.size(), " bytes, ", size,
                            " expected for ", run_count, " runs and ",
                            retired_count, " retired ids"));
  }
  if (bytes.size() > size) {
    return bad(
        absl::StrCat(bytes.size() - size, " trailing bytes after ", size));
  }
  const absl::string_view content = bytes.substr(0, size - kChecksumSize);
  const uint64_t stored =
      absl::big_endian::Load64(bytes.data() + size - kChecksumSize);
  if (stored != Checksum(content)) {
    return bad("checksum mismatch: the file is damaged");
  }
  m.runs.resize(run_count);
  for (RunEntry& run : m.runs) {
    run.id = in.U64();
    run.generation = in.I64();
    run.records = in.U64();
    run.bytes = in.U64();
    run.slot = in.U32();
  }
  m.retired.resize(retired_count);
  for (uint64_t& id : m.retired) id = in.U64();
  const std::string why = ManifestProblem(m);
  if (!why.empty()) return bad(why);
  return m;
}

absl::StatusOr<std::optional<Manifest>> ReadManifest(Env* env,
                                                     const std::string& dir) {
  const std::string path = ManifestPath(dir);
  absl::StatusOr<std::optional<std::string>> bytes =
      env->ReadFileIfExists(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<Manifest>();
  absl::StatusOr<Manifest> m = DecodeManifest(**bytes, path);
  if (!m.ok()) return m.status();
  return std::optional<Manifest>(*std::move(m));
}

absl::Status WriteManifest(Env* env, const std::string& dir,
                           const Manifest& m) {
  const std::string path = ManifestPath(dir);
  absl::Status st = CheckManifest(m, path);
  if (!st.ok()) return st;
  const std::string bytes = EncodeManifest(m);
  const std::string tmp = absl::StrCat(dir, "/", kManifestTmpName);
  // A stale manifest.tmp may be longer than this one: files are never
  // truncated on open, so start from no file.
  bool removed = false;
  st = RemoveIfPresent(env, tmp, &removed);
  if (!st.ok()) return st;
  {
    absl::StatusOr<std::unique_ptr<File>> file =
        env->OpenFile(tmp, OpenMode::kCreateReadWrite);
    if (!file.ok()) return file.status();
    st = (*file)->PWrite(0, bytes);
    if (!st.ok()) return st;
    st = (*file)->Sync();
    if (!st.ok()) return st;
  }
  st = env->RenameFile(tmp, path);
  if (!st.ok()) return st;
  return env->SyncDir(dir);
}

std::vector<std::string> StaleRunFiles(const std::string& dir,
                                       const Manifest& m) {
  std::vector<std::string> files;
  auto add_run = [&](uint64_t id) {
    const std::string run = RunPath(dir, id);
    files.push_back(run);
    files.push_back(DataFile::FilterPath(run));
    // Where KeyFilter::Write writes a filter before its rename.
    files.push_back(DataFile::FilterPath(run) + ".tmp");
    // The checksum sidecar, and where DataSums::Write writes it first.
    files.push_back(DataFile::SumsPath(run));
    files.push_back(DataFile::SumsPath(run) + ".tmp");
  };
  for (const uint64_t id : m.retired) add_run(id);
  add_run(m.next_id);
  files.push_back(absl::StrCat(dir, "/", kManifestTmpName));
  return files;
}

absl::Status RemoveStaleRunFiles(Env* env, const std::string& dir,
                                 const Manifest& m) {
  const std::string data = RunPath(dir, kDataRunId);
  bool keep_data = false;
  if (std::find(m.retired.begin(), m.retired.end(), kDataRunId) !=
      m.retired.end()) {
    absl::StatusOr<bool> holds = HoldsListedRun(env, data, m);
    if (!holds.ok()) return holds.status();
    keep_data = *holds;
  }
  const std::string data_filter = DataFile::FilterPath(data);
  const std::string data_sums = DataFile::SumsPath(data);
  auto is_data = [&](const std::string& path) {
    return path == data || path == data_filter ||
           path == data_filter + ".tmp" || path == data_sums ||
           path == data_sums + ".tmp";
  };
  bool removed = false;
  for (const std::string& path : StaleRunFiles(dir, m)) {
    if (keep_data && is_data(path)) continue;
    absl::Status st = RemoveIfPresent(env, path, &removed);
    if (!st.ok()) return st;
  }
  return removed ? env->SyncDir(dir) : absl::OkStatus();
}

}  // namespace kvindex
