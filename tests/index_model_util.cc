#include "tests/index_model_util.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "rapidcheck/detail/Configuration.h"
#include "rapidcheck/detail/TestListener.h"
#include "testing/keys.h"

namespace rc {
namespace detail {
// Defined in librapidcheck (not declared in its installed headers): the
// listener that prints progress and the reproduction string, as rc::check uses
// it.
TestListener& globalTestListener();
}  // namespace detail
}  // namespace rc

namespace kvindex {
namespace index_model_test {
namespace {

std::string first_failure;
std::string last_failure;

// Shrinking runs the property again on smaller and smaller cases, and a case
// of the large configuration takes up to seconds: once this long has passed
// since the first failure, the remaining candidates pass at once, so that
// rapidcheck reports the smallest counterexample found by then rather than the
// test timing out.
constexpr std::chrono::seconds kShrinkBudget(60);
std::chrono::steady_clock::time_point first_failure_time;

}  // namespace

bool ShrinkBudgetSpent() {
  return !first_failure.empty() &&
         std::chrono::steady_clock::now() - first_failure_time > kShrinkBudget;
}

void Fail(const std::string& message) {
  if (first_failure.empty()) {
    first_failure = message;
    first_failure_time = std::chrono::steady_clock::now();
  }
  last_failure = message;
  RC_FAIL(message);
}

void AssertOk(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

std::string PoolKey(int i) {
  return absl::StrFormat("%c_key_%02d", "abc"[i % 3], i);
}

std::string PoolValue(int i) { return absl::StrFormat("v%03d", i); }

rc::Gen<std::string> GenKey() {
  return rc::gen::map(Uniform(0, kNumKeys), &PoolKey);
}

rc::Gen<std::string> GenValue() {
  return rc::gen::map(Uniform(0, kNumValues), &PoolValue);
}

Schema TestSchema(int hash_bits) {
  return test::MakeSchema(
      kKeySize, kValueSize, hash_bits,
      hash_bits == 2 ? &test::TinyHash : &test::FirstByteHash);
}

int Pool::num_bindable() const {
  if (ghost_period == 0) return num_keys;
  return num_keys - num_keys / ghost_period;
}

std::string Pool::BindableKey(int i) const {
  if (ghost_period == 0) return key(i);
  // Each period holds ghost_period - 1 bindable keys, then a ghost.
  return key(i / (ghost_period - 1) * ghost_period + i % (ghost_period - 1));
}

const Pool& SmallPool(int hash_bits) {
  static const auto make = [](int bits) {
    Pool p;
    p.name = "small(" + std::to_string(bits) + "-bit hash)";
    p.schema = TestSchema(bits);
    p.num_keys = kNumKeys;
    p.num_values = kNumValues;
    p.key = &PoolKey;
    p.value = &PoolValue;
    return p;
  };
  static const Pool two = make(2);
  static const Pool eight = make(8);
  return hash_bits == 2 ? two : eight;
}

rc::Gen<std::string> GenKey(const Pool& pool) {
  return rc::gen::map(Uniform(0, pool.num_bindable()),
                      [&pool](int i) { return pool.BindableKey(i); });
}

rc::Gen<std::string> GenLookupKey(const Pool& pool) {
  return rc::gen::map(Uniform(0, pool.num_keys),
                      [&pool](int i) { return pool.key(i); });
}

rc::Gen<std::string> GenValue(const Pool& pool) {
  return rc::gen::map(Uniform(0, pool.num_values),
                      [&pool](int i) { return pool.value(i); });
}

absl::StatusOr<model::Map> ReadAll(const RawIndex& index) {
  return ReadAll(index, SmallPool(8));
}

absl::StatusOr<model::Map> ReadAll(const RawIndex& index, const Pool& pool) {
  model::Map out;
  std::string value(pool.schema.value_size, '\0');
  for (int i = 0; i < pool.num_keys; ++i) {
    const std::string key = pool.key(i);
    absl::StatusOr<bool> found = index.Find(key, value.data());
    if (!found.ok()) return found.status();
    if (*found) out[key] = value;
  }
  return out;
}

std::string CheckMemAll(const RawIndex& index, const Pool& pool,
                        const model::Map& expected) {
  std::string out;
  for (int i = 0; i < pool.num_keys; ++i) {
    const std::string key = pool.key(i);
    absl::StatusOr<bool> mem = index.Mem(key);
    if (!mem.ok()) return "mem " + key + ": " + mem.status().ToString();
    if (*mem != (expected.count(key) > 0)) {
      out += "  mem " + model::Quote(key) + " is " + (*mem ? "true" : "false") +
             "\n";
    }
  }
  return out;
}

absl::StatusOr<model::Visits> IterAll(const RawIndex& index) {
  model::Visits visits;
  absl::Status s = index.Iter([&](absl::string_view k, absl::string_view v) {
    visits.emplace_back(std::string(k), std::string(v));
  });
  if (!s.ok()) return s;
  return visits;
}

bool KeepPredicate::operator()(const std::string& key,
                               const std::string& value) const {
  const int v = std::atoi(value.c_str() + 1);
  switch (kind) {
    case kAll:
      return true;
    case kNone:
      return false;
    case kEvenValues:
      return v % 2 == 0;
    case kValuesBelow:
      return v < bound;
    case kAllButKey:
      return key != this->key;
    case kKeysFrom:
      return key >= this->key;
  }
  return true;
}

rc::Gen<KeepPredicate> GenKeepPredicate(const Pool& pool) {
  return rc::gen::apply(
      [](int kind, int bound, std::string key) {
        KeepPredicate p;
        p.kind = static_cast<KeepPredicate::Kind>(kind);
        if (p.kind == KeepPredicate::kValuesBelow) p.bound = bound;
        if (p.kind == KeepPredicate::kAllButKey ||
            p.kind == KeepPredicate::kKeysFrom) {
          p.key = std::move(key);
        }
        return p;
      },
      rc::gen::weightedElement<int>({{1, KeepPredicate::kAll},
                                     {1, KeepPredicate::kNone},
                                     {2, KeepPredicate::kEvenValues},
                                     {2, KeepPredicate::kValuesBelow},
                                     {3, KeepPredicate::kAllButKey},
                                     {2, KeepPredicate::kKeysFrom}}),
      Uniform(0, pool.num_values), GenKey(pool));
}

std::ostream& operator<<(std::ostream& os, const KeepPredicate& p) {
  switch (p.kind) {
    case KeepPredicate::kAll:
      return os << "keep all";
    case KeepPredicate::kNone:
      return os << "keep none";
    case KeepPredicate::kEvenValues:
      return os << "keep even values";
    case KeepPredicate::kValuesBelow:
      return os << "keep values below " << p.bound;
    case KeepPredicate::kAllButKey:
      return os << "keep all but " << p.key;
    case KeepPredicate::kKeysFrom:
      return os << "keep keys from " << p.key << " on";
  }
  return os;
}

void CheckProperty(const std::function<void()>& property, int cases,
                   int soak_cases) {
  const rc::detail::Configuration& config = rc::detail::configuration();
  rc::detail::TestParams params = config.testParams;
  const char* rc_params = std::getenv("RC_PARAMS");
  const std::string given = rc_params == nullptr ? "" : rc_params;
  const char* soak = std::getenv("KVINDEX_SOAK");
  const bool soaking = soak != nullptr && std::strcmp(soak, "1") == 0;
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  // A fixed seed per property (FNV-1a of its name), so that properties sharing
  // command tables do not draw the same sequences.
  if (!absl::StrContains(given, "seed=")) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : metadata.id) h = (h ^ c) * 0x100000001b3ull;
    params.seed = h;
  }
  if (!absl::StrContains(given, "max_success=")) {
    params.maxSuccess = soaking ? soak_cases : cases;
  }
  if (soaking && !absl::StrContains(given, "seed=")) {
    params.seed = static_cast<uint64_t>(std::time(nullptr));
  }

