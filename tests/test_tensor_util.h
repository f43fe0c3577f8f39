// Tensor helpers for the tests (kept out of test_util.h so that tests without tensors need no torch).
#pragma once
#include <torch/torch.h>

namespace rlhf::test {

// max |a - b| over all elements, in float64.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  // On the CPU: one side may come from the device the suite runs on, the other from a file.
  return (a.detach().to(torch::kCPU, torch::kDouble) - b.detach().to(torch::kCPU, torch::kDouble)).abs().max().item<double>();
}

}  // namespace rlhf::test
