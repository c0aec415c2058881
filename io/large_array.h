// LargeArray<T>: a fixed-size array of trivially copyable T in anonymous
// memory, zero-initialised, for the index's big random-access tables (the log
// table's slots and marks, the LRU).
//
// Why not std::vector: a find touches one random cache line in each of these
// tables, and with 4 KiB pages each such access usually also misses the TLB;
// in a virtual machine a TLB miss is a two-dimensional page walk that can cost
// more than the cache miss itself. Arrays of 2 MiB or more are mapped
// separately, aligned to 2 MiB and madvise(MADV_HUGEPAGE)d, so the kernel backs
// them with transparent huge pages where it can (a hint: without them the array
// works the same); smaller ones come from calloc.
//
// Allocation failure throws std::bad_alloc, like std::vector.
//
// Thread safety: like a plain array.
#ifndef KVINDEX_IO_LARGE_ARRAY_H_
#define KVINDEX_IO_LARGE_ARRAY_H_

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace kvindex {
namespace large_array_internal {

// `bytes` (> 0) of zeroed memory. *mapped is the size of its own mapping, or 0
// when it came from calloc. Throws std::bad_alloc.
void* Allocate(size_t bytes, size_t* mapped);
// Releases what Allocate returned, with its *mapped.
void Free(void* p, size_t mapped);

}  // namespace large_array_internal

template <typename T>
class LargeArray {
  static_assert(std::is_trivially_copyable<T>::value,
                "LargeArray holds plain data: it is zero-filled, never "
                "constructed");

 public:
  LargeArray() = default;
  explicit LargeArray(size_t n) : size_(n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    if (n > 0) {
      data_ = static_cast<T*>(
          large_array_internal::Allocate(n * sizeof(T), &mapped_));
    }
  }
  LargeArray(const LargeArray&) = delete;
  LargeArray& operator=(const LargeArray&) = delete;
  LargeArray(LargeArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        mapped_(std::exchange(o.mapped_, 0)) {}
  LargeArray& operator=(LargeArray&& o) noexcept {
    if (this != &o) {
      Release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }
  ~LargeArray() { Release(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t bytes() const { return size_ * sizeof(T); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  void Release() {
    if (data_ != nullptr) large_array_internal::Free(data_, mapped_);
    data_ = nullptr;
    size_ = 0;
    mapped_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_LARGE_ARRAY_H_
