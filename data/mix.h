// Mix64: spreads a key hash over all 64 bits before its bits pick a position
// in a hash table. Key hashes may have few significant bits (30 for OCaml
// stores, fewer in tests), and the tables (the log's, the LRU's) take their
// positions from some of the bits, so every input bit must reach every output
// bit.
//
// This is MurmurHash3's 64-bit finaliser (fmix64): a bijection, so distinct
// hashes stay distinct.
#ifndef KVINDEX_DATA_MIX_H_
#define KVINDEX_DATA_MIX_H_

#include <cstdint>

namespace kvindex {

inline uint64_t Mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace kvindex

#endif  // KVINDEX_DATA_MIX_H_
