// The AI judge of RL-CAI / RLAIF (Bai et al. 2022; Lee et al. 2023, arXiv 2309.00267): a language model
// asked a multiple-choice question ("Which of these responses is less harmful? ... The better response
// is") whose answer is read from its own log-probabilities of the option tokens, never sampled.
//   * both orders are scored and averaged (position bias), and their agreement is reported;
//   * one principle per comparison, drawn by weight, or an ensemble of several, averaged;
//   * optional chain of thought: a greedy rationale first, then the options, clamped to [lo, 1-lo];
//   * direct RLAIF: the expected score over the options "1".."10", rescaled to [-1, 1].
// Every judge prompt starts with the same constitution text and few-shot examples: that prefix is
// prefilled once and its KV cache copied into every batch. Options of several tokens are scored as
// sequences (the sum of their tokens' log-probs).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "feedback/constitution.h"
#include "generate/generator.h"
#include "io/json.h"
#include "model/transformer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

struct JudgeOptions {
  bool chat = true;                 // judge prompts as a user turn of the judge's chat template
  std::string chat_template;        // "" = the tokenizer's
  int64_t batch_rows = 32;          // sequences per forward pass
  bool both_orders = true;          // score (A, B) and (B, A) and average
  int64_t principles = 1;           // principles per comparison (an ensemble when > 1)
  std::string principle_tag;        // draw only principles with this tag or name ("" = all)
  int64_t few_shot = -1;            // comparison examples of the constitution in the prefix (-1 = all)
  bool cot = false;                 // chain of thought before the answer
  int64_t cot_max_new_tokens = 64;
  double cot_clamp = 0.4;           // with cot, each order's probability is clamped to [lo, 1 - lo] (0 = off)
  uint64_t seed = 1;                // principle draws
  bool progress = false;
};

// A judge model: weights, tokenizer and (with chat) its chat template.
struct JudgeModel {
  Transformer model;
  std::shared_ptr<Tokenizer> tok;
  std::optional<ChatTemplate> chat;
  std::string dir;
};
JudgeModel load_judge(const std::string& dir, const std::string& tokenizer, const JudgeOptions& o);
// `s` without the spaces, tabs and newlines around it (generated turns, few-shot answers).
std::string feedback_trim(const std::string& s);
// Generation settings for the judge's (or critic's) own text: its stop tokens and padding, text decoded
// without specials, the prefix shared by a batch's prompts prefilled once; greedy unless `temperature`.
GenerateParams feedback_generate_params(const JudgeModel& m, int64_t max_new_tokens, int64_t batch_rows,
                                        double temperature = 0.0);

// Work statistics of a judging run.
struct JudgeStats {
  int64_t sequences = 0;        // prompts scored (orders x principles x comparisons)
  int64_t prefix_tokens = 0;    // the shared prefix, prefilled once
  int64_t suffix_tokens = 0;    // tokens run after it
  double seconds = 0;
};

// log p(option | prompt) of every option after every prompt (sum over the option's tokens), sharing the
// longest common prefix of the prompts: it is prefilled once and its cache copied into each batch.
// prompts[i] (ids), options[k] (ids, non-empty) -> result[i][k].
std::vector<std::vector<double>> option_logprobs(TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const std::vector<std::vector<int64_t>>& options, int64_t batch_rows,
                                                 int64_t pad_id, JudgeStats* stats = nullptr);

// One comparison: a prompt (text or messages) and two responses.
struct Comparison {
  Json prompt;
  std::string a, b;
};

struct ComparisonResult {
  double p_first = 0.5;        // P(response a is better), averaged over orders and principles
  std::vector<double> p_ab;    // per principle: P(a better) with a shown as A
  std::vector<double> p_ba;    // per principle: P(a better) with a shown as B (both_orders only)
  bool consistent = true;      // every principle prefers the same response in both orders
  std::vector<std::string> principles;
  std::vector<std::string> rationales;  // with cot: AB then BA per principle
};

class AiJudge {
 public:
  AiJudge(JudgeModel& m, const Constitution& c, const JudgeOptions& o);
  // The text of the judge prompt for one comparison order (what is tokenised; for tests and --dry-run).
  std::string comparison_text(const Json& prompt, const std::string& a, const std::string& b, size_t principle) const;
  std::string score_text(const Json& prompt, const std::string& response) const;
  std::vector<ComparisonResult> compare(const std::vector<Comparison>& items, JudgeStats* stats = nullptr);
  // Direct RLAIF: the expected score (1..n over score_options) of each response.
  std::vector<double> expected_scores(const std::vector<Json>& prompts, const std::vector<std::string>& responses,
                                      JudgeStats* stats = nullptr);
  // expected score rescaled from [1, n] to [-1, 1].
  std::vector<double> rewards(const std::vector<Json>& prompts, const std::vector<std::string>& responses,
                              JudgeStats* stats = nullptr);
  const std::vector<std::vector<int64_t>>& option_ids() const { return option_ids_; }

 private:
  std::string render(const std::vector<std::pair<std::string, std::string>>& shots, const std::string& user,
                     const std::string& answer_prefix) const;
  std::vector<int64_t> encode(const std::string& text) const;
  std::vector<std::string> rationales(const std::vector<std::string>& texts);
  JudgeModel& m_;
  const Constitution& c_;
  JudgeOptions o_;
  std::vector<size_t> pool_;
  std::vector<std::vector<int64_t>> option_ids_, score_ids_;
  std::vector<std::pair<std::string, std::string>> shots_;
};

// Bradley-Terry strengths of K items from pairwise probabilities p[i][j] = P(i beats j) (fill one of
// p[i][j], p[j][i] per pair, the other < 0: it is 1 - p[i][j]): the maximiser of sum p log s(si - sj) +
// (1 - p) log s(sj - si) - ridge/2 |s|^2, centred to mean 0.
std::vector<double> bradley_terry_fit(const std::vector<std::vector<double>>& p, double ridge = 1e-3);

}  // namespace rlhf
