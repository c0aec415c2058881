// journal_fuzzer: a log and its journal (io/flush_sums.h, docs/format.md §9b)
// built from the input: frames whole, damaged or torn, over log bytes that
// hold their records or not, under an offset anywhere. Then a reader opens
// the log, then a writer, then a writer again after a power cut that keeps
// nothing unsynced.
//
// Input grammar:
//   input := cfg:u8 start:u8 [offset:u8] frame*
//   cfg    bits 0-1: the log's offset: 0 the end of the frames, 1 `start`,
//                    2 the end of the records the log holds from the start
//                    on, 3 the next byte (in records)
//          bit 2:    the journal names another generation
//          bit 3:    the journal is followed by zeros (grown ahead)
//   start  := records below the journal's start (start % 8), in the log
//   frame  := o:u8 records:(k * 8 bytes), k = (o & 3) + 1
//          o bit 2:    the log holds the frame's records (else zeros or the
//                      bytes of o bit 3: the records with their first byte
//                      changed)
//          o bits 4-6: 0-3 whole; 4 its sum damaged, 5 a record byte
//                      damaged, 6 its end damaged, 7 torn (the journal ends
//                      inside it, at a length from the next byte)
//
// The oracle, from the frames as built: where the journal applies (its
// generation, and a start within the log's usable offset), the records are
// the log's below `start`, then those of the whole frames up to the first
// damaged or torn one, nothing past them, whatever the log holds there; a
// reader opened first shows exactly what the writer's open leaves, and that
// stays after a power cut. Where it does not apply, the log is read as it is.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "io/env.h"
#include "io/file_header.h"
#include "io/flush_sums.h"
#include "io/index_file.h"
#include "io/mem_env.h"

