// index-fsck on stores written by the real index (//index).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "filter/key_filter.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "io/env.h"
#include "io/index_file.h"
#include "nlohmann/json.hpp"
#include "runset/manifest.h"
#include "tools/fsck.h"
#include "tools/fsck_cli.h"
#include "tools/fsck_testutil.h"

namespace kvindex {
namespace {

std::string Dump(const fsck::Report& r) {
  std::string out;
  for (const fsck::Problem& p : r.problems) {
    absl::StrAppend(&out, fsck::FormatProblem(p), "\n");
  }
  for (const std::string& n : r.notes) absl::StrAppend(&out, "note: ", n, "\n");
  return out;
}

std::string RandomString(std::mt19937_64* rng) {
  std::uniform_int_distribution<int> printable(33, 126);
  std::string s(20, ' ');
  for (char& c : s) c = static_cast<char>(printable(*rng));
  return s;
}

// Writes 1001 random bindings with log_size 100 (the OCaml CLI test's
// workload), rewrites 50 of them, and closes.
template <typename Idx>
void WriteStore(const std::string& root) {
  Options options;
  options.fresh = true;
  options.log_size = 100;
  auto index = Idx::Open(root, options);
  ASSERT_TRUE(index.ok()) << index.status();
  std::mt19937_64 rng(42);
  std::vector<std::string> keys;
  for (int i = 0; i < 1001; ++i) {
    keys.push_back(RandomString(&rng));
    ASSERT_TRUE((*index)->Replace(keys.back(), RandomString(&rng)).ok());
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*index)->Replace(keys[i * 7], RandomString(&rng)).ok());
  }
  ASSERT_TRUE((*index)->Merge().ok());
  ASSERT_TRUE((*index)->AwaitMerge().ok());
  ASSERT_TRUE((*index)->Close().ok());
}

fsck::Options Opts(fsck::HashKind hash) {
  fsck::Options o;
  o.key_size = 20;
  o.value_size = 20;
  o.hash = hash;
  return o;
}

TEST(FsckOnRealIndex, FixedStringStoreIsClean) {
  const std::string root = fsck_testing::NewRoot("real_xxh3", false);
  WriteStore<Index<FixedString<20>, FixedString<20>>>(root);

  absl::StatusOr<fsck::Report> r =
      fsck::IntegrityCheck(Env::Posix(), root, Opts(fsck::HashKind::kXxh3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->problems.size(), 0u) << Dump(*r);
  EXPECT_EQ(fsck::ExitCodeFor(r->problems, /*strict=*/true), fsck::kExitOk);
  // After the final forced merge, all 1001 distinct keys are in data.
  EXPECT_TRUE(absl::StrContains(Dump(*r),
                                "data: 1001 records, sorted by xxh3-64, no "
                                "repeated key"))
      << Dump(*r);

  absl::StatusOr<fsck::StoreStat> st =
      fsck::Stat(Env::Posix(), root, Opts(fsck::HashKind::kXxh3));
  ASSERT_TRUE(st.ok());
  ASSERT_FALSE(st->files.empty());
  EXPECT_EQ(st->files[0].name, "data");
  EXPECT_EQ(st->files[0].offset, 1001 * 40);
  EXPECT_GE(st->files[0].generation, 1);
  EXPECT_TRUE(st->has_lock);

  // The OCaml hash does not fit this store.
  r = fsck::IntegrityCheck(Env::Posix(), root, Opts(fsck::HashKind::kOcaml));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(fsck::ExitCodeFor(r->problems, false), fsck::kExitDamaged)
      << Dump(*r);
}

// The key filter that the index writes next to its data file is checked
// against every key: damage that finds would ignore is a warning, a filter that
// finds would trust but that lacks keys is an error.
TEST(FsckOnRealIndex, KeyFilterIsChecked) {
  const std::string root = fsck_testing::NewRoot("real_filter", false);
  WriteStore<Index<FixedString<20>, FixedString<20>>>(root);
  const fsck::Options opts = Opts(fsck::HashKind::kXxh3);
  absl::StatusOr<fsck::Report> r =
      fsck::IntegrityCheck(Env::Posix(), root, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->problems.size(), 0u) << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "holds every key")) << Dump(*r);

  const std::string path = StorePath(root, "data.filter");
  absl::StatusOr<std::string> good = Env::Posix()->ReadFileToString(path);
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_GT(good->size(), KeyFilter::kHeaderSize);
  auto rewrite = [&](const std::string& bytes) {
    ASSERT_TRUE(Env::Posix()->RemoveFile(path).ok());
    ASSERT_TRUE(KeyFilter::Write(Env::Posix(), path, bytes).ok());
  };

  // A flipped bit: the checksum no longer matches, finds would not use it.
  std::string damaged = *good;
  damaged[KeyFilter::kHeaderSize + 5] ^= 0x10;
  rewrite(damaged);
  r = fsck::IntegrityCheck(Env::Posix(), root, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors(), 0u) << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "not used by finds (checksum"))
      << Dump(*r);
  EXPECT_EQ(fsck::ExitCodeFor(r->problems, /*strict=*/true),
            fsck::kExitDamaged);

  // An intact filter for this very data file, but without any key: finds
  // would trust it and miss every binding.
  FilterTarget target;
  target.generation =
      static_cast<int64_t>(absl::big_endian::Load64(good->data() + 16));
  target.records = absl::big_endian::Load64(good->data() + 24);
  target.data_id = absl::big_endian::Load64(good->data() + 32);
  ASSERT_EQ(target.records, 1001u);
  rewrite(KeyFilterBuilder(1001, 64).Finish(target));
  r = fsck::IntegrityCheck(Env::Posix(), root, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->errors(), 1u) << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "lacks the key of data record 0"))
      << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "1001 keys missing")) << Dump(*r);
  EXPECT_EQ(fsck::ExitCodeFor(r->problems, /*strict=*/false),
            fsck::kExitDamaged);

  // No filter at all is fine.
  ASSERT_TRUE(Env::Posix()->RemoveFile(path).ok());
  r = fsck::IntegrityCheck(Env::Posix(), root, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->problems.size(), 0u) << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "data.filter: absent")) << Dump(*r);
}

