// Supervised Constitutional AI (SL-CAI, Bai et al. 2022): the model answers each prompt, then for N
// rounds critiques its latest answer under a principle drawn for that prompt and round and revises it.
// Each step is a chat turn: [few-shot examples] user prompt, assistant answer, user critique request
// -> critique; + assistant critique, user revision request -> revision. A round starts from the latest
// revision (the conversation is not carried over, so it stays within small contexts). All prompts of a
// step go through the batched KV-cache generator together.
#pragma once
#include <string>
#include <vector>

#include "feedback/constitution.h"
#include "feedback/judge.h"
#include "io/json.h"

namespace rlhf {

struct ReviseOptions {
  int64_t rounds = 4;
  int64_t max_new_tokens = 128;     // per answer, critique and revision
  double temperature = 0.0;         // 0 = greedy (as transformers' generate(do_sample=False))
  uint64_t seed = 1;                // principle draws and sampling
  int64_t batch_rows = 32;
  std::string principle_tag;        // draw only principles with this tag or name ("" = all)
  int64_t few_shot = -1;            // critique examples of the constitution before each prompt (-1 = all)
  bool progress = false;
};

struct RevisionRound {
  std::string principle, critique_request, critique, revision_request, revision;
};

struct RevisionTranscript {
  Json prompt;          // as given (text or messages)
  Json record;          // the whole prompt record (other fields travel along)
  std::string original; // the first answer
  std::vector<RevisionRound> rounds;
  std::string final_answer;  // the latest non-empty revision (the original when every one was empty)
  Json to_json() const;
};

struct ReviseStats {
  int64_t generated_tokens = 0, sequences = 0;
  double seconds = 0;
};

// `m` needs a chat template (m.chat). prompts: {"prompt": text | [messages]} values.
std::vector<RevisionTranscript> cai_revise(JudgeModel& m, const Constitution& c, const std::vector<Json>& records,
                                           const ReviseOptions& o, ReviseStats* stats = nullptr);

// The messages of one step (for tests and the Python reference): the few-shot turns, the prompt, the
// answer, the critique request and, when `critique` is given, the critique and the revision request.
std::vector<ChatMessage> revision_messages(const Constitution& c, const Json& prompt, const std::string& answer,
                                           size_t principle, const std::string* critique, int64_t few_shot);

}  // namespace rlhf
