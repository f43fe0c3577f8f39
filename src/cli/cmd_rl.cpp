// `rlhf ppo`, `rlhf grpo`, `rlhf rloo`: RL fine-tuning against a reward model, one set of options.
#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "train/rl.h"

namespace rlhf::cli {

namespace {

Command add_rl(CLI::App& root, const std::string& algo, const std::string& help) {
  auto c = std::make_shared<RlConfig>();
  c->algo = algo;
  c->adam.lr = 3e-6;
  c->schedule.type = "linear";
  if (algo != "ppo") c->group = 4;
  if (algo == "grpo") {
    c->kl_coef = 0.04;
    c->ppo_epochs = 1;
  }
  if (algo == "rloo") c->ppo_epochs = 1;
  auto* app = root.add_subcommand(algo, help);
  add_config_option(app);
  app->add_option("--policy", c->policy, "SFT model to start from (directory or LoRA adapter)")->required();
  auto* rw = app->add_option("--reward", c->reward, "reward model directory");
  auto* rj = app->add_option("--reward-judge", c->reward_judge,
                             "direct RLAIF instead of a reward model: a judge model whose expected score (1-10, from the "
                             "constitution's score options) rescaled to [-1, 1] is the reward");
  rw->excludes(rj);
  app->add_option("--constitution", c->constitution, "with --reward-judge: the constitution JSON (score question and options)");
  app->add_option("--judge-chat-template", c->judge_chat_template, "with --reward-judge: the judge's chat template "
                                                                    "(default: its tokenizer's)");
  app->add_option("--judge-batch-rows", c->judge_batch_rows, "with --reward-judge: sequences per judge forward pass")
      ->capture_default_str();
  app->add_flag("--judge-retokenize", c->judge_retokenize,
                "with --reward-judge: accept a judge whose tokenizer differs from the policy's");
  app->add_option("--ref-model", c->ref_model,
                  "KL reference (default: the starting --policy; in iterated RLHF pass the SFT model)");
  if (algo == "ppo") {
    app->add_option("--value-model", c->value_model, "critic initialisation (default: the reward model; with --reward-judge the policy)");
    app->add_flag("--shared-value", c->shared_value, "a value head on the policy instead of a separate critic");
    app->add_option("--vf-coef", c->vf_coef, "value loss coefficient")->capture_default_str();
    app->add_option("--cliprange-value", c->cliprange_value, "value clipping range")->capture_default_str();
    app->add_option("--gamma", c->gamma, "GAE discount")->capture_default_str();
    app->add_option("--lam", c->lam, "GAE lambda")->capture_default_str();
    app->add_flag("--whiten-rewards", c->whiten_rewards, "whiten per-token rewards before GAE");
  }
  app->add_option("--prompts", c->prompts, "JSONL of {\"prompt\": text | [messages]} or {\"messages\": [...]}")->required();
  app->add_option("--tokenizer", c->tokenizer, "tokenizer (default: the policy's)");
  app->add_flag("--chat", c->chat, "render text prompts as a user turn with the chat template");
  add_chat_template_options(app, c->chat_template, "");
  app->add_option("--out,--output-dir", c->out, "output directory (policy, value model, metrics, samples, checkpoints)")->required();
  app->add_option("--iterations", c->iterations, "rollout + update iterations")->capture_default_str();
  app->add_option("--rollout-batch", c->rollout_batch, "prompts per iteration")->capture_default_str();
  app->add_option("--group", c->group, algo == "ppo" ? "samples per prompt" : "samples per prompt (the group of the baseline)")
      ->capture_default_str();
  app->add_option("--max-new-tokens", c->max_new_tokens, "response length limit")->capture_default_str();
  app->add_option("--temperature", c->temperature, "sampling temperature (the policy is softmax(logits / T))")
      ->capture_default_str();
  app->add_option("--missing-eos-penalty", c->missing_eos_penalty, "subtracted from the score of a response without EOS")
      ->capture_default_str();
  app->add_option("--kl-coef", c->kl_coef, "beta: weight of the KL to the reference")->capture_default_str();
  app->add_option("--kl-estimator", c->kl_estimator, "k1 | k3")->capture_default_str();
  if (algo != "ppo") app->add_option("--kl-in", c->kl_in, "reward | loss (default: loss for grpo, reward for rloo)");
  app->add_flag("--adaptive-kl", c->adaptive_kl, "adapt beta towards --kl-target (Ziegler et al.)");
  app->add_option("--kl-target", c->kl_target, "target KL (nats per sequence) of the adaptive controller")->capture_default_str();
  app->add_option("--kl-horizon", c->kl_horizon, "horizon of the adaptive controller")->capture_default_str();
  app->add_flag("--normalize-scores", c->normalize_scores, "standardise scores with running mean/std");
  app->add_option("--score-clip", c->score_clip, "clip scores to [-c, c] (0 = off)")->capture_default_str();
  if (algo == "grpo") app->add_flag("!--no-scale-by-std", c->grpo_scale_by_std, "GRPO advantages without dividing by the group std");
  app->add_option("--ppo-epochs", c->ppo_epochs, "passes over each rollout")->capture_default_str();
  app->add_option("--mini-batches", c->mini_batches, "optimizer steps per pass")->capture_default_str();
  app->add_option("--micro-batch", c->micro_batch, "rows per forward pass; gradients accumulate (0 = whole mini-batch)")
      ->capture_default_str();
  app->add_option("--cliprange", c->cliprange, "policy ratio clipping")->capture_default_str();
  app->add_option("--ent-coef", c->ent_coef, "entropy bonus")->capture_default_str();
  app->add_option("--max-approx-kl", c->max_approx_kl, "stop a rollout's epochs when approx-KL exceeds this (0 = off)")
      ->capture_default_str();
  app->add_option("--ptx-data", c->ptx_data, "PPO-ptx: SFT-format JSONL mixed in as a language-modelling loss");
  app->add_option("--ptx-coef", c->ptx_coef, "PPO-ptx coefficient")->capture_default_str();
  app->add_option("--ptx-batch", c->ptx_batch, "PPO-ptx examples per mini-batch")->capture_default_str();
  add_lora_options(app, c->use_lora, c->lora);
  add_gradient_checkpointing_option(app, c->gradient_checkpointing);
  app->add_option("--lr,--learning-rate", c->adam.lr, "learning rate")->capture_default_str();
  app->add_option("--lr-schedule,--lr-scheduler-type", c->schedule.type, "cosine | linear | constant")->capture_default_str();
  app->add_option("--warmup-steps", c->schedule.warmup_steps, "warm-up iterations")->capture_default_str();
  app->add_option("--weight-decay", c->adam.weight_decay, "AdamW weight decay")->capture_default_str();
  app->add_option("--max-grad-norm", c->max_grad_norm, "gradient clipping (0 = off)")->capture_default_str();
  app->add_option("--save-steps", c->save_steps, "checkpoint every N iterations, and at the end (0 = none)")
      ->capture_default_str();
  app->add_flag("--save-final-state", c->save_final_state,
                "keep a checkpoint with the optimizer state at the end (implied by --save-steps)");
  app->add_option("--keep-last,--save-total-limit", c->keep_last, "checkpoints kept (0 = all)")->capture_default_str();
  app->add_option("--report-to", c->report_to, "tensorboard | none: TensorBoard event files beside metrics.jsonl")
      ->capture_default_str();
  app->add_option("--sample-every", c->sample_every, "write sample responses with scores every N iterations")
      ->capture_default_str();
  app->add_option("--seed", c->seed, "seed for prompt order, sampling and initialisation")->capture_default_str();
  app->add_option("--max-bad-steps", c->max_bad_steps, "stop after this many consecutive NaN/Inf iterations")
      ->capture_default_str();
  app->add_flag("--resume", c->resume, "continue from the newest checkpoint in --out (a corrupt one falls back to the previous)");
  app->add_flag("--resume-anyway", c->resume_anyway,
                "with --resume: continue although options or data files changed since the checkpoint");
  app->add_flag("--overwrite-output-dir", c->overwrite_output_dir,
                "start afresh in an --out that holds an earlier run's policy or checkpoints (they are removed)");
  add_input_limit_options(app);
  return {app, [c, app] {
            c->resolved = resolved_options(app);
            run_rl(*c);
          }};
}

}  // namespace

Command add_ppo(CLI::App& root) {
  return add_rl(root, "ppo", "PPO against a reward model with a KL leash to the SFT policy, a critic initialised from the "
                             "reward model (or --shared-value), GAE, clipped policy and value losses. Defaults as TRL's "
                             "PPOConfig: kl-coef 0.05, cliprange 0.2, cliprange-value 0.2, vf-coef 0.1, gamma 1, lam 0.95, "
                             "4 PPO epochs.");
}
Command add_grpo(CLI::App& root) {
  return add_rl(root, "grpo", "GRPO: --group samples per prompt, advantages normalised within the group, no critic; "
                              "KL to the reference as a loss term (k3) by default.");
}
Command add_rloo(CLI::App& root) {
  return add_rl(root, "rloo", "RLOO: --group samples per prompt, leave-one-out baseline, no critic; KL in the reward.");
}

}  // namespace rlhf::cli
