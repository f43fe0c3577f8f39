#pragma once
// y = x W^T (+ bias) for a few rows of x, reading W (out x in, row-major, as torch::nn::Linear keeps
// it) in place. OpenBLAS's sgemm copies ("packs") the whole weight matrix on every call, which at
// decode batch sizes (one row per sequence) costs as much as the multiply itself; this kernel streams
// each weight row once per call instead (llama.cpp does the same for its decode matmuls).
// AVX-512F kernels (checked at run time) with portable fallbacks; fp32; no autograd.

#include <cstdint>

namespace rlhf {

// Up to this many rows of x, small_gemm_nt split over the threads beats OpenBLAS's sgemm at every
// GPT-2-124M shape (1.1x at 128 rows, even from 192 on; bench/bench_small_gemm.cpp, AMD EPYC Zen 4,
// 2 threads).
constexpr int64_t kSmallGemmMaxRows = 128;

// True when this CPU runs the AVX-512 kernels (AVX-512F and FMA). Without them both functions below
// run plain loops, correct but slower than BLAS: callers then use the BLAS instead.
bool small_gemm_available();

// y[m][n] = sum_k x[m][k] * w[n][k] (+ bias[n]) for m < M and n in [n_begin, n_end); x is M x K
// (row stride ldx), w is N x K (row stride ldw), y is M x N (row stride ldy). bias may be null.
// Callers split [0, N) between threads; each call is single-threaded.
void small_gemm_nt(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t K, const float* bias,
                   float* y, int64_t ldy, int64_t n_begin, int64_t n_end);

// y = p v: y[m][n] = sum_s p[m][s] * v[s][n] for m < M, n < N; p is M x S, v is S x N, y is M x N
// (row strides ldp, ldv, ldy). Attention's probabilities times values for one head; the AVX-512
// kernel takes N a multiple of 16 up to 128 (every common head size). Single-threaded.
void small_gemm_nn(const float* p, int64_t ldp, int64_t M, int64_t S, const float* v, int64_t ldv, int64_t N, float* y,
                   int64_t ldy);

namespace detail {
// The plain loops small_gemm_nt / small_gemm_nn fall back to (exposed for the tests).
void gemm_nt_portable(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t K, const float* bias,
                      float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
void gemm_nn_portable(const float* p, int64_t ldp, int64_t M, int64_t S, const float* v, int64_t ldv, int64_t N, float* y,
                      int64_t ldy);
}  // namespace detail

}  // namespace rlhf