  first_failure.clear();
  last_failure.clear();
  std::cout << metadata.id << ": seed=" << params.seed
            << " max_success=" << params.maxSuccess << std::endl;
  const std::function<void()> bounded = [&property] {
    if (!ShrinkBudgetSpent()) property();
  };
  const rc::detail::TestResult result = rc::detail::checkProperty(
      rc::detail::toProperty(bounded), metadata, params,
      rc::detail::globalTestListener(), config.reproduce);
  std::ostringstream ss;
  rc::detail::printResultMessage(result, ss);
  if (result.template is<rc::detail::SuccessResult>()) {
    std::cout << ss.str() << std::endl;
  } else {
    ADD_FAILURE() << ss.str()
                  << "\n(reproduce with RC_PARAMS=\"seed=" << params.seed
                  << "\" or the reproduce string above)"
                  << (ShrinkBudgetSpent()
                          ? "\n(shrinking is cut short " +
                                std::to_string(kShrinkBudget.count()) +
                                " s after the first failure)"
                          : "")
                  << "\nFirst failure seen while testing and shrinking:\n"
                  << first_failure
                  << "\nLast failure seen (the shrunk case may depend on "
                     "merge timing):\n"
                  << last_failure;
  }
}

}  // namespace index_model_test
}  // namespace kvindex
