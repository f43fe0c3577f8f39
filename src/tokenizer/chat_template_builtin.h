// The chat templates rlhf ships (--chat-template NAME): the official Jinja sources of the families
// in common use and rlhf's own `plain` for base models.
#pragma once
#include <string_view>
#include <vector>

namespace rlhf {

struct BuiltinChatTemplate {
  std::string_view name;    // what --chat-template takes: chatml, llama3, llama3.1, ...
  std::string_view file;    // its file under tests/data/chat_templates/
  std::string_view source;  // the Jinja source
};

const std::vector<BuiltinChatTemplate>& builtin_chat_templates();

}  // namespace rlhf
