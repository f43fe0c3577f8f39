// Chat templates: messages from JSON, the checks the official templates make, one renderer per
// family (each mirrors its Jinja source in chat_template_known.cpp line by line), and the one-pass
// tokenisation with assistant mask and completion start.
#include "tokenizer/chat_template.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/error.h"
#include "tokenizer/chat_template_known.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

std::string prefix(const std::string& where) { return where.empty() ? "" : where + ": "; }

// ---- messages ------------------------------------------------------------------------------------

ChatRole parse_role(const std::string& role, const std::string& where) {
  if (role == "system") return ChatRole::system;
  if (role == "user") return ChatRole::user;
  if (role == "assistant") return ChatRole::assistant;
  RLHF_FAIL(where, ": role \"", role, "\" is not supported; use \"system\", \"user\" or \"assistant\"");
}

// ---- text helpers --------------------------------------------------------------------------------

// Python's str.isspace(), which the templates' strip() and | trim use: Unicode White_Space and the
// separators U+001C..U+001F.
bool python_space(char32_t c) { return utf8::is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

// Python's str.strip() on valid UTF-8.
std::string python_strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t next = begin;
    if (!python_space(utf8::next(s, next))) break;
    begin = next;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    if (!python_space(utf8::next(s, next))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

// The rendered text, growing, with its assistant spans.
class ChatText {
 public:
  void add(std::string_view s) { out_.text += s; }
  // An assistant turn: `header` and `trailer` are template text, `body` (content + end-of-turn
  // marker) is what SFT trains on.
  void assistant(std::string_view header, std::string_view body, std::string_view trailer) {
    add(header);
    size_t begin = out_.text.size();
    add(body);
    out_.assistant_spans.push_back({begin, out_.text.size()});
    add(trailer);
  }
  RenderedChat finish() {
    out_.completion_begin = out_.text.size();
    return std::move(out_);
  }

 private:
  RenderedChat out_;
};

// ---- what the official templates accept ----------------------------------------------------------

const char* family_name(ChatFamily f) { return ChatTemplate::names().at(size_t(f)).c_str(); }

std::string message_at(const std::string& where, size_t i, ChatRole role) {
  return detail::cat(prefix(where), "message ", i, " (", chat_role_name(role), "): ");
}

// Llama 2 and Mistral raise "Conversation roles must alternate user/assistant/user/assistant/..."
// unless the messages after an optional first system message (Llama 2) alternate starting with a
// user message. Where the Jinja would silently drop a message (a later system message at an odd
// place, a lone system message), this refuses too.
void check_alternation(const std::vector<ChatMessage>& m, ChatFamily family, const std::string& where) {
  const char* name = family == ChatFamily::llama2 ? "Llama 2" : "Mistral";
  size_t first = family == ChatFamily::llama2 && m[0].role == ChatRole::system ? 1 : 0;
  for (size_t i = 0; i < m.size(); ++i) {
    RLHF_CHECK(m[i].role != ChatRole::system || i < first, message_at(where, i, m[i].role),
               family == ChatFamily::mistral
                   ? "Mistral's template has no system role; put the instructions into the first user message, "
                     "or choose a template with one (--chat-template)"
                   : "Llama 2's template takes a system message only as the first message");
    if (i < first) continue;
    ChatRole want = (i - first) % 2 == 0 ? ChatRole::user : ChatRole::assistant;
    RLHF_CHECK(m[i].role == want, message_at(where, i, m[i].role), name,
               "'s template needs the roles to alternate user/assistant/user/assistant/...",
               first ? " after the system message" : "", "; expected ",
               want == ChatRole::user ? "a user" : "an assistant", " message here");
  }
  RLHF_CHECK(m.size() > first, prefix(where), "a system message alone renders nothing with Llama 2's template; "
                                              "add a user message");
}

void check_messages(const std::vector<ChatMessage>& m, ChatFamily family, const std::string& where) {
  RLHF_CHECK(!m.empty(), prefix(where), "the conversation has no messages");
  for (size_t i = 0; i < m.size(); ++i) {
    size_t bad = utf8::find_invalid(m[i].content);
    RLHF_CHECK(bad == std::string::npos, message_at(where, i, m[i].role), "content is not valid UTF-8 (byte ", bad, ")");
  }
  if (family == ChatFamily::llama2 || family == ChatFamily::mistral) check_alternation(m, family, where);
}

// ---- one renderer per family ---------------------------------------------------------------------

void render_chatml(const ChatFormat& f, const std::vector<ChatMessage>& m, bool gen, ChatText& out) {
  if (!f.default_system.empty() && m[0].role != ChatRole::system)
    out.add("<|im_start|>system\n" + f.default_system + "<|im_end|>\n");
  for (const ChatMessage& msg : m) {
    std::string header = std::string("<|im_start|>") + chat_role_name(msg.role) + "\n";
    if (msg.role == ChatRole::assistant) out.assistant(header, msg.content + "<|im_end|>", "\n");
    else out.add(header + msg.content + "<|im_end|>\n");
  }
  if (gen) out.add("<|im_start|>assistant\n");
}

// Today's local date as Python's strftime("%d %b %Y") writes it in the C locale ("05 Mar 2025").
std::string today_dmy() {
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d %s %04d", tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900);
  return buf;
}

// Llama 3, 3.1 and 3.2: header, stripped content, <|eot_id|> per message. 3.1 and 3.2 first write a
// system header with the cut-off and the date, taking the first message's content when it is a
// system one.
void render_llama3(const ChatFormat& f, const std::vector<ChatMessage>& m, bool gen, ChatText& out) {
  size_t first = 0;
  if (f.family != ChatFamily::llama3) {
    std::string date = !f.date.empty() ? f.date : f.family == ChatFamily::llama32 ? today_dmy() : "26 Jul 2024";
    first = m[0].role == ChatRole::system ? 1 : 0;
    out.add(f.bos_token + "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n" +
            "Today Date: " + date + "\n\n" + (first ? python_strip(m[0].content) : std::string()) + "<|eot_id|>");
  }
  for (size_t i = first; i < m.size(); ++i) {
    std::string header = (i == 0 && f.family == ChatFamily::llama3 ? f.bos_token : std::string()) + "<|start_header_id|>" +
                         chat_role_name(m[i].role) + "<|end_header_id|>\n\n";
    std::string body = python_strip(m[i].content) + "<|eot_id|>";
    if (m[i].role == ChatRole::assistant) out.assistant(header, body, "");
    else out.add(header + body);
  }
  if (gen) out.add("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// No generation prompt: the prompt ends with " [/INST]" already.
void render_llama2(const ChatFormat& f, const std::vector<ChatMessage>& m, ChatText& out) {
  size_t first = m[0].role == ChatRole::system ? 1 : 0;
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == ChatRole::assistant) {
      out.assistant(" ", python_strip(m[i].content) + " " + f.eos_token, "");
      continue;
    }
    std::string content = m[i].content;
    if (i == first && first == 1) content = "<<SYS>>\n" + m[0].content + "\n<</SYS>>\n\n" + content;
    out.add(f.bos_token + "[INST] " + python_strip(content) + " [/INST]");
  }
}

void render_mistral(const ChatFormat& f, const std::vector<ChatMessage>& m, ChatText& out) {
  out.add(f.bos_token);
  for (const ChatMessage& msg : m) {
    if (msg.role == ChatRole::user) out.add("[INST] " + msg.content + " [/INST]");
    else out.assistant("", msg.content + f.eos_token, f.space_after_eos ? " " : "");
  }
}

void render_zephyr(const ChatFormat& f, const std::vector<ChatMessage>& m, bool gen, ChatText& out) {
  for (const ChatMessage& msg : m) {
    std::string header = std::string("<|") + chat_role_name(msg.role) + "|>\n";
    if (msg.role == ChatRole::assistant) out.assistant(header, msg.content + f.eos_token, "\n");
    else out.add(header + msg.content + f.eos_token + "\n");
  }
  if (gen) out.add("<|assistant|>\n");
}

void render_plain(const ChatFormat& f, const std::vector<ChatMessage>& m, bool gen, ChatText& out) {
  out.add(f.bos_token);
  for (const ChatMessage& msg : m) {
    if (msg.role == ChatRole::system) out.add(msg.content + "\n\n");
    else if (msg.role == ChatRole::user) out.add("User: " + msg.content + "\n");
    else out.assistant("Assistant: ", msg.content + f.eos_token, "\n");
  }
  if (gen) out.add("Assistant:");
}

// ---- tokens --------------------------------------------------------------------------------------

// A token's bytes; one with an empty range counts as the byte where it sits.
std::pair<size_t, size_t> token_bytes(const std::pair<int64_t, int64_t>& offsets) {
  size_t begin = size_t(offsets.first);
  return {begin, std::max(size_t(offsets.second), begin + 1)};
}

// `spans` are sorted and disjoint.
bool overlaps(const std::vector<TextSpan>& spans, size_t begin, size_t end) {
  auto it = std::partition_point(spans.begin(), spans.end(), [&](const TextSpan& s) { return s.end <= begin; });
  return it != spans.end() && it->begin < end;
}

}  // namespace

const char* chat_role_name(ChatRole role) {
  switch (role) {
    case ChatRole::system: return "system";
    case ChatRole::user: return "user";
    case ChatRole::assistant: return "assistant";
  }
  return "?";
}

ChatMessage parse_chat_message(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": a message must be an object {\"role\": ..., \"content\": ...}, not ",
             json_type_name(j));
  ChatMessage m;
  m.role = parse_role(json_require<std::string>(j, "role", where), where);
  auto content = j.find("content");
  RLHF_CHECK(content != j.end() && content->is_string(), where, ": \"content\" must be a string (it is ",
             content == j.end() ? "missing" : json_type_name(*content), ")");
  m.content = content->get<std::string>();
  return m;
}

