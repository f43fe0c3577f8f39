// Building blocks shared by every architecture: a Linear that can carry a LoRA adapter, RMSNorm,
// activations, rotary position embeddings, the attention mask, the KV cache and attention itself.
#pragma once
#include <torch/torch.h>

#include <functional>

#include <memory>
#include <string>
#include <vector>

#include "model/config.h"

namespace rlhf {

// Shared switch for every LoRA adapter of one model: off = the frozen base model (the reference
// policy in DPO and PPO is the same weights with this off).
struct LoraSwitch {
  bool enabled = true;
  bool attached = false;  // some module of the model has an adapter (set by attach_lora, cleared by merge)
};

// The weight a matmul takes under bf16 autocast, for a frozen fp32 weight used again and again.
// Autocast caches its casts only for weights that require grad, so a frozen weight (a LoRA model's
// base, its tied output head) would be cast again on every forward: every decode step of a rollout,
// every PPO epoch. This keeps the bf16 copy and makes it again when the weight changes (its version
// counter or its storage). Returns `weight` itself when it requires grad, is not fp32, or autocast is
// off. Costs half the frozen weight's size, so only adapted models use it.
class FrozenBf16Cast {
 public:
  const torch::Tensor& operator()(const torch::Tensor& weight);

 private:
  torch::Tensor copy_;
  int64_t version_ = -1;
  const void* source_ = nullptr;
};

// y = x W^T + b, the dense product every projection and output head goes through. Without autograd
// on the CPU in fp32 and for up to kSmallGemmMaxRows rows (a decode step of generation, scoring a few
// sequences) it runs the small-gemm kernel (model/small_gemm.h), which streams the weights once per
// call where OpenBLAS's sgemm repacks the whole weight matrix first: 1.1-12x faster at GPT-2-124M's
// shapes for 1-128 rows on 2 cores (bench_small_gemm). Elsewhere torch::linear.
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// y = x W^T + b  (+ scaling * B(A(dropout(x))) when a LoRA adapter is attached and enabled).
// Parameters are named as Hugging Face / PEFT name them: weight, bias, lora_A.weight, lora_B.weight.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);
  // A Linear over a weight that belongs to another module (a tied output head over the embedding):
  // the weight is not one of its parameters, so it carries only an adapter's lora_A / lora_B until
  // merge_lora(), which gives it a weight of its own (weight + the adapter's delta: the head unties).
  static std::shared_ptr<LinearImpl> sharing(const torch::Tensor& weight);
  bool shares_weight() const { return shared_; }
  torch::Tensor forward(const torch::Tensor& x);

  void attach_lora(int64_t rank, double alpha, double dropout, std::shared_ptr<LoraSwitch> sw, bool use_rslora = false);
  bool has_lora() const { return !lora_A.is_empty(); }
  // Folds the adapter into `weight` and removes it (a shared weight is copied first: see sharing()).
  void merge_lora();

  int64_t in_features, out_features;
  torch::Tensor weight;  // (out, in)
  torch::Tensor bias;    // (out) or undefined
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};  // (r, in), (out, r)
  double lora_scaling = 0.0, lora_dropout = 0.0;
  std::shared_ptr<LoraSwitch> lora_switch;

 private:
  LinearImpl() = default;
  FrozenBf16Cast frozen_cast_;  // of `weight`, once an adapter is attached
  bool shared_ = false;
};
TORCH_MODULE(Linear);

// An embedding table whose weight is left uninitialised (torch::nn::Embedding draws normal(0, 1)
// for it on construction); init_weights or the checkpoint fills it, as they do Linear's weights.
torch::nn::Embedding embedding(int64_t num, int64_t dim);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

torch::Tensor activation(const torch::Tensor& x, const std::string& name);

// Rotary embeddings in the Hugging Face layout (rotate_half: first and second half of each head).
class Rope {
 public:
  explicit Rope(const ModelConfig& cfg);
  // cos, sin: (B, T, head_dim) float32 for position_ids (B, T).
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& position_ids) const;
  // x: (B, H, T, D); cos/sin (B, T, D)
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  const torch::Tensor& inv_freq() const { return inv_freq_; }

 private:
  torch::Tensor inv_freq_;  // (D/2) float32, CPU; moved to the positions' device on use
};

