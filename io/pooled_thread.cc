#include "io/pooled_thread.h"

#include <pthread.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace kvindex {

struct PooledThread::Run {
  explicit Run(std::function<void()> f) : fn(std::move(f)) {}

  std::function<void()> fn;  // taken by the running thread
  // Without a cache (kMaxIdle == 0): the run's own thread, which join() joins,
  // so that it has ended (not only returned) when join() returns.
  std::thread own;
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
};

namespace {

using Run = PooledThread::Run;

// The process-wide cache of idle threads.
class ThreadCache {
 public:
  // Never destroyed: idle threads still wait on it while the process exits.
  static ThreadCache& Get() {
    static ThreadCache* const cache = new ThreadCache();
    return *cache;
  }

  void Start(std::shared_ptr<Run> run) {
    if (PooledThread::kMaxIdle == 0) {
      run->own = std::thread(std::move(run->fn));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        Worker* worker = idle_.back();
        idle_.pop_back();
        worker->next = std::move(run);
        worker->wake.Signal();
        return;
      }
    }
    std::thread([this, run = std::move(run)]() mutable {
      Serve(std::move(run));
    }).detach();
  }

  size_t Idle() {
    absl::MutexLock lock(&mu_);
    return idle_.size();
  }

 private:
  // An OS thread of the cache, as seen while it is idle.
  struct Worker {
    absl::CondVar wake;
    std::shared_ptr<Run> next;  // guarded by mu_: the run handed to it
  };

  // fork() copies the cache's list but none of its threads: the child
  // forgets them. Holding mu_ across the fork keeps the list consistent.
  ThreadCache() {
    idle_.reserve(PooledThread::kMaxIdle);
    pthread_atfork(BeforeFork, AfterForkParent, AfterForkChild);
  }
  static void BeforeFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { Get().mu_.Lock(); }
  static void AfterForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Get().mu_.Unlock();
  }
  static void AfterForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Get().idle_.clear();
    Get().mu_.Unlock();
  }

  // The body of every cached thread: runs `run`, then waits for the next one
  // unless the cache is full.
  void Serve(std::shared_ptr<Run> run) {
    Worker self;
    while (run != nullptr) {
      {
        // The function and its captures are gone before join() returns, as
        // with std::thread.
        std::function<void()> fn = std::move(run->fn);
        fn();
      }
      // Back in the cache before join() returns: a thread started right after
      // the join finds this one instead of creating another.
      bool cached = false;
      {
        absl::MutexLock lock(&mu_);
        if (idle_.size() < PooledThread::kMaxIdle) {
          idle_.push_back(&self);
          cached = true;
        }
      }
      {
        absl::MutexLock lock(&run->mu);
        run->done = true;
      }
      run.reset();
      if (!cached) return;
      absl::MutexLock lock(&mu_);
      while (self.next == nullptr) self.wake.Wait(&mu_);
      run = std::move(self.next);
    }
  }

  absl::Mutex mu_;
  std::vector<Worker*> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

PooledThread::PooledThread(std::function<void()> fn)
    : run_(std::make_shared<Run>(std::move(fn))) {
  ThreadCache::Get().Start(run_);
}

PooledThread::~PooledThread() {
  if (joinable()) join();
}

PooledThread& PooledThread::operator=(PooledThread&& other) noexcept {
  if (this != &other) {
    if (joinable()) join();
    run_ = std::move(other.run_);
  }
  return *this;
}

void PooledThread::join() {
  std::shared_ptr<Run> run = std::move(run_);
  if (run->own.joinable()) {
    run->own.join();
    return;
  }
  absl::MutexLock lock(&run->mu);
  run->mu.Await(absl::Condition(&run->done));
}

size_t PooledThread::IdleForTesting() { return ThreadCache::Get().Idle(); }

}  // namespace kvindex
