#include "filter/data_sums.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/mem_env.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBlock = 512;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

SumsTarget TargetOf(const std::string& file) {
  SumsTarget t;
  t.generation = 7;
  t.file_bytes = file.size();
  t.data_id = 0x1234567890abcdefULL;
  return t;
}

TEST(DataSumsTest, RoundTrip) {
  for (size_t n : {size_t{1}, size_t{511}, size_t{512}, size_t{513},
                   size_t{3 * 512 + 7}, size_t{8 * 512}}) {
    const std::string file = RandomBytes(n, static_cast<uint32_t>(n));
    const SumsTarget target = TargetOf(file);
    const std::string bytes = DataSumsOf(file, target, kBlock);
    std::string why;
    auto sums = DataSums::Parse(bytes, target, &why);
    ASSERT_NE(sums, nullptr) << n << ": " << why;
    EXPECT_EQ(sums->blocks(), (n + kBlock - 1) / kBlock);
    EXPECT_EQ(bytes.size(), DataSums::kHeaderSize + 8 * sums->blocks());
    EXPECT_EQ(sums->block_size(), kBlock);
    EXPECT_EQ(sums->target(), target);
    EXPECT_TRUE(sums->BadBlocks(file).empty());
    EXPECT_TRUE(sums->Verify(file, "data").ok());
  }
}

TEST(DataSumsTest, DefaultBlockSizeIs64KiB) {
  const std::string file = RandomBytes(3 * 65536 + 100, 1);
  auto sums = DataSums::Parse(DataSumsOf(file, TargetOf(file)), TargetOf(file));
  ASSERT_NE(sums, nullptr);
  EXPECT_EQ(sums->block_size(), 65536u);
  EXPECT_EQ(sums->blocks(), 4u);
}

// A file streamed after its head, in pieces of any size, with the head given
// at the end, has the sums of the whole file.
TEST(DataSumsTest, BuilderWithHeadMatchesWholeFile) {
  const std::string file = RandomBytes(5 * 512 + 300, 3);
  const SumsTarget target = TargetOf(file);
  const std::string expected = DataSumsOf(file, target, kBlock);
  for (size_t head : {size_t{0}, size_t{32}, size_t{511}, size_t{512},
                      size_t{513}, size_t{1100}, file.size()}) {
    for (size_t piece : {size_t{1}, size_t{40}, size_t{512}, size_t{2000}}) {
      DataSumsBuilder builder(head, kBlock);
      for (size_t at = head; at < file.size(); at += piece) {
        builder.Append(absl::string_view(file).substr(at, piece));
      }
      EXPECT_EQ(builder.Finish(absl::string_view(file).substr(0, head), target),
                expected)
          << "head " << head << ", pieces of " << piece;
    }
  }
}

// Every single-bit flip of the sidecar (header, sums) makes it unusable.
TEST(DataSumsTest, EveryBitFlipOfTheSidecarIsRejected) {
  const std::string file = RandomBytes(4 * 512 + 17, 5);
  const SumsTarget target = TargetOf(file);
  const std::string bytes = DataSumsOf(file, target, kBlock);
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string damaged = bytes;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    std::string why;
    EXPECT_EQ(DataSums::Parse(damaged, target, &why), nullptr)
        << "bit " << bit << " flipped was accepted";
  }
}

TEST(DataSumsTest, TruncatedOrExtendedSidecarIsRejected) {
  const std::string file = RandomBytes(3 * 512, 6);
  const SumsTarget target = TargetOf(file);
  const std::string bytes = DataSumsOf(file, target, kBlock);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DataSums::Parse(bytes.substr(0, n), target), nullptr) << n;
  }
  EXPECT_EQ(DataSums::Parse(bytes + std::string(8, '\0'), target), nullptr);
}

TEST(DataSumsTest, StaleIdentityIsIgnored) {
  const std::string file = RandomBytes(2 * 512 + 1, 7);
  const SumsTarget target = TargetOf(file);
  const std::string bytes = DataSumsOf(file, target, kBlock);
  SumsTarget other = target;
  other.generation += 1;
  std::string why;
  EXPECT_EQ(DataSums::Parse(bytes, other, &why), nullptr);
  EXPECT_THAT(why, HasSubstr("built for another data file"));
  other = target;
  other.file_bytes += 40;
  why.clear();
  EXPECT_EQ(DataSums::Parse(bytes, other, &why), nullptr);
  EXPECT_THAT(why, HasSubstr("built for another data file"));
}

