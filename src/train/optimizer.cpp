#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/simd.h"

namespace rlhf {

bool no_decay_by_default(const std::string& name, const torch::Tensor& t) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  return t.dim() < 2 || name.ends_with(".bias") || has("norm") || has("ln_") || has("wte") || has("wpe") || has("embed_tokens");
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const AdamWConfig& cfg,
             bool decay_all)
    : cfg_(cfg) {
  RLHF_CHECK(cfg.lr >= 0, "learning rate must be >= 0");
  RLHF_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1, "Adam betas must be in [0, 1)");
  RLHF_CHECK(cfg.eps > 0, "Adam eps must be > 0");
  RLHF_CHECK(cfg.weight_decay >= 0, "weight decay must be >= 0");
  RLHF_CHECK(!params.empty(), "no trainable parameters");
  for (auto& [name, t] : params) {
    Param p;
    p.name = name;
    p.tensor = t;
    p.weight_decay = (!decay_all && no_decay_by_default(name, t)) ? 0.0 : cfg.weight_decay;
    params_.push_back(std::move(p));
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.tensor.mutable_grad() = torch::Tensor();
}

namespace {

// One AdamW update of elements [begin, end), in the order torch's unfused AdamW applies it:
// p *= decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p += -step_size * m / (sqrt(v) / bc2_sqrt + eps),
// with g the gradient times grad_scale. Every operation is a separate float multiply or add (no fused
// multiply-add; the portable loop is kept out of line, so the compiler cannot contract it inside the
// AVX-512 function that runs it for the tail), so the vector loop and the portable one give the
// same bits.
__attribute__((noinline)) void adamw_portable(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                    const detail::AdamwScalars& s) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i] * s.grad_scale;
    const float mi = s.beta1 * m[i] + s.one_minus_beta1 * gi;
    const float vi = s.beta2 * v[i] + s.one_minus_beta2 * (gi * gi);
    const float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * s.decay + s.neg_step_size * (mi / denom);
  }
}

// Sum of x[i]^2 over [begin, end) in double.
double sum_squares_portable(const float* x, int64_t begin, int64_t end) {
  double acc = 0;
  for (int64_t i = begin; i < end; ++i) acc += double(x[i]) * double(x[i]);
  return acc;
}

#ifdef RLHF_HAVE_AVX512

// GCC contracts vector multiply-adds written with intrinsics too unless told not to.
#if defined(__GNUC__) && !defined(__clang__)
#define RLHF_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define RLHF_NO_CONTRACT
#endif

RLHF_AVX512 RLHF_NO_CONTRACT void adamw_avx512(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                              const detail::AdamwScalars& s) {
  const __m512 gs = _mm512_set1_ps(s.grad_scale), b1 = _mm512_set1_ps(s.beta1), c1 = _mm512_set1_ps(s.one_minus_beta1),
               b2 = _mm512_set1_ps(s.beta2), c2 = _mm512_set1_ps(s.one_minus_beta2), bc = _mm512_set1_ps(s.bc2_sqrt),
               eps = _mm512_set1_ps(s.eps), decay = _mm512_set1_ps(s.decay), step = _mm512_set1_ps(s.neg_step_size);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m512 gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), gs);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(c2, _mm512_mul_ps(gi, gi)));
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_maskz_sqrt_ps(0xFFFF, vi), bc), eps);
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    _mm512_storeu_ps(p + i, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(p + i), decay),
                                          _mm512_mul_ps(step, _mm512_div_ps(mi, denom))));
  }
  adamw_portable(p, g, m, v, i, end, s);
}

// Two vectors of eight double accumulators; the portable loop adds the tail. (Masked forms of the
// conversions and the square root: GCC 12 warns about the unmasked ones' undefined upper lanes.)
RLHF_AVX512 double sum_squares_avx512(const float* x, int64_t begin, int64_t end) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m512d lo = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i)),
                  hi = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i + 8));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(a0, a1));
  double acc = 0;
  for (double d : lanes) acc += d;
  return acc + sum_squares_portable(x, i, end);
}

#endif

bool fused_cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

}  // namespace

namespace detail {

void adamw_update(torch::Tensor& p, const torch::Tensor& g, torch::Tensor& m, torch::Tensor& v, const AdamwScalars& s,
                  bool vectorised) {
  TORCH_CHECK(fused_cpu_float(p) && fused_cpu_float(g) && fused_cpu_float(m) && fused_cpu_float(v) &&
                  g.numel() == p.numel() && m.numel() == p.numel() && v.numel() == p.numel(),
              "adamw_update: contiguous fp32 CPU tensors of one size");
  float *pp = p.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  simd::for_blocks(p.numel(), true, [&](int64_t i0, int64_t i1) {
#ifdef RLHF_HAVE_AVX512
    if (vectorised && simd::avx512_available()) return adamw_avx512(pp, gp, mp, vp, i0, i1, s);
#endif
    adamw_portable(pp, gp, mp, vp, i0, i1, s);
  });
}

double sum_squares(const torch::Tensor& x, bool vectorised) {
  TORCH_CHECK(fused_cpu_float(x), "sum_squares: a contiguous fp32 CPU tensor");
  // One partial sum per block, added in order: the same result for any thread count.
  using simd::kBlock;
  const int64_t n = x.numel(), blocks = (n + kBlock - 1) / kBlock;
  const float* xp = x.data_ptr<float>();
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_chunks(blocks, simd::kernel_threads(n), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
#ifdef RLHF_HAVE_AVX512
      if (vectorised && simd::avx512_available()) {
        partial[size_t(b)] = sum_squares_avx512(xp, i0, i1);
        continue;
      }
#endif
      partial[size_t(b)] = sum_squares_portable(xp, i0, i1);
    }
  });
  double total = 0;
  for (double d : partial) total += d;
  return total;
}

}  // namespace detail

