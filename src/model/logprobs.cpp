#include "model/logprobs.h"

namespace rlhf {

static torch::Tensor logprobs_of_logits(const torch::Tensor& logits, const torch::Tensor& targets) {
  auto lf = logits.to(torch::kFloat);
  return lf.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lf.logsumexp(-1);
}

torch::Tensor token_logprobs(TransformerImpl& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                             int64_t chunk) {
  const auto lead = targets.sizes().vec();
  auto h = hidden.reshape({-1, hidden.size(-1)});
  auto t = targets.reshape({-1});
  if (torch::GradMode::is_enabled() || h.size(0) <= chunk) {
    return logprobs_of_logits(model.head(h), t).view(lead);
  }
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < h.size(0); i += chunk) {
    int64_t n = std::min(chunk, h.size(0) - i);
    parts.push_back(logprobs_of_logits(model.head(h.narrow(0, i, n)), t.narrow(0, i, n)));
  }
  return torch::cat(parts).view(lead);
}

torch::Tensor sequence_logprobs(TransformerImpl& model, const torch::Tensor& ids, const ForwardArgs& args) {
  const int64_t T = ids.size(1);
  auto h = model.hidden(ids, args);  // (B, T, C)
  return token_logprobs(model, h.narrow(1, 0, T - 1), ids.narrow(1, 1, T - 1));
}

}  // namespace rlhf
