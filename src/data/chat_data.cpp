#include "data/chat_data.h"

#include "core/error.h"

namespace rlhf {

TokenizedExample tokenize_chat_record(const Json& record, const std::string& where, const Tokenizer& tok,
                                      const std::string& template_name, bool loss_on_all) {
  RLHF_FAIL(where, ": conversational records are wired up with the chat-template module");
}

}  // namespace rlhf
