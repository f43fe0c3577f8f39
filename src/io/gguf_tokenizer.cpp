// GGUF tokenizer metadata -> tokenizer.json and friends. See gguf_tokenizer.h and dev/GGUF.md section 5.
#include "io/gguf_tokenizer.h"

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// gguf-py TokenType
enum GgufTokenType : int64_t { kTokNormal = 1, kTokUnknown = 2, kTokControl = 3, kTokUserDefined = 4, kTokUnused = 5, kTokByte = 6 };

// GPT-2's ByteLevel regex is built into the ByteLevel pre-tokenizer (use_regex); the others are
// tokenizer.json's Split patterns, as the HF tokenizers that these names stand for spell them.
const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum class PreKind { Gpt2, DigitsGpt2, Llama3, Qwen2 };
struct PreInfo {
  PreKind kind;
  bool ignore_merges = false;  // llama.cpp LLAMA3 pre type (and Llama 3's tokenizer.json)
  bool add_bos = false;        // llama.cpp's default for this pre type (tokenizer.ggml.add_bos_token overrides)
  bool clean_spaces = true;    // llama.cpp's clean_spaces = transformers' clean_up_tokenization_spaces
};

const std::map<std::string, PreInfo>& pre_table() {
  static const std::map<std::string, PreInfo> t = {
      {"gpt-2", {PreKind::Gpt2}},
      {"phi-2", {PreKind::Gpt2}},
      {"smollm", {PreKind::DigitsGpt2, false, false, false}},
      {"starcoder", {PreKind::DigitsGpt2}},
      {"refact", {PreKind::DigitsGpt2}},
      {"command-r", {PreKind::DigitsGpt2, false, false, false}},
      {"codeshell", {PreKind::DigitsGpt2}},
      {"exaone", {PreKind::DigitsGpt2}},
      {"minerva-7b", {PreKind::DigitsGpt2}},
      {"llama3", {PreKind::Llama3, true, true, true}},
      {"llama-v3", {PreKind::Llama3, true, true, true}},
      {"llama-bpe", {PreKind::Llama3, true, true, true}},
      {"falcon3", {PreKind::Llama3, true, true, true}},
      {"pixtral", {PreKind::Llama3, true, true, true}},
      {"dbrx", {PreKind::Llama3}},
      {"smaug-bpe", {PreKind::Llama3}},
      {"qwen2", {PreKind::Qwen2, false, false, false}},
      {"deepseek-r1-qwen", {PreKind::Qwen2, false, false, false}},
  };
  return t;
}

Json byte_level_pre(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

Json split_regex(const char* pattern) {
  return {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
}

Json pre_tokenizer_json(PreKind k) {
  switch (k) {
    case PreKind::Gpt2: return byte_level_pre(true);
    case PreKind::DigitsGpt2:
      return {{"type", "Sequence"},
              {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level_pre(true)}}};
    case PreKind::Llama3: return {{"type", "Sequence"}, {"pretokenizers", {split_regex(kLlama3Regex), byte_level_pre(false)}}};
    case PreKind::Qwen2: return {{"type", "Sequence"}, {"pretokenizers", {split_regex(kQwen2Regex), byte_level_pre(false)}}};
  }
  return nullptr;
}

struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  std::vector<double> scores;  // empty when the file has none
};

// The merges of a SentencePiece BPE vocabulary, from the scores alone (transformers'
// SentencePieceExtractor.extract with vocab_scores, restricted to the pieces SentencePiece itself can
// merge: normal and user-defined ones): every split of a piece into two pieces is a merge, ranked by
// the merged piece's score (higher first; ties keep vocabulary order, splits ordered by the ids of
// their parts).
Json merges_from_scores(const GgufVocab& v) {
  std::unordered_map<std::string, int64_t> id;
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if ((v.types[i] == kTokNormal || v.types[i] == kTokUserDefined) && !id.count(v.tokens[i])) id[v.tokens[i]] = int64_t(i);
  struct M {
    int64_t l, r;
    double score;
  };
  std::vector<M> merges;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] != kTokNormal && v.types[i] != kTokUserDefined) continue;
    const std::string& piece = v.tokens[i];
    std::vector<M> local;
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if (utf8::valid_sequence_at(piece, cut) == 0) continue;  // not at a character boundary
      auto l = id.find(piece.substr(0, cut)), r = id.find(piece.substr(cut));
      if (l != id.end() && r != id.end()) local.push_back({l->second, r->second, v.scores[i]});
    }
    std::sort(local.begin(), local.end(), [](const M& a, const M& b) { return a.l != b.l ? a.l < b.l : a.r < b.r; });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) { return a.score > b.score; });
  Json out = Json::array();
  for (const auto& m : merges) out.push_back({v.tokens[size_t(m.l)], v.tokens[size_t(m.r)]});
  return out;
}

