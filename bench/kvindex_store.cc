// This library, through RawIndex (index/raw_index.h): the byte-level API that
// the typed kvindex::Index<OcamlFixedString<32>, FixedString<13>> wraps, used
// here so that keys and values are passed as views without a std::string per
// call and so that --key-size/--value-size can be chosen at run time.
//
// Configuration: the OCaml benchmark's (log_size from StoreConfig, default LRU
// of 30 000 entries, Throttle::kBlockWrites, no shared instance cache), in the
// layout StoreConfig names (the single file by default). Keys
// are hashed with OCaml's Hashtbl.hash (30 bits, the OCaml library's
// String_fixed; stores are byte-compatible with it) or, with --key-hash=xxh3,
// XXH3 64-bit. kReadOnly opens a read-only instance (it syncs once at open).
//
// Metrics: the library's process-wide Stats (kvindex::GetStats), reset when the
// benchmark child starts.
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/store.h"
#include "data/schema.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/stats.h"

namespace kvindex {
namespace bench {
namespace {

class KvIndexStore : public Store {
 public:
  KvIndexStore(std::string name, const StoreConfig& config)
      : name_(std::move(name)), config_(config) {
    schema_.key_size = config.key_size;
    schema_.value_size = config.value_size;
    if (config.key_hash == "xxh3") {
      schema_.hash_bits = 64;
      schema_.hash = &Xxh3KeyHash64;
    } else {
      schema_.hash_bits = kOcamlHashBits;
      schema_.hash = &OcamlKeyHash;
    }
    ResetStats();
  }

  ~KvIndexStore() override { (void)Close(); }

  std::string name() const override { return name_; }
  bool ReadOnlyIsNative() const override { return true; }
  bool Durable() const override { return true; }

  absl::Status Open(const std::string& dir, OpenMode mode) override {
    absl::Status s =
        mode == OpenMode::kFresh ? ResetDirectory(dir) : MakeDirectories(dir);
    if (!s.ok()) return s;
    Options options;
    options.fresh = mode == OpenMode::kFresh;
    options.readonly = mode == OpenMode::kReadOnly;
    options.log_size = config_.log_size;
    options.lru_size = config_.lru_size;
    options.layout =
        config_.layout == "tiered" ? Layout::kTiered : Layout::kSingleFile;
    options.log_checksums = config_.log_checksums;
    absl::StatusOr<std::unique_ptr<RawIndex>> index =
        RawIndex::Open(dir, schema_, options);
    if (!index.ok()) return index.status();
    index_ = *std::move(index);
    return absl::OkStatus();
  }

  absl::Status Replace(absl::string_view key,
                       absl::string_view value) override {
    return index_->Replace(key, value);
  }

  // The same calls as Replace then Flush(true). RawIndex is thread-safe;
  // whether concurrent flushes share an fsync (group commit) is the
  // library's business, and what the threaded workloads measure.
  absl::Status ReplaceDurable(absl::string_view key,
                              absl::string_view value) override {
    absl::Status s = index_->Replace(key, value);
    if (!s.ok()) return s;
    return Flush(/*fsync=*/true);
  }

  absl::StatusOr<bool> Find(absl::string_view key, char* value_out) override {
    return index_->Find(key, value_out);
  }

  absl::Status Iter(const std::function<void(absl::string_view,
                                             absl::string_view)>& f) override {
    return index_->Iter(f);
  }

  absl::Status Flush(bool fsync) override {
    if (index_->readonly()) return absl::OkStatus();
    FlushOptions options;
    options.with_fsync = fsync;
    return index_->Flush(options);
  }

  absl::Status Close() override {
    if (index_ == nullptr) return absl::OkStatus();
    absl::Status s = index_->Close();
    index_.reset();
    return s;
  }

  std::vector<std::pair<std::string, double>> Metrics() const override {
    Stats st = GetStats();
    uint64_t last = std::accumulate(st.merge_durations_us.begin(),
                                    st.merge_durations_us.end(), uint64_t{0});
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    return {
        {"kv_bytes_read", d(st.bytes_read)},
        {"kv_nb_reads", d(st.nb_reads)},
        {"kv_bytes_written", d(st.bytes_written)},
        {"kv_nb_writes", d(st.nb_writes)},
        {"nb_merges", d(st.nb_merge)},
        {"nb_merges_copied_runs", d(st.nb_merge_copied_runs)},
        // As the OCaml benchmark: the sum of the last 10 merges' durations.
        {"merges_duration_us", d(last)},
        {"merges_recorded", d(st.merge_durations_us.size())},
        // All merges and compactions, and the part of them spent checking
        // their inputs against the checksum sidecars.
        {"kv_merge_us", d(st.time_merge_us)},
        {"kv_compaction_us", d(st.time_compaction_us)},
        {"kv_verify_us", d(st.time_verify_us)},
        {"lru_hits", d(st.lru_hits)},
        {"lru_misses", d(st.lru_misses)},
        {"replace_mean_ns", d(st.replace_mean_ns)},
        // Group commit: durable flushes and the fsyncs they shared.
        {"kv_durable_flushes", d(st.nb_durable_flush)},
        {"kv_flush_fsyncs", d(st.nb_flush_fsync)},
    };
  }

 private:
  const std::string name_;
  const StoreConfig config_;
  Schema schema_;
  std::unique_ptr<RawIndex> index_;
};

}  // namespace

std::unique_ptr<Store> NewKvIndexStore(const StoreConfig& config) {
  return std::make_unique<KvIndexStore>("kvindex", config);
}

std::unique_ptr<Store> NewKvIndexTieredStore(const StoreConfig& config) {
  StoreConfig tiered = config;
  tiered.layout = "tiered";
  return std::make_unique<KvIndexStore>("kvindex_tiered", tiered);
}

}  // namespace bench
}  // namespace kvindex
