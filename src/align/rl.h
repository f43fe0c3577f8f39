// The tensor math of RL fine-tuning as pure functions (TRL's ppo/rloo/grpo formulas): masked
// statistics, per-token KL estimators, GAE, the adaptive KL controller of Ziegler et al., the clipped
// policy and value losses, and the group baselines of GRPO and RLOO. Shapes: (B, T) per-token
// tensors with a (B, T) bool mask of real response tokens.
#pragma once
#include <torch/torch.h>

#include <string>

namespace rlhf {

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);
// Unbiased (Bessel-corrected) variance over the masked entries, as TRL's masked_var.
torch::Tensor masked_var(const torch::Tensor& x, const torch::Tensor& mask, bool unbiased = true);
// (x - mean) / sqrt(var + 1e-8) over the masked entries; shift_mean = false adds the mean back.
// Unmasked entries come out 0.
torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean = true);

enum class KlEstimator { K1, K3 };
KlEstimator parse_kl_estimator(const std::string& s);  // k1 | k3
// Per-token KL(policy || reference) estimate from log-probs of the sampled tokens:
// k1 = logp - ref; k3 = exp(ref - logp) - 1 - (ref - logp) (non-negative, lower variance).
torch::Tensor kl_estimate(const torch::Tensor& logp, const torch::Tensor& ref_logp, KlEstimator k);

// Generalised advantage estimation over response tokens. rewards/values (B, T); positions after a
// sequence's last real token are ignored (their value counts as 0). Returns {advantages, returns}.
std::pair<torch::Tensor, torch::Tensor> gae(const torch::Tensor& rewards, const torch::Tensor& values,
                                            const torch::Tensor& mask, double gamma, double lam);

// Ziegler et al. (2019): beta <- beta * (1 + clip(kl / target - 1, -0.2, 0.2) * n_steps / horizon).
class AdaptiveKlController {
 public:
  AdaptiveKlController(double init_beta, double target, double horizon)
      : value(init_beta), target_(target), horizon_(horizon) {}
  void update(double current_kl, int64_t n_steps);
  double value;

 private:
  double target_, horizon_;
};

struct PolicyLoss {
  torch::Tensor loss;      // scalar
  torch::Tensor clipfrac;  // fraction of tokens where the clipped term was chosen
  torch::Tensor approxkl;  // 0.5 * mean((logp - old)^2)
  torch::Tensor ratio;     // mean ratio over masked tokens
};
// Clipped surrogate: mean over masked tokens of max(-A r, -A clip(r, 1-eps, 1+eps)), r = exp(logp - old).
PolicyLoss ppo_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& adv,
                           const torch::Tensor& mask, double cliprange);

struct ValueLoss {
  torch::Tensor loss;      // scalar: 0.5 * mean(max((v - R)^2, (v_clipped - R)^2))
  torch::Tensor clipfrac;
};
ValueLoss ppo_value_loss(const torch::Tensor& values, const torch::Tensor& old_values, const torch::Tensor& returns,
                         const torch::Tensor& mask, double cliprange_value);

// Group baselines over scores (B) where consecutive groups of `group` rows share a prompt.
// GRPO: (s - mean_g) / (std_g + 1e-4) (std unbiased), or just s - mean_g when scale_by_std = false.
torch::Tensor grpo_advantages(const torch::Tensor& scores, int64_t group, bool scale_by_std = true);
// RLOO: s - mean of the other G-1 samples of the group.
torch::Tensor rloo_advantages(const torch::Tensor& scores, int64_t group);

// Running mean / variance (Welford) of scalars, for reward normalisation.
struct RunningMoments {
  double mean = 0.0, m2 = 0.0;
  int64_t count = 0;
  void update(const torch::Tensor& x);
  double std() const;
};

}  // namespace rlhf
