#include "label/items.h"

#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/prompts.h"
#include "io/jsonl.h"
#include "train/reward.h"

namespace rlhf::label {

std::vector<Item> items_from_samples(const std::filesystem::path& samples, const std::string& mode, bool chat,
                                     int64_t* unpaired) {
  RLHF_CHECK(mode == "rank" || mode == "pairs", "--mode ", mode, " is not known; use rank or pairs");
  std::vector<Item> items;
  int64_t odd = 0;
  for (auto& r : read_jsonl(samples)) {
    RLHF_CHECK(r.value.contains("prompt"), r.where(), ": no \"prompt\" field (samples: {\"prompt\", \"responses\": [...]})");
    Json prompt = r.value["prompt"];
    RLHF_CHECK(prompt.is_string() || prompt.is_array(), r.where(), ": \"prompt\" must be a text or a list of chat turns");
    if (prompt.is_array())
      for (auto& m : prompt)
        RLHF_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                       m["content"].is_string(),
                   r.where(), ": each chat turn of \"prompt\" needs a \"role\" and a text \"content\"");
    if (chat && prompt.is_string()) prompt = Json::array({{{"role", "user"}, {"content", prompt}}});
    auto resp = sample_responses(r);
    RLHF_CHECK(resp.size() >= 2, r.where(), ": labelling needs at least 2 responses per prompt, found ", resp.size(),
               " (sample with rlhf generate --n 2 or more)");
    // The record's other small fields (family, model, ...) travel to the export, never to raters.
    Json source = {{"line", r.line}};
    for (auto& [k, v] : r.value.items())
      if (k != "prompt" && k != "responses" && k != "response" && (v.is_string() || v.is_number() || v.is_boolean()))
        source[k] = v;
    if (mode == "rank") {
      items.push_back({prompt, resp, source, 0.0});
      continue;
    }
    for (size_t i = 0; i + 1 < resp.size(); i += 2) {
      Json s = source;
      s["pair"] = {i, i + 1};
      items.push_back({prompt, {resp[i], resp[i + 1]}, s, 0.0});
    }
    odd += resp.size() % 2;
  }
  if (unpaired) *unpaired = odd;
  return items;
}

void prioritise_uncertain(std::vector<Item>& items, RewardModel& rm, const Tokenizer& tok, const std::string& chat_template) {
  std::vector<JsonlRecord> recs;
  for (size_t i = 0; i < items.size(); ++i) {
    JsonlRecord r;
    r.value = {{"prompt", items[i].prompt}, {"responses", items[i].responses}};
    r.line = int64_t(i + 1);
    r.file = "item";
    recs.push_back(std::move(r));
  }
  auto rewards = score_records(rm, tok, recs, 1024, chat_template);
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& r = rewards[i];
    double s = 0;
    int64_t n = 0;
    for (size_t a = 0; a < r.size(); ++a)
      for (size_t b = a + 1; b < r.size(); ++b) {
        double p = 1.0 / (1.0 + std::exp(-(r[a] - r[b])));
        s += p * (1 - p);
        ++n;
      }
    items[i].priority = n ? s / double(n) : 0.0;
    items[i].source["reward_doubt"] = items[i].priority;
  }
}

Json samples_about(const std::filesystem::path& samples) {
  return {{"samples", std::filesystem::absolute(samples).string()}, {"samples_fingerprint", file_fingerprint(samples)}};
}

}  // namespace rlhf::label
