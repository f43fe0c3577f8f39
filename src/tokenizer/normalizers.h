// tokenizer.json "normalizer": NFC, Prepend, Replace and Sequence of them (null = none).
#pragma once
#include <memory>
#include <string>

#include "io/json.h"
#include "tokenizer/normalized.h"

namespace rlhf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

// Null for JSON null. Unsupported types are an error naming `where` (e.g. "tokenizer.json: normalizer").
std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& where);

}  // namespace rlhf