TEST(FsckOnRealIndex, OcamlFixedStringStoreIsClean) {
  const std::string root = fsck_testing::NewRoot("real_ocaml", false);
  WriteStore<Index<OcamlFixedString<20>, FixedString<20>>>(root);
  absl::StatusOr<fsck::Report> r =
      fsck::IntegrityCheck(Env::Posix(), root, Opts(fsck::HashKind::kOcaml));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->problems.size(), 0u) << Dump(*r);
  EXPECT_TRUE(absl::StrContains(Dump(*r), "sorted by ocaml-30")) << Dump(*r);
}

TEST(FsckOnRealIndex, OpenWriterShowsItsPid) {
  const std::string root = fsck_testing::NewRoot("real_open", false);
  Options options;
  options.log_size = 100;
  using Idx = Index<FixedString<20>, FixedString<20>>;
  auto index = Idx::Open(root, options);
  ASSERT_TRUE(index.ok()) << index.status();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 250; ++i) {
    ASSERT_TRUE((*index)->Replace(RandomString(&rng), RandomString(&rng)).ok());
  }
  ASSERT_TRUE((*index)->AwaitMerge().ok());
  ASSERT_TRUE((*index)->Flush().ok());

  absl::StatusOr<fsck::StoreStat> st =
      fsck::Stat(Env::Posix(), root, Opts(fsck::HashKind::kXxh3));
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->has_lock);
  EXPECT_EQ(absl::StripAsciiWhitespace(st->lock), std::to_string(getpid()));

  absl::StatusOr<fsck::Report> r =
      fsck::IntegrityCheck(Env::Posix(), root, Opts(fsck::HashKind::kXxh3));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->errors(), 0u) << Dump(*r);
  ASSERT_TRUE((*index)->Close().ok());
}

// ---- The tiered layout, written by the index ----

using TieredIndex = Index<FixedString<20>, FixedString<20>>;

// By default, merges only when asked.
Options TieredOptions(uint64_t log_size = 1000000) {
  Options options;
  options.layout = Layout::kTiered;
  options.log_size = log_size;
  return options;
}

