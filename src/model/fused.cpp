#include "model/fused.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/parallel.h"
#include "model/simd.h"

namespace rlhf {

namespace detail {

TokenLogp token_logp_reference(const torch::Tensor& logits, const torch::Tensor& targets, double scale,
                               bool want_entropy, bool entropy_grad) {
  auto y = logits.to(torch::kFloat);
  if (scale != 1.0) y = y * scale;
  auto lp = torch::log_softmax(y, -1);
  TokenLogp r;
  r.logp = lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  if (want_entropy) {
    // As a metric only, its full-vocabulary temporaries are freed at once instead of kept for backward.
    torch::AutoGradMode mode(entropy_grad && torch::GradMode::is_enabled());
    r.entropy = -(lp.exp() * lp).sum(-1);
  }
  return r;
}

torch::Tensor gelu_tanh_reference(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

}  // namespace detail

namespace {

constexpr float kGeluA = 2.0f * 0.7978845608028654f;            // 2 sqrt(2/pi)
constexpr float kGeluB = 2.0f * 0.7978845608028654f * 0.044715f;  // 2 sqrt(2/pi) 0.044715

bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kBFloat16) &&
         simd::avx512_available();
}

#ifdef RLHF_HAVE_AVX512

RLHF_AVX512 inline float reduce_max(__m512 v) { return _mm512_reduce_max_ps(v); }
RLHF_AVX512 inline float reduce_add(__m512 v) { return _mm512_reduce_add_ps(v); }

// ---- token log-probabilities -------------------------------------------------------------------

// Rows [r0, r1): lse = logsumexp(y), logp = y[target] - lse, entropy = log(sum) - E[y - max], for
// y = x * scale. A row with NaN gets NaN in all three; a target outside [0, V) sets *bad_target.
template <typename T>
RLHF_AVX512 void logp_rows(const T* x, int64_t V, const int64_t* targets, float scale, int64_t r0, int64_t r1,
                           float* logp, float* lse, float* entropy, std::atomic<bool>* bad_target) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + r * V;
    __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nan = 0;
    int64_t j = 0;
    for (; j + 16 <= V; j += 16) {
      const __m512 y = _mm512_mul_ps(simd::load16(row + j), s);
      nan |= _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q);
      vmax = _mm512_max_ps(vmax, y);
    }
    float m = reduce_max(vmax);
    bool has_nan = nan != 0;
    for (; j < V; ++j) {
      const float y = simd::to_float(row[j]) * scale;
      has_nan |= std::isnan(y);
      m = std::max(m, y);
    }
    const __m512 vm = _mm512_set1_ps(m);
    __m512 vs = _mm512_setzero_ps(), vw = _mm512_setzero_ps();
    for (j = 0; j + 16 <= V; j += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_mul_ps(simd::load16(row + j), s), vm);
      const __m512 e = simd::exp16(d);
      vs = _mm512_add_ps(vs, e);
      vw = _mm512_fmadd_ps(e, d, vw);
    }
    float sum = reduce_add(vs), w = reduce_add(vw);
    for (; j < V; ++j) {
      const float d = simd::to_float(row[j]) * scale - m;
      const float e = std::exp(d);
      sum += e;
      w += e * d;
    }
    const int64_t t = targets[r];
    if (t < 0 || t >= V) {
      bad_target->store(true);
      continue;
    }
    const float log_sum = std::log(sum);
    const float nan_f = std::numeric_limits<float>::quiet_NaN();
    lse[r] = has_nan ? nan_f : m + log_sum;
    logp[r] = has_nan ? nan_f : simd::to_float(row[t]) * scale - lse[r];
    if (entropy) entropy[r] = has_nan ? nan_f : log_sum - w / sum;
  }
}

