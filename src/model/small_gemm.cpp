#include "model/small_gemm.h"

#include "model/simd.h"

namespace rlhf {

namespace detail {

void gemm_nt_portable(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t K, const float* bias,
                      float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = n_begin; n < n_end; ++n) {
      const float* a = x + m * ldx;
      const float* b = w + n * ldw;
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += a[k] * b[k];
      y[m * ldy + n] = s + (bias ? bias[n] : 0.0f);
    }
}

void gemm_nn_portable(const float* p, int64_t ldp, int64_t M, int64_t S, const float* v, int64_t ldv, int64_t N, float* y,
                      int64_t ldy) {
  for (int64_t m = 0; m < M; ++m) {
    float* out = y + m * ldy;
    for (int64_t n = 0; n < N; ++n) out[n] = 0;
    for (int64_t s = 0; s < S; ++s) {
      const float ps = p[m * ldp + s];
      const float* row = v + s * ldv;
      for (int64_t n = 0; n < N; ++n) out[n] += ps * row[n];
    }
  }
}

}  // namespace detail

#ifdef RLHF_HAVE_AVX512

namespace {

// Register tile: MR rows of x against NR rows of w, 16 floats of k per step. 6 x 4 = 24 accumulators
// plus 4 weight vectors and 1 input vector fit the 32 zmm registers; per step 10 loads feed 24 FMAs.
constexpr int kMR = 6;
constexpr int kNR = 4;

// Sums of four 16-lane vectors as one 4-lane vector {sum a, sum b, sum c, sum d}.
// (Masked extracts for both halves: GCC 12 warns about the undefined lanes of the unmasked forms and
// of _mm512_castps512_ps256; this runs once per output element, so the extra instruction is free.)
RLHF_AVX512 inline __m256 half(__m512 v) {  // lanes 0-7 + lanes 8-15
  const __m512d d = _mm512_castps_pd(v);
  return _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)),
                       _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)));
}

RLHF_AVX512 inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m256 ab = _mm256_hadd_ps(half(a), half(b));  // a01 a23 b01 b23 | a45 a67 b45 b67 (pairs of 8-lane sums)
  __m256 cd = _mm256_hadd_ps(half(c), half(d));
  __m256 abcd = _mm256_hadd_ps(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

template <int MR, int NR>
RLHF_AVX512 void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, const float* bias, float* y,
                      int64_t ldy) {
  __m512 acc[MR][kNR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int n = 0; n < kNR; ++n) acc[m][n] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) wv[n] = _mm512_loadu_ps(w + n * ldw + k);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m512 xv = _mm512_loadu_ps(x + m * ldx + k);
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_fmadd_ps(xv, wv[n], acc[m][n]);
    }
  }
  if (k < K) {  // the last K % 16 columns, with masked loads that never touch memory past the row
    const __mmask16 tail = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) wv[n] = _mm512_maskz_loadu_ps(tail, w + n * ldw + k);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m512 xv = _mm512_maskz_loadu_ps(tail, x + m * ldx + k);
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_fmadd_ps(xv, wv[n], acc[m][n]);
    }
  }
  float bv[kNR] = {0, 0, 0, 0};
  if (bias)
    for (int n = 0; n < NR; ++n) bv[n] = bias[n];
  const __m128 b = _mm_loadu_ps(bv);
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    __m128 s = _mm_add_ps(sum4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]), b);
    if constexpr (NR == kNR) {
      _mm_storeu_ps(y + m * ldy, s);
    } else {
      float out[kNR];
      _mm_storeu_ps(out, s);
      for (int n = 0; n < NR; ++n) y[m * ldy + n] = out[n];
    }
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t);

template <int MR>
constexpr TileFn tile_for(int nr) {
  return nr == 4 ? tile<MR, 4> : nr == 3 ? tile<MR, 3> : nr == 2 ? tile<MR, 2> : tile<MR, 1>;
}

