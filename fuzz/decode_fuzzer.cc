// decode_fuzzer: the pure codecs of the index over arbitrary bytes.
//
// The first input byte picks a property (mode = byte % 5); the rest feeds it:
//   0  entry codec: arbitrary bytes cut into entries of input-chosen key and
//      value sizes decode and re-encode to the same bytes; CheckSizes and
//      Schema::Validate accept exactly what their contracts say.
//   1  FixedString<N> / OcamlFixedString<N>: Decode(Encode(s)) == s, wrong
//      sizes are kInvalidArgument before anything is written, Hash ==
//      HashEncoded == KeyHashOf.
//   2  key hashes: OcamlStringHash agrees with an independent byte-at-a-time
//      version and stays below 2^30; Xxh3Hash(s, bits) < 2^bits and is the
//      low bits of XXH3; neither depends on the address of the bytes.
//   3  Fanout::Import of arbitrary bytes with arbitrary hash_bits, entry_size
//      and data_bytes: accepted exactly when the documented rules hold
//      (docs/format.md §6.5); an accepted table exports to the same bytes,
//      re-imports equal, and every Search range lies within the records.
//   4  FanoutBuilder: records fed in hash order lie inside Search(their hash);
//      the table round-trips through Export/Import; BitsFor is the documented
//      minimum (docs/format.md §6.2).
#include <xxhash.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "data/codec.h"
#include "data/schema.h"
#include "fan/fan.h"
#include "fuzz/fuzz_util.h"

