// tokenizer.json "post_processor": TemplateProcessing (special tokens around the sequence, e.g.
// Llama 3's <|begin_of_text|>), ByteLevel (offset trimming) and Sequence of them (null = none).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

// An encoding being post-processed: ids and offsets, plus each token's string (the offset
// trimming looks at leading and trailing spaces).
struct TokenList {
  std::vector<int64_t> ids;
  std::vector<std::pair<int64_t, int64_t>> offsets;
  std::vector<std::string> values;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(TokenList& tokens, bool add_special_tokens) const = 0;
  // Ids added before / after a sequence when add_special_tokens is true.
  virtual void special_ids(std::vector<int64_t>& prefix, std::vector<int64_t>& suffix) const {}
  // Whether process() reads TokenList::values (else they may be left empty).
  virtual bool needs_values() const { return false; }
};

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& where);

}  // namespace rlhf
