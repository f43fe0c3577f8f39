#include "model/llama.h"

#include <cmath>

#include "core/error.h"

namespace rlhf {

LlamaBlockImpl::LlamaBlockImpl(const ModelConfig& cfg, int64_t layer_idx) : cfg_(cfg), layer_(layer_idx) {
  const int64_t C = cfg.n_embd, q = cfg.n_head * cfg.head_dim, kv = cfg.n_kv_head * cfg.head_dim;
  auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
  q_proj = attn->register_module("q_proj", Linear(C, q, cfg.qkv_bias));
  k_proj = attn->register_module("k_proj", Linear(C, kv, cfg.qkv_bias));
  v_proj = attn->register_module("v_proj", Linear(C, kv, cfg.qkv_bias));
  o_proj = attn->register_module("o_proj", Linear(q, C, cfg.out_bias));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  gate_proj = mlp->register_module("gate_proj", Linear(C, cfg.n_inner, cfg.mlp_bias));
  up_proj = mlp->register_module("up_proj", Linear(C, cfg.n_inner, cfg.mlp_bias));
  down_proj = mlp->register_module("down_proj", Linear(cfg.n_inner, C, cfg.mlp_bias));
  input_layernorm = register_module("input_layernorm", RMSNorm(C, cfg.norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(C, cfg.norm_eps));
}

torch::Tensor LlamaBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                      const torch::Tensor& bias, KVCache* cache, double attn_pdrop) {
  const int64_t B = x.size(0), T = x.size(1), D = cfg_.head_dim;
  auto h = input_layernorm(x);
  auto q = q_proj(h).view({B, T, cfg_.n_head, D}).transpose(1, 2);     // (B, H, T, D)
  auto k = k_proj(h).view({B, T, cfg_.n_kv_head, D}).transpose(1, 2);  // (B, Hkv, T, D)
  auto v = v_proj(h).view({B, T, cfg_.n_kv_head, D}).transpose(1, 2);
  q = Rope::apply(q, cos, sin);
  k = Rope::apply(k, cos, sin);
  if (cache) std::tie(k, v) = cache_append(*cache, layer_, k, v);     // (B, Hkv, S, D)
  auto a = attention(q, k, v, bias, 1.0 / std::sqrt(double(D)), attn_pdrop, is_training());
  auto r = x + o_proj(a);
  h = post_attention_layernorm(r);
  return r + down_proj(activation(gate_proj(h), cfg_.activation) * up_proj(h));
}

LlamaImpl::LlamaImpl(const ModelConfig& cfg) : TransformerImpl(cfg), rope(cfg) {
  const ModelConfig& c = cfg_;
  model = register_module("model", std::make_shared<torch::nn::Module>());
  embed_tokens = model->register_module("embed_tokens", embedding(c.vocab_size, c.n_embd));
  auto list = model->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layer; ++i) {
    layers.push_back(LlamaBlock(c, i));
    list->push_back(layers.back());
  }
  norm = model->register_module("norm", RMSNorm(c.n_embd, c.norm_eps));
  if (c.head == Head::Score) score = register_module("score", Linear(c.n_embd, c.num_labels, false));
  else if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.n_embd, c.vocab_size, false));
  attn_pdrop_ = c.attn_pdrop;
}

torch::Tensor LlamaImpl::hidden(const torch::Tensor& ids, const ForwardArgs& args) {
  auto p = prepare(ids, args);
  auto [cos, sin] = rope.cos_sin(p.positions);  // (B, T, D)
  auto x = embed_tokens(ids);
  const bool ckpt = checkpoint_blocks(args);
  for (auto& l : layers) {
    if (ckpt) {
      x = checkpointed([l, cos = cos, sin = sin, bias = p.bias, ap = attn_pdrop_](const torch::Tensor& in) mutable {
        return l->forward(in, cos, sin, bias, nullptr, ap);
      }, x);
    } else {
      x = l->forward(x, cos, sin, p.bias, args.cache, attn_pdrop_);
    }
  }
  if (args.cache) args.cache->len += ids.size(1);
  return norm(x);
}

torch::Tensor LlamaImpl::lm_head_weight() { return lm_head ? lm_head->weight : embed_tokens->weight; }

torch::Tensor LlamaImpl::head(const torch::Tensor& h) {
  if (score) return score(h);
  return lm_logits(h);
}

}  // namespace rlhf
