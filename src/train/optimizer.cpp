#include "train/optimizer.h"

#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"

namespace rlhf {

bool no_decay_by_default(const std::string& name, const torch::Tensor& t) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  return t.dim() < 2 || bias || has("norm") || has("ln_") || has("wte") || has("wpe") || has("embed_tokens");
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const AdamWConfig& cfg,
             bool decay_all)
    : cfg_(cfg) {
  RLHF_CHECK(cfg.lr >= 0, "learning rate must be >= 0");
  RLHF_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1, "Adam betas must be in [0, 1)");
  RLHF_CHECK(cfg.eps > 0, "Adam eps must be > 0");
  RLHF_CHECK(cfg.weight_decay >= 0, "weight decay must be >= 0");
  RLHF_CHECK(!params.empty(), "no trainable parameters");
  for (auto& [name, t] : params) {
    Param p;
    p.name = name;
    p.tensor = t;
    p.weight_decay = (!decay_all && no_decay_by_default(name, t)) ? 0.0 : cfg.weight_decay;
    params_.push_back(std::move(p));
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.tensor.mutable_grad() = torch::Tensor();
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  ++step_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, double(step_));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  for (auto& p : params_) {
    const torch::Tensor& g = p.tensor.grad();
    if (!g.defined()) continue;
    if (!p.exp_avg.defined()) {
      p.exp_avg = torch::zeros_like(p.tensor, torch::MemoryFormat::Preserve);
      p.exp_avg_sq = torch::zeros_like(p.tensor, torch::MemoryFormat::Preserve);
    }
    if (p.weight_decay != 0) p.tensor.mul_(1.0 - lr * p.weight_decay);
    p.exp_avg.lerp_(g, 1.0 - cfg_.beta1);
    p.exp_avg_sq.mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    auto denom = (p.exp_avg_sq.sqrt() / bc2_sqrt).add_(cfg_.eps);
    p.tensor.addcdiv_(p.exp_avg, denom, -step_size);
  }
}

void AdamW::save(const std::filesystem::path& file) const {
  NamedTensors t;
  for (const auto& p : params_) {
    if (!p.exp_avg.defined()) continue;
    t.emplace_back(p.name + ".exp_avg", p.exp_avg);
    t.emplace_back(p.name + ".exp_avg_sq", p.exp_avg_sq);
  }
  save_safetensors(file, t, torch::ScalarType::Undefined, {{"step", std::to_string(step_)}});
}

void AdamW::load(const std::filesystem::path& file) {
  SafetensorsFile f(file);
  auto it = f.metadata().find("step");
  RLHF_CHECK(it != f.metadata().end(), file.string(), ": no \"step\" in metadata; not an optimizer state file");
  step_ = std::stoll(it->second);
  torch::NoGradGuard ng;
  for (auto& p : params_) {
    const std::string a = p.name + ".exp_avg", b = p.name + ".exp_avg_sq";
    if (!f.find(a)) {
      RLHF_CHECK(step_ == 0 || !f.find(b), file.string(), ": has ", b, " but not ", a);
      p.exp_avg = p.exp_avg_sq = torch::Tensor();
      continue;
    }
    auto ea = f.load(a, torch::ScalarType::Undefined), eb = f.load(b, torch::ScalarType::Undefined);
    RLHF_CHECK(ea.sizes() == p.tensor.sizes() && eb.sizes() == p.tensor.sizes(), file.string(), ": state of \"", p.name,
               "\" has the wrong shape; the checkpoint belongs to another model");
    p.exp_avg = ea.to(p.tensor.device());
    p.exp_avg_sq = eb.to(p.tensor.device());
  }
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().to(torch::kDouble).norm().pow(2));
  if (norms.empty()) return 0.0;
  double total = std::sqrt(torch::stack(norms).sum().item<double>());
  if (max_norm > 0 && std::isfinite(total)) {
    double coef = max_norm / (total + 1e-6);
    if (coef < 1.0)
      for (const auto& p : params)
        if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total;
}

}  // namespace rlhf
