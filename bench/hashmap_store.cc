// The floor: an in-memory absl::flat_hash_map. Entries (key then value) live in
// an arena of fixed-size records; the map goes from a view of the key in its
// record to the record, so a lookup is one hash probe and a memcmp, with no
// allocation.
//
// It is not a store: nothing is durable (Durable() is false). So that the read
// workloads can run in their own processes, Close() dumps the records to
// <dir>/hashmap.dat and Open() loads them back; neither is timed by the driver.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/store.h"

namespace kvindex {
namespace bench {
namespace {

constexpr size_t kRecordsPerChunk = 1 << 16;

class HashMapStore : public Store {
 public:
  explicit HashMapStore(const StoreConfig& config)
      : key_size_(config.key_size),
        entry_size_(config.key_size + config.value_size),
        entries_(config.entries) {}

  std::string name() const override { return "hashmap"; }
  bool ReadOnlyIsNative() const override { return false; }
  bool Durable() const override { return false; }

  absl::Status Open(const std::string& dir, OpenMode mode) override {
    dir_ = dir;
    map_.clear();
    chunks_.clear();
    count_ = 0;
    map_.reserve(entries_);
    if (mode == OpenMode::kFresh) return ResetDirectory(dir);
    absl::Status s = MakeDirectories(dir);
    if (!s.ok()) return s;
    return Load();
  }

  absl::Status Replace(absl::string_view key,
                       absl::string_view value) override {
    auto it = map_.find(key);
    if (it != map_.end()) {
      std::memcpy(it->second + key_size_, value.data(), value.size());
      return absl::OkStatus();
    }
    char* record = Append(key, value);
    map_.emplace(absl::string_view(record, key_size_), record);
    return absl::OkStatus();
  }

  absl::Status ReplaceDurable(absl::string_view, absl::string_view) override {
    return absl::UnimplementedError("hashmap: not durable");
  }

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) override {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    std::memcpy(value_out, it->second + key_size_, entry_size_ - key_size_);
    return true;
  }

  absl::Status Iter(const std::function<void(absl::string_view,
                                             absl::string_view)>& f) override {
    for (size_t i = 0; i < count_; ++i) {
      const char* record = Record(i);
      f(absl::string_view(record, key_size_),
        absl::string_view(record + key_size_, entry_size_ - key_size_));
    }
    return absl::OkStatus();
  }

  absl::Status Flush(bool /*fsync*/) override { return absl::OkStatus(); }

  absl::Status Close() override {
    if (dir_.empty()) return absl::OkStatus();
    absl::Status s = Dump();
    map_.clear();
    chunks_.clear();
    count_ = 0;
    dir_.clear();
    return s;
  }

 private:
  std::string DumpPath() const { return dir_ + "/hashmap.dat"; }

  char* Record(size_t i) const {
    return chunks_[i / kRecordsPerChunk].get() +
           (i % kRecordsPerChunk) * entry_size_;
  }

  char* Append(absl::string_view key, absl::string_view value) {
    if (count_ % kRecordsPerChunk == 0) {
      chunks_.push_back(
          std::make_unique<char[]>(kRecordsPerChunk * entry_size_));
    }
    char* record = Record(count_++);
    std::memcpy(record, key.data(), key_size_);
    std::memcpy(record + key_size_, value.data(), value.size());
    return record;
  }

  absl::Status Dump() {
    std::string path = DumpPath();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
      return absl::InternalError(
          absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
    }
    bool ok = true;
    for (size_t done = 0; done < count_ && ok; done += kRecordsPerChunk) {
      size_t n = std::min(kRecordsPerChunk, count_ - done);
      ok = std::fwrite(Record(done), entry_size_, n, f) == n;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      return absl::InternalError(
          absl::StrCat(path, ": write failed: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  absl::Status Load() {
    std::string path = DumpPath();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      if (errno == ENOENT) return absl::OkStatus();
      return absl::InternalError(
          absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
    }
    std::vector<char> record(entry_size_);
    while (std::fread(record.data(), entry_size_, 1, f) == 1) {
      absl::Status s = Replace(absl::string_view(record.data(), key_size_),
                               absl::string_view(record.data() + key_size_,
                                                 entry_size_ - key_size_));
      if (!s.ok()) break;
    }
    bool error = std::ferror(f) != 0;
    std::fclose(f);
    if (error) return absl::InternalError(absl::StrCat(path, ": read failed"));
    return absl::OkStatus();
  }

  const size_t key_size_;
  const size_t entry_size_;
  const uint64_t entries_;
  std::string dir_;
  absl::flat_hash_map<absl::string_view, char*> map_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t count_ = 0;
};

}  // namespace

std::unique_ptr<Store> NewHashMapStore(const StoreConfig& config) {
  return std::make_unique<HashMapStore>(config);
}

}  // namespace bench
}  // namespace kvindex
