#include "model/layers.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/parallel.h"
#include "core/runtime.h"
#include "model/dropout.h"
#include "model/fused.h"
#include "model/small_gemm.h"

namespace rlhf {

// ---- Linear (+ LoRA) -----------------------------------------------------------------------------

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t rows = in > 0 ? x.numel() / in : 0;
  const bool cpu_fp32_inference = x.device().is_cpu() && !torch::GradMode::is_enabled() &&
                                  x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
                                  weight.is_contiguous() && x.size(-1) == in && !cpu_autocast_enabled() &&
                                  (!bias.defined() || (bias.scalar_type() == torch::kFloat && bias.is_contiguous()));
  if (cpu_fp32_inference && rows >= 1 && rows <= kSmallGemmMaxRows && small_gemm_available()) {
    // Decode-sized batches: stream the weights once instead of letting sgemm repack them per call.
    auto x2 = x.reshape({rows, in}).contiguous();
    auto y = torch::empty({rows, out}, x.options());
    const float* xp = x2.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
    float* yp = y.data_ptr<float>();
    // Split the output columns between threads in blocks of 64 weight rows (about 200 KB at
    // width 768): enough work per block to hide the fork, small enough to balance.
    const int64_t block = 64;
    parallel_chunks((out + block - 1) / block, at::get_num_threads(), [&](int64_t b, int64_t e) {
      small_gemm_nt(xp, in, rows, wp, in, in, bp, yp, out, b * block, std::min(out, e * block));
    });
    auto sizes = x.sizes().vec();
    sizes.back() = out;
    return y.view(sizes);
  }
  // Without AVX-512: gemv wins over sgemm for 1 row everywhere and for up to 4 rows of layer-sized
  // matrices, not for a vocabulary-sized head (OpenBLAS 0.3.21 on 2 cores; bench/run_generate.sh).
  const bool gemv = cpu_fp32_inference && (rows == 1 || (rows > 1 && rows <= 4 && out <= 8192));
  if (!gemv) return torch::linear(x, weight, bias);
  auto x2 = x.reshape({rows, in});
  std::vector<torch::Tensor> ys;
  for (int64_t r = 0; r < rows; ++r) ys.push_back(bias.defined() ? torch::addmv(bias, weight, x2[r]) : torch::mv(weight, x2[r]));
  auto sizes = x.sizes().vec();
  sizes.back() = out;
  return (rows == 1 ? ys[0] : torch::stack(ys)).view(sizes);
}

torch::nn::Embedding embedding(int64_t num, int64_t dim) {
  return torch::nn::Embedding(torch::nn::EmbeddingOptions(num, dim)._weight(torch::empty({num, dim})));
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
}

std::shared_ptr<LinearImpl> LinearImpl::sharing(const torch::Tensor& w) {
  std::shared_ptr<LinearImpl> lin(new LinearImpl());
  lin->in_features = w.size(1);
  lin->out_features = w.size(0);
  lin->weight = w;
  lin->shared_ = true;
  return lin;
}

const torch::Tensor& FrozenBf16Cast::operator()(const torch::Tensor& weight) {
  if (weight.requires_grad() || weight.scalar_type() != torch::kFloat || !autocast_enabled(weight.device())) return weight;
  if (!copy_.defined() || source_ != weight.data_ptr() || version_ != weight._version()) {
    // A normal tensor even when first made inside generation's InferenceMode: training saves it for backward.
    c10::InferenceMode normal(false);
    torch::NoGradGuard ng;
    copy_ = weight.to(torch::kBFloat16);
    source_ = weight.data_ptr();
    version_ = weight._version();
  }
  return copy_;
}

