// Whole tokenizers on small hand-made tokenizer.json files: ids and byte offsets with special
// tokens, decoding, the streaming decoder on characters split over tokens, thread safety,
// tokenizer_config.json and save(), errors that name the file and the field, the training of
// byte-level BPE, and the `rlhf tokenize` / `rlhf tokenizer` commands.
#include <gtest/gtest.h>

#include <thread>

#include "io/json.h"
#include "test_util.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {
namespace {

using test::expect_cli_error;
using test::expect_error;
using test::TempDir;
namespace fs = std::filesystem;
using Offsets = std::vector<std::pair<int64_t, int64_t>>;

// A byte-level BPE: the 256 byte characters (id = byte value), one new token per merge from 256
// on, "<|endoftext|>" (300) and "<|bos|>" (301) as special tokens, BOS added by the template.
Json byte_level_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_utf8()[b]] = b;
  Json merge_list = Json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    merge_list.push_back(a + " " + b);
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
  }
  auto special = [](const char* content, int id) {
    return Json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  Json bos_template = {{"type", "TemplateProcessing"},
                       {"single", {{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                                   {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                       {"special_tokens", {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {301}}, {"tokens", {"<|bos|>"}}}}}}};
  return {{"version", "1.0"},
          {"added_tokens", {special("<|endoftext|>", 300), special("<|bos|>", 301)}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "Sequence"}, {"processors", {{{"type", "ByteLevel"}, {"trim_offsets", false}}, bos_template}}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

const std::vector<std::pair<std::string, std::string>> kHelloWorld = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"},                                 // hello = 259
    {"\u0120", "w"}, {"o", "r"}, {"\u0120w", "or"}, {"l", "d"}, {"\u0120wor", "ld"}};  // Ġworld = 264

Json bos_eos_config() { return {{"bos_token", "<|bos|>"}, {"eos_token", "<|endoftext|>"}}; }

// A Llama-2-style tokenizer.json: "▁" spaces, <0xXX> byte fallback, <s> added by the template.
Json llama2_tokenizer() {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = 3 + b;
  }
  for (auto [token, id] : std::vector<std::pair<std::string, int>>{
           {"\u2581", 259}, {"H", 260}, {"e", 261}, {"y", 262}, {"\u2581H", 263}, {"\u2581He", 264}, {"\u2581Hey", 265}})
    vocab[token] = id;
  Json special = {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}};
  return {{"added_tokens", {special}},
          {"normalizer", {{"type", "Sequence"},
                          {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                           {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", {{"type", "TemplateProcessing"},
                              {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
                              {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"decoder", {{"type", "Sequence"},
                       {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                     {{"type", "ByteFallback"}},
                                     {{"type", "Fuse"}},
                                     {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
                     {"vocab", vocab}, {"merges", {"\u2581 H", "\u2581H e", "\u2581He y"}}}}};
}

std::vector<std::string> stream(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  Tokenizer::StreamDecoder s = tok.stream_decoder();
  std::vector<std::string> out;
  for (int64_t id : ids) out.push_back(s.push(id));
  out.push_back(s.finish());
  return out;
}

// ---- encode / decode -------------------------------------------------------------------------------

TEST(Tokenizer, IdsAndByteOffsetsWithSpecialTokens) {
  HfTokenizer tok(byte_level_tokenizer(kHelloWorld), "t", bos_eos_config());
  std::string text = "hello world<|endoftext|>\u00e9!";
  Encoding e = tok.encode_with_offsets(text);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{259, 264, 300, 0xC3, 0xA9, '!'}));
  // Both byte tokens of "é" point at the whole character, as in HF.
  EXPECT_EQ(e.offsets, (Offsets{{0, 5}, {5, 11}, {11, 24}, {24, 26}, {24, 26}, {26, 27}}));
  Encoding s = tok.encode_with_offsets(text, /*add_special_tokens=*/true);
  EXPECT_EQ(s.ids, (std::vector<int64_t>{301, 259, 264, 300, 0xC3, 0xA9, '!'}));
  EXPECT_EQ(s.offsets.front(), (std::pair<int64_t, int64_t>{0, 0}));
  EXPECT_EQ(tok.encode(""), std::vector<int64_t>{});
  EXPECT_EQ(tok.encode("", true), std::vector<int64_t>{301});
  EXPECT_EQ(tok.special_prefix(), std::vector<int64_t>{301});
  EXPECT_TRUE(tok.special_suffix().empty());
  EXPECT_TRUE(tok.add_bos());
  EXPECT_FALSE(tok.add_eos());
  EXPECT_EQ(tok.bos_id(), 301);
  EXPECT_EQ(tok.eos_id(), 300);
  EXPECT_EQ(tok.pad_id(), -1);
}

TEST(Tokenizer, DecodeAndVocabulary) {
  HfTokenizer tok(byte_level_tokenizer(kHelloWorld), "t", nullptr);
  std::vector<int64_t> ids = {301, 259, 264, 300, 0xC3, 0xA9, '!'};
  EXPECT_EQ(tok.decode(ids), "<|bos|>hello world<|endoftext|>\u00e9!");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "hello world\u00e9!");
  EXPECT_EQ(tok.decode({259, 280, 99999, -5, 264}), "hello world");  // ids without a token are skipped
  EXPECT_EQ(tok.decode({0xC3}), "\ufffd");                             // half a character
  EXPECT_EQ(tok.vocab_size(), 302);
  EXPECT_EQ(tok.id_to_token(264), "\u0120world");
  EXPECT_EQ(tok.id_to_token(300), "<|endoftext|>");
  EXPECT_EQ(tok.id_to_token(280), "");
  expect_error([&] { tok.id_to_token(302); }, {"302", "outside the vocabulary"});
  EXPECT_EQ(tok.token_to_id("\u0120world"), 264);
  EXPECT_EQ(tok.token_to_id("<|bos|>"), 301);
  EXPECT_FALSE(tok.token_to_id("nope"));
  EXPECT_TRUE(tok.is_special(300));
  EXPECT_FALSE(tok.is_special(259));
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
  HfTokenizer tok(byte_level_tokenizer({}), "t", nullptr);
  expect_error([&] { tok.encode("ok \xff"); }, {"not valid UTF-8", "byte 3"});
  expect_error([&] { tok.encode("\xe2\x82"); }, {"byte 0"});
}

// ---- streaming decode ------------------------------------------------------------------------------------

TEST(TokenizerStream, HoldsBackCharactersSplitOverByteLevelTokens) {
  HfTokenizer tok(byte_level_tokenizer({}), "t", nullptr);
  std::vector<int64_t> ids = tok.encode("a\u00e9\U0001F600b");
  ASSERT_EQ(ids, (std::vector<int64_t>{'a', 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 'b'}));
  EXPECT_EQ(stream(tok, ids), (std::vector<std::string>{"a", "", "\u00e9", "", "", "", "\U0001F600", "b", ""}));
  // Cut off in the middle of a character: finish() gives what decode() gives.
  EXPECT_EQ(stream(tok, {'a', 0xC3}), (std::vector<std::string>{"a", "", "\ufffd"}));
}

TEST(TokenizerStream, ByteFallbackAndMetaspaceSpaces) {
  HfTokenizer tok(llama2_tokenizer(), "t", nullptr);
  std::vector<int64_t> ids = tok.encode("Hey Hey \u53eb");
  ASSERT_EQ(ids, (std::vector<int64_t>{265, 265, 259, 3 + 0xE5, 3 + 0x8F, 3 + 0xAB}));
  EXPECT_EQ(tok.decode(ids), "Hey Hey \u53eb");
  EXPECT_EQ(stream(tok, ids), (std::vector<std::string>{"Hey", " Hey", " ", "", "", "\u53eb", ""}));
  EXPECT_EQ(tok.encode("Hey", true), (std::vector<int64_t>{1, 265}));
  EXPECT_EQ(tok.encode_with_offsets("Hey Hey").offsets, (Offsets{{0, 3}, {3, 7}}));
}

// ---- threads ------------------------------------------------------------------------------------------------

TEST(Tokenizer, SharedBetweenThreads) {
  HfTokenizer tok(byte_level_tokenizer(kHelloWorld), "t", nullptr);
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) texts.push_back("hello world " + std::to_string(i * 7919) + " helloworld\u00e9 " + std::string(i % 13, 'l'));
  std::vector<std::vector<int64_t>> serial;
  for (const auto& t : texts) serial.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) mismatches[k] += tok.encode(texts[(i + k * 37) % texts.size()]) != serial[(i + k * 37) % texts.size()];
    });
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ---- tokenizer_config.json and save --------------------------------------------------------------------

TEST(Tokenizer, ConfigAndSaveRoundTrip) {
  TempDir dir;
  write_json_atomic(dir / "tokenizer.json", byte_level_tokenizer(kHelloWorld));
  Json config = {{"bos_token", {{"content", "<|bos|>"}, {"lstrip", false}, {"special", true}}},
                 {"eos_token", "<|endoftext|>"},
                 {"pad_token", nullptr},
                 {"add_bos_token", true},
                 {"chat_template", {{{"name", "default"}, {"template", "{{ messages }}"}}, {{"name", "rag"}, {"template", "R"}}}},
                 {"model_max_length", 1e30},
                 {"custom_field", 7}};
  write_json_atomic(dir / "tokenizer_config.json", config);
  auto tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok->bos_token(), "<|bos|>");
  EXPECT_EQ(tok->bos_id(), 301);
  EXPECT_EQ(tok->eos_id(), 300);
  EXPECT_EQ(tok->pad_id(), -1);
  EXPECT_EQ(tok->chat_template(), "{{ messages }}");
  EXPECT_EQ(tok->model_max_length(), 0);
  EXPECT_EQ(tok->config().add_bos_token, true);
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer.json")->bos_id(), 301);  // the file: config read next to it

  TempDir out;
  tok->save(out / "saved");
  auto again = Tokenizer::load(out / "saved");
  std::string text = "hello world<|endoftext|> hello";
  EXPECT_EQ(again->encode(text, true), tok->encode(text, true));
  EXPECT_EQ(read_json_file(out / "saved" / "tokenizer_config.json")["custom_field"], 7);
  EXPECT_EQ(read_json_file(out / "saved" / "special_tokens_map.json"),
            (Json{{"bos_token", "<|bos|>"}, {"eos_token", "<|endoftext|>"}}));
}

