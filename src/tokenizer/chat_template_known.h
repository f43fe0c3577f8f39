// The official chat templates rlhf renders, as Jinja sources, and the recognition of a
// tokenizer_config.json chat_template among them (by canonical form, see jinja_canonical.h; a
// default system prompt may be any string).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/chat_template.h"

namespace rlhf {

struct RecognisedChatTemplate {
  ChatFormat format;  // bos_token / eos_token left empty
  std::string name;   // which official template: "Qwen2.5-Instruct", "Llama-2-chat", ...
};

std::optional<RecognisedChatTemplate> recognise_chat_template(std::string_view jinja);

// The official Jinja source that renders `format` (its bos / eos tokens are variables there).
std::string official_chat_template(const ChatFormat& format);

// What a template that matched none resembles, and which --chat-template to try ("" when unclear).
std::string chat_template_hint(std::string_view jinja);

}  // namespace rlhf