void AdamW::step(double lr, double grad_scale) {
  torch::NoGradGuard ng;
  ++step_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, double(step_));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  for (auto& p : params_) {
    const torch::Tensor& g = p.tensor.grad();
    if (!g.defined()) continue;
    if (!p.exp_avg.defined()) {
      p.exp_avg = torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous);
      p.exp_avg_sq = torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous);
    }
    const double decay = 1.0 - lr * p.weight_decay;
    if (fused_cpu_float(p.tensor) && fused_cpu_float(g) && fused_cpu_float(p.exp_avg) && fused_cpu_float(p.exp_avg_sq)) {
      detail::AdamwScalars s;
      s.grad_scale = float(grad_scale);
      s.beta1 = float(cfg_.beta1);
      s.one_minus_beta1 = float(1.0 - cfg_.beta1);
      s.beta2 = float(cfg_.beta2);
      s.one_minus_beta2 = float(1.0 - cfg_.beta2);
      s.bc2_sqrt = float(bc2_sqrt);
      s.eps = float(cfg_.eps);
      s.decay = float(decay);
      s.neg_step_size = float(-step_size);
      detail::adamw_update(p.tensor, g, p.exp_avg, p.exp_avg_sq, s, true);
      continue;
    }
    // Other devices and layouts: the same update in separate tensor operations.
    const torch::Tensor gs = grad_scale == 1.0 ? g : g * grad_scale;
    if (p.weight_decay != 0) p.tensor.mul_(decay);
    p.exp_avg.mul_(cfg_.beta1).add_(gs, 1.0 - cfg_.beta1);
    p.exp_avg_sq.mul_(cfg_.beta2).addcmul_(gs, gs, 1.0 - cfg_.beta2);
    auto denom = (p.exp_avg_sq.sqrt() / bc2_sqrt).add_(cfg_.eps);
    p.tensor.addcdiv_(p.exp_avg, denom, -step_size);
  }
}

void AdamW::save(const std::filesystem::path& file) const {
  NamedTensors t;
  for (const auto& p : params_) {
    if (!p.exp_avg.defined()) continue;
    t.emplace_back(p.name + ".exp_avg", p.exp_avg);
    t.emplace_back(p.name + ".exp_avg_sq", p.exp_avg_sq);
  }
  save_safetensors(file, t, torch::ScalarType::Undefined, {{"step", std::to_string(step_)}});
}

void AdamW::load(const std::filesystem::path& file) {
  SafetensorsFile f(file);
  auto it = f.metadata().find("step");
  RLHF_CHECK(it != f.metadata().end(), file.string(), ": no \"step\" in metadata; not an optimizer state file");
  step_ = std::stoll(it->second);
  torch::NoGradGuard ng;
  for (auto& p : params_) {
    const std::string a = p.name + ".exp_avg", b = p.name + ".exp_avg_sq";
    if (!f.find(a)) {
      RLHF_CHECK(step_ == 0 || !f.find(b), file.string(), ": has ", b, " but not ", a);
      p.exp_avg = p.exp_avg_sq = torch::Tensor();
      continue;
    }
    auto ea = f.load(a, torch::ScalarType::Undefined), eb = f.load(b, torch::ScalarType::Undefined);
    RLHF_CHECK(ea.sizes() == p.tensor.sizes() && eb.sizes() == p.tensor.sizes(), file.string(), ": state of \"", p.name,
               "\" has the wrong shape; the checkpoint belongs to another model");
    p.exp_avg = ea.to(p.tensor.device());
    p.exp_avg_sq = eb.to(p.tensor.device());
  }
}

double grad_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard ng;
  double total = 0;
  std::vector<torch::Tensor> others;  // summed on their device, read back once (one sync on a GPU)
  for (const auto& p : params) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (fused_cpu_float(g))
      total += detail::sum_squares(g, true);
    else
      others.push_back(g.to(torch::kDouble).pow(2).sum());
  }
  if (!others.empty()) total += torch::stack(others).sum().item<double>();
  return std::sqrt(total);
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0 || !std::isfinite(norm)) return 1.0;
  return std::min(1.0, max_norm / (norm + 1e-6));
}

}  // namespace rlhf
