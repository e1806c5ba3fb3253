#pragma once
// An allocator for the engine's large, randomly accessed arrays (the event
// heap and the handler slots). Blocks of 2 MiB or more are aligned to 2 MiB
// and marked MADV_HUGEPAGE, so the kernel backs them with transparent huge
// pages: at a million pending events a heap walk touches a page per level,
// and with 4 KiB pages most of those levels also miss the TLB. Small blocks
// come from operator new as usual.

#include <cstddef>
#include <cstdlib>
#include <new>

#include <sys/mman.h>

namespace moesim {

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  HugePageAllocator() noexcept = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T) < 64 ? 64 : alignof(T)}));
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
    (void)::madvise(p, rounded, MADV_HUGEPAGE);  // a hint; failure only costs speed
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kHugePage) {
      ::operator delete(p, std::align_val_t{alignof(T) < 64 ? 64 : alignof(T)});
    } else {
      std::free(p);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace moesim
