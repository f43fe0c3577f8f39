#include "data/chat_data.h"

#include "core/error.h"

namespace rlhf {

const ChatTemplate& LazyChatTemplate::get() {
  if (!tpl_) tpl_ = std::make_unique<ChatTemplate>(ChatTemplate::for_tokenizer(tok_, name_));
  return *tpl_;
}

namespace {
TokenizedExample from_chat_tokens(ChatTokens ct, bool loss_on_all) {
  TokenizedExample ex;
  ex.ids = std::move(ct.ids);
  ex.loss_mask = loss_on_all ? std::vector<uint8_t>(ex.ids.size(), 1) : std::move(ct.assistant_mask);
  return ex;
}
}  // namespace

TokenizedExample tokenize_chat_completion(const std::vector<ChatMessage>& prompt,
                                          const std::vector<ChatMessage>& completion, const std::string& where,
                                          const Tokenizer& tok, const ChatTemplate& tpl, bool loss_on_all) {
  return from_chat_tokens(tokenize_chat(tok, tpl.render_prompt_completion(prompt, completion, where)), loss_on_all);
}

TokenizedExample tokenize_chat_record(const Json& record, const std::string& where, const Tokenizer& tok,
                                      const ChatTemplate& tpl, bool loss_on_all) {
  if (record.contains("messages")) {
    auto msgs = parse_chat_messages(record["messages"], where + ": messages");
    return from_chat_tokens(tokenize_chat(tok, tpl.render(msgs, false, where)), loss_on_all);
  }
  RLHF_CHECK(record.contains("prompt") && record.contains("completion"), where,
             ": a conversational record needs \"messages\", or \"prompt\" and \"completion\" message lists");
  auto prompt = parse_chat_messages(record["prompt"], where + ": prompt");
  auto completion = parse_chat_messages(record["completion"], where + ": completion");
  return tokenize_chat_completion(prompt, completion, where, tok, tpl, loss_on_all);
}

}  // namespace rlhf