namespace kvindex {
namespace fuzz {
namespace {

uint64_t DummyHash(absl::string_view) { return 0; }

// ---- 0: entry codec
// -------------------------------------------------------------

void FuzzEntryCodec(FuzzInput& in) {
  Schema s;
  s.key_size = in.Below(33);  // 0 is invalid, kept to exercise Validate
  s.value_size = in.Below(33);
  s.hash_bits = static_cast<int>(in.Below(70)) - 2;  // -2 .. 67
  s.hash = in.Bool() ? &DummyHash : nullptr;

  const bool valid = s.key_size > 0 && s.hash_bits >= 1 && s.hash_bits <= 64 &&
                     s.hash != nullptr;
  const absl::Status v = s.Validate();
  FUZZ_CHECK(
      v.ok() == valid,
      absl::StrCat("Validate() = ", Describe(v), " for key_size ", s.key_size,
                   " value_size ", s.value_size, " hash_bits ", s.hash_bits));
  if (!v.ok()) {
    FUZZ_CHECK(v.code() == absl::StatusCode::kInvalidArgument, Describe(v));
    return;
  }

  const size_t e = s.entry_size();
  FUZZ_CHECK(e == s.key_size + s.value_size, "entry_size");
  const absl::string_view rest = in.Rest();
  std::string out(e, '\0');
  for (size_t off = 0; off + e <= rest.size(); off += e) {
    const char* entry = rest.data() + off;
    const absl::string_view key = EntryKey(s, entry);
    const absl::string_view value = EntryValue(s, entry);
    FUZZ_CHECK(key.size() == s.key_size && value.size() == s.value_size,
               "decoded sizes");
    FUZZ_CHECK(key.data() == entry && value.data() == entry + s.key_size,
               "EntryKey/EntryValue must view the entry in place");
    FUZZ_CHECK(CheckSizes(s, key, value).ok(), "CheckSizes on decoded entry");
    std::fill(out.begin(), out.end(), '\x5a');
    EncodeEntry(s, key, value, &out[0]);
    FUZZ_CHECK(out == absl::string_view(entry, e),
               "EncodeEntry(decode(entry)) != entry");
  }

  // Wrong sizes: one byte too long / too short, key and value separately.
  const std::string big(s.key_size + s.value_size + 2, 'x');
  const absl::string_view key_ok(big.data(), s.key_size);
  const absl::string_view value_ok(big.data(), s.value_size);
  const absl::string_view key_long(big.data(), s.key_size + 1);
  const absl::string_view value_long(big.data(), s.value_size + 1);
  absl::Status bad = CheckSizes(s, key_long, value_ok);
  FUZZ_CHECK(bad.code() == absl::StatusCode::kInvalidArgument &&
                 absl::StrContains(bad.message(), "key"),
             Describe(bad));
  bad = CheckSizes(s, key_ok, value_long);
  FUZZ_CHECK(bad.code() == absl::StatusCode::kInvalidArgument &&
                 absl::StrContains(bad.message(), "value"),
             Describe(bad));
  bad = CheckSizes(s, absl::string_view(big.data(), s.key_size - 1), value_ok);
  FUZZ_CHECK(bad.code() == absl::StatusCode::kInvalidArgument, Describe(bad));
  if (s.value_size > 0) {
    bad =
        CheckSizes(s, key_ok, absl::string_view(big.data(), s.value_size - 1));
    FUZZ_CHECK(bad.code() == absl::StatusCode::kInvalidArgument, Describe(bad));
  }
}

// ---- 1: FixedString codecs
// -----------------------------------------------------

template <typename Codec>
void CheckFixedCodec(absl::string_view input, uint64_t expected_hash,
                     int hash_bits) {
  constexpr size_t n = Codec::kEncodedSize;
  const std::string canary(n + 8, '\xa5');
  std::string buf = canary;
  const std::string s(input.substr(0, n));

  const absl::Status st = Codec::Encode(s, &buf[0]);
  if (s.size() != n) {
    FUZZ_CHECK(st.code() == absl::StatusCode::kInvalidArgument, Describe(st));
    FUZZ_CHECK(buf == canary, "a refused Encode wrote to its output");
    return;
  }
  FUZZ_CHECK(st.ok(), Describe(st));
  FUZZ_CHECK(absl::string_view(buf.data(), n) == s, "Encode is not identity");
  FUZZ_CHECK(buf.substr(n) == canary.substr(n),
             "Encode wrote past kEncodedSize");
  const std::string decoded = Codec::Decode(absl::string_view(buf.data(), n));
  FUZZ_CHECK(decoded == s, "Decode(Encode(s)) != s");
  FUZZ_CHECK(Codec::Equal(decoded, s), "Equal(Decode(Encode(s)), s) is false");

  const uint64_t h = Codec::Hash(s);
  FUZZ_CHECK(h == expected_hash, "codec hash differs from the schema hash");
  FUZZ_CHECK(Codec::HashEncoded(absl::string_view(buf.data(), n)) == h,
             "HashEncoded != Hash");
  FUZZ_CHECK(KeyHashOf<Codec>(absl::string_view(buf.data(), n)) == h,
             "KeyHashOf != Hash");
  FUZZ_CHECK(Codec::kHashBits == hash_bits, "kHashBits");
  if (hash_bits < 64) FUZZ_CHECK(h >> hash_bits == 0, "hash exceeds kHashBits");

  // The whole input as a value of the wrong size (unless it happens to fit).
  if (input.size() != n) {
    buf = canary;
    const absl::Status wrong = Codec::Encode(std::string(input), &buf[0]);
    FUZZ_CHECK(wrong.code() == absl::StatusCode::kInvalidArgument,
               Describe(wrong));
    FUZZ_CHECK(buf == canary, "a refused Encode wrote to its output");
  }

  const Schema schema = SchemaOf<Codec, FixedString<3>>();
  FUZZ_CHECK(schema.key_size == n && schema.value_size == 3 &&
                 schema.hash_bits == hash_bits && schema.hash != nullptr,
             "SchemaOf");
  FUZZ_CHECK(schema.hash(s) == h, "SchemaOf().hash != Hash");
}

template <size_t N>
void CheckFixedBoth(absl::string_view input) {
  const absl::string_view s = input.substr(0, N);
  CheckFixedCodec<FixedString<N>>(input, Xxh3Hash(s, 64), 64);
  CheckFixedCodec<OcamlFixedString<N>>(input, OcamlStringHash(s),
                                       kOcamlHashBits);
}

void FuzzFixedString(FuzzInput& in) {
  const absl::string_view rest = in.Rest();
  CheckFixedBoth<1>(rest);
  CheckFixedBoth<4>(rest);
  CheckFixedBoth<8>(rest);
  CheckFixedBoth<13>(rest);
  CheckFixedBoth<20>(rest);
  CheckFixedBoth<32>(rest);
}

// ---- 2: hashes
// -----------------------------------------------------------------

// OCaml's caml_hash on a string, written independently of data/schema.cc:
// bytes are folded one at a time into a 32-bit little-endian word.
uint32_t ReferenceOcamlHash(absl::string_view s) {
  auto rotl = [](uint32_t x, unsigned r) { return (x << r) | (x >> (32 - r)); };
  auto mix = [&](uint32_t h, uint32_t d) {
    d *= 0xcc9e2d51u;
    d = rotl(d, 15);
    d *= 0x1b873593u;
    h ^= d;
    h = rotl(h, 13);
    return h * 5u + 0xe6546b64u;
  };
  uint32_t h = 0;
  uint32_t word = 0;
  unsigned filled = 0;
  for (unsigned char c : s) {
    word |= static_cast<uint32_t>(c) << (8 * filled);
    if (++filled == 4) {
      h = mix(h, word);
      word = 0;
      filled = 0;
    }
  }
  if (filled > 0) h = mix(h, word);
  h ^= static_cast<uint32_t>(s.size());
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h & 0x3fffffffu;
}

void FuzzHashes(FuzzInput& in) {
  const unsigned shift = in.U8() % 8;
  const absl::string_view s = in.Rest();

  const uint32_t oh = OcamlStringHash(s);
  FUZZ_CHECK(oh < (1u << 30), absl::StrCat("OcamlStringHash = ", oh));
  FUZZ_CHECK(oh == ReferenceOcamlHash(s),
             absl::StrCat("OcamlStringHash = ", oh, ", reference ",
                          ReferenceOcamlHash(s)));
  FUZZ_CHECK(OcamlKeyHash(s) == oh, "OcamlKeyHash != OcamlStringHash");

  // Same bytes at another alignment must hash the same.
  std::string moved(shift, '\0');
  moved.append(s.data(), s.size());
  const absl::string_view s2(moved.data() + shift, s.size());
  FUZZ_CHECK(OcamlStringHash(s2) == oh, "OcamlStringHash depends on address");

  const uint64_t full = XXH3_64bits(s.data(), s.size());
  FUZZ_CHECK(Xxh3Hash(s, 64) == full, "Xxh3Hash(s, 64) != XXH3_64bits");
  FUZZ_CHECK(Xxh3KeyHash64(s) == full, "Xxh3KeyHash64 != XXH3_64bits");
  FUZZ_CHECK(Xxh3Hash(s2, 64) == full, "Xxh3Hash depends on address");
  for (int bits = 1; bits < 64; ++bits) {
    const uint64_t h = Xxh3Hash(s, bits);
    FUZZ_CHECK(h >> bits == 0, absl::StrCat("Xxh3Hash(s, ", bits, ") = ", h,
                                            " has too many bits"));
    FUZZ_CHECK(h == (full & ((uint64_t{1} << bits) - 1)),
               absl::StrCat("Xxh3Hash(s, ", bits, ") is not the low bits"));
  }
}

// ---- 3: Fanout::Import on arbitrary bytes
// --------------------------------------

// The documented acceptance rule of Fanout::Import, written from fan.h.
bool ImportShouldAccept(absl::string_view bytes, int hash_bits,
                        size_t entry_size, uint64_t data_bytes) {
  if (hash_bits < 1 || hash_bits > 64 || entry_size == 0) return false;
  if (bytes.empty() || bytes.size() % 8 != 0) return false;
  const uint64_t count = bytes.size() / 8;
  if ((count & (count - 1)) != 0) return false;
  int k = 0;
  while ((uint64_t{1} << k) < count) ++k;
  if (k > hash_bits) return false;
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t slot = 0;
    for (int b = 0; b < 8; ++b) {
      slot = (slot << 8) | static_cast<unsigned char>(bytes[i * 8 + b]);
    }
    if (slot < prev || slot % entry_size != 0) return false;
    if (data_bytes == 0 ? slot != 0 : slot >= data_bytes) return false;
    prev = slot;
  }
  return true;
}

// A hash of `hash_bits` bits whose top `k` bits are `bucket`, low bits from
// `noise`.
uint64_t HashInBucket(int hash_bits, int k, uint64_t bucket, uint64_t noise) {
  const int low_bits = hash_bits - k;
  const uint64_t low_mask =
      low_bits >= 64 ? ~uint64_t{0}
                     : (low_bits <= 0 ? 0 : (uint64_t{1} << low_bits) - 1);
  const uint64_t top = low_bits >= 64 ? 0 : bucket << low_bits;
  return top | (noise & low_mask);
}

void CheckFanoutQueries(const Fanout& f, int hash_bits, size_t entry_size,
                        uint64_t data_bytes, uint64_t noise) {
  const int k = f.bits();
  FUZZ_CHECK(k >= 0 && k <= hash_bits, absl::StrCat("bits() = ", k));
  FUZZ_CHECK(f.nb_fans() == (size_t{1} << k), "nb_fans != 2^bits");
  const uint64_t max_hash =
      hash_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << hash_bits) - 1;
  uint64_t next_low = 0;
  for (uint64_t b = 0; b < f.nb_fans(); ++b) {
    // The buckets' hash ranges tile [0, 2^hash_bits) in order.
    const Fanout::HashRange hr = f.BucketHashes(b);
    FUZZ_CHECK(hr.low == next_low && hr.low <= hr.high && hr.high <= max_hash,
               absl::StrCat("BucketHashes(", b, ") = [", hr.low, ", ", hr.high,
                            "], expected to start at ", next_low));
    FUZZ_CHECK(f.Bucket(hr.low) == b && f.Bucket(hr.high) == b,
               absl::StrCat("BucketHashes(", b, ") ends outside bucket ", b));
    next_low = hr.high + 1;
    if (b + 1 == f.nb_fans()) {
      FUZZ_CHECK(hr.high == max_hash,
                 "last bucket does not end at 2^hash_bits-1");
    }
    for (uint64_t n : {uint64_t{0}, ~uint64_t{0}, noise}) {
      const uint64_t h = HashInBucket(hash_bits, k, b, n);
      FUZZ_CHECK(
          h >= hr.low && h <= hr.high,
          absl::StrCat("hash ", h, " of bucket ", b, " outside BucketHashes"));
      FUZZ_CHECK(f.Bucket(h) == b,
                 absl::StrCat("Bucket(", h, ") = ", f.Bucket(h), ", want ", b));
      const Fanout::Range r = f.Search(h);
      FUZZ_CHECK(r.low <= r.high,
                 absl::StrCat("Search(", h, ") = [", r.low, ", ", r.high, "]"));
      FUZZ_CHECK(r.low % entry_size == 0 && r.high % entry_size == 0,
                 "Search range not on record boundaries");
      FUZZ_CHECK(data_bytes == 0 ? r.high == 0 : r.high < data_bytes,
                 absl::StrCat("Search(", h, ").high = ", r.high,
                              " outside data_bytes ", data_bytes));
    }
  }
}

void FuzzFanoutImport(FuzzInput& in) {
  const int hash_bits = static_cast<int>(in.Below(68)) - 1;  // -1 .. 66
  const uint8_t e_sel = in.U8();
  const size_t entry_size = e_sel < 8 ? e_sel : 1 + in.U16() % 512;
  uint64_t data_bytes;
  switch (in.U8() % 4) {
    case 0:
      data_bytes = 0;
      break;
    case 1:
      data_bytes = in.U16();
      break;
    case 2:
      data_bytes = in.U32();
      break;
    default:
      data_bytes = in.U64();
      break;
  }
  const uint64_t noise = in.U64();
  const absl::string_view table = in.Rest();

  const bool expect =
      ImportShouldAccept(table, hash_bits, entry_size, data_bytes);
  const absl::StatusOr<Fanout> f =
      Fanout::Import(table, hash_bits, entry_size, data_bytes, "fuzz-table");
  FUZZ_CHECK(
      f.ok() == expect,
      absl::StrCat("Import: ", Describe(f.status()), ", expected ",
                   expect ? "success" : "an error", " (hash_bits ", hash_bits,
                   ", entry_size ", entry_size, ", data_bytes ", data_bytes,
                   ", ", table.size(), " bytes)"));
  if (!f.ok()) {
    const absl::StatusCode c = f.status().code();
    FUZZ_CHECK(c == absl::StatusCode::kDataLoss ||
                   c == absl::StatusCode::kInvalidArgument,
               Describe(f.status()));
    FUZZ_CHECK(absl::StrContains(f.status().message(), "fuzz-table"),
               "Import error does not name the table: " + Describe(f.status()));
    return;
  }
  FUZZ_CHECK(f->exported_size() == table.size(), "exported_size");
  const std::string exported = f->Export();
  FUZZ_CHECK(exported == table, "Export(Import(bytes)) != bytes");
  const absl::StatusOr<Fanout> again =
      Fanout::Import(exported, hash_bits, entry_size, data_bytes, "again");
  FUZZ_CHECK(again.ok(), Describe(again.status()));
  FUZZ_CHECK(*again == *f, "Import(Export(t)) != t");
  CheckFanoutQueries(*f, hash_bits, entry_size, data_bytes, noise);
}

// ---- 4: FanoutBuilder laws
// -------------------------------------------------------

void FuzzFanoutBuilder(FuzzInput& in) {
  const int hash_bits = 1 + in.Below(64);
  const size_t entry_size = 1 + in.U16() % 300;
  const uint64_t extra = in.U8() % 16;
  // BitsFor on arbitrary sizes: clamped and minimal.
  {
    const int hb = 1 + in.Below(64);
    const size_t es = in.U8() < 128 ? in.U16() : static_cast<size_t>(in.U64());
    const uint64_t n = in.U64();
    const int k = Fanout::BitsFor(hb, es, n);
    FUZZ_CHECK(k >= 0 && k <= hb, absl::StrCat("BitsFor = ", k));
    const unsigned __int128 bytes = static_cast<unsigned __int128>(n) * es;
    const unsigned __int128 pages = (bytes + 4095) / 4096;
    auto pow2 = [](int e) { return static_cast<unsigned __int128>(1) << e; };
    if (k < hb) FUZZ_CHECK(pow2(k) >= pages, "BitsFor too small");
    if (k > 0) FUZZ_CHECK(pow2(k - 1) < pages, "BitsFor not minimal");
  }
  std::vector<uint64_t> hashes;
  const uint64_t mask =
      hash_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << hash_bits) - 1;
  while (in.remaining() >= 2 && hashes.size() < 2048) {
    // Mostly 2-byte hashes spread over the top bits, sometimes full 8 bytes.
    uint64_t h;
    if (in.U8() & 1) {
      h = in.U64();
    } else {
      const uint64_t v = in.U16();
      h = hash_bits >= 16 ? v << (hash_bits - 16) : v >> (16 - hash_bits);
    }
    hashes.push_back(h & mask);
  }
  std::sort(hashes.begin(), hashes.end());
  const uint64_t n = hashes.size();
  const uint64_t expected = n + extra;

