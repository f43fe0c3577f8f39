#include "cli/common.h"

#include "core/error.h"

namespace rlhf::cli {

void check_tokenizer_fits(const Tokenizer& tok, const ModelConfig& cfg, const std::string& where) {
  RLHF_CHECK(tok.vocab_size() <= cfg.vocab_size, where, ": the tokenizer has ", tok.vocab_size(),
             " tokens but the model's embedding has only ", cfg.vocab_size,
             " rows; this tokenizer does not belong to this model (pass the right one with --tokenizer)");
}

std::shared_ptr<Tokenizer> load_tokenizer_for(const std::string& model_dir, const std::string& override_path,
                                              const ModelConfig& cfg) {
  std::string path = override_path.empty() ? model_dir : override_path;
  auto tok = Tokenizer::load(path);
  check_tokenizer_fits(*tok, cfg, path);
  return tok;
}

void add_sampling_options(CLI::App* app, SamplingParams& p) {
  app->add_option("--temperature", p.temperature, "sampling temperature (0 = greedy)")->capture_default_str();
  app->add_option("--top-k", p.top_k, "keep the k most likely tokens (0 = disabled)")->capture_default_str();
  app->add_option("--top-p", p.top_p, "nucleus: keep the most likely tokens up to this mass (1 = disabled)")
      ->capture_default_str();
  app->add_option("--min-p", p.min_p, "drop tokens below min-p x the top probability (0 = disabled)")
      ->capture_default_str();
}

}  // namespace rlhf::cli

#include "core/log.h"
#include "io/jsonl.h"
#include "model/lora.h"
#include "train/loop.h"