// Fourteen merges of a full log each (100 new bindings and 10 rewrites of
// older ones), each followed by its compactions: the binary counter's 14 =
// 0b1110 holds runs in slots 1, 2 and 3, and the last compaction folded the
// last two logs' runs (retired).
void WriteTieredStore(const std::string& root) {
  Options options = TieredOptions(/*log_size=*/110);
  options.fresh = true;
  auto index = TieredIndex::Open(root, options);
  ASSERT_TRUE(index.ok()) << index.status();
  std::mt19937_64 rng(7);
  std::vector<std::string> keys;
  for (int merge = 0; merge < 14; ++merge) {
    for (int i = 0; i < 100; ++i) {
      keys.push_back(RandomString(&rng));
      ASSERT_TRUE((*index)->Replace(keys.back(), RandomString(&rng)).ok());
    }
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*index)->Replace(keys[i * 3], RandomString(&rng)).ok());
    }
    ASSERT_TRUE((*index)->Merge().ok());
    ASSERT_TRUE((*index)->AwaitMerge().ok());
  }
  ASSERT_TRUE((*index)->Close().ok());
}

Manifest ManifestOf(const std::string& root) {
  absl::StatusOr<std::optional<Manifest>> m =
      ReadManifest(Env::Posix(), StoreDir(root));
  EXPECT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m.ok() && m->has_value());
  return m.ok() && m->has_value() ? **m : Manifest();
}

// The problems about file `name` of the store with `severity` whose message
// contains `text`.
int CountProblems(const fsck::Report& r, const std::string& root,
                  absl::string_view name, fsck::Severity severity,
                  absl::string_view text) {
  int n = 0;
  for (const fsck::Problem& p : r.problems) {
    if (p.path == StorePath(root, name) && p.severity == severity &&
        absl::StrContains(p.message, text)) {
      ++n;
    }
  }
  return n;
}

fsck::Report CheckTiered(const std::string& root) {
  absl::StatusOr<fsck::Report> r =
      fsck::IntegrityCheck(Env::Posix(), root, Opts(fsck::HashKind::kXxh3));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : fsck::Report();
}

// A tiered store written by the index, with its manifest.
struct TieredStore {
  std::string root;
  Manifest manifest;
};

TieredStore NewTieredStore(absl::string_view name) {
  TieredStore t;
  t.root = fsck_testing::NewRoot(name, false);
  WriteTieredStore(t.root);
  t.manifest = ManifestOf(t.root);
  return t;
}

TEST(FsckOnRealTieredIndex, StoreWithSeveralRunsIsClean) {
  const TieredStore t = NewTieredStore("real_tiered");
  ASSERT_EQ(t.manifest.runs.size(), 3u);
  EXPECT_EQ(t.manifest.runs[0].slot, 1u);
  EXPECT_EQ(t.manifest.runs[2].slot, 3u);
  EXPECT_EQ(t.manifest.retired.size(), 2u);

  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_EQ(fsck::ExitCodeFor(r.problems, /*strict=*/true), fsck::kExitOk);
  for (const RunEntry& run : t.manifest.runs) {
    const std::string note =
        absl::StrCat(RunFileName(run.id), ": ", run.records,
                     " records, sorted by xxh3-64, no repeated key");
    EXPECT_TRUE(absl::StrContains(Dump(r), note)) << note << "\n" << Dump(r);
  }
  // Each run has its filter, which holds its keys.
  EXPECT_EQ(std::count_if(r.notes.begin(), r.notes.end(),
                          [](const std::string& note) {
                            return absl::StrContains(note, ".filter: ") &&
                                   absl::EndsWith(note, "holds every key");
                          }),
            3)
      << Dump(r);

  absl::StatusOr<fsck::StoreStat> st =
      fsck::Stat(Env::Posix(), t.root, Opts(fsck::HashKind::kXxh3));
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->problems.empty());
  ASSERT_TRUE(st->manifest.has_value());
  EXPECT_EQ(*st->manifest, t.manifest);
  for (const RunEntry& run : t.manifest.runs) {
    auto it = std::find_if(
        st->files.begin(), st->files.end(),
        [&](const fsck::FileStat& f) { return f.name == RunFileName(run.id); });
    ASSERT_NE(it, st->files.end()) << RunFileName(run.id);
    EXPECT_EQ(it->generation, run.generation);
    EXPECT_EQ(it->file_size, run.bytes);
  }
}

