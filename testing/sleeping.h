// Whether a thread sleeps in the kernel: for tests of code that puts threads
// to sleep on futexes (io/epoch.h) and must check whom a wake-up reaches. A
// wake-up sent before a thread sleeps reaches it in another way (its wait
// returns at once), so such a test first waits until every thread it counts
// really sleeps.
//
// Linux: reads the thread's state from /proc/self/task/<tid>/stat.
#ifndef KVINDEX_TESTING_SLEEPING_H_
#define KVINDEX_TESTING_SLEEPING_H_

#include <atomic>

namespace kvindex {
namespace test {

// The calling thread's kernel thread id.
int CurrentThreadId();

// Whether thread `tid` of this process is in an interruptible sleep (state S:
// a futex wait, among others). False if the state cannot be read.
bool ThreadSleeps(int tid);

// Returns once ThreadSleeps(tid); fails the test (and returns) if that takes
// more than ten seconds.
void AwaitThreadSleeps(int tid);

// Returns once each of `count` threads has stored its CurrentThreadId in
// tids[i] (0 until then) and sleeps, as AwaitThreadSleeps.
void AwaitThreadsSleep(const std::atomic<int>* tids, int count);

}  // namespace test
}  // namespace kvindex

#endif  // KVINDEX_TESTING_SLEEPING_H_
