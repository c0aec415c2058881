// Shared pieces of the model-based property tests (index_model_test.cc,
// index_model_multiprocess_test.cc): key and value pools with their schemas of
// colliding key hashes (the small one here, the large one in
// index_model_large_pool.h), reading an index into a model::Map, failing a
// case, and running a rapidcheck property with a fixed seed and the soak
// setting.
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

// The keys and values a property test draws from, with the schema whose hash
// makes those keys collide. Values are "v" and a decimal number (then maybe
// padding), which KeepPredicate reads.
struct Pool {
  std::string name;  // for counterexamples
  Schema schema;
  int num_keys = 0;    // key(i) for i in [0, num_keys)
  int num_values = 0;  // value(i) for i in [0, num_values)
  std::string (*key)(int i) = nullptr;
  std::string (*value)(int i) = nullptr;
  // With a period p > 0, the keys i with i % p == p - 1 are never bound, only
  // looked up: absent keys whose hashes present keys share.
  int ghost_period = 0;

  bool Bindable(int i) const {
    return ghost_period == 0 || i % ghost_period != ghost_period - 1;
  }
  int num_bindable() const;
  // The i-th bindable key, i in [0, num_bindable()).
  std::string BindableKey(int i) const;
};

// The pool of PoolKey and PoolValue with TestSchema(hash_bits) (2 or 8).
const Pool& SmallPool(int hash_bits);
// A key that may be bound; any key of the pool (also one never bound); a value.
rc::Gen<std::string> GenKey(const Pool& pool);
rc::Gen<std::string> GenLookupKey(const Pool& pool);
rc::Gen<std::string> GenValue(const Pool& pool);

// Every binding of the pool keys, read with Find (a consistent view for
// read-only instances, whose view only changes on sync).
absl::StatusOr<model::Map> ReadAll(const RawIndex& index);  // the small pool
absl::StatusOr<model::Map> ReadAll(const RawIndex& index, const Pool& pool);
// Mem of every pool key: "" if it agrees with `expected`, else what differs.
std::string CheckMemAll(const RawIndex& index, const Pool& pool,
                        const model::Map& expected);
// Everything one Iter call visits, in order.
absl::StatusOr<model::Visits> IterAll(const RawIndex& index);

// A Filter predicate that can be printed in counterexamples.
struct KeepPredicate {
  enum Kind { kAll, kNone, kEvenValues, kValuesBelow, kAllButKey, kKeysFrom };
  Kind kind = kAll;
  int bound = 0;    // kValuesBelow: keep values below "v<bound>"
  std::string key;  // kAllButKey; kKeysFrom: keep the keys >= key
  bool operator()(const std::string& key, const std::string& value) const;
};
rc::Gen<KeepPredicate> GenKeepPredicate(const Pool& pool);
std::ostream& operator<<(std::ostream& os, const KeepPredicate& p);

// Fails the current rapidcheck case (RC_FAIL) after remembering `message`:
// CheckProperty prints the first and last messages, since a counterexample that
// depends on background-merge timing may not fail again when rapidcheck re-runs
// it to print it.
[[noreturn]] void Fail(const std::string& message);

// Fails the current rapidcheck case with `what` and the status unless `s` is
// OK.
void AssertOk(const absl::Status& s, const std::string& what);

// Whether shrinking has run for a minute since the first failure: from then
// on the property passes at once (CheckProperty), and a long case may stop
// early the same way.
bool ShrinkBudgetSpent();

// Runs `property` with rapidcheck, failing the current gtest test with the
// shrunk counterexample. Unless RC_PARAMS says otherwise ("seed=7
// max_success=50"): a fixed seed derived from the test's name and `cases` test
// cases; with KVINDEX_SOAK=1 (bazel test --config=soak) `soak_cases` cases and
// a time-based seed. The seed used is printed. Shrinking stops a minute after
// the first failure (the smallest counterexample found by then is reported).
void CheckProperty(const std::function<void()>& property, int cases,
                   int soak_cases);

}  // namespace index_model_test
}  // namespace kvindex

#endif  // KVINDEX_TESTS_INDEX_MODEL_UTIL_H_
