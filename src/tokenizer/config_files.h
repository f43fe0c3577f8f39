// tokenizer_config.json and special_tokens_map.json: what the special tokens are, whether BOS/EOS
// are added, the chat template. Read next to tokenizer.json / tokenizer.model, written by save().
#pragma once
#include <filesystem>
#include <string>

#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

// Parses a tokenizer_config.json object; tokens may be strings or {"content": ...} objects.
TokenizerConfig parse_tokenizer_config(const Json& j, const std::string& where);

// Writes tokenizer_config.json into `dir`: `loaded` as it was read when there was one, else a new
// one from `config` naming `tokenizer_class` (e.g. "PreTrainedTokenizerFast"). Writes
// special_tokens_map.json from `config` too.
void write_tokenizer_config(const std::filesystem::path& dir, const Json& loaded, const TokenizerConfig& config,
                            const std::string& tokenizer_class);

}  // namespace rlhf
