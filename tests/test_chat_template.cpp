// Chat templates: the built-in sources (the official files of tests/data/chat_templates/), rendering
// through the Jinja engine with the spans SFT trains on ({% generation %} blocks, else prefix by
// prefix), the tool_use template, and, against transformers' apply_chat_template on every prefix of
// every conversation of tests/ref/chat_template_fixtures.py, the text, the ids, BOS / EOS neither
// doubled nor missing, the assistant mask (decoded, it gives the answers and their end markers) and
// the prompt / completion split. The engine itself is tested in test_jinja.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <random>

#include "io/json.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/chat_template_builtin.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

fs::path template_dir() { return fs::path(RLHF_SOURCE_DIR) / "tests" / "data" / "chat_templates"; }
std::string read_template(const std::string& name) { return test::read_bytes(template_dir() / (name + ".jinja")); }

ChatMessage sys(std::string c) { return {ChatRole::system, std::move(c)}; }
ChatMessage usr(std::string c) { return {ChatRole::user, std::move(c)}; }
ChatMessage bot(std::string c) { return {ChatRole::assistant, std::move(c)}; }

std::string span_text(const RenderedChat& r, size_t i) {
  const TextSpan& s = r.assistant_spans.at(i);
  return r.text.substr(s.begin, s.end - s.begin);
}

// Sets strftime_now's date for one test.
struct DateScope {
  std::string saved = chat_template_date();
  explicit DateScope(std::string date) { set_chat_template_date(std::move(date)); }
  ~DateScope() { set_chat_template_date(saved); }
};

// ---- the built-in templates and where templates come from ------------------------------------------

TEST(ChatTemplateBuiltin, SourcesAreTheOfficialFiles) {
  ASSERT_EQ(builtin_chat_templates().size(), 8u);
  for (const BuiltinChatTemplate& b : builtin_chat_templates()) {
    EXPECT_EQ(b.source, test::read_bytes(template_dir() / b.file)) << b.name;
    EXPECT_EQ(ChatTemplate::named(b.name, "<s>", "</s>").jinja(), b.source) << b.name;
  }
  EXPECT_EQ(ChatTemplate::name_list(), "chatml, llama3, llama3.1, llama3.2, llama2, mistral, zephyr, plain");
  expect_error([] { ChatTemplate::named("vicuna", "", ""); },
               {"unknown chat template \"vicuna\"", "chatml, llama3", "--chat-template-path"});
}

TEST(ChatTemplateSource, AnyJinjaRendersWithSpansAndErrors) {
  ChatTemplate t("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                 "{% if add_generation_prompt %}[assistant] {% endif %}",
                 "custom.jinja", {{"bos_token", jinja::Value::string("<s>")}});
  RenderedChat r = t.render({usr("Q"), bot("A"), usr("Q2"), bot("A2")});
  EXPECT_EQ(r.text, "<s>[user] Q\n[assistant] A\n[user] Q2\n[assistant] A2\n");
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "A");  // what messages[:2] adds to messages[:1] + the generation prompt, less the "\n"
  EXPECT_EQ(span_text(r, 1), "A2");
  EXPECT_EQ(t.describe(), "custom.jinja");
  ChatTemplate bad("{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}", "one.jinja", {});
  expect_error([&] { bad.render({usr("a"), usr("b")}, false, "data.jsonl:4"); },
               {"data.jsonl:4: one.jinja: template line 1, column 32: template raised: one message only"});
  expect_error([] { ChatTemplate("{% for %}", "broken.jinja", {}); }, {"broken.jinja: template line 1, column 8"});
}

TEST(ChatTemplateSource, GenerationBlocksGiveTheSpans) {
  ChatTemplate t("{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}"
                 "{{ m.content }}<end>{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}",
                 "gen.jinja", {});
  EXPECT_TRUE(t.has_generation_blocks());
  RenderedChat r = t.render({usr("Q"), bot("A"), usr("R"), bot("B")});
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "A<end>");  // exactly the block: not the "\n" after it
  EXPECT_EQ(span_text(r, 1), "B<end>");
}

TEST(ChatTemplateSource, RefusesMasksWhenPrefixesAreNotPrefixes) {
  // The last message rendered differently (as Qwen3 drops earlier reasoning): no prefix-wise spans.
  ChatTemplate t("{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m.content }};{% endfor %}", "odd.jinja", {});
  EXPECT_EQ(t.render({usr("Q")}).text, "LAST Q;");
  expect_error([&] { t.render({usr("Q"), bot("A"), usr("R")}, false, "data.jsonl:2"); },
               {"data.jsonl:2: message 1 (assistant)", "odd.jinja does not render the conversation prefix by prefix",
                "{% generation %}"});
}

TEST(ChatTemplateSource, ToolUseTemplateAndJsonMessages) {
  ChatTemplate t("{% for m in messages %}{{ m.role }}:{{ m.content }}{% if m.tool_calls %}"
                 "{{ m.tool_calls | tojson }}{% endif %}|{% endfor %}",
                 "default", {}, "TOOLS {{ tools | map(attribute='function') | map(attribute='name') | join(',') }}");
  auto msgs = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "w?"},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
       "function": {"name": "get", "arguments": {"zeta": 1, "alpha": 2}}}]}])");
  EXPECT_EQ(t.render_json(msgs, nullptr, false),
            "user:w?|assistant:[{\"type\": \"function\", \"function\": {\"name\": \"get\", "
            "\"arguments\": {\"zeta\": 1, \"alpha\": 2}}}]|");
  auto tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get"}},
      {"type": "function", "function": {"name": "put"}}])");
  EXPECT_EQ(t.render_json(msgs, tools, false), "TOOLS get,put");
  ChatTemplate think("{{ enable_thinking }}", "x", {});
  EXPECT_EQ(think.render_json(msgs, nullptr, false, {{"enable_thinking", jinja::Value::boolean(false)}}), "False");
}