// JSON holds UTF-8 only: a string that is not is refused with its key (and index).
void require_utf8(std::string_view s, const std::string& where, const std::string& what) {
  const size_t bad = utf8::find_invalid(s);
  RLHF_CHECK(bad == std::string_view::npos, where, ": ", what, " is not valid UTF-8 (byte ", bad, ")");
}

Json merges_from_file(const GgufFile& f, const std::string& where) {
  Json out = Json::array();
  const std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    require_utf8(m, where, "tokenizer.ggml.merges[" + std::to_string(i) + "]");
    const size_t sp = m.find(' ');
    RLHF_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos, where,
               ": tokenizer.ggml.merges[", i, "] \"", m, "\" is not two tokens separated by one space");
    out.push_back({m.substr(0, sp), m.substr(sp + 1)});
  }
  return out;
}

Json added_token(int64_t id, const std::string& content, bool special) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", false}, {"special", special}};
}

// TemplateProcessing that adds BOS and/or EOS around every sequence (HF Llama's form).
Json template_processing(const GgufVocab& v, int64_t bos, int64_t eos, bool add_bos, bool add_eos) {
  auto seq = [&](const char* which, int type_id) {
    Json s = Json::array();
    if (add_bos) s.push_back({{"SpecialToken", {{"id", v.tokens[size_t(bos)]}, {"type_id", type_id}}}});
    s.push_back({{"Sequence", {{"id", which}, {"type_id", type_id}}}});
    if (add_eos) s.push_back({{"SpecialToken", {{"id", v.tokens[size_t(eos)]}, {"type_id", type_id}}}});
    return s;
  };
  Json pair = seq("A", 0);
  for (auto& e : seq("B", 1)) pair.push_back(e);
  Json specials = Json::object();
  for (int64_t id : {add_bos ? bos : -1, add_eos ? eos : -1})
    if (id >= 0) specials[v.tokens[size_t(id)]] = {{"id", v.tokens[size_t(id)]}, {"ids", {id}}, {"tokens", {v.tokens[size_t(id)]}}};
  return {{"type", "TemplateProcessing"}, {"single", seq("A", 0)}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

const char* gguf_supported_pre_tokenizers() {
  return "gpt-2, phi-2, smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b, llama3, llama-v3, "
         "llama-bpe, falcon3, pixtral, dbrx, smaug-bpe, qwen2, deepseek-r1-qwen (or none: GPT-2's)";
}

GgufTokenizerFiles gguf_tokenizer_files(const GgufFile& f, int64_t model_vocab, int64_t n_ctx) {
  const std::string where = f.path().string();
  RLHF_CHECK(f.has("tokenizer.ggml.model"), where, ": no tokenizer.ggml.model; this file carries no tokenizer");
  const std::string model = f.get_string("tokenizer.ggml.model");
  RLHF_CHECK(model == "gpt2" || model == "llama", where, ": tokenizer.ggml.model \"", model,
             "\" is not supported (supported: gpt2 = byte-level BPE, llama = SentencePiece BPE)");
  const bool spm = model == "llama";

  GgufVocab v;
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  const int64_t n = int64_t(v.tokens.size());
  RLHF_CHECK(n > 0 && n <= model_vocab, where, ": tokenizer.ggml.tokens has ", n, " tokens; the model has ", model_vocab,
             " embedding rows");
  for (int64_t i = 0; i < n; ++i) require_utf8(v.tokens[size_t(i)], where, "tokenizer.ggml.tokens[" + std::to_string(i) + "]");
  if (f.has("tokenizer.ggml.token_type")) {
    v.types = f.get_int_array("tokenizer.ggml.token_type");
    RLHF_CHECK(int64_t(v.types.size()) == n, where, ": tokenizer.ggml.token_type has ", v.types.size(),
               " entries for ", n, " tokens");
  } else {
    v.types.assign(size_t(n), kTokNormal);
  }
  if (f.has("tokenizer.ggml.scores")) {
    v.scores = f.get_float_array("tokenizer.ggml.scores");
    RLHF_CHECK(int64_t(v.scores.size()) == n, where, ": tokenizer.ggml.scores has ", v.scores.size(), " entries for ",
               n, " tokens");
  }

  // Special ids: the file's, else llama.cpp's defaults for the SentencePiece vocabulary.
  auto id_key = [&](const char* key, int64_t def, bool required_in_range) -> int64_t {
    const std::string k = std::string("tokenizer.ggml.") + key;
    if (!f.has(k)) return def;
    const int64_t id = f.get_int(k);
    if (id >= 0 && id < n) return id;
    RLHF_CHECK(!required_in_range, where, ": ", k, " = ", id, " is not a token id (the vocabulary has ", n, " tokens)");
    log_warn(where, ": ", k, " = ", id, " is not a token id (", n, " tokens); ignored");
    return -1;
  };
  const int64_t bos = id_key("bos_token_id", spm ? 1 : -1, true);
  const int64_t eos = id_key("eos_token_id", spm ? 2 : -1, true);
  const int64_t unk = id_key("unknown_token_id", spm ? 0 : -1, true);
  const int64_t pad = id_key("padding_token_id", -1, false);
  const int64_t eot = id_key("eot_token_id", -1, false);
  const int64_t eom = id_key("eom_token_id", -1, false);
  for (int64_t id : {bos, eos, unk})
    RLHF_CHECK(id < n, where, ": a default special id (", id, ") is past the ", n, " tokens; the file should name it");

  // Pre-tokenizer and flags.
  PreInfo pre{PreKind::Gpt2};
  std::string pre_name;
  if (!spm) {
    pre_name = f.get_string("tokenizer.ggml.pre", "default");
    if (pre_name == "default") {
      log_warn(where, ": no tokenizer.ggml.pre; using GPT-2's pre-tokenizer (llama.cpp's own default differs slightly)");
    } else {
      auto it = pre_table().find(pre_name);
      RLHF_CHECK(it != pre_table().end(), where, ": tokenizer.ggml.pre \"", pre_name, "\" is not supported (supported: ",
                 gguf_supported_pre_tokenizers(), ")");
      pre = it->second;
    }
  }
  const bool add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm ? true : pre.add_bos);
  const bool add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
  const bool add_space_prefix = spm && f.get_bool("tokenizer.ggml.add_space_prefix", true);
  RLHF_CHECK(!add_bos || bos >= 0, where, ": tokenizer.ggml.add_bos_token is true but there is no bos_token_id");
  RLHF_CHECK(!add_eos || eos >= 0, where, ": tokenizer.ggml.add_eos_token is true but there is no eos_token_id");

  // Vocabulary (first occurrence of a duplicated string wins; the later id stays reachable as an
  // added token when it is one) and added tokens.
  Json vocab = Json::object();
  int64_t duplicates = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto [it, fresh] = vocab.emplace(v.tokens[size_t(i)], i);
    duplicates += !fresh;
  }
  if (duplicates) log_warn(where, ": ", duplicates, " token strings occur more than once; the first id of each is used");
  Json added = Json::array();
  Json added_decoder = Json::object();
  bool has_bytes = false;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = v.types[size_t(i)];
    has_bytes |= t == kTokByte;
    const bool special = t == kTokControl || t == kTokUnknown || i == bos || i == eos || i == unk;
    if (!(special || t == kTokUserDefined)) continue;
    added.push_back(added_token(i, v.tokens[size_t(i)], special));
    added_decoder[std::to_string(i)] = {{"content", v.tokens[size_t(i)]}, {"single_word", false}, {"lstrip", false},
                                        {"rstrip", false}, {"normalized", false}, {"special", special}};
  }

  Json tj = Json::object();
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = added;
  Json bpe = {{"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  if (spm) {
    RLHF_CHECK(f.has("tokenizer.ggml.merges") || !v.scores.empty(), where,
               ": a SentencePiece vocabulary needs tokenizer.ggml.scores (or merges); this file has neither");
    // Llama 2's own tokenizer.json form: "▁" prepended to each piece of text between special tokens
    // (as llama.cpp does for each raw-text fragment), spaces replaced, no pre-tokenizer. Unlike a
    // Metaspace pre-tokenizer it keeps the dummy prefix when the text starts with a space, as
    // SentencePiece does.
    Json norm = Json::array();
    if (add_space_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}});
    tj["normalizer"] = {{"type", "Sequence"}, {"normalizers", norm}};
    tj["pre_tokenizer"] = nullptr;
    Json dec = Json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                            {{"type", "ByteFallback"}}, {{"type", "Fuse"}}});
    if (add_space_prefix) dec.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tj["decoder"] = {{"type", "Sequence"}, {"decoders", dec}};
    bpe["unk_token"] = unk >= 0 ? Json(v.tokens[size_t(unk)]) : Json(nullptr);
    bpe["fuse_unk"] = true;
    bpe["byte_fallback"] = has_bytes;
    bpe["ignore_merges"] = false;
    bpe["vocab"] = vocab;
    bpe["merges"] = f.has("tokenizer.ggml.merges") ? merges_from_file(f, where) : merges_from_scores(v);
    tj["post_processor"] = add_bos || add_eos ? template_processing(v, bos, eos, add_bos, add_eos) : Json(nullptr);
  } else {
    RLHF_CHECK(f.has("tokenizer.ggml.merges"), where, ": a gpt2 (byte-level BPE) tokenizer needs tokenizer.ggml.merges");
    tj["normalizer"] = pre.kind == PreKind::Qwen2 ? Json({{"type", "NFC"}}) : Json(nullptr);
    tj["pre_tokenizer"] = pre_tokenizer_json(pre.kind);
    tj["post_processor"] = add_bos || add_eos ? template_processing(v, bos, eos, add_bos, add_eos)
                                              : Json({{"type", "ByteLevel"}, {"add_prefix_space", true},
                                                      {"trim_offsets", false}, {"use_regex", true}});
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    bpe["unk_token"] = nullptr;
    bpe["fuse_unk"] = false;
    bpe["byte_fallback"] = false;
    bpe["ignore_merges"] = pre.ignore_merges;
    bpe["vocab"] = vocab;
    bpe["merges"] = merges_from_file(f, where);
  }
  tj["model"] = bpe;

  // tokenizer_config.json, special_tokens_map.json
  GgufTokenizerFiles out;
  out.tokenizer_json = std::move(tj);
  Json tc = Json::object();
  Json sm = Json::object();
  auto set_token = [&](const char* name, int64_t id) {
    if (id < 0) return;
    tc[name] = v.tokens[size_t(id)];
    sm[name] = v.tokens[size_t(id)];
  };
  set_token("bos_token", bos);
  set_token("eos_token", eos);
  set_token("unk_token", unk);
  set_token("pad_token", pad);
  tc["add_bos_token"] = add_bos;
  tc["add_eos_token"] = add_eos;
  tc["added_tokens_decoder"] = added_decoder;
  tc["clean_up_tokenization_spaces"] = spm ? false : pre.clean_spaces;
  tc["model_max_length"] = n_ctx;
  tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  // Chat templates: the default one as a string, or with named ones the list form transformers reads.
  const std::string tmpl_key = "tokenizer.chat_template";
  Json named = Json::array();
  for (const auto& kv : f.metadata())
    if (kv.key.rfind(tmpl_key, 0) == 0 && (kv.key.size() == tmpl_key.size() || kv.key[tmpl_key.size()] == '.')) {
      require_utf8(kv.key, where, "a metadata key");
      require_utf8(f.get_string(kv.key), where, kv.key);
      if (kv.key.size() > tmpl_key.size() + 1)
        named.push_back({{"name", kv.key.substr(tmpl_key.size() + 1)}, {"template", f.get_string(kv.key)}});
    }
  if (!named.empty()) {
    Json list = Json::array();
    if (f.has(tmpl_key)) list.push_back({{"name", "default"}, {"template", f.get_string(tmpl_key)}});
    for (auto& t : named) list.push_back(t);
    tc["chat_template"] = list;
  } else if (f.has(tmpl_key)) {
    tc["chat_template"] = f.get_string(tmpl_key);
  }
  out.tokenizer_config = std::move(tc);
  out.special_tokens_map = std::move(sm);

  // generation_config.json: every id that ends a turn stops generation (EOS first).
  Json gc = Json::object();
  if (bos >= 0) gc["bos_token_id"] = bos;
  std::vector<int64_t> stops;
  for (int64_t id : {eos, eot, eom})
    if (id >= 0 && std::find(stops.begin(), stops.end(), id) == stops.end()) stops.push_back(id);
  if (stops.size() == 1) gc["eos_token_id"] = stops[0];
  else if (!stops.empty()) gc["eos_token_id"] = stops;
  if (pad >= 0) gc["pad_token_id"] = pad;
  gc["transformers_version"] = "4.45.2";
  out.generation_config = std::move(gc);
  return out;
}

}  // namespace rlhf
