// fsync_patterns: what one durable write costs on this machine's file system
// in the write patterns a log can use, measured on plain files, alternating
// the patterns round by round so that they share the disk's moods (its fsync
// rate moves by a factor of two or more within minutes in a virtual machine).
//
//   ./bazelw run -c opt //bench:fsync_patterns -- [--dir D] [--ops N]
//                                                 [--rounds R]
//
// Patterns (each op: a 45-byte record, then fdatasync):
//   append               the record appended (index_bench's fsync_baseline)
//   append+offset        and an 8-byte offset written at byte 0: a log's flush
//   reserved+offset      the same in a file grown ahead with fallocate(2)
//   kept+offset          the same with blocks reserved past the file's end
//                        (fallocate(2), FALLOC_FL_KEEP_SIZE): the file's size
//                        and bytes stay those of append+offset
//   journal              append+offset left unsynced, and a 61-byte frame
//                        (16-byte head, the record again) appended to a
//                        second file grown ahead, which alone is fdatasynced:
//                        a log with its journal (Options::log_checksums)
//
// Prints ops/s per pattern and round, then each pattern's median and its
// ratio to the median of `append`.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr off_t kReserve = off_t{64} << 20;

[[noreturn]] void Die(const std::string& what) {
  std::perror(what.c_str());
  std::exit(1);
}

int OpenFresh(const std::string& path, bool reserve, bool keep_size = false) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) Die(path);
  char header[32] = {};
  if (::pwrite(fd, header, sizeof(header), 0) != sizeof(header)) Die(path);
  if (reserve &&
      ::fallocate(fd, keep_size ? FALLOC_FL_KEEP_SIZE : 0, 0, kReserve) != 0) {
    Die("fallocate");
  }
  if (::fsync(fd) != 0) Die("fsync");
  return fd;
}

enum class Pattern {
  kAppend,
  kAppendOffset,
  kReservedOffset,
  kKeptOffset,
  kJournal
};

const char* Name(Pattern p) {
  switch (p) {
    case Pattern::kAppend:
      return "append";
    case Pattern::kAppendOffset:
      return "append+offset";
    case Pattern::kReservedOffset:
      return "reserved+offset";
    case Pattern::kKeptOffset:
      return "kept+offset";
    case Pattern::kJournal:
      return "journal";
  }
  return "?";
}

double Run(Pattern p, const std::string& dir, int ops) {
  const bool journal = p == Pattern::kJournal;
  const std::string log_path = dir + "/fsync_patterns.log";
  const std::string journal_path = dir + "/fsync_patterns.sum";
  const int log = OpenFresh(
      log_path, p == Pattern::kReservedOffset || p == Pattern::kKeptOffset,
      /*keep_size=*/p == Pattern::kKeptOffset);
  const int side = journal ? OpenFresh(journal_path, /*reserve=*/true) : -1;
  char record[45];
  std::memset(record, 'r', sizeof(record));
  // A journal frame: end and sum, then the record again.
  char frame[16 + sizeof(record)];
  std::memset(frame, 'f', sizeof(frame));
  uint64_t end = 32;
  uint64_t journal_end = 64;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < ops; ++i) {
    if (::pwrite(log, record, sizeof(record), static_cast<off_t>(end)) !=
        sizeof(record)) {
      Die("pwrite");
    }
    end += sizeof(record);
    if (p != Pattern::kAppend &&
        ::pwrite(log, &end, sizeof(end), 0) != sizeof(end)) {
      Die("pwrite");
    }
    if (journal) {
      if (::pwrite(side, frame, sizeof(frame),
                   static_cast<off_t>(journal_end)) != sizeof(frame)) {
        Die("pwrite");
      }
      journal_end += sizeof(frame);
    }
    if (::fdatasync(journal ? side : log) != 0) Die("fdatasync");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ::close(log);
  ::unlink(log_path.c_str());
  if (journal) {
    ::close(side);
    ::unlink(journal_path.c_str());
  }
  return ops / seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  int ops = 2000;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--ops") {
      ops = std::atoi(argv[i + 1]);
    } else if (flag == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (ops <= 0 || rounds <= 0) {
    std::fprintf(stderr, "--ops and --rounds must be positive\n");
    return 2;
  }
  const Pattern patterns[] = {Pattern::kAppend, Pattern::kAppendOffset,
                              Pattern::kReservedOffset, Pattern::kKeptOffset,
                              Pattern::kJournal};
  std::vector<std::vector<double>> rates(std::size(patterns));
  std::printf(
      "fsync_patterns: %d ops per pattern and round, %d rounds, in %s\n", ops,
      rounds, dir.c_str());
  for (int r = 0; r < rounds; ++r) {
    std::printf("round %d:", r + 1);
    for (size_t p = 0; p < std::size(patterns); ++p) {
      rates[p].push_back(Run(patterns[p], dir, ops));
      std::printf("  %s %.0f", Name(patterns[p]), rates[p].back());
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  const double append = Median(rates[0]);
  std::printf("%-20s %12s %10s\n", "pattern", "median/s", "x append");
  for (size_t p = 0; p < std::size(patterns); ++p) {
    const double m = Median(rates[p]);
    std::printf("%-20s %12.0f %9.2fx\n", Name(patterns[p]), m, m / append);
  }
  return 0;
}
