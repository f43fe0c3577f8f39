// tokenizer.json "pre_tokenizer": ByteLevel, Split, Digits, Metaspace and Sequence of them. A
// pre-tokenizer cuts a piece of text into the pieces the model encodes one at a time.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "tokenizer/normalized.h"

namespace rlhf {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces, in order, leaving out empty ones.
  virtual void pre_tokenize(std::vector<NormalizedString>& pieces) const = 0;
};

// GPT-2's split pattern, which ByteLevel uses when use_regex is true.
extern const char* const kGpt2Pattern;

struct PreTokenizerOptions {
  // The model takes raw bytes for byte-level pieces: the ByteLevel pre-tokenizer that ends the
  // chain leaves its byte -> character mapping to the model instead of rewriting the text (same
  // result, much faster). A ByteLevel followed by other steps always rewrites.
  bool defer_byte_mapping = false;
};

// Null for JSON null; unsupported types are an error naming `where`.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& where,
                                                 const PreTokenizerOptions& options);

// Whether the chain `j` ends with a ByteLevel step (so that its mapping can be deferred).
bool pre_tokenizer_ends_with_byte_level(const Json& j);

}  // namespace rlhf
