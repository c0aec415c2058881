#include "bench/measure.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvindex {
namespace bench {

ProcIo ReadProcIo() {
  ProcIo io;
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t v = 0;
  while (in >> key >> v) {
    if (key == "rchar:") io.rchar = v;
    if (key == "wchar:") io.wchar = v;
    if (key == "syscr:") io.syscr = v;
    if (key == "syscw:") io.syscw = v;
    if (key == "read_bytes:") io.read_bytes = v;
    if (key == "write_bytes:") io.write_bytes = v;
    if (key == "cancelled_write_bytes:") io.cancelled_write_bytes = v;
  }
  return io;
}

uint64_t ProcStatusBytes(absl::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::string_view(line).substr(0, field.size()) == field &&
        line.size() > field.size() && line[field.size()] == ':') {
      std::istringstream rest(line.substr(field.size() + 1));
      uint64_t kb = 0;
      rest >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

bool ResetPeakRss() {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

AnonRssSampler::AnonRssSampler(int period_ms) : period_ms_(period_ms) {
  Sample();
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(period_ms_));
      lock.unlock();
      Sample();
      lock.lock();
    }
  });
}

AnonRssSampler::~AnonRssSampler() { Stop(); }

void AnonRssSampler::Sample() {
  uint64_t v = ProcStatusBytes("RssAnon");
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = std::max(peak_, v);
}

uint64_t AnonRssSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Sample();
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

uint64_t DiskUsage(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

}  // namespace bench
}  // namespace kvindex
