// Chat templates: the text a chat model was trained on for a conversation of system / user /
// assistant messages, for the template families in common use (ChatML with Qwen2 / Qwen2.5's default
// system prompt, Llama 3, Llama 3.1 / 3.2, Llama 2 [INST] with <<SYS>>, Mistral [INST], Zephyr) and `plain` for base
// models; the byte spans of that text which SFT trains on; and its tokenisation, once, as a whole.
//
// Rendering equals Hugging Face's apply_chat_template(..., tokenize=False) with the official
// templates (tests/data/chat_templates/), and tokenize_chat() its tokenize=True: the templates write
// BOS themselves where the model expects it and the text is encoded without the tokenizer's own
// special tokens, so BOS and EOS are never doubled or missing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.h"

namespace rlhf {

class Tokenizer;

enum class ChatRole { system, user, assistant };
const char* chat_role_name(ChatRole role);

struct ChatMessage {
  ChatRole role = ChatRole::user;
  std::string content;
};

// A message from JSON: {"role": "system" | "user" | "assistant", "content": "..."} (other keys are
// ignored); a conversation is a JSON array of them. `where` starts every error message
// ("data.jsonl:12: messages").
ChatMessage parse_chat_message(const Json& j, const std::string& where);
std::vector<ChatMessage> parse_chat_messages(const Json& j, const std::string& where);

// The template families. `plain` is rlhf's own, for base models: bos_token (when the tokenizer has
// one), then a system message as content + "\n\n", a user message as "User: " + content + "\n", an
// assistant message as "Assistant: " + content + eos_token + "\n"; the generation prompt is
// "Assistant:", without the space, which stays in the answer's first token as BPE vocabularies expect.
// llama31 is Llama 3's format behind a system header that always states the knowledge cut-off and
// the date: "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + the system message;
// llama32 the same with today's date (local time, as transformers' strftime_now gives it).
enum class ChatFamily { chatml, llama3, llama31, llama32, llama2, mistral, zephyr, plain };
// Llama 3, 3.1 or 3.2: the same headers and <|eot_id|>, only the system header differs.
inline bool is_llama3_family(ChatFamily f) {
  return f == ChatFamily::llama3 || f == ChatFamily::llama31 || f == ChatFamily::llama32;
}

// Everything that decides the rendered text.
struct ChatFormat {
  ChatFamily family = ChatFamily::chatml;
  std::string default_system;        // chatml: the system prompt when the conversation has none ("" = none)
  bool space_after_eos = false;      // mistral: Mistral-7B-Instruct-v0.1 writes "</s> " after each answer
  std::string date;                  // llama31 / llama32: the "Today Date" ("" = 26 Jul 2024 / today), as
                                     // apply_chat_template's date_string
  std::string bos_token, eos_token;  // the tokenizer's, which the templates write as text
  bool operator==(const ChatFormat&) const = default;
};

// Bytes [begin, end) of a rendered text.
struct TextSpan {
  size_t begin = 0, end = 0;
  bool operator==(const TextSpan&) const = default;
};

struct RenderedChat {
  std::string text;
  // What SFT trains on: per assistant turn its content and the end-of-turn marker the model must
  // learn to emit (<|im_end|>, <|eot_id|>, </s>), with what the template writes between the two
  // (Llama 2's " " before </s>); not the role header before it, nor the separator after the marker.
  // In the prompt + completion form, only the completion's assistant turns.
  std::vector<TextSpan> assistant_spans;
  // text[0, completion_begin) is the prompt (ending with the generation prompt), the rest the
  // completion; text.size() when rendered without a completion.
  size_t completion_begin = 0;
};

struct ChatTokens {
  std::vector<int64_t> ids;
  // 1 for a token with at least one byte inside an assistant span. A token that straddles a span
  // boundary (Llama 2's "▁Hello", whose "▁" is the template's space before the answer; a "\n\n"
  // merging a header's newline with an answer's leading newline) is an assistant token: the model
  // must emit it to produce the assistant bytes it holds.
  std::vector<uint8_t> assistant_mask;
  // ids[0, completion_start) are the prompt. The completion starts at the first token holding a byte
  // of it, so a token that BPE merged across the prompt / completion boundary belongs to the
  // completion (and the prompt ids then lack that token's prompt bytes). ids.size() when there is no
  // completion.
  size_t completion_start = 0;
};

class ChatTemplate {
 public:
  // The names --chat-template takes, in ChatFamily order: chatml, llama3, llama3.1, llama3.2, llama2,
  // mistral, zephyr, plain; name_list joins them for help texts and error messages.
  static const std::vector<std::string>& names();
  static std::string name_list(std::string_view separator = ", ");

  // The template for a tokenizer: the named one, or (name empty) the one its tokenizer_config.json's
  // chat_template is recognised as. Checks that the tokenizer has what the template needs (BOS / EOS,
  // and markers such as <|im_start|> encoding as single tokens).
  static ChatTemplate for_tokenizer(const Tokenizer& tok, std::string_view name = "");
  static ChatTemplate named(std::string_view name, std::string bos_token, std::string eos_token);
  // One of the official templates (whitespace that Jinja does not render may differ), else an error
  // asking for --chat-template NAME.
  static ChatTemplate recognise(std::string_view jinja, std::string bos_token, std::string eos_token);

  explicit ChatTemplate(ChatFormat format, std::string origin = "");

  // The conversation as text; with add_generation_prompt, followed by the assistant header that
  // sampling continues from (Llama 2 and Mistral have none: the prompt already ends in [/INST]).
  // Roles and their order are checked as the official template checks them; `where` starts errors.
  RenderedChat render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = false,
                      const std::string& where = "") const;
  // `prompt` rendered with the generation prompt, then `completion` (which starts with an assistant
  // message): the text is exactly render(prompt + completion)'s.
  RenderedChat render_prompt_completion(const std::vector<ChatMessage>& prompt,
                                        const std::vector<ChatMessage>& completion,
                                        const std::string& where = "") const;

  // A Hugging Face chat_template (Jinja) that renders as this template does, for the
  // tokenizer_config.json of a model fine-tuned with it: the recognised source, or the official one.
  std::string jinja() const;
  // "chatml, default system prompt \"You are a helpful assistant.\" (Qwen2 tokenizer_config.json)".
  std::string describe() const;
  const ChatFormat& format() const { return format_; }

 private:
  void check_tokenizer(const Tokenizer& tok) const;

  ChatFormat format_;
  std::string origin_;  // where the template comes from, for describe()
  std::string source_;  // the recognised Jinja source ("" for a named template)
};

// Tokenises the rendered text once, as a whole, without the tokenizer's own special tokens, and
// marks the assistant tokens and the completion start (see ChatTokens).
ChatTokens tokenize_chat(const Tokenizer& tok, const RenderedChat& chat);

}  // namespace rlhf