namespace {

// scale * (h A^T) B^T for a rank-r adapter, fp32 on the CPU, with each product of the forward and
// backward pass in the layout the BLAS runs well on several threads. OpenBLAS splits a product
// whose output has only r (16) columns badly between threads: h A^T, g B and g^T a ran at about 25
// GFLOP/s on 2 threads, up to 5x slower than the same product computed transposed, and took a
// quarter of an adapted layer's forward + backward. Here a is kept as a^T (r x rows), and every
// product writes an output with a long row dimension.
struct LoraDelta : public torch::autograd::Function<LoraDelta> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& A,
                               const torch::Tensor& B, double scale) {
    const int64_t in = A.size(1), out = B.size(0);
    auto h2 = h.reshape({-1, in});
    auto aT = torch::mm(A, h2.t());                  // (r, rows)
    auto d = torch::mm(aT.t(), (B * scale).t());    // (rows, out)
    ctx->save_for_backward({h2, A, B, aT});
    ctx->saved_data["scale"] = scale;
    auto sizes = h.sizes().vec();
    sizes.back() = out;
    return d.view(sizes);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &h2 = saved[0], &A = saved[1], &B = saved[2], &aT = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t out = B.size(0);
    auto g = grads[0].reshape({-1, out}).contiguous();
    auto gaT = torch::mm((B * scale).t(), g.t());  // (r, rows): d loss / d a, transposed
    torch::Tensor gh, gA, gB;
    if (ctx->needs_input_grad(0)) {
      auto sizes = grads[0].sizes().vec();
      sizes.back() = A.size(1);
      gh = torch::mm(gaT.t(), A).view(sizes);
    }
    if (ctx->needs_input_grad(1)) gA = torch::mm(gaT, h2);
    if (ctx->needs_input_grad(2)) gB = torch::mm(aT, g).mul_(scale).t().contiguous();
    return {gh, gA, gB, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = dense(x, lora_A ? frozen_cast_(weight) : weight, bias);
  if (lora_A && lora_switch && lora_switch->enabled) {
    // rlhf::dropout keeps no mask for backward (it recomputes it): only the dropped input that
    // the adapter saves stays alive per adapted module.
    auto h = lora_dropout > 0 ? rlhf::dropout(x, lora_dropout, is_training()) : x;
    const bool fp32_cpu_training = torch::GradMode::is_enabled() && h.device().is_cpu() && !cpu_autocast_enabled() &&
                                   h.scalar_type() == torch::kFloat && lora_A->weight.scalar_type() == torch::kFloat &&
                                   lora_B->weight.scalar_type() == torch::kFloat;
    if (fp32_cpu_training)
      y = y + LoraDelta::apply(h, lora_A->weight, lora_B->weight, lora_scaling);
    else
      y = y + lora_B(lora_A(h)) * lora_scaling;
  }
  return y;
}

void LinearImpl::attach_lora(int64_t rank, double alpha, double dropout, std::shared_ptr<LoraSwitch> sw,
                             bool use_rslora) {
  RLHF_CHECK(rank > 0, "LoRA rank must be positive, got ", rank);
  RLHF_CHECK(!lora_A, "a LoRA adapter is already attached");
  auto opts = weight.options();
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features, rank).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(rank, out_features).bias(false)));
  lora_A->to(opts.device(), opts.dtype().toScalarType());
  lora_B->to(opts.device(), opts.dtype().toScalarType());
  {
    torch::NoGradGuard ng;
    // As PEFT: A ~ kaiming-uniform(a = sqrt(5)), B = 0, so the adapter starts as a no-op.
    torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));
    lora_B->weight.zero_();
  }
  lora_scaling = use_rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank);
  lora_dropout = dropout;
  if (sw) sw->attached = true;
  lora_switch = std::move(sw);
}

void LinearImpl::merge_lora() {
  if (!lora_A) return;
  torch::NoGradGuard ng;
  if (shared_) {  // the tied weight stays the embedding's; the merged head gets its own
    weight = register_parameter("weight", weight.detach().clone());
    shared_ = false;
  }
  weight.add_(torch::matmul(lora_B->weight, lora_A->weight) * lora_scaling);
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
}

