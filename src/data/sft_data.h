// Supervised fine-tuning data in the JSONL formats TRL users have:
//   {"text": "..."}                                    language modelling: every token is trained
//   {"prompt": "...", "completion": "..."}             only the completion is trained (by default)
//   {"messages": [{"role": ..., "content": ...}, ...]} only assistant turns are trained (by default)
//   {"prompt": [messages], "completion": [messages]}   conversational prompt/completion
// A record with "label": false (KTO's undesirable completion) is skipped and counted, not trained on.
// Each example is tokenised once as a whole (prompt and completion are never tokenised apart and
// glued), truncated to max_length keeping its start, and dropped with a count if nothing trainable
// is left.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/example.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

struct SftDataOptions {
  int64_t max_length = 1024;
  bool loss_on_all = false;      // train on prompt tokens too (--loss-on all)
  bool add_eos = true;           // end text / completions with EOS (trained) unless already there
  bool skip_bad_lines = false;
  std::string chat_template;     // template name for "messages" data ("" = from tokenizer_config.json)
};

struct SftDataStats {
  int64_t examples = 0, bad_lines = 0, truncated = 0, dropped_no_loss = 0;
  int64_t undesirable = 0;  // {"prompt", "completion", "label": false} records, skipped
  int64_t tokens = 0, loss_tokens = 0;
  std::string describe() const;
};

std::vector<TokenizedExample> load_sft_data(const std::filesystem::path& path, const Tokenizer& tok,
                                            const SftDataOptions& opts, SftDataStats* stats = nullptr);

// One record (already parsed) to an example; throws rlhf::Error naming `where` and the field.
// `chat` (optional) caches the chat template across records.
class LazyChatTemplate;
TokenizedExample tokenize_sft_record(const Json& j, const std::string& where, const Tokenizer& tok,
                                     const SftDataOptions& opts, LazyChatTemplate* chat = nullptr);

}  // namespace rlhf
