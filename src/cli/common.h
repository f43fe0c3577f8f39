// Helpers shared by subcommands: loading a model with its tokenizer and checking they belong
// together, sampling options, and writing the resolved configuration next to an output.
#pragma once
#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "generate/sampler.h"
#include "io/json.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace rlhf::cli {

// The tokenizer for a model: `override_path` if given, else the model directory itself. Checks
// that every token id fits the model's embedding.
std::shared_ptr<Tokenizer> load_tokenizer_for(const std::string& model_dir, const std::string& override_path,
                                              const ModelConfig& cfg);
void check_tokenizer_fits(const Tokenizer& tok, const ModelConfig& cfg, const std::string& where);


// --temperature/--top-k/--top-p/--min-p on `app`, bound to `p`.
void add_sampling_options(CLI::App* app, SamplingParams& p);

}  // namespace rlhf::cli

namespace rlhf {
struct TrainConfig;
struct LoraConfig;
}  // namespace rlhf

namespace rlhf::cli {

// --out, --epochs, --max-steps, --batch-size, --micro-batch-size, --lr, ..., --resume, --seed.
void add_train_options(CLI::App* app, TrainConfig& t);
// --lora, --lora-r, --lora-alpha, --lora-dropout, --lora-target-modules, --use-rslora.
void add_lora_options(CLI::App* app, bool& use_lora, LoraConfig& l);
void add_gradient_checkpointing_option(CLI::App* app, bool& on);
// --config FILE (expanded before parsing; see config_file.h).
void add_config_option(CLI::App* app);
// --max-text-chars N: the longest string field a data file may hold (io/jsonl.h InputLimits).
void add_input_limit_options(CLI::App* app);
// --overwrite-output-dir for commands that write a model into --out.
void add_overwrite_option(CLI::App* app, bool& overwrite);
// A model directory about to be written by `init` or `merge`: refused when it already holds a model
// (config.json, weights, an adapter) unless `overwrite`; with it, the previous model's files
// (weights, shards, tokenizer, adapter, generation config) are removed first so that nothing of
// the old model stays beside the new one.
// `clear` = false only checks (to refuse before the work); the files go in a second call.
void prepare_model_output_dir(const std::filesystem::path& dir, bool overwrite, bool clear = true);

}  // namespace rlhf::cli