// Keys and values of every layer for incremental decoding. Rows are sequences; `key_mask` marks
// which cached positions are real tokens (left padding is 0).
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer (B, n_kv_head, capacity, head_dim)
  torch::Tensor key_mask;           // (B, capacity) int64 1 = real token
  int64_t len = 0;                  // positions filled
  int64_t capacity = 0;

  void init(const ModelConfig& cfg, int64_t batch, int64_t capacity, torch::Dtype dtype, torch::Device dev);
  int64_t batch() const { return key_mask.defined() ? key_mask.size(0) : 0; }
  // Keeps only the rows `rows` (int64 indices), e.g. to drop finished sequences.
  void select_rows(const torch::Tensor& rows);
  // Repeats every row n times (row i becomes rows i*n .. i*n+n-1): n samples sharing one prefill.
  void repeat_rows(int64_t n);
};

// Inputs beyond the token ids.
struct ForwardArgs {
  torch::Tensor attention_mask;  // (B, S) 1 = token, 0 = padding; S = cached + new. Undefined: none
  torch::Tensor position_ids;    // (B, T). Undefined: restarts at every segment when segment_ids are
                                 // given, else follows the mask (cumsum - 1), as HF does
  torch::Tensor segment_ids;     // (B, T) packed rows: attention stays within a segment
  KVCache* cache = nullptr;      // read cached keys, append the new ones
};

// Position ids that follow a padding mask: the first real token of each row gets 0.
// mask (B, S) -> (B, S) int64; padded positions get 1 (as HF generate does; they are masked anyway).
torch::Tensor positions_from_mask(const torch::Tensor& mask);

// Position ids of packed rows: 0 at the start of every segment (a change of segment id), counting up
// within it. segment_ids (B, T) -> (B, T) int64.
torch::Tensor positions_from_segments(const torch::Tensor& segment_ids);

// Additive attention bias (B or 1, 1, T, S) float32: 0 where query t (absolute position S-T+t) may
// attend key s, a large negative number elsewhere (causal, padding, segments, sliding window).
// On CUDA, a plain causal square mask (no padding, packing or window) is returned undefined:
// attention() then asks the fused kernel for causality, which lets it use FlashAttention.
torch::Tensor attention_bias(int64_t T, int64_t S, const torch::Tensor& key_mask, const torch::Tensor& segment_ids,
                             int64_t sliding_window, torch::Device dev);

// Scaled dot-product attention with grouped-query heads. q (B, H, T, D); k, v (B, Hkv, S, D);
// bias (B|1, 1, T, S), or undefined for plain causal (CUDA only). Returns (B, T, H*D). Softmax in
// float32.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias, double scale, double dropout_p, bool training);

// Attention for the few query positions of a decode step, on the CPU without autograd (fp32; k and
// v with unit stride in D). A batched matmul there runs one BLAS call (packing, thread fork) per row
// and head for a 1 x 64 by 64 x S product: 2 x 384 calls per layer at batch 32 with 12 heads, a fifth
// of the decode step's time. This computes each key/value head's G*T score rows with the small-gemm
// kernel in one parallel loop, the softmax as one tensor op, and the weighted values in a second
// loop. attention() takes it for up to 8 query positions when small_gemm_available().
torch::Tensor attention_few_queries_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& bias, double scale);

// Writes k_new/v_new (B, Hkv, T, D) of `layer` into the cache at [len, len+T) and returns the
// cached keys/values [0, len+T). The caller advances cache.len once all layers are done.
std::pair<torch::Tensor, torch::Tensor> cache_append(KVCache& cache, int64_t layer, const torch::Tensor& k_new,
                                                     const torch::Tensor& v_new);

// Gradient (activation) checkpointing, as transformers' gradient_checkpointing_enable(): returns
// fn(x), but runs fn without autograd and keeps only x; backward runs fn again with autograd (same
// random-number state, so dropout draws the same masks; same autocast setting) and backpropagates
// through that. A transformer block's activations then cost one (B, T, C) tensor each instead of
// a dozen, for one more forward pass per step. fn must be a pure function of x and of tensors that
// need no gradient (masks, rotary tables), apart from the module parameters it reads.
torch::Tensor checkpointed(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x);

}  // namespace rlhf