TEST(ChatTemplateSource, DateSettingPinsStrftimeNow) {
  ChatTemplate l32 = ChatTemplate::named("llama3.2", "<|begin_of_text|>", "<|eot_id|>");
  {
    DateScope d("2025-01-01");
    EXPECT_NE(l32.render({usr("Q")}).text.find("Today Date: 01 Jan 2025\n"), std::string::npos);
  }
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char today[32];
  std::strftime(today, sizeof today, "%d %b %Y", &tm);
  EXPECT_NE(l32.render({usr("Q")}).text.find(std::string("Today Date: ") + today), std::string::npos);
  expect_error([] { set_chat_template_date("2025-13-01"); }, {"--date", "not a calendar date"});
  expect_error([] { set_chat_template_date("1 Jan 2025"); }, {"--date", "YYYY-MM-DD"});
}

// ---- messages from JSON --------------------------------------------------------------------------------

TEST(ChatMessages, ParseAndRefuse) {
  auto m = parse_chat_messages(parse_json(R"([{"role":"system","content":"s"},{"role":"user","content":"u","name":"x"},
                                            {"role":"assistant","content":""}])", "t"), "data.jsonl:3: messages");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].role, ChatRole::system);
  EXPECT_EQ(m[1].content, "u");
  EXPECT_EQ(m[2].role, ChatRole::assistant);
  auto parse = [](const char* text) { return parse_chat_messages(parse_json(text, "t"), "data.jsonl:3: messages"); };
  expect_error([&] { parse(R"([{"role":"robot","content":"x"}])"); },
               {"data.jsonl:3: messages[0]", "role \"robot\" is not supported", "\"tool\""});
  expect_error([&] { parse(R"([{"role":"assistant","content":"","tool_calls":[{"type":"function"}]}])"); },
               {"messages[0]", "\"tool_calls\" in training data are not supported", "rlhf chat-template"});
  expect_error([&] { parse(R"([{"role":"user","content":[{"type":"image","url":"x"}]}])"); },
               {"messages[0].content[0]", "only \"text\" parts"});
  expect_error([&] { parse(R"([{"role":"user","content":[{"type":"text"}]}])"); },
               {"messages[0].content[0]", "string \"text\""});
  expect_error([&] { parse(R"([{"role":"user"}])"); }, {"messages[0]", "\"content\" must be a string", "missing"});
  expect_error([&] { parse(R"([{"role":"user","content":null}])"); }, {"\"content\" must be a string", "null"});
  expect_error([&] { parse(R"([{"content":"x"}])"); }, {"messages[0]", "\"role\""});
  expect_error([&] { parse(R"([])"); }, {"data.jsonl:3: messages", "no messages"});
  expect_error([&] { parse(R"({"role":"user"})"); }, {"expected an array"});
  expect_error([&] { parse(R"(["hi"])"); }, {"messages[0]", "must be an object"});
}

// Training data with content parts and tool replies (issue 16): the template sees the messages as
// transformers would (render_json of the same JSON, which the reference tests hold to transformers),
// and only the assistant turns are trained on.
TEST(ChatMessages, ContentPartsAndToolRepliesRenderAsTheJsonDoes) {
  const char* text = R"([{"role": "system", "content": [{"type": "text", "text": "Be brief. "}, {"type": "text", "text": "Use tools."}]},
      {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
      {"role": "assistant", "content": "Let me look."},
      {"role": "tool", "name": "get_weather", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
      {"role": "assistant", "content": "It is 21 degrees."}])";
  auto msgs = parse_chat_messages(parse_json(text, "t"), "t");
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_EQ(msgs[0].content, "Be brief. Use tools.");
  EXPECT_EQ(msgs[3].role, ChatRole::tool);
  EXPECT_EQ(msgs[3].extra["tool_call_id"], "c1");
  auto json = nlohmann::ordered_json::parse(text);
  int rendered = 0;
  // Most templates refuse content parts, as in transformers (qwen2.5 concatenates a list to a string).
  for (const char* name : {"hf/qwen2_5_instruct", "hf/llama3_1_instruct", "hf/llama3_3_instruct", "llama3"}) {
    ChatTemplate t(read_template(name), name,
                   {{"bos_token", jinja::Value::string("<s>")}, {"eos_token", jinja::Value::string("</s>")}});
    std::string want;
    try {
      want = t.render_json(json, nullptr, false);
    } catch (const Error&) {  // a template that refuses the conversation refuses it both ways
      EXPECT_THROW(t.render(msgs), Error) << name;
      continue;
    }
    ++rendered;
    RenderedChat r = t.render(msgs);
    EXPECT_EQ(r.text, want) << name;
    EXPECT_NE(r.text.find("Weather in Paris?"), std::string::npos) << name;
    ASSERT_EQ(r.assistant_spans.size(), 2u) << name << "\n" << r.text;
    EXPECT_NE(span_text(r, 0).find("Let me look."), std::string::npos) << name;
    EXPECT_NE(span_text(r, 1).find("It is 21 degrees."), std::string::npos) << name;
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(span_text(r, i).find("21}"), std::string::npos) << name;  // not the tool's
  }
  EXPECT_GE(rendered, 3);
}