// `index-fsck stat --json` lists the manifest, and each of its runs in
// "files".
TEST(FsckOnRealTieredIndex, StatJsonHasTheManifest) {
  const TieredStore t = NewTieredStore("real_tiered_json");
  ASSERT_EQ(t.manifest.runs.size(), 3u);
  ASSERT_EQ(t.manifest.retired.size(), 2u);
  std::ostringstream out, err;
  const int code = fsck::RunCli(
      Env::Posix(),
      {"stat", "--json", "--key-size=20", "--value-size=20", t.root}, out, err,
      /*err_is_tty=*/false);
  EXPECT_EQ(code, fsck::kExitOk) << err.str();
  EXPECT_EQ(err.str(), "");
  const nlohmann::json json = nlohmann::json::parse(out.str(), /*cb=*/nullptr,
                                                    /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << out.str();

  const nlohmann::json& m = json.at("manifest");
  EXPECT_EQ(m.size(), 5u) << m;
  EXPECT_EQ(m.at("generation"), t.manifest.generation);
  EXPECT_EQ(m.at("next_id"), t.manifest.next_id);
  EXPECT_EQ(m.at("entry_bytes"), 40);
  const nlohmann::json& runs = m.at("runs");
  ASSERT_TRUE(runs.is_array()) << runs;
  ASSERT_EQ(runs.size(), t.manifest.runs.size()) << runs;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunEntry& run = t.manifest.runs[i];
    const nlohmann::json& r = runs[i];
    EXPECT_EQ(r.size(), 6u) << r;
    EXPECT_EQ(r.at("id"), run.id) << r;
    EXPECT_EQ(r.at("file"), RunFileName(run.id)) << r;
    EXPECT_EQ(r.at("slot"), run.slot) << r;
    EXPECT_EQ(r.at("records"), run.records) << r;
    EXPECT_EQ(r.at("bytes"), run.bytes) << r;
    EXPECT_EQ(r.at("generation"), run.generation) << r;
    // The run file's header, under the same name.
    const nlohmann::json& file = json.at("files").at(RunFileName(run.id));
    EXPECT_EQ(file.at("entries"), run.records) << file;
    EXPECT_EQ(file.at("bytes"), run.bytes) << file;
    EXPECT_EQ(file.at("generation"), run.generation) << file;
  }
  const nlohmann::json& retired = m.at("retired");
  ASSERT_TRUE(retired.is_array()) << retired;
  ASSERT_EQ(retired.size(), 2u) << retired;
  EXPECT_EQ(retired[0], t.manifest.retired[0]);
  EXPECT_EQ(retired[1], t.manifest.retired[1]);
}

TEST(FsckOnRealTieredIndex, DataFileTakenOverAsARunIsClean) {
  const std::string root = fsck_testing::NewRoot("real_takeover", false);
  WriteStore<TieredIndex>(root);  // single-file, then opened tiered
  {
    // Logs of 100 bindings: data's 1001 go to slot 3, the merge to slot 0.
    auto index = TieredIndex::Open(root, TieredOptions(/*log_size=*/100));
    ASSERT_TRUE(index.ok()) << index.status();
    std::mt19937_64 rng(3);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          (*index)->Replace(RandomString(&rng), RandomString(&rng)).ok());
    }
    ASSERT_TRUE((*index)->Merge().ok());
    ASSERT_TRUE((*index)->AwaitMerge().ok());
    ASSERT_TRUE((*index)->Close().ok());
  }
  const Manifest m = ManifestOf(root);
  ASSERT_EQ(m.runs.size(), 2u) << m.runs.size();
  EXPECT_EQ(m.runs[1].id, kDataRunId);
  const fsck::Report r = CheckTiered(root);
  EXPECT_EQ(r.problems.size(), 0u) << Dump(r);
  EXPECT_TRUE(absl::StrContains(Dump(r), "data: 1001 records, sorted"))
      << Dump(r);
}

