// Chat templates: the Jinja canonical form that recognition rests on; recognition of the official
// templates (tests/data/chat_templates/) and refusal of others; rendering, spans and the checks the
// official templates make; and, against transformers' apply_chat_template on every prefix of every
// conversation of tests/ref/chat_template_fixtures.py, the text, the ids, BOS / EOS neither doubled
// nor missing, the assistant mask (decoded, it gives the answers and their end markers) and the
// prompt / completion split.
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
#include "tokenizer/chat_template_known.h"
#include "tokenizer/jinja_canonical.h"
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

// ---- Jinja canonical form ----------------------------------------------------------------------------
// Expected values follow jinja2 3.1 with trim_blocks and lstrip_blocks (what each renders is noted).

TEST(JinjaCanonical, WhitespaceControlAsHuggingFaceRenders) {
  // Renders "  hello\n": the newline after a block tag goes (trim_blocks), the final newline too.
  EXPECT_EQ(jinja_canonical_form("{% if x %}\n  hello\n{% endif %}\n"), "{%if x%}  hello\n{%endif%}");
  // Renders "a": "-" strips all whitespace on its side.
  EXPECT_EQ(jinja_canonical_form("  {%- if x -%}  a  {%- endif %}"), "{%if x%}a{%endif%}");
  // Renders "    a\n    b\n": lstrip_blocks does not touch {{ }}.
  EXPECT_EQ(jinja_canonical_form("{% for m in ms %}\n    {{ m }}\n{% endfor %}"), "{%for m in ms%}    {{m}}\n{%endfor%}");
  // Renders "a\nb": spaces from the start of a line to a block tag go.
  EXPECT_EQ(jinja_canonical_form("a\n  {% if x %}b{% endif %}"), "a\n{%if x%}b{%endif%}");
  EXPECT_EQ(jinja_canonical_form("  {% if x %}b{% endif %}"), "{%if x%}b{%endif%}");
  // Renders "a  b": not at the start of a line.
  EXPECT_EQ(jinja_canonical_form("a  {% if x %}b{% endif %}"), "a  {%if x%}b{%endif%}");
  // Renders "  b\n  \nc": "+" turns lstrip_blocks (left) and trim_blocks (right) off.
  EXPECT_EQ(jinja_canonical_form("{%+ if x %}\n  b\n  {%+ endif +%}\nc"), "{%if x%}  b\n  {%endif%}\nc");
  // Comments render nothing, and trim_blocks applies after them.
  EXPECT_EQ(jinja_canonical_form("{# c #}\nx"), "x");
  // Renders "a\nb\n": line endings become "\n" and one final newline goes.
  EXPECT_EQ(jinja_canonical_form("a\r\nb\r\n\n"), "a\nb\n");
}

TEST(JinjaCanonical, TagBodiesKeepOnlyTokens) {
  EXPECT_EQ(jinja_canonical_form("{{ message [ 'content' ] | trim }}"), "{{message['content']|trim}}");
  EXPECT_EQ(jinja_canonical_form("{%if not loop.first and x is  defined%}{%endif%}"),
            "{%if not loop.first and x is defined%}{%endif%}");
  // Both quote styles and both spellings of a line break give one literal.
  EXPECT_EQ(jinja_canonical_form("{{ \"a\\nb\" }}"), jinja_canonical_form("{{ 'a\nb' }}"));
  EXPECT_EQ(jinja_canonical_form("{{ \"it's\" }}"), "{{'it\\'s'}}");
  // Brackets are balanced, so "}}" inside a dict does not end the tag (renders "1").
  EXPECT_EQ(jinja_canonical_form("{{ {'a': 1}['a'] }}"), "{{{'a':1}['a']}}");
  // Delimiters inside string literals do not end the tag.
  EXPECT_EQ(jinja_canonical_form("{{ '%} }}' }}x"), "{{'%} }}'}}x");
  // Unterminated tags stay text.
  EXPECT_EQ(jinja_canonical_form("a {{ b"), "a {{ b");
}

