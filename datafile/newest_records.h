// NewestRecords: several runs (data files sorted by key hash), newest first,
// read as one stream in hash order in which each key appears once, with its
// record from the newest run that holds it.
//
// The records of one hash come together: the newest run's records of that hash
// first, in file order, then those of each older run whose key no newer run
// had. A run never holds a key twice (a merge writes each key once), so a
// record is compared only with the records of its hash from newer runs, and
// only when several runs hold that hash (for a 64-bit hash, almost never).
//
// Cost: each record is hashed once; finding the next hash compares the heads
// of the runs. Nothing is allocated after construction except the key set of
// one hash, which keeps its largest size.
//
// A run whose hashes decrease somewhere is damaged: the stream stops there and
// status() is kDataLoss naming the run's file and the record's offset.
//
// Thread safety: one thread at a time; the runs must outlive the stream.
#ifndef KVINDEX_DATAFILE_NEWEST_RECORDS_H_
#define KVINDEX_DATAFILE_NEWEST_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "data/schema.h"
#include "datafile/data_file.h"

namespace kvindex {

class NewestRecords {
 public:
  struct Record {
    const char* entry = nullptr;  // key then value, inside its run's mapping
    uint64_t hash = 0;
  };

  // `runs` newest first; none may be null.
  NewestRecords(const Schema& schema, const std::vector<const DataFile*>& runs);

  // The next record: true and *out set, or false at the end or on damage
  // (then status() says which).
  bool Next(Record* out);

  const absl::Status& status() const { return status_; }
  // Records read from the runs so far, older duplicates included.
  uint64_t consumed() const { return consumed_; }

 private:
  struct Cursor {
    const DataFile* run = nullptr;
    uint64_t next = 0;   // first record not yet read
    uint64_t count = 0;  // records of the run
    uint64_t hash = 0;   // hash of record `next`, when next < count
  };

  uint64_t HashOf(const char* entry) const {
    return schema_.hash(EntryKey(schema_, entry));
  }
  // Moves `c` past its current record; false (and status_ set) if the next
  // one hashes lower.
  bool Advance(Cursor& c);
  // Starts the group of the lowest hash left; false at the end.
  bool StartGroup();
  // Whether a record of the current group already carried this key.
  bool Seen(const char* entry) const;

  const Schema schema_;
  std::vector<Cursor> cursors_;  // newest first
  // The current group: its hash, the cursor it reads from (cursors_.size()
  // once done), and whether more than one run holds the hash (only then are
  // keys checked against seen_).
  uint64_t group_hash_ = 0;
  size_t group_run_ = 0;
  bool group_shared_ = false;
  std::vector<const char*> seen_;
  uint64_t consumed_ = 0;
  absl::Status status_;
};

}  // namespace kvindex

#endif  // KVINDEX_DATAFILE_NEWEST_RECORDS_H_
