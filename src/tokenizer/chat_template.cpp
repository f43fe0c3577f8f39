// Chat templates over the Jinja engine: where the template comes from, the variables transformers
// passes it, the assistant spans (generation blocks, else prefix by prefix) and the one-pass
// tokenisation with assistant mask and completion start.
#include "tokenizer/chat_template.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/chat_template_builtin.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

std::string prefix(const std::string& where) { return where.empty() ? "" : where + ": "; }

std::string& date_setting() {
  static std::string date;
  return date;
}

ChatRole parse_role(const std::string& role, const std::string& where) {
  if (role == "system") return ChatRole::system;
  if (role == "user") return ChatRole::user;
  if (role == "assistant") return ChatRole::assistant;
  if (role == "tool") return ChatRole::tool;
  RLHF_FAIL(where, ": role \"", role, "\" is not supported; use \"system\", \"user\", \"assistant\" or \"tool\"");
}

// transformers' special_tokens_map: the tokens the tokenizer has.
jinja::Vars special_tokens_of(const std::string& bos, const std::string& eos, const std::string& unk,
                              const std::string& pad) {
  jinja::Vars v;
  for (auto [key, value] : {std::pair{"bos_token", &bos}, {"eos_token", &eos}, {"unk_token", &unk}, {"pad_token", &pad}})
    if (!value->empty()) v.emplace_back(key, jinja::Value::string(*value));
  return v;
}

jinja::Value messages_value(const std::vector<ChatMessage>& m, size_t count) {
  std::vector<jinja::Value> items;
  items.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    // The message as transformers would see it: role, content (a string or its parts), other keys.
    nlohmann::ordered_json j = {{"role", chat_role_name(m[i].role)}};
    if (m[i].content_parts.is_array()) {
      j["content"] = nlohmann::ordered_json::array();
      for (const Json& part : m[i].content_parts)  // each {"type": "text", "text": ...}, in that order
        j["content"].push_back({{"type", "text"}, {"text", part["text"]}});
    } else {
      j["content"] = m[i].content;
    }
    for (auto it = m[i].extra.begin(); it != m[i].extra.end(); ++it) j[it.key()] = it.value();
    items.push_back(jinja::value_from_json(j));
  }
  return jinja::Value::list(std::move(items));
}

const BuiltinChatTemplate* find_builtin(std::string_view name) {
  for (const BuiltinChatTemplate& b : builtin_chat_templates())
    if (b.name == name) return &b;
  return nullptr;
}

// The markers a built-in writes must encode as one token each, or the model would see them spelled
// out in pieces (a base model's tokenizer with --chat-template chatml).
void check_builtin_tokens(const Tokenizer& tok, std::string_view name) {
  std::vector<std::string> markers;
  if (name == "chatml") markers = {"<|im_start|>", "<|im_end|>"};
  if (name.substr(0, 6) == "llama3") markers = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  bool bos = name.substr(0, 6) == "llama3" || name == "llama2" || name == "mistral";
  bool eos = name == "llama2" || name == "mistral" || name == "zephyr" || name == "plain";
  RLHF_CHECK(!bos || tok.bos_id() >= 0, "chat template ", name, " writes the BOS token, but the tokenizer has no "
             "bos_token (tokenizer_config.json); add it there, or choose another template");
  RLHF_CHECK(!eos || tok.eos_id() >= 0, "chat template ", name, " ends each answer with the EOS token, but the "
             "tokenizer has no eos_token (tokenizer_config.json); add it there, or choose another template");
  if (bos) markers.push_back(tok.bos_token());
  if (eos) markers.push_back(tok.eos_token());
  for (const std::string& marker : markers)
    RLHF_CHECK(tok.encode(marker).size() == 1, "chat template ", name, " writes \"", marker, "\", which this "
               "tokenizer does not encode as one token (a base model's tokenizer?); use --chat-template plain, or "
               "a tokenizer with that special token");
}

std::pair<size_t, size_t> token_bytes(const std::pair<int64_t, int64_t>& offsets) {
  size_t begin = size_t(offsets.first);
  return {begin, std::max(size_t(offsets.second), begin + 1)};
}

bool overlaps(const std::vector<TextSpan>& spans, size_t begin, size_t end) {
  auto it = std::partition_point(spans.begin(), spans.end(), [&](const TextSpan& s) { return s.end <= begin; });
  return it != spans.end() && it->begin < end;
}

}  // namespace

void set_chat_template_date(std::string date) {
  if (!date.empty()) jinja::check_date(date, "--date");
  date_setting() = std::move(date);
}

const std::string& chat_template_date() { return date_setting(); }

const char* chat_role_name(ChatRole role) {
  switch (role) {
    case ChatRole::system: return "system";
    case ChatRole::user: return "user";
    case ChatRole::assistant: return "assistant";
    case ChatRole::tool: return "tool";
  }
  return "?";
}

