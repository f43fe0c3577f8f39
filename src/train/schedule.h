// Learning-rate schedules: linear warm-up, then cosine, linear or constant decay to min_lr_ratio x lr
// (transformers' get_*_schedule_with_warmup). A pure function of the step.
#pragma once
#include <cstdint>
#include <string>

namespace rlhf {

struct ScheduleConfig {
  std::string type = "cosine";  // cosine | linear | constant (= transformers' constant_with_warmup)
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;    // used when warmup_steps == 0: warm-up = ratio x total steps
  double min_lr_ratio = 0.0;    // floor of the decay, as a fraction of the peak lr
};

// lr at optimizer step `step` (0-based) of `total` steps.
double scheduled_lr(const ScheduleConfig& cfg, double peak_lr, int64_t step, int64_t total);

}  // namespace rlhf
