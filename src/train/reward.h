// The reward model: a transformer with a scalar score head read at the last token of each sequence
// (Hugging Face's rule: the token before the first pad_token_id, else the last token), trained with
// the Bradley-Terry loss on preference pairs. Rankings of K responses give all their pairs; each
// prompt's pairs are averaged as one batch element and each response gets one forward pass.
#pragma once
#include <string>

#include "data/preference_data.h"
#include "io/jsonl.h"
#include "model/lora.h"
#include "train/loop.h"

namespace rlhf {

struct RewardConfig {
  std::string model;       // SFT model directory to initialise from
  std::string tokenizer;   // "" = the model's
  std::string data, eval_data;
  double eval_split = 0.0;
  PreferenceDataOptions data_opts;
  double center_rewards_coefficient = 0.0;  // TRL's: pushes rewards towards mean zero
  std::string normalize_on;  // JSONL of reference responses (e.g. the SFT demonstrations): bias so they average 0
  bool use_lora = false;
  LoraConfig lora;
  std::string save_dtype = "fp32";
  TrainConfig train;
  Json resolved = Json::object();
};

void run_reward(const RewardConfig& cfg);

// Positions of the scored token per row of right-padded `ids` (B, T): HF's rule with `pad_id`.
torch::Tensor reward_positions(const torch::Tensor& ids, const torch::Tensor& attention_mask, int64_t pad_id);

// A trained reward model ready to score: its config's reward_bias is added to every score.
struct RewardModel {
  Transformer model;
  double bias = 0.0;
  int64_t pad_id = -1;
  // Rewards (B) of a collated batch, float32.
  torch::Tensor score(const Batch& b);
};
RewardModel load_reward_model(const std::string& dir);

// The rewards of each record's responses, one forward pass per record, as `rlhf score` gives them:
// {"prompt","responses":[...]} -> one per response; {"prompt","chosen","rejected"} -> chosen, rejected;
// {"prompt","completion"|"response"} -> one. Throws naming the record when a response has no token
// left within `max_length` (prompt + response tokens, capped to the model's context).
std::vector<std::vector<double>> score_records(RewardModel& rm, const Tokenizer& tok, const std::vector<JsonlRecord>& records,
                                               int64_t max_length, const std::string& chat_template);

// Per-record Bradley-Terry loss of the records `idx` whose responses were scored as `rewards` (flat,
// in FlatResponses order): the mean over each record's pairs (+ centering). Collects (better, worse)
// reward pairs if asked.
torch::Tensor reward_record_losses(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                                   const FlatResponses& f, const torch::Tensor& rewards, double center,
                                   std::vector<std::pair<double, double>>* pair_rewards = nullptr);

// Mean, min, max of rewards, accuracy and margin over pairs: the metrics of `rlhf rm`.
Json reward_metrics(const std::vector<double>& rewards, const std::vector<std::pair<double, double>>& pair_rewards);

}  // namespace rlhf
