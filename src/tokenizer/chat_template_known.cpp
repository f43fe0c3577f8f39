// The official chat templates (Jinja sources, byte for byte those of tests/data/chat_templates/,
// with "@SYSTEM@" where a default system prompt goes) and their recognition by canonical form.
#include "tokenizer/chat_template_known.h"

#include <vector>

#include "tokenizer/jinja_canonical.h"

namespace rlhf {

namespace {

constexpr std::string_view kSystemHole = "@SYSTEM@";

// ChatML as teknium/OpenHermes-2.5-Mistral-7B and most ChatML fine-tunes ship it.
constexpr std::string_view kChatml = R"J({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})J";

// The same with a default for add_generation_prompt (NousResearch Hermes, Dolphin, ...).
constexpr std::string_view kChatmlDefined = R"J({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})J";

// Qwen/Qwen2-*-Instruct and Qwen1.5-*-Chat ("You are a helpful assistant.").
constexpr std::string_view kQwen2 = R"J({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n@SYSTEM@<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})J";

// Qwen/Qwen2.5-*-Instruct ("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."); the
// Qwen2.5 base models ship it with "You are a helpful assistant.". Tools are not rendered by rlhf.
constexpr std::string_view kQwen25 = R"J({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- '@SYSTEM@' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\n@SYSTEM@<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)J";

// meta-llama/Meta-Llama-3-8B-Instruct (and 70B). Note `| trim`: contents are stripped.
constexpr std::string_view kLlama3 = R"J({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %})J";

// meta-llama/Llama-3.1-*-Instruct (and Llama-3.3-70B-Instruct): a system header that always carries
// the knowledge cut-off and "Today Date" (date_string, "26 Jul 2024" unless the caller passes one).
// Tools (custom_tools, builtin_tools, tool_calls) are not rendered by rlhf.
constexpr std::string_view kLlama31 = R"J({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)J";

// meta-llama/Llama-3.2-*-Instruct: Llama 3.1's format, with "Today Date" from the clock (strftime_now)
// unless the caller passes date_string.
constexpr std::string_view kLlama32 = R"J({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)J";

// meta-llama/Llama-2-*-chat-hf.
constexpr std::string_view kLlama2 = R"J({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})J";

// mistralai/Mistral-7B-Instruct-v0.1 as first published: "</s> " after each answer.
constexpr std::string_view kMistralV01 = R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})J";

// mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1 (before the 2024 tool-calling templates).
constexpr std::string_view kMistral = R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})J";

// HuggingFaceH4/zephyr-7b-beta and TinyLlama/TinyLlama-1.1B-Chat-v1.0: the line breaks are part of it.
constexpr std::string_view kZephyr = R"J({% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>
'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %})J";

// rlhf's `plain` for base models (tests/data/chat_templates/README.md).
constexpr std::string_view kPlain = R"J({{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token + '\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %})J";

struct OfficialTemplate {
  const char* name;
  ChatFamily family;
  bool space_after_eos;
  std::string_view source;
};

const std::vector<OfficialTemplate>& official_templates() {
  static const std::vector<OfficialTemplate> all = {
      {"ChatML", ChatFamily::chatml, false, kChatml},
      {"ChatML", ChatFamily::chatml, false, kChatmlDefined},
      {"Qwen2-Instruct", ChatFamily::chatml, false, kQwen2},
      {"Qwen2.5-Instruct", ChatFamily::chatml, false, kQwen25},
      {"Meta-Llama-3-Instruct", ChatFamily::llama3, false, kLlama3},
      {"Llama-3.1-Instruct", ChatFamily::llama31, false, kLlama31},
      {"Llama-3.2-Instruct", ChatFamily::llama32, false, kLlama32},
      {"Llama-2-chat", ChatFamily::llama2, false, kLlama2},
      {"Mistral-7B-Instruct-v0.1", ChatFamily::mistral, true, kMistralV01},
      {"Mistral-7B-Instruct-v0.2 / Mixtral-8x7B-Instruct-v0.1", ChatFamily::mistral, false, kMistral},
      {"Zephyr", ChatFamily::zephyr, false, kZephyr},
      {"rlhf plain", ChatFamily::plain, false, kPlain},
  };
  return all;
}

// A canonical form cut at its "@SYSTEM@" holes.
std::vector<std::string> canonical_pieces(std::string_view source) {
  std::string canonical = jinja_canonical_form(source);
  std::vector<std::string> pieces;
  size_t from = 0;
  for (size_t hole = canonical.find(kSystemHole); hole != std::string::npos;
       hole = canonical.find(kSystemHole, from)) {
    pieces.push_back(canonical.substr(from, hole - from));
    from = hole + kSystemHole.size();
  }
  pieces.push_back(canonical.substr(from));
  return pieces;
}

