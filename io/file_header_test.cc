#include "io/file_header.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvindex {
namespace {

using ::testing::HasSubstr;

constexpr char kPath[] = "/store/index/data";

// A header written byte by byte, independently of Encode.
std::string Bytes(uint64_t offset, absl::string_view version,
                  uint64_t generation, uint64_t fan_size) {
  std::string out;
  for (uint64_t v : {offset, uint64_t{0}, generation, fan_size}) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  }
  out.replace(8, 8, std::string(version));
  return out;
}

void ExpectDataLoss(const absl::StatusOr<FileHeader>& decoded,
                    absl::string_view field, absl::string_view what) {
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  const std::string message(decoded.status().message());
  EXPECT_THAT(message, HasSubstr(kPath));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("header field ", field)));
  EXPECT_THAT(message, HasSubstr(what));
}

TEST(FileHeaderTest, EncodeWritesTheLayoutBigEndian) {
  FileHeader header;
  header.offset = 0x0102030405060708;
  header.generation = 7;
  header.fan_size = 64;
  EXPECT_EQ(header.Encode(), Bytes(0x0102030405060708, "00000001", 7, 64));
}

TEST(FileHeaderTest, DecodeReadsWhatEncodeWrote) {
  FileHeader header;
  header.offset = 4096;
  header.generation = FileHeader::kMaxGeneration;
  header.fan_size = 8 * 1024;
  // Bytes past the header (the fan-out table, records) are not read.
  const std::string bytes = header.Encode() + "trailing";
  absl::StatusOr<FileHeader> decoded = FileHeader::Decode(bytes, kPath);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->offset, 4096);
  EXPECT_EQ(decoded->generation, FileHeader::kMaxGeneration);
  EXPECT_EQ(decoded->fan_size, 8 * 1024);
}

TEST(FileHeaderTest, ForeignVersionIsDataLossNamingTheField) {
  const std::string bytes = Bytes(0, "00000002", 1, 0);
  ExpectDataLoss(FileHeader::Decode(bytes, kPath), "version",
                 "unsupported version '00000002' (expected 00000001)");
  ExpectDataLoss(FileHeader::DecodeRaw(bytes, kPath), "version",
                 "unsupported version");
  ExpectDataLoss(FileHeader::DecodeGetSet(bytes, kPath), "version",
                 "unsupported version");
}

TEST(FileHeaderTest, ValuesNoWriterProducesAreDataLossNamingTheField) {
  ExpectDataLoss(FileHeader::Decode(
                     Bytes(static_cast<uint64_t>(-8), "00000001", 1, 0), kPath),
                 "offset", "negative offset -8");
  ExpectDataLoss(FileHeader::Decode(
                     Bytes(0, "00000001", static_cast<uint64_t>(-1), 0), kPath),
                 "generation", "implausible generation -1");
  ExpectDataLoss(
      FileHeader::Decode(
          Bytes(0, "00000001", FileHeader::kMaxGeneration + 1, 0), kPath),
      "generation", "implausible generation");
  ExpectDataLoss(FileHeader::Decode(
                     Bytes(0, "00000001", 1, static_cast<uint64_t>(-8)), kPath),
                 "fan_size", "invalid fan-out size -8");
  ExpectDataLoss(FileHeader::Decode(Bytes(0, "00000001", 1, 12), kPath),
                 "fan_size", "invalid fan-out size 12");
}

TEST(FileHeaderTest, DecodeRawKeepsValuesAsStored) {
  absl::StatusOr<FileHeader> raw =
      FileHeader::DecodeRaw(Bytes(static_cast<uint64_t>(-40), "00000001",
                                  static_cast<uint64_t>(-3), 12),
                            kPath);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->offset, -40);
  EXPECT_EQ(raw->generation, -3);
  EXPECT_EQ(raw->fan_size, 12);
}

TEST(FileHeaderTest, DecodeGetSetReadsOnlyTheFirst24Bytes) {
  const std::string bytes = Bytes(16, "00000001", 5, 64);
  absl::StatusOr<FileHeader> decoded =
      FileHeader::DecodeGetSet(bytes.substr(0, FileHeader::kGetSetSize), kPath);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->offset, 16);
  EXPECT_EQ(decoded->generation, 5);
  EXPECT_EQ(decoded->fan_size, 0);
  // An invalid fan-out size lies outside those bytes.
  EXPECT_TRUE(
      FileHeader::DecodeGetSet(Bytes(16, "00000001", 5, 12), kPath).ok());
  ExpectDataLoss(FileHeader::DecodeGetSet(
                     Bytes(static_cast<uint64_t>(-1), "00000001", 5, 0), kPath),
                 "offset", "negative offset -1");
}

TEST(FileHeaderTest, TooFewBytesAreDataLoss) {
  const std::string bytes = Bytes(0, "00000001", 1, 0);
  for (size_t size : {size_t{0}, size_t{20}, FileHeader::kSize - 1}) {
    SCOPED_TRACE(size);
    absl::StatusOr<FileHeader> decoded =
        FileHeader::Decode(bytes.substr(0, size), kPath);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(decoded.status().message()),
                HasSubstr(absl::StrCat(kPath, ": truncated header: ", size,
                                       " bytes, expected 32")));
    EXPECT_FALSE(FileHeader::DecodeRaw(bytes.substr(0, size), kPath).ok());
  }
  EXPECT_FALSE(FileHeader::DecodeGetSet(
                   bytes.substr(0, FileHeader::kGetSetSize - 1), kPath)
                   .ok());
}

}  // namespace
}  // namespace kvindex