ChatMessage parse_chat_message(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": a message must be an object {\"role\": ..., \"content\": ...}, not ",
             json_type_name(j));
  ChatMessage m;
  m.role = parse_role(json_require<std::string>(j, "role", where), where);
  RLHF_CHECK(!j.contains("tool_calls") || j["tool_calls"].is_null(), where, ": \"tool_calls\" in training data are "
             "not supported yet (the order of their arguments' keys, which templates render with tojson, is not "
             "kept); `rlhf chat-template` renders them");
  auto content = j.find("content");
  RLHF_CHECK(content != j.end() && (content->is_string() || content->is_array()), where,
             ": \"content\" must be a string or a list of {\"type\": \"text\", \"text\": ...} parts (it is ",
             content == j.end() ? "missing" : json_type_name(*content), ")");
  if (content->is_string()) {
    m.content = content->get<std::string>();
  } else {
    for (size_t i = 0; i < content->size(); ++i) {
      const Json& part = (*content)[i];
      const std::string at = detail::cat(where, ".content[", i, "]");
      RLHF_CHECK(part.is_object() && part.contains("type") && part["type"].is_string(), at,
                 ": a content part must be an object with a \"type\"");
      RLHF_CHECK(part["type"] == "text", at, ": only \"text\" parts can be trained on, not \"",
                 part["type"].get<std::string>(), "\"");
      RLHF_CHECK(part.contains("text") && part["text"].is_string(), at, ": a text part needs a string \"text\"");
      m.content += part["text"].get<std::string>();
    }
    m.content_parts = *content;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "role" && it.key() != "content" && it.key() != "tool_calls" && it.value().is_primitive() &&
        !it.value().is_null())
      m.extra[it.key()] = it.value();
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
  static const std::vector<std::string> all = [] {
    std::vector<std::string> n;
    for (const BuiltinChatTemplate& b : builtin_chat_templates()) n.emplace_back(b.name);
    return n;
  }();
  return all;
}

std::string ChatTemplate::name_list(std::string_view separator) {
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : std::string(separator)) + n;
  return list;
}

ChatTemplate::ChatTemplate(std::string source, std::string origin, jinja::Vars special_tokens, std::string tool_use)
    : source_(std::move(source)), origin_(std::move(origin)), special_tokens_(std::move(special_tokens)) {
  tpl_ = std::make_shared<jinja::Template>(source_, origin_);
  tool_tpl_ = tool_use.empty() ? tpl_ : std::make_shared<jinja::Template>(tool_use, origin_ + " (tool_use)");
}

ChatTemplate ChatTemplate::named(std::string_view name, std::string bos_token, std::string eos_token) {
  const BuiltinChatTemplate* b = find_builtin(name);
  RLHF_CHECK(b, "unknown chat template \"", name, "\"; use one of ", name_list(),
             " (plain suits base models), or --chat-template-path FILE for a Jinja file");
  return ChatTemplate(std::string(b->source), std::string(name) + " (built-in chat template)",
                      special_tokens_of(bos_token, eos_token, "", ""));
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tok, std::string_view spec) {
  jinja::Vars specials = special_tokens_of(tok.bos_token(), tok.eos_token(), tok.unk_token(), tok.pad_token());
  if (spec.empty()) {
    RLHF_CHECK(!tok.chat_template().empty(), "the tokenizer has no chat_template (tokenizer_config.json or "
               "chat_template.jinja); pass --chat-template NAME (", name_list(), "; plain suits base models) or "
               "--chat-template-path FILE");
    return ChatTemplate(tok.chat_template(), "the tokenizer's chat_template", std::move(specials),
                        tok.config().chat_template_tool_use);
  }
  if (const BuiltinChatTemplate* b = find_builtin(spec)) {
    check_builtin_tokens(tok, spec);
    return ChatTemplate(std::string(b->source), std::string(spec) + " (built-in chat template)", std::move(specials));
  }
  std::filesystem::path path(spec);
  RLHF_CHECK(std::filesystem::is_regular_file(path), "unknown chat template \"", spec, "\": neither one of ",
             name_list(), " nor a Jinja file; pass --chat-template NAME or --chat-template-path FILE");
  return ChatTemplate(read_file(path, "chat template"), path.string(), std::move(specials));
}