std::vector<ChatMessage> parse_chat_messages(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_array(), where, ": expected an array of {\"role\", \"content\"} messages, not ", json_type_name(j));
  RLHF_CHECK(!j.empty(), where, ": the conversation has no messages");
  std::vector<ChatMessage> messages;
  messages.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) messages.push_back(parse_chat_message(j[i], detail::cat(where, "[", i, "]")));
  return messages;
}

// ---- ChatTemplate ----------------------------------------------------------------------------------

const std::vector<std::string>& ChatTemplate::names() {
  static const std::vector<std::string> all = {"chatml", "llama3", "llama3.1", "llama3.2", "llama2",
                                                      "mistral", "zephyr", "plain"};
  return all;
}

std::string ChatTemplate::name_list(std::string_view separator) {
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : std::string(separator)) + n;
  return list;
}

ChatTemplate::ChatTemplate(ChatFormat format, std::string origin) : format_(std::move(format)), origin_(std::move(origin)) {}

ChatTemplate ChatTemplate::named(std::string_view name, std::string bos_token, std::string eos_token) {
  ChatFormat f;
  f.bos_token = std::move(bos_token);
  f.eos_token = std::move(eos_token);
  const auto& all = names();
  auto it = std::find(all.begin(), all.end(), name);
  RLHF_CHECK(it != all.end(), "unknown chat template \"", name, "\"; use one of ", name_list(),
             " (plain suits base models)");
  f.family = ChatFamily(it - all.begin());  // names() lists the families in enum order
  return ChatTemplate(std::move(f), "chosen by name");
}

