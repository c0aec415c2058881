// LMDB 0.9 (Debian's liblmdb), configured for bulk writes and point lookups:
//
// - MDB_WRITEMAP | MDB_NOSYNC: writes go straight into the shared file mapping
// and a
//   commit does not fsync. Committed data survives a crash of the process (it
//   is in the page cache), not a power loss, like this library's log after
//   flush(). Flush(fsync) adds mdb_env_sync(force).
// - A map size with room for the whole run (the file is sparse: WRITEMAP
// extends it
//   to the map size, so the disk usage reported is st_blocks, not st_size).
// - One write transaction per `batch` puts (StoreConfig::batch), committed
// early by
//   Flush: a commit per put costs a meta-page write and page-tree
//   copy-on-write.
// - Reads reuse one read-only transaction (mdb_txn_reset/renew) instead of a
//   begin/abort per lookup; a find while a write transaction is open reads
//   through it, so it sees the batch's own puts.
// - MDB_NORDAHEAD: the lookups are random, read-ahead would only evict useful
// pages.
// - ReplaceDurable (replace_random_fsync, from one or several threads): a
//   write transaction per put, committed, then mdb_env_sync(force).
#include <lmdb.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/store.h"

namespace kvindex {
namespace bench {
namespace {

MDB_val ToVal(absl::string_view s) {
  MDB_val v;
  v.mv_size = s.size();
  v.mv_data = const_cast<char*>(s.data());
  return v;
}

class LmdbStore : public Store {
 public:
  explicit LmdbStore(const StoreConfig& config)
      : value_size_(config.value_size),
        batch_(std::max<size_t>(1, config.batch)) {
    // Leaf nodes are 8 bytes of header + key + value (+2 bytes of pointer);
    // random inserts leave pages 50-70% full, and copy-on-write keeps freed
    // pages around until reused: 4x the payload, and at least 256 MiB.
    uint64_t per_entry = config.key_size + config.value_size + 10;
    map_size_ =
        std::max<uint64_t>(uint64_t{256} << 20, config.entries * per_entry * 4);
    map_size_ =
        (map_size_ + (uint64_t{1} << 20) - 1) & ~((uint64_t{1} << 20) - 1);
  }

  ~LmdbStore() override { (void)Close(); }

  std::string name() const override { return "lmdb"; }
  bool ReadOnlyIsNative() const override { return true; }
  bool Durable() const override { return true; }

  absl::Status Open(const std::string& dir, OpenMode mode) override {
    dir_ = dir;
    absl::Status s =
        mode == OpenMode::kFresh ? ResetDirectory(dir) : MakeDirectories(dir);
    if (!s.ok()) return s;
    readonly_ = mode == OpenMode::kReadOnly;
    int rc = mdb_env_create(&env_);
    if (rc != 0) return Error("mdb_env_create", rc);
    rc = mdb_env_set_mapsize(env_, map_size_);
    if (rc != 0) return Error("mdb_env_set_mapsize", rc);
    unsigned int flags = readonly_
                             ? (MDB_RDONLY | MDB_NORDAHEAD)
                             : (MDB_WRITEMAP | MDB_NOSYNC | MDB_NORDAHEAD);
    rc = mdb_env_open(env_, dir.c_str(), flags, 0644);
    if (rc != 0) {
      mdb_env_close(env_);
      env_ = nullptr;
      return Error("mdb_env_open", rc);
    }
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env_, nullptr, readonly_ ? MDB_RDONLY : 0, &txn);
    if (rc != 0) return Error("mdb_txn_begin", rc);
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi_);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Error("mdb_dbi_open", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return Error("mdb_txn_commit", rc);
    return absl::OkStatus();
  }

  absl::Status Replace(absl::string_view key,
                       absl::string_view value) override {
    if (wtxn_ == nullptr) {
      if (rtxn_ != nullptr && !rtxn_reset_) {
        mdb_txn_reset(rtxn_);
        rtxn_reset_ = true;
      }
      int rc = mdb_txn_begin(env_, nullptr, 0, &wtxn_);
      if (rc != 0) {
        wtxn_ = nullptr;
        return Error("mdb_txn_begin", rc);
      }
    }
    MDB_val k = ToVal(key);
    MDB_val v = ToVal(value);
    int rc = mdb_put(wtxn_, dbi_, &k, &v, 0);
    if (rc != 0) return Error("mdb_put", rc);
    if (++pending_ >= batch_) return Commit();
    return absl::OkStatus();
  }

