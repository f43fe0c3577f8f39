// GPT-2: learned positions, LayerNorm, fused qkv projection, GELU (tanh) MLP, tied head.
// Hugging Face stores its projections as Conv1D (in, out); we keep (out, in) and transpose on I/O.
#pragma once
#include "model/transformer.h"

namespace rlhf {

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  Gpt2BlockImpl(const ModelConfig& cfg, int64_t layer_idx);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, KVCache* cache, double attn_pdrop,
                        double resid_pdrop);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Linear c_attn{nullptr}, attn_c_proj{nullptr}, c_fc{nullptr}, mlp_c_proj{nullptr};

 private:
  const ModelConfig& cfg_;
  int64_t layer_;
};
TORCH_MODULE(Gpt2Block);

class Gpt2Impl : public TransformerImpl {
 public:
  explicit Gpt2Impl(const ModelConfig& cfg);
  torch::Tensor hidden(const torch::Tensor& ids, const ForwardArgs& args = {}) override;
  torch::Tensor head(const torch::Tensor& h) override;
  torch::Tensor lm_head_weight() override;

 protected:
  Linear* lm_head_slot() override { return score ? nullptr : &lm_head; }

 public:
  bool hf_transposed(const std::string& name) const override;
  std::vector<std::string> hf_aliases(const std::string& name) const override;
  void init_weights(uint64_t seed, const ParamFilter& only = {}) override;

  std::shared_ptr<torch::nn::Module> transformer;
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  std::vector<Gpt2Block> blocks;
  torch::nn::LayerNorm ln_f{nullptr};
  Linear lm_head{nullptr}, score{nullptr};
};

}  // namespace rlhf