// d/dy_j of (a * logp + b * entropy) = a (onehot_j - p_j) - b p_j (y_j - lse + H); times scale for x.
template <typename T>
RLHF_AVX512 void logp_backward_rows(const T* x, int64_t V, const int64_t* targets, float scale, const float* lse,
                                    const float* entropy, const float* g_logp, const float* g_ent, T* gx, int64_t r0,
                                    int64_t r1) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + r * V;
    T* out = gx + r * V;
    const float a = g_logp ? g_logp[r] : 0.0f, b = g_ent ? g_ent[r] : 0.0f, L = lse[r];
    const float shift = entropy ? entropy[r] - L : -L;  // y - lse + H = y + shift
    if (std::isnan(L)) {
      for (int64_t j = 0; j < V; ++j) simd::put(out + j, std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vL = _mm512_set1_ps(L),
                 vshift = _mm512_set1_ps(shift), vneg = _mm512_set1_ps(-scale);
    int64_t j = 0;
    for (; j + 16 <= V; j += 16) {
      const __m512 y = _mm512_mul_ps(simd::load16(row + j), s);
      const __m512 p = simd::exp16(_mm512_sub_ps(y, vL));
      const __m512 c = _mm512_fmadd_ps(vb, _mm512_add_ps(y, vshift), va);
      simd::store16(out + j, _mm512_mul_ps(_mm512_mul_ps(p, c), vneg));
    }
    for (; j < V; ++j) {
      const float y = simd::to_float(row[j]) * scale;
      simd::put(out + j, -scale * std::exp(y - L) * (a + b * (y + shift)));
    }
    const int64_t t = targets[r];
    const float yt = simd::to_float(row[t]) * scale, pt = std::exp(yt - L);
    simd::put(out + t, scale * (a - pt * (a + b * (yt + shift))));
  }
}

// ---- GELU (tanh approximation) -----------------------------------------------------------------

// sigmoid(2u) with 2u = x (A + B x^2).
RLHF_AVX512 inline __m512 gelu_sigmoid(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_set1_ps(kGeluB), _mm512_mul_ps(x, x), _mm512_set1_ps(kGeluA)));
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, simd::exp16(_mm512_sub_ps(_mm512_setzero_ps(), z))));
}

template <typename T>
RLHF_AVX512 void gelu_forward_range(const T* x, T* y, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512 v = simd::load16(x + i);
    simd::store16(y + i, _mm512_mul_ps(v, gelu_sigmoid(v)));
  }
  for (; i < i1; ++i) {
    const float v = simd::to_float(x[i]);
    simd::put(y + i, v / (1.0f + std::exp(-v * (kGeluA + kGeluB * v * v))));
  }
}

// dy/dx = sg + x sg (1 - sg) (A + 3 B x^2), sg = sigmoid(2u).
template <typename T>
RLHF_AVX512 void gelu_backward_range(const T* g, const T* x, T* gx, int64_t i0, int64_t i1) {
  const __m512 one = _mm512_set1_ps(1.0f), A = _mm512_set1_ps(kGeluA), B3 = _mm512_set1_ps(3.0f * kGeluB);
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512 v = simd::load16(x + i);
    const __m512 sg = gelu_sigmoid(v);
    const __m512 dz = _mm512_fmadd_ps(B3, _mm512_mul_ps(v, v), A);
    const __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(v, _mm512_mul_ps(sg, _mm512_sub_ps(one, sg))), dz, sg);
    simd::store16(gx + i, _mm512_mul_ps(simd::load16(g + i), d));
  }
  for (; i < i1; ++i) {
    const float v = simd::to_float(x[i]);
    const float sg = 1.0f / (1.0f + std::exp(-v * (kGeluA + kGeluB * v * v)));
    simd::put(gx + i, simd::to_float(g[i]) * (sg + v * sg * (1.0f - sg) * (kGeluA + 3.0f * kGeluB * v * v)));
  }
}

#endif  // RLHF_HAVE_AVX512

// The kernels over whole tensors, split between threads (only called when fusable()).
struct LogpOut {
  torch::Tensor logp, lse, entropy;
};

LogpOut logp_forward(const torch::Tensor& logits, const torch::Tensor& targets, float scale) {
  const int64_t N = logits.size(0), V = logits.size(1);
  auto opts = logits.options().dtype(torch::kFloat);
  LogpOut o{torch::empty({N}, opts), torch::empty({N}, opts), torch::empty({N}, opts)};
  std::atomic<bool> bad{false};
#ifdef RLHF_HAVE_AVX512
  simd::with_data(logits, [&](auto* x) {
    parallel_chunks(N, simd::kernel_threads(N * V), [&](int64_t r0, int64_t r1) {
      logp_rows(x, V, targets.data_ptr<int64_t>(), scale, r0, r1, o.logp.data_ptr<float>(), o.lse.data_ptr<float>(),
                o.entropy.data_ptr<float>(), &bad);
    });
  });
#endif
  RLHF_CHECK(!bad.load(), "token_logp: a target token id is outside the vocabulary of ", V, " logits");
  return o;
}

