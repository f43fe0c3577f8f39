// SentencePiece tokenizer.model files through librlhf_sentencepiece.so (dlopened, see
// sentencepiece_shim/shim_api.h), with special-token splitting as transformers' LlamaTokenizer.
#include "tokenizer/sentencepiece_tokenizer.h"

#include "core/error.h"

#ifdef RLHF_WITH_SENTENCEPIECE
#include <dlfcn.h>

#include <algorithm>

#include "core/fs.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/config_files.h"
#include "tokenizer/sentencepiece_shim/shim_api.h"
#include "tokenizer/utf8.h"
#endif

namespace rlhf {

#ifdef RLHF_WITH_SENTENCEPIECE

namespace {

void append_text(void* ctx, const char* data, size_t size) { static_cast<std::string*>(ctx)->append(data, size); }

// librlhf_sentencepiece.so, opened once (see shim_api.h for why it is loaded this way): where the
// build put it, else next to the executable.
const RlhfSpmApi& spm_api() {
  static const RlhfSpmApi* api = [] {
    std::vector<fs::path> candidates = {RLHF_SENTENCEPIECE_SHIM};
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path() / fs::path(RLHF_SENTENCEPIECE_SHIM).filename());
    std::string errors;
    for (const fs::path& path : candidates) {
      void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!lib) {
        errors += std::string(errors.empty() ? "" : "; ") + dlerror();
        continue;
      }
      auto entry = reinterpret_cast<const RlhfSpmApi* (*)()>(dlsym(lib, "rlhf_spm_api"));
      RLHF_CHECK(entry, path.string(), ": no rlhf_spm_api; rebuild rlhf");
      return entry();
    }
    RLHF_FAIL("cannot load the SentencePiece wrapper library (", errors,
              "); rebuild rlhf, or keep librlhf_sentencepiece.so next to the rlhf executable");
  }();
  return *api;
}

