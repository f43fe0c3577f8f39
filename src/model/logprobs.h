// Log-probabilities of given tokens under a model, computed as logit[target] - logsumexp(logits) in
// float32 so the full log-softmax over the vocabulary is never materialised.
#pragma once
#include <torch/torch.h>

#include "model/transformer.h"

namespace rlhf {

// hidden (..., C), targets (...) int64 -> (...) float32 log p(target). Without grad, rows are
// processed in chunks of `chunk` so at most chunk x vocab logits exist at once.
torch::Tensor token_logprobs(TransformerImpl& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                             int64_t chunk = 1024);

// For ids (B, T): (B, T-1) with [b, i] = log p(ids[b, i+1] | ids[b, 0..i]).
torch::Tensor sequence_logprobs(TransformerImpl& model, const torch::Tensor& ids, const ForwardArgs& args = {});

}  // namespace rlhf
