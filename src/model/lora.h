// LoRA adapters in PEFT's format. attach_lora() puts an adapter on every Linear whose name matches
// the target patterns; only adapter parameters then require grad. Adapters save to / load from
// adapter_config.json + adapter_model.safetensors with PEFT's key names
// ("base_model.model.<module>.lora_A.weight"), so PEFT loads what we write and vice versa.
// The model's LoraSwitch turns every adapter off at once: the frozen base model, which DPO and PPO
// use as the reference policy without a second copy of the weights.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "io/hf_dirs.h"
#include "model/transformer.h"

namespace rlhf {

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32;
  double dropout = 0.05;
  // Module name suffixes ("q_proj", "attn.c_proj") or, if one pattern is given that starts with
  // "re:", a regex the full module name must match. Empty = the architecture's defaults
  // (attention and MLP projections).
  std::vector<std::string> target_modules;
  bool use_rslora = false;       // scale alpha / sqrt(r) instead of alpha / r
  std::string base_model;        // recorded as base_model_name_or_path
};

// Refuses a rank < 1 or > 65536, a non-finite or non-positive alpha, dropout outside [0, 1), naming
// the option (--lora-r, --lora-alpha, --lora-dropout).
void validate_lora_config(const LoraConfig& cfg, const std::string& where = "");

// The default targets: GPT-2 c_attn, c_proj, c_fc; Llama q/k/v/o_proj, gate/up/down_proj.
std::vector<std::string> default_lora_targets(const ModelConfig& cfg);

// Attaches adapters (initialised as PEFT does: A kaiming-uniform from `seed`, B zero), freezes
// every other parameter except a score head (a reward/value model trains its head). Returns the
// names of adapted modules; an empty match is an error.
std::vector<std::string> attach_lora(TransformerImpl& model, const LoraConfig& cfg, uint64_t seed = 0);

bool has_lora(TransformerImpl& model);

// RAII: adapters off for this scope (the reference policy).
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(TransformerImpl& model);
  ~AdaptersDisabled();

 private:
  std::shared_ptr<LoraSwitch> sw_;
  bool prev_;
};

// PEFT files in `dir`: adapter_config.json, adapter_model.safetensors (and the score head when the
// model has one, as PEFT's modules_to_save does for sequence classification).
void save_lora(TransformerImpl& model, const LoraConfig& cfg, const std::filesystem::path& dir);
// Reads adapter_config.json, attaches matching adapters and loads their weights.
LoraConfig load_lora(TransformerImpl& model, const std::filesystem::path& dir);
// Folds every adapter into its base weight (W += scale * B A) and removes it.
void merge_lora(TransformerImpl& model);

// A model directory, or a PEFT adapter directory (adapter_config.json without weights of its own):
// then its base_model_name_or_path is loaded (head as the adapter's task type says: SEQ_CLS = score
// head) and the adapter attached. The base may itself be an adapter (LoRA RL on a LoRA SFT model):
// then it is loaded the same way and merged first. A config.json next to the adapter (written by `rlhf rm --lora`)
// contributes reward_bias and pad_token_id.
Transformer load_model_or_adapter(const std::filesystem::path& dir, std::optional<Head> head = std::nullopt,
                                  uint64_t seed = 0);
// config.json of a model directory, or of the base model of an adapter directory.
ModelConfig config_of_model_or_adapter(const std::filesystem::path& dir);

// Parameters that require grad, with their names.
std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(TransformerImpl& model);

}  // namespace rlhf
