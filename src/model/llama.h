// The Llama family (Llama 2/3/3.x, Mistral, Qwen2): rotary positions (with llama3 / linear
// scaling), RMSNorm, grouped-query attention with optional qkv bias, SwiGLU MLP, tied or untied head.
#pragma once
#include "model/transformer.h"

namespace rlhf {

class LlamaBlockImpl : public torch::nn::Module {
 public:
  LlamaBlockImpl(const ModelConfig& cfg, int64_t layer_idx);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& bias, KVCache* cache, double attn_pdrop);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  const ModelConfig& cfg_;
  int64_t layer_;
};
TORCH_MODULE(LlamaBlock);

class LlamaImpl : public TransformerImpl {
 public:
  explicit LlamaImpl(const ModelConfig& cfg);
  torch::Tensor hidden(const torch::Tensor& ids, const ForwardArgs& args = {}) override;
  torch::Tensor head(const torch::Tensor& h) override;
  torch::Tensor lm_head_weight() override;

 protected:
  Linear* lm_head_slot() override { return score ? nullptr : &lm_head; }

 public:

  std::shared_ptr<torch::nn::Module> model;
  torch::nn::Embedding embed_tokens{nullptr};
  std::vector<LlamaBlock> layers;
  RMSNorm norm{nullptr};
  Linear lm_head{nullptr}, score{nullptr};
  Rope rope;
};

}  // namespace rlhf