// ---- errors name the file and the field ----------------------------------------------------------------------

TEST(Tokenizer, LoadErrorsNameTheFileAndField) {
  TempDir dir;
  expect_error([&] { Tokenizer::load(dir / "nope"); }, {(dir / "nope").string(), "no such file"});
  expect_error([&] { Tokenizer::load(dir.path()); }, {dir.path().string(), "neither tokenizer.json nor tokenizer.model"});
  test::write_bytes(dir / "vocab.txt", "a\n");
  expect_error([&] { Tokenizer::load(dir / "vocab.txt"); }, {"vocab.txt", "unknown tokenizer file type"});

  fs::path file = dir / "tokenizer.json";
  test::write_bytes(file, "{\"model\": ");
  expect_error([&] { Tokenizer::load(dir.path()); }, {file.string(), "invalid JSON"});

  auto broken = [&](const std::function<void(Json&)>& edit, std::initializer_list<std::string> parts, const char* what) {
    Json j = byte_level_tokenizer(kHelloWorld);
    edit(j);
    write_json_atomic(file, j);
    std::vector<std::string> all = {file.string()};
    all.insert(all.end(), parts.begin(), parts.end());
    std::string msg = expect_error([&] { Tokenizer::load(dir.path()); }, {}, what);
    for (const auto& p : all) EXPECT_NE(msg.find(p), std::string::npos) << what << ": lacks \"" << p << "\": " << msg;
  };
  broken([](Json& j) { j["model"]["merges"].push_back("he zz"); }, {"model.merges[9]", "\"zz\""}, "unknown merge token");
  broken([](Json& j) { j["model"]["type"] = "Unigram"; }, {"model", "\"Unigram\"", "not supported"}, "Unigram");
  broken([](Json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, {"normalizer", "\"Lowercase\"", "NFC"}, "Lowercase");
  broken([](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, {"pre_tokenizer", "\"Whitespace\""}, "Whitespace");
  broken([](Json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}}; },
         {"pre_tokenizer.pattern.Regex", "invalid regex"}, "bad regex");
  broken([](Json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}}; },
         {"pre_tokenizer.behavior", "\"Sideways\""}, "bad behavior");
  broken([](Json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, {"decoder", "\"WordPiece\""}, "WordPiece decoder");
  broken([](Json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }, {"post_processor", "\"BertProcessing\""},
         "Bert processor");
  broken([](Json& j) { j["added_tokens"][0].erase("content"); }, {"added_tokens[0]", "\"content\""}, "no content");
  broken([](Json& j) { j.erase("model"); }, {"no \"model\""}, "no model");

  write_json_atomic(file, byte_level_tokenizer(kHelloWorld));
  write_json_atomic(dir / "tokenizer_config.json", {{"bos_token", 5}});
  expect_error([&] { Tokenizer::load(dir.path()); }, {"tokenizer_config.json", "bos_token"});
  fs::remove(dir / "tokenizer_config.json");

  TempDir spm;
  test::write_bytes(spm / "tokenizer.model", "not a protobuf");
#ifdef RLHF_WITH_SENTENCEPIECE
  expect_error([&] { Tokenizer::load(spm.path()); }, {(spm / "tokenizer.model").string(), "not a SentencePiece model"});
#else
  expect_error([&] { Tokenizer::load(spm.path()); }, {(spm / "tokenizer.model").string(), "without SentencePiece"});
#endif
}