namespace kvindex {
namespace fuzz {
namespace {

constexpr size_t kEntry = 8;
constexpr int64_t kGeneration = 3;
constexpr char kDir[] = "/fuzz/index";
constexpr char kLog[] = "/fuzz/index/log";

struct Built {
  std::string log_records;  // the log file's bytes past its header
  uint64_t offset = 0;      // the log header's offset
  bool applies = false;     // the journal names this log
  uint64_t start = 0;
  std::string vouched;  // the whole frames' records, up to the first bad
};

std::string JournalHeader(int64_t generation, uint64_t start) {
  std::string h(FlushSums::kHeaderSize, '\0');
  std::memcpy(&h[0], "kvlogjnl", 8);
  absl::big_endian::Store64(&h[8], static_cast<uint64_t>(generation));
  absl::big_endian::Store64(&h[16], IndexFile::kHeaderSize);
  absl::big_endian::Store64(&h[24], start);
  absl::big_endian::Store64(&h[56], XXH3_64bits(h.data(), 56));
  return h;
}

Built Build(FuzzInput& in, MemEnv* env) {
  Built b;
  const uint8_t cfg = in.U8();
  b.start = (in.U8() % 8) * kEntry;
  const uint8_t offset_byte = (cfg & 3) == 3 ? in.U8() : 0;
  const bool grown = (cfg & 8) != 0;
  b.log_records = in.PaddedBytes(static_cast<size_t>(b.start));
  b.applies = (cfg & 4) == 0;
  std::string journal =
      JournalHeader(b.applies ? kGeneration : kGeneration + 1, b.start);
  uint64_t end = b.start;
  uint64_t held_end = b.start;  // the log holds every record below it
  bool holding = true;
  bool intact = true;  // no damaged or torn frame yet
  while (!in.empty()) {
    const uint8_t o = in.U8();
    const size_t n = ((o & 3) + 1) * kEntry;
    const std::string records = in.PaddedBytes(n);
    const bool held = (o & 4) != 0;
    const int kind = (o >> 4) & 7;
    std::string frame(FlushSums::kFrameHeaderSize, '\0');
    absl::big_endian::Store64(&frame[0], end + n);
    absl::big_endian::Store64(&frame[8],
                              XXH3_64bits_withSeed(records.data(), n, end));
    frame += records;
    if (kind == 4)
      frame[8 + in.Below(8)] ^= static_cast<char>(1 + in.Below(255));
    if (kind == 5) {
      frame[FlushSums::kFrameHeaderSize + in.Below(static_cast<uint32_t>(n))] ^=
          static_cast<char>(1 + in.Below(255));
    }
    if (kind == 6) frame[in.Below(8)] ^= static_cast<char>(1 + in.Below(255));
    bool damaged = kind >= 4 && kind < 7;
    if (kind == 7) {
      const size_t cut = in.Below(static_cast<uint32_t>(frame.size()));
      // A tear whose lost bytes were zeros, followed by zeros, is no tear.
      damaged =
          !grown || frame.find_first_not_of('\0', cut) != std::string::npos;
      frame.resize(cut);
    }
    journal += frame;
    if (damaged) intact = false;
    if (intact) b.vouched += records;
    // The log's bytes at the frame's place.
    std::string at_place = records;
    if (!held) {
      if ((o & 8) != 0) {
        at_place[0] = static_cast<char>(at_place[0] ^ 0x5a);
      } else {
        at_place.assign(n, '\0');
      }
    }
    b.log_records += at_place;
    if (holding && held) {
      held_end = end + n;
    } else {
      holding = false;
    }
    end += n;
    if (kind == 7) break;  // the journal ends here
  }
  if (grown) journal += std::string(4096, '\0');
  switch (cfg & 3) {
    case 0:
      b.offset = end;
      break;
    case 1:
      b.offset = b.start;
      break;
    case 2:
      b.offset = held_end;
      break;
    default:
      b.offset = (offset_byte % 64) * kEntry;
  }
  FileHeader header;
  header.offset = static_cast<int64_t>(b.offset);
  header.generation = kGeneration;
  env->SetContents(kLog, header.Encode() + b.log_records);
  env->SetContents(FlushSums::PathFor(kLog), journal);
  return b;
}

std::string Shown(const IndexFile& file) {
  std::string out(file.offset(), '\0');
  size_t n = 0;
  const absl::Status read =
      file.Read(0, out.size(), out.empty() ? nullptr : &out[0], &n);
  FUZZ_CHECK(read.ok(), read.ToString());
  out.resize(n);
  return out;
}

void Run(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  MemEnv env;
  FUZZ_CHECK(env.CreateDirs(kDir).ok(), "mkdir");
  FUZZ_CHECK(env.SyncDir(kDir).ok(), "syncdir");
  const Built b = Build(in, &env);

  // What the log shows as it is: the whole records under its offset.
  const uint64_t usable =
      std::min<uint64_t>(b.offset, b.log_records.size()) / kEntry * kEntry;
  const bool applies = b.applies && b.start <= usable;
  const std::string expected =
      applies ? b.log_records.substr(0, b.start) + b.vouched
              : b.log_records.substr(0, usable);
  FUZZ_LOG("offset ", b.offset, " usable ", usable, " start ", b.start,
           applies ? " applies" : " does not apply", ", expected ",
           expected.size(), " bytes");

  absl::StatusOr<std::unique_ptr<IndexFile>> reader =
      IndexFile::OpenReadOnly(&env, kLog, kEntry);
  FUZZ_CHECK(reader.ok() && *reader != nullptr, reader.status().ToString());
  const absl::Status capped = (*reader)->CapToFlushSums();
  FUZZ_CHECK(capped.ok(), capped.ToString());
  const std::string by_reader = Shown(**reader);
  FUZZ_CHECK(by_reader == expected,
             absl::StrCat("the reader shows ", absl::CEscape(by_reader),
                          ", expected ", absl::CEscape(expected)));

  IndexFile::ReadWriteOptions options;
  options.entry_size = kEntry;
  absl::StatusOr<std::unique_ptr<IndexFile>> writer =
      IndexFile::OpenReadWrite(&env, kLog, options);
  FUZZ_CHECK(writer.ok(), writer.status().ToString());
  const absl::Status started = (*writer)->StartFlushSums();
  FUZZ_CHECK(started.ok(), started.ToString());
  const std::string by_writer = Shown(**writer);
  FUZZ_CHECK(by_writer == expected,
             absl::StrCat("the writer shows ", absl::CEscape(by_writer),
                          ", expected ", absl::CEscape(expected)));
  // The reader opened first still shows the same records.
  FUZZ_CHECK((*reader)->ReadHeader().ok(), "reading the header");
  FUZZ_CHECK(Shown(**reader) == expected, "the reader changed its records");
  writer->reset();
  reader->reset();

  // The writer's open made what it shows durable.
  CrashOptions lose_everything_unsynced;
  lose_everything_unsynced.keep_unsynced_prefix = false;
  env.Restart(lose_everything_unsynced);
  writer = IndexFile::OpenReadWrite(&env, kLog, options);
  FUZZ_CHECK(writer.ok(), writer.status().ToString());
  FUZZ_CHECK((*writer)->StartFlushSums().ok(), "reopening");
  FUZZ_CHECK(Shown(**writer) == expected, "a power cut changed the records");
}

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvindex::fuzz::Run(data, size);
  return 0;
}