// ---- norms, activations ------------------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return gelu_tanh(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "relu") return torch::relu(x);
  RLHF_FAIL("activation \"", name, "\" is not supported");
}

// ---- rotary embeddings --------------------------------------------------------------------------------

Rope::Rope(const ModelConfig& cfg) {
  const int64_t D = cfg.head_dim;
  auto inv = 1.0 / torch::pow(cfg.rope_theta, torch::arange(0, D, 2, torch::kLong).to(torch::kFloat) / double(D));
  const auto& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    inv = inv / rs.factor;
  } else if (rs.type == "llama3") {
    // Llama 3.1: long wavelengths are slowed down by `factor`, short ones kept, the band between
    // interpolated smoothly (as transformers' _compute_llama3_parameters).
    double old_ctx = double(rs.original_max_position_embeddings);
    double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
    auto wavelen = 2.0 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / rs.factor, inv);
    auto smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = torch::where(medium, smoothed, scaled);
  }
  inv_freq_ = inv.to(torch::kFloat).contiguous();
}

std::pair<torch::Tensor, torch::Tensor> Rope::cos_sin(const torch::Tensor& position_ids) const {
  auto inv = inv_freq_.to(position_ids.device());
  auto freqs = position_ids.to(torch::kFloat).unsqueeze(-1) * inv;  // (B, T, D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                          // (B, T, D)
  return {emb.cos(), emb.sin()};
}

torch::Tensor Rope::apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto c = cos.unsqueeze(1).to(x.scalar_type()), s = sin.unsqueeze(1).to(x.scalar_type());  // (B, 1, T, D)
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * c + rotated * s;
}

// ---- KV cache --------------------------------------------------------------------------------------------

void KVCache::init(const ModelConfig& cfg, int64_t batch, int64_t cap, torch::Dtype dtype, torch::Device dev) {
  auto opts = torch::TensorOptions().dtype(dtype).device(dev);
  k.clear();
  v.clear();
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    k.push_back(torch::empty({batch, cfg.n_kv_head, cap, cfg.head_dim}, opts));
    v.push_back(torch::empty({batch, cfg.n_kv_head, cap, cfg.head_dim}, opts));
  }
  key_mask = torch::zeros({batch, cap}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  len = 0;
  capacity = cap;
}

void KVCache::select_rows(const torch::Tensor& rows) {
  for (auto& t : k) t = t.index_select(0, rows);
  for (auto& t : v) t = t.index_select(0, rows);
  key_mask = key_mask.index_select(0, rows);
}

void KVCache::repeat_rows(int64_t n) {
  if (n == 1) return;
  for (auto& t : k) t = t.repeat_interleave(n, 0);
  for (auto& t : v) t = t.repeat_interleave(n, 0);
  key_mask = key_mask.repeat_interleave(n, 0);
}

std::pair<torch::Tensor, torch::Tensor> cache_append(KVCache& cache, int64_t layer, const torch::Tensor& k_new,
                                                     const torch::Tensor& v_new) {
  const int64_t T = k_new.size(2);
  RLHF_CHECK(cache.len + T <= cache.capacity, "KV cache overflow: ", cache.len + T, " positions > capacity ",
             cache.capacity);
  cache.k[layer].narrow(2, cache.len, T).copy_(k_new);
  cache.v[layer].narrow(2, cache.len, T).copy_(v_new);
  return {cache.k[layer].narrow(2, 0, cache.len + T), cache.v[layer].narrow(2, 0, cache.len + T)};
}

// ---- masks and attention --------------------------------------------------------------------------------

torch::Tensor positions_from_mask(const torch::Tensor& mask) {
  auto m = mask.to(torch::kLong);
  auto pos = m.cumsum(1) - 1;
  return pos.masked_fill(m == 0, 1);
}

