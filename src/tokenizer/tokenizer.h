// The one tokenizer interface of rlhf-cpp: Hugging Face tokenizer.json (byte-level BPE as in GPT-2,
// Llama 3, Qwen2, Mistral-Nemo; Llama-2-style BPE with byte fallback) and SentencePiece
// tokenizer.model (Llama 2), each with the special tokens and chat template of the directory's
// tokenizer_config.json. Tokenizers are immutable after load() and safe to share between threads;
// a StreamDecoder is the small mutable per-generation state.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlhf {

// Ids plus, per token, the byte range [begin, end) of the input text it came from. Added and
// special tokens written in the text point at their text; tokens that the post-processor inserts
// (e.g. Llama 3's <|begin_of_text|>) get (0, 0).
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
};

// What tokenizer_config.json says (all optional; tokens are "" when absent).
struct TokenizerConfig {
  std::string bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;  // unset: the tokenizer's own default
  std::string chat_template;                          // Jinja source, stored verbatim
  std::string chat_template_tool_use;                 // the list form's "tool_use" template ("" = none)
  int64_t model_max_length = 0;                       // 0 = not given (HF writes a huge number then)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // `path` is a directory holding tokenizer.json or tokenizer.model (and usually
  // tokenizer_config.json), or one of those files itself; tokenizer_config.json is read from the
  // same directory when present. A PEFT adapter directory without a tokenizer of its own gives its
  // base model's (base_model_name_or_path).
  static std::shared_ptr<Tokenizer> load(const std::filesystem::path& path);

  // Text to ids. add_special_tokens = true adds what the model expects around a sequence
  // (tokenizer.json: its post_processor, e.g. BOS for Llama 3; tokenizer.model: add_bos/add_eos).
  // Special tokens written inside `text` (e.g. "<|endoftext|>") are always recognised.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = false) const;
  virtual Encoding encode_with_offsets(std::string_view text, bool add_special_tokens = false) const = 0;

  // Ids to text; invalid UTF-8 (a sequence cut in the middle of a character) becomes U+FFFD and
  // ids outside the vocabulary are skipped, as in Hugging Face tokenizers.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const = 0;

  // Incremental decoding for generation: push() one id at a time and get the text that became
  // complete with it ("" while a character split over several tokens is incomplete). The
  // concatenation of all push() results and finish() equals decode(all ids). Same algorithm as
  // Hugging Face's DecodeStream: decode a short window of ids (with one already-emitted token as
  // context, so that decoders which strip a leading space see the word boundary) and emit what
  // grew, unless it ends in U+FFFD. The tokenizer must outlive its decoders.
  class StreamDecoder {
   public:
    explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false);
    std::string push(int64_t id);
    std::string finish();  // whatever is still held back (incomplete UTF-8 comes out as U+FFFD)

   private:
    const Tokenizer* tok_;
    bool skip_special_;
    std::vector<int64_t> ids_;  // context ids followed by ids not yet emitted
    size_t prefix_index_ = 0;   // ids_[0, prefix_index_) decode to prefix_
    std::string prefix_;
  };
  StreamDecoder stream_decoder(bool skip_special_tokens = false) const {
    return StreamDecoder(*this, skip_special_tokens);
  }

  // Vocabulary: ids are in [0, vocab_size()), added tokens included (max id + 1).
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;  // the raw piece, e.g. "Ġthe" or "▁the"
  virtual bool is_special(int64_t id) const = 0;

  // Special tokens (from tokenizer_config.json, else the model's own); id -1 / "" when none.
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  const std::string& bos_token() const { return config_.bos_token; }
  const std::string& eos_token() const { return config_.eos_token; }
  const std::string& pad_token() const { return config_.pad_token; }
  const std::string& unk_token() const { return config_.unk_token; }

  // What encode(text, add_special_tokens = true) puts before / after the text's tokens: for
  // tokenizer.json what its post_processor adds (e.g. Llama 3: {128000}), for tokenizer.model BOS /
  // EOS as tokenizer_config.json's add_bos_token / add_eos_token say (by default BOS only).
  const std::vector<int64_t>& special_prefix() const { return special_prefix_; }
  const std::vector<int64_t>& special_suffix() const { return special_suffix_; }
  bool add_bos() const;  // special_prefix() contains bos_id()
  bool add_eos() const;  // special_suffix() contains eos_id()

  const std::string& chat_template() const { return config_.chat_template; }
  int64_t model_max_length() const { return config_.model_max_length; }
  const TokenizerConfig& config() const { return config_; }
  // Makes `token` (in the vocabulary) the pad token: pad_id() and the saved tokenizer_config.json.
  void set_pad_token(const std::string& token);

  // Writes tokenizer.json or tokenizer.model, plus tokenizer_config.json and
  // special_tokens_map.json, into `dir` (created if needed) so that HF AutoTokenizer loads it.
  virtual void save(const std::filesystem::path& dir) const = 0;

  // Short human description: "tokenizer.json BPE (byte-level), 50257 ids (50257 model tokens, 1 added)".
  virtual std::string describe() const = 0;

 protected:
  // Subclasses call this at the end of loading: keeps the config and resolves the special-token
  // ids with token_to_id() (a token the vocabulary lacks gets id -1, with a warning naming `where`).
  void set_config(TokenizerConfig config, const std::string& where);
  TokenizerConfig config_;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::vector<int64_t> special_prefix_, special_suffix_;
};

}  // namespace rlhf
