// The demo world's simulated raters as labellers of a task through its HTTP API (the requests a
// browser makes): each ranks what it is served by gold score with Plackett-Luce noise calibrated to
// a target pairwise agreement, as `rlhf world rank` does offline.
#pragma once
#include "label/client.h"
#include "label/task.h"
#include "world/world.h"

namespace rlhf::label {

// A policy for run_rater_clients. tau is calibrated on `items` (the task's); *tau_out receives it.
RaterPolicy world_rater_policy(const World& world, const std::vector<Item>& items, const std::string& mode,
                               double agreement, uint64_t seed, double* tau_out = nullptr);

}  // namespace rlhf::label