// A lone huge id in a small file would size tables (and, through vocab_size(), models) by it: refused
// before anything is allocated, naming the token (issue 15).
TEST(Tokenizer, TokenIdsAreBoundedByTheVocabulary) {
  TempDir dir;
  fs::path file = dir / "tokenizer.json";
  auto refused = [&](const std::function<void(Json&)>& edit, std::initializer_list<std::string> parts, const char* what) {
    Json j = byte_level_tokenizer(kHelloWorld);
    edit(j);
    write_json_atomic(file, j);
    std::string msg = expect_error([&] { Tokenizer::load(dir.path()); }, parts, what);
    EXPECT_NE(msg.find(file.string()), std::string::npos) << what << ": " << msg;
    EXPECT_EQ(msg.find("out of memory"), std::string::npos) << msg;
  };
  refused([](Json& j) { j["model"]["vocab"]["zz"] = 100000000; }, {"\"zz\"", "100000000", "266"}, "vocab id 1e8");
  refused([](Json& j) { j["model"]["vocab"]["zz"] = 1000000000; }, {"\"zz\"", "1000000000"}, "vocab id 1e9");
  refused([](Json& j) { j["added_tokens"][1]["id"] = 100000000; }, {"<|bos|>", "100000000"}, "added id 1e8");
  refused([](Json& j) { j["added_tokens"][1]["id"] = 10000000000ll; }, {"added_tokens[1]", "id"}, "added id 1e10");
  refused([](Json& j) { j["added_tokens"][1]["id"] = 301.5; }, {"added_tokens[1]", "id"}, "fractional id");
  refused([](Json& j) { j["post_processor"]["processors"][1]["special_tokens"]["<|bos|>"]["ids"] = {5000}; },
          {"post_processor", "5000"}, "template id outside the vocabulary");
  // Ids with a few gaps, as real files sometimes have, still load.
  Json j = byte_level_tokenizer(kHelloWorld);
  j["model"]["vocab"]["zz"] = 1000;
  write_json_atomic(file, j);
  EXPECT_EQ(Tokenizer::load(dir.path())->vocab_size(), 1001);
}

