// Prompt files for sampling (generate, RL, evaluation): JSONL records {"prompt": text | [messages]}
// or {"messages": [...]} ("query" / "text" are accepted for text prompts). With `chat`, a text prompt
// is rendered as one user turn; message prompts always go through the chat template, followed by
// the assistant header that sampling continues from.
#pragma once
#include <string>
#include <vector>

#include "io/json.h"
#include "io/jsonl.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

struct PromptRecord {
  std::string text;            // as the model sees it (rendered when chat)
  std::vector<int64_t> ids;    // policy token ids
  Json prompt;                 // the record's prompt as written (text or messages)
  Json record;                 // the whole record (other fields travel along, e.g. "family")
  std::string where;           // "file:line"
};

struct PromptOptions {
  bool chat = false;           // render text prompts as a user turn
  std::string chat_template;   // "" = the tokenizer's
  bool add_special_tokens = true;  // plain text prompts: add BOS etc.
  int64_t max_new_tokens = 0;  // checked with n_ctx: prompt + max_new_tokens must fit
  int64_t n_ctx = 0;           // 0 = no check
};

std::vector<PromptRecord> load_prompts(const std::string& path, const Tokenizer& tok, const PromptOptions& o);
// The same for records already read (e.g. one built from --prompt).
std::vector<PromptRecord> parse_prompts(const std::vector<JsonlRecord>& records, const Tokenizer& tok,
                                        const PromptOptions& o);

// The user text a rater or a judge reads from a prompt field: the text itself, or the last user
// message (errors name `where`).
std::string prompt_user_text(const Json& prompt, const std::string& where);

// The responses of a samples record (rlhf generate's "responses", or one "response"), trimmed of the
// space that follows the assistant header; errors name the record.
std::vector<std::string> sample_responses(const JsonlRecord& r);

}  // namespace rlhf
