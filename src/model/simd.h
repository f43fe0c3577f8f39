#pragma once
// Building blocks shared by our CPU kernels (small_gemm.cpp, dropout.cpp, fused.cpp): AVX-512 code,
// dtype dispatch and the split of element ranges over threads.
// Only the functions marked RLHF_AVX512 are compiled for AVX-512, so the program runs on any x86-64;
// callers check avx512_available() at run time and keep a portable path. Include from .cpp files only.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>

#include "core/parallel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RLHF_HAVE_AVX512 1
#define RLHF_AVX512 __attribute__((target("avx512f,fma")))
#endif

namespace rlhf::simd {

// True when this CPU runs the AVX-512 code (AVX-512F and FMA).
inline bool avx512_available() {
#ifdef RLHF_HAVE_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// fn(T* data) for a contiguous fp32 or bf16 tensor, T = float or c10::BFloat16.
template <typename Fn>
void with_data(const at::Tensor& t, Fn&& fn) {
  if (t.scalar_type() == at::kFloat)
    fn(t.data_ptr<float>());
  else
    fn(reinterpret_cast<c10::BFloat16*>(t.data_ptr<at::BFloat16>()));
}

// Threads for a kernel over `elements` elements: the runtime's from 32768 on (below that a thread
// fork costs more than it saves), else 1.
inline int kernel_threads(int64_t elements) { return elements >= (1 << 15) ? at::get_num_threads() : 1; }

// Elements per block when a kernel splits its range over threads (whole vectors).
constexpr int64_t kBlock = 4096;

// fn(begin, end) over [0, n) in whole blocks of kBlock elements, on kernel_threads(n) threads (one
// when !threaded).
template <typename Fn>
void for_blocks(int64_t n, bool threaded, Fn&& fn) {
  const int threads = threaded ? kernel_threads(n) : 1;
  parallel_chunks((n + kBlock - 1) / kBlock, threads,
                  [&](int64_t b0, int64_t b1) { fn(b0 * kBlock, std::min(n, b1 * kBlock)); });
}

// Scalar loads and stores in float for the portable loops and the tails of vector loops.
inline float to_float(float v) { return v; }
inline float to_float(c10::BFloat16 v) { return static_cast<float>(v); }
inline void put(float* p, float v) { *p = v; }
inline void put(c10::BFloat16* p, float v) { *p = c10::BFloat16(v); }  // round to nearest even, as torch

#ifdef RLHF_HAVE_AVX512

RLHF_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
RLHF_AVX512 inline __m512 load16(const c10::BFloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

RLHF_AVX512 inline void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
// fp32 -> bf16, round to nearest even, NaN -> 0x7FC0 (as c10::BFloat16).
RLHF_AVX512 inline void store16(c10::BFloat16* p, __m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_maskz_cvtepi32_epi16(0xFFFF, r));
}

// e^x, Cephes' single-precision polynomial (about 1 ulp), 2^n applied with scalef so that large
// negative inputs go smoothly to 0. Inputs are clamped to [-104, 88.38]: NaN comes out finite, so
// callers that must propagate NaN check for it themselves.
RLHF_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-103.972077083991796f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

#endif

}  // namespace rlhf::simd
