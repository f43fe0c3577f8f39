// The tokenizer.json pipeline: loading the sections, encoding (added tokens in raw then normalized
// text, pre-tokenization, BPE, post-processing) and decoding.
#include "tokenizer/hf_tokenizer.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/config_files.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

const Json& field(const Json& j, const char* key) {
  static const Json null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

// The ByteLevel mapping can move into the model when the pre-tokenizer chain ends with it and
// the vocab has a token for every byte's character.
bool model_takes_bytes(const Json& j) {
  if (!pre_tokenizer_ends_with_byte_level(field(j, "pre_tokenizer"))) return false;
  const Json& vocab = field(field(j, "model"), "vocab");
  if (!vocab.is_object()) return false;
  for (const std::string& ch : byte_level::byte_to_utf8())
    if (!vocab.contains(ch)) return false;
  return true;
}

// Added tokens take the model's id when the model has their content, as HF does on load.
std::vector<AddedToken> resolve_added_tokens(const Json& j, const std::string& where, const BpeModel& model) {
  std::vector<AddedToken> tokens = added_tokens_from_json(field(j, "added_tokens"), where + ": added_tokens");
  for (auto& t : tokens)
    if (auto id = model.token_to_id(t.content); id && *id != t.id) {
      log_warn(where, ": added token \"", t.content, "\" has id ", t.id, " but the vocab gives it ", *id, "; using ", *id);
      t.id = *id;
    }
  return tokens;
}

}  // namespace

HfTokenizer::HfTokenizer(std::string tokenizer_json, const std::string& where, Json config_json)
    : json_text_(std::move(tokenizer_json)), config_json_(std::move(config_json)) {
  init(parse_json(json_text_, where), where);
}

HfTokenizer::HfTokenizer(const Json& tokenizer_json, const std::string& where, Json config_json)
    : json_text_(tokenizer_json.dump(2)), config_json_(std::move(config_json)) {
  init(tokenizer_json, where);
}

void HfTokenizer::init(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": expected a JSON object (a Hugging Face tokenizer.json)");
  RLHF_CHECK(j.contains("model"), where, ": no \"model\"; this is not a Hugging Face tokenizer.json");
  byte_level_input_ = model_takes_bytes(j);
  normalizer_ = make_normalizer(field(j, "normalizer"), where + ": normalizer");
  PreTokenizerOptions options;
  options.defer_byte_mapping = byte_level_input_;
  pre_tokenizer_ = make_pre_tokenizer(field(j, "pre_tokenizer"), where + ": pre_tokenizer", options);
  model_ = std::make_unique<BpeModel>(j["model"], where + ": model", byte_level_input_);
  post_processor_ = make_post_processor(field(j, "post_processor"), where + ": post_processor");
  decoder_ = make_decoder(field(j, "decoder"), where + ": decoder");
  added_ = AddedVocabulary(resolve_added_tokens(j, where, *model_), normalizer_.get());
  // Added tokens follow the model's vocabulary: an id far beyond it is a corrupt file, not a token.
  const int64_t id_bound = model_->max_id() + 1 + int64_t(added_.tokens().size()) + BpeModel::kMaxIdGaps;
  for (const AddedToken& t : added_.tokens())
    RLHF_CHECK(t.id < id_bound, where, ": added token \"", t.content, "\" has id ", t.id, " but the vocab has ",
               model_->max_id() + 1, " ids and there are ", added_.tokens().size(),
               " added tokens; added ids must follow the vocab (the file is corrupt)");
  keep_values_ = post_processor_ && post_processor_->needs_values();
  if (post_processor_) post_processor_->special_ids(special_prefix_, special_suffix_);
  for (const auto* ids : {&special_prefix_, &special_suffix_})
    for (int64_t id : *ids)
      RLHF_CHECK(id >= 0 && id < vocab_size(), where, ": post_processor adds token id ", id,
                 ", which is not in the vocabulary [0, ", vocab_size(), ")");

  TokenizerConfig config;
  if (!config_json_.is_null()) config = parse_tokenizer_config(config_json_, where + " (tokenizer_config.json)");
  if (config.unk_token.empty()) config.unk_token = model_->unk_token().value_or("");
  set_config(std::move(config), where);
}

