// The pipeline's AI feedback (src/feedback): `"rank": {"source": "ai"}` and the `"rlaif"` arm label a
// round's samples with `rlhf judge`; this measures the AI labeller against the demo world's gold order
// and against the simulated raters, and splits samples between labellers for `"source": "mix"`.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf {

// Over prompts present in both files (matched by prompt and responses): the share of response pairs
// that both order strictly (identical responses are ties) on which they agree.
struct OrderAgreement {
  int64_t pairs = 0, agree = 0;
  double rate() const { return pairs ? double(agree) / double(pairs) : NAN; }
};
OrderAgreement ranking_agreement(const std::filesystem::path& a, const std::filesystem::path& b);

// The AI labeller's figures: the judge's summary (position consistency, speed), agreement with the
// gold order (with a world) and with the simulated raters' rankings of the same samples (when given).
Json ai_label_stats(const std::filesystem::path& rankings, const std::filesystem::path& judge_stats,
                    const std::string& world_json, const std::filesystem::path& rater_rankings);

// "mix": each sample record goes to the first part whose "where" ({"field": [values]}) it matches (a
// part without "where" takes every record left); writes one samples file per part.
void split_samples(const std::filesystem::path& samples, const Json& parts, const std::vector<std::filesystem::path>& outs,
                   const std::string& where);

}  // namespace rlhf
