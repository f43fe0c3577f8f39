// `rlhf rm` (reward model), `rlhf score` (rewards of responses) and `rlhf dpo` (the DPO family):
// the commands that learn from preference data.
#include <cstdio>

#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/preference_data.h"
#include "io/jsonl.h"
#include "train/dpo.h"
#include "train/reward.h"

namespace rlhf::cli {

namespace {

// What rm and dpo read; only dpo --loss kto also reads unpaired thumbs.
const char* kPairedFormats =
    "Data (JSONL): {\"prompt\",\"chosen\",\"rejected\"} (text or message lists; no \"prompt\" = the shared prefix; "
    "optional \"margin\", \"p_chosen\"), {\"prompt\",\"responses\":[...],\"ranking\":[best, [tied, tied], ...]} or "
    "\"ranks\":[...] (identical responses count as tied)";
const std::string kDpoFormats = std::string(kPairedFormats) + ", {\"prompt\",\"completion\",\"label\":true|false} (--loss kto).";

void add_data_options(CLI::App* app, std::string& data, std::string& eval_data, double& eval_split,
                      PreferenceDataOptions& o) {
  app->add_option("--data", data, "preference JSONL")->required();
  app->add_option("--eval-data", eval_data, "held-out preference JSONL");
  app->add_option("--eval-split", eval_split, "fraction of --data held out when no --eval-data")->capture_default_str();
  app->add_option("--max-length", o.max_length, "prompt + response tokens")->capture_default_str();
  app->add_option("--max-prompt-length", o.max_prompt_length, "prompt tokens kept when a sequence is too long")
      ->capture_default_str();
  app->add_option("--prompt-truncation", o.prompt_truncation, "keep_start | keep_end of an over-long prompt")
      ->capture_default_str();
  add_chat_template_options(app, o.chat_template, "for message-list data");
  app->add_flag("--skip-bad-lines", o.skip_bad_lines, "skip malformed lines (counted) instead of stopping");
}

}  // namespace

Command add_rm(CLI::App& root) {
  auto c = std::make_shared<RewardConfig>();
  c->train.adam.lr = 1e-5;
  c->data_opts.add_eos = false;
  auto* app = root.add_subcommand("rm", std::string("Train a reward model (Bradley-Terry) from an SFT model; saved in the "
                                                    "Hugging Face sequence-classification layout. ") + kPairedFormats + ".");
  add_config_option(app);
  app->add_option("--model", c->model, "SFT model directory to initialise from")->required();
  app->add_option("--tokenizer", c->tokenizer, "tokenizer (default: the model's)");
  add_data_options(app, c->data, c->eval_data, c->eval_split, c->data_opts);
  app->add_option("--center-rewards-coefficient", c->center_rewards_coefficient,
                  "penalise (r_c + r_r)^2 to keep rewards centred (0 = off)")->capture_default_str();
  app->add_option("--normalize-on", c->normalize_on,
                  "JSONL of reference responses (prompt/completion or messages) that should score 0 on average");
  app->add_option("--save-dtype", c->save_dtype, "fp32 | bf16 | fp16")->capture_default_str();
  add_lora_options(app, c->use_lora, c->lora);
  add_train_options(app, c->train);
  return {app, [c, app] {
            c->resolved = resolved_options(app);
            run_reward(*c);
          }};
}

Command add_score(CLI::App& root) {
  struct Opts {
    std::string reward, data, out, tokenizer, chat_template;
    int64_t batch = 16, max_length = 1024;
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand("score", "Score responses with a reward model. Input JSONL: {\"prompt\",\"completion\"} "
                                           "-> \"reward\"; {\"prompt\",\"responses\":[...]} -> \"rewards\"; "
                                           "{\"prompt\",\"chosen\",\"rejected\"} -> \"reward_chosen\", \"reward_rejected\"");
  app->add_option("--reward", o->reward, "reward model directory (or its LoRA adapter)")->required();
  app->add_option("--data", o->data, "JSONL of prompts and responses")->required();
  app->add_option("--out", o->out, "output JSONL (default: stdout)");
  app->add_option("--tokenizer", o->tokenizer, "tokenizer (default: the reward model's)");
  add_chat_template_options(app, o->chat_template, "for message-list data");
  app->add_option("--batch-size", o->batch, "sequences per forward pass")->capture_default_str();
  app->add_option("--max-length", o->max_length, "prompt + response tokens")->capture_default_str();
  add_input_limit_options(app);
  return {app, [o] {
            RLHF_CHECK(o->batch >= 1, "--batch-size ", o->batch, " must be >= 1");
            RLHF_CHECK(o->max_length >= 4, "--max-length ", o->max_length, " must be at least 4 tokens");
            // The output is checked (and opened) now, not after scoring everything.
            std::unique_ptr<JsonlWriter> w;
            if (!o->out.empty()) {
              remove_stale_temporaries_of(o->out);
              w = std::make_unique<JsonlWriter>(o->out);
            }
            RewardModel rm = load_reward_model(o->reward);
            auto tok = load_tokenizer_for(o->reward, o->tokenizer, rm.model->config());
            auto records = read_jsonl(o->data);
            auto rewards = score_records(rm, *tok, records, o->max_length, o->chat_template);
            for (size_t i = 0; i < records.size(); ++i) {
              const auto& r = rewards[i];
              Json out = records[i].value;
              if (out.contains("chosen")) {
                out["reward_chosen"] = r[0];
                out["reward_rejected"] = r[1];
              } else if (out.contains("responses")) {
                out["rewards"] = r;
              } else {
                out["reward"] = r[0];
              }
              if (w) w->write(out);
              else std::printf("%s\n", out.dump().c_str());
            }
            if (w) w->commit();
          }};
}

Command add_dpo(CLI::App& root) {
  auto c = std::make_shared<DpoConfig>();
  c->train.adam.lr = 1e-6;
  auto* app = root.add_subcommand(
      "dpo", std::string("Direct preference optimisation: --loss sigmoid (DPO) | ipo | hinge (SLiC) | robust | simpo | kto; "
                         "conservative DPO with --label-smoothing. ") + kDpoFormats);
  add_config_option(app);
  app->add_option("--model", c->model, "policy to start from (usually the SFT model)")->required();
  app->add_option("--ref-model", c->ref_model, "reference model (default: the starting policy)");
  app->add_option("--tokenizer", c->tokenizer, "tokenizer (default: the model's)");
  add_data_options(app, c->data, c->eval_data, c->eval_split, c->data_opts);
  app->add_option("--loss", c->loss, "sigmoid | ipo | hinge | robust | simpo | kto")->capture_default_str();
  app->add_option("--beta", c->params.beta, "strength of the KL leash to the reference")->capture_default_str();
  app->add_option("--label-smoothing", c->params.label_smoothing,
                  "sigmoid: conservative DPO; robust: assumed label-noise rate")->capture_default_str();
  app->add_option("--simpo-gamma", c->params.simpo_gamma, "SimPO target reward margin")->capture_default_str();
  app->add_option("--kto-desirable-weight", c->kto_desirable_weight, "KTO weight of desirable examples")->capture_default_str();
  app->add_option("--kto-undesirable-weight", c->kto_undesirable_weight, "KTO weight of undesirable examples")
      ->capture_default_str();
  app->add_option("--reference", c->reference, "cached (reference log-probs computed once, stored in --out) | online")
      ->capture_default_str();
  app->add_option("--dropout", c->dropout, "model dropout while training")->capture_default_str();
  app->add_option("--save-dtype", c->save_dtype, "fp32 | bf16 | fp16")->capture_default_str();
  add_lora_options(app, c->use_lora, c->lora);
  add_train_options(app, c->train);
  return {app, [c, app] {
            c->resolved = resolved_options(app);
            run_dpo(*c);
          }};
}

}  // namespace rlhf::cli