ChatTemplate ChatTemplate::recognise(std::string_view jinja, std::string bos_token, std::string eos_token) {
  std::optional<RecognisedChatTemplate> r = recognise_chat_template(jinja);
  if (!r) {
    std::string hint = chat_template_hint(jinja);
    RLHF_FAIL("the tokenizer's chat_template (tokenizer_config.json) is not one of the official templates rlhf "
              "renders", hint.empty() ? "" : " (" + hint + ")", "; pass --chat-template NAME with NAME one of ",
              name_list(), " (plain suits base models)");
  }
  r->format.bos_token = std::move(bos_token);
  r->format.eos_token = std::move(eos_token);
  ChatTemplate t(std::move(r->format), "recognised as " + r->name + "'s chat_template");
  t.source_ = std::string(jinja);
  return t;
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tok, std::string_view name) {
  if (name.empty())
    RLHF_CHECK(!tok.chat_template().empty(), "the tokenizer has no chat_template (tokenizer_config.json); pass "
               "--chat-template NAME (", name_list(), "; plain suits base models)");
  ChatTemplate t = name.empty() ? recognise(tok.chat_template(), tok.bos_token(), tok.eos_token())
                                : named(name, tok.bos_token(), tok.eos_token());
  t.check_tokenizer(tok);
  return t;
}

