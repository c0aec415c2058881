// Shared pieces of the model-based property tests (index_model_test.cc,
// index_model_multiprocess_test.cc): the small key and value pools, their
// schema with colliding key hashes, reading an index into a model::Map,
// failing a case, and running a rapidcheck property with a fixed seed and the
// soak setting.
#ifndef KVINDEX_TESTS_INDEX_MODEL_UTIL_H_
#define KVINDEX_TESTS_INDEX_MODEL_UTIL_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/schema.h"
#include "index/raw_index.h"
#include "model/model.h"
#include "rapidcheck.h"

namespace kvindex {
namespace index_model_test {

inline constexpr size_t kKeySize = 8;
inline constexpr size_t kValueSize = 4;
// Few keys, so that they repeat; their first bytes collide on purpose.
inline constexpr int kNumKeys = 10;
inline constexpr int kNumValues = 50;

// Uniform in [lo, hi) whatever the test case's size (rc::gen::inRange favours
// small values at small sizes), shrinking towards lo.
template <typename T>
rc::Gen<T> Uniform(T lo, T hi) {
  return rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(lo, hi));
}

// "a_key_03": 8 bytes; the first byte cycles through 'a', 'b', 'c'.
std::string PoolKey(int i);
// "v017": 4 bytes.
std::string PoolValue(int i);
rc::Gen<std::string> GenKey();
rc::Gen<std::string> GenValue();

// Schema with 8-byte keys, 4-byte values and a hash of `hash_bits` (2 or 8)
// bits taken from the key's first byte: with the pool above every hash is
// shared by 3-4 keys.
Schema TestSchema(int hash_bits);

// Every binding of the pool keys, read with Find (a consistent view for
// read-only instances, whose view only changes on sync).
absl::StatusOr<model::Map> ReadAll(const RawIndex& index);
// Everything one Iter call visits, in order.
absl::StatusOr<model::Visits> IterAll(const RawIndex& index);

// A Filter predicate that can be printed in counterexamples.
struct KeepPredicate {
  enum Kind { kAll, kNone, kEvenValues, kValuesBelow, kAllButKey };
  Kind kind = kAll;
  int param = 0;  // the bound, or the key index
  bool operator()(const std::string& key, const std::string& value) const;
};
rc::Gen<KeepPredicate> GenKeepPredicate();
std::ostream& operator<<(std::ostream& os, const KeepPredicate& p);

// Fails the current rapidcheck case (RC_FAIL) after remembering `message`:
// CheckProperty prints the first and last messages, since a counterexample that
// depends on background-merge timing may not fail again when rapidcheck re-runs
// it to print it.
[[noreturn]] void Fail(const std::string& message);

// Fails the current rapidcheck case with `what` and the status unless `s` is
// OK.
void AssertOk(const absl::Status& s, const std::string& what);

// Runs `property` with rapidcheck, failing the current gtest test with the
// shrunk counterexample. Unless RC_PARAMS says otherwise ("seed=7
// max_success=50"): a fixed seed derived from the test's name and `cases` test
// cases; with KVINDEX_SOAK=1 (bazel test --config=soak) `soak_cases` cases and
// a time-based seed. The seed used is printed.
void CheckProperty(const std::function<void()>& property, int cases,
                   int soak_cases);

}  // namespace index_model_test
}  // namespace kvindex

#endif  // KVINDEX_TESTS_INDEX_MODEL_UTIL_H_
