// Replays fuzzer inputs without libFuzzer: every argument is a file or a
// directory (read recursively); each file's bytes go to LLVMFuzzerTestOneInput
// once. Under a sharded Bazel test (TEST_TOTAL_SHARDS, TEST_SHARD_INDEX), each
// shard replays every n-th of the inputs in path order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc,
                                                          char*** argv);

namespace {
int RunOne(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                         bytes.size());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else if (std::filesystem::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "replay_main: no such file or directory: %s\n",
                   argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  size_t shards = 1, shard = 0;
  if (const char* total = std::getenv("TEST_TOTAL_SHARDS")) {
    shards = std::max<size_t>(1, std::strtoul(total, nullptr, 10));
    if (const char* index = std::getenv("TEST_SHARD_INDEX")) {
      shard = std::strtoul(index, nullptr, 10);
    }
    // Tells Bazel this test shards itself.
    if (const char* status = std::getenv("TEST_SHARD_STATUS_FILE")) {
      std::ofstream touch(status);
    }
  }
  int count = 0;
  for (size_t i = shard; i < inputs.size(); i += shards) {
    count += RunOne(inputs[i]);
  }
  std::printf("replay_main: %d inputs replayed without a crash\n", count);
  return 0;
}