jinja::RenderOutput ChatTemplate::run(const jinja::Value& messages, const jinja::Value& tools,
                                      bool add_generation_prompt, const jinja::Vars& extra) const {
  // apply_chat_template's render(messages=, tools=, documents=, add_generation_prompt=,
  // **special_tokens_map, **kwargs); later entries win.
  jinja::Vars vars = {{"messages", messages}, {"tools", tools}, {"documents", jinja::Value::none()},
                      {"add_generation_prompt", jinja::Value::boolean(add_generation_prompt)}};
  vars.insert(vars.end(), special_tokens_.begin(), special_tokens_.end());
  vars.insert(vars.end(), extra.begin(), extra.end());
  jinja::RenderOptions options;
  options.date = chat_template_date();
  const jinja::Template& t = tools.is_none() ? *tpl_ : *tool_tpl_;
  return t.render(vars, options);
}

std::string ChatTemplate::render_json(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                      bool add_generation_prompt, const jinja::Vars& extra) const {
  RLHF_CHECK(messages.is_array(), "messages must be a JSON array of {\"role\", \"content\"} objects, not ",
             messages.type_name());
  RLHF_CHECK(tools.is_null() || tools.is_array(), "tools must be a JSON array of tool definitions, not ",
             tools.type_name());
  return run(jinja::value_from_json(messages), tools.is_null() ? jinja::Value::none() : jinja::value_from_json(tools),
             add_generation_prompt, extra)
      .text;
}

std::string ChatTemplate::render_text(const std::vector<ChatMessage>& messages, size_t count,
                                      bool add_generation_prompt) const {
  return run(messages_value(messages, count), jinja::Value::none(), add_generation_prompt, {}).text;
}

RenderedChat ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  const std::string& where) const {
  RLHF_CHECK(!messages.empty(), prefix(where), "the conversation has no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    size_t bad = utf8::find_invalid(messages[i].content);
    RLHF_CHECK(bad == std::string::npos, prefix(where), "message ", i, " (", chat_role_name(messages[i].role),
               "): content is not valid UTF-8 (byte ", bad, ")");
  }
  // Template errors get `where` in front (the record they rendered).
  auto guarded = [&](auto&& fn) {
    try {
      return fn();
    } catch (const Error& e) {
      if (where.empty()) throw;
      RLHF_FAIL(prefix(where), e.what());
    }
  };
  RenderedChat out;
  jinja::RenderOutput full = guarded([&] {
    return run(messages_value(messages, messages.size()), jinja::Value::none(), add_generation_prompt, {});
  });
  out.text = std::move(full.text);
  if (tpl_->has_generation()) {
    for (auto [b, e] : full.generation_spans)
      if (e > b) out.assistant_spans.push_back({b, e});
  } else {
    // TRL's way: each answer is what messages[:i+1] adds to messages[:i] + the generation prompt.
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].role != ChatRole::assistant) continue;
      std::string head;
      if (i > 0) {
        head = guarded([&] { return render_text(messages, i, true); });
      } else {
        // An answer first: what the template writes before any message, if it renders none at all
        // (with or without the generation prompt, whichever is a prefix), else nothing.
        for (bool gen : {true, false}) {
          try {
            std::string h = render_text(messages, 0, gen);
            std::string w = render_text(messages, 1, false);
            if (w.compare(0, h.size(), h) == 0) {
              head = h;
              break;
            }
          } catch (const Error&) {
          }
        }
      }
      std::string with = guarded([&] { return render_text(messages, i + 1, false); });
      RLHF_CHECK(with.compare(0, head.size(), head) == 0 && out.text.compare(0, with.size(), with) == 0,
                 prefix(where), "message ", i, " (assistant): ", origin_, " does not render the conversation "
                 "prefix by prefix (messages[:", i, "] with the generation prompt is not a prefix of messages[:",
                 i + 1, "], or that is not a prefix of the whole), so the answer's tokens cannot be told apart; "
                 "mark the answers with {% generation %}...{% endgeneration %} in the template, or choose another "
                 "with --chat-template");
      // Whitespace the template writes after the end-of-turn marker separates turns: the model
      // stops at the marker and never generates it (and BPE may merge it with the next header).
      size_t end = with.size();
      while (end > head.size() && (with[end - 1] == ' ' || with[end - 1] == '\n' || with[end - 1] == '\t' ||
                                   with[end - 1] == '\r'))
        --end;
      if (end > head.size()) out.assistant_spans.push_back({head.size(), end});
    }
  }
  out.completion_begin = out.text.size();
  return out;
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
  RLHF_CHECK(full.text.compare(0, head.text.size(), head.text) == 0, prefix(where), origin_,
             " renders the prompt differently inside the whole conversation, so prompt and completion cannot be "
             "split");
  full.completion_begin = head.text.size();
  std::erase_if(full.assistant_spans, [&](const TextSpan& s) { return s.end <= full.completion_begin; });
  RLHF_CHECK(full.assistant_spans.empty() || full.assistant_spans[0].begin >= full.completion_begin, prefix(where),
             origin_, ": an answer starts inside the generation prompt");
  return full;
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