void HfTokenizer::add_token(TokenList& out, int64_t id, std::pair<size_t, size_t> offsets, std::string_view value) const {
  out.ids.push_back(id);
  out.offsets.emplace_back(int64_t(offsets.first), int64_t(offsets.second));
  if (keep_values_) out.values.emplace_back(value);
}

// Pre-tokenizes one run of text without added tokens and encodes each piece with the model.
void HfTokenizer::encode_plain(const NormalizedString& text, TokenList& out) const {
  thread_local std::vector<NormalizedString> pieces;
  thread_local std::vector<PieceToken> tokens;
  pieces.clear();
  pieces.push_back(text);
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  for (const NormalizedString& piece : pieces) {
    tokens.clear();
    model_->tokenize(piece.get(), tokens);
    for (const PieceToken& t : tokens) {
      const std::string* value = keep_values_ ? model_->id_to_token(t.id) : nullptr;
      add_token(out, t.id, piece.original_range(t.begin, t.end), value ? std::string_view(*value) : "");
    }
  }
}

// Added tokens are found in the raw text first, then (for the runs between them) in the
// normalized text; what remains is pre-tokenized and encoded.
Encoding HfTokenizer::encode_with_offsets(std::string_view text, bool add_special_tokens) const {
  size_t bad = utf8::find_invalid(text);
  RLHF_CHECK(bad == std::string_view::npos, "text to encode is not valid UTF-8 (byte ", bad,
             "); decode or clean it before tokenizing");
  RLHF_CHECK(text.size() < (size_t(1) << 32), "text to encode is larger than 4 GiB; split it first");
  TokenList out;
  for (const AddedMatch& raw : added_.split(text, /*normalized=*/false)) {
    std::string_view run = text.substr(raw.begin, raw.end - raw.begin);
    if (raw.token >= 0) {
      add_token(out, added_.tokens()[raw.token].id, {raw.begin, raw.end}, run);
      continue;
    }
    NormalizedString normalized(run, raw.begin);
    if (normalizer_) normalizer_->normalize(normalized);
    for (const AddedMatch& m : added_.split(normalized.get(), /*normalized=*/true)) {
      if (m.begin == m.end) continue;
      if (m.token >= 0)
        add_token(out, added_.tokens()[m.token].id, normalized.original_range(m.begin, m.end),
                  std::string_view(normalized.get()).substr(m.begin, m.end - m.begin));
      else
        encode_plain(normalized.slice(m.begin, m.end), out);
    }
  }
  if (post_processor_) post_processor_->process(out, add_special_tokens);
  return Encoding{std::move(out.ids), std::move(out.offsets)};
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (const AddedToken* t = added_.by_id(id)) {
      if (!(skip_special_tokens && t->special)) tokens.push_back(t->content);
    } else if (const std::string* s = model_->id_to_token(id)) {
      tokens.push_back(*s);
    }
  }
  std::string text;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  return text;
}

int64_t HfTokenizer::vocab_size() const {
  int64_t max_id = model_->max_id();
  for (const AddedToken& t : added_.tokens()) max_id = std::max<int64_t>(max_id, t.id);
  return max_id + 1;
}

std::optional<int64_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* t = added_.by_content(token)) return t->id;
  if (auto id = model_->token_to_id(token)) return *id;
  return std::nullopt;
}

std::string HfTokenizer::id_to_token(int64_t id) const {
  RLHF_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  if (const AddedToken* t = added_.by_id(id)) return t->content;
  const std::string* s = model_->id_to_token(id);
  return s ? *s : std::string();
}

bool HfTokenizer::is_special(int64_t id) const {
  const AddedToken* t = added_.by_id(id);
  return t && t->special;
}

void HfTokenizer::save(const std::filesystem::path& dir) const {
  ensure_directory(dir);
  write_file_atomic(dir / "tokenizer.json", json_text_);
  write_tokenizer_config(dir, config_json_, config_, "PreTrainedTokenizerFast");
}

std::string HfTokenizer::describe() const {
  return detail::cat("tokenizer.json BPE", byte_level_input_ ? " (byte-level)" : "", ", ", vocab_size(), " ids (",
                     model_->size(), " model tokens, ", added_.tokens().size(), " added)");
}

}  // namespace rlhf