// ---- rendering ---------------------------------------------------------------------------------------

TEST(ChatTemplateRender, ChatMLSpansCoverAnswerAndEndMarker) {
  ChatTemplate t = ChatTemplate::named("chatml", "", "<|im_end|>");
  RenderedChat r = t.render({usr("hi"), bot("yo"), usr("again"), bot("")});
  EXPECT_EQ(r.text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
                    "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n");
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "yo<|im_end|>");  // not the "\n" that separates the turns
  EXPECT_EQ(span_text(r, 1), "<|im_end|>");
  EXPECT_EQ(r.completion_begin, r.text.size());
  RenderedChat g = t.render({usr("hi")}, /*add_generation_prompt=*/true);
  EXPECT_EQ(g.text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_TRUE(g.assistant_spans.empty());
}

TEST(ChatTemplateRender, SpansPerFamily) {
  struct Case {
    const char* name;
    std::string first_span;  // of {system, user "Q", assistant "  A "}
  };
  // What messages[:3] adds to messages[:2] + the generation prompt, without the separator after it:
  // Llama 2's " " before the answer and plain's " " after "Assistant:" are the answer's.
  const Case cases[] = {{"chatml", "  A <|im_end|>"}, {"llama3", "A<|eot_id|>"}, {"llama3.1", "A<|eot_id|>"},
                        {"llama2", " A </s>"},          {"zephyr", "  A </s>"},   {"plain", "   A </s>"}};
  for (const Case& c : cases) {
    RenderedChat r = ChatTemplate::named(c.name, "<s>", "</s>").render({sys("S"), usr("Q"), bot("  A ")});
    ASSERT_EQ(r.assistant_spans.size(), 1u) << c.name;
    EXPECT_EQ(span_text(r, 0), c.first_span) << c.name << ": " << r.text;
  }
  RenderedChat m = ChatTemplate::named("mistral", "<s>", "</s>").render({usr("Q"), bot("A"), usr("R"), bot("B")});
  EXPECT_EQ(m.text, "<s>[INST] Q [/INST]A</s>[INST] R [/INST]B</s>");
  EXPECT_EQ(span_text(m, 1), "B</s>");
  // Llama 3.1: the dated system header comes first, with or without a system message (stripped).
  ChatTemplate l31 = ChatTemplate::named("llama3.1", "<|begin_of_text|>", "<|eot_id|>");
  const std::string head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
  EXPECT_EQ(l31.render({sys(" Be brief.\n"), usr("Q"), bot("A")}).text,
            head + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
  EXPECT_EQ(l31.render({usr("Q")}, true).text, head + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
                                                      "<|start_header_id|>assistant<|end_header_id|>\n\n");
  RenderedChat p = ChatTemplate::named("plain", "", "<|endoftext|>").render({usr("Q"), bot("A")}, true);
  EXPECT_EQ(p.text, "User: Q\nAssistant: A<|endoftext|>\nAssistant:");
}

TEST(ChatTemplateRender, RefusesWhatTheOfficialTemplatesRefuse) {
  ChatTemplate llama2 = ChatTemplate::named("llama2", "<s>", "</s>");
  ChatTemplate mistral = ChatTemplate::named("mistral", "<s>", "</s>");
  const char* alternate = "template raised: Conversation roles must alternate user/assistant/user/assistant/...";
  expect_error([&] { llama2.render({usr("a"), usr("b")}, false, "data.jsonl:7"); },
               {"data.jsonl:7: llama2 (built-in chat template): template line 1, column ", alternate});
  expect_error([&] { llama2.render({bot("a")}); }, {alternate});
  expect_error([&] { llama2.render({usr("a"), bot("b"), sys("c"), usr("d")}); }, {alternate});
  EXPECT_EQ(llama2.render({sys("alone")}).text, "");  // as transformers: nothing, no error
  expect_error([&] { mistral.render({sys("s"), usr("a")}); }, {alternate});
  expect_error([&] { mistral.render({usr("a"), bot("b"), bot("c")}); }, {alternate});
  for (const std::string& name : ChatTemplate::names()) {
    ChatTemplate t = ChatTemplate::named(name, "<s>", "</s>");
    expect_error([&] { t.render({}, false, "x.jsonl:1"); }, {"x.jsonl:1: ", "no messages"}, name.c_str());
    expect_error([&] { t.render({usr("bad \xff byte")}); }, {"message 0 (user)", "not valid UTF-8"}, name.c_str());
  }
  // Orders that ChatML, Llama 3 / 3.1, Zephyr and plain render as they come.
  for (const char* name : {"chatml", "llama3", "llama3.1", "llama3.2", "zephyr", "plain"})
    EXPECT_NO_THROW(ChatTemplate::named(name, "<s>", "</s>").render({bot("a"), sys("b"), usr("c"), usr("d")}));
}

TEST(ChatTemplateRender, PromptCompletionConcatenatesToTheWholeConversation) {
  for (const std::string& name : ChatTemplate::names()) {
    ChatTemplate t = ChatTemplate::named(name, "<s>", "</s>");
    std::vector<ChatMessage> prompt = {usr("Q1"), bot("A1"), usr("Q2")};
    std::vector<ChatMessage> completion = {bot("A2"), usr("Q3"), bot("A3")};
    RenderedChat pc = t.render_prompt_completion(prompt, completion);
    std::vector<ChatMessage> all = prompt;
    all.insert(all.end(), completion.begin(), completion.end());
    RenderedChat full = t.render(all);
    EXPECT_EQ(pc.text, full.text) << name;
    EXPECT_EQ(pc.text.substr(0, pc.completion_begin), t.render(prompt, true).text) << name;
    // Only the completion's answers are spans: A2 and A3, not A1.
    ASSERT_EQ(pc.assistant_spans.size(), 2u) << name;
    EXPECT_EQ(pc.assistant_spans[0], full.assistant_spans[1]) << name;
    EXPECT_EQ(pc.assistant_spans[1], full.assistant_spans[2]) << name;
    expect_error([&] { t.render_prompt_completion(prompt, {usr("x")}); }, {"must start with an assistant message"});
    expect_error([&] { t.render_prompt_completion({}, completion); }, {"prompt has no messages"});
  }
}

TEST(ChatTemplateRender, StripsAsPythonDoes) {
  // Llama 3's | trim and Llama 2's strip() remove Unicode whitespace and U+001C..U+001F, nothing else.
  ChatTemplate llama3 = ChatTemplate::named("llama3", "<|begin_of_text|>", "");
  RenderedChat r = llama3.render({usr("q"), bot("\xe3\x80\x80\x1c x\xe2\x80\x8b \xc2\xa0\n")});  // U+3000 ... ZWSP NBSP
  EXPECT_EQ(span_text(r, 0), "x\xe2\x80\x8b<|eot_id|>");  // U+200B is not whitespace for Python
  ChatTemplate llama2 = ChatTemplate::named("llama2", "<s>", "</s>");
  EXPECT_EQ(llama2.render({sys(" S "), usr(" Q \t")}).text, "<s>[INST] <<SYS>>\n S \n<</SYS>>\n\n Q [/INST]");
}

// ---- against transformers ------------------------------------------------------------------------------

#ifdef RLHF_CHAT_FIXTURE_DIR
const fs::path kFixtureDir = RLHF_CHAT_FIXTURE_DIR;
#endif

// expected.json of tests/ref/chat_template_fixtures.py (see tests/CMakeLists.txt), or nullptr with
// a recorded failure when it is missing.
const Json* fixtures() {
#ifdef RLHF_CHAT_FIXTURE_DIR
  static const std::unique_ptr<Json> expected = []() -> std::unique_ptr<Json> {
    fs::path path = kFixtureDir / "expected.json";
    if (!fs::exists(path)) return nullptr;
    return std::make_unique<Json>(read_json_file(path));
  }();
  if (!expected)
    ADD_FAILURE() << kFixtureDir / "expected.json" << " is missing: run ctest (fixture chat_templates_generate) or "
                  << "tests/ref/chat_template_fixtures.py --out " << kFixtureDir;
  return expected.get();
#else
  return nullptr;
#endif
}

#define REQUIRE_FIXTURES()                                                                             \
  const Json* fx = fixtures();                                                                         \
  if (!fx) {                                                                                           \
    if (!::testing::Test::HasFailure())                                                                \
      GTEST_SKIP() << "no transformers venv at configure time (scripts/setup_venv.sh), so no fixtures"; \
    return;                                                                                            \
  }

// The tokenizer of a template case, loaded once; nullptr when it cannot be loaded here (a
// tokenizer.model in a build without SentencePiece).
std::shared_ptr<Tokenizer> fixture_tokenizer(const std::string& dir) {
  static std::map<std::string, std::shared_ptr<Tokenizer>> cache;
  auto it = cache.find(dir);
  if (it != cache.end()) return it->second;
  std::shared_ptr<Tokenizer> tok;
#ifdef RLHF_CHAT_FIXTURE_DIR
  fs::path path = kFixtureDir / dir;
#ifndef RLHF_WITH_SENTENCEPIECE
  if (!fs::exists(path / "tokenizer.json")) return cache[dir] = nullptr;
#endif
  tok = Tokenizer::load(path);
#endif
  return cache[dir] = tok;
}

std::vector<ChatMessage> conversation(const Json& fx, int index, size_t n) {
  std::vector<ChatMessage> all = parse_chat_messages(fx["conversations"][index]["messages"], "expected.json");
  all.resize(n);
  return all;
}

// The ids of the marker that ends an answer.
int64_t end_marker(const Tokenizer& tok, const std::string& family) {
  if (family == "chatml") return *tok.token_to_id("<|im_end|>");
  if (family.rfind("llama3", 0) == 0) return *tok.token_to_id("<|eot_id|>");
  return tok.eos_id();
}

// Every case of expected.json with its tokenizer and template; cases whose tokenizer this build
// cannot load are skipped with a note.
using CaseFn = std::function<void(const std::string& name, const Json& info, const Tokenizer& tok, const ChatTemplate& t)>;
void for_each_case(const Json& fx, const CaseFn& fn) {
  for (const auto& [name, info] : fx["templates"].items()) {
    auto tok = fixture_tokenizer(info["dir"].get<std::string>());
    if (!tok) {
      std::cerr << "[ note ] " << name << ": tokenizer.model needs a build with SentencePiece; skipped\n";
      continue;
    }
    ChatTemplate t = ChatTemplate::for_tokenizer(*tok);
    // Llama 3.2's clock date, as the fixtures passed it ("14 Mar 2025"): strftime_now gives it.
    DateScope date(info.contains("date_string") ? "2025-03-14" : "");
    fn(name, info, *tok, t);
  }
}

TEST(ChatTemplateReference, TheTokenizersOwnTemplateIsUsed) {
  REQUIRE_FIXTURES();
  for_each_case(*fx, [&](const std::string& name, const Json& info, const Tokenizer&, const ChatTemplate& t) {
    EXPECT_EQ(t.jinja(), test::read_bytes(template_dir() / info["jinja"].get<std::string>())) << name;
    EXPECT_EQ(t.describe(), "the tokenizer's chat_template") << name;
  });
}

// Text and ids equal apply_chat_template's for every prefix of every conversation, with and without
// the generation prompt; where it raises, rlhf refuses.
TEST(ChatTemplateReference, TextAndIdsMatchTransformers) {
  REQUIRE_FIXTURES();
  size_t compared = 0, refused = 0;
  for_each_case(*fx, [&](const std::string& name, const Json&, const Tokenizer& tok, const ChatTemplate& t) {
    for (const Json& rec : (*fx)["renders"]) {
      if (rec["template"] != name) continue;
      auto messages = conversation(*fx, rec["conversation"].get<int>(), rec["messages"].get<size_t>());
      bool gen = rec["add_generation_prompt"].get<bool>();
      std::string what = name + " conversation " + rec["conversation"].dump() + "[:" + rec["messages"].dump() +
                         "] add_generation_prompt=" + (gen ? "true" : "false");
      if (rec.contains("error")) {
        expect_error([&] { t.render(messages, gen); }, {"the tokenizer's chat_template: template line"}, what.c_str());
        ++refused;
        continue;
      }
      RenderedChat r = t.render(messages, gen);
      ASSERT_EQ(r.text, rec["text"].get<std::string>()) << what;
      EXPECT_EQ(tokenize_chat(tok, r).ids, rec["ids"].get<std::vector<int64_t>>()) << what;
      ++compared;
    }
  });
  EXPECT_GT(compared, 400u);
  EXPECT_GT(refused, 20u);
}

// BOS appears exactly where the template writes it (once at the start, or before each [INST] for
// Llama 2), never added again by the tokenizer; every answer ends with exactly one end marker.
TEST(ChatTemplateReference, BosAndEosNeitherDoubledNorMissing) {
  REQUIRE_FIXTURES();
  for_each_case(*fx, [&](const std::string& name, const Json& info, const Tokenizer& tok, const ChatTemplate& t) {
    std::string family = info["family"].get<std::string>();
    int64_t bos = tok.bos_id(), end = end_marker(tok, family);
    for (size_t c = 0; c < (*fx)["conversations"].size(); ++c) {
      auto messages = conversation(*fx, int(c), (*fx)["conversations"][c]["messages"].size());
      RenderedChat r;
      try {
        r = t.render(messages);
      } catch (const Error&) {
        continue;  // orders this template refuses (checked above)
      }
      if (r.text.empty()) continue;  // Llama 2 with a system message alone renders nothing, as in transformers
      ChatTokens ct = tokenize_chat(tok, r);
      const auto& ids = ct.ids;
      size_t n_bos = bos < 0 ? 0 : std::count(ids.begin(), ids.end(), bos);
      size_t n_user = std::count_if(messages.begin(), messages.end(), [](auto& m) { return m.role == ChatRole::user; });
      std::string what = name + " conversation " + std::to_string(c);
      if (family.rfind("llama3", 0) == 0 || family == "mistral") {
        EXPECT_EQ(n_bos, 1u) << what;
        EXPECT_EQ(ids.at(0), bos) << what;
      } else if (family == "llama2") {
        EXPECT_EQ(n_bos, n_user) << what;
        EXPECT_EQ(ids.at(0), bos) << what;
      } else if (family == "plain") {
        EXPECT_EQ(n_bos, bos == end ? 1 + r.assistant_spans.size() : 1) << what;  // GPT-2: BOS is EOS
        EXPECT_EQ(ids.at(0), bos) << what;
      } else {
        EXPECT_EQ(n_bos, 0u) << what << ": these templates write no BOS, and neither does apply_chat_template";
      }
      // The last token of each answer's run is the end marker, and the token after it is not.
      for (size_t i = 0; i < ids.size(); ++i) {
        bool run_ends = ct.assistant_mask[i] && (i + 1 == ids.size() || !ct.assistant_mask[i + 1]);
        if (!run_ends) continue;
        EXPECT_EQ(ids[i], end) << what << ": answer ending at token " << i << " lacks its end marker";
        if (i + 1 < ids.size()) {
          EXPECT_NE(ids[i + 1], end) << what << ": end marker doubled after token " << i;
        }
      }
    }
  });
}

// Also with a tokenizer whose post-processor adds BOS (Llama 3's does): encoding the chat text with
// special tokens, as the buggy trainers did, doubles it; tokenize_chat does not.
TEST(ChatTemplateReference, Llama3BosIsNotDoubled) {
  REQUIRE_FIXTURES();
  auto tok = fixture_tokenizer("llama3");
  ASSERT_TRUE(tok);
  ChatTemplate t = ChatTemplate::for_tokenizer(*tok);
  RenderedChat r = t.render({usr("Hello"), bot("Hi")});
  std::vector<int64_t> doubled = tok->encode(r.text, /*add_special_tokens=*/true);
  ASSERT_GE(doubled.size(), 2u);
  EXPECT_EQ(doubled[0], tok->bos_id());
  EXPECT_EQ(doubled[1], tok->bos_id());
  ChatTokens ct = tokenize_chat(*tok, r);
  EXPECT_EQ(ct.ids[0], tok->bos_id());
  EXPECT_NE(ct.ids[1], tok->bos_id());
}

// The masked tokens decode to the answers and their end markers: for each run of assistant tokens,
// what the run adds to the decoded text is the text its tokens cover, which is the span plus, where
// a token straddles the span's start, only whitespace of the header before it.
TEST(ChatTemplateReference, AssistantMaskDecodesToAnswers) {
  REQUIRE_FIXTURES();
  size_t spans = 0, straddles = 0;
  for_each_case(*fx, [&](const std::string& name, const Json&, const Tokenizer& tok, const ChatTemplate& t) {
    for (size_t c = 0; c < (*fx)["conversations"].size(); ++c) {
      auto messages = conversation(*fx, int(c), (*fx)["conversations"][c]["messages"].size());
      RenderedChat r;
      try {
        r = t.render(messages);
      } catch (const Error&) {
        continue;
      }
      Encoding enc = tok.encode_with_offsets(r.text);
      ChatTokens ct = tokenize_chat(tok, r);
      std::string what = name + " conversation " + std::to_string(c);
      size_t span = 0;
      for (size_t a = 0; a < ct.ids.size(); ++a) {
        if (!ct.assistant_mask[a]) continue;
        size_t b = a;
        while (b < ct.ids.size() && ct.assistant_mask[b]) ++b;
        ASSERT_LT(span, r.assistant_spans.size()) << what << ": more assistant runs than answers";
        const TextSpan& s = r.assistant_spans[span++];
        size_t covered_begin = size_t(enc.offsets[a].first), covered_end = size_t(enc.offsets[b - 1].second);
        std::vector<int64_t> upto_a(ct.ids.begin(), ct.ids.begin() + a), upto_b(ct.ids.begin(), ct.ids.begin() + b);
        std::string before = tok.decode(upto_a), after = tok.decode(upto_b);
        ASSERT_EQ(after.compare(0, before.size(), before), 0) << what;
        EXPECT_EQ(after.substr(before.size()), r.text.substr(covered_begin, covered_end - covered_begin)) << what;
        EXPECT_EQ(covered_end, s.end) << what << ": the run must end with the end marker";
        ASSERT_LE(covered_begin, s.begin) << what;
        std::string extra = r.text.substr(covered_begin, s.begin - covered_begin);
        EXPECT_EQ(extra.find_first_not_of(" \n"), std::string::npos) << what << ": straddling token brings \"" << extra
                                                                     << "\"";
        straddles += !extra.empty();
        a = b;
      }
      EXPECT_EQ(span, r.assistant_spans.size()) << what << ": an answer has no assistant tokens";
      spans += span;
    }
  });
  EXPECT_GT(spans, 100u);
  EXPECT_GT(straddles, 0u) << "the fixtures should exercise a token straddling a span's start";
}

// Prompt + completion: the text is the whole conversation's and so are the ids (one tokenisation);
// the prompt's own ids are a prefix unless BPE merged across the boundary, in which case the
// completion starts at the merged token.
TEST(ChatTemplateReference, PromptCompletionSplit) {
  REQUIRE_FIXTURES();
  size_t pairs = 0, merged = 0;
  for_each_case(*fx, [&](const std::string& name, const Json&, const Tokenizer& tok, const ChatTemplate& t) {
    for (size_t c = 0; c < (*fx)["conversations"].size(); ++c) {
      auto all = conversation(*fx, int(c), (*fx)["conversations"][c]["messages"].size());
      for (size_t k = 1; k < all.size(); ++k) {
        if (all[k].role != ChatRole::assistant) continue;
        std::vector<ChatMessage> prompt(all.begin(), all.begin() + k), completion(all.begin() + k, all.end());
        RenderedChat pc, whole, head;
        try {
          whole = t.render(all);
          head = t.render(prompt, /*add_generation_prompt=*/true);
          pc = t.render_prompt_completion(prompt, completion);
        } catch (const Error&) {
          continue;
        }
        std::string what = name + " conversation " + std::to_string(c) + " split at " + std::to_string(k);
        ASSERT_EQ(pc.text, whole.text) << what;
        ASSERT_EQ(pc.text.substr(0, pc.completion_begin), head.text) << what;
        ChatTokens ct = tokenize_chat(tok, pc), whole_ids = tokenize_chat(tok, whole);
        EXPECT_EQ(ct.ids, whole_ids.ids) << what;
        std::vector<int64_t> prompt_ids = tokenize_chat(tok, head).ids;
        bool is_prefix = prompt_ids.size() <= ct.ids.size() &&
                         std::equal(prompt_ids.begin(), prompt_ids.end(), ct.ids.begin());
        if (is_prefix) {
          EXPECT_EQ(ct.completion_start, prompt_ids.size()) << what;
        } else {
          ++merged;
          ASSERT_GE(prompt_ids.size(), 1u);
          EXPECT_EQ(ct.completion_start, prompt_ids.size() - 1) << what << ": one token merged across the boundary";
          EXPECT_TRUE(std::equal(prompt_ids.begin(), prompt_ids.end() - 1, ct.ids.begin())) << what;
        }
        // No assistant token before the completion: the prompt's own answers are context.
        for (size_t i = 0; i < ct.completion_start; ++i) EXPECT_FALSE(ct.assistant_mask[i]) << what << " token " << i;
        ++pairs;
      }
    }
  });
  EXPECT_GT(pairs, 100u);
  EXPECT_GT(merged, 0u) << "the fixtures should exercise a BPE merge across the prompt / completion boundary";
}

// The straddling rule on the two cases the fixtures hold. ChatML's header ends with "\n" and this
// answer starts with "\n\n": the byte-level BPE encodes "\n\n\n" as "ĊĊ" "Ċ", so "ĊĊ" holds the
// header's last byte and the answer's first. It is an assistant token and starts the completion; the
// prompt tokenised alone ends with "Ċ" instead. Llama 2's answer follows " ", which SentencePiece
// puts into the answer's first token ("▁one").
TEST(ChatTemplateReference, StraddlingTokensBelongToTheAnswer) {
  REQUIRE_FIXTURES();
  auto chatml = fixture_tokenizer("chatml");
  ASSERT_TRUE(chatml);
  ChatTemplate t = ChatTemplate::for_tokenizer(*chatml);
  std::vector<ChatMessage> prompt = {usr("List two things.")};
  RenderedChat r = t.render_prompt_completion(prompt, {bot("\n\n- one")});
  ChatTokens ct = tokenize_chat(*chatml, r);
  Encoding enc = chatml->encode_with_offsets(r.text);
  size_t k = ct.completion_start;
  ASSERT_LT(k, ct.ids.size());
  EXPECT_EQ(chatml->id_to_token(ct.ids[k]), "\xc4\x8a\xc4\x8a");  // "ĊĊ"
  EXPECT_EQ(size_t(enc.offsets[k].first), r.completion_begin - 1);
  EXPECT_EQ(size_t(enc.offsets[k].second), r.completion_begin + 1);
  EXPECT_EQ(r.assistant_spans.at(0).begin, r.completion_begin);
  EXPECT_TRUE(ct.assistant_mask[k]);
  EXPECT_FALSE(ct.assistant_mask[k - 1]);
  std::vector<int64_t> prompt_ids = tokenize_chat(*chatml, t.render(prompt, true)).ids;
  ASSERT_EQ(prompt_ids.size(), k + 1);
  EXPECT_EQ(chatml->id_to_token(prompt_ids.back()), "\xc4\x8a");  // "Ċ"
  EXPECT_TRUE(std::equal(prompt_ids.begin(), prompt_ids.begin() + k, ct.ids.begin()));

  auto llama = fixture_tokenizer("llama2");
  ASSERT_TRUE(llama);
  RenderedChat l = ChatTemplate::for_tokenizer(*llama).render({usr("Hi"), bot("one")});
  ChatTokens lt = tokenize_chat(*llama, l);
  Encoding le = llama->encode_with_offsets(l.text);
  size_t first = std::find(lt.assistant_mask.begin(), lt.assistant_mask.end(), 1) - lt.assistant_mask.begin();
  ASSERT_LT(first, lt.ids.size());
  EXPECT_EQ(llama->id_to_token(lt.ids[first]), "\xe2\x96\x81one");  // "▁one"
  EXPECT_EQ(size_t(le.offsets[first].first), l.assistant_spans.at(0).begin);  // the template's " " is in the span
  EXPECT_EQ(l.text[l.assistant_spans[0].begin], ' ');
}

// With a generation prompt the completion starts after the last token, and nothing is an answer
// past the prompt.
TEST(ChatTemplateReference, GenerationPromptEndsThePrompt) {
  REQUIRE_FIXTURES();
  for_each_case(*fx, [&](const std::string& name, const Json&, const Tokenizer& tok, const ChatTemplate& t) {
    RenderedChat r = t.render({usr("Hello")}, /*add_generation_prompt=*/true);
    ChatTokens ct = tokenize_chat(tok, r);
    EXPECT_EQ(ct.completion_start, ct.ids.size()) << name;
    EXPECT_EQ(std::count(ct.assistant_mask.begin(), ct.assistant_mask.end(), 1), 0) << name;
  });
}

// The tokenizer must encode the family's markers as single tokens: ChatML on a tokenizer without
// <|im_start|> is refused with the fix.
TEST(ChatTemplateReference, MarkersMustBeTokens) {
  REQUIRE_FIXTURES();
  auto llama = fixture_tokenizer("llama2");
  ASSERT_TRUE(llama);
  expect_error([&] { ChatTemplate::for_tokenizer(*llama, "chatml"); },
               {"chat template chatml", "<|im_start|>", "--chat-template plain"});
  expect_error([&] { ChatTemplate::for_tokenizer(*llama, "llama3"); }, {"<|start_header_id|>"});
  auto chatml = fixture_tokenizer("chatml");
  ASSERT_TRUE(chatml);
  expect_error([&] { ChatTemplate::for_tokenizer(*chatml, "llama2"); }, {"llama2", "no bos_token"});
  EXPECT_EQ(ChatTemplate::for_tokenizer(*llama, "plain").describe(), "plain (built-in chat template)");
  // --chat-template-path: a Jinja file; a name that is neither is refused with both options
  test::TempDir dir;
  test::write_bytes(dir.path() / "t.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_EQ(ChatTemplate::for_tokenizer(*llama, (dir.path() / "t.jinja").string()).render({usr("x")}).text, "x");
  expect_error([&] { ChatTemplate::for_tokenizer(*llama, "nosuch"); },
               {"unknown chat template \"nosuch\"", "--chat-template NAME or --chat-template-path FILE"});
}

// `rlhf chat-template` prints what apply_chat_template gives: the text (tokenize=False) and the ids
// (tokenize=True) of the fixtures' renders; with --chat-template-path and --tools, Qwen2.5's official
// template over a tool-calling conversation as tests/ref/jinja_fixtures.py recorded it.
#ifdef RLHF_CHAT_FIXTURE_DIR
TEST(ChatTemplateCli, RendersAndTokenizesAsTransformers) {
  REQUIRE_FIXTURES();
  test::TempDir dir;
  size_t checked = 0;
  for (const Json& rec : (*fx)["renders"]) {
    std::string name = rec["template"].get<std::string>();
    if ((name != "qwen2_5" && name != "llama3_1" && name != "mistral") || rec.contains("error")) continue;
    const Json& info = (*fx)["templates"][name];
    Json messages = (*fx)["conversations"][rec["conversation"].get<int>()]["messages"];
    messages.erase(messages.begin() + rec["messages"].get<long>(), messages.end());
    fs::path file = dir.path() / ("m" + std::to_string(checked) + ".json");
    test::write_bytes(file, messages.dump());
    std::string cmd = test::rlhf_bin() + " chat-template --tokenizer " + test::shell_quote((kFixtureDir / info["dir"].get<std::string>()).string()) +
                      " --messages " + test::shell_quote(file.string()) +
                      (rec["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : "");
    test::RunResult text = test::run_command(cmd);
    ASSERT_EQ(text.exit_code, 0) << cmd << ": " << text.err;
    EXPECT_EQ(text.out, rec["text"].get<std::string>()) << cmd;
    test::RunResult ids = test::run_command(cmd + " --ids");
    ASSERT_EQ(ids.exit_code, 0) << ids.err;
    EXPECT_EQ(parse_json(ids.out, "stdout").get<std::vector<int64_t>>(), rec["ids"].get<std::vector<int64_t>>()) << cmd;
    if (++checked == 6) break;
  }
  EXPECT_EQ(checked, 6u);

  std::string tok = test::shell_quote((kFixtureDir / "qwen2_5").string());
  test::write_bytes(dir.path() / "bad.json", "[{\"role\": \"user\", \"content\": \"x\"}");
  test::expect_cli_error(test::run_command(test::rlhf_bin() + " chat-template --tokenizer " + tok + " --messages " +
                                           test::shell_quote((dir.path() / "bad.json").string())),
                         {"bad.json (--messages): not valid JSON"}, "truncated messages");
  test::write_bytes(dir.path() / "two.json", R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  test::expect_cli_error(test::run_command(test::rlhf_bin() + " chat-template --tokenizer " +
                                           test::shell_quote((kFixtureDir / "mistral").string()) + " --messages " +
                                           test::shell_quote((dir.path() / "two.json").string()) + " --chat-template mistral"),
                         {"mistral (built-in chat template): template line 1", "template raised: Conversation roles must alternate"},
                         "mistral refuses two user turns");

#ifdef RLHF_JINJA_FIXTURE_DIR
  fs::path jx = fs::path(RLHF_JINJA_FIXTURE_DIR) / "expected.json";
  ASSERT_TRUE(fs::exists(jx)) << jx << " is missing: run ctest (fixture jinja_fixtures_generate)";
  nlohmann::ordered_json jfx = nlohmann::ordered_json::parse(test::read_bytes(jx));
  bool found = false;
  for (const auto& c : jfx["cases"]) {
    if (c["template"] != "hf/qwen2_5_instruct.jinja" || c["conversation"] != "tool_call_dict" ||
        !c["vars"]["add_generation_prompt"].get<bool>())
      continue;
    found = true;
    test::write_bytes(dir.path() / "tools_msgs.json", c["vars"]["messages"].dump());
    test::write_bytes(dir.path() / "tools.json", c["vars"]["tools"].dump());
    test::RunResult r = test::run_command(
        test::rlhf_bin() + " chat-template --tokenizer " + tok + " --messages " +
        test::shell_quote((dir.path() / "tools_msgs.json").string()) + " --tools " +
        test::shell_quote((dir.path() / "tools.json").string()) + " --add-generation-prompt --chat-template-path " +
        test::shell_quote((template_dir() / "hf" / "qwen2_5_instruct.jinja").string()) + " --date 2024-07-26");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c["text"].get<std::string>());
  }
  EXPECT_TRUE(found);
#endif
}
#endif

}  // namespace
}  // namespace rlhf
