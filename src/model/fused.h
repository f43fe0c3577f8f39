#pragma once
// Fused CPU kernels for two element-wise stretches of every training step, each one pass over its
// data forward and one backward, in AVX-512 (fp32 and bf16, computing in fp32) where the CPU has it:
//
// * token_logp: log softmax(logits * scale)[target] per row, and the row's entropy. libtorch's
//   log_softmax + gather writes and keeps a full-vocabulary fp32 tensor, and its backward runs a
//   scatter into zeros, the log-softmax backward and a cast: six passes over (rows x vocabulary)
//   floats. Here backward writes the logits' gradient in one pass, in the logits' dtype, from the
//   logits and two numbers per row.
// * gelu_tanh: GPT-2's GELU (tanh approximation) as x * sigmoid(2u), forward and backward.
//
// Elsewhere (CUDA, other dtypes, CPUs without AVX-512) both run the libtorch ops they replace
// (detail:: below), which the tests compare them with.

#include <torch/torch.h>

namespace rlhf {

struct TokenLogp {
  torch::Tensor logp;     // (...) fp32
  torch::Tensor entropy;  // (...) fp32; defined when asked for
};

// logits (..., V), targets (...) int64. Differentiable in logits through logp, and through the
// entropy when entropy_grad (else the entropy is a detached metric).
TokenLogp token_logp(const torch::Tensor& logits, const torch::Tensor& targets, double scale = 1.0,
                     bool want_entropy = false, bool entropy_grad = true);

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), differentiable.
torch::Tensor gelu_tanh(const torch::Tensor& x);

// Whether the fused CPU kernels run on this machine (else the libtorch ops).
bool fused_kernels_available();

namespace detail {
TokenLogp token_logp_reference(const torch::Tensor& logits, const torch::Tensor& targets, double scale,
                               bool want_entropy, bool entropy_grad = true);
torch::Tensor gelu_tanh_reference(const torch::Tensor& x);
}  // namespace detail

}  // namespace rlhf
