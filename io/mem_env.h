// MemEnv: an in-memory Env that simulates power loss and injects IO errors, for
// tests, fuzzers and model checks (never the real disk there).
//
// Crash model. For every file, MemEnv keeps the bytes as of its last File::Sync
// and the list of writes issued since. Directory entries (create, rename,
// remove) likewise are durable only after SyncDir of their directory. A crash
// keeps the synced state plus a prefix of what was issued after it: per file,
// the first k unsynced writes in issue order, the next one possibly torn (a
// prefix of its bytes); per directory, the first j unsynced entry operations.
// k, j and the tear are chosen from CrashOptions::seed. So a crash can lose
// anything not synced, but by default never reorders writes to one file.
//
// With CrashOptions::pages_in_any_order, a crash is a power cut on a device
// that writes pages back in any order: each page reaches the disk at any one
// of its versions, independently of the others, so a header can survive
// without the pages of records it covers, which then read as zeros (or as
// what the page held before).
//
// With CrashOptions::dir_ops_in_any_order, a directory's unsynced entry
// operations survive each by its own draw, as on a file system that writes
// directory blocks back in any order: a later rename can survive without an
// earlier one.
//
// With CrashOptions::overwrites_overtake_appends, a crash may also keep some
// later writes out of order, as a file system that writes back a rewritten
// page before the pages that extend the file: after the kept prefix (and the
// torn write, if any), each later unsynced write that lies entirely within the
// length the file has so far (an overwrite in place, such as a header's offset
// update) survives whole or not at all, each by a draw; the survivors apply in
// issue order. A write reaching past that length never survives out of order,
// so no hole of zeros appears; the file's length is the prefix's. A header can
// then claim more bytes than the file holds, or end inside a torn record.
//
// Typical crash test:
//   env.CrashAfter(n);         // the n-th mutating operation from now is the
//                              // last one to take effect
//   RunWorkload(&env);         // later operations fail with kAborted
//   env.Restart({.seed = s});  // computes the post-crash state; the env
//                              // works again
//   Reopen(&env);              // ... and checks what the store shows
//
// Thread safety: all methods are thread-safe.
#ifndef KVINDEX_IO_MEM_ENV_H_
#define KVINDEX_IO_MEM_ENV_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "io/env.h"