// Index of the first unescaped ' at or after `from` in a canonical form (where every string literal
// is single-quoted), or npos.
size_t literal_end(std::string_view s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '\'') return i;
  }
  return std::string_view::npos;
}

// Matches `text` against pieces separated by holes; each hole takes the shortest run of a string
// literal's body after which the next piece follows. Returns the holes' values (unescaped), or
// nothing when `text` does not match.
std::optional<std::vector<std::string>> match(std::string_view text, const std::vector<std::string>& pieces) {
  if (text.substr(0, pieces[0].size()) != pieces[0]) return std::nullopt;
  if (pieces.size() == 1 && text.size() != pieces[0].size()) return std::nullopt;
  std::vector<std::string> holes;
  size_t pos = pieces[0].size();
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string& piece = pieces[i];
    bool last = i + 1 == pieces.size();
    size_t at = last ? (text.size() >= piece.size() ? text.size() - piece.size() : std::string_view::npos)
                     : text.find(piece, pos);
    if (at == std::string_view::npos || at < pos || text.substr(at, piece.size()) != piece) return std::nullopt;
    if (at > literal_end(text, pos)) return std::nullopt;  // the hole would leave its string literal
    holes.push_back(jinja_unescape(text.substr(pos, at - pos)));
    pos = at + piece.size();
  }
  return holes;
}

// The body of a single-quoted Jinja literal with the value `s`.
std::string jinja_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\'";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string fill_holes(std::string_view source, std::string_view value) {
  std::string out(source);
  std::string escaped = jinja_escape(value);
  for (size_t hole = out.find(kSystemHole); hole != std::string::npos; hole = out.find(kSystemHole, hole + escaped.size()))
    out.replace(hole, kSystemHole.size(), escaped);
  return out;
}

}  // namespace

std::optional<RecognisedChatTemplate> recognise_chat_template(std::string_view jinja) {
  static const std::vector<std::vector<std::string>> patterns = [] {
    std::vector<std::vector<std::string>> p;
    for (const OfficialTemplate& t : official_templates()) p.push_back(canonical_pieces(t.source));
    return p;
  }();
  std::string canonical = jinja_canonical_form(jinja);
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto holes = match(canonical, patterns[i]);
    if (!holes) continue;
    if (holes->size() > 1 && (*holes)[0] != (*holes)[1]) continue;  // Qwen2.5 states its prompt twice
    const OfficialTemplate& t = official_templates()[i];
    RecognisedChatTemplate r;
    r.name = t.name;
    r.format.family = t.family;
    r.format.space_after_eos = t.space_after_eos;
    if (!holes->empty()) r.format.default_system = (*holes)[0];
    return r;
  }
  return std::nullopt;
}

std::string official_chat_template(const ChatFormat& format) {
  switch (format.family) {
    case ChatFamily::chatml:
      return format.default_system.empty() ? std::string(kChatml) : fill_holes(kQwen2, format.default_system);
    case ChatFamily::llama3: return std::string(kLlama3);
    case ChatFamily::llama31: return std::string(kLlama31);
    case ChatFamily::llama32: return std::string(kLlama32);
    case ChatFamily::llama2: return std::string(kLlama2);
    case ChatFamily::mistral: return std::string(format.space_after_eos ? kMistralV01 : kMistral);
    case ChatFamily::zephyr: return std::string(kZephyr);
    case ChatFamily::plain: return std::string(kPlain);
  }
  return "";
}

std::string chat_template_hint(std::string_view jinja) {
  auto has = [&](std::string_view marker) { return jinja.find(marker) != std::string_view::npos; };
  if (has("<|start_header_id|>"))
    return "it looks like Llama 3's format, but it is not the official template of Llama 3, 3.1 or 3.2; "
           "--chat-template llama3.1 renders Llama 3.1's dated system header (llama3.2: dated today), llama3 "
           "the Llama 3 format without it";
  if (has("<|im_start|>"))
    return "it looks like ChatML; --chat-template chatml renders ChatML (without a default system prompt)";
  if (has("[INST]"))
    return "it looks like the [INST] format; --chat-template llama2 (system prompt in <<SYS>>) or mistral "
           "(no system role) render the official Llama 2 and Mistral templates";
  if (has("<|assistant|>")) return "it looks like Zephyr's format; --chat-template zephyr renders it";
  return "";
}

}  // namespace rlhf
