// `--config FILE`: a JSON object whose keys are a subcommand's long option names
// ({"lr": 1e-4, "lora": true, "lora-target-modules": ["q_proj", "v_proj"]}). Its entries become
// command-line arguments placed right after the subcommand name, so options given on the command
// line still win. Keys starting with "_" are notes and are ignored. resolved_options() writes the same form back: every option's final value, so a
// saved config reproduces the run with `--config`.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf::cli {

// args excludes argv[0]. Returns args with each "--config FILE" expanded.
std::vector<std::string> expand_config_args(const CLI::App& root, const std::vector<std::string>& args);

// Every long option of `app` (except help/config) with its value after parsing.
Json resolved_options(const CLI::App* app);

}  // namespace rlhf::cli
