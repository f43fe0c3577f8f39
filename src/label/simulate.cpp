#include "label/simulate.h"

#include <cmath>

#include "core/error.h"

namespace rlhf::label {

RaterPolicy world_rater_policy(const World& world, const std::vector<Item>& items, const std::string& mode,
                               double agreement, uint64_t seed, double* tau_out) {
  std::vector<std::vector<double>> groups;
  for (auto& it : items) {
    std::string prompt = prompt_user_text(it.prompt, "task item");
    std::vector<double> g;
    for (auto& r : it.responses) g.push_back(world.rate(prompt, r).score);
    groups.push_back(std::move(g));
  }
  const double tau = calibrate_rater_noise(groups, agreement);
  if (tau_out) *tau_out = tau;
  const World* w = &world;
  return [w, tau, seed, mode](const Json& item, size_t rater) {
    std::string prompt = prompt_user_text(item["prompt"], "served item");
    std::vector<double> g;
    for (auto& r : item["responses"]) g.push_back(w->rate(prompt, r.get<std::string>()).score);
    // One draw per (rater, item): a rerun labels the same way.
    uint64_t s = seed * 1000003u + uint64_t(rater) * 7919u + std::stoull(item["item_id"].get<std::string>());
    auto order = simulated_rankings({g}, tau, s)[0];
    if (mode == "pairs") {
      int sign = order[0] == 0 ? -1 : 1;
      int strength = std::abs(g[0] - g[1]) >= 1.0 ? 2 : 1;
      return Json{{"choice", g[0] == g[1] ? 0 : sign * strength}};
    }
    return Json{{"ranking", order}};
  };
}

}  // namespace rlhf::label
