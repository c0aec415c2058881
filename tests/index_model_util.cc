#include "tests/index_model_util.h"

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

}  // namespace

void Fail(const std::string& message) {
  if (first_failure.empty()) first_failure = message;
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

absl::StatusOr<model::Map> ReadAll(const RawIndex& index) {
  model::Map out;
  char value[kValueSize];
  for (int i = 0; i < kNumKeys; ++i) {
    const std::string key = PoolKey(i);
    absl::StatusOr<bool> found = index.Find(key, value);
    if (!found.ok()) return found.status();
    if (*found) out[key] = std::string(value, kValueSize);
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
      return v < param;
    case kAllButKey:
      return key != PoolKey(param);
  }
  return true;
}

rc::Gen<KeepPredicate> GenKeepPredicate() {
  return rc::gen::apply(
      [](int kind, int param) {
        KeepPredicate p;
        p.kind = static_cast<KeepPredicate::Kind>(kind);
        p.param =
            p.kind == KeepPredicate::kAllButKey ? param % kNumKeys : param;
        return p;
      },
      rc::gen::weightedElement<int>({{1, KeepPredicate::kAll},
                                     {1, KeepPredicate::kNone},
                                     {2, KeepPredicate::kEvenValues},
                                     {2, KeepPredicate::kValuesBelow},
                                     {3, KeepPredicate::kAllButKey}}),
      Uniform(0, kNumValues));
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
      return os << "keep values < v" << absl::StrFormat("%03d", p.param);
    case KeepPredicate::kAllButKey:
      return os << "keep all but " << PoolKey(p.param);
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
  const rc::detail::TestResult result = rc::detail::checkProperty(
      rc::detail::toProperty(property), metadata, params,
      rc::detail::globalTestListener(), config.reproduce);
  std::ostringstream ss;
  rc::detail::printResultMessage(result, ss);
  if (result.template is<rc::detail::SuccessResult>()) {
    std::cout << ss.str() << std::endl;
  } else {
    ADD_FAILURE() << ss.str()
                  << "\n(reproduce with RC_PARAMS=\"seed=" << params.seed
                  << "\" or the reproduce string above)"
                  << "\nFirst failure seen while testing and shrinking:\n"
                  << first_failure
                  << "\nLast failure seen (the shrunk case may depend on "
                     "merge timing):\n"
                  << last_failure;
  }
}

}  // namespace index_model_test
}  // namespace kvindex
