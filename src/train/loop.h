// The training loop every trainer shares (SFT, reward model, DPO): data order from the seed, micro-
// batches with gradient accumulation normalised over the whole effective batch, clipping, AdamW with
// a warm-up schedule, NaN/Inf guard, metrics, evaluation, checkpoints every N steps and on
// SIGINT/SIGTERM, and exact resumption. A trainer supplies only its forward/backward and its eval.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace rlhf {

struct TrainConfig {
  std::string out;                 // output directory (model, metrics, checkpoints)
  double epochs = 1;                // passes over the data; a fraction trains that share of the last pass
  int64_t max_steps = 0;           // > 0 overrides epochs
  int64_t batch_size = 8;          // examples per optimizer step
  int64_t micro_batch_size = 0;    // examples per forward pass (0 = batch_size, no accumulation)
  AdamWConfig adam;
  ScheduleConfig schedule;
  double max_grad_norm = 1.0;      // 0 = no clipping
  bool decay_all = false;          // weight decay also on norms, biases and embeddings
  int64_t save_steps = 0;          // checkpoint every N steps (0 = only at the end)
  int64_t keep_last = 2;           // checkpoints kept
  int64_t eval_steps = 0;          // evaluate every N steps (0 = only at the end)
  int64_t logging_steps = 1;       // metrics line every N steps
  uint64_t seed = 42;
  bool resume = false;             // continue from the newest checkpoint in out/checkpoints
  bool resume_anyway = false;      // resume although options or data files changed since the checkpoint
  bool overwrite_output_dir = false;  // start afresh in an --out that holds an earlier run's model or checkpoints
  bool save_final_state = false;   // keep a checkpoint (optimizer state included) at the end without --save-steps
  std::string report_to = "tensorboard";  // tensorboard | none (metrics.jsonl is always written)
  int64_t max_bad_steps = 3;       // consecutive NaN/Inf steps before stopping
  bool shuffle = true;
  bool gradient_checkpointing = false;  // recompute each block's activations in backward (less memory, ~1/3 more compute)
};

// Refuses options that could only train a broken model, before any work: a non-finite or negative
// learning rate, --max-steps < 0, --warmup-ratio outside [0, 1], --max-grad-norm < 0, ... Each
// message names the option. Trainers call it first; run_training calls it again.
void validate_train_config(const TrainConfig& cfg);
// The optimizer and schedule part, shared with the RL trainers.
void validate_optimizer_options(const AdamWConfig& adam, const ScheduleConfig& schedule, double max_grad_norm);

// Sums of per-example quantities over micro-batches; mean() divides by the summed weights.
class StepMetrics {
 public:
  void add(const std::string& name, double sum, double weight = 1.0);
  Json mean() const;
  double sum(const std::string& name) const;

 private:
  std::map<std::string, std::pair<double, double>> v_;
};

struct TrainHooks {
  // Share of example i in the step's normaliser (its loss tokens for SFT, 1 for pairwise losses).
  std::function<double(int64_t)> weight;
  // Forward + backward of examples `idx`; the loss must be (sum over these examples) / denom so
  // that accumulated gradients equal one big batch. Adds metrics; must add "loss" (sum, weight)
  // and may add "num_tokens" (tokens processed, for throughput).
  std::function<void(const std::vector<int64_t>& idx, double denom, StepMetrics& m)> micro_step;
  // Optional: held-out metrics, keys prefixed "eval_" by the loop.
  std::function<Json()> evaluate;
  // Writes the trained model (full or adapter) plus tokenizer into `dir`.
  std::function<void(const std::filesystem::path& dir)> save_output;
};

// Runs the loop over `num_examples` examples. The trainable parameters are those with
// requires_grad (LoRA: the adapters). `lora` is set when adapters are trained (checkpoints then hold
// the adapter). `name` labels output files ("sft" -> sft_config.json); `resolved_config` is saved
// next to the output and in each checkpoint.
void run_training(const TrainConfig& cfg, TransformerImpl& model, const std::optional<LoraConfig>& lora,
                  int64_t num_examples, const TrainHooks& hooks, const std::string& name, const Json& resolved_config);

// Restores checkpointed trainable weights (full model or adapter) into `model`.
void load_trainable_weights(TransformerImpl& model, bool lora, const std::filesystem::path& ckpt);

}  // namespace rlhf
