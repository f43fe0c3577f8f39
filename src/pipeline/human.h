// The pipeline's `"rank": {"source": "human", ...}` stage: a labelling task made from the round's
// samples (or an existing one, "task": DIR), served while people label, until a quota is met; then
// the labels are exported as the round's rankings. Stopping and rerunning loses nothing: the task
// keeps every acknowledged label and is served again. With "simulate": true the demo world's
// simulated raters label through the HTTP API (the requests a browser makes).
#pragma once
#include <filesystem>
#include <string>

#include "io/json.h"

namespace rlhf {

struct HumanRankPaths {
  std::filesystem::path samples;   // this round's samples
  std::filesystem::path task_dir;  // rank.task, else ROUND/label
  bool task_given = false;         // rank.task was set: used as it is, whatever samples it was made from
  std::filesystem::path rankings;  // the export
  std::string world_json;          // the demo world (for "simulate"), "" without one
  std::string where;               // the config file, for errors
};

// Returns {"status": what `rlhf label status` shows at the end, "gold": with the demo world, the
// raters' agreement with its gold order (each exported record then carries "gold" scores)}.
Json collect_human_rankings(const Json& rank, const HumanRankPaths& p);

}  // namespace rlhf
