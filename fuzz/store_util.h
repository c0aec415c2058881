// Helpers for the fuzz targets that run the whole index over a MemEnv: the
// schemas they pick from, error-shape checks, full observations of an
// instance, and the setup shared by the structured fuzzers (api_fuzzer,
// recovery_fuzzer): their keys, values, configuration byte, filter predicate
// and main loop.
#ifndef KVINDEX_FUZZ_STORE_UTIL_H_
#define KVINDEX_FUZZ_STORE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "fuzz/fuzz_util.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "io/env.h"
#include "testing/keys.h"

namespace kvindex {
namespace fuzz {

// The top 16 bits of the hash are the first two key bytes: the fuzzer can build
// hash-sorted data files and equal-hash neighbours by hand.
inline uint64_t PrefixHash16(absl::string_view key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  const uint64_t hi = key.size() > 0 ? p[0] : 0;
  const uint64_t lo = key.size() > 1 ? p[1] : 0;
  return (hi << 8) | lo;
}

// Every error an index operation returns must carry a message; errors about the
// store's files must name them (all paths live under `root`).
inline void CheckStoreError(const absl::Status& s, const std::string& root,
                            const char* what) {
  FUZZ_CHECK(!s.ok(), what);
  FUZZ_CHECK(!s.message().empty(),
             absl::StrCat(what, ": error without a message: ", Describe(s)));
  if (s.code() == absl::StatusCode::kDataLoss) {
    FUZZ_CHECK(absl::StrContains(s.message(), root),
               absl::StrCat(
                   what, ": kDataLoss does not name the file: ", Describe(s)));
  }
}

using Visits = std::vector<std::pair<std::string, std::string>>;

// All bindings an Iter call visits, in order.
inline absl::StatusOr<Visits> IterAll(const RawIndex& index) {
  Visits visits;
  visits.reserve(16);  // the structured fuzzers' 8 keys, without regrowing
  absl::Status s = index.Iter([&](absl::string_view k, absl::string_view v) {
    visits.emplace_back(std::string(k), std::string(v));
  });
  if (!s.ok()) return s;
  return visits;
}

// The bindings shown: the first visit of each key.
inline std::map<std::string, std::string> FirstVisits(const Visits& visits) {
  std::map<std::string, std::string> shown;
  for (const auto& kv : visits) shown.emplace(kv.first, kv.second);
  return shown;
}

// The value `key` shows: that of its first visit; nullptr if not visited. A
// lookup without building FirstVisits (a few keys: a scan is cheap).
inline const std::string* FirstVisit(const Visits& visits,
                                     absl::string_view key) {
  for (const auto& kv : visits) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

// Find through the raw API into a string; absent -> false.
inline absl::StatusOr<bool> FindValue(const RawIndex& index,
                                      absl::string_view key,
                                      std::string* value) {
  const size_t n = index.schema().value_size;
  std::string buf(n + 1, '\0');  // never empty: a valid pointer even for n == 0
  absl::StatusOr<bool> found = index.Find(key, &buf[0]);
  value->assign(buf.data(), found.ok() && *found ? n : 0);
  return found;
}

// Compact printable form of bytes (for failure messages).
inline std::string Hex(absl::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Keys and values of the structured fuzzers: key i is 8 bytes starting with the
// byte i (so test::TinyHash and PrefixHash16 collide on purpose), values are
// 8-byte big-endian counters.
inline constexpr size_t kOpKeySize = 8;
inline constexpr size_t kOpValueSize = 8;

inline std::string OpKey(int i) {
  std::string k(kOpKeySize, '\0');
  k[0] = static_cast<char>(i);
  k[1] = 'k';
  k[2] = static_cast<char>('0' + i);
  return k;
}

inline std::string OpValue(uint64_t n) {
  std::string v(kOpValueSize, '\0');
  for (size_t i = 0; i < kOpValueSize; ++i) {
    v[kOpValueSize - 1 - i] = static_cast<char>(n >> (8 * i));
  }
  return v;
}

// OpKey(0) .. OpKey(n - 1).
inline std::vector<std::string> OpKeys(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(OpKey(i));
  return keys;
}

// One of four hashes, chosen by the input: XXH3, OCaml's, and two that collide.
inline Schema OpSchema(int sel) {
  switch (sel & 3) {
    case 0:
      return test::MakeSchema(kOpKeySize, kOpValueSize, 64, &Xxh3KeyHash64);
    case 1:
      return test::MakeSchema(kOpKeySize, kOpValueSize, kOcamlHashBits,
                              &OcamlKeyHash);
    case 2:
      return test::MakeSchema(kOpKeySize, kOpValueSize, 2, &test::TinyHash);
    default:
      return test::MakeSchema(kOpKeySize, kOpValueSize, 16, &PrefixHash16);
  }
}

// The first input byte of a structured fuzzer, as far as both read it:
//   bits 0-1: key hash (OpSchema)    bits 2-3: log_size - 1
//   bit 4:    an LRU of `lru_size`   bit 5:    Throttle::kOvercommitMemory
// Returns the options of a writer over `env`.
inline Options OpOptions(uint8_t cfg, Env* env, size_t lru_size) {
  Options options;
  options.env = env;
  options.log_size = 1 + ((cfg >> 2) & 3);
  options.lru_size = (cfg >> 4) & 1 ? lru_size : 0;
  options.throttle =
      (cfg >> 5) & 1 ? Throttle::kOvercommitMemory : Throttle::kBlockWrites;
  return options;
}

// The filter of the structured fuzzers, picked by the 3 bits of `a`: keeps the
// bindings (k, v) for which bit (a & 3) of k[0] ^ v[last] is set (a & 4: is
// clear).
class KeepByBit {
 public:
  explicit KeepByBit(int a) : bit_(a & 3), invert_((a & 4) != 0) {}

  int bit() const { return bit_; }
  bool inverted() const { return invert_; }

  bool operator()(absl::string_view key, absl::string_view value) const {
    const unsigned x = static_cast<unsigned char>(key[0]) ^
                       static_cast<unsigned char>(value[kOpValueSize - 1]);
    return (((x >> bit_) & 1) != 0) != invert_;
  }

 private:
  int bit_;
  bool invert_;
};

// LLVMFuzzerTestOneInput of a structured fuzzer: a Driver built from the first
// input byte starts, consumes the rest one operation per Step, and finishes.
// Inputs over `max_size` bytes are skipped, to keep each run short.
template <typename Driver>
int RunDriver(const uint8_t* data, size_t size, size_t max_size) {
  if (size > max_size) return 0;
  FuzzInput in(data, size);
  Driver driver(in.U8());
  driver.Start();
  while (!in.empty()) driver.Step(in);
  driver.Finish();
  return 0;
}

}  // namespace fuzz
}  // namespace kvindex

#endif  // KVINDEX_FUZZ_STORE_UTIL_H_
