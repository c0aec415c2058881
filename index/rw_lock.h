// RwLock: the reader-writer lock guarding an instance's logs and data file.
//
// A thin wrapper over a POSIX rwlock that prefers writers (so that a stream of
// finds never starves replaces), annotated for Clang's thread-safety analysis.
// Uncontended, a read lock and unlock cost a third of absl::Mutex's, which the
// find path takes on every call. Not reentrant: a thread holding it must not
// take it again (a waiting writer would deadlock it).
#ifndef KVINDEX_INDEX_RW_LOCK_H_
#define KVINDEX_INDEX_RW_LOCK_H_

#include <pthread.h>

#include <cstdlib>

#include "absl/base/thread_annotations.h"

namespace kvindex {
namespace index_internal {

class ABSL_LOCKABLE RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  // Failures only come from misuse (a deadlock or an unlock not held): abort.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (pthread_rwlock_wrlock(&lock_) != 0) std::abort();
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
    if (pthread_rwlock_rdlock(&lock_) != 0) std::abort();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    if (pthread_rwlock_unlock(&lock_) != 0) std::abort();
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { Unlock(); }

 private:
  pthread_rwlock_t lock_;
};

class ABSL_SCOPED_LOCKABLE WriterLock {
 public:
  explicit WriterLock(RwLock* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~WriterLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  RwLock* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderLock {
 public:
  explicit ReaderLock(RwLock* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  RwLock* const mu_;
};

}  // namespace index_internal
}  // namespace kvindex

#endif  // KVINDEX_INDEX_RW_LOCK_H_
