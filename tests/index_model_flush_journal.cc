#include "tests/index_model_flush_journal.h"

#include <algorithm>
#include <set>

#include "absl/status/statusor.h"
#include "io/file_header.h"
#include "model/model.h"

namespace kvindex {
namespace index_model_test {
namespace {

// Problem text kept per TakeProblems; the rest is dropped.
constexpr size_t kMaxProblemBytes = 2000;

}  // namespace

void FlushJournal::Issue(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  first_issue_.emplace(Record(key, value), issued_++);
}

void FlushJournal::OnFlush() {
  absl::MutexLock lock(&mu_);
  ++calls_;
  CheckLogs("callback #" + std::to_string(calls_));
  persisted_ = issued_;
}

void FlushJournal::Audit() {
  absl::MutexLock lock(&mu_);
  CheckLogs("audit");
}

std::string FlushJournal::TakeProblems() {
  absl::MutexLock lock(&mu_);
  std::string out;
  out.swap(problems_);
  return out;
}

std::vector<FlushJournal::Record> FlushJournal::CommittedRecords(
    const std::string& name) const {
  std::vector<Record> records;
  const std::string path = root_ + "/index/" + name;
  const absl::StatusOr<std::string> bytes = env_->Contents(path);
  if (!bytes.ok()) return records;
  const absl::StatusOr<FileHeader> header = FileHeader::DecodeRaw(*bytes, path);
  if (!header.ok() || header->offset < 0 || header->fan_size < 0) {
    return records;
  }
  const uint64_t start = FileHeader::kSize + header->fan_size;
  if (start > bytes->size()) return records;
  const size_t e = schema_.entry_size();
  const uint64_t end =
      start + std::min<uint64_t>(header->offset, bytes->size() - start) / e * e;
  for (uint64_t at = start; at < end; at += e) {
    records.emplace_back(
        bytes->substr(at, schema_.key_size),
        bytes->substr(at + schema_.key_size, schema_.value_size));
  }
  return records;
}

void FlushJournal::CheckLogs(const std::string& when) {
  for (const char* name : {"log", "log_async"}) CheckLog(name, when);
}

void FlushJournal::CheckLog(const std::string& name, const std::string& when) {
  std::set<Record> reported;
  for (const Record& record : CommittedRecords(name)) {
    auto it = first_issue_.find(record);
    if (it != first_issue_.end() && it->second < persisted_) continue;
    if (!reported.insert(record).second) continue;
    if (problems_.size() > kMaxProblemBytes) return;
    problems_ += when + ": " + name + " holds " + model::Quote(record.first) +
                 "=" + model::Quote(record.second) + ", " +
                 (it == first_issue_.end()
                      ? std::string("which no replace wrote")
                      : "written by replace #" + std::to_string(it->second) +
                            " (from 0), but the last callback before ran "
                            "after only " +
                            std::to_string(persisted_) + " replaces") +
                 "\n";
  }
}

}  // namespace index_model_test
}  // namespace kvindex
