// LevelDB 1.23 (Debian's libleveldb), configured for point lookups:
//
// - Bloom filter, 10 bits per key (about 1% false positives): an absent key
// costs
//   one filter probe per table instead of a block read.
// - 64 MiB write buffer (default 4 MiB): fewer, larger level-0 tables, less
//   compaction during the bulk loads.
// - Block cache of StoreConfig::cache_mb (LevelDB's default is 8 MiB), so hot
// blocks skip the
//   read + checksum; max_open_files 10000 so every table stays open (a
//   table-cache miss re-reads the table's index and filter).
// - No compression: keys and values are random printable bytes, which snappy
// barely
//   shrinks; it would only cost CPU on every block.
// - Puts go in a WriteBatch of StoreConfig::batch entries (one log append per
// batch);
//   sync only when Flush(true) asks, as with the other stores.
// - LevelDB has no read-only mode: kReadOnly opens it read-write and only
// reads.
// - Settle() (untimed, after a bulk load) is a full CompactRange, so the read
//   workloads see a settled tree instead of pending compaction work.
// - ReplaceDurable (replace_random_fsync, from one or several threads): a
//   Put of its own with sync = true; LevelDB commits concurrent ones as a group.
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/store.h"

namespace kvindex {
namespace bench {
namespace {

leveldb::Slice ToSlice(absl::string_view s) {
  return leveldb::Slice(s.data(), s.size());
}

class LevelDbStore : public Store {
 public:
  explicit LevelDbStore(const StoreConfig& config)
      : value_size_(config.value_size),
        batch_size_(std::max<size_t>(1, config.batch)),
        filter_(leveldb::NewBloomFilterPolicy(10)),
        cache_(leveldb::NewLRUCache(config.cache_mb << 20)) {}

  ~LevelDbStore() override { (void)Close(); }

  std::string name() const override { return "leveldb"; }
  bool ReadOnlyIsNative() const override { return false; }
  bool Durable() const override { return true; }

  absl::Status Open(const std::string& dir, OpenMode mode) override {
    dir_ = dir;
    absl::Status s =
        mode == OpenMode::kFresh ? ResetDirectory(dir) : MakeDirectories(dir);
    if (!s.ok()) return s;
    leveldb::Options options;
    options.create_if_missing = true;
    options.write_buffer_size = 64 << 20;
    options.max_open_files = 10000;
    options.block_cache = cache_.get();
    options.filter_policy = filter_.get();
    options.compression = leveldb::kNoCompression;
    leveldb::DB* db = nullptr;
    leveldb::Status ls = leveldb::DB::Open(options, dir, &db);
    if (!ls.ok()) return Error("open", ls);
    db_.reset(db);
    return absl::OkStatus();
  }

  absl::Status Replace(absl::string_view key,
                       absl::string_view value) override {
    batch_.Put(ToSlice(key), ToSlice(value));
    if (++pending_ >= batch_size_) return Write(false);
    return absl::OkStatus();
  }

  // A put of its own with sync = true: LevelDB groups the puts of concurrent
  // writers into one log append and one sync. With one thread, the same
  // write as a batch of one put flushed with Flush(true).
  absl::Status ReplaceDurable(absl::string_view key,
                              absl::string_view value) override {
    if (pending_ > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir_, ": leveldb: durable replace with a batch pending"));
    }
    leveldb::WriteOptions options;
    options.sync = true;
    const leveldb::Status ls = db_->Put(options, ToSlice(key), ToSlice(value));
    if (!ls.ok()) return Error("put", ls);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) override {
    if (pending_ > 0) {
      absl::Status s = Write(false);
      if (!s.ok()) return s;
    }
    leveldb::Status ls = db_->Get(read_options_, ToSlice(key), &value_);
    if (ls.IsNotFound()) return false;
    if (!ls.ok()) return Error("get", ls);
    std::memcpy(value_out, value_.data(), std::min(value_.size(), value_size_));
    return true;
  }

  absl::Status Iter(const std::function<void(absl::string_view,
                                             absl::string_view)>& f) override {
    if (pending_ > 0) {
      absl::Status s = Write(false);
      if (!s.ok()) return s;
    }
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      f(absl::string_view(it->key().data(), it->key().size()),
        absl::string_view(it->value().data(), it->value().size()));
    }
    if (!it->status().ok()) return Error("iterator", it->status());
    return absl::OkStatus();
  }

  absl::Status Flush(bool fsync) override {
    if (pending_ == 0 && !fsync) return absl::OkStatus();
    // An empty batch with sync=true still appends a log record and syncs the
    // log.
    return Write(fsync);
  }

  absl::Status Close() override {
    if (db_ == nullptr) return absl::OkStatus();
    absl::Status s = Flush(false);
    CaptureStats();
    db_.reset();
    return s;
  }

  bool HasSettle() const override { return true; }

  absl::Status Settle() override {
    absl::Status s = Flush(false);
    if (!s.ok()) return s;
    db_->CompactRange(nullptr, nullptr);
    return absl::OkStatus();
  }

  std::vector<std::pair<std::string, double>> Metrics() const override {
    return {{"lsm_files", static_cast<double>(files_)},
            {"lsm_level0_files", static_cast<double>(level0_files_)}};
  }

 private:
  absl::Status Error(absl::string_view op, const leveldb::Status& ls) const {
    return absl::InternalError(
        absl::StrCat(dir_, ": leveldb ", op, ": ", ls.ToString()));
  }

  absl::Status Write(bool sync) {
    leveldb::WriteOptions options;
    options.sync = sync;
    leveldb::Status ls = db_->Write(options, &batch_);
    batch_.Clear();
    pending_ = 0;
    if (!ls.ok()) return Error("write", ls);
    return absl::OkStatus();
  }

  void CaptureStats() {
    files_ = 0;
    for (int level = 0; level < 7; ++level) {
      std::string v;
      uint64_t n = 0;
      if (db_->GetProperty(absl::StrCat("leveldb.num-files-at-level", level),
                           &v) &&
          absl::SimpleAtoi(v, &n)) {
        files_ += n;
        if (level == 0) level0_files_ = n;
      }
    }
  }

  const size_t value_size_;
  const size_t batch_size_;
  // The policy and the cache must outlive the DB (declared before it).
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<leveldb::DB> db_;
  std::string dir_;
  leveldb::ReadOptions read_options_;
  leveldb::WriteBatch batch_;
  size_t pending_ = 0;
  std::string value_;
  uint64_t files_ = 0;
  uint64_t level0_files_ = 0;
};

}  // namespace

std::unique_ptr<Store> NewLevelDbStore(const StoreConfig& config) {
  return std::make_unique<LevelDbStore>(config);
}

}  // namespace bench
}  // namespace kvindex
