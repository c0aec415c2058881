// A program that uses kvindex the way a consumer would: only the public target
// @kvindex//index and its header "index/index.h". It writes bindings into a
// store in a fresh temporary directory, merges, reopens read-only, reads
// everything back, prints one line and exits 0 only if every binding came back
// with its value.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "index/index.h"

namespace {

using Store =
    kvindex::Index<kvindex::FixedString<32>, kvindex::FixedString<13>>;

constexpr int kBindings = 1000;

std::string Key(int i) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "downstream-key-%017d", i);
  return std::string(buf, 32);
}

std::string Value(int i) {
  char buf[14];
  std::snprintf(buf, sizeof(buf), "value-%07d", i);
  return std::string(buf, 13);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "downstream app: %s\n", what.c_str());
  return 1;
}

int Run(const std::string& root) {
  kvindex::Options options;
  options.fresh = true;
  options.log_size = 64;  // several merges along the way
  {
    auto store = Store::Open(root, options);
    if (!store.ok()) return Fail(std::string(store.status().message()));
    for (int i = 0; i < kBindings; ++i) {
      absl::Status s = (*store)->Replace(Key(i), Value(i));
      if (!s.ok()) return Fail(std::string(s.message()));
    }
    kvindex::FlushOptions flush;
    flush.with_fsync = true;
    absl::Status s = (*store)->Flush(flush);
    if (s.ok()) s = (*store)->Merge();
    if (s.ok()) s = (*store)->AwaitMerge();
    if (s.ok()) s = (*store)->Close();
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  kvindex::Options readonly;
  readonly.readonly = true;
  auto store = Store::Open(root, readonly);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  int found = 0;
  for (int i = 0; i < kBindings; ++i) {
    auto value = (*store)->Find(Key(i));
    if (!value.ok()) return Fail(std::string(value.status().message()));
    if (!value->has_value() || **value != Value(i)) {
      return Fail("wrong or missing value for " + Key(i));
    }
    ++found;
  }
  auto absent = (*store)->Find(Key(kBindings));
  if (!absent.ok() || absent->has_value()) return Fail("found an absent key");
  std::printf("downstream: %d bindings written, merged and read back from %s\n",
              found, root.c_str());
  return 0;
}

}  // namespace

int main() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp == nullptr) tmp = std::getenv("TMPDIR");
  std::string dir =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/kvindex-downstream-XXXXXX";
  if (mkdtemp(&dir[0]) == nullptr) return Fail("cannot create " + dir);
  const int rc = Run(dir);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return rc;
}