  // A write transaction of its own, committed, then synced as Flush(true)
  // does; with one thread, the same calls as Replace then Flush(true). LMDB
  // runs one write transaction at a time (mdb_txn_begin waits for the
  // running one) and wants each begun, used and committed by one thread,
  // which holds here: the transaction never leaves the calling thread
  // (MDB_NOTLS would only matter for read transactions). Concurrent
  // mdb_env_sync calls only overlap in the kernel: a sync that starts after
  // several commits covers them all.
  absl::Status ReplaceDurable(absl::string_view key,
                              absl::string_view value) override {
    if (wtxn_ != nullptr) {
      // Its owner would wait for its own write lock.
      return absl::FailedPreconditionError(
          absl::StrCat(dir_, ": lmdb: durable replace with a batch pending"));
    }
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return Error("mdb_txn_begin", rc);
    MDB_val k = ToVal(key);
    MDB_val v = ToVal(value);
    rc = mdb_put(txn, dbi_, &k, &v, 0);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Error("mdb_put", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return Error("mdb_txn_commit", rc);
    rc = mdb_env_sync(env_, 1);
    if (rc != 0) return Error("mdb_env_sync", rc);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) override {
    MDB_txn* txn = wtxn_;
    if (txn == nullptr) {
      absl::Status s = ReadTxn(&txn);
      if (!s.ok()) return s;
    }
    MDB_val k = ToVal(key);
    MDB_val v;
    int rc = mdb_get(txn, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) return Error("mdb_get", rc);
    std::memcpy(value_out, v.mv_data, std::min(v.mv_size, value_size_));
    return true;
  }

  absl::Status Iter(const std::function<void(absl::string_view,
                                             absl::string_view)>& f) override {
    MDB_txn* txn = wtxn_;
    if (txn == nullptr) {
      absl::Status s = ReadTxn(&txn);
      if (!s.ok()) return s;
    }
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, dbi_, &cursor);
    if (rc != 0) return Error("mdb_cursor_open", rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      f(absl::string_view(static_cast<const char*>(k.mv_data), k.mv_size),
        absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND) return Error("mdb_cursor_get", rc);
    return absl::OkStatus();
  }

  absl::Status Flush(bool fsync) override {
    if (wtxn_ != nullptr) {
      absl::Status s = Commit();
      if (!s.ok()) return s;
    }
    if (fsync && !readonly_) {
      int rc = mdb_env_sync(env_, 1);
      if (rc != 0) return Error("mdb_env_sync", rc);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (env_ == nullptr) return absl::OkStatus();
    absl::Status s = Flush(false);
    if (rtxn_ != nullptr) {
      mdb_txn_abort(rtxn_);
      rtxn_ = nullptr;
    }
    CaptureStats();
    mdb_env_close(env_);
    env_ = nullptr;
    return s;
  }

  std::vector<std::pair<std::string, double>> Metrics() const override {
    return {{"lmdb_depth", static_cast<double>(depth_)},
            {"lmdb_pages", static_cast<double>(pages_)}};
  }

 private:
  absl::Status Error(absl::string_view op, int rc) const {
    return absl::InternalError(
        absl::StrCat(dir_, ": lmdb ", op, ": ", mdb_strerror(rc)));
  }

  absl::Status Commit() {
    int rc = mdb_txn_commit(wtxn_);
    wtxn_ = nullptr;
    pending_ = 0;
    if (rc != 0) return Error("mdb_txn_commit", rc);
    return absl::OkStatus();
  }

  absl::Status ReadTxn(MDB_txn** txn) {
    if (rtxn_ == nullptr) {
      int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &rtxn_);
      if (rc != 0) {
        rtxn_ = nullptr;
        return Error("mdb_txn_begin(read-only)", rc);
      }
    } else if (rtxn_reset_) {
      int rc = mdb_txn_renew(rtxn_);
      if (rc != 0) return Error("mdb_txn_renew", rc);
    }
    rtxn_reset_ = false;
    *txn = rtxn_;
    return absl::OkStatus();
  }

  void CaptureStats() {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return;
    MDB_stat st;
    if (mdb_stat(txn, dbi_, &st) == 0) {
      depth_ = st.ms_depth;
      pages_ = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    mdb_txn_abort(txn);
  }

  const size_t value_size_;
  const size_t batch_;
  uint64_t map_size_ = 0;
  std::string dir_;
  bool readonly_ = false;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  MDB_txn* wtxn_ = nullptr;
  MDB_txn* rtxn_ = nullptr;
  bool rtxn_reset_ = false;
  size_t pending_ = 0;
  uint64_t depth_ = 0;
  uint64_t pages_ = 0;
};

}  // namespace

std::unique_ptr<Store> NewLmdbStore(const StoreConfig& config) {
  return std::make_unique<LmdbStore>(config);
}

}  // namespace bench
}  // namespace kvindex
