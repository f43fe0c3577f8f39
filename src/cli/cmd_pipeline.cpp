// `rlhf pipeline --config FILE` and `rlhf demo`: the whole RLHF process as resumable stages.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "eval/report.h"
#include "io/json.h"
#include "pipeline/pipeline.h"

namespace rlhf::cli {

namespace {

struct PipelineArgs {
  std::string config, run_dir;
  bool dry_run = false, print_config = false;
};

PipelineOptions options_for(const PipelineArgs& a) {
  PipelineOptions o;
  o.config_path = a.config;
  o.run_dir = a.run_dir;
  o.dry_run = a.dry_run;
  // Every stage runs with this process's runtime choices.
  const auto& rt = runtime();
  o.global_args = {"--threads", std::to_string(rt.threads), "--device", rt.device, "--dtype", rt.dtype};
  return o;
}

void finish(const Json& results, const std::string& run_dir) {
  if (results.is_null()) return;
  std::printf("\n%s", results_table(results).c_str());
  if (results.contains("reward_model")) {
    const Json& rm = results["reward_model"];
    auto pct = [](const Json& v) {
      return v.is_number() ? std::to_string(int(std::lround(v.get<double>() * 1000)) / 10.0).substr(0, 4) + "%" : std::string("-");
    };
    std::printf("reward model: held-out accuracy %s on the raters' labels (the gold rater scores %s on the same labels; "
                "the raters agree with the gold order on %s of pairs)\n",
                pct(rm.value("heldout_accuracy", Json())).c_str(), pct(rm.value("gold_accuracy_on_heldout", Json())).c_str(),
                pct(rm.value("rater_agreement", Json())).c_str());
  }
  std::printf("report: %s/eval/report.html and report.md\n", run_dir.c_str());
}

}  // namespace

Command add_pipeline(CLI::App& root) {
  auto a = std::make_shared<PipelineArgs>();
  auto* app = root.add_subcommand(
      "pipeline",
      "Run the RLHF pipeline of a JSON config: [world] -> [pretrain] -> sft -> {sample -> rank -> reward model -> "
      "ppo|grpo|rloo and/or dpo} x rounds -> eval + report. Each section holds the options of its subcommand. "
      "Finished stages whose settings and inputs are unchanged are skipped; an interrupted one resumes. See README.");
  app->add_option("--config", a->config, "pipeline config (JSON)")->required();
  app->add_option("--run-dir", a->run_dir, "run directory (overrides the config's run_dir)");
  app->add_flag("--dry-run", a->dry_run, "print each stage's command line and run nothing");
  return {app, [a] {
            Json cfg = read_json_file(a->config, "pipeline config");
            auto o = options_for(*a);
            auto results = run_pipeline(cfg, o);
            finish(results, a->run_dir.empty() ? cfg.value("run_dir", std::string()) : a->run_dir);
          }};
}

Command add_demo(CLI::App& root) {
  auto a = std::make_shared<PipelineArgs>();
  a->run_dir = "runs/demo";
  auto* app = root.add_subcommand(
      "demo", "The end-to-end demo: generates a synthetic assistant world (helpful / honest / harmless prompts, a gold "
              "rater, simulated human raters), pretrains a tiny base model on it, then SFT -> sampling -> ranking -> "
              "reward model -> PPO and DPO -> evaluation. Prints its pipeline config first; resumable.");
  app->add_option("--run-dir", a->run_dir, "run directory")->capture_default_str();
  app->add_flag("--print-config", a->print_config, "print the demo's pipeline config and exit");
  app->add_flag("--dry-run", a->dry_run, "print each stage's command line and run nothing");
  return {app, [a] {
            Json cfg = demo_config(a->run_dir);
            if (a->print_config) {
              std::printf("%s\n", cfg.dump(2).c_str());
              return;
            }
            std::printf("rlhf demo: the pipeline config below (saved as %s/pipeline_config.json; run it yourself with "
                        "`rlhf pipeline --config FILE`)\n%s\n\n",
                        a->run_dir.c_str(), cfg.dump(2).c_str());
            std::fflush(stdout);
            auto o = options_for(*a);
            o.config_path = "built-in demo config";
            auto results = run_pipeline(cfg, o);
            finish(results, a->run_dir);
          }};
}

}  // namespace rlhf::cli
