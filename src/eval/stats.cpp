#include "eval/stats.h"

#include <cmath>
#include <cstdint>

namespace rlhf {

MeanCi mean_ci95(const std::vector<double>& xs) {
  MeanCi r;
  r.n = int64_t(xs.size());
  if (xs.empty()) return {NAN, NAN, 0};
  double s = 0;
  for (double x : xs) s += x;
  r.mean = s / double(xs.size());
  if (xs.size() < 2) return r;
  double v = 0;
  for (double x : xs) v += (x - r.mean) * (x - r.mean);
  v /= double(xs.size() - 1);
  r.ci95 = 1.96 * std::sqrt(v / double(xs.size()));
  return r;
}

}  // namespace rlhf