// The data_id is recorded but does not decide the binding: damage to the
// bytes it is computed from must not make the sidecar look stale.
TEST(DataSumsTest, AnotherDataIdStillBinds) {
  const std::string file = RandomBytes(2 * 512 + 1, 7);
  const SumsTarget target = TargetOf(file);
  SumsTarget other = target;
  other.data_id ^= 1;
  auto sums = DataSums::Parse(DataSumsOf(file, target, kBlock), other);
  ASSERT_NE(sums, nullptr);
  EXPECT_EQ(sums->target(), target);
  std::string damaged = file;
  damaged[3] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(sums->Verify(damaged, "data")));
}

TEST(DataSumsTest, BlockSizesOutsideTheAcceptedRangeAreRejected) {
  const std::string file = RandomBytes(1000, 8);
  const SumsTarget target = TargetOf(file);
  std::string why;
  EXPECT_EQ(DataSums::Parse(DataSumsOf(file, target, 256), target, &why),
            nullptr);
  EXPECT_THAT(why, HasSubstr("block size"));
  EXPECT_EQ(DataSums::Parse(DataSumsOf(file, target, 768), target, &why),
            nullptr);
  EXPECT_NE(DataSums::Parse(DataSumsOf(file, target, 1024), target), nullptr);
}

// Each flipped bit of the data file is reported with its block's range.
TEST(DataSumsTest, VerifyNamesTheDamagedBlock) {
  const std::string file = RandomBytes(4 * 512 + 100, 9);
  const SumsTarget target = TargetOf(file);
  auto sums = DataSums::Parse(DataSumsOf(file, target, kBlock), target);
  ASSERT_NE(sums, nullptr);
  for (size_t at : {size_t{0}, size_t{31}, size_t{600}, size_t{2047},
                    size_t{2048}, file.size() - 1}) {
    std::string damaged = file;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    const uint64_t begin = at / kBlock * kBlock;
    const uint64_t end = std::min<uint64_t>(begin + kBlock, file.size());
    const auto bad = sums->BadBlocks(damaged);
    ASSERT_EQ(bad.size(), 1u) << at;
    EXPECT_EQ(bad[0].begin, begin);
    EXPECT_EQ(bad[0].end, end);
    const absl::Status st = sums->Verify(damaged, "/s/index/data");
    EXPECT_TRUE(absl::IsDataLoss(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr("/s/index/data: bytes ["));
    EXPECT_THAT(st.message(),
                HasSubstr(absl::StrCat("[", begin, ", ", end, ")")));
  }
  const absl::Status st = sums->Verify(file.substr(1), "data");
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
}

TEST(DataSumsTest, WriteAndRead) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/s").ok());
  const std::string file = RandomBytes(1500, 10);
  const SumsTarget target = TargetOf(file);
  std::string why;
  auto absent = DataSums::Read(&env, "/s/data.sum", target, &why);
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(*absent, nullptr);
  EXPECT_EQ(why, "absent");
  const std::string bytes = DataSumsOf(file, target, kBlock);
  ASSERT_TRUE(DataSums::Write(&env, "/s/data.sum", bytes).ok());
  EXPECT_FALSE(*env.FileExists("/s/data.sum.tmp"));
  auto read = DataSums::Read(&env, "/s/data.sum", target);
  ASSERT_TRUE(read.ok());
  ASSERT_NE(*read, nullptr);
  EXPECT_TRUE((*read)->Verify(file, "/s/data").ok());
  // A shorter sidecar written over it is read as such.
  ASSERT_TRUE(DataSums::Write(&env, "/s/data.sum", bytes.substr(0, 70)).ok());
  read = DataSums::Read(&env, "/s/data.sum", target, &why);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, nullptr);
}

}  // namespace
}  // namespace kvindex
