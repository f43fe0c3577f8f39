#include "pipeline/ai.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "data/preference_data.h"
#include "data/prompts.h"
#include "io/jsonl.h"
#include "world/world.h"

namespace rlhf {

namespace {
std::string ai_key_of(const Json& rec) {
  std::string k = rec.contains("prompt") ? rec["prompt"].dump() : "";
  if (rec.contains("responses")) k += rec["responses"].dump();
  return k;
}
}  // namespace

OrderAgreement ranking_agreement(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto ranks = [](const JsonlRecord& r) {
    return record_ranks(r.value, r.value.contains("responses") ? r.value["responses"].size() : 0, r.where());
  };
  std::map<std::string, std::vector<int>> other;
  for (auto& r : read_jsonl(b)) other[ai_key_of(r.value)] = ranks(r);
  OrderAgreement out;
  for (auto& r : read_jsonl(a)) {
    auto it = other.find(ai_key_of(r.value));
    if (it == other.end()) continue;
    auto x = ranks(r);
    const auto& y = it->second;
    if (x.size() != y.size()) continue;
    const Json& resp = r.value["responses"];
    for (size_t i = 0; i < x.size(); ++i)
      for (size_t j = i + 1; j < x.size(); ++j) {
        if (x[i] == x[j] || y[i] == y[j]) continue;
        if (resp.is_array() && resp.size() == x.size() && resp[i] == resp[j]) continue;  // identical: a tie
        ++out.pairs;
        out.agree += (x[i] < x[j]) == (y[i] < y[j]);
      }
  }
  return out;
}

Json ai_label_stats(const std::filesystem::path& rankings, const std::filesystem::path& judge_stats,
                    const std::string& world_json, const std::filesystem::path& rater_rankings) {
  Json js = read_json_file(judge_stats, "judge statistics");
  Json out = {{"labeller", js.value("judge", "")},
              {"comparisons", js.value("comparisons", Json(nullptr))},
              {"position_consistency", js.value("position_consistency", Json(nullptr))},
              {"mean_confidence", js.value("mean_confidence", Json(nullptr))},
              {"comparisons_per_second", js.value("comparisons_per_second", Json(nullptr))},
              {"judge_seconds", js.value("seconds", Json(nullptr))}};
  if (!world_json.empty()) {
    World w = World::load(world_json);
    int64_t pairs = 0, agree = 0;
    for (auto& r : read_jsonl(rankings)) {
      auto resp = sample_responses(r);
      auto ranks = record_ranks(r.value, resp.size(), r.where());
      const std::string prompt = prompt_user_text(r.value["prompt"], r.where());
      std::vector<double> g;
      for (auto& x : resp) g.push_back(w.rate(prompt, x).score);
      for (size_t i = 0; i < g.size(); ++i)
        for (size_t j = i + 1; j < g.size(); ++j) {
          if (std::fabs(g[i] - g[j]) < 1e-12 || ranks[i] == ranks[j]) continue;
          ++pairs;
          agree += (g[i] > g[j]) == (ranks[i] < ranks[j]);
        }
    }
    out["gold_agreement"] = pairs ? Json(double(agree) / double(pairs)) : Json(nullptr);
    out["gold_pairs"] = pairs;
  }
  if (!rater_rankings.empty() && std::filesystem::exists(rater_rankings)) {
    auto a = ranking_agreement(rankings, rater_rankings);
    out["rater_agreement"] = a.pairs ? Json(a.rate()) : Json(nullptr);
    out["rater_pairs"] = a.pairs;
  }
  return out;
}

void split_samples(const std::filesystem::path& samples, const Json& parts, const std::vector<std::filesystem::path>& outs,
                   const std::string& where) {
  RLHF_CHECK(parts.is_array() && parts.size() == outs.size(), where, ": rank.parts must be a list");
  std::vector<std::unique_ptr<JsonlWriter>> w;
  for (auto& o : outs) w.push_back(std::make_unique<JsonlWriter>(o));
  std::vector<int64_t> n(parts.size(), 0);
  for (auto& r : read_jsonl(samples)) {
    bool placed = false;
    for (size_t p = 0; p < parts.size() && !placed; ++p) {
      const Json& part = parts[p];
      bool match = true;
      if (part.contains("where")) {
        for (auto& [field, values] : part["where"].items()) {
          const Json& v = r.value.contains(field) ? r.value[field] : Json(nullptr);
          bool any = false;
          for (auto& x : values) any = any || x == v;
          match = match && any;
        }
      }
      if (match) {
        w[p]->write(r.value);
        ++n[p];
        placed = true;
      }
    }
    RLHF_CHECK(placed, where, ": ", r.where(), " matches no part of rank.parts; give the last part no \"where\" to take the rest");
  }
  for (size_t p = 0; p < parts.size(); ++p) {
    RLHF_CHECK(n[p] > 0, where, ": rank.parts[", p, "] receives no samples; check its \"where\"");
    w[p]->commit();
  }
}

}  // namespace rlhf
