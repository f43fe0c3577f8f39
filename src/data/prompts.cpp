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

std::vector<std::string> sample_responses(const JsonlRecord& r) {
  const Json& j = r.value;
  std::vector<std::string> out;
  auto take = [&](const Json& v) {
    RLHF_CHECK(v.is_string(), r.where(), ": responses must be strings");
    std::string s = v.get<std::string>();
    size_t a = s.find_first_not_of(" \t\n"), b = s.find_last_not_of(" \t\n");
    out.push_back(a == std::string::npos ? std::string() : s.substr(a, b - a + 1));
  };
  if (j.contains("responses")) {
    RLHF_CHECK(j["responses"].is_array(), r.where(), ": \"responses\" must be a list of strings");
    for (auto& v : j["responses"]) take(v);
  } else {
    RLHF_CHECK(j.contains("response"), r.where(), ": no \"responses\" (list) or \"response\" field");
    take(j["response"]);
  }
  return out;
}

std::string prompt_user_text(const Json& prompt, const std::string& where) {
  if (prompt.is_string()) return prompt.get<std::string>();
  RLHF_CHECK(prompt.is_array(), where, ": \"prompt\" must be text or a list of messages");
  for (auto it = prompt.rbegin(); it != prompt.rend(); ++it)
    if (it->is_object() && it->value("role", "") == "user" && (*it)["content"].is_string())
      return (*it)["content"].get<std::string>();
  RLHF_FAIL(where, ": the prompt has no user message");
}
}  // namespace rlhf
