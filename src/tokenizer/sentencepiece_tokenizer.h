// Llama-2-style SentencePiece tokenizer.model files, through libsentencepiece when the build has
// it (RLHF_WITH_SENTENCEPIECE); otherwise loading one is a clear error.
#pragma once
#include <filesystem>
#include <memory>

#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

// `config` is the parsed tokenizer_config.json next to the model, or null.
std::shared_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file, Json config);

}  // namespace rlhf
