#include "datafile/newest_records.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvindex {

NewestRecords::NewestRecords(const Schema& schema,
                             const std::vector<const DataFile*>& runs)
    : schema_(schema) {
  cursors_.reserve(runs.size());
  for (const DataFile* run : runs) {
    Cursor c;
    c.run = run;
    c.count = run->count();
    if (c.count > 0) c.hash = HashOf(run->entry(0));
    cursors_.push_back(c);
  }
  group_run_ = cursors_.size();
}

bool NewestRecords::Advance(Cursor& c) {
  ++c.next;
  ++consumed_;
  if (c.next >= c.count) return true;
  const uint64_t h = HashOf(c.run->entry(c.next));
  if (h < c.hash) {
    status_ = absl::DataLossError(
        absl::StrCat(c.run->path(), ": records not sorted by hash at offset ",
                     c.next * schema_.entry_size()));
    return false;
  }
  c.hash = h;
  return true;
}

bool NewestRecords::StartGroup() {
  bool any = false;
  uint64_t lowest = 0;
  int holders = 0;
  for (const Cursor& c : cursors_) {
    if (c.next >= c.count) continue;
    if (!any || c.hash < lowest) {
      any = true;
      lowest = c.hash;
      holders = 1;
    } else if (c.hash == lowest) {
      ++holders;
    }
  }
  if (!any) return false;
  group_hash_ = lowest;
  group_run_ = 0;
  group_shared_ = holders > 1;
  seen_.clear();
  return true;
}

bool NewestRecords::Seen(const char* entry) const {
  for (const char* s : seen_) {
    if (std::memcmp(s, entry, schema_.key_size) == 0) return true;
  }
  return false;
}

bool NewestRecords::Next(Record* out) {
  if (!status_.ok()) return false;
  for (;;) {
    while (group_run_ < cursors_.size()) {
      Cursor& c = cursors_[group_run_];
      if (c.next >= c.count || c.hash != group_hash_) {
        ++group_run_;
        continue;
      }
      const char* entry = c.run->entry(c.next);
      if (!Advance(c)) return false;
      if (group_shared_) {
        if (Seen(entry)) continue;
        seen_.push_back(entry);
      }
      out->entry = entry;
      out->hash = group_hash_;
      return true;
    }
    if (!StartGroup()) return false;
  }
}

}  // namespace kvindex
