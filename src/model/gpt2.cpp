#include "model/gpt2.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "model/dropout.h"

namespace rlhf {

Gpt2BlockImpl::Gpt2BlockImpl(const ModelConfig& cfg, int64_t layer_idx) : cfg_(cfg), layer_(layer_idx) {
  const int64_t C = cfg.n_embd;
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(cfg.norm_eps)); };
  ln_1 = register_module("ln_1", ln());
  auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
  c_attn = attn->register_module("c_attn", Linear(C, 3 * C, true));
  attn_c_proj = attn->register_module("c_proj", Linear(C, C, true));
  ln_2 = register_module("ln_2", ln());
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  c_fc = mlp->register_module("c_fc", Linear(C, cfg.n_inner, true));
  mlp_c_proj = mlp->register_module("c_proj", Linear(cfg.n_inner, C, true));
}

torch::Tensor Gpt2BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, KVCache* cache,
                                     double attn_pdrop, double resid_pdrop) {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.n_head, D = cfg_.head_dim, C = cfg_.n_embd;
  const bool train = is_training();
  auto qkv = c_attn(ln_1(x)).split(C, -1);                         // 3 x (B, T, C)
  auto q = qkv[0].view({B, T, H, D}).transpose(1, 2);              // (B, H, T, D)
  auto k = qkv[1].view({B, T, H, D}).transpose(1, 2);
  auto v = qkv[2].view({B, T, H, D}).transpose(1, 2);
  if (cache) std::tie(k, v) = cache_append(*cache, layer_, k, v);  // (B, H, S, D)
  double scale = cfg_.scale_attn_weights ? 1.0 / std::sqrt(double(D)) : 1.0;
  if (cfg_.scale_attn_by_inverse_layer_idx) scale /= double(layer_ + 1);
  auto a = attn_c_proj(attention(q, k, v, bias, scale, attn_pdrop, train));  // (B, T, C)
  auto h = x + (resid_pdrop > 0 ? rlhf::dropout(a, resid_pdrop, train) : a);
  auto m = mlp_c_proj(activation(c_fc(ln_2(h)), cfg_.activation));
  return h + (resid_pdrop > 0 ? rlhf::dropout(m, resid_pdrop, train) : m);
}

Gpt2Impl::Gpt2Impl(const ModelConfig& cfg) : TransformerImpl(cfg) {
  const ModelConfig& c = cfg_;
  transformer = register_module("transformer", std::make_shared<torch::nn::Module>());
  wte = transformer->register_module("wte", embedding(c.vocab_size, c.n_embd));
  wpe = transformer->register_module("wpe", embedding(c.n_ctx, c.n_embd));
  auto h = transformer->register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layer; ++i) {
    blocks.push_back(Gpt2Block(c, i));
    h->push_back(blocks.back());
  }
  ln_f = transformer->register_module(
      "ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd}).eps(c.norm_eps)));
  if (c.head == Head::Score) score = register_module("score", Linear(c.n_embd, c.num_labels, false));
  else if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.n_embd, c.vocab_size, false));
  embd_pdrop_ = c.embd_pdrop;
  attn_pdrop_ = c.attn_pdrop;
  resid_pdrop_ = c.resid_pdrop;
}

torch::Tensor Gpt2Impl::hidden(const torch::Tensor& ids, const ForwardArgs& args) {
  // Learned positions end at n_ctx. (With a cache, left-padded rows have positions below the cache
  // length; the generator stops each row at the context end, and wpe rejects anything beyond.)
  RLHF_CHECK(args.cache || ids.size(1) <= cfg_.n_ctx, "sequence of ", ids.size(1),
             " tokens is longer than the model's context (n_positions = ", cfg_.n_ctx, ")");
  auto p = prepare(ids, args);
  auto x = wte(ids) + wpe(p.positions);  // (B, T, C)
  if (embd_pdrop_ > 0) x = rlhf::dropout(x, embd_pdrop_, is_training());
  const bool ckpt = checkpoint_blocks(args);
  for (auto& b : blocks) {
    if (ckpt) {
      x = checkpointed([b, bias = p.bias, ap = attn_pdrop_, rp = resid_pdrop_](const torch::Tensor& in) mutable {
        return b->forward(in, bias, nullptr, ap, rp);
      }, x);
    } else {
      x = b->forward(x, p.bias, args.cache, attn_pdrop_, resid_pdrop_);
    }
  }
  if (args.cache) args.cache->len += ids.size(1);
  return ln_f(x);
}

torch::Tensor Gpt2Impl::lm_head_weight() { return lm_head ? lm_head->weight : wte->weight; }

torch::Tensor Gpt2Impl::head(const torch::Tensor& h) {
  if (score) return score(h);
  return lm_logits(h);
}

bool Gpt2Impl::hf_transposed(const std::string& name) const {
  return name.find("lora_") == std::string::npos &&
         (name.ends_with("attn.c_attn.weight") || name.ends_with("attn.c_proj.weight") ||
          name.ends_with("mlp.c_fc.weight") || name.ends_with("mlp.c_proj.weight"));
}

std::vector<std::string> Gpt2Impl::hf_aliases(const std::string& name) const {
  const std::string prefix = "transformer.";
  if (name.rfind(prefix, 0) == 0) return {name.substr(prefix.size())};
  return {};
}

void Gpt2Impl::init_weights(uint64_t seed, const ParamFilter& only) {
  TransformerImpl::init_weights(seed, only);
  torch::NoGradGuard ng;
  // Residual projections: std / sqrt(2 * n_layer), as GPT-2 (and transformers) do.
  // Drawn from their own seeded generator, on the CPU, so a model is the same in every process.
  double std = cfg_.initializer_range / std::sqrt(2.0 * double(cfg_.n_layer));
  auto gen = at::detail::createCPUGenerator(seed ^ 0xC0B1ull);
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (!name.ends_with(".attn.c_proj.weight") && !name.ends_with(".mlp.c_proj.weight")) continue;
    if (only && !only(name)) continue;
    auto cpu = torch::empty(item.value().sizes(), torch::kFloat);
    cpu.normal_(0, std, gen);
    item.value().copy_(cpu);
  }
}

}  // namespace rlhf
