// RocksDB 7.8 (Debian's librocksdb), configured for point lookups:
//
// - Options::OptimizeForPointLookup(cache_mb): block-based tables with a Bloom
//   filter (10 bits per key), a hash index inside each data block
//   (kDataBlockBinaryAndHash) and a block cache of StoreConfig::cache_mb; plus
//   a whole-key Bloom filter on the memtable.
// - No compression (Debian builds it with snappy as the default): random
// printable
//   keys and values do not shrink.
// - Defaults otherwise: 64 MiB write buffer, level compaction, two background
// jobs
//   (this machine has two cores), every table file kept open.
// - Puts go in a WriteBatch of StoreConfig::batch entries (one WAL append per
// batch);
//   sync only when Flush(true) asks.
// - kReadOnly uses DB::OpenForReadOnly.
// - Settle() (untimed, after a bulk load) is a full CompactRange, so the read
//   workloads see a settled tree instead of pending compaction work.
// - ReplaceDurable (replace_random_fsync, from one or several threads): a
//   Put of its own with sync = true; RocksDB commits concurrent ones as a group.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

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

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

class RocksDbStore : public Store {
 public:
  explicit RocksDbStore(const StoreConfig& config)
      : value_size_(config.value_size),
        batch_size_(std::max<size_t>(1, config.batch)),
        cache_mb_(config.cache_mb) {}

  ~RocksDbStore() override { (void)Close(); }

  std::string name() const override { return "rocksdb"; }
  bool ReadOnlyIsNative() const override { return true; }
  bool Durable() const override { return true; }

  absl::Status Open(const std::string& dir, OpenMode mode) override {
    dir_ = dir;
    absl::Status s =
        mode == OpenMode::kFresh ? ResetDirectory(dir) : MakeDirectories(dir);
    if (!s.ok()) return s;
    rocksdb::Options options;
    options.create_if_missing = true;
    options.OptimizeForPointLookup(cache_mb_);
    options.compression = rocksdb::kNoCompression;
    rocksdb::DB* db = nullptr;
    rocksdb::Status rs = mode == OpenMode::kReadOnly
                             ? rocksdb::DB::OpenForReadOnly(options, dir, &db)
                             : rocksdb::DB::Open(options, dir, &db);
    if (!rs.ok()) return Error("open", rs);
    db_.reset(db);
    return absl::OkStatus();
  }

  absl::Status Replace(absl::string_view key,
                       absl::string_view value) override {
    rocksdb::Status rs = batch_.Put(ToSlice(key), ToSlice(value));
    if (!rs.ok()) return Error("batch put", rs);
    if (++pending_ >= batch_size_) return Write(false);
    return absl::OkStatus();
  }

  // A put of its own with sync = true: RocksDB groups the puts of concurrent
  // writers into one log append and one sync. With one thread, the same
  // write as a batch of one put flushed with Flush(true).
  absl::Status ReplaceDurable(absl::string_view key,
                              absl::string_view value) override {
    if (pending_ > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir_, ": rocksdb: durable replace with a batch pending"));
    }
    rocksdb::WriteOptions options;
    options.sync = true;
    const rocksdb::Status rs = db_->Put(options, ToSlice(key), ToSlice(value));
    if (!rs.ok()) return Error("put", rs);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) override {
    if (pending_ > 0) {
      absl::Status s = Write(false);
      if (!s.ok()) return s;
    }
    value_.Reset();
    rocksdb::Status rs = db_->Get(read_options_, db_->DefaultColumnFamily(),
                                  ToSlice(key), &value_);
    if (rs.IsNotFound()) return false;
    if (!rs.ok()) return Error("get", rs);
    std::memcpy(value_out, value_.data(), std::min(value_.size(), value_size_));
    return true;
  }

  absl::Status Iter(const std::function<void(absl::string_view,
                                             absl::string_view)>& f) override {
    if (pending_ > 0) {
      absl::Status s = Write(false);
      if (!s.ok()) return s;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      f(absl::string_view(it->key().data(), it->key().size()),
        absl::string_view(it->value().data(), it->value().size()));
    }
    if (!it->status().ok()) return Error("iterator", it->status());
    return absl::OkStatus();
  }

  absl::Status Flush(bool fsync) override {
    if (pending_ > 0) return Write(fsync);
    if (fsync) {
      rocksdb::Status rs = db_->SyncWAL();
      if (!rs.ok()) return Error("sync WAL", rs);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (db_ == nullptr) return absl::OkStatus();
    absl::Status s = Flush(false);
    CaptureStats();
    value_.Reset();
    rocksdb::Status rs = db_->Close();
    db_.reset();
    if (s.ok() && !rs.ok()) s = Error("close", rs);
    return s;
  }

  bool HasSettle() const override { return true; }

  absl::Status Settle() override {
    absl::Status s = Flush(false);
    if (!s.ok()) return s;
    rocksdb::Status rs =
        db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr);
    if (!rs.ok()) return Error("compact range", rs);
    return absl::OkStatus();
  }

  std::vector<std::pair<std::string, double>> Metrics() const override {
    return {{"lsm_files", static_cast<double>(files_)},
            {"lsm_level0_files", static_cast<double>(level0_files_)}};
  }

 private:
  absl::Status Error(absl::string_view op, const rocksdb::Status& rs) const {
    return absl::InternalError(
        absl::StrCat(dir_, ": rocksdb ", op, ": ", rs.ToString()));
  }

  absl::Status Write(bool sync) {
    rocksdb::WriteOptions options;
    options.sync = sync;
    rocksdb::Status rs = db_->Write(options, &batch_);
    batch_.Clear();
    pending_ = 0;
    if (!rs.ok()) return Error("write", rs);
    return absl::OkStatus();
  }

  void CaptureStats() {
    files_ = 0;
    for (int level = 0; level < 7; ++level) {
      std::string v;
      uint64_t n = 0;
      if (db_->GetProperty(absl::StrCat("rocksdb.num-files-at-level", level),
                           &v) &&
          absl::SimpleAtoi(v, &n)) {
        files_ += n;
        if (level == 0) level0_files_ = n;
      }
    }
  }

  const size_t value_size_;
  const size_t batch_size_;
  const size_t cache_mb_;
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  rocksdb::ReadOptions read_options_;
  rocksdb::WriteBatch batch_;
  size_t pending_ = 0;
  rocksdb::PinnableSlice value_;
  uint64_t files_ = 0;
  uint64_t level0_files_ = 0;
};

}  // namespace

std::unique_ptr<Store> NewRocksDbStore(const StoreConfig& config) {
  return std::make_unique<RocksDbStore>(config);
}

}  // namespace bench
}  // namespace kvindex
