// Checkpoints of a training run: <out>/checkpoints/step-000100/ holding the trainable weights (a full
// model or a PEFT adapter), optimizer state, RNG states and trainer_state.json (step, data position,
// anything the trainer adds), plus the resolved config. Each is written under a temporary name and
// renamed when complete, so a crash never leaves a half checkpoint; only the newest K are kept.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

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
  static int64_t step_of(const std::filesystem::path& dir);
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  int64_t keep_last_;
};

// libtorch's default random generators (CPU, and each CUDA device in use), for exact resumption.
NamedTensors rng_states();
void restore_rng_states(const std::filesystem::path& file);

}  // namespace rlhf
