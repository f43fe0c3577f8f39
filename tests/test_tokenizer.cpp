// The tokenizer's building blocks against hand-checked expectations, many taken from Hugging Face
// tokenizers' own unit tests: Oniguruma-compatible regexes, NFC, alignment-keeping text edits,
// split behaviours, added-token matching options, and the BPE model (merge order, ignore_merges,
// unk / fuse_unk / byte fallback, both merges formats).
#include <gtest/gtest.h>

#include "io/json.h"
#include "test_util.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/normalized.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_nfc.h"
#include "tokenizer/utf8.h"

namespace rlhf {
namespace {

using test::expect_error;

std::vector<std::string> matches(const Regex& re, const std::string& text) {
  std::vector<std::string> out;
  re.for_each_match(text, [&](size_t b, size_t e) { out.push_back(text.substr(b, e - b)); });
  return out;
}

// ---- regexes -------------------------------------------------------------------------------------

TEST(TokenizerRegex, RewritesWhatOnigurumaMeansDifferently) {
  EXPECT_EQ(onig_to_pcre2(R"(\s+(?!\S))", "t"), R"(\p{White_Space}+(?!\P{White_Space}))");
  EXPECT_EQ(onig_to_pcre2(R"([^\s\p{L}\p{N}]+)", "t"), R"([^\p{White_Space}\p{L}\p{N}]+)");
  EXPECT_EQ(onig_to_pcre2(R"(\h+)", "t"), "[0-9a-fA-F]+");
  EXPECT_EQ(onig_to_pcre2(R"((?mi:a.))", "t"), "(?si:a.)");
  EXPECT_EQ(onig_to_pcre2(R"(\u3040[\u30A0-\u30FF])", "t"), R"(\x{3040}[\x{30A0}-\x{30FF}])");
  EXPECT_EQ(onig_to_pcre2(R"([]a])", "t"), R"([\]a])");
  expect_error([] { onig_to_pcre2("[a-z[^aeiou]]", "tokenizer.json: x"); }, {"tokenizer.json: x", "nested"});
  expect_error([] { onig_to_pcre2("[a-z&&b]", "f"); }, {"intersection"});
  expect_error([] { onig_to_pcre2("[\\W]", "f"); }, {"\\W inside a character class"});
  expect_error([] { onig_to_pcre2("ab\\", "f"); }, {"lone backslash"});
  expect_error([] { onig_to_pcre2("[ab", "f"); }, {"unterminated"});
  expect_error([] { Regex("(ab", "tokenizer.json: pre_tokenizer.pattern"); },
               {"tokenizer.json: pre_tokenizer.pattern", "invalid regex"});
}

TEST(TokenizerRegex, MatchesLikeOniguruma) {
  // U+180E is not White_Space (PCRE2's own \s would take it).
  EXPECT_EQ(matches(Regex("\\s", "t"), "a\u180e b\u00a0c"), (std::vector<std::string>{" ", "\u00a0"}));
  // Combining marks are word characters; "_" and digits too.
  EXPECT_EQ(matches(Regex("\\w+", "t"), "x\u0301y_1 z"), (std::vector<std::string>{"x\u0301y_1", "z"}));
  EXPECT_EQ(matches(Regex("\\bab\\b", "t"), "ab abc ab\u0301 ab"), (std::vector<std::string>{"ab", "ab"}));
  // Case folding: S, and the long s folds to s too.
  EXPECT_EQ(matches(Regex("(?i:'s)", "t"), "'s 'S '\u017f"), (std::vector<std::string>{"'s", "'S", "'\u017f"}));
  // ^ and $ are line anchors.
  EXPECT_EQ(matches(Regex("^a", "t"), "ab\nab"), (std::vector<std::string>{"a", "a"}));
}

TEST(TokenizerRegex, Gpt2PatternSplitsAsGpt2Does) {
  Regex re(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "t");
  EXPECT_EQ(matches(re, "Hello  world\n\n it's 42!"),
            (std::vector<std::string>{"Hello", " ", " world", "\n\n", " it", "'s", " 42", "!"}));
}

TEST(TokenizerRegex, EmptyMatchesStepForward) {
  // onig::Regex::find_iter: an empty match right after the previous match is skipped.
  Regex re("a*", "t");
  std::vector<std::pair<size_t, size_t>> got;
  re.for_each_match("baab", [&](size_t b, size_t e) { got.emplace_back(b, e); });
  EXPECT_EQ(got, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
}

// ---- NFC -------------------------------------------------------------------------------------------

std::string nfc(const std::string& s) {
  NormalizedString n(s, 0);
  n.transform(nfc_with_changes(s));
  return n.get();
}

TEST(TokenizerNfc, ComposesReordersAndReplacesSingletons) {
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("u\u0308\u0301"), "\u01d8");
  EXPECT_EQ(nfc("\u212b"), "\u00c5");                    // ANGSTROM SIGN -> A WITH RING
  EXPECT_EQ(nfc("q\u0307\u0323"), "q\u0323\u0307");      // canonical order, nothing composes
  EXPECT_EQ(nfc("s\u0323\u0307"), "\u1e69");             // both marks compose, in order
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");        // Hangul L V T
  EXPECT_EQ(nfc("\uac00\u11a8"), "\uac01");              // Hangul LV + T
  EXPECT_EQ(nfc("\u0915\u093c"), "\u0915\u093c");        // excluded from composition
  EXPECT_EQ(nfc("\u0958"), "\u0915\u093c");              // decomposes, never recomposes
  EXPECT_EQ(nfc("plain ASCII"), "plain ASCII");
  EXPECT_TRUE(is_nfc_quick("plain ASCII, \u00e9, \u6f22\u5b57, \U0001F600"));
  EXPECT_FALSE(is_nfc_quick("e\u0301"));
  EXPECT_FALSE(is_nfc_quick("\u212b"));
  EXPECT_EQ(combining_class(0x0301), 230);
  EXPECT_EQ(combining_class('a'), 0);
}

// ---- text edits that keep offsets --------------------------------------------------------------------

TEST(TokenizerNormalized, PrependAndReplaceKeepTheInputRanges) {
  NormalizedString n("Hey friend", 10);
  n.replace(Pattern::literal(" ", "t"), "\u2581");
  n.prepend("\u2581");
  EXPECT_EQ(n.get(), "\u2581Hey\u2581friend");
  EXPECT_EQ(n.original_range(0, 6), (std::pair<size_t, size_t>{10, 13}));  // "▁Hey": the prefix takes H's place
  EXPECT_EQ(n.original_range(6, 9), (std::pair<size_t, size_t>{13, 14}));  // the second ▁ is the space
  EXPECT_EQ(n.original_range(9, 15), (std::pair<size_t, size_t>{14, 20}));
}

TEST(TokenizerNormalized, SplitBehaviorsAsHuggingFace) {
  // tokenizers/src/pre_tokenizers/split.rs, test "basic": \w+|[^\w\s]+ inverted.
  struct Piece {
    std::string text;
    size_t begin, end;
    bool operator==(const Piece&) const = default;
  };
  auto split = [](SplitBehavior b) {
    std::vector<Piece> out;
    for (const auto& p : NormalizedString("How are you doing?", 0).split(Pattern::regex(R"(\w+|[^\w\s]+)", "t"), b, true))
      out.push_back({p.get(), p.original_begin(), p.original_end()});
    return out;
  };
  EXPECT_EQ(split(SplitBehavior::Removed),
            (std::vector<Piece>{{"How", 0, 3}, {"are", 4, 7}, {"you", 8, 11}, {"doing", 12, 17}, {"?", 17, 18}}));
  EXPECT_EQ(split(SplitBehavior::Isolated),
            (std::vector<Piece>{{"How", 0, 3}, {" ", 3, 4}, {"are", 4, 7}, {" ", 7, 8}, {"you", 8, 11}, {" ", 11, 12},
                                {"doing", 12, 17}, {"?", 17, 18}}));
  EXPECT_EQ(split(SplitBehavior::MergedWithPrevious),
            (std::vector<Piece>{{"How ", 0, 4}, {"are ", 4, 8}, {"you ", 8, 12}, {"doing", 12, 17}, {"?", 17, 18}}));
  EXPECT_EQ(split(SplitBehavior::MergedWithNext),
            (std::vector<Piece>{{"How", 0, 3}, {" are", 3, 7}, {" you", 7, 11}, {" doing", 11, 17}, {"?", 17, 18}}));
  EXPECT_EQ(split(SplitBehavior::Contiguous),
            (std::vector<Piece>{{"How", 0, 3}, {" ", 3, 4}, {"are", 4, 7}, {" ", 7, 8}, {"you", 8, 11}, {" ", 11, 12},
                                {"doing?", 12, 18}}));
}

// ---- added tokens ------------------------------------------------------------------------------------

struct Part {
  std::string text;
  int32_t token;  // index into the vocabulary's tokens, -1 = plain text
  bool operator==(const Part&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Part& r) { return os << Json(r.text).dump() << ":" << r.token; }

std::vector<Part> runs(const AddedVocabulary& v, const std::string& text, bool normalized = false) {
  std::vector<Part> out;
  for (const AddedMatch& m : v.split(text, normalized)) out.push_back({text.substr(m.begin, m.end - m.begin), m.token});
  return out;
}

AddedToken added(std::string content, int32_t id) {
  AddedToken t;
  t.content = std::move(content);
  t.id = id;
  t.normalized = false;
  return t;
}

TEST(TokenizerAddedTokens, LeftmostLongest) {
  AddedVocabulary v({added("<|a|>", 1), added("<|a|><|b|>", 2), added("<|b|>", 3)}, nullptr);
  EXPECT_EQ(runs(v, "x<|a|><|b|>y<|b|><|a|"),
            (std::vector<Part>{{"x", -1}, {"<|a|><|b|>", 1}, {"y", -1}, {"<|b|>", 2}, {"<|a|", -1}}));
  EXPECT_EQ(runs(v, ""), std::vector<Part>{});
}

TEST(TokenizerAddedTokens, StripAndSingleWordOptionsAsHuggingFace) {
  // added_vocabulary.rs, "options_use_cases" (without its lowercase normalizer).
  AddedToken my = added("my", 0), ony = added("ony", 2);
  my.lstrip = my.rstrip = true;
  ony.single_word = true;
  AddedVocabulary v({my, added("name", 1), ony, added("[CLS]", 3), added("[SEP]", 4)}, nullptr);
  EXPECT_EQ(runs(v, "[CLS] my name is Anthony [SEP]"),
            (std::vector<Part>{{"[CLS]", 3}, {" my ", 0}, {"name", 1}, {" is Anthony ", -1}, {"[SEP]", 4}}));

  // "test_single_word_is_correct" and "test_single_word_is_unicode_correct".
  AddedToken mask = added("<mask>", 0);
  mask.single_word = true;
  AddedVocabulary single({mask}, nullptr);
  EXPECT_EQ(runs(single, "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            (std::vector<Part>{{"<mask>", 0}, {" My name ", -1}, {"<mask>", 0}, {" A<mask> <mask>ony ", -1}, {"<mask>", 0}}));
  EXPECT_EQ(runs(single, "<mask>, <mask>- \u25cc\u0330<mask>"),
            (std::vector<Part>{{"<mask>", 0}, {", ", -1}, {"<mask>", 0}, {"- \u25cc\u0330<mask>", -1}}));

  // "test_lstrip_unicode_space": the strips take any White_Space, never past the previous match.
  mask.lstrip = mask.rstrip = true;
  AddedVocabulary strip({mask}, nullptr);
  EXPECT_EQ(runs(strip, "Hi <mask> there\t<mask>\t<mask>\u2000"),
            (std::vector<Part>{{"Hi", -1}, {" <mask> ", 0}, {"there", -1}, {"\t<mask>\t", 0}, {"<mask>\u2000", 0}}));
}

TEST(TokenizerAddedTokens, NormalizedTokensMatchTheNormalizedText) {
  AddedToken hello = added("hello world", 0);
  hello.normalized = true;
  Json prepend = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
  auto normalizer = make_normalizer(prepend, "t");
  AddedVocabulary v({hello}, normalizer.get());
  EXPECT_EQ(runs(v, "say hello world", false), (std::vector<Part>{{"say hello world", -1}}));
  EXPECT_EQ(runs(v, "say\u2581hello\u2581world", true), (std::vector<Part>{{"say\u2581", -1}, {"hello\u2581world", 0}}));
}

// ---- the BPE model -------------------------------------------------------------------------------------

struct Tok {
  int32_t id;
  uint32_t begin, end;
  bool operator==(const Tok&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Tok& t) { return os << t.id << "@" << t.begin << "-" << t.end; }

std::vector<Tok> tokenize(const BpeModel& m, const std::string& piece) {
  std::vector<PieceToken> out;
  m.tokenize(piece, out);
  std::vector<Tok> r;
  for (auto& t : out) r.push_back({t.id, t.begin, t.end});
  return r;
}

Json bpe_json(Json vocab, Json merges) { return {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}; }

TEST(TokenizerBpe, MergeOrderAndIgnoreMergesAsHuggingFace) {
  // models/bpe/model.rs, "test_ignore_merges".
  Json vocab = {{".:.:", 0}, {"\u0120belirtilen", 1}, {".", 2},  {":", 3},  {"bel", 4},   {"irtilen", 5},
                {"\u0120", 6}, {".:", 7},           {"belirtilen", 8}, {".:.", 9}, {"be", 10}, {"l", 11},
                {"ir", 12},  {"ti", 13},            {"en", 14}, {"irtil", 15}, {"irti", 16}, {"i", 17},
                {"r", 18},   {"t", 19},             {"b", 20},  {"e", 21},  {"n", 22}};
  Json merges = {". :", "b e", "be l", "i r", "t i", "ir ti", "e n", "irti l"};
  Json j = bpe_json(vocab, merges);
  j["ignore_merges"] = true;
  BpeModel ignoring(j, "t", false);
  EXPECT_EQ(tokenize(ignoring, ".:.:"), (std::vector<Tok>{{0, 0, 4}}));
  EXPECT_EQ(tokenize(ignoring, "\u0120belirtilen"), (std::vector<Tok>{{1, 0, 12}}));
  j["ignore_merges"] = false;
  BpeModel merging(j, "t", false);
  EXPECT_EQ(tokenize(merging, ".:.:"), (std::vector<Tok>{{7, 0, 2}, {7, 2, 4}}));
  EXPECT_EQ(tokenize(merging, "\u0120belirtilen"), (std::vector<Tok>{{6, 0, 2}, {4, 2, 5}, {15, 5, 10}, {14, 10, 12}}));
}

TEST(TokenizerBpe, MergesAsStringsOrPairsAreTheSame) {
  Json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {"c", 3}, {"abc", 4}};
  BpeModel strings(bpe_json(vocab, {"a b", "ab c"}), "t", false);
  BpeModel pairs(bpe_json(vocab, Json::array({{"a", "b"}, {"ab", "c"}})), "t", false);
  for (std::string s : {"abc", "abcab", "cba", "aabbcc"}) EXPECT_EQ(tokenize(strings, s), tokenize(pairs, s)) << s;
  EXPECT_EQ(tokenize(pairs, "abcab"), (std::vector<Tok>{{4, 0, 3}, {2, 3, 5}}));
}

TEST(TokenizerBpe, UnknownCharactersAsHuggingFace) {
  // models/bpe/model.rs, "test_unk_not_fused", "test_unk_get_fused", "test_bpe_byte_fallback".
  Json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}};
  Json j = bpe_json(vocab, Json::array());
  j["unk_token"] = "<unk>";
  BpeModel unfused(j, "t", false);
  EXPECT_EQ(tokenize(unfused, "accb"), (std::vector<Tok>{{1, 0, 1}, {0, 1, 2}, {0, 2, 3}, {2, 3, 4}}));
  j["fuse_unk"] = true;
  BpeModel fused(j, "t", false);
  EXPECT_EQ(tokenize(fused, "accb"), (std::vector<Tok>{{1, 0, 1}, {0, 1, 3}, {2, 3, 4}}));
  EXPECT_EQ(tokenize(fused, "\u00e9"), (std::vector<Tok>{{0, 0, 2}}));

  Json fallback = bpe_json({{"<unk>", 0}, {"<0x61>", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}}, Json::array());
  fallback["unk_token"] = "<unk>";
  fallback["byte_fallback"] = true;
  BpeModel bytes(fallback, "t", false);
  EXPECT_EQ(tokenize(bytes, "a"), (std::vector<Tok>{{1, 0, 1}}));
  EXPECT_EQ(tokenize(bytes, "c"), (std::vector<Tok>{{0, 0, 1}}));
  EXPECT_EQ(tokenize(bytes, "\u00e9"), (std::vector<Tok>{{2, 0, 1}, {3, 1, 2}}));

  // Without an unk token unknown characters vanish, and (as in HF) so do their bytes from the offsets.
  BpeModel no_unk(bpe_json(vocab, Json::array()), "t", false);
  EXPECT_EQ(tokenize(no_unk, "acb"), (std::vector<Tok>{{1, 0, 1}, {2, 1, 2}}));
}

TEST(TokenizerBpe, RefusesWhatItCannotDo) {
  Json vocab = {{"a", 0}, {"b", 1}};
  expect_error([&] { BpeModel(bpe_json(vocab, {"a c"}), "tokenizer.json: model", false); },
               {"tokenizer.json: model.merges[0]", "\"c\"", "not in the vocab"});
  expect_error([&] { BpeModel(bpe_json(vocab, {"a b"}), "m", false); }, {"m.merges[0]", "\"ab\""});
  expect_error([&] { BpeModel(bpe_json(vocab, {"a  b"}), "m", false); }, {"m.merges[0]", "two tokens"});
  expect_error([&] { BpeModel(bpe_json(vocab, {{"a"}}), "m", false); }, {"m.merges[0]"});
  Json prefixed = bpe_json(vocab, Json::array());
  prefixed["continuing_subword_prefix"] = "##";
  expect_error([&] { BpeModel(prefixed, "m", false); }, {"m", "continuing_subword_prefix", "not supported"});
  Json dropout = bpe_json(vocab, Json::array());
  dropout["dropout"] = 0.1;
  expect_error([&] { BpeModel(dropout, "m", false); }, {"m", "dropout"});
  Json wordpiece = {{"type", "WordPiece"}, {"vocab", vocab}};
  expect_error([&] { BpeModel(wordpiece, "m", false); }, {"m", "\"WordPiece\"", "not supported"});
  expect_error([&] { BpeModel(bpe_json({{"a", -1}}, Json::array()), "m", false); }, {"m.vocab", "\"a\""});
  expect_error([&] { BpeModel({{"type", "BPE"}, {"vocab", vocab}}, "m", false); }, {"m", "merges"});
}

}  // namespace
}  // namespace rlhf
