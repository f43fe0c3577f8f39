#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/parallel.h"
#include "model/simd.h"

namespace rlhf {

namespace {

constexpr uint32_t kGolden = 0x9E3779B9u;
constexpr uint32_t kHigh = 0x85EBCA6Bu;

// Chris Wellons' "lowbias32" integer hash: a bijection on 32 bits with low bias.
inline uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Both halves of the index and of the seed feed the hash; the loops below hoist the high halves.
inline uint32_t second_key(uint64_t seed, uint64_t index) {
  return static_cast<uint32_t>(seed >> 32) ^ (static_cast<uint32_t>(index >> 32) * kHigh);
}

inline uint32_t hash_with(uint32_t low_index, uint32_t k0, uint32_t k1) {
  return mix(mix(low_index * kGolden + k0) ^ k1);
}

// Elements [begin, end) of one call whose indices share their high 32 bits.
template <typename T>
void apply_portable(const T* in, T* out, int64_t begin, int64_t end, uint64_t index0, uint64_t seed, uint32_t threshold,
                    float scale) {
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = second_key(seed, index0 + begin);
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t h = hash_with(static_cast<uint32_t>(index0 + i), k0, k1);
    simd::put(out + i, h >= threshold ? simd::to_float(in[i]) * scale : 0.0f);
  }
}

#ifdef RLHF_HAVE_AVX512

RLHF_AVX512 inline __m512i mix16(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846ca68bu)));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  return x;
}

// Keep mask of the 16 elements whose low index halves start at `low`.
RLHF_AVX512 inline __mmask16 keep16(uint32_t low, uint32_t k0, uint32_t k1, uint32_t threshold) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i x = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(low)), lane);
  x = _mm512_add_epi32(_mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(kGolden))),
                       _mm512_set1_epi32(static_cast<int>(k0)));
  x = mix16(_mm512_xor_si512(mix16(x), _mm512_set1_epi32(static_cast<int>(k1))));
  return _mm512_cmpge_epu32_mask(x, _mm512_set1_epi32(static_cast<int>(threshold)));
}

template <typename T>
RLHF_AVX512 void apply_avx512(const T* in, T* out, int64_t begin, int64_t end, uint64_t index0, uint64_t seed,
                              uint32_t threshold, float scale) {
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = second_key(seed, index0 + begin);
  const __m512 s = _mm512_set1_ps(scale);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __mmask16 keep = keep16(static_cast<uint32_t>(index0 + i), k0, k1, threshold);
    simd::store16(out + i, _mm512_maskz_mul_ps(keep, simd::load16(in + i), s));
  }
  apply_portable(in, out, i, end, index0, seed, threshold, scale);
}

#endif

// [begin, end) split where the high half of the index changes, each piece on the chosen loop.
template <typename T>
void apply_range(const T* in, T* out, int64_t begin, int64_t end, uint64_t seed, uint32_t threshold, float scale,
                 bool vectorised) {
  while (begin < end) {
    const int64_t next_high = static_cast<int64_t>(((static_cast<uint64_t>(begin) >> 32) + 1) << 32);
    const int64_t stop = std::min(end, next_high);
#ifdef RLHF_HAVE_AVX512
    if (vectorised && simd::avx512_available()) {
      apply_avx512(in, out, begin, stop, 0, seed, threshold, scale);
      begin = stop;
      continue;
    }
#endif
    (void)vectorised;
    apply_portable(in, out, begin, stop, 0, seed, threshold, scale);
    begin = stop;
  }
}

void apply_tensor(const torch::Tensor& in, torch::Tensor& out, uint64_t seed, uint32_t threshold, float scale,
                  bool vectorised, bool threaded) {
  simd::with_data(in, [&](auto* ip) {
    auto* op = reinterpret_cast<decltype(ip)>(out.data_ptr());
    simd::for_blocks(in.numel(), threaded,
                     [&](int64_t i0, int64_t i1) { apply_range(ip, op, i0, i1, seed, threshold, scale, vectorised); });
  });
}

uint64_t draw_seed() {
  auto gen = at::globalContext().defaultGenerator(torch::kCPU);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

// The masked, scaled copy of x (fp32 or bf16, CPU) for one seed.
torch::Tensor masked(const torch::Tensor& x, uint64_t seed, double p) {
  auto in = x.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  apply_tensor(in, out, seed, detail::dropout_threshold(p), static_cast<float>(1.0 / (1.0 - p)), true, true);
  return out;
}

struct CounterDropout : public torch::autograd::Function<CounterDropout> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p) {
    const uint64_t seed = draw_seed();
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["p"] = p;
    return masked(x, seed, p);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor()};
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const double p = ctx->saved_data["p"].toDouble();
    const auto dtype = grads[0].scalar_type();
    const bool native = dtype == torch::kFloat || dtype == torch::kBFloat16;
    auto g = masked(native ? grads[0] : grads[0].to(torch::kFloat), seed, p);
    return {native ? g : g.to(dtype), torch::Tensor()};
  }
};

}  // namespace

namespace detail {

uint32_t dropout_hash(uint64_t seed, uint64_t index) {
  return hash_with(static_cast<uint32_t>(index), static_cast<uint32_t>(seed), second_key(seed, index));
}

uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(std::min(std::floor(p * 4294967296.0), 4294967295.0));
}

void dropout_apply(const torch::Tensor& in, torch::Tensor& out, uint64_t seed, uint32_t threshold, float scale,
                   bool vectorised) {
  TORCH_CHECK(in.is_contiguous() && out.is_contiguous() && in.numel() == out.numel() &&
                  in.scalar_type() == out.scalar_type() &&
                  (in.scalar_type() == torch::kFloat || in.scalar_type() == torch::kBFloat16),
              "dropout_apply: contiguous fp32 or bf16 tensors of one size");
  apply_tensor(in, out, seed, threshold, scale, vectorised, false);
}

}  // namespace detail

torch::Tensor dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0) return x;
  const bool ours = x.device().is_cpu() && p < 1 && (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16);
  if (!ours) return torch::dropout(x, p, true);
  if (x.numel() == 0) return x.clone();
  if (torch::GradMode::is_enabled() && x.requires_grad()) return CounterDropout::apply(x, p);
  return masked(x, draw_seed(), p);
}

}  // namespace rlhf