TileFn tile_fn(int mr, int nr) {
  switch (mr) {
    case 6: return tile_for<6>(nr);
    case 5: return tile_for<5>(nr);
    case 4: return tile_for<4>(nr);
    case 3: return tile_for<3>(nr);
    case 2: return tile_for<2>(nr);
    default: return tile_for<1>(nr);
  }
}

// y (MR x N) = p (MR x S) v (S x N) for N = 16 * NV: broadcast p[m][s], multiply-add row s of v.
template <int MR, int NV>
RLHF_AVX512 void tile_nn(const float* p, int64_t ldp, int64_t S, const float* v, int64_t ldv, float* y, int64_t ldy) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[m][j] = _mm512_setzero_ps();
  for (int64_t s = 0; s < S; ++s) {
    __m512 vv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) vv[j] = _mm512_loadu_ps(v + s * ldv + 16 * j);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m512 pm = _mm512_set1_ps(p[m * ldp + s]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[m][j] = _mm512_fmadd_ps(pm, vv[j], acc[m][j]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(y + m * ldy + 16 * j, acc[m][j]);
}

// N a multiple of 16, at most 128 (head dimensions: 64, 80, 96, 128); 4 rows of p at a time.
RLHF_AVX512 void gemm_nn_avx512(const float* p, int64_t ldp, int64_t M, int64_t S, const float* v, int64_t ldv, int64_t N,
                                float* y, int64_t ldy) {
  using Fn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
  static constexpr Fn four[8] = {tile_nn<4, 1>, tile_nn<4, 2>, tile_nn<4, 3>, tile_nn<4, 4>,
                                 tile_nn<4, 5>, tile_nn<4, 6>, tile_nn<4, 7>, tile_nn<4, 8>};
  static constexpr Fn one[8] = {tile_nn<1, 1>, tile_nn<1, 2>, tile_nn<1, 3>, tile_nn<1, 4>,
                                tile_nn<1, 5>, tile_nn<1, 6>, tile_nn<1, 7>, tile_nn<1, 8>};
  const int nv = static_cast<int>(N / 16);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) four[nv - 1](p + m * ldp, ldp, S, v, ldv, y + m * ldy, ldy);
  for (; m < M; ++m) one[nv - 1](p + m * ldp, ldp, S, v, ldv, y + m * ldy, ldy);
}

RLHF_AVX512 void gemm_nt_avx512(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t K,
                                const float* bias, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
  // Weight tiles outermost: each block of kNR weight rows is read from memory once and stays in
  // cache while every row of x (a few KB to a few hundred KB, in L2) passes over it.
  for (int64_t n0 = n_begin; n0 < n_end; n0 += kNR) {
    const int nr = static_cast<int>(n_end - n0 < kNR ? n_end - n0 : kNR);
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int mr = static_cast<int>(M - m0 < kMR ? M - m0 : kMR);
      tile_fn(mr, nr)(x + m0 * ldx, ldx, w + n0 * ldw, ldw, K, bias ? bias + n0 : nullptr, y + m0 * ldy + n0, ldy);
    }
  }
}

}  // namespace

#endif  // RLHF_HAVE_AVX512

bool small_gemm_available() { return simd::avx512_available(); }

void small_gemm_nt(const float* x, int64_t ldx, int64_t M, const float* w, int64_t ldw, int64_t K, const float* bias,
                   float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
#ifdef RLHF_HAVE_AVX512
  if (small_gemm_available()) return gemm_nt_avx512(x, ldx, M, w, ldw, K, bias, y, ldy, n_begin, n_end);
#endif
  detail::gemm_nt_portable(x, ldx, M, w, ldw, K, bias, y, ldy, n_begin, n_end);
}

void small_gemm_nn(const float* p, int64_t ldp, int64_t M, int64_t S, const float* v, int64_t ldv, int64_t N, float* y,
                   int64_t ldy) {
#ifdef RLHF_HAVE_AVX512
  if (small_gemm_available() && N % 16 == 0 && N <= 128) return gemm_nn_avx512(p, ldp, M, S, v, ldv, N, y, ldy);
#endif
  detail::gemm_nn_portable(p, ldp, M, S, v, ldv, N, y, ldy);
}

}  // namespace rlhf
