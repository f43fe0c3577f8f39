// Chat templates: the text a chat model was trained on for a conversation, rendered by rlhf's Jinja
// engine (src/tokenizer/jinja/) exactly as Hugging Face's apply_chat_template(tokenize=False)
// renders it; the byte spans of that text which SFT trains on; and its tokenisation, once, as a
// whole (tokenize_chat() is apply_chat_template's tokenize=True: no extra special tokens, the
// template writes BOS itself where the model expects it).
//
// Where a template comes from: --chat-template NAME (a built-in: the official sources of ChatML,
// Llama 3 / 3.1 / 3.2, Llama 2, Mistral, Zephyr and rlhf's `plain`), --chat-template-path FILE, or
// the tokenizer's own (chat_template.jinja next to it, else tokenizer_config.json's chat_template;
// of the list form, "tool_use" when tools are given and it exists, else "default").
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.h"
#include "tokenizer/jinja/template.h"

namespace rlhf {

class Tokenizer;

enum class ChatRole { system, user, assistant, tool };
const char* chat_role_name(ChatRole role);

struct ChatMessage {
  ChatRole role = ChatRole::user;
  std::string content;  // the text (of every text part, joined, when the content is a list of parts)
  // What the template sees besides role and content: the content as a list of {"type": "text",
  // "text": ...} parts (null when it is a string), and the message's other scalar keys (a tool
  // reply's "name" or "tool_call_id").
  Json content_parts;
  Json extra = Json::object();
};

// A message from JSON: {"role": "system" | "user" | "assistant" | "tool", "content": "..." or
// [{"type": "text", "text": "..."}, ...]} plus scalar keys such as "name" and "tool_call_id", which the
// template sees too; a conversation is a JSON array of them. An assistant message's "tool_calls" are
// refused for training (their arguments' key order, which tojson renders, is not kept by the data
// readers): `rlhf chat-template` renders them. `where` starts every error message
// ("data.jsonl:12: messages").
ChatMessage parse_chat_message(const Json& j, const std::string& where);
std::vector<ChatMessage> parse_chat_messages(const Json& j, const std::string& where);

// Bytes [begin, end) of a rendered text.
struct TextSpan {
  size_t begin = 0, end = 0;
  bool operator==(const TextSpan&) const = default;
};

struct RenderedChat {
  std::string text;
  // What SFT trains on, one span per assistant turn. From the template's {% generation %} blocks
  // where it has them; otherwise (TRL's way) what rendering messages[:i+1] adds to messages[:i]
  // rendered with the generation prompt: the answer and its end-of-turn marker, not the role header
  // nor the whitespace that separates it from the next turn. In the prompt + completion form, only
  // the completion's.
  std::vector<TextSpan> assistant_spans;
  // text[0, completion_begin) is the prompt (ending with the generation prompt), the rest the
  // completion; text.size() when rendered without a completion.
  size_t completion_begin = 0;
};

struct ChatTokens {
  std::vector<int64_t> ids;
  // 1 for a token with at least one byte inside an assistant span (a token straddling a span
  // boundary holds assistant bytes the model must emit).
  std::vector<uint8_t> assistant_mask;
  // ids[0, completion_start) are the prompt: the completion starts at the first token holding a byte
  // of it. ids.size() when there is no completion.
  size_t completion_start = 0;
};

// strftime_now's date for every render in this process ("YYYY-MM-DD"; "" = today's local date, as
// transformers does): the training commands' --date, so that renders are reproducible.
void set_chat_template_date(std::string date);
const std::string& chat_template_date();

class ChatTemplate {
 public:
  // The built-in names --chat-template takes: chatml, llama3, llama3.1, llama3.2, llama2, mistral,
  // zephyr, plain; name_list joins them for help texts and error messages.
  static const std::vector<std::string>& names();
  static std::string name_list(std::string_view separator = ", ");

  // The template for a tokenizer. `spec` is a built-in name, a path to a Jinja file
  // (--chat-template-path), or empty for the tokenizer's own template.
  static ChatTemplate for_tokenizer(const Tokenizer& tok, std::string_view spec = "");
  // A built-in template with these special tokens.
  static ChatTemplate named(std::string_view name, std::string bos_token, std::string eos_token);

  // A Jinja source; `special_tokens` are the variables transformers passes from the tokenizer's
  // special_tokens_map (bos_token, eos_token, ...); `tool_use` the template for renders with tools
  // ("" = the same). Syntax errors name `origin`.
  ChatTemplate(std::string source, std::string origin, jinja::Vars special_tokens, std::string tool_use = "");

  // The conversation as text; with add_generation_prompt, followed by what sampling continues
  // from. Whatever the template refuses (raise_exception) is an error; `where` starts errors.
  RenderedChat render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = false,
                      const std::string& where = "") const;
  // `prompt` rendered with the generation prompt, then `completion` (which starts with an assistant
  // message): the text is exactly render(prompt + completion)'s.
  RenderedChat render_prompt_completion(const std::vector<ChatMessage>& prompt,
                                        const std::vector<ChatMessage>& completion,
                                        const std::string& where = "") const;
  // Any conversation as apply_chat_template takes it: messages with tool_calls, tool replies,
  // content parts; tools (null = none); extra keyword variables (enable_thinking, ...).
  std::string render_json(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                          bool add_generation_prompt, const jinja::Vars& extra = {}) const;

  // The Jinja source (for the tokenizer_config.json of a model fine-tuned with it).
  std::string jinja() const { return source_; }
  // "llama3 (built-in)", "the tokenizer's chat_template (tokenizer_config.json)", ...
  std::string describe() const { return origin_; }
  bool has_generation_blocks() const { return tpl_->has_generation(); }

 private:
  jinja::RenderOutput run(const jinja::Value& messages, const jinja::Value& tools, bool add_generation_prompt,
                          const jinja::Vars& extra) const;
  std::string render_text(const std::vector<ChatMessage>& messages, size_t count, bool add_generation_prompt) const;

  std::string source_, origin_;
  std::shared_ptr<const jinja::Template> tpl_, tool_tpl_;
  jinja::Vars special_tokens_;
};

// Tokenises the rendered text once, as a whole, without the tokenizer's own special tokens, and
// marks the assistant tokens and the completion start (see ChatTokens).
ChatTokens tokenize_chat(const Tokenizer& tok, const RenderedChat& chat);

}  // namespace rlhf