torch::Tensor positions_from_segments(const torch::Tensor& segment_ids) {
  auto s = segment_ids.to(torch::kLong);
  const int64_t T = s.size(1);
  auto t = torch::arange(T, s.options()).unsqueeze(0).expand_as(s);  // (B, T)
  auto starts = torch::ones(s.sizes(), s.options().dtype(torch::kBool));
  if (T > 1) starts.narrow(1, 1, T - 1).copy_(s.narrow(1, 1, T - 1) != s.narrow(1, 0, T - 1));
  auto segment_start = std::get<0>(torch::cummax(torch::where(starts, t, torch::zeros_like(t)), /*dim=*/1));
  return t - segment_start;
}

torch::Tensor attention_bias(int64_t T, int64_t S, const torch::Tensor& key_mask, const torch::Tensor& segment_ids,
                             int64_t sliding_window, torch::Device dev) {
#if TORCH_VERSION_MAJOR >= 2
  if (dev.is_cuda() && T == S && !key_mask.defined() && !segment_ids.defined() &&
      (sliding_window <= 0 || sliding_window >= S))
    return {};
#endif
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto q_pos = torch::arange(S - T, S, lopts).unsqueeze(1);  // (T, 1)
  auto k_pos = torch::arange(0, S, lopts).unsqueeze(0);      // (1, S)
  auto allowed = (k_pos <= q_pos);                            // (T, S)
  if (sliding_window > 0) allowed = allowed.logical_and(q_pos - k_pos < sliding_window);
  allowed = allowed.unsqueeze(0);                             // (1, T, S)
  if (key_mask.defined()) allowed = allowed.logical_and(key_mask.to(torch::kBool).unsqueeze(1));  // (B, T, S)
  if (segment_ids.defined()) {
    RLHF_CHECK(S == T, "segment ids (packing) cannot be combined with a KV cache");
    allowed = allowed.logical_and(segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1));
  }
  auto bias = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(dev));
  bias.masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return bias.unsqueeze(1);  // (B|1, 1, T, S)
}

torch::Tensor attention_few_queries_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& bias, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv, R = G * T;
  auto qc = q.contiguous();  // (B, H, T, D): the G*T query rows of one key/value head are adjacent
  auto scores = torch::empty({B, Hkv, R, S}, q.options());
  const float* qp = qc.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* sp = scores.data_ptr<float>();
  parallel_chunks(B * Hkv, at::get_num_threads(), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / Hkv, h = i % Hkv;
      small_gemm_nt(qp + (b * H + h * G) * T * D, D, R, kp + b * k.stride(0) + h * k.stride(1), k.stride(2), D, nullptr,
                    sp + i * R * S, S, 0, S);
    }
  });
  // bias (B|1, 1, T, S) -> (B|1, 1, 1, T, S) against scores (B, Hkv, G, T, S)
  auto probs = torch::softmax(scores.view({B, Hkv, G, T, S}).mul_(scale).add_(bias.unsqueeze(2)), -1).contiguous();
  auto out = torch::empty({B, Hkv, R, D}, q.options());
  const float* pp = probs.data_ptr<float>();
  float* op = out.data_ptr<float>();
  parallel_chunks(B * Hkv, at::get_num_threads(), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / Hkv, h = i % Hkv;
      small_gemm_nn(pp + i * R * S, S, R, S, vp + b * v.stride(0) + h * v.stride(1), v.stride(2), D, op + i * R * D, D);
    }
  });
  return out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias, double scale, double dropout_p, bool training) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  const bool drop = training && dropout_p > 0;