TEST(JinjaCanonical, UnescapeFollowsPython) {
  EXPECT_EQ(jinja_unescape(R"(a\nb\t\\\'\")"), "a\nb\t\\'\"");
  EXPECT_EQ(jinja_unescape(R"(\x41\u00e9\U0001F600\101)"), "A\xc3\xa9\xf0\x9f\x98\x80" "A");
  EXPECT_EQ(jinja_unescape(R"(\boxed{} \q)"), "\boxed{} \\q");  // \b is a backspace; \q stays
}

// A chat_template is untrusted input: fragments of tags, marks, quotes and escapes in any order
// must neither crash nor read out of bounds (run it under ASan), and never match a template.
TEST(JinjaCanonical, ArbitraryInputIsSafe) {
  const char* pieces[] = {"{{", "}}", "{%", "%}", "{#", "#}", "{", "}", "-", "+", "'", "\"", "\\", "\\x4", "\\u00",
                          "\n", "\r", " ", "[", "]", "(", ")", "a", "@SYSTEM@", "<|im_start|>", "\xc3\xa9", "\xff"};
  std::mt19937 rng(20240229);
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    for (int k = int(rng() % 40); k > 0; --k) s += pieces[rng() % std::size(pieces)];
    EXPECT_LE(jinja_canonical_form(s).size(), 2 * s.size() + 2) << s;  // re-quoting may double a literal
    EXPECT_FALSE(recognise_chat_template(s)) << s;
    EXPECT_LE(jinja_unescape(s).size(), s.size() + 3) << s;
  }
}

// ---- recognition -------------------------------------------------------------------------------------

struct KnownCase {
  const char* file;
  ChatFamily family;
  const char* default_system;
  bool space_after_eos;
};

const KnownCase kKnown[] = {
    {"chatml", ChatFamily::chatml, "", false},
    {"qwen2", ChatFamily::chatml, "You are a helpful assistant.", false},
    {"qwen2_5", ChatFamily::chatml, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", false},
    {"llama3", ChatFamily::llama3, "", false},
    {"llama3_1", ChatFamily::llama31, "", false},
    {"llama3_2", ChatFamily::llama32, "", false},
    {"llama2", ChatFamily::llama2, "", false},
    {"mistral_v0_1", ChatFamily::mistral, "", true},
    {"mistral", ChatFamily::mistral, "", false},
    {"zephyr", ChatFamily::zephyr, "", false},
    {"plain", ChatFamily::plain, "", false},
};

TEST(ChatTemplateRecognise, OfficialTemplates) {
  for (const KnownCase& k : kKnown) {
    ChatTemplate t = ChatTemplate::recognise(read_template(k.file), "<s>", "</s>");
    EXPECT_EQ(t.format().family, k.family) << k.file;
    EXPECT_EQ(t.format().default_system, k.default_system) << k.file;
    EXPECT_EQ(t.format().space_after_eos, k.space_after_eos) << k.file;
    EXPECT_EQ(t.jinja(), read_template(k.file)) << k.file << ": a recognised template keeps its own source";
  }
  EXPECT_EQ(ChatTemplate::recognise(read_template("qwen2_5"), "", "<|im_end|>").describe(),
            "chatml, default system prompt \"You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\" "
            "(recognised as Qwen2.5-Instruct's chat_template)");
  EXPECT_EQ(ChatTemplate::named("mistral", "<s>", "</s>").describe(), "mistral (chosen by name)");
}

TEST(ChatTemplateRecognise, ReformattedTemplatesStillMatch) {
  // Llama 3 with other spacing inside tags, CRLF line ends and a trailing newline.
  std::string llama3 = read_template("llama3");
  std::string spaced = llama3;
  for (size_t p = spaced.find("{{ content }}"); p != std::string::npos; p = spaced.find("{{ content }}"))
    spaced.replace(p, 13, "{{content}}");
  EXPECT_NE(spaced, llama3);
  EXPECT_EQ(ChatTemplate::recognise(spaced + "\r\n", "", "").format().family, ChatFamily::llama3);
  // Qwen2.5 written on one line: its "{%-" marks strip the indentation anyway.
  std::string qwen = read_template("qwen2_5"), one_line;
  for (size_t i = 0; i < qwen.size(); ++i) {
    if (qwen[i] != '\n') one_line += qwen[i];
    else while (i + 1 < qwen.size() && qwen[i + 1] == ' ') ++i;
  }
  auto r = recognise_chat_template(one_line);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->format.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplateRecognise, DefaultSystemPromptIsReadFromTheTemplate) {
  // Qwen2.5-Math's prompt, with an escaped backslash and quote.
  std::string qwen = read_template("qwen2_5");
  const std::string def = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  std::string math = qwen;
  for (size_t p = math.find(def); p != std::string::npos; p = math.find(def))
    math.replace(p, def.size(), R"(Please reason step by step, and put your final answer within \\boxed{}. Don\'t guess.)");
  auto r = recognise_chat_template(math);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->format.default_system, "Please reason step by step, and put your final answer within \\boxed{}. Don't guess.");
  // Different prompts in the tools and the plain branch: not Qwen's template.
  std::string mixed = qwen;
  mixed.replace(mixed.find(def), def.size(), "Something else.");
  EXPECT_FALSE(recognise_chat_template(mixed));
}