TEST(FsckOnRealTieredIndex, FlippedManifestByte) {
  const TieredStore t = NewTieredStore("real_tiered_manifest");
  std::string bytes = fsck_testing::ReadStoreFile(t.root, "manifest");
  bytes[bytes.size() / 2] ^= 0x20;
  fsck_testing::WriteStoreFile(t.root, "manifest", bytes);
  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(CountProblems(r, t.root, "manifest", fsck::Severity::kError,
                          "manifest: checksum mismatch"),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
  EXPECT_EQ(fsck::ExitCodeFor(r.problems, false), fsck::kExitDamaged);
}

TEST(FsckOnRealTieredIndex, DeletedRun) {
  const TieredStore t = NewTieredStore("real_tiered_deleted");
  const RunEntry& run = t.manifest.runs[1];
  ASSERT_TRUE(Env::Posix()->RemoveFile(RunPath(StoreDir(t.root), run.id)).ok());
  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(
      CountProblems(r, t.root, RunFileName(run.id), fsck::Severity::kError,
                    absl::StrCat("missing: the manifest lists run ", run.id)),
      1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
}

TEST(FsckOnRealTieredIndex, TruncatedRun) {
  const TieredStore t = NewTieredStore("real_tiered_truncated");
  const RunEntry& run = t.manifest.runs[2];
  const std::string name = RunFileName(run.id);
  const std::string bytes = fsck_testing::ReadStoreFile(t.root, name);
  fsck_testing::WriteStoreFile(t.root, name,
                               bytes.substr(0, bytes.size() - 100));
  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(CountProblems(r, t.root, name, fsck::Severity::kError,
                          absl::StrCat("the file has ", run.bytes - 100,
                                       " bytes, but the manifest lists run ",
                                       run.id, " with ", run.bytes, " bytes")),
            1)
      << Dump(r);
  EXPECT_EQ(CountProblems(r, t.root, name, fsck::Severity::kError,
                          "(100 bytes missing)"),
            1)
      << Dump(r);
  EXPECT_EQ(fsck::ExitCodeFor(r.problems, false), fsck::kExitDamaged);
}

TEST(FsckOnRealTieredIndex, RunWithAnotherGeneration) {
  const TieredStore t = NewTieredStore("real_tiered_generation");
  const RunEntry& run = t.manifest.runs[0];
  const std::string name = RunFileName(run.id);
  std::string bytes = fsck_testing::ReadStoreFile(t.root, name);
  fsck_testing::PutBigEndian64(&bytes, 16,
                               static_cast<uint64_t>(run.generation + 5));
  fsck_testing::WriteStoreFile(t.root, name, bytes);
  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(CountProblems(r, t.root, name, fsck::Severity::kError,
                          absl::StrCat("generation ", run.generation + 5,
                                       ", but the manifest lists run ", run.id,
                                       " with generation ", run.generation)),
            1)
      << Dump(r);
  // The filter names the generation it was built for: finds would not use it.
  EXPECT_EQ(CountProblems(r, t.root, name + ".filter", fsck::Severity::kWarning,
                          "not used by finds"),
            1)
      << Dump(r);
  EXPECT_EQ(r.errors(), 1u) << Dump(r);
}

TEST(FsckOnRealTieredIndex, StaleRunFiles) {
  const TieredStore t = NewTieredStore("real_tiered_stale");
  ASSERT_EQ(t.manifest.retired.size(), 2u);
  const uint64_t retired = t.manifest.retired[0];
  const std::string newest =
      fsck_testing::ReadStoreFile(t.root, RunFileName(t.manifest.runs[0].id));
  // A retired run the writer did not get to delete, the output of a merge
  // that did not commit, and a compaction's output being written.
  fsck_testing::WriteStoreFile(t.root, RunFileName(retired), newest);
  fsck_testing::WriteStoreFile(t.root, RunFileName(t.manifest.next_id), newest);
  fsck_testing::WriteStoreFile(t.root, "compact", newest);
  const fsck::Report r = CheckTiered(t.root);
  EXPECT_EQ(std::count_if(r.notes.begin(), r.notes.end(),
                          [&](const std::string& note) {
                            return absl::StartsWith(
                                note, absl::StrCat("compact: ",
                                                   t.manifest.runs[0].records,
                                                   " records; a leftover of an "
                                                   "interrupted compaction"));
                          }),
            1)
      << Dump(r);
  EXPECT_EQ(
      CountProblems(r, t.root, RunFileName(retired), fsck::Severity::kWarning,
                    absl::StrCat("leftover: run ", retired,
                                 ", which the manifest retires")),
      1)
      << Dump(r);
  EXPECT_EQ(CountProblems(r, t.root, RunFileName(t.manifest.next_id),
                          fsck::Severity::kWarning,
                          "leftover: the output of a merge that did not "
                          "commit"),
            1)
      << Dump(r);
  EXPECT_EQ(r.problems.size(), 2u) << Dump(r);
  EXPECT_EQ(fsck::ExitCodeFor(r.problems, /*strict=*/false), fsck::kExitOk);

  // The index agrees: its next open deletes them, and the store is clean.
  {
    auto index = TieredIndex::Open(t.root, TieredOptions());
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_TRUE((*index)->Close().ok());
  }
  const fsck::Report after = CheckTiered(t.root);
  EXPECT_EQ(after.problems.size(), 0u) << Dump(after);
  for (const std::string& note : after.notes) {
    EXPECT_FALSE(absl::StartsWith(note, "compact:")) << note;
  }
}

}  // namespace
}  // namespace kvindex
