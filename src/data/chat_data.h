// Conversational training records rendered with the model's chat template and tokenised once as a
// whole: {"messages": [...]} (loss on assistant turns) or {"prompt": [messages], "completion":
// [messages]} (loss on the completion's assistant turns).
#pragma once
#include <memory>
#include <string>

#include "data/example.h"
#include "io/json.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

// The chat template for a data file, resolved on first use (so files without conversations need
// no template).
class LazyChatTemplate {
 public:
  LazyChatTemplate(const Tokenizer& tok, std::string name) : tok_(tok), name_(std::move(name)) {}
  const ChatTemplate& get();

 private:
  const Tokenizer& tok_;
  std::string name_;
  std::unique_ptr<ChatTemplate> tpl_;
};

TokenizedExample tokenize_chat_record(const Json& record, const std::string& where, const Tokenizer& tok,
                                      const ChatTemplate& tpl, bool loss_on_all);

// A prompt conversation followed by completion messages, tokenised as one: ids and the mask of the
// completion's assistant tokens.
TokenizedExample tokenize_chat_completion(const std::vector<ChatMessage>& prompt,
                                          const std::vector<ChatMessage>& completion, const std::string& where,
                                          const Tokenizer& tok, const ChatTemplate& tpl, bool loss_on_all = false);

}  // namespace rlhf