// ---- training ------------------------------------------------------------------------------------------------

TEST(TokenizerTrainer, MergesTheMostFrequentPairs) {
  TempDir dir;
  test::write_bytes(dir / "text.txt", "ab ab ab\nab ab ab\nab ab ab\n");
  BpeTrainOptions o;
  o.text_files = {dir / "text.txt"};
  o.vocab_size = 1000;
  o.show_progress = false;
  // Words: "ab" x3, " ab" x6, "\n" x3. Pairs: (a, b) 9, then (Ġ, ab) 6, then none.
  TrainedTokenizer t = train_bpe(o);
  const Json& model = t.tokenizer_json["model"];
  EXPECT_EQ(model["merges"], (Json{"a b", "\u0120 ab"}));
  EXPECT_EQ(model["vocab"].size(), 259u);
  EXPECT_EQ(model["vocab"]["<|endoftext|>"], 0);
  EXPECT_EQ(model["vocab"]["!"], 1);    // bytes follow in the order of their characters
  EXPECT_EQ(model["vocab"]["a"], 65);
  EXPECT_EQ(model["vocab"]["ab"], 257);
  EXPECT_EQ(model["vocab"]["\u0120ab"], 258);
  EXPECT_EQ(t.config_json["eos_token"], "<|endoftext|>");
  EXPECT_EQ(train_bpe(o).tokenizer_json, t.tokenizer_json);  // deterministic

  o.min_frequency = 7;
  EXPECT_EQ(train_bpe(o).tokenizer_json["model"]["merges"], (Json{"a b"}));
  o.min_frequency = 0;
  o.vocab_size = 258;
  EXPECT_EQ(train_bpe(o).tokenizer_json["model"]["merges"], (Json{"a b"}));

  HfTokenizer tok(t.tokenizer_json, "trained", t.config_json);
  EXPECT_EQ(tok.encode("ab ab<|endoftext|>"), (std::vector<int64_t>{257, 258, 0}));
  EXPECT_EQ(tok.decode(tok.encode("ab ab\n\u00e9")), "ab ab\n\u00e9");

  o.vocab_size = 200;
  expect_error([&] { train_bpe(o); }, {"--vocab-size 200", "258"});
  o.vocab_size = 300;
  o.pattern = "bert";
  expect_error([&] { train_bpe(o); }, {"--pattern", "bert"});
  o.pattern = "gpt2";
  o.text_files = {dir / "missing.txt"};
  expect_error([&] { train_bpe(o); }, {"missing.txt"});
}

