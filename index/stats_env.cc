#include "index/stats_env.h"

#include <optional>
#include <string>
#include <utility>

#include "index/stats.h"

namespace kvindex {
namespace {

class StatsFile : public File {
 public:
  explicit StatsFile(std::unique_ptr<File> base) : base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  absl::Status PRead(uint64_t offset, size_t n, char* dst,
                     size_t* bytes_read) const override {
    absl::Status s = base_->PRead(offset, n, dst, bytes_read);
    if (s.ok()) stats_internal::AddRead(*bytes_read);
    return s;
  }
  absl::Status PWrite(uint64_t offset, absl::string_view data) override {
    absl::Status s = base_->PWrite(offset, data);
    if (s.ok()) stats_internal::AddWrite(data.size());
    return s;
  }
  absl::Status Sync() override { return base_->Sync(); }
  absl::Status Allocate(uint64_t end) override { return base_->Allocate(end); }
  void StartWriteback(uint64_t offset, uint64_t n) override {
    base_->StartWriteback(offset, n);
  }
  void StartReadahead(uint64_t offset, uint64_t n) const override {
    base_->StartReadahead(offset, n);
  }
  absl::StatusOr<uint64_t> Size() const override { return base_->Size(); }
  absl::StatusOr<FileId> Id() const override { return base_->Id(); }
  absl::StatusOr<std::shared_ptr<const MappedRegion>> Map(
      uint64_t size) const override {
    return base_->Map(size);
  }
  absl::StatusOr<std::shared_ptr<const MappedRegion>> MapResident(
      uint64_t size) const override {
    return base_->MapResident(size);
  }

 private:
  std::unique_ptr<File> base_;
};

class StatsEnv : public EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override {
    auto f = target()->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new StatsFile(*std::move(f)));
  }
  // Forwarded (EnvWrapper does not): the target's probes build no error for
  // a missing file.
  absl::StatusOr<std::unique_ptr<File>> OpenFileIfExists(
      const std::string& path, OpenMode mode) override {
    auto f = target()->OpenFileIfExists(path, mode);
    if (!f.ok() || *f == nullptr) return f;
    return std::unique_ptr<File>(new StatsFile(*std::move(f)));
  }
  absl::StatusOr<std::optional<std::string>> ReadFileIfExists(
      const std::string& path) override {
    return target()->ReadFileIfExists(path);
  }
};

}  // namespace

std::unique_ptr<Env> NewStatsEnv(Env* base) {
  return std::make_unique<StatsEnv>(base);
}

}  // namespace kvindex
