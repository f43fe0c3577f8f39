#include "align/losses.h"

#include "core/error.h"

namespace rlhf {

namespace F = torch::nn::functional;

torch::Tensor bradley_terry_loss(const torch::Tensor& rc, const torch::Tensor& rr, const torch::Tensor& margin,
                                 const torch::Tensor& p_chosen) {
  auto d = rc - rr;
  if (margin.defined()) d = d - margin;
  if (!p_chosen.defined()) return -F::logsigmoid(d);
  // A hard label is p = 1 (then the soft loss is the hard one). Replacing NaN before the arithmetic
  // keeps NaN out of the backward pass, which a where() over both branches would not.
  auto p = torch::nan_to_num(p_chosen, /*nan=*/1.0);
  return -(p * F::logsigmoid(d) + (1 - p) * F::logsigmoid(-d));
}

torch::Tensor reward_centering(const torch::Tensor& rc, const torch::Tensor& rr, double coef) {
  return coef * (rc + rr).pow(2);
}

DpoLoss parse_dpo_loss(const std::string& n) {
  if (n == "sigmoid") return DpoLoss::Sigmoid;
  if (n == "ipo") return DpoLoss::Ipo;
  if (n == "hinge") return DpoLoss::Hinge;
  if (n == "robust") return DpoLoss::Robust;
  if (n == "simpo") return DpoLoss::Simpo;
  RLHF_FAIL("--loss '", n, "' is not known; use sigmoid, ipo, hinge, robust, simpo (or kto with unpaired data)");
}

std::string dpo_loss_name(DpoLoss l) {
  switch (l) {
    case DpoLoss::Sigmoid: return "sigmoid";
    case DpoLoss::Ipo: return "ipo";
    case DpoLoss::Hinge: return "hinge";
    case DpoLoss::Robust: return "robust";
    case DpoLoss::Simpo: return "simpo";
  }
  return "?";
}

bool dpo_loss_length_normalised(DpoLoss l) { return l == DpoLoss::Ipo || l == DpoLoss::Simpo; }
bool dpo_loss_needs_reference(DpoLoss l) { return l != DpoLoss::Simpo; }

torch::Tensor dpo_loss(DpoLoss kind, const DpoParams& p, const torch::Tensor& pc, const torch::Tensor& pr,
                       const torch::Tensor& rc, const torch::Tensor& rr, const torch::Tensor& p_better) {
  const double b = p.beta, ls = p.label_smoothing;
  RLHF_CHECK(b > 0, "beta must be > 0");
  RLHF_CHECK(ls >= 0 && ls < 0.5, "label smoothing must be in [0, 0.5)");
  if (kind == DpoLoss::Simpo) {
    auto logits = b * (pc - pr) - p.simpo_gamma;
    return -F::logsigmoid(logits) * (1 - ls) - F::logsigmoid(-logits) * ls;
  }
  auto logits = (pc - pr) - (rc - rr);  // policy log-ratio minus reference log-ratio
  switch (kind) {
    case DpoLoss::Sigmoid: {  // DPO; conservative DPO (cDPO) when ls > 0; soft labels per pair
      if (p_better.defined()) {
        auto q = p_better.to(logits.scalar_type());
        q = torch::where(torch::isnan(q), torch::full_like(q, 1 - ls), q);
        return -F::logsigmoid(b * logits) * q - F::logsigmoid(-b * logits) * (1 - q);
      }
      return -F::logsigmoid(b * logits) * (1 - ls) - F::logsigmoid(-b * logits) * ls;
    }
    case DpoLoss::Robust:  // unbiased under label noise rate ls (Chowdhury et al. 2024)
      return (-F::logsigmoid(b * logits) * (1 - ls) + F::logsigmoid(-b * logits) * ls) / (1 - 2 * ls);
    case DpoLoss::Hinge:  // SLiC
      return torch::relu(1 - b * logits);
    case DpoLoss::Ipo:  // with length-normalised log-probs, as TRL does
      return (logits - 1 / (2 * b)).pow(2);
    default:
      RLHF_FAIL("unreachable");
  }
}

torch::Tensor kto_loss(const torch::Tensor& logratio, const torch::Tensor& desirable, const torch::Tensor& kl_ref,
                       double beta, double wd, double wu) {
  auto z0 = kl_ref.detach();
  auto good = wd * (1 - torch::sigmoid(beta * (logratio - z0)));
  auto bad = wu * (1 - torch::sigmoid(beta * (z0 - logratio)));
  return torch::where(desirable.to(torch::kBool), good, bad);
}

}  // namespace rlhf