TEST(ChatTemplateRecognise, JinjaOfANamedTemplateIsRecognisedAsIt) {
  for (const std::string& name : ChatTemplate::names()) {
    ChatTemplate t = ChatTemplate::named(name, "<s>", "</s>");
    auto r = recognise_chat_template(t.jinja());
    ASSERT_TRUE(r) << name;
    EXPECT_EQ(r->format.family, t.format().family) << name;
  }
  // The official sources are byte for byte the reference files.
  EXPECT_EQ(ChatTemplate::named("chatml", "", "").jinja(), read_template("chatml"));
  EXPECT_EQ(ChatTemplate::named("llama3", "", "").jinja(), read_template("llama3"));
  EXPECT_EQ(ChatTemplate::named("llama3.1", "", "").jinja(), read_template("llama3_1"));
  EXPECT_EQ(ChatTemplate::named("llama3.2", "", "").jinja(), read_template("llama3_2"));
  EXPECT_EQ(ChatTemplate::named("llama2", "", "").jinja(), read_template("llama2"));
  EXPECT_EQ(ChatTemplate::named("mistral", "", "").jinja(), read_template("mistral"));
  EXPECT_EQ(ChatTemplate::named("zephyr", "", "").jinja(), read_template("zephyr"));
  EXPECT_EQ(ChatTemplate::named("plain", "", "").jinja(), read_template("plain"));
  ChatFormat v01;
  v01.family = ChatFamily::mistral;
  v01.space_after_eos = true;
  EXPECT_EQ(ChatTemplate(v01).jinja(), read_template("mistral_v0_1"));
  // A ChatML default system prompt goes into Qwen2's template, escaped.
  ChatFormat qwen;
  qwen.default_system = "Say \"hi\",\nit's \\ fine.";
  std::string src = ChatTemplate(qwen).jinja();
  auto r = recognise_chat_template(src);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->format.default_system, qwen.default_system);
  EXPECT_EQ(ChatTemplate(ChatFormat{}).jinja(), read_template("chatml"));
  qwen.default_system = "You are a helpful assistant.";
  EXPECT_EQ(ChatTemplate(qwen).jinja(), read_template("qwen2"));
}

