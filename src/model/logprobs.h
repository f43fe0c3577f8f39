// Log-probabilities of given tokens under a model, in float32. Without grad, rows go through the
// head in chunks so only chunk x vocab logits exist at once.
#pragma once
#include <torch/torch.h>

#include "model/transformer.h"

namespace rlhf {

// hidden (..., C), targets (...) int64 -> (...) float32 log p(target). Without grad, rows are
// processed in chunks of `chunk` so at most chunk x vocab logits exist at once.
// If `argmax_hits` is given it receives (...) bool: whether the target was the most likely token.
torch::Tensor token_logprobs(TransformerImpl& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                             int64_t chunk = 1024, torch::Tensor* argmax_hits = nullptr);

// For ids (B, T): (B, T-1) with [b, i] = log p(ids[b, i+1] | ids[b, 0..i]).
torch::Tensor sequence_logprobs(TransformerImpl& model, const torch::Tensor& ids, const ForwardArgs& args = {});

}  // namespace rlhf
