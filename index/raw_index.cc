#include "index/raw_index.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/instance.h"
#include "io/index_file.h"
#include "io/status_macros.h"

namespace kvindex {

using index_internal::Instance;

struct InstanceCache::Impl {
  absl::Mutex mu;
  std::map<std::pair<std::string, bool>, std::weak_ptr<Instance>> instances
      ABSL_GUARDED_BY(mu);
};

InstanceCache::InstanceCache() : impl_(std::make_unique<Impl>()) {}
InstanceCache::~InstanceCache() = default;

absl::StatusOr<std::unique_ptr<RawIndex>> RawIndex::Open(
    const std::string& root, const Schema& schema, const Options& options) {
  if (options.readonly && options.fresh) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": a read-only index cannot be opened with fresh = true"));
  }
  if (options.cache == nullptr) {
    auto instance = Instance::Create(root, schema, options);
    if (!instance.ok()) return instance.status();
    return std::unique_ptr<RawIndex>(new RawIndex(*std::move(instance)));
  }
  InstanceCache::Impl& cache = *options.cache->impl_;
  absl::MutexLock lock(&cache.mu);
  const auto key = std::make_pair(root, options.readonly);
  auto it = cache.instances.find(key);
  if (it != cache.instances.end()) {
    std::shared_ptr<Instance> shared = it->second.lock();
    Env* env = options.env != nullptr ? options.env : Env::Posix();
    auto log_exists = env->FileExists(StorePath(root, "log"));
    // A store deleted behind the cache's back gets a new instance.
    if (shared != nullptr && log_exists.ok() && *log_exists &&
        shared->AddHandle()) {
      if (shared->schema().entry_size() != schema.entry_size()) {
        (void)shared->CloseHandle(false);
        return absl::InvalidArgumentError(
            absl::StrCat(root, ": already open with entries of ",
                         shared->schema().entry_size(), " bytes, not ",
                         schema.entry_size()));
      }
      std::unique_ptr<RawIndex> handle(new RawIndex(shared));
      absl::Status st;
      if (options.readonly) st = shared->Sync();
      if (st.ok() && options.fresh) st = shared->Clear();
      if (!st.ok()) return st;
      return handle;
    }
    cache.instances.erase(key);
  }
  auto instance = Instance::Create(root, schema, options);
  if (!instance.ok()) return instance.status();
  cache.instances[key] = *instance;
  return std::unique_ptr<RawIndex>(new RawIndex(*std::move(instance)));
}

RawIndex::RawIndex(std::shared_ptr<Instance> instance)
    : instance_(std::move(instance)) {}

RawIndex::~RawIndex() { (void)Close(false); }

const Schema& RawIndex::schema() const { return instance_->schema(); }
const std::string& RawIndex::root() const { return instance_->root(); }
bool RawIndex::readonly() const { return instance_->readonly(); }

absl::StatusOr<Instance*> RawIndex::Live() const {
  // A call racing with Close may still go through: it counts as made before.
  if (closed_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError(
        absl::StrCat(instance_->root(), ": index is closed"));
  }
  return instance_.get();
}

absl::StatusOr<bool> RawIndex::Find(absl::string_view key,
                                    char* value_out) const {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Find(key, value_out);
}

absl::StatusOr<bool> RawIndex::Mem(absl::string_view key) const {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Find(key, nullptr);
}

absl::Status RawIndex::Replace(absl::string_view key, absl::string_view value,
                               bool overcommit) {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Replace(key, value, overcommit);
}

absl::Status RawIndex::Filter(
    const std::function<bool(absl::string_view, absl::string_view)>& keep) {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Filter(keep);
}

absl::Status RawIndex::Iter(
    const std::function<void(absl::string_view, absl::string_view)>& f) const {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Iter(f);
}

absl::Status RawIndex::Clear() {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Clear();
}

absl::Status RawIndex::Flush(const FlushOptions& options) {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Flush(options);
}

absl::Status RawIndex::Merge() {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Merge(/*force=*/true);
}

absl::Status RawIndex::TryMerge() {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Merge(/*force=*/false);
}

absl::Status RawIndex::AwaitMerge() {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->AwaitMerge();
}

absl::StatusOr<bool> RawIndex::IsMerging() const {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->IsMerging();
}

absl::Status RawIndex::Sync() {
  KVINDEX_ASSIGN_OR_RETURN(Instance* const instance, Live());
  return instance->Sync();
}

absl::Status RawIndex::Close(bool immediately) {
  // Only the first Close releases the handle.
  if (closed_.exchange(true, std::memory_order_acq_rel)) {
    return absl::OkStatus();
  }
  return instance_->CloseHandle(immediately);
}

std::vector<std::string> RawIndex::TEST_LogEntries() const {
  return instance_->LogEntries(/*async=*/false);
}

std::vector<std::string> RawIndex::TEST_LogAsyncEntries() const {
  return instance_->LogEntries(/*async=*/true);
}

}  // namespace kvindex