torch::Tensor logp_backward(const torch::Tensor& logits, const torch::Tensor& targets, float scale,
                            const torch::Tensor& lse, const torch::Tensor& entropy, const torch::Tensor& g_logp,
                            const torch::Tensor& g_ent) {
  const int64_t N = logits.size(0), V = logits.size(1);
  auto gx = torch::empty_like(logits);
#ifdef RLHF_HAVE_AVX512
  const float* gl = g_logp.defined() ? g_logp.data_ptr<float>() : nullptr;
  const float* ge = g_ent.defined() ? g_ent.data_ptr<float>() : nullptr;
  simd::with_data(logits, [&](auto* x) {
    using T = std::remove_pointer_t<decltype(x)>;
    T* out = reinterpret_cast<T*>(gx.data_ptr());
    parallel_chunks(N, simd::kernel_threads(N * V), [&](int64_t r0, int64_t r1) {
      logp_backward_rows(x, V, targets.data_ptr<int64_t>(), scale, lse.data_ptr<float>(), entropy.data_ptr<float>(),
                         gl, ge, out, r0, r1);
    });
  });
#endif
  return gx;
}

struct FusedTokenLogp : public torch::autograd::Function<FusedTokenLogp> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                                                const torch::Tensor& targets, double scale) {
    auto o = logp_forward(logits, targets, static_cast<float>(scale));
    ctx->save_for_backward({logits, targets, o.lse, o.entropy.clone()});
    ctx->saved_data["scale"] = scale;
    return {o.logp, o.entropy};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto as_float = [](const torch::Tensor& g) { return g.defined() ? g.to(torch::kFloat).contiguous() : g; };
    auto gx = logp_backward(saved[0], saved[1], static_cast<float>(ctx->saved_data["scale"].toDouble()), saved[2],
                            saved[3], as_float(grads[0]), as_float(grads[1]));
    return {gx, torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor gelu_forward(const torch::Tensor& x) {
  auto y = torch::empty_like(x);
#ifdef RLHF_HAVE_AVX512
  simd::with_data(x, [&](auto* xp) {
    using T = std::remove_pointer_t<decltype(xp)>;
    T* yp = reinterpret_cast<T*>(y.data_ptr());
    simd::for_blocks(x.numel(), true, [&](int64_t i0, int64_t i1) { gelu_forward_range(xp, yp, i0, i1); });
  });
#endif
  return y;
}

struct FusedGelu : public torch::autograd::Function<FusedGelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return gelu_forward(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto x = ctx->get_saved_variables()[0];
    auto g = grads[0].to(x.scalar_type()).contiguous();
    auto gx = torch::empty_like(x);
#ifdef RLHF_HAVE_AVX512
    simd::with_data(x, [&](auto* xp) {
      using T = std::remove_pointer_t<decltype(xp)>;
      const T* gp = reinterpret_cast<const T*>(g.data_ptr());
      T* op = reinterpret_cast<T*>(gx.data_ptr());
      simd::for_blocks(x.numel(), true, [&](int64_t i0, int64_t i1) { gelu_backward_range(gp, xp, op, i0, i1); });
    });
#endif
    return {gx};
  }
};

}  // namespace

bool fused_kernels_available() { return simd::avx512_available(); }

TokenLogp token_logp(const torch::Tensor& logits, const torch::Tensor& targets, double scale, bool want_entropy,
                     bool entropy_grad) {
  if (!fusable(logits) || logits.numel() == 0)
    return detail::token_logp_reference(logits, targets, scale, want_entropy, entropy_grad);
  const auto lead = targets.sizes().vec();
  const int64_t V = logits.size(-1);
  auto l2 = logits.reshape({-1, V}).contiguous();
  auto t1 = targets.reshape({-1}).to(torch::kLong).contiguous();
  RLHF_CHECK(l2.size(0) == t1.size(0), "token_logp: ", l2.size(0), " rows of logits for ", t1.size(0), " targets");
  TokenLogp r;
  if (torch::GradMode::is_enabled() && logits.requires_grad()) {
    auto outs = FusedTokenLogp::apply(l2, t1, scale);
    r.logp = outs[0].view(lead);
    if (want_entropy) r.entropy = entropy_grad ? outs[1].view(lead) : outs[1].detach().view(lead);
  } else {
    auto o = logp_forward(l2, t1, static_cast<float>(scale));
    r.logp = o.logp.view(lead);
    if (want_entropy) r.entropy = o.entropy.view(lead);
  }
  return r;
}

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (!fusable(x) || x.numel() == 0) return detail::gelu_tanh_reference(x);
  auto xc = x.contiguous();
  if (torch::GradMode::is_enabled() && x.requires_grad()) return FusedGelu::apply(xc);
  return gelu_forward(xc);
}

}  // namespace rlhf