namespace kvindex {

struct CrashOptions {
  // Chooses how much of the unsynced state survives.
  uint64_t seed = 0;
  // false: drop every unsynced write and directory operation (the harshest
  // crash).
  bool keep_unsynced_prefix = true;
  // Whether the last surviving unsynced write may be cut short.
  bool tear_last_write = true;
  // Whether later unsynced overwrites within the kept length may survive
  // although earlier writes did not (see the crash model above). Needs
  // keep_unsynced_prefix.
  bool overwrites_overtake_appends = false;
  // Power loss on a device that persists pages in any order: each page (of
  // `page_size` bytes) that unsynced writes touched survives at one of its
  // versions (as synced, or after the first j of the writes that touched it),
  // each page by its own draw, and the file's length is one it had after some
  // prefix of its writes. A page past the synced length that kept none of its
  // writes reads as zeros: a hole under an offset that did reach the disk.
  // Overrides the three options above; directory operations keep a prefix.
  bool pages_in_any_order = false;
  uint64_t page_size = 4096;
  // A file system that writes its directory blocks back in any order (ext2,
  // or ext4 without a journal): each directory operation issued since the
  // directory's last SyncDir survives by its own draw, not as a prefix. A
  // rename within one directory stays one operation (all or nothing).
  // Overrides the prefix drawn for directories by the options above.
  bool dir_ops_in_any_order = false;
};

// Operation kinds, as a bit mask, for error injection and operation counting.
enum MemEnvOp : uint32_t {
  kOpRead = 1u << 0,
  kOpWrite = 1u << 1,
  kOpSync = 1u << 2,
  kOpOpen = 1u << 3,
  kOpRename = 1u << 4,
  kOpRemove = 1u << 5,
  kOpSyncDir = 1u << 6,
  kOpLock = 1u << 7,
  // Operations that change what a crash can leave behind.
  kOpMutating = kOpWrite | kOpSync | kOpRename | kOpRemove | kOpSyncDir,
  kOpAll = 0xffu,
};

class MemEnv : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  // --- Env ---
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 OpenMode mode) override;
  absl::StatusOr<bool> FileExists(const std::string& path) override;
  absl::StatusOr<FileId> PathId(const std::string& path) override;
  absl::Status RenameFile(const std::string& src,
                          const std::string& dst) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status CreateDirs(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;
  absl::StatusOr<std::string> ReadFileToString(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<File>> OpenFileIfExists(
      const std::string& path, OpenMode mode) override;
  absl::StatusOr<std::optional<std::string>> ReadFileIfExists(
      const std::string& path) override;

  // --- Crash simulation ---

  // Number of mutating operations (kOpMutating) performed so far.
  uint64_t mutation_count() const;
  // After `n` more mutating operations succeed, the env "loses power": every
  // later operation (of any kind, on any file or lock) fails with kAborted
  // until Restart. n == 0 crashes before the next mutating operation.
  void CrashAfter(uint64_t n);
  // True once the crash point was reached (and until Restart).
  bool crashed() const;
  // Simulates the power loss now (if CrashAfter has not already) and reboots:
  // files and directories take their post-crash contents, all locks are
  // released, Files opened before stay dead (every operation kAborted), and the
  // env works normally again.
  void Restart(const CrashOptions& options);

  // --- Fault injection ---

  // The next `skip` operations matching `op_mask` succeed, then the following
  // `count` fail with `error` (e.g. absl::InternalError("EIO"),
  // absl::ResourceExhaustedError("ENOSPC")); count < 0 means for ever.
  void InjectError(uint32_t op_mask, uint64_t skip, int64_t count,
                   absl::Status error);
  void ClearInjectedErrors();
  // When on, every PRead returns at most half of what was asked (at least 1
  // byte), like a pread(2) interrupted early.
  void SetShortReads(bool on);
  // A full disk: a write that would make the files hold more than `bytes` in
  // all fails with kResourceExhausted (ENOSPC, naming the file) and changes
  // nothing. nullopt lifts the limit. Space is counted as SpaceUsed() counts
  // it.
  void SetSpaceLimit(std::optional<uint64_t> bytes);
  // Bytes of the current contents of every file a directory names (a removed
  // file's space is free at once, even while it is open).
  uint64_t SpaceUsed() const;

  // --- Inspection and damage (tests) ---

  // Current (not necessarily durable) contents; kNotFound if missing.
  absl::StatusOr<std::string> Contents(const std::string& path) const;
  // Replaces a file's contents (created if missing), durable at once: a
  // crash keeps it whatever directory operations on its name are pending.
  void SetContents(const std::string& path, std::string bytes);
  // Paths of every existing file, sorted.
  std::vector<std::string> ListFiles() const;
  // Number of Files currently open on `path` (leak checks).
  int OpenCount(const std::string& path) const;
  // Bytes of `path` named by StartWriteback hints so far (overlaps counted
  // again), whatever name the file had then.
  uint64_t WritebackHinted(const std::string& path) const;
  // Likewise for StartReadahead hints.
  uint64_t ReadaheadHinted(const std::string& path) const;
  // Likewise for the bytes mapped by MapResident.
  uint64_t ResidentMapped(const std::string& path) const;

 private:
  struct Inode;
  struct State;
  class MemFile;
  class MemLock;
  // Per-path tallies, by normalised path (looked up by absl::string_view).
  using Tallies = std::map<std::string, uint64_t, std::less<>>;
  // The count of `path` in one of the state's per-path tallies.
  uint64_t Tally(Tallies State::*tally, const std::string& path) const;
  std::shared_ptr<State> state_;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_MEM_ENV_H_
