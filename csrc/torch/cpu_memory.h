// Large fresh CPU buffers: ask the kernel for transparent huge pages before
// the first write. A new (S, C) gradient of 2^20 x 32 floats is 128 MB of
// untouched pages; with 4 KB pages its first touch costs ~32k page faults
// (more than the kernel that fills it), with 2 MB pages 64. Only a hint: on
// systems without THP (or not Linux) nothing changes.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace s3d_torch {

inline void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (!t.defined() || !t.device().is_cpu() || t.nbytes() < 4 * kHuge) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + t.nbytes()) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

}  // namespace s3d_torch
