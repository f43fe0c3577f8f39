#include "core/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rlhf {

void parallel_chunks(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t t = threads < 1 ? 1 : (threads > n ? n : threads);
#ifdef _OPENMP
  if (t > 1) {
#pragma omp parallel for num_threads(static_cast<int>(t)) schedule(static, 1)
    for (int64_t c = 0; c < t; ++c) fn(n * c / t, n * (c + 1) / t);
    return;
  }
#endif
  fn(0, n);
}

bool parallel_chunks_available() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace rlhf
