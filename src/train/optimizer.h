// AdamW with decoupled weight decay (the torch.optim.AdamW update, bit for bit in fp32), parameter
// groups with their own weight decay, and state that saves to / loads from safetensors by
// parameter name, so a checkpoint restores it exactly.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

namespace rlhf {

struct AdamWConfig {
  double lr = 1e-5;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  struct Param {
    std::string name;
    torch::Tensor tensor;
    double weight_decay;
    torch::Tensor exp_avg, exp_avg_sq;  // created on the first step
  };

  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const AdamWConfig& cfg,
        bool decay_norms_biases_embeddings = false);

  // One update with learning rate `lr` (from the schedule). Parameters without a grad are skipped.
  void step(double lr);
  void zero_grad();  // grads set to none (cheaper than zero-filling)
  int64_t steps() const { return step_; }
  const std::vector<Param>& params() const { return params_; }

  void save(const std::filesystem::path& file) const;
  void load(const std::filesystem::path& file);

 private:
  std::vector<Param> params_;
  AdamWConfig cfg_;
  int64_t step_ = 0;
};

// Whether a parameter is exempt from weight decay by default: norms, biases and embeddings
// (including a tied output head), as is common practice.
bool no_decay_by_default(const std::string& name, const torch::Tensor& t);

// Total L2 norm of the gradients (float64 accumulation). If max_norm > 0, scales them so the norm
// is at most max_norm (as torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace rlhf
