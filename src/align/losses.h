// The preference losses as pure functions of per-sequence scores / log-probabilities, so each is
// tested against hand-computed numbers and a Python reference. Conventions follow TRL: `beta` is
// the KL strength, policy/reference log-probs are sums over response tokens unless a loss says
// it normalises by length.
#pragma once
#include <torch/torch.h>

#include <string>

namespace rlhf {

// Bradley-Terry reward-model loss per pair: -log sigmoid(r_c - r_r - margin), or, with a soft
// label p = P(chosen preferred), the cross-entropy -(p log s(d) + (1-p) log s(-d)) where
// d = r_c - r_r - margin. `p_chosen` may be undefined (hard labels) or hold NaN for hard rows.
torch::Tensor bradley_terry_loss(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected,
                                 const torch::Tensor& margin = {}, const torch::Tensor& p_chosen = {});

// TRL's center_rewards_coefficient term: coef * mean((r_c + r_r)^2), per pair.
torch::Tensor reward_centering(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected, double coef);

enum class DpoLoss { Sigmoid, Ipo, Hinge, Robust, Simpo };
DpoLoss parse_dpo_loss(const std::string& name);  // sigmoid | ipo | hinge | robust | simpo
std::string dpo_loss_name(DpoLoss l);
// Whether the loss uses per-token average log-probs (IPO, SimPO) rather than sums.
bool dpo_loss_length_normalised(DpoLoss l);
// Whether the loss needs reference log-probs (SimPO does not).
bool dpo_loss_needs_reference(DpoLoss l);

struct DpoParams {
  double beta = 0.1;
  double label_smoothing = 0.0;  // sigmoid: conservative DPO (cDPO); robust: the noise rate
  double simpo_gamma = 0.5;      // SimPO target margin (gamma)
};

// Per-pair DPO-family loss. pc/pr: policy log-probs of chosen/rejected (sums, or averages for the
// length-normalised losses), rc/rr: reference log-probs (ignored by SimPO).
// p_better (pairs), defined: per-pair soft labels for the sigmoid loss (a pair's P(chosen better), NaN =
// hard): -p log s(b x) - (1 - p) log s(-b x), as --label-smoothing is for every pair (cDPO).
torch::Tensor dpo_loss(DpoLoss kind, const DpoParams& p, const torch::Tensor& pc, const torch::Tensor& pr,
                       const torch::Tensor& rc, const torch::Tensor& rr, const torch::Tensor& p_better = {});

// KTO (Ethayarajh et al.): unpaired thumbs-up / thumbs-down. logratio = policy - reference log-prob
// of each completion, desirable = label. kl_ref: the batch's reference point z0 (detached, >= 0).
// Loss per example: w_d (1 - s(beta (logratio - z0))) for desirable, w_u (1 - s(beta (z0 - logratio)))
// otherwise.
torch::Tensor kto_loss(const torch::Tensor& logratio, const torch::Tensor& desirable, const torch::Tensor& kl_ref,
                       double beta, double desirable_weight = 1.0, double undesirable_weight = 1.0);

}  // namespace rlhf
