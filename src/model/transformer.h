// The decoder-only transformer interface every architecture implements. Parameters are registered
// under their Hugging Face names (transformer.h.0.attn.c_attn.weight, model.layers.0.self_attn.q_proj.weight,
// ...), so loading, saving and PEFT adapter keys are a direct mapping.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/layers.h"

namespace rlhf {

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(ModelConfig cfg) : cfg_(std::move(cfg)), lora_switch_(std::make_shared<LoraSwitch>()) {}
  const ModelConfig& config() const { return cfg_; }
  ModelConfig& mutable_config() { return cfg_; }

  // Final hidden states (B, T, C), after the last norm.
  virtual torch::Tensor hidden(const torch::Tensor& ids, const ForwardArgs& args = {}) = 0;
  // The head over hidden states (..., C): LM logits (..., V) or scores (..., num_labels).
  virtual torch::Tensor head(const torch::Tensor& h) = 0;
  torch::Tensor forward(const torch::Tensor& ids, const ForwardArgs& args = {}) { return head(hidden(ids, args)); }

  // The weight of the LM head (V, C) (the embedding when tied).
  virtual torch::Tensor lm_head_weight() = 0;
  // The LM head as a Linear: the model's own when untied; for a tied head one over the embedding's
  // weight is made (and registered as "lm_head") on the first call, so that a LoRA adapter can target
  // "lm_head" as PEFT lets it. nullptr for a score model.
  Linear lm_head_linear();
  // The same without making one: nullptr for a tied head that carries no adapter.
  Linear existing_lm_head_linear() {
    Linear* slot = lm_head_slot();
    return slot ? *slot : nullptr;
  }
  // LM logits h W^T with that weight; a model with LoRA adapters keeps its frozen head's bf16 copy
  // under autocast (FrozenBf16Cast) instead of casting it on every forward.
  torch::Tensor lm_logits(const torch::Tensor& h);
  // Every Linear layer with its full name ("model.layers.0.self_attn.q_proj"), for LoRA.
  std::vector<std::pair<std::string, Linear>> linear_layers();

  // Hugging Face layout: is this parameter stored transposed (GPT-2 Conv1D), and other names a
  // checkpoint may use for it (GPT-2 without the "transformer." prefix).
  virtual bool hf_transposed(const std::string& name) const { return false; }
  virtual std::vector<std::string> hf_aliases(const std::string& name) const { return {}; }
  // Tensors in HF files we know and deliberately skip (old attention-mask buffers, rotary caches).
  virtual bool hf_ignorable(const std::string& name) const;

  // Dropout probability for every dropout in the model (0 disables; RL trainers do).
  void set_dropout(double p);
  // Random initialisation as transformers does it (normal(0, initializer_range), zero biases,
  // unit norms; GPT-2 scales residual projections by 1/sqrt(2 n_layer)). With `only`, just the
  // parameters it accepts (by name); the others keep their values.
  using ParamFilter = std::function<bool(const std::string&)>;
  virtual void init_weights(uint64_t seed, const ParamFilter& only = {});

  std::shared_ptr<LoraSwitch> lora_switch() const { return lora_switch_; }

  // Gradient checkpointing of every block (see checkpointed() in layers.h): applies to forward
  // passes in training mode with autograd on and no KV cache.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 protected:
  // The derived class's lm_head member (nullptr handle when the head is tied), or null for a score model.
  virtual Linear* lm_head_slot() = 0;
  bool gradient_checkpointing_ = false;
  bool checkpoint_blocks(const ForwardArgs& args) const {
    return gradient_checkpointing_ && is_training() && !args.cache && torch::GradMode::is_enabled();
  }
  ModelConfig cfg_;
  std::shared_ptr<LoraSwitch> lora_switch_;
  FrozenBf16Cast head_cast_;
  double embd_pdrop_ = 0, attn_pdrop_ = 0, resid_pdrop_ = 0;

  // Shared preamble of hidden(): key mask, positions and attention bias for this call, and the
  // cache bookkeeping. T new tokens, `past` cached ones.
  struct Prepared {
    torch::Tensor positions;  // (B, T)
    torch::Tensor bias;       // (B|1, 1, T, S)
  };
  Prepared prepare(const torch::Tensor& ids, const ForwardArgs& args) const;
};

using Transformer = std::shared_ptr<TransformerImpl>;

// A fresh model of this config (random init from `seed`), on the runtime device.
Transformer make_model(const ModelConfig& cfg, uint64_t seed = 0);
// Loads config.json + safetensors from a Hugging Face model directory. `head` overrides the config's
// head type (e.g. Score to initialise a reward model from an SFT model: the LM head is dropped and
// a new score head is initialised with `seed`).
Transformer load_model(const std::filesystem::path& dir, std::optional<Head> head = std::nullopt, uint64_t seed = 0);
// Copies weights from HF-named tensors into the model; every parameter must be found with the
// right shape. Returns the names of tensors that were present but not used.
std::vector<std::string> load_weights(TransformerImpl& model, const SafetensorsReader& st, bool allow_missing_head = false);
// Parameters under their HF names and layouts (Conv1D transposed back; tied heads omitted).
NamedTensors hf_state_dict(TransformerImpl& model);
// Writes config.json + model.safetensors (sharded above 5 GB) into `dir`, each file atomically.
void save_model(TransformerImpl& model, const std::filesystem::path& dir, torch::ScalarType dtype = torch::kFloat);

}  // namespace rlhf
