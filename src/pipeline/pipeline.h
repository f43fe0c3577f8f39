// `rlhf pipeline --config FILE`: the whole RLHF process as stages in one run directory
//   [world] -> [pretrain] -> SFT -> { sample K responses -> rank -> reward model -> RL and/or DPO } x rounds
//   -> evaluation and report
// Each stage is the rlhf binary itself run as a child process with the options of its config section
// (the same options as the subcommand: {"epochs": 2, "lr": 1e-4} -> --epochs 2 --lr 0.0001). A stage
// whose command line, upstream stages and input files are unchanged since it last finished is skipped;
// one interrupted midway is rerun, continuing from its last checkpoint (--resume), so the same command
// resumes an interrupted pipeline and finishes with the same results.
#pragma once
#include <string>

#include "io/json.h"

namespace rlhf {

struct PipelineOptions {
  std::string config_path;      // for error messages ("" = built in)
  std::string run_dir;          // overrides the config's run_dir ("" = as configured)
  bool dry_run = false;         // print the stages' command lines, run nothing
  std::string exe = "/proc/self/exe";
  std::vector<std::string> global_args;  // given to every stage before its subcommand (--threads N, ...)
};

// Runs the pipeline; returns the evaluation results (eval.json, with timings), or null on a dry run.
Json run_pipeline(const Json& config, const PipelineOptions& opts);

// The demo's configuration (the README's main command): the built-in world, a tiny base model
// pretrained on it, SFT, one round of sampling, simulated ranking, reward model, PPO and DPO.
Json demo_config(const std::string& run_dir);

}  // namespace rlhf