namespace rlhf::cli {

void add_config_option(CLI::App* app) {
  app->add_option("--config", "JSON file of option values ({\"lr\": 1e-4, \"lora\": true, ...}); "
                              "options on the command line override it");
}

void add_train_options(CLI::App* app, TrainConfig& t) {
  // Hugging Face TrainingArguments names are accepted too (second names, or the options below), with
  // their meaning, so TRL command lines work as they are.
  app->add_option("--out,--output-dir", t.out, "output directory (model, metrics.jsonl, TensorBoard events, checkpoints)")->required();
  app->add_option("--epochs,--num-train-epochs", t.epochs, "passes over the training data (a fraction trains part of the last)")
      ->capture_default_str();
  app->add_option("--max-steps", t.max_steps, "optimizer steps (> 0 overrides --epochs)")->capture_default_str();
  auto* batch = app->add_option("--batch-size", t.batch_size, "examples per optimizer step")->capture_default_str();
  auto* micro = app->add_option("--micro-batch-size", t.micro_batch_size,
                                "examples per forward pass; gradients accumulate up to --batch-size (0 = no accumulation)")
                    ->capture_default_str();
  auto per_device = std::make_shared<int64_t>(0), accumulation = std::make_shared<int64_t>(0);
  auto* pd = app->add_option("--per-device-train-batch-size", *per_device,
                             "transformers' name: examples per forward pass; the step takes this x --gradient-accumulation-steps");
  auto* ga = app->add_option("--gradient-accumulation-steps", *accumulation,
                             "transformers' name: forward passes per optimizer step (examples per step = per-device batch x this)");
  app->final_callback([&t, batch, micro, pd, ga, per_device, accumulation] {
    if (!pd->count() && !ga->count()) return;
    RLHF_CHECK(!batch->count() && !micro->count(), "give --batch-size / --micro-batch-size, or transformers' "
               "--per-device-train-batch-size / --gradient-accumulation-steps, not both");
    const int64_t p = pd->count() ? *per_device : t.batch_size, g = ga->count() ? *accumulation : 1;
    RLHF_CHECK(p >= 1 && g >= 1, "--per-device-train-batch-size and --gradient-accumulation-steps must be >= 1");
    t.micro_batch_size = p;
    t.batch_size = p * g;
    // Recorded as the options they amount to, so the saved config reads (and reruns) as this run.
    for (auto [opt, v] : {std::pair{batch, t.batch_size}, std::pair{micro, t.micro_batch_size}}) {
      opt->clear();
      opt->add_result(std::to_string(v));
    }
    pd->clear();
    ga->clear();
  });
  app->add_option("--lr,--learning-rate", t.adam.lr, "peak learning rate")->capture_default_str();
  app->add_option("--weight-decay", t.adam.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app->add_flag("--decay-all", t.decay_all, "apply weight decay to norms, biases and embeddings too");
  app->add_option("--adam-beta1", t.adam.beta1, "AdamW beta1")->capture_default_str();
  app->add_option("--adam-beta2", t.adam.beta2, "AdamW beta2")->capture_default_str();
  app->add_option("--adam-eps,--adam-epsilon", t.adam.eps, "AdamW epsilon")->capture_default_str();
  app->add_option("--lr-schedule,--lr-scheduler-type", t.schedule.type,
                  "cosine | linear | constant (after warm-up; constant_with_warmup = constant)")->capture_default_str();
  app->add_option("--warmup-steps", t.schedule.warmup_steps, "linear warm-up steps")->capture_default_str();
  app->add_option("--warmup-ratio", t.schedule.warmup_ratio, "warm-up as a fraction of all steps (if --warmup-steps is 0)")
      ->capture_default_str();
  app->add_option("--min-lr-ratio", t.schedule.min_lr_ratio, "decay floor as a fraction of --lr")->capture_default_str();
  app->add_option("--max-grad-norm", t.max_grad_norm, "clip the gradient norm (0 = off)")->capture_default_str();
  app->add_option("--save-steps", t.save_steps, "checkpoint every N steps, and at the end (0 = none)")->capture_default_str();
  app->add_flag("--save-final-state", t.save_final_state,
                "keep a checkpoint with the optimizer state at the end (implied by --save-steps)");
  app->add_option("--keep-last,--save-total-limit", t.keep_last, "checkpoints to keep (0 = all)")->capture_default_str();
  app->add_option("--eval-steps", t.eval_steps, "evaluate every N steps (0 = only at the end)")->capture_default_str();
  app->add_option("--logging-steps", t.logging_steps, "a metrics line every N steps")->capture_default_str();
  app->add_option("--report-to", t.report_to, "tensorboard | none: TensorBoard event files beside metrics.jsonl")
      ->capture_default_str();
  app->add_option("--seed", t.seed, "seed for data order, dropout and initialisation")->capture_default_str();
  app->add_option("--max-bad-steps", t.max_bad_steps, "stop after this many consecutive NaN/Inf steps")->capture_default_str();
  app->add_flag("--resume", t.resume, "continue from the newest checkpoint in --out (a corrupt one falls back to the previous)");
  app->add_flag("--resume-anyway", t.resume_anyway,
                "with --resume: continue although options or data files changed since the checkpoint");
  app->add_flag("--overwrite-output-dir", t.overwrite_output_dir,
                "start afresh in an --out that holds an earlier run's model or checkpoints (they are removed)");
  add_gradient_checkpointing_option(app, t.gradient_checkpointing);
  add_input_limit_options(app);
}

void add_input_limit_options(CLI::App* app) {
  app->add_option("--max-text-chars", input_limits().max_text_chars,
                  "longest text field a data line may hold, in characters; longer ones are refused before they are "
                  "tokenised (0 = no limit)")
      ->capture_default_str();
}

void add_overwrite_option(CLI::App* app, bool& overwrite) {
  app->add_flag("--overwrite-output-dir", overwrite, "replace a model that --out already holds");
}

void prepare_model_output_dir(const std::filesystem::path& dir, bool overwrite, bool clear) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> old;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    bool model_file = n == "config.json" || n == "generation_config.json" || n == "tokenizer.json" ||
                      n == "tokenizer.model" || n == "tokenizer_config.json" || n == "special_tokens_map.json" ||
                      n == "adapter_config.json" || n == "adapter_model.safetensors" ||
                      (n.starts_with("model") && (n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json")));
    if (model_file && it->is_regular_file(ec)) old.push_back(it->path());
  }
  if (old.empty()) return;
  std::sort(old.begin(), old.end());
  RLHF_CHECK(overwrite, dir.string(), ": already holds a model (", old.front().filename().string(),
             old.size() > 1 ? " and " + std::to_string(old.size() - 1) + " more files" : std::string(),
             "); pass --overwrite-output-dir to replace it, or choose another --out");
  if (!clear) return;
  for (auto& f : old) fs::remove(f, ec);
  log_info(dir.string(), ": --overwrite-output-dir: removed the previous model's ", old.size(), " files");
}

void add_gradient_checkpointing_option(CLI::App* app, bool& on) {
  app->add_flag("--gradient-checkpointing", on,
                "keep only each block's input for backward and recompute the rest (much less activation memory, "
                "about a third more compute)");
}

void add_lora_options(CLI::App* app, bool& use_lora, LoraConfig& l) {
  app->add_flag("--lora", use_lora, "train LoRA adapters instead of all weights (saved in PEFT format)");
  app->add_option("--lora-r", l.r, "LoRA rank")->capture_default_str();
  app->add_option("--lora-alpha", l.alpha, "LoRA alpha (scale = alpha / r)")->capture_default_str();
  app->add_option("--lora-dropout", l.dropout, "dropout on the adapter input")->capture_default_str();
  app->add_option("--lora-target-modules", l.target_modules,
                  "module name suffixes to adapt (default: attention and MLP projections), or one \"re:<regex>\"");
  app->add_flag("--use-rslora", l.use_rslora, "rank-stabilised scaling alpha / sqrt(r)");
}

}  // namespace rlhf::cli
