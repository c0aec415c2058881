// index-fsck on stores written by the real index (//index).
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "filter/key_filter.h"
#include "index/index.h"
#include "io/env.h"
#include "io/index_file.h"
#include "tools/fsck.h"
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

}  // namespace
}  // namespace kvindex
