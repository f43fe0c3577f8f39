// Tokenizer for Hugging Face tokenizer.json files with a BPE model: the pipeline added tokens ->
// normalizer -> pre-tokenizer -> BPE -> post-processor, and the decoder chain back.
#pragma once
#include <memory>
#include <string>

#include "io/json.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

class HfTokenizer : public Tokenizer {
 public:
  // From the text of a tokenizer.json (save() writes it back byte for byte); `where` is its path
  // (for errors), `config_json` the parsed tokenizer_config.json, or null when there is none.
  HfTokenizer(std::string tokenizer_json, const std::string& where, Json config_json);
  // From a parsed tokenizer.json (what the trainer builds).
  HfTokenizer(const Json& tokenizer_json, const std::string& where, Json config_json);

  Encoding encode_with_offsets(std::string_view text, bool add_special_tokens = false) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  bool is_special(int64_t id) const override;
  void save(const std::filesystem::path& dir) const override;
  std::string describe() const override;

 private:
  void init(const Json& j, const std::string& where);
  void encode_plain(const NormalizedString& text, TokenList& out) const;
  void add_token(TokenList& out, int64_t id, std::pair<size_t, size_t> offsets, std::string_view value) const;

  std::string json_text_;
  Json config_json_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  bool byte_level_input_ = false;
  bool keep_values_ = false;  // the post-processor reads token strings
};

}  // namespace rlhf
