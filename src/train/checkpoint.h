// Checkpoints of a training run: <out>/checkpoints/step-000100/ holding the trainable weights (a full
// model or a PEFT adapter), optimizer state, RNG states and trainer_state.json (step, data position,
// anything the trainer adds), plus the resolved config. Each is written under a temporary name and
// renamed when complete, so a crash never leaves a half checkpoint; only the newest K are kept.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/safetensors.h"

namespace rlhf {

class CheckpointManager {
 public:
  CheckpointManager(std::filesystem::path out_dir, int64_t keep_last);
  // Writes checkpoint `step`: `fill(tmp_dir)` writes the files, then the directory is renamed
  // into place and older checkpoints beyond keep_last are removed.
  std::filesystem::path save(int64_t step, const std::function<void(const std::filesystem::path&)>& fill);
  // The newest complete checkpoint, if any.
  std::optional<std::filesystem::path> latest() const;
  // Every complete checkpoint, newest first.
  std::vector<std::filesystem::path> complete() const;
  static int64_t step_of(const std::filesystem::path& dir);
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  int64_t keep_last_;
};

// The checkpoint --resume continues from, tried newest first. One whose files do not read back (a
// truncated safetensors file, broken JSON, a missing part) is moved aside as step-N.corrupt with a
// warning, and the previous one is used; none readable is an error (never a silent fresh start).
// The options saved with it (<name>_config.json) are compared with `resolved`: changed options or
// input files are refused, naming each, unless `anyway` (then they are listed as a warning). Runtime
// choices (threads, device, dtype under "_runtime") only warn. nullopt when there is no checkpoint.
std::optional<std::filesystem::path> checkpoint_to_resume(const CheckpointManager& ck, const std::string& name,
                                                          const Json& resolved, bool anyway);

// A training command's --out, checked before any work (after its DirLock). Empty, or what an
// interrupted run left without a model or checkpoint: fine (false). An earlier run's model or
// checkpoints there: with `resume`, checkpoints are resumed later (false); a run that finished
// (`trainer_state.json` {"finished": true}, written after the model) with the same options and no
// checkpoint left is done already (true: nothing to train; with other options an error). With
// `overwrite`, the earlier run's products are removed first (weights, adapter, tokenizer, configs,
// checkpoints/, metrics, TensorBoard events, samples, the DPO reference cache; other files stay).
// Otherwise an error naming the choices (--resume, --overwrite-output-dir, another --out).
bool claim_training_output(const std::filesystem::path& out, const std::string& name, const Json& resolved,
                           bool resume, bool overwrite, bool resume_anyway);
// Marks `out` as holding a finished run (see claim_training_output); the last file a trainer writes.
void mark_training_finished(const std::filesystem::path& out, int64_t steps);

// What differs between the options a run was started with and the ones given now ("--lr 0.001 ->
// 0.01", "--data data.jsonl changed"), ignoring options that do not change the trained weights.
std::vector<std::string> option_changes(const Json& saved, const Json& now);

// libtorch's default random generators (CPU, and each CUDA device in use), for exact resumption.
NamedTensors rng_states();
void restore_rng_states(const std::filesystem::path& file);

}  // namespace rlhf
