// The tokenizer of a GGUF file (tokenizer.ggml.* and tokenizer.chat_template*) as the files of a
// Hugging Face model directory: tokenizer.json (read by rlhf's tokenizer and by HF tokenizers),
// tokenizer_config.json (special tokens, add_bos/add_eos, the chat template), special_tokens_map.json
// and generation_config.json.
//
//   tokenizer.ggml.model "gpt2":  byte-level BPE from tokens + merges; the pre-tokenizer from
//                                 tokenizer.ggml.pre (the name convert_hf_to_gguf.py gave the HF
//                                 tokenizer it hashed, see dev/GGUF.md section 5)
//   tokenizer.ggml.model "llama": SentencePiece-style BPE with byte fallback ("▁" for spaces) from
//                                 tokens + scores (merges from the file, else derived from the scores
//                                 as transformers' SentencePieceExtractor does) + token types
// Control (3), user-defined (4) and unknown (2) tokens become added tokens. Special ids and the
// add_bos/add_eos flags are taken from the metadata (llama.cpp's defaults when absent), never guessed.
#pragma once
#include <cstdint>

#include "io/gguf.h"
#include "io/json.h"

namespace rlhf {

struct GgufTokenizerFiles {
  Json tokenizer_json, tokenizer_config, special_tokens_map, generation_config;
};

// `model_vocab` is the embedding's row count (the token list may be shorter, never longer); `n_ctx`
// becomes model_max_length. Errors name the file and the key ("x.gguf: tokenizer.ggml.pre \"jais\"
// is not supported; supported: ...").
GgufTokenizerFiles gguf_tokenizer_files(const GgufFile& f, int64_t model_vocab, int64_t n_ctx);

// The names of tokenizer.ggml.pre this converter knows, for messages and --help.
const char* gguf_supported_pre_tokenizers();

}  // namespace rlhf
