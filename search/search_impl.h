// Implementation of InterpolationSearch (search/search.h). Included by search.h
// only.
#ifndef KVINDEX_SEARCH_SEARCH_IMPL_H_
#define KVINDEX_SEARCH_SEARCH_IMPL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/strings/string_view.h"
#include "data/schema.h"

namespace kvindex {
namespace search_internal {

// What one read of a record tells the search.
struct Probe {
  uint64_t hash;
  bool match;  // the record's key is the searched key
};

// Whether a record's key bytes equal `key` (key_size bytes each).
inline bool KeyEquals(const char* record, const char* key, size_t key_size) {
  if (key_size >= 8) {
    uint64_t a, b;
    std::memcpy(&a, record, 8);
    std::memcpy(&b, key, 8);
    if (a != b) return false;
    return std::memcmp(record + 8, key + 8, key_size - 8) == 0;
  }
  return std::memcmp(record, key, key_size) == 0;
}

template <typename Array>
Probe ProbeAt(Array& array, const Schema& schema, absl::string_view key,
              uint64_t key_hash, uint64_t i) {
  // The pointer is only valid until the next Get/Prefetch: use it right away.
  const char* record = array.Get(i);
  Probe p;
  // Comparing the key first spares the hash of the record that holds it (the
  // last probe of a successful search); the hash costs far more than a
  // mismatch, which usually shows in the first 8 bytes.
  if (KeyEquals(record, key.data(), schema.key_size)) {
    p.hash = key_hash;
    p.match = true;
    return p;
  }
  p.hash = schema.hash(EntryKey(schema, record));
  p.match = false;
  return p;
}

// Record i has the key's hash but not the key. Records with equal hashes are
// adjacent in no particular order, and the run may cross the search bounds, so
// walk both ways while the hash stays equal, limited only by the array.
template <typename Array>
std::optional<uint64_t> LookAround(Array& array, const Schema& schema,
                                   absl::string_view key, uint64_t key_hash,
                                   uint64_t i) {
  for (uint64_t j = i; j > 0;) {
    --j;
    const Probe p = ProbeAt(array, schema, key, key_hash, j);
    if (p.hash != key_hash) break;
    if (p.match) return j;
  }
  const uint64_t size = array.size();
  for (uint64_t j = i + 1; j < size; ++j) {
    const Probe p = ProbeAt(array, schema, key, key_hash, j);
    if (p.hash != key_hash) break;
    if (p.match) return j;
  }
  return std::nullopt;
}

template <typename Array>
std::optional<uint64_t> Found(Array& array, const Schema& schema,
                              absl::string_view key, uint64_t key_hash,
                              uint64_t i, const Probe& p) {
  if (p.match) return i;
  return LookAround(array, schema, key, key_hash, i);
}

// Where hash `h` should sit strictly between records lo and hi, whose hashes
// are h_lo < h < h_hi (so hi - lo >= 2): linear interpolation, rounded to the
// nearest index (halves down, like the OCaml library), clamped into (lo, hi).
// Differences of hashes are taken in uint64_t (no overflow since h_lo < h <
// h_hi) and only then converted, so 64-bit hashes are fine.
inline uint64_t Interpolate(uint64_t lo, uint64_t h_lo, uint64_t hi,
                            uint64_t h_hi, uint64_t h) {
  const long double fraction = static_cast<long double>(h - h_lo) /
                               static_cast<long double>(h_hi - h_lo);
  const long double span = static_cast<long double>(hi - lo);
  const long double step = std::ceil(fraction * span - 0.5L);
  uint64_t offset;
  if (!(step >= 1.0L)) {  // also catches NaN
    offset = 1;
  } else if (step >= span - 1.0L) {
    offset = hi - lo - 1;
  } else {
    offset = static_cast<uint64_t>(step);
  }
  if (offset < 1) offset = 1;
  if (offset > hi - lo - 1) offset = hi - lo - 1;
  return lo + offset;
}

}  // namespace search_internal

template <typename Array>
std::optional<uint64_t> InterpolationSearch(Array& array, const Schema& schema,
                                            absl::string_view key,
                                            uint64_t key_hash, uint64_t low,
                                            uint64_t high) {
  using search_internal::Found;
  using search_internal::Probe;
  using search_internal::ProbeAt;
  const uint64_t size = array.size();
  if (size == 0 || key.size() != schema.key_size) return std::nullopt;
  if (high >= size) high = size - 1;
  if (low > high) return std::nullopt;
  array.Prefetch(low, high);

  // Invariant: lo <= hi, and the hashes of records lo and hi are known. Unlike
  // the OCaml version, the narrowed bounds are the probed records themselves
  // (whose hashes are known), so no record is read twice and the ends never
  // have equal hashes once both differ from key_hash (no 0/0).
  uint64_t lo = low;
  uint64_t hi = high;
  Probe p_lo = ProbeAt(array, schema, key, key_hash, lo);
  if (p_lo.hash == key_hash) {
    return Found(array, schema, key, key_hash, lo, p_lo);
  }
  if (p_lo.hash > key_hash || lo == hi) return std::nullopt;
  Probe p_hi = ProbeAt(array, schema, key, key_hash, hi);
  if (p_hi.hash == key_hash) {
    return Found(array, schema, key, key_hash, hi, p_hi);
  }
  if (p_hi.hash < key_hash) return std::nullopt;
  // Now hash(lo) < key_hash < hash(hi).
  while (hi - lo >= 2) {
    const uint64_t i =
        search_internal::Interpolate(lo, p_lo.hash, hi, p_hi.hash, key_hash);
    const Probe p = ProbeAt(array, schema, key, key_hash, i);
    if (p.hash == key_hash) return Found(array, schema, key, key_hash, i, p);
    if (p.hash < key_hash) {
      lo = i;
      p_lo = p;
    } else {
      hi = i;
      p_hi = p;
    }
  }
  return std::nullopt;
}

namespace search_internal {

// One step of BoundedInterpolationSearch: the next record to read (shifted by
// one, like lo and hi) strictly between lo and hi, whose hashes are h_lo < h <
// h_hi (so hi - lo >= 2).
inline uint64_t BoundedGuess(uint64_t lo, uint64_t hi, double h_lo, double h_hi,
                             double h) {
  const double span = static_cast<double>(hi - lo);
  double step = std::floor((h - h_lo) / (h_hi - h_lo) * span + 0.5);
  if (!(step >= 1.0)) step = 1.0;  // also catches NaN
  if (step > span - 1.0) step = span - 1.0;
  return lo + static_cast<uint64_t>(step);
}

}  // namespace search_internal

inline std::optional<uint64_t> BoundedFirstProbe(uint64_t size, uint64_t first,
                                                 uint64_t last,
                                                 uint64_t hash_min,
                                                 uint64_t hash_max,
                                                 uint64_t key_hash) {
  if (size == 0 || key_hash < hash_min || key_hash > hash_max) {
    return std::nullopt;
  }
  if (last >= size) last = size - 1;
  if (first > last) return std::nullopt;
  return search_internal::BoundedGuess(first, last + 2,
                                       static_cast<double>(hash_min) - 1.0,
                                       static_cast<double>(hash_max) + 1.0,
                                       static_cast<double>(key_hash)) -
         1;
}

inline ProbeRange BoundedLikelyProbesAround(uint64_t first_probe, uint64_t size,
                                            uint64_t first, uint64_t last,
                                            uint64_t hash_min,
                                            uint64_t hash_max,
                                            uint64_t key_hash) {
  if (last >= size) last = size - 1;
  // The rank of a hash at fraction p of the range, among m uniform hashes, is
  // binomial: its standard deviation is sqrt(m p (1 - p)).
  const double m = static_cast<double>(last - first + 1);
  const double p =
      (static_cast<double>(key_hash) - static_cast<double>(hash_min) + 1.0) /
      (static_cast<double>(hash_max) - static_cast<double>(hash_min) + 2.0);
  const double spread = 2.0 * std::sqrt(m * p * (1.0 - p));
  // Bounded by m, so the cast cannot overflow; NaN (not expected) gives 0.
  const uint64_t r =
      spread >= 1.0 ? static_cast<uint64_t>(std::ceil(std::min(spread, m))) : 1;
  ProbeRange range;
  range.first_probe = first_probe;
  range.low = first_probe - first >= r ? first_probe - r : first;
  range.high = last - first_probe >= r ? first_probe + r : last;
  return range;
}

inline std::optional<ProbeRange> BoundedLikelyProbes(
    uint64_t size, uint64_t first, uint64_t last, uint64_t hash_min,
    uint64_t hash_max, uint64_t key_hash) {
  const std::optional<uint64_t> probe =
      BoundedFirstProbe(size, first, last, hash_min, hash_max, key_hash);
  if (!probe.has_value()) return std::nullopt;
  return BoundedLikelyProbesAround(*probe, size, first, last, hash_min,
                                   hash_max, key_hash);
}

template <typename Array>
std::optional<uint64_t> BoundedInterpolationSearch(
    Array& array, const Schema& schema, absl::string_view key,
    uint64_t key_hash, uint64_t first, uint64_t last, uint64_t hash_min,
    uint64_t hash_max) {
  using search_internal::Found;
  using search_internal::Probe;
  using search_internal::ProbeAt;
  const uint64_t size = array.size();
  if (size == 0 || key.size() != schema.key_size) return std::nullopt;
  if (key_hash < hash_min || key_hash > hash_max) return std::nullopt;
  if (last >= size) last = size - 1;
  if (first > last) return std::nullopt;
  // The ends are virtual records just outside [first, last], with hashes just
  // outside [hash_min, hash_max], so the first guess reads no end record.
  // Indices are kept shifted by one, so that first - 1 cannot wrap.
  uint64_t lo = first;     // (first - 1) + 1
  uint64_t hi = last + 2;  // (last + 1) + 1
  double h_lo = static_cast<double>(hash_min) - 1.0;
  double h_hi = static_cast<double>(hash_max) + 1.0;
  const double h = static_cast<double>(key_hash);
  while (hi - lo >= 2) {
    const uint64_t i = search_internal::BoundedGuess(lo, hi, h_lo, h_hi, h);
    const Probe p = ProbeAt(array, schema, key, key_hash, i - 1);
    if (p.hash == key_hash) {
      return Found(array, schema, key, key_hash, i - 1, p);
    }
    if (p.hash < key_hash) {
      lo = i;
      h_lo = static_cast<double>(p.hash);
    } else {
      hi = i;
      h_hi = static_cast<double>(p.hash);
    }
  }
  return std::nullopt;
}

template <typename Array>
std::optional<uint64_t> FindKeyInRange(Array& array, const Schema& schema,
                                       absl::string_view key,
                                       const ProbeRange& range) {
  const uint64_t size = array.size();
  if (size == 0 || key.size() != schema.key_size) return std::nullopt;
  const uint64_t low = range.low;
  const uint64_t high = std::min(range.high, size - 1);
  const uint64_t centre = range.first_probe;
  if (low > high || centre < low || centre > high) return std::nullopt;
  auto holds_key = [&](uint64_t i) {
    return search_internal::KeyEquals(array.Get(i), key.data(),
                                      schema.key_size);
  };
  if (holds_key(centre)) return centre;
  // The key's rank is about as likely above the guess as below it: alternate.
  for (uint64_t d = 1; centre - low >= d || high - centre >= d; ++d) {
    if (centre - low >= d && holds_key(centre - d)) return centre - d;
    if (high - centre >= d && holds_key(centre + d)) return centre + d;
  }
  return std::nullopt;
}

}  // namespace kvindex

#endif  // KVINDEX_SEARCH_SEARCH_IMPL_H_
