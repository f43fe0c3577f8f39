#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace rlhf {

double scheduled_lr(const ScheduleConfig& cfg, double peak, int64_t step, int64_t total) {
  RLHF_CHECK(cfg.type == "cosine" || cfg.type == "linear" || cfg.type == "constant" || cfg.type == "constant_with_warmup",
             "lr schedule \"", cfg.type, "\" is not known; use cosine, linear or constant");
  int64_t warm = cfg.warmup_steps > 0 ? cfg.warmup_steps : int64_t(std::ceil(cfg.warmup_ratio * double(total)));
  if (step < warm) return peak * double(step + 1) / double(warm);  // no wasted step at lr 0
  if (cfg.type == "constant" || cfg.type == "constant_with_warmup") return peak;  // transformers' name for it
  double progress = total > warm ? double(step - warm) / double(std::max<int64_t>(1, total - warm)) : 1.0;
  progress = std::clamp(progress, 0.0, 1.0);
  double factor = cfg.type == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return peak * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * factor);
}

}  // namespace rlhf
