// Direct preference optimisation and its family (IPO, SLiC hinge, robust/conservative DPO, SimPO,
// KTO): the policy learns from preference pairs against a frozen reference, with no reward model.
// Reference log-probs are computed once before training and cached on disk (default), or on the
// fly; with LoRA the reference is the same weights with the adapters off, so no second copy of the
// model is held. Chosen and rejected responses go through one concatenated forward pass.
#pragma once
#include <string>

#include "align/losses.h"
#include "data/preference_data.h"
#include "model/lora.h"
#include "train/loop.h"

namespace rlhf {

struct DpoConfig {
  std::string model;       // the policy to start from (usually the SFT model)
  std::string tokenizer;   // "" = the model's
  std::string ref_model;   // "" = the starting policy itself
  std::string data, eval_data;
  double eval_split = 0.0;
  PreferenceDataOptions data_opts;
  std::string loss = "sigmoid";  // sigmoid | ipo | hinge | robust | simpo | kto
  DpoParams params;
  double kto_desirable_weight = 1.0, kto_undesirable_weight = 1.0;
  std::string reference = "cached";  // cached (computed once, stored in out/) | online (every step)
  bool use_lora = false;
  LoraConfig lora;
  double dropout = 0.0;
  std::string save_dtype = "fp32";
  TrainConfig train;
  Json resolved = Json::object();
};

void run_dpo(const DpoConfig& cfg);

}  // namespace rlhf