#if TORCH_VERSION_MAJOR >= 2
  if (q.is_cuda()) {
    // Fused kernels on GPU; key/value heads repeated for grouped-query attention.
    auto kk = G > 1 ? k.repeat_interleave(G, 1) : k, vv = G > 1 ? v.repeat_interleave(G, 1) : v;
    // The mask value must stay finite in half precision (float's lowest is -inf in fp16/bf16), or a
    // fully masked row (left padding) turns into NaN; half of it leaves room to add the scores.
    const float lowest = q.scalar_type() == torch::kHalf ? -32752.0f
                         : q.scalar_type() == torch::kBFloat16 ? -1.69e38f
                                                               : std::numeric_limits<float>::lowest();
    auto out = bias.defined()
                   ? at::scaled_dot_product_attention(q, kk, vv, bias.clamp_min(lowest).to(q.scalar_type()),
                                                      drop ? dropout_p : 0.0, /*is_causal=*/false, scale)
                   : at::scaled_dot_product_attention(q, kk, vv, {}, drop ? dropout_p : 0.0, /*is_causal=*/true, scale);
    return out.transpose(1, 2).reshape({B, T, H * D});
  }
#endif
  if (q.size(2) <= 8 && small_gemm_available() && q.device().is_cpu() && !torch::GradMode::is_enabled() && !drop &&
      !cpu_autocast_enabled() &&
      q.scalar_type() == torch::kFloat && k.scalar_type() == torch::kFloat && v.scalar_type() == torch::kFloat &&
      bias.defined() && bias.scalar_type() == torch::kFloat && k.stride(3) == 1 && v.stride(3) == 1)
    return attention_few_queries_cpu(q, k, v, bias, scale);
  // Grouped heads: the G query heads that share a key/value head are stacked along T, so keys and
  // values are never copied.  (B, Hkv, G*T, D) @ (B, Hkv, D, S) -> (B, Hkv, G*T, S)
  auto qg = (q * scale).reshape({B, Hkv, G * T, D});
  auto scores = torch::matmul(qg, k.transpose(-1, -2)).view({B, Hkv, G, T, S});
  scores = scores + bias.unsqueeze(2);                                  // bias (B|1, 1, 1, T, S)
  auto probs = torch::softmax(scores, -1, torch::kFloat).to(v.scalar_type());
  if (drop) probs = rlhf::dropout(probs, dropout_p, true);
  auto out = torch::matmul(probs.view({B, Hkv, G * T, S}), v);          // (B, Hkv, G*T, D)
  return out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
}

// ---- gradient checkpointing ---------------------------------------------------------------------------

namespace {

// What backward needs to run the block again: the function, the random-number state at the
// forward, and whether autocast was on (backward usually runs after the autocast scope has closed).
struct CheckpointClosure : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> fn;
  torch::Device device = torch::kCPU;
  torch::Tensor rng_state;
  bool autocast = false;
};

at::Generator default_generator(torch::Device dev) { return at::globalContext().defaultGenerator(dev); }

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               c10::intrusive_ptr<CheckpointClosure> c) {
    c->device = x.device();
    {
      auto gen = default_generator(c->device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      c->rng_state = gen.get_state();
    }
    c->autocast = autocast_enabled(x.device());
    ctx->save_for_backward({x});
    auto y = c->fn(x);  // autograd is off inside a custom function's forward
    ctx->saved_data["closure"] = c10::IValue::make_capsule(c10::intrusive_ptr<torch::CustomClassHolder>(c));
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    if (!grad_out[0].defined()) return {torch::Tensor(), torch::Tensor()};
    auto holder = ctx->saved_data["closure"].toCapsule();
    auto* c = static_cast<CheckpointClosure*>(holder.get());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto gen = default_generator(c->device);
    torch::Tensor resume_state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      resume_state = gen.get_state();
      gen.set_state(c->rng_state);
    }
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      ComputeScope cs(c->autocast);
      y = c->fn(x);
    }
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(resume_state);
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x) {
  auto c = c10::make_intrusive<CheckpointClosure>();
  c->fn = std::move(fn);
  // The output must carry a gradient path even when x needs none (frozen embeddings under LoRA):
  // the block's own parameters still do.
  auto input = x.requires_grad() ? x : x.detach().requires_grad_(true);
  return CheckpointFunction::apply(input, c);
}

}  // namespace rlhf
