#include "tests/index_model_large_pool.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "data/schema.h"
#include "testing/keys.h"

namespace kvindex {
namespace index_model_test {
namespace {

// A fixed sequence (splitmix64), so that the table is the same in every run.
class Sequence {
 public:
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_ = 20240601;
};

// The hash of each key number (see the header).
std::vector<uint32_t> BuildHashTable() {
  std::vector<uint32_t> hashes;
  const auto run = [&](uint64_t hash, int length) {
    for (int i = 0; i < length && hashes.size() < kLargeNumKeys; ++i) {
      hashes.push_back(static_cast<uint32_t>(hash));
    }
  };
  constexpr uint64_t kTop = (uint64_t{1} << kLargeHashBits) - 1;
  constexpr int kEdges = 1 << kLargeEdgeBits;
  constexpr uint64_t kBucket = uint64_t{1} << (kLargeHashBits - kLargeEdgeBits);
  for (int m = 0; m < kEdges; ++m) {
    const uint64_t edge = m * kBucket;
    if (m == kEdges / 2) {
      run(edge - 1, kLargeLongRun);  // a long run ending at the middle edge
      run(edge, kLargeLongRun);      // and one opening the bucket after it
    } else if (m > 0) {
      run(edge - 1, 1 + m % 5);
    }
    if (m != kEdges / 2) run(edge, 1 + (m * 3) % 6);
    run(edge + 1, 1 + (m * 7) % 4);
  }
  Sequence random;
  run(random.Next() & kTop, kLargeLongRun);  // a long run inside a bucket
  run(kTop, 3);
  while (hashes.size() < kLargeNumKeys) {
    run(random.Next() & kTop, 1 + static_cast<int>(random.Next() % 4));
  }
  std::sort(hashes.begin(), hashes.end());
  return hashes;
}

const std::vector<uint32_t>& HashTable() {
  static const std::vector<uint32_t>* const table =
      new std::vector<uint32_t>(BuildHashTable());
  return *table;
}

// The number of a key "k0001234", or -1.
int KeyNumber(absl::string_view key) {
  if (key.size() != kLargeKeySize || key[0] != 'k') return -1;
  int i = 0;
  for (char c : key.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return -1;
    i = i * 10 + (c - '0');
  }
  return i < kLargeNumKeys ? i : -1;
}

}  // namespace

std::string LargeKey(int i) { return absl::StrFormat("k%07d", i); }

std::string LargeValue(int i) {
  std::string value = absl::StrFormat("v%06d", i);
  value.resize(kLargeValueSize, '.');
  return value;
}

uint64_t LargePoolHash(absl::string_view key) {
  const int i = KeyNumber(key);
  if (i < 0) return Xxh3Hash(key, kLargeHashBits);
  return HashTable()[i];
}

const Pool& LargePool() {
  static const Pool* const pool = [] {
    auto* p = new Pool;
    p->name = "large";
    p->schema = test::MakeSchema(kLargeKeySize, kLargeValueSize, kLargeHashBits,
                                 &LargePoolHash);
    p->num_keys = kLargeNumKeys;
    p->num_values = kLargeNumValues;
    p->key = &LargeKey;
    p->value = &LargeValue;
    p->ghost_period = 8;
    return p;
  }();
  return *pool;
}

}  // namespace index_model_test
}  // namespace kvindex
