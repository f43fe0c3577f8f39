// Evaluation of trained policies side by side (`rlhf eval`): each samples one response per held-out
// prompt (temperature 1, the same seeds for every policy), which is scored by
//   - the gold rater of the demo world (when given): mean with 95% CI, helpful / honest / harmless rates,
//     and the win rate against the reference policy (ties count half);
//   - the learned reward model (when given);
//   - the KL to the reference policy (usually SFT): log pi(y|x) - log pi_ref(y|x) summed over the
//     response, averaged over prompts (nats per sequence).
// Over-optimisation (Gao et al. 2022): the same for every checkpoint of an RL run, and best-of-N
// sampling from the reference with the learned reward for N = 1..64 at its analytic
// KL = log N - (N-1)/N; gold and learned reward against sqrt(KL).
// Results go to eval.json, samples.jsonl, report.md and report.html.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"

namespace rlhf {

struct EvalConfig {
  std::vector<std::pair<std::string, std::string>> policies;  // name, model directory (or LoRA adapter)
  std::string reference = "sft";  // name of the policy that KL and win rates are measured against
  std::string reward;             // reward model directory ("" = no learned reward)
  std::string world;              // world.json of the demo world ("" = no gold rater)
  std::string prompts;            // JSONL prompts
  std::string tokenizer;          // "" = the reference policy's
  bool chat = true;               // text prompts are a user turn of the chat template
  std::string chat_template;
  int64_t max_new_tokens = 32;
  double temperature = 1.0;
  uint64_t seed = 1234;
  std::string checkpoints;        // an RL run's checkpoints/ directory: the over-optimisation curve
  std::string checkpoints_name = "ppo";
  int64_t best_of_n = 64;         // largest N of the best-of-N curve (0 = off)
  int64_t best_of_n_prompts = 48; // prompts used for best-of-N
  std::string heldout;            // held-out rankings JSONL (with "gold"): reward model accuracy vs the raters' ceiling
  std::string extra;              // JSON object merged into the results (curves, timings, config, notes, ...)
  std::string out;                // output directory
  int64_t samples_shown = 6;      // prompts shown side by side in the report
};

// Runs the evaluation, writes the files and returns the results (the schema of eval/report.h).
Json run_eval(const EvalConfig& cfg);

}  // namespace rlhf
