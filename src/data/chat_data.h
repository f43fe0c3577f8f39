// Conversational training records ({"messages": [...]} or {"prompt": [messages], "completion":
// [messages]}) rendered with the model's chat template and tokenised once as a whole; the loss
// mask covers assistant content (or everything with loss_on_all).
#pragma once
#include <string>

#include "data/example.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

TokenizedExample tokenize_chat_record(const Json& record, const std::string& where, const Tokenizer& tok,
                                      const std::string& template_name, bool loss_on_all);

}  // namespace rlhf
