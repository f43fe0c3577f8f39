// Small statistics for evaluation reports.
#pragma once
#include <vector>

namespace rlhf {

struct MeanCi {
  double mean = 0, ci95 = 0;  // ci95: half-width of the normal-approximation 95% interval (1.96 s / sqrt(n))
  int64_t n = 0;
};
MeanCi mean_ci95(const std::vector<double>& xs);

}  // namespace rlhf