TEST(ChatTemplateRecognise, OtherTemplatesAreRefusedWithTheFix) {
  // A cut-down Llama 3.1 template (no system message, no generation prompt) is not Llama 3.1's.
  std::string llama31 =
      "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
      "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
      "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
      "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}";
  expect_error([&] { ChatTemplate::recognise(llama31, "", ""); },
               {"not one of the official templates", "--chat-template", "llama3", "plain"});
  // Zephyr without its line breaks renders differently, so it is not Zephyr's template.
  std::string zephyr = read_template("zephyr"), flat;
  for (char c : zephyr)
    if (c != '\n') flat += c;
  expect_error([&] { ChatTemplate::recognise(flat, "", ""); }, {"--chat-template", "zephyr"});
  // ChatML that also renders the assistant's name.
  std::string chatml = read_template("chatml");
  chatml.replace(chatml.find("message['role']"), 15, "message['role'] + message['name']");
  expect_error([&] { ChatTemplate::recognise(chatml, "", ""); }, {"ChatML", "--chat-template chatml"});
  expect_error([&] { ChatTemplate::recognise("{{ messages }}", "", ""); },
               {"chatml, llama3, llama3.1, llama3.2, llama2, mistral, zephyr, plain"});
  expect_error([&] { ChatTemplate::named("vicuna", "", ""); }, {"unknown chat template \"vicuna\"", "chatml"});
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
  expect_error([&] { parse(R"([{"role":"tool","content":"x"}])"); },
               {"data.jsonl:3: messages[0]", "role \"tool\" is not supported", "\"assistant\""});
  expect_error([&] { parse(R"([{"role":"user"}])"); }, {"messages[0]", "\"content\" must be a string", "missing"});
  expect_error([&] { parse(R"([{"role":"user","content":null}])"); }, {"\"content\" must be a string", "null"});
  expect_error([&] { parse(R"([{"content":"x"}])"); }, {"messages[0]", "\"role\""});
  expect_error([&] { parse(R"([])"); }, {"data.jsonl:3: messages", "no messages"});
  expect_error([&] { parse(R"({"role":"user"})"); }, {"expected an array"});
  expect_error([&] { parse(R"(["hi"])"); }, {"messages[0]", "must be an object"});
}

// ---- rendering ---------------------------------------------------------------------------------------

TEST(ChatTemplateRender, ChatMLSpansCoverAnswerAndEndMarker) {
  ChatTemplate t = ChatTemplate::named("chatml", "", "<|im_end|>");
  RenderedChat r = t.render({usr("hi"), bot("yo"), usr("again"), bot("")});
  EXPECT_EQ(r.text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
                    "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n");
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "yo<|im_end|>");
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
  const Case cases[] = {{"chatml", "  A <|im_end|>"}, {"llama3", "A<|eot_id|>"}, {"llama3.1", "A<|eot_id|>"},
                        {"llama2", "A </s>"},          {"zephyr", "  A </s>"},   {"plain", "  A </s>"}};
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
  // Llama 3.2: today's date (local time, "%d %b %Y" in the C locale), unless one is given.
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char today[32];
  std::strftime(today, sizeof today, "%d %b %Y", &tm);
  ChatTemplate l32 = ChatTemplate::named("llama3.2", "<|begin_of_text|>", "<|eot_id|>");
  std::string dated = l32.render({usr("Q")}).text;
  EXPECT_NE(dated.find(std::string("\nToday Date: ") + today + "\n\n<|eot_id|>"), std::string::npos) << dated;
  ChatFormat fixed = l32.format();
  fixed.date = "01 Jan 2025";
  EXPECT_NE(ChatTemplate(fixed).render({usr("Q")}).text.find("Today Date: 01 Jan 2025\n"), std::string::npos);
  RenderedChat p = ChatTemplate::named("plain", "", "<|endoftext|>").render({usr("Q"), bot("A")}, true);
  EXPECT_EQ(p.text, "User: Q\nAssistant: A<|endoftext|>\nAssistant:");
}

TEST(ChatTemplateRender, RefusesWhatTheOfficialTemplatesRefuse) {
  ChatTemplate llama2 = ChatTemplate::named("llama2", "<s>", "</s>");
  ChatTemplate mistral = ChatTemplate::named("mistral", "<s>", "</s>");
  expect_error([&] { llama2.render({usr("a"), usr("b")}, false, "data.jsonl:7"); },
               {"data.jsonl:7: message 1 (user)", "alternate user/assistant", "expected an assistant"});
  expect_error([&] { llama2.render({bot("a")}); }, {"message 0 (assistant)", "alternate"});
  expect_error([&] { llama2.render({usr("a"), bot("b"), sys("c"), usr("d")}); },
               {"message 2 (system)", "only as the first message"});
  expect_error([&] { llama2.render({sys("alone")}); }, {"system message alone renders nothing"});
  expect_error([&] { mistral.render({sys("s"), usr("a")}); }, {"message 0 (system)", "no system role", "--chat-template"});
  expect_error([&] { mistral.render({usr("a"), bot("b"), bot("c")}); }, {"message 2 (assistant)", "alternate"});
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
  RenderedChat r = llama3.render({bot("\xe3\x80\x80\x1c x\xe2\x80\x8b \xc2\xa0\n")});  // U+3000 ... ZWSP NBSP
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
int64_t end_marker(const Tokenizer& tok, ChatFamily family) {
  if (family == ChatFamily::chatml) return *tok.token_to_id("<|im_end|>");
  if (is_llama3_family(family)) return *tok.token_to_id("<|eot_id|>");
  return tok.eos_id();
}

// Where the official template silently renders nothing (Llama 2 with a system message only), rlhf
// refuses instead.
bool rlhf_refuses(const ChatTemplate& t, const Json& record) {
  return t.format().family == ChatFamily::llama2 && record.contains("text") && record["text"] == "";
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
    if (info.contains("date_string")) {  // Llama 3.2's clock date, as it was when the fixtures were made
      ChatFormat f = t.format();
      f.date = info["date_string"].get<std::string>();
      t = ChatTemplate(f);
    }
    fn(name, info, *tok, t);
  }
}

