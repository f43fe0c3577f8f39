// `rlhf eval`: policies side by side under the gold rater (demo world), the learned reward and the KL
// to the reference; over-optimisation curves; writes eval.json, samples.jsonl, report.md/.html.
#include <cstdio>

#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/report.h"

namespace rlhf::cli {

Command add_eval(CLI::App& root) {
  auto c = std::make_shared<EvalConfig>();
  auto specs = std::make_shared<std::vector<std::string>>();
  auto* app = root.add_subcommand(
      "eval", "Evaluate policies side by side: one sample per prompt (temperature 1, the same seeds for all), gold "
              "reward with 95% CI and axis rates (demo world), learned reward, KL to the reference, win rate vs the "
              "reference; PPO checkpoints and best-of-N against sqrt(KL); writes eval.json and report.md/.html");
  add_config_option(app);
  app->add_option("--policy", *specs, "NAME=DIR, repeatable (e.g. --policy sft=runs/sft --policy ppo=runs/ppo)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--reference", c->reference, "policy NAME that KL and win rates are measured against")
      ->capture_default_str();
  app->add_option("--reward", c->reward, "reward model directory (learned reward, best-of-N)");
  app->add_option("--world", c->world, "world.json of the demo world: the gold rater");
  app->add_option("--prompts", c->prompts, "JSONL prompts ({\"prompt\": text | [messages]})")->required();
  app->add_option("--tokenizer", c->tokenizer, "tokenizer (default: the reference policy's)");
  app->add_flag("!--no-chat", c->chat, "text prompts are raw text, not a user turn of the chat template");
  add_chat_template_options(app, c->chat_template, "");
  app->add_option("--max-new-tokens", c->max_new_tokens, "response length limit")->capture_default_str();
  app->add_option("--temperature", c->temperature, "sampling temperature (KL estimates assume 1)")->capture_default_str();
  app->add_option("--seed", c->seed, "sampling seed (the same for every policy)")->capture_default_str();
  app->add_option("--checkpoints", c->checkpoints, "an RL run's checkpoints/ directory: gold and learned reward vs sqrt(KL)");
  app->add_option("--checkpoints-name", c->checkpoints_name, "label of that curve")->capture_default_str();
  app->add_option("--best-of-n", c->best_of_n, "largest N of best-of-N sampling from the reference (0 = off)")
      ->capture_default_str();
  app->add_option("--best-of-n-prompts", c->best_of_n_prompts, "prompts used for best-of-N")->capture_default_str();
  app->add_option("--heldout", c->heldout, "held-out rankings JSONL: reward model accuracy next to the raters' ceiling");
  app->add_option("--extra", c->extra, "JSON object merged into the results (curves, timings, notes)");
  app->add_option("--samples-shown", c->samples_shown, "prompts shown side by side in the report")->capture_default_str();
  app->add_option("--out", c->out, "output directory")->required();
  add_input_limit_options(app);
  auto table = std::make_shared<bool>(true);
  app->add_flag("!--no-table", *table, "do not print the results table (the pipeline prints it)");
  return {app, [c, specs, table] {
            for (auto& s : *specs) {
              auto eq = s.find('=');
              RLHF_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < s.size(), "--policy \"", s,
                         "\": expected NAME=DIR");
              c->policies.push_back({s.substr(0, eq), s.substr(eq + 1)});
            }
            auto results = run_eval(*c);
            if (*table) std::printf("%s", results_table(results).c_str());
          }};
}

}  // namespace rlhf::cli
