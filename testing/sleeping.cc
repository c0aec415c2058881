#include "testing/sleeping.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace kvindex {
namespace test {

int CurrentThreadId() { return static_cast<int>(syscall(SYS_gettid)); }

bool ThreadSleeps(int tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  // "tid (comm) state ...": comm may hold spaces and parentheses, so the
  // state follows the last ')'.
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() &&
         line[close + 2] == 'S';
}

void AwaitThreadSleeps(int tid) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ThreadSleeps(tid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "thread " << tid << " did not sleep within 10 s";
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void AwaitThreadsSleep(const std::atomic<int>* tids, int count) {
  for (int i = 0; i < count; ++i) {
    while (tids[i].load() == 0) std::this_thread::yield();
    AwaitThreadSleeps(tids[i].load());
  }
}

}  // namespace test
}  // namespace kvindex
