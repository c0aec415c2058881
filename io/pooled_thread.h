// PooledThread: runs a function on its own thread, like std::thread, but takes
// the OS thread from a process-wide cache of idle threads and gives it back
// when the function returns, so that a store opened and closed often (a
// server's short-lived handles, the fuzzers' reopens) does not pay for a
// thread's creation and teardown at every background merge or compaction.
//
//   PooledThread worker([this] { RunMerges(); });
//   ...
//   worker.join();  // the function has returned; its effects are visible
//
// Differences from std::thread: the destructor joins a thread that was not
// joined (instead of terminating), and thread_local objects of the function's
// thread live on until the OS thread exits, which may be long after join().
// At most kMaxIdle threads wait in the cache; more exit when their function
// returns. A child process made by fork() starts with an empty cache.
// Builds without KVINDEX_POOLED_THREAD_CACHE keep no idle thread (see below).
//
// Thread safety: a PooledThread object is used by one thread at a time (like
// std::thread); any number of them may start and join concurrently.
#ifndef KVINDEX_IO_POOLED_THREAD_H_
#define KVINDEX_IO_POOLED_THREAD_H_

#include <cstddef>
#include <functional>
#include <memory>

// The cache is built only with KVINDEX_POOLED_THREAD_CACHE (the fuzz
// configuration sets it): a process that fork()s while idle threads exist may
// give the child a lock one of them held, and ThreadSanitizer kills a child
// that starts a thread after such a fork. Elsewhere every PooledThread is a
// std::thread of its own, ended when join() returns.
#if defined(KVINDEX_POOLED_THREAD_CACHE) && !defined(__SANITIZE_THREAD__)
#define KVINDEX_POOLED_THREAD_KEEPS_IDLE 1
#endif

namespace kvindex {

class PooledThread {
 public:
  // Idle threads kept for reuse at most.
#ifdef KVINDEX_POOLED_THREAD_KEEPS_IDLE
  static constexpr size_t kMaxIdle = 16;
#else
  static constexpr size_t kMaxIdle = 0;
#endif

  // Not joinable.
  PooledThread() = default;
  // Starts `fn` on an idle cached thread, or on a new one.
  explicit PooledThread(std::function<void()> fn);
  ~PooledThread();

  PooledThread(PooledThread&& other) noexcept = default;
  // Joins the thread held before, if any.
  PooledThread& operator=(PooledThread&& other) noexcept;
  PooledThread(const PooledThread&) = delete;
  PooledThread& operator=(const PooledThread&) = delete;

  // True from the start until join().
  bool joinable() const { return run_ != nullptr; }
  // Blocks until the function has returned. Requires joinable().
  void join();

  // Threads waiting in the cache now (for tests).
  static size_t IdleForTesting();

  // One run of a function, shared by its PooledThread and the thread running
  // it (defined in pooled_thread.cc).
  struct Run;

 private:
  std::shared_ptr<Run> run_;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_POOLED_THREAD_H_