// ---- the commands -------------------------------------------------------------------------------------------

TEST(TokenizerCli, TokenizePrintsIdsOnOneLine) {
  TempDir dir;
  write_json_atomic(dir / "tokenizer.json", byte_level_tokenizer(kHelloWorld));
  std::string bin = test::rlhf_bin(), tok = test::shell_quote(dir.path().string());
  auto r = test::run_command(bin + " tokenize --tokenizer " + tok + " --text 'hello world<|endoftext|>'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[259,264,300]\n");
  test::write_bytes(dir / "in.txt", "hello");
  r = test::run_command(bin + " tokenize --tokenizer " + tok + " --text-file " +
                        test::shell_quote((dir / "in.txt").string()) + " --add-special-tokens --offsets");
  EXPECT_EQ(r.out, "{\"ids\":[301,259],\"offsets\":[[0,0],[0,5]]}\n") << r.err;

  expect_cli_error(test::run_command(bin + " tokenize --tokenizer " + test::shell_quote((dir / "nope").string()) + " --text x"),
                   {"nope", "no such file"}, "missing tokenizer");
  expect_cli_error(test::run_command(bin + " tokenize --tokenizer " + tok), {"--text"}, "no text");
  expect_cli_error(test::run_command(bin + " tokenize --tokenizer " + tok + " --text \"$(printf '\\377')\""), {"UTF-8"}, "bad UTF-8");
}

TEST(TokenizerCli, TrainWritesATokenizerThatLoads) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 50; ++i) text += "the tokenizer learns the most frequent pairs, line " + std::to_string(i) + "\n";
  test::write_bytes(dir / "a.txt", text);
  test::write_bytes(dir / "b.txt", "<|im_start|>user\nhello<|im_end|>\n");
  std::string bin = test::rlhf_bin();
  auto r = test::run_command(bin + " -q tokenizer train --text " + test::shell_quote((dir / "a.txt").string()) + " --text " +
                             test::shell_quote((dir / "b.txt").string()) + " --vocab-size 300 --min-frequency 1" +
                             " --special-tokens '<|endoftext|>,<|im_start|>,<|im_end|>' --eos-token '<|im_end|>'" +
                             " --pattern llama3 --out " + test::shell_quote((dir / "tok").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(dir / "tok" / f)) << f;
  auto tok = Tokenizer::load(dir / "tok");
  EXPECT_EQ(tok->vocab_size(), 300);
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
  EXPECT_EQ(tok->encode("<|im_start|>")[0], 1);

  r = test::run_command(bin + " tokenizer info --tokenizer " + test::shell_quote((dir / "tok").string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("<|im_end|> (2)"), std::string::npos) << r.out;

  expect_cli_error(test::run_command(bin + " tokenizer train --text " + test::shell_quote((dir / "a.txt").string()) +
                                     " --vocab-size 100 --out " + test::shell_quote((dir / "x").string())),
                   {"--vocab-size 100"}, "vocab too small");
  expect_cli_error(test::run_command(bin + " tokenizer train --text " + test::shell_quote((dir / "a.txt").string()) +
                                     " --eos-token '<eos>' --out " + test::shell_quote((dir / "x").string())),
                   {"<eos>", "--special-tokens"}, "eos not special");
}

}  // namespace
}  // namespace rlhf
