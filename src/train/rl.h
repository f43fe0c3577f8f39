// RL fine-tuning of a policy against a reward: PPO with a value model (InstructGPT / TRL's PPOTrainer)
// and the critic-free GRPO and RLOO, sharing one rollout, KL and loss path. Each iteration:
//   1. sample responses to a batch of prompts with the KV-cache generator
//   2. score them (reward model, or a programmatic reward), teacher-force reference log-probs and values
//   3. per-token rewards with a KL leash to the reference, advantages (GAE, or group baselines)
//   4. PPO epochs x mini-batches of clipped-surrogate updates
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "align/rl.h"
#include "model/lora.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace rlhf {

struct RlConfig {
  std::string algo = "ppo";      // ppo | grpo | rloo
  std::string policy;            // SFT model (directory or LoRA adapter)
  std::string reward;            // reward model directory ("" only with reward_fn or reward_judge)
  // Direct RLAIF (Lee et al. 2023): the reward is a judge model's expected score on the constitution's
  // score question (1..n from the option probabilities), rescaled to [-1, 1]; no reward model.
  std::string reward_judge;      // judge model directory
  std::string constitution;      // its constitution JSON
  std::string judge_chat_template;   // "" = the judge tokenizer's
  int64_t judge_batch_rows = 32;
  bool judge_retokenize = false;     // allow a judge whose tokenizer differs from the policy's
  std::string ref_model;         // KL reference ("" = the starting policy; set it to the SFT model in later rounds)
  std::string value_model;       // PPO critic initialisation ("" = the reward model, as InstructGPT)
  std::string tokenizer;         // "" = the policy's
  std::string prompts;           // JSONL: {"prompt": text | [messages]} or {"messages": [...]}
  bool chat = false;             // render text prompts as a user turn of the chat template
  std::string chat_template;
  // rollout
  int64_t rollout_batch = 16;    // prompts per iteration
  int64_t group = 1;             // samples per prompt (GRPO / RLOO need >= 2)
  int64_t max_new_tokens = 64;
  double temperature = 1.0;
  int64_t iterations = 100;
  double missing_eos_penalty = 0.0;  // subtracted from the score of a response that never ends (0 = off)
  // rewards
  double kl_coef = 0.05;
  std::string kl_estimator = "k1";   // k1 | k3
  std::string kl_in = "";            // reward | loss ("" = reward for PPO/RLOO, loss for GRPO)
  bool adaptive_kl = false;
  double kl_target = 6.0, kl_horizon = 10000.0;
  bool normalize_scores = false;     // divide scores by a running std (and centre them)
  double score_clip = 0.0;           // clip (normalised) scores to [-c, c] (0 = off)
  bool whiten_rewards = false;
  bool grpo_scale_by_std = true;
  double gamma = 1.0, lam = 0.95;
  // update
  int64_t ppo_epochs = 4;
  int64_t mini_batches = 1;
  int64_t micro_batch = 0;           // rows per forward pass (0 = whole mini-batch)
  double cliprange = 0.2, cliprange_value = 0.2, vf_coef = 0.1, ent_coef = 0.0;
  double max_approx_kl = 0.0;        // stop an epoch's updates once approx-KL exceeds this (0 = off)
  std::string ptx_data;              // PPO-ptx: SFT-format JSONL mixed in as a language-modelling loss
  double ptx_coef = 0.0;
  int64_t ptx_batch = 4;
  bool shared_value = false;         // a value head on the policy instead of a separate value model
  bool use_lora = false;
  bool gradient_checkpointing = false;  // policy and value model recompute block activations in backward
  // No LoRA dropout by default: TRL's PPO / GRPO / RLOO trainers disable dropout in every model,
  // adapters included, so that the first mini-batch's ratio to the rollout's log-probs is exactly 1.
  LoraConfig lora = [] {
    LoraConfig l;
    l.dropout = 0.0;
    return l;
  }();
  AdamWConfig adam;
  ScheduleConfig schedule;
  double max_grad_norm = 1.0;
  // run
  std::string out;
  int64_t save_steps = 0, keep_last = 2;
  int64_t sample_every = 10;         // log sample responses with their scores every N iterations
  uint64_t seed = 42;
  bool resume = false;
  bool resume_anyway = false;        // resume although options or data files changed since the checkpoint
  bool overwrite_output_dir = false;  // start afresh in an --out that holds an earlier run's policy or checkpoints
  bool save_final_state = false;      // keep a checkpoint (optimizer state included) at the end without --save-steps
  std::string report_to = "tensorboard";  // tensorboard | none
  int64_t max_bad_steps = 3;
  // Programmatic reward instead of a reward model (tests, rule-based tasks): scores per response.
  std::function<std::vector<double>(const std::vector<std::string>& prompts, const std::vector<std::string>& responses)>
      reward_fn;
  Json resolved = Json::object();
};

void run_rl(const RlConfig& cfg);

}  // namespace rlhf
