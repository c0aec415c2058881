#include "io/large_array.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace kvindex {
namespace large_array_internal {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void* MapAnonymous(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

}  // namespace

void* Allocate(size_t bytes, size_t* mapped) {
  if (bytes < kHugePage) {
    *mapped = 0;
    void* p = std::calloc(bytes, 1);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  if (bytes > SIZE_MAX - 2 * kHugePage) throw std::bad_alloc();
  // Map one huge page more than needed, then unmap the unaligned head and the
  // tail, leaving a 2 MiB-aligned region a huge page can back from its start.
  *mapped = RoundUp(bytes, kHugePage);
  char* raw = static_cast<char*>(MapAnonymous(*mapped + kHugePage));
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  char* aligned = raw + (RoundUp(start, kHugePage) - start);
  if (aligned != raw) munmap(raw, static_cast<size_t>(aligned - raw));
  const size_t tail =
      static_cast<size_t>(raw + *mapped + kHugePage - (aligned + *mapped));
  if (tail > 0) munmap(aligned + *mapped, tail);
  // A hint: where transparent huge pages are off, the memory is just pages.
  (void)madvise(aligned, *mapped, MADV_HUGEPAGE);
  return aligned;
}

void Free(void* p, size_t mapped) {
  if (mapped == 0) {
    std::free(p);
  } else {
    munmap(p, mapped);
  }
}

}  // namespace large_array_internal
}  // namespace kvindex
