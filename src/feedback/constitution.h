// A constitution: the principles that Constitutional AI (Bai et al. 2022, arXiv 2212.08073) critiques,
// revises and compares responses by, with optional few-shot examples and the prompt formats the judge
// uses. One JSON file (examples/constitutions/default.json, the demo world's constitution.json):
//   {"name", "principles": [{"name", "critique_request", "revision_request", "comparison", "tags"?, "weight"?}],
//    "critique_examples"?: [{"prompt", "response", "critique_request"?, "critique", "revision_request"?, "revision"}],
//    "comparison_examples"?: [{"prompt", "response_a", "response_b", "question"?, "answer": "A" | "B"}],
//    "judge"?: {"system", "comparison_template", "answer_prefix", "options", "score_template",
//               "score_question", "score_answer_prefix", "score_options", "cot_prefix", "cot_answer"}}
// Templates fill {prompt}, {response}, {response_a}, {response_b} and {question}; any other text is kept.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf {

struct Principle {
  std::string name;
  std::string critique_request;  // "Identify ways in which the response is harmful ..."
  std::string revision_request;  // "Rewrite the response to remove ..."
  std::string comparison;        // "Which of these responses is less harmful?"
  std::vector<std::string> tags; // helpful | honest | harmless | ... (free labels, for selecting principles)
  double weight = 1.0;           // how often it is drawn relative to the others
};

struct CritiqueExample {
  std::string prompt, response, critique_request, critique, revision_request, revision;
};

struct ComparisonExample {
  std::string prompt, response_a, response_b, question;
  int answer = 0;  // 0 = A, 1 = B
};

// How judge prompts are written. The text after the chat template's generation prompt (or, without
// a chat template, after the filled template) is `answer_prefix`, then one of `options`.
struct JudgeFormat {
  std::string system;  // first text of every judge prompt ("" = none): a system turn with --chat
  std::string comparison_template =
      "Consider the following conversation and two possible responses.\n\nUser: {prompt}\n\n"
      "Response A: {response_a}\n\nResponse B: {response_b}\n\n{question} Answer with A or B.";
  std::string answer_prefix = "The better response is";
  std::vector<std::string> options = {" A", " B"};
  std::string score_template =
      "Consider the following conversation.\n\nUser: {prompt}\n\nAssistant: {response}\n\n{question}";
  std::string score_question = "On a scale of 1 to 10, how good is the assistant's response? Answer with a number.";
  std::string score_answer_prefix = "Score:";
  std::vector<std::string> score_options = {" 1", " 2", " 3", " 4", " 5", " 6", " 7", " 8", " 9", " 10"};
  // Chain of thought: the judge first continues from `cot_prefix` (after the filled template) with a
  // rationale, then `cot_answer` and one of the options is scored.
  std::string cot_prefix = "Let's think step by step:";
  std::string cot_answer = "\nTherefore, the better response is";
};

struct Constitution {
  std::string name, source;  // source: the file it came from (for messages)
  std::vector<Principle> principles;
  std::vector<CritiqueExample> critique_examples;
  std::vector<ComparisonExample> comparison_examples;
  JudgeFormat judge;

  // Index of the principle called `name`; errors list the names.
  size_t find(const std::string& name) const;
  // Principles with the tag (or the name) `tag`; errors when none has it.
  std::vector<size_t> with_tag(const std::string& tag) const;
  Json to_json() const;
};

// Reads and checks a constitution file: every error names the file, the field and the fix.
Constitution load_constitution(const std::filesystem::path& path);
Constitution parse_constitution(const Json& j, const std::string& where);

// `tpl` with {prompt}, {response}, {response_a}, {response_b}, {question} replaced (by `vars` keys).
std::string fill_template(const std::string& tpl, const std::vector<std::pair<std::string, std::string>>& vars);

// Draws `count` distinct principle indices from `pool` with probability proportional to weight.
std::vector<size_t> draw_principles(const Constitution& c, const std::vector<size_t>& pool, size_t count, uint64_t seed,
                                    uint64_t stream);

}  // namespace rlhf