// The special tokens the family writes must exist and encode as one token each, or the model would
// see markers spelled out in pieces (a base model's tokenizer with --chat-template chatml).
void ChatTemplate::check_tokenizer(const Tokenizer& tok) const {
  const ChatFamily f = format_.family;
  const char* name = family_name(f);
  const bool llama3 = is_llama3_family(f);
  bool needs_bos = llama3 || f == ChatFamily::llama2 || f == ChatFamily::mistral;
  bool needs_eos = f != ChatFamily::chatml && !llama3;
  RLHF_CHECK(!needs_bos || tok.bos_id() >= 0, "chat template ", name, " writes the BOS token, but the tokenizer "
             "has no bos_token (tokenizer_config.json); add it there, or choose another template");
  RLHF_CHECK(!needs_eos || tok.eos_id() >= 0, "chat template ", name, " ends each answer with the EOS token, but "
             "the tokenizer has no eos_token (tokenizer_config.json); add it there, or choose another template");
  std::vector<std::string> markers;
  if (f == ChatFamily::chatml) markers = {"<|im_start|>", "<|im_end|>"};
  if (llama3) markers = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  if (needs_bos) markers.push_back(format_.bos_token);
  if (needs_eos) markers.push_back(format_.eos_token);
  for (const std::string& marker : markers)
    RLHF_CHECK(tok.encode(marker).size() == 1, "chat template ", name, " writes \"", marker, "\", which this "
               "tokenizer does not encode as one token (a base model's tokenizer?); use --chat-template plain, or "
               "a tokenizer with that special token");
}

RenderedChat ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  const std::string& where) const {
  check_messages(messages, format_.family, where);
  ChatText out;
  switch (format_.family) {
    case ChatFamily::chatml: render_chatml(format_, messages, add_generation_prompt, out); break;
    case ChatFamily::llama3:
    case ChatFamily::llama31:
    case ChatFamily::llama32: render_llama3(format_, messages, add_generation_prompt, out); break;
    case ChatFamily::llama2: render_llama2(format_, messages, out); break;
    case ChatFamily::mistral: render_mistral(format_, messages, out); break;
    case ChatFamily::zephyr: render_zephyr(format_, messages, add_generation_prompt, out); break;
    case ChatFamily::plain: render_plain(format_, messages, add_generation_prompt, out); break;
  }
  return out.finish();
}

RenderedChat ChatTemplate::render_prompt_completion(const std::vector<ChatMessage>& prompt,
                                                    const std::vector<ChatMessage>& completion,
                                                    const std::string& where) const {
  RLHF_CHECK(!prompt.empty(), prefix(where), "the prompt has no messages");
  RLHF_CHECK(!completion.empty() && completion[0].role == ChatRole::assistant, prefix(where),
             "the completion must start with an assistant message");
  RenderedChat head = render(prompt, /*add_generation_prompt=*/true, where);
  std::vector<ChatMessage> all = prompt;
  all.insert(all.end(), completion.begin(), completion.end());
  RenderedChat full = render(all, /*add_generation_prompt=*/false, where);
  RLHF_CHECK(full.text.compare(0, head.text.size(), head.text) == 0, prefix(where), "chat template ",
             family_name(format_.family), " renders the prompt differently inside the whole conversation, so "
             "prompt and completion cannot be split");
  full.completion_begin = head.text.size();
  std::erase_if(full.assistant_spans, [&](const TextSpan& s) { return s.end <= full.completion_begin; });
  RLHF_CHECK(full.assistant_spans.empty() || full.assistant_spans[0].begin >= full.completion_begin, prefix(where),
             "chat template ", family_name(format_.family), ": an answer starts inside the generation prompt");
  return full;
}

std::string ChatTemplate::jinja() const { return source_.empty() ? official_chat_template(format_) : source_; }

std::string ChatTemplate::describe() const {
  std::string d = family_name(format_.family);
  if (!format_.default_system.empty()) d += ", default system prompt \"" + format_.default_system + "\"";
  if (format_.space_after_eos) d += ", \"" + format_.eos_token + " \" after each answer (v0.1)";
  return origin_.empty() ? d : d + " (" + origin_ + ")";
}

ChatTokens tokenize_chat(const Tokenizer& tok, const RenderedChat& chat) {
  Encoding enc = tok.encode_with_offsets(chat.text, /*add_special_tokens=*/false);
  ChatTokens out;
  out.ids = std::move(enc.ids);
  out.assistant_mask.assign(out.ids.size(), 0);
  out.completion_start = out.ids.size();
  for (size_t i = 0; i < out.ids.size(); ++i) {
    auto [begin, end] = token_bytes(enc.offsets[i]);
    out.assistant_mask[i] = overlaps(chat.assistant_spans, begin, end);
    if (out.completion_start == out.ids.size() && end > chat.completion_begin) out.completion_start = i;
  }
  return out;
}

}  // namespace rlhf
