// Key filter (filter/key_filter.h) from arbitrary bytes and from
// arbitrary key sets:
//  - mode 0: arbitrary bytes parsed as a filter for an arbitrary data file:
//    never a crash; a filter that parses answers queries within its blocks;
//  - mode 1: a filter built from input keys and hashes (any hash width) never
//    reports one of them absent, parses only for the data file it names, and
//    any single flipped bit makes it unusable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "filter/key_filter.h"
#include "fuzz/fuzz_util.h"

namespace kvindex {
namespace fuzz {
namespace {

FilterTarget TargetFrom(FuzzInput& in) {
  FilterTarget t;
  t.generation = static_cast<int64_t>(in.U64());
  t.records = in.U64();
  t.data_id = in.U64();
  return t;
}

void FuzzParse(FuzzInput& in) {
  const FilterTarget target = TargetFrom(in);
  const int hash_bits = static_cast<int>(in.U8() % 66);
  const std::string bytes(in.Bytes(in.remaining()));
  std::string why;
  auto filter = KeyFilter::Parse(bytes, target, hash_bits, &why);
  if (filter == nullptr) {
    FUZZ_CHECK(!why.empty(), "rejected without a reason");
    return;
  }
  for (uint64_t i = 0; i < 64; ++i) {
    (void)filter->MayContain(i * 0x9E3779B97F4A7C15ULL, ~i);
  }
}

void FuzzBuild(FuzzInput& in) {
  const int hash_bits = 1 + in.Below(64);
  const uint64_t mask =
      hash_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << hash_bits) - 1;
  const uint64_t extra = in.U8() % 8;
  const FilterTarget target = TargetFrom(in);
  struct Key {
    std::string bytes;
    uint64_t hash;
  };
  std::vector<Key> keys;
  while (in.remaining() >= 3 && keys.size() < 4096) {
    Key k;
    k.bytes = std::string(in.Bytes(1 + in.U8() % 24));
    k.hash = (in.Bool() ? in.U64() : in.U16() * 0x0101010101010101ULL) & mask;
    keys.push_back(std::move(k));
  }
  KeyFilterBuilder builder(keys.size() + extra, hash_bits);
  for (const Key& k : keys) builder.Add(k.bytes, k.hash);
  const std::string bytes = builder.Finish(target);

  std::string why;
  auto filter = KeyFilter::Parse(bytes, target, hash_bits, &why);
  FUZZ_CHECK(filter != nullptr, absl::StrCat("own filter rejected: ", why));
  for (const Key& k : keys) {
    FUZZ_CHECK(filter->MayContain(k.hash, KeyFingerprint(k.bytes)),
               absl::StrCat("false negative for a key of ", k.bytes.size(),
                            " bytes, hash ", k.hash));
  }
  FilterTarget other = target;
  other.records ^= 1;
  FUZZ_CHECK(KeyFilter::Parse(bytes, other, hash_bits) == nullptr,
             "used for another data file");
  FUZZ_CHECK(KeyFilter::Parse(bytes, target, hash_bits % 64 + 1) == nullptr,
             "used with another hash width");
  const size_t at = (keys.size() * 7919 + extra) % bytes.size();
  std::string damaged = bytes;
  damaged[at] = static_cast<char>(damaged[at] ^ (1 << (extra % 8)));
  FUZZ_CHECK(KeyFilter::Parse(damaged, target, hash_bits) == nullptr,
             absl::StrCat("bit flip at byte ", at, " not detected"));
}

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvindex::fuzz::FuzzInput in(data, size);
  if (in.U8() % 2 == 0) {
    kvindex::fuzz::FuzzParse(in);
  } else {
    kvindex::fuzz::FuzzBuild(in);
  }
  return 0;
}
