// Preference data in the JSONL forms TRL users and ranking tools produce, all read into one shape:
// a prompt with K tokenised responses and the pairs (better, worse) among them.
//   {"prompt","chosen","rejected"}                 text or message lists; without "prompt" the
//                                                  shared prefix of chosen and rejected is the prompt
//     + optional "margin" (float) and "p_chosen" (soft label in [0, 1])
//   {"prompt","responses":[...],"ranking":[...]}   best first; an entry may be a list of tied
//                                                  indices ([2, [0, 3], 1]); or "ranks": [1, 3, 1, 2];
//                                                  identical responses count as tied; or
//                                                  "comparisons": [[i, j, P(i better than j)], ...]
//                                                  (rlhf judge's soft labels), which take the
//                                                  ranking's place
//   {"prompt","completion","label": true|false}    unpaired thumbs up/down (KTO)
// Each prompt + response is tokenised once as a whole; prompt tokens are masked. Over-long
// sequences keep the prompt's start (or end) and the response's start; a response cut to nothing is
// reported and the record dropped.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/example.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

struct PreferencePair {
  int better = 0, worse = 1;  // indices into PreferenceExample::responses
  float margin = 0.0f;
  float p_better = NAN;       // soft label; NaN = hard
};

struct PreferenceExample {
  std::vector<TokenizedExample> responses;  // prompt + response; loss_mask marks response tokens
  std::vector<PreferencePair> pairs;        // empty for unpaired (KTO) records
  int label = -1;                           // unpaired: 1 desirable, 0 undesirable
  int64_t source_line = 0;
  // Pairs the ranking names, identical responses included (their ties are not in `pairs`). A record's
  // loss is the sum over `pairs` divided by this, as InstructGPT averages all C(K, 2) comparisons of
  // a prompt: dropping a tie then changes no gradient (an identical pair has none) and no weighting.
  int64_t ranked_pairs = 0;
  double pair_normalizer() const { return double(std::max<int64_t>(ranked_pairs, int64_t(pairs.size()))); }
};

struct PreferenceDataOptions {
  int64_t max_length = 512;         // prompt + response tokens
  int64_t max_prompt_length = 256;  // prompt tokens kept when a sequence is too long
  std::string prompt_truncation = "keep_start";  // keep_start | keep_end
  bool add_eos = true;              // end responses with EOS (text responses; templates add their own marker)
  bool skip_bad_lines = false;
  std::string chat_template;        // for message-list records ("" = tokenizer_config.json's)
  bool allow_unpaired = false;      // accept {"completion","label"} records (KTO)
  bool allow_unranked = false;      // accept "responses" without a ranking (scoring only)
};

struct PreferenceDataStats {
  int64_t records = 0, pairs = 0, responses = 0, unpaired = 0;
  int64_t bad_lines = 0, truncated = 0, dropped_empty = 0;
  int64_t identical_pairs = 0;    // ranked pairs whose two responses are the same text (dropped)
  int64_t all_identical = 0;      // records left with no pair by that (every response the same text)
  std::string describe() const;
};

// --max-length, --max-prompt-length and --prompt-truncation, checked before any work.
void validate_preference_options(const PreferenceDataOptions& opts);

std::vector<PreferenceExample> load_preference_data(const std::filesystem::path& path, const Tokenizer& tok,
                                                    const PreferenceDataOptions& opts,
                                                    PreferenceDataStats* stats = nullptr);

// Parses single records (what load_preference_data does per line). Records whose response is cut to
// nothing by truncation come back with that response's loss mask all zero.
class PreferenceParser {
 public:
  PreferenceParser(const Tokenizer& tok, const PreferenceDataOptions& opts);
  ~PreferenceParser();
  PreferenceExample parse(const Json& record, const std::string& where);
  const PreferenceDataStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The responses of some records as one flat list (one forward pass each), with the position of each
// record's first response and every response's global index (record offsets from response_offsets).
struct FlatResponses {
  std::vector<const TokenizedExample*> seqs;
  std::vector<int64_t> first;
  std::vector<int64_t> ids;
};
std::vector<int64_t> response_offsets(const std::vector<PreferenceExample>& data);
FlatResponses flatten_responses(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& offsets,
                                const std::vector<int64_t>& idx);

// Pair indices into a flat batch: (better, worse, record) for every pair of records `idx`.
struct FlatPairs {
  std::vector<int64_t> better, worse, owner;
  std::vector<float> margin, p_better;
};
FlatPairs flatten_pairs(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                        const FlatResponses& f);

// pair_normalizer() of the records `idx`, as a (idx.size()) float tensor on `device`.
torch::Tensor pair_normalizers(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                               torch::Device device);

// The ranks (0 = best, equal = tie) of a record's `k` responses from its "ranking" (best first, ties
// nested) or "ranks"; errors name `where` and the entry that is wrong.
std::vector<int> record_ranks(const Json& record, size_t k, const std::string& where);

// The pairs a ranking implies: every (i, j) with i ranked strictly above j; `ranks[i]` is the rank of
// response i (smaller is better, equal = tie).
std::vector<PreferencePair> pairs_from_ranks(const std::vector<int>& ranks);

}  // namespace rlhf
