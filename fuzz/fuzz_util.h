// Helpers shared by the fuzz targets in this package: a reader that turns the
// fuzzer's input into small integers and byte strings (never failing: past the
// end it yields zeros), and a check macro that reports a violated property and
// aborts, which libFuzzer and the corpus regression tests both turn into a
// failure.
//
// Not thread-safe; one FuzzInput per LLVMFuzzerTestOneInput call.
#ifndef KVINDEX_FUZZ_FUZZ_UTIL_H_
#define KVINDEX_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace fuzz {

// Consumes the input from the front.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const { return size_ - pos_; }
  bool empty() const { return pos_ >= size_; }

  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (static_cast<uint16_t>(U8()) << 8));
  }
  uint32_t U32() {
    const uint32_t lo = U16();
    return lo | (static_cast<uint32_t>(U16()) << 16);
  }
  uint64_t U64() {
    const uint64_t lo = U32();
    return lo | (static_cast<uint64_t>(U32()) << 32);
  }
  bool Bool() { return (U8() & 1) != 0; }
  // A value in [0, n) (n > 0), from one byte when n <= 256.
  uint32_t Below(uint32_t n) {
    if (n <= 256) return U8() % n;
    return U32() % n;
  }

  // Up to n bytes (fewer at the end of the input).
  absl::string_view Bytes(size_t n) {
    const size_t take = n < remaining() ? n : remaining();
    absl::string_view out(reinterpret_cast<const char*>(data_ + pos_), take);
    pos_ += take;
    return out;
  }
  // Exactly n bytes, zero-padded past the end of the input.
  std::string PaddedBytes(size_t n) {
    std::string out(Bytes(n));
    out.resize(n, '\0');
    return out;
  }
  absl::string_view Rest() { return Bytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

[[noreturn]] inline void Fail(const char* file, int line, const char* cond,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n  %s\n", file, line,
               cond, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

inline std::string Describe(const absl::Status& s) { return s.ToString(); }

// KVINDEX_FUZZ_VERBOSE=1 makes the targets narrate what they do (debugging a
// reproducer with the replay binary); off while fuzzing.
inline bool Verbose() {
  static const bool on = std::getenv("KVINDEX_FUZZ_VERBOSE") != nullptr;
  return on;
}

// Known bugs of the code under test, by name, that a campaign may want to step
// over to look for others: KVINDEX_FUZZ_TOLERATE=name1,name2. Unset (the
// regression tests, CI), every violation aborts.
inline bool Tolerated(absl::string_view bug) {
  const char* list = std::getenv("KVINDEX_FUZZ_TOLERATE");
  if (list == nullptr) return false;
  absl::string_view rest(list);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) == bug) return true;
    if (comma == absl::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

#define FUZZ_LOG(...)                                                  \
  do {                                                                 \
    if (::kvindex::fuzz::Verbose()) {                                  \
      std::fprintf(stderr, "%s\n", absl::StrCat(__VA_ARGS__).c_str()); \
    }                                                                  \
  } while (0)

}  // namespace fuzz
}  // namespace kvindex

// Aborts with `cond` and a detail string (anything convertible to std::string)
// when `cond` is false.
#define FUZZ_CHECK(cond, detail)                                             \
  do {                                                                       \
    if (!(cond))                                                             \
      ::kvindex::fuzz::Fail(__FILE__, __LINE__, #cond, std::string(detail)); \
  } while (0)

// Aborts unless `status` (an absl::Status) is OK, with "`what`: <status>" as
// the detail.
#define FUZZ_CHECK_OK(status, what)                                    \
  do {                                                                 \
    const ::absl::Status kvindex_fuzz_status = (status);               \
    if (!kvindex_fuzz_status.ok()) {                                   \
      ::kvindex::fuzz::Fail(                                           \
          __FILE__, __LINE__, #status " is OK",                        \
          ::absl::StrCat(what, ": ", kvindex_fuzz_status.ToString())); \
    }                                                                  \
  } while (0)

#endif  // KVINDEX_FUZZ_FUZZ_UTIL_H_
