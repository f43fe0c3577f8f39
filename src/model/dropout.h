#pragma once
// Inverted dropout with a counter-based mask, for CPU training.
//
// libtorch's CPU dropout draws one Mersenne-Twister number per element on one thread (about 7 ns an
// element here: 20-30 ms for one layer's attention probabilities at batch 4 x 256 x 12 heads, a
// seventh of a GPT-2 training step in all) and keeps a noise tensor of the input's size for
// backward. Here each call draws one 64-bit seed from the default generator, and element i is kept
// when hash(seed, i) >= p * 2^32: the mask is computed on all threads, in AVX-512 where the CPU has
// it, and computed again in backward instead of being stored. The mask depends only on the seed and
// the element's index, so it is the same for any thread count and on either code path, and replaying
// the generator's state (gradient checkpointing, resumed runs) replays the masks.
// CUDA tensors, and dtypes other than fp32 / bf16, use torch::dropout.

#include <torch/torch.h>

#include <cstdint>

namespace rlhf {

// Training: zeroes each element with probability p and scales the rest by 1 / (1 - p); identity when
// !train or p == 0. Differentiable.
torch::Tensor dropout(const torch::Tensor& x, double p, bool train);

namespace detail {
// The mask's hash: element `index` of a call with `seed` is kept when the result is >= threshold.
uint32_t dropout_hash(uint64_t seed, uint64_t index);
uint32_t dropout_threshold(double p);
// out[i] = keep(seed, offset + i) ? in[i] * scale : 0 over n contiguous elements of x's dtype (fp32 or
// bf16), single-threaded; `vectorised` picks the AVX-512 loop when the CPU has it (the tests compare both).
void dropout_apply(const torch::Tensor& in, torch::Tensor& out, uint64_t seed, uint32_t threshold, float scale,
                   bool vectorised);
}  // namespace detail

}  // namespace rlhf