  FanoutBuilder builder(hash_bits, entry_size, expected);
  const int k = Fanout::BitsFor(hash_bits, entry_size, expected);
  FUZZ_CHECK(builder.nb_fans() == (size_t{1} << k), "builder nb_fans");
  FUZZ_CHECK(builder.exported_size() == 8 * builder.nb_fans(),
             "builder exported_size");
  for (uint64_t i = 0; i < n; ++i) builder.Update(hashes[i], i * entry_size);
  const Fanout f = std::move(builder).Finish();
  FUZZ_CHECK(f.bits() == k, "Finish() bits");
  if (k < hash_bits) {
    // At most about one page of records per fan (docs/format.md §6.2).
    FUZZ_CHECK((expected / f.nb_fans()) * entry_size <= 4096,
               absl::StrCat(expected, " records in ", f.nb_fans(), " fans"));
  }
  for (uint64_t i = 0; i < n; ++i) {
    const Fanout::Range r = f.Search(hashes[i]);
    const uint64_t off = i * entry_size;
    FUZZ_CHECK(r.low <= off && off <= r.high,
               absl::StrCat("record ", i, " at ", off, " (hash ", hashes[i],
                            ") outside Search = [", r.low, ", ", r.high, "]"));
  }
  const std::string exported = f.Export();
  FUZZ_CHECK(exported.size() == 8 * f.nb_fans(), "Export size");
  const absl::StatusOr<Fanout> back =
      Fanout::Import(exported, hash_bits, entry_size, n * entry_size, "built");
  FUZZ_CHECK(back.ok(), Describe(back.status()));
  FUZZ_CHECK(*back == f, "Import(Export(built)) != built");
  CheckFanoutQueries(f, hash_bits, entry_size, n * entry_size, n);
}

}  // namespace
}  // namespace fuzz
}  // namespace kvindex

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvindex::fuzz::FuzzInput in(data, size);
  switch (in.U8() % 5) {
    case 0:
      kvindex::fuzz::FuzzEntryCodec(in);
      break;
    case 1:
      kvindex::fuzz::FuzzFixedString(in);
      break;
    case 2:
      kvindex::fuzz::FuzzHashes(in);
      break;
    case 3:
      kvindex::fuzz::FuzzFanoutImport(in);
      break;
    default:
      kvindex::fuzz::FuzzFanoutBuilder(in);
      break;
  }
  return 0;
}
