#pragma once
// Splits a loop between the runtime's threads (the libtorch / OpenBLAS thread count) for code that
// runs its own kernels, such as the small-gemm decode path. ATen's at::parallel_for is a header
// template whose `#pragma omp parallel` only takes effect in code compiled with OpenMP; this one is
// compiled with OpenMP once (parallel.cpp), so the rest of the program needs no OpenMP flags.

#include <cstdint>
#include <functional>

namespace rlhf {

// Calls fn(begin, end) on disjoint chunks covering [0, n), on up to `threads` threads (at most one
// chunk per thread; fewer when n is smaller). Serial when threads <= 1, n <= 1, or the build has no
// OpenMP. fn must not throw.
void parallel_chunks(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn);

// Whether parallel_chunks runs on several threads in this build.
bool parallel_chunks_available();

}  // namespace rlhf
