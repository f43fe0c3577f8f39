// `rlhf chat-template`: renders a conversation with a tokenizer's chat template (or a built-in one,
// or a Jinja file) exactly as transformers' apply_chat_template(tokenize=False) does, or prints the
// ids of tokenize=True. Also the --chat-template / --chat-template-path / --date options every
// command that renders chat templates shares.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace rlhf::cli {

namespace {

nlohmann::ordered_json read_ordered_json(const std::string& path, const char* option) {
  std::string text = read_file(path, option);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    RLHF_FAIL(path, " (", option, "): not valid JSON: ", what.substr(what.find(']') + 2));
  }
}

jinja::Vars parse_extras(const std::vector<std::string>& extras) {
  jinja::Vars vars;
  for (const std::string& e : extras) {
    size_t eq = e.find('=');
    RLHF_CHECK(eq != std::string::npos && eq > 0, "--extra ", e, ": write KEY=JSON, e.g. --extra enable_thinking=false");
    std::string key = e.substr(0, eq), value = e.substr(eq + 1);
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(value);
    } catch (const nlohmann::json::exception&) {
      RLHF_FAIL("--extra ", e, ": the value must be JSON (true, 3, \"text\", [...], {...}); quote strings, e.g. ",
                key, "='\"text\"'");
    }
    vars.emplace_back(key, jinja::value_from_json(j));
  }
  return vars;
}

}  // namespace

void add_chat_template_options(CLI::App* app, std::string& spec, const std::string& what) {
  auto* name = app->add_option("--chat-template", spec,
                               (what.empty() ? "" : what + ": ") + ChatTemplate::name_list(" | ") +
                                   " (built-in; default: the tokenizer's own template)");
  app->add_option("--chat-template-path", spec,
                  "a Jinja chat template file to render with instead (as a tokenizer_config.json chat_template)")
      ->check(CLI::ExistingFile)
      ->excludes(name);
  app->add_option_function<std::string>(
      "--date", [](const std::string& d) { set_chat_template_date(d); },
      "YYYY-MM-DD: the date strftime_now gives templates (Llama 3.2's \"Today Date\"), so renders are "
      "reproducible (default: today)");
}

Command add_chat_template(CLI::App& root) {
  struct Opts {
    std::string tokenizer, messages, tools, spec;
    std::vector<std::string> extras;
    bool add_generation_prompt = false, ids = false;
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand(
      "chat-template", "Render a conversation with a chat template exactly as transformers' apply_chat_template "
                       "(tokenize=False), or print its ids (--ids)");
  app->add_option("--tokenizer", o->tokenizer, "model directory, tokenizer.json or tokenizer.model")->required();
  app->add_option("--messages", o->messages,
                  "JSON file: [{\"role\", \"content\", ...}, ...] (tool_calls, tool replies and content parts as "
                  "transformers takes them), or {\"messages\": [...], \"tools\": [...]}")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--tools", o->tools, "JSON file: a list of tool definitions (JSON schemas) passed as `tools`")
      ->check(CLI::ExistingFile);
  app->add_flag("--add-generation-prompt", o->add_generation_prompt, "end with what the assistant's answer follows");
  add_chat_template_options(app, o->spec, "");
  app->add_flag("--ids", o->ids, "print the token ids (tokenize=True: no special tokens added) as a JSON list");
  app->add_option("--extra", o->extras, "KEY=JSON: another template variable, e.g. enable_thinking=false (repeatable)");
  return {app, [o] {
            auto tok = Tokenizer::load(o->tokenizer);
            ChatTemplate t = ChatTemplate::for_tokenizer(*tok, o->spec);
            nlohmann::ordered_json messages = read_ordered_json(o->messages, "--messages");
            nlohmann::ordered_json tools = nullptr;
            if (messages.is_object()) {
              RLHF_CHECK(messages.contains("messages"), o->messages, ": an object needs a \"messages\" list");
              if (messages.contains("tools")) tools = messages["tools"];
              messages = nlohmann::ordered_json(messages["messages"]);
            }
            RLHF_CHECK(messages.is_array() && !messages.empty(), o->messages,
                       ": expected a non-empty list of messages");
            if (!o->tools.empty()) tools = read_ordered_json(o->tools, "--tools");
            std::string text = t.render_json(messages, tools, o->add_generation_prompt, parse_extras(o->extras));
            if (o->ids) {
              nlohmann::json ids = tok->encode(text, /*add_special_tokens=*/false);
              std::printf("%s\n", ids.dump().c_str());
            } else {
              std::fwrite(text.data(), 1, text.size(), stdout);
            }
          }};
}

}  // namespace rlhf::cli
