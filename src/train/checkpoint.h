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

// What differs between the options a run was started with and the ones given now ("--lr 0.001 ->
// 0.01", "--data data.jsonl changed"), ignoring options that do not change the trained weights.
std::vector<std::string> option_changes(const Json& saved, const Json& now);

// libtorch's default random generators (CPU, and each CUDA device in use), for exact resumption.
NamedTensors rng_states();
void restore_rng_states(const std::filesystem::path& file);

}  // namespace rlhf
