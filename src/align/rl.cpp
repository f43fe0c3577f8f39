#include "align/rl.h"

#include <cmath>

#include "core/error.h"

namespace rlhf {

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = mask.to(x.scalar_type());
  return (x * m).sum() / m.sum().clamp_min(1);
}

torch::Tensor masked_var(const torch::Tensor& x, const torch::Tensor& mask, bool unbiased) {
  auto m = mask.to(x.scalar_type());
  auto mean = masked_mean(x, mask);
  auto var = masked_mean((x - mean).pow(2), mask);
  if (unbiased) {
    auto n = m.sum();
    RLHF_CHECK(n.item<double>() > 1, "masked_var: need at least two entries for an unbiased variance");
    var = var * n / (n - 1);
  }
  return var;
}

torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean) {
  auto mean = masked_mean(x, mask);
  auto var = masked_var(x, mask);
  auto w = (x - mean) * torch::rsqrt(var + 1e-8);
  if (!shift_mean) w = w + mean;
  return w * mask.to(x.scalar_type());
}

KlEstimator parse_kl_estimator(const std::string& s) {
  if (s == "k1") return KlEstimator::K1;
  if (s == "k3") return KlEstimator::K3;
  RLHF_FAIL("--kl-estimator '", s, "' is not known; use k1 or k3");
}

torch::Tensor kl_estimate(const torch::Tensor& logp, const torch::Tensor& ref, KlEstimator k) {
  auto d = ref - logp;  // log(ref / policy)
  if (k == KlEstimator::K1) return -d;
  return torch::expm1(d) - d;
}

std::pair<torch::Tensor, torch::Tensor> gae(const torch::Tensor& rewards, const torch::Tensor& values,
                                            const torch::Tensor& mask, double gamma, double lam) {
  const int64_t T = rewards.size(1);
  auto m = mask.to(rewards.scalar_type());
  auto r = rewards * m, v = values * m;
  std::vector<torch::Tensor> adv(static_cast<size_t>(T));
  auto last = torch::zeros({rewards.size(0)}, rewards.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    auto next_v = t + 1 < T ? v.select(1, t + 1) : torch::zeros_like(last);
    auto delta = r.select(1, t) + gamma * next_v - v.select(1, t);
    last = (delta + gamma * lam * last) * m.select(1, t);
    adv[size_t(t)] = last;
  }
  auto advantages = torch::stack(adv, 1);
  return {advantages, (advantages + v) * m};
}

void AdaptiveKlController::update(double current_kl, int64_t n_steps) {
  double err = std::clamp(current_kl / target_ - 1.0, -0.2, 0.2);
  value *= 1.0 + err * double(n_steps) / horizon_;
}

PolicyLoss ppo_policy_loss(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& adv,
                           const torch::Tensor& mask, double eps) {
  auto diff = logp - old;
  auto ratio = torch::exp(diff);
  auto l1 = -adv * ratio, l2 = -adv * torch::clamp(ratio, 1 - eps, 1 + eps);
  PolicyLoss out;
  out.loss = masked_mean(torch::max(l1, l2), mask);
  out.clipfrac = masked_mean((l2 > l1).to(logp.scalar_type()), mask).detach();
  out.approxkl = (0.5 * masked_mean(diff.pow(2), mask)).detach();
  out.ratio = masked_mean(ratio, mask).detach();
  return out;
}

ValueLoss ppo_value_loss(const torch::Tensor& v, const torch::Tensor& old_v, const torch::Tensor& ret,
                         const torch::Tensor& mask, double eps) {
  auto clipped = old_v + torch::clamp(v - old_v, -eps, eps);
  auto l1 = (v - ret).pow(2), l2 = (clipped - ret).pow(2);
  ValueLoss out;
  out.loss = 0.5 * masked_mean(torch::max(l1, l2), mask);
  out.clipfrac = masked_mean((l2 > l1).to(v.scalar_type()), mask).detach();
  return out;
}

torch::Tensor grpo_advantages(const torch::Tensor& scores, int64_t group, bool scale_by_std) {
  RLHF_CHECK(group >= 2 && scores.size(0) % group == 0, "GRPO needs groups of >= 2 samples per prompt");
  auto g = scores.view({-1, group});
  auto centred = g - g.mean(1, true);
  if (scale_by_std) centred = centred / (g.std(1, /*unbiased=*/true, true) + 1e-4);
  return centred.reshape({-1});
}

torch::Tensor rloo_advantages(const torch::Tensor& scores, int64_t group) {
  RLHF_CHECK(group >= 2 && scores.size(0) % group == 0, "RLOO needs groups of >= 2 samples per prompt");
  auto g = scores.view({-1, group});
  auto baseline = (g.sum(1, true) - g) / double(group - 1);
  return (g - baseline).reshape({-1});
}

void RunningMoments::update(const torch::Tensor& x) {
  auto v = x.detach().to(torch::kCPU).to(torch::kDouble).reshape({-1});
  for (int64_t i = 0; i < v.numel(); ++i) {
    double d = v[i].item<double>();
    ++count;
    double delta = d - mean;
    mean += delta / double(count);
    m2 += delta * (d - mean);
  }
}

double RunningMoments::std() const { return count > 1 ? std::sqrt(m2 / double(count - 1)) : 1.0; }

}  // namespace rlhf
