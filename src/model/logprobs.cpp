#include "model/logprobs.h"

#include "model/fused.h"

namespace rlhf {

// log softmax at the targets (model/fused.h: one pass forward and one backward on CPU).
static torch::Tensor logprobs_of_logits(const torch::Tensor& logits, const torch::Tensor& targets,
                                        torch::Tensor* hits) {
  if (hits) {
    torch::NoGradGuard ng;
    *hits = logits.argmax(-1) == targets;
  }
  return token_logp(logits, targets).logp;
}

torch::Tensor token_logprobs(TransformerImpl& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                             int64_t chunk, torch::Tensor* argmax_hits) {
  const auto lead = targets.sizes().vec();
  auto h = hidden.reshape({-1, hidden.size(-1)});
  auto t = targets.reshape({-1});
  if (torch::GradMode::is_enabled() || h.size(0) <= chunk) {
    auto lp = logprobs_of_logits(model.head(h), t, argmax_hits).view(lead);
    if (argmax_hits) *argmax_hits = argmax_hits->view(lead);
    return lp;
  }
  std::vector<torch::Tensor> parts, hit_parts;
  for (int64_t i = 0; i < h.size(0); i += chunk) {
    int64_t n = std::min(chunk, h.size(0) - i);
    torch::Tensor hit;
    parts.push_back(logprobs_of_logits(model.head(h.narrow(0, i, n)), t.narrow(0, i, n), argmax_hits ? &hit : nullptr));
    if (argmax_hits) hit_parts.push_back(hit);
  }
  if (argmax_hits) *argmax_hits = torch::cat(hit_parts).view(lead);
  return torch::cat(parts).view(lead);
}

torch::Tensor sequence_logprobs(TransformerImpl& model, const torch::Tensor& ids, const ForwardArgs& args) {
  const int64_t T = ids.size(1);
  auto h = model.hidden(ids, args);  // (B, T, C)
  return token_logprobs(model, h.narrow(1, 0, T - 1), ids.narrow(1, 1, T - 1));
}

}  // namespace rlhf
