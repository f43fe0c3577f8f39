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

  // One update with learning rate `lr` (from the schedule), the gradients multiplied by grad_scale
  // (clip_scale's factor). Parameters without a grad are skipped. Contiguous fp32 CPU parameters
  // (all of ours on the CPU) take one fused pass over parameter, gradient and moments (AVX-512 where
  // the CPU has it, on all threads) instead of the eight passes of separate tensor operations.
  void step(double lr, double grad_scale = 1.0);
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

// Total L2 norm of the gradients, accumulated in float64 in a fixed order (the same bits for any
// thread count).
double grad_norm(const std::vector<torch::Tensor>& params);

// The factor that brings gradients of this norm down to max_norm, as torch.nn.utils.clip_grad_norm_
// applies it (max_norm / (norm + 1e-6), at most 1); 1 when max_norm <= 0 or the norm is not finite.
// AdamW::step takes it as grad_scale, so clipping costs no pass of its own.
double clip_scale(double norm, double max_norm);

namespace detail {
// Exposed for tests: the fused update on contiguous fp32 CPU tensors, and the sum of squares behind
// grad_norm; `vectorised` false forces the portable loop.
struct AdamwScalars {
  float grad_scale = 1, beta1 = 0, one_minus_beta1 = 1, beta2 = 0, one_minus_beta2 = 1, bc2_sqrt = 1, eps = 0,
        decay = 1, neg_step_size = 0;
};
void adamw_update(torch::Tensor& p, const torch::Tensor& g, torch::Tensor& m, torch::Tensor& v, const AdamwScalars& s,
                  bool vectorised);
double sum_squares(const torch::Tensor& x, bool vectorised);
}  // namespace detail

}  // namespace rlhf
