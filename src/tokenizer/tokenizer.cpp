// Tokenizer::load (which file means which implementation), the shared special-token bookkeeping,
// and the streaming decoder.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "io/hf_dirs.h"
#include "io/json.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// tokenizer_config.json, with the chat_template of a chat_template.jinja beside it (which newer
// transformers save and prefer) in place of its own.
Json read_config_next_to(const fs::path& file) {
  fs::path config = file.parent_path() / "tokenizer_config.json";
  fs::path jinja = file.parent_path() / "chat_template.jinja";
  if (!fs::exists(config))  // a template file alone still is the tokenizer's template
    return fs::exists(jinja) ? Json{{"chat_template", read_file(jinja, "chat_template.jinja")}} : Json(nullptr);
  Json j = read_json_file(config, "tokenizer_config.json");
  if (fs::exists(jinja) && j.is_object()) j["chat_template"] = read_file(jinja, "chat_template.jinja");
  return j;
}

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& path) {
  RLHF_CHECK(fs::exists(path), path.string(), ": no such file or directory; give a model directory with "
                                              "tokenizer.json or tokenizer.model, or one of those files");
  Activity act("loading the tokenizer " + path.string());
  fs::path file = path;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "tokenizer.json")) file = path / "tokenizer.json";
    else if (fs::exists(path / "tokenizer.model")) file = path / "tokenizer.model";
    else if (is_adapter_dir(path)) return load(adapter_base_dir(path));  // a PEFT adapter: its base model's
    else RLHF_FAIL(path.string(), ": has neither tokenizer.json nor tokenizer.model");
  }
  Json config = read_config_next_to(file);
  if (file.extension() == ".json") {
    RLHF_CHECK(file.filename() != "tokenizer_config.json", file.string(),
               ": this is the tokenizer's config; give tokenizer.json or the directory instead");
    return std::make_shared<HfTokenizer>(read_file(file, "tokenizer.json"), file.string(), std::move(config));
  }
  if (file.extension() == ".model") return load_sentencepiece(file, std::move(config));
  RLHF_FAIL(file.string(), ": unknown tokenizer file type; expected tokenizer.json (Hugging Face) or "
                           "tokenizer.model (SentencePiece)");
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode_with_offsets(text, add_special_tokens).ids;
}

bool Tokenizer::add_bos() const {
  return bos_id_ >= 0 && std::find(special_prefix_.begin(), special_prefix_.end(), bos_id_) != special_prefix_.end();
}

bool Tokenizer::add_eos() const {
  return eos_id_ >= 0 && std::find(special_suffix_.begin(), special_suffix_.end(), eos_id_) != special_suffix_.end();
}

void Tokenizer::set_config(TokenizerConfig config, const std::string& where) {
  config_ = std::move(config);
  auto resolve = [&](const std::string& token, const char* name) -> int64_t {
    if (token.empty()) return -1;
    if (auto id = token_to_id(token)) return *id;
    log_warn(where, ": ", name, " \"", token, "\" is not in the vocabulary; treating it as absent");
    return -1;
  };
  bos_id_ = resolve(config_.bos_token, "bos_token");
  eos_id_ = resolve(config_.eos_token, "eos_token");
  pad_id_ = resolve(config_.pad_token, "pad_token");
  unk_id_ = resolve(config_.unk_token, "unk_token");
}

void Tokenizer::set_pad_token(const std::string& token) {
  auto id = token_to_id(token);
  RLHF_CHECK(id.has_value(), "pad token \"", token, "\" is not in the vocabulary");
  config_.pad_token = token;
  pad_id_ = *id;
}

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(&tok), skip_special_(skip_special_tokens) {}

// Decodes the window (context + pending ids); emits what extends the context's text unless it
// ends in U+FFFD (a character still incomplete), then keeps the newest ids as the next context.
std::string Tokenizer::StreamDecoder::push(int64_t id) {
  ids_.push_back(id);
  std::string text = tok_->decode(ids_, skip_special_);
  bool incomplete = text.size() >= utf8::kReplacement.size() &&
                    text.compare(text.size() - utf8::kReplacement.size(), std::string::npos, utf8::kReplacement) == 0;
  if (text.size() <= prefix_.size() || incomplete) return "";
  RLHF_CHECK(text.compare(0, prefix_.size(), prefix_) == 0, "stream decoding: the text of the earlier tokens "
             "changed when token ", id, " was added; decode the whole sequence instead");
  std::string fresh = text.substr(prefix_.size());
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + prefix_index_);
  prefix_ = tok_->decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string Tokenizer::StreamDecoder::finish() {
  std::string text = tok_->decode(ids_, skip_special_);
  std::string rest = text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0
                         ? text.substr(prefix_.size())
                         : std::string();
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace rlhf