// SentencePiece encodes the text between special tokens (those of tokenizer_config.json, and
// the model's BOS/EOS/UNK/PAD), as transformers' LlamaTokenizer does; decode joins SentencePiece's
// text with the special tokens' strings.
class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(const fs::path& file, Json config_json)
      : api_(spm_api()), where_(file.string()), config_json_(std::move(config_json)) {
    model_bytes_ = read_file(file, "SentencePiece model");
    std::string error;
    sp_ = std::unique_ptr<void, void (*)(void*)>(api_.load(model_bytes_.data(), model_bytes_.size(), append_text, &error),
                                                 api_.release);
    RLHF_CHECK(sp_, where_, ": not a SentencePiece model (", error, ")");
    TokenizerConfig config;
    if (!config_json_.is_null()) config = parse_tokenizer_config(config_json_, where_ + " (tokenizer_config.json)");
    auto piece_or_empty = [&](int id) { return id >= 0 ? piece(id) : std::string(); };
    if (config.bos_token.empty()) config.bos_token = piece_or_empty(api_.bos_id(sp_.get()));
    if (config.eos_token.empty()) config.eos_token = piece_or_empty(api_.eos_id(sp_.get()));
    if (config.unk_token.empty()) config.unk_token = piece_or_empty(api_.unk_id(sp_.get()));
    if (config.pad_token.empty()) config.pad_token = piece_or_empty(api_.pad_id(sp_.get()));
    added_ = AddedVocabulary(special_tokens(config), nullptr);
    set_config(config, where_);
    if (config_.add_bos_token.value_or(true) && bos_id_ >= 0) special_prefix_ = {bos_id_};
    if (config_.add_eos_token.value_or(false) && eos_id_ >= 0) special_suffix_ = {eos_id_};
  }
  Encoding encode_with_offsets(std::string_view text, bool add_special_tokens) const override {
    size_t bad = utf8::find_invalid(text);
    RLHF_CHECK(bad == std::string_view::npos, "text to encode is not valid UTF-8 (byte ", bad,
               "); decode or clean it before tokenizing");
    struct Sink {
      Encoding* out;
      size_t base;
    };
    Encoding out;
    if (add_special_tokens) append_special(out, special_prefix_);
    for (const AddedMatch& m : added_.split(text, /*normalized=*/false)) {
      if (m.token >= 0) {
        out.ids.push_back(added_.tokens()[m.token].id);
        out.offsets.emplace_back(m.begin, m.end);
        continue;
      }
      Sink sink{&out, m.begin};
      api_.encode(sp_.get(), text.data() + m.begin, m.end - m.begin,
                  [](void* ctx, int id, uint32_t begin, uint32_t end) {
                    auto* s = static_cast<Sink*>(ctx);
                    s->out->ids.push_back(id);
                    s->out->offsets.emplace_back(int64_t(s->base + begin), int64_t(s->base + end));
                  },
                  &sink);
    }
    if (add_special_tokens) append_special(out, special_suffix_);
    return out;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override {
    std::string text;
    std::vector<int> run;
    auto flush = [&] {
      if (!run.empty()) api_.decode(sp_.get(), run.data(), run.size(), append_text, &text);
      run.clear();
    };
    for (int64_t id : ids) {
      if (const AddedToken* t = added_.by_id(id)) {
        flush();
        if (!(skip_special_tokens && t->special)) text += t->content;
      } else if (id >= 0 && id < api_.piece_size(sp_.get())) {
        run.push_back(int(id));
      }
    }
    flush();
    return text;
  }

  int64_t vocab_size() const override {
    int64_t n = api_.piece_size(sp_.get());
    for (const AddedToken& t : added_.tokens()) n = std::max<int64_t>(n, t.id + 1);
    return n;
  }

  std::optional<int64_t> token_to_id(std::string_view token) const override {
    if (const AddedToken* t = added_.by_content(token)) return t->id;
    return token_in_model(token);
  }

  std::string id_to_token(int64_t id) const override {
    RLHF_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
    if (const AddedToken* t = added_.by_id(id)) return t->content;
    return id < api_.piece_size(sp_.get()) ? piece(int(id)) : std::string();
  }

  bool is_special(int64_t id) const override {
    if (const AddedToken* t = added_.by_id(id)) return t->special;
    return id >= 0 && id < api_.piece_size(sp_.get()) && (api_.is_control(sp_.get(), int(id)) || api_.is_unknown(sp_.get(), int(id)));
  }

  void save(const fs::path& dir) const override {
    ensure_directory(dir);
    write_file_atomic(dir / "tokenizer.model", model_bytes_);
    write_tokenizer_config(dir, config_json_, config_, "LlamaTokenizer");
  }

  std::string describe() const override { return detail::cat("SentencePiece tokenizer.model, ", vocab_size(), " ids"); }

 private:
  std::string piece(int id) const {
    std::string s;
    api_.id_to_piece(sp_.get(), id, append_text, &s);
    return s;
  }

  // The special tokens recognised in text: tokenizer_config.json's added_tokens_decoder plus the
  // BOS/EOS/UNK/PAD tokens.
  std::vector<AddedToken> special_tokens(const TokenizerConfig& config) const {
    std::vector<AddedToken> out;
    if (config_json_.is_object() && config_json_.contains("added_tokens_decoder"))
      for (const auto& [id, t] : config_json_["added_tokens_decoder"].items()) {
        std::string at = where_ + " (tokenizer_config.json): added_tokens_decoder." + id;
        AddedToken a;
        a.id = std::stoi(id);
        a.content = json_require<std::string>(t, "content", at);
        a.special = json_get<bool>(t, "special", true, at);
        a.lstrip = json_get<bool>(t, "lstrip", false, at);
        a.rstrip = json_get<bool>(t, "rstrip", false, at);
        a.single_word = json_get<bool>(t, "single_word", false, at);
        a.normalized = false;
        out.push_back(std::move(a));
      }
    for (const std::string* token : {&config.bos_token, &config.eos_token, &config.unk_token, &config.pad_token}) {
      auto id = token->empty() ? std::nullopt : token_in_model(*token);
      bool listed = std::any_of(out.begin(), out.end(), [&](const AddedToken& t) { return t.content == *token; });
      if (!id || listed) continue;
      AddedToken a;
      a.id = *id;
      a.content = *token;
      a.special = true;
      a.normalized = false;
      out.push_back(std::move(a));
    }
    return out;
  }

  std::optional<int> token_in_model(std::string_view token) const {
    int id = api_.piece_to_id(sp_.get(), token.data(), token.size());
    if (id < 0 || piece(id) != token) return std::nullopt;
    return id;
  }

  static void append_special(Encoding& out, const std::vector<int64_t>& ids) {
    for (int64_t id : ids) {
      out.ids.push_back(id);
      out.offsets.emplace_back(0, 0);
    }
  }

  const RlhfSpmApi& api_;
  std::string where_, model_bytes_;
  Json config_json_;
  std::unique_ptr<void, void (*)(void*)> sp_{nullptr, nullptr};
  AddedVocabulary added_;
};

}  // namespace

std::shared_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file, Json config) {
  return std::make_shared<SentencePieceTokenizer>(model_file, std::move(config));
}

#else

std::shared_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file, Json) {
  RLHF_FAIL(model_file.string(), ": this rlhf was built without SentencePiece, so tokenizer.model files cannot be "
                                 "read; install libsentencepiece-dev and rebuild, or use the model's tokenizer.json");
}

#endif

}  // namespace rlhf