TEST(ChatTemplateReference, RecognisedFromTokenizerConfig) {
  REQUIRE_FIXTURES();
  for_each_case(*fx, [&](const std::string& name, const Json& info, const Tokenizer& tok, const ChatTemplate& t) {
    EXPECT_EQ(ChatTemplate::names().at(size_t(t.format().family)), info["family"].get<std::string>()) << name;
    EXPECT_EQ(t.format().default_system, info.value("default_system", "")) << name;
    EXPECT_EQ(t.format().space_after_eos, info.value("space_after_eos", false)) << name;
    EXPECT_EQ(t.jinja(), test::read_bytes(template_dir() / info["jinja"].get<std::string>())) << name;
    EXPECT_EQ(t.format().bos_token, tok.bos_token()) << name;
    EXPECT_EQ(t.format().eos_token, tok.eos_token()) << name;
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
      if (rec.contains("error") || rlhf_refuses(t, rec)) {
        expect_error([&] { t.render(messages, gen); }, {"message"}, what.c_str());
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
  for_each_case(*fx, [&](const std::string& name, const Json&, const Tokenizer& tok, const ChatTemplate& t) {
    ChatFamily family = t.format().family;
    int64_t bos = tok.bos_id(), end = end_marker(tok, family);
    for (size_t c = 0; c < (*fx)["conversations"].size(); ++c) {
      auto messages = conversation(*fx, int(c), (*fx)["conversations"][c]["messages"].size());
      RenderedChat r;
      try {
        r = t.render(messages);
      } catch (const Error&) {
        continue;  // orders this template refuses (checked above)
      }
      ChatTokens ct = tokenize_chat(tok, r);
      const auto& ids = ct.ids;
      size_t n_bos = bos < 0 ? 0 : std::count(ids.begin(), ids.end(), bos);
      size_t n_user = std::count_if(messages.begin(), messages.end(), [](auto& m) { return m.role == ChatRole::user; });
      std::string what = name + " conversation " + std::to_string(c);
      switch (family) {
        case ChatFamily::llama3:
        case ChatFamily::llama31:
        case ChatFamily::llama32:
        case ChatFamily::mistral:
          EXPECT_EQ(n_bos, 1u) << what;
          EXPECT_EQ(ids.at(0), bos) << what;
          break;
        case ChatFamily::llama2:
          EXPECT_EQ(n_bos, n_user) << what;
          EXPECT_EQ(ids.at(0), bos) << what;
          break;
        case ChatFamily::plain:
          EXPECT_EQ(n_bos, bos == end ? 1 + r.assistant_spans.size() : 1) << what;  // GPT-2: BOS is EOS
          EXPECT_EQ(ids.at(0), bos) << what;
          break;
        case ChatFamily::chatml:
        case ChatFamily::zephyr:
          EXPECT_EQ(n_bos, 0u) << what << ": these templates write no BOS, and neither does apply_chat_template";
          break;
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
  EXPECT_EQ(size_t(le.offsets[first].first), l.assistant_spans.at(0).begin - 1);
  EXPECT_EQ(l.text[l.assistant_spans[0].begin - 1], ' ');
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
  EXPECT_EQ(ChatTemplate::for_tokenizer(*llama, "plain").format().family, ChatFamily::plain);
}

}  // namespace
}  // namespace rlhf
