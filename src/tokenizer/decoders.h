// tokenizer.json "decoder": ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence
// of them. Decoders rewrite the list of token strings step by step (Hugging Face's decode_chain);
// the text is the concatenation of the final list.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Null for JSON null (tokens are then joined with spaces, as Hugging Face does).
std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& where);

}  // namespace rlhf
