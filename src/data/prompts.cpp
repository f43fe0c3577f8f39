#include "data/prompts.h"

#include "core/error.h"
#include "data/chat_data.h"
#include "io/jsonl.h"

namespace rlhf {

std::vector<PromptRecord> load_prompts(const std::string& path, const Tokenizer& tok, const PromptOptions& o) {
  return parse_prompts(read_jsonl(path), tok, o);
}

std::vector<PromptRecord> parse_prompts(const std::vector<JsonlRecord>& records, const Tokenizer& tok,
                                        const PromptOptions& o) {
  LazyChatTemplate chat(tok, o.chat_template);
  std::vector<PromptRecord> out;
  for (const auto& r : records) {
    const Json& j = r.value;
    PromptRecord p;
    p.where = r.where();
    p.record = j;
    std::vector<ChatMessage> msgs;
    bool is_chat = false;
    if (j.contains("messages")) {
      msgs = parse_chat_messages(j["messages"], r.where() + ": messages");
      p.prompt = j["messages"];
      is_chat = true;
    } else {
      const char* key = j.contains("prompt") ? "prompt" : j.contains("query") ? "query" : j.contains("text") ? "text" : nullptr;
      RLHF_CHECK(key, r.where(), ": no \"prompt\" (text or messages) or \"messages\"");
      p.prompt = j[key];
      if (j[key].is_array()) {
        msgs = parse_chat_messages(j[key], r.where() + ": " + key);
        is_chat = true;
      } else {
        RLHF_CHECK(j[key].is_string(), r.where(), ": \"", key, "\" must be text or a list of messages");
        p.text = j[key].get<std::string>();
        if (o.chat) {
          msgs = {ChatMessage{ChatRole::user, p.text}};
          is_chat = true;
        }
      }
    }
    if (is_chat) {
      auto rendered = chat.get().render(msgs, /*add_generation_prompt=*/true, r.where());
      p.text = rendered.text;
      p.ids = tokenize_chat(tok, rendered).ids;
    } else {
      p.ids = tok.encode(p.text, o.add_special_tokens);
    }
    RLHF_CHECK(!p.ids.empty(), r.where(), ": the prompt is empty");
    RLHF_CHECK(o.n_ctx <= 0 || int64_t(p.ids.size()) + o.max_new_tokens <= o.n_ctx, r.where(), ": the prompt has ",
               p.ids.size(), " tokens; with --max-new-tokens ", o.max_new_tokens, " it exceeds the model's context of ",
               o.n_ctx, " tokens; shorten the prompt or lower --max-new-tokens");
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace rlhf
