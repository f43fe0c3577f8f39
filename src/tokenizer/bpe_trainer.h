// Training a byte-level BPE tokenizer from text files, with the algorithm of Hugging Face's
// BpeTrainer: count the pre-tokenized words, start from the 256 byte symbols, and repeatedly merge
// the most frequent adjacent pair (ties: the pair of smaller ids), updating pair counts
// incrementally. Same input, same settings -> the same vocab and merges as HF's trainer.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf {

struct BpeTrainOptions {
  std::vector<std::filesystem::path> text_files;  // read line by line, line endings kept
  int64_t vocab_size = 8000;                      // special tokens + 256 bytes + merges
  std::vector<std::string> special_tokens = {"<|endoftext|>"};  // ids 0, 1, ... in this order
  std::string pattern = "gpt2";                   // pre-tokenizer split: gpt2 | llama3
  int64_t min_frequency = 2;                      // pairs seen fewer times are never merged
  std::string bos_token, eos_token, pad_token;    // "" = the first special token
  bool show_progress = true;
};

struct TrainedTokenizer {
  Json tokenizer_json;  // a complete tokenizer.json
  Json config_json;     // its tokenizer_config.json
};

TrainedTokenizer train_bpe(const BpeTrainOptions& options);

// The pre_tokenizer section of tokenizer.json for a pattern name (gpt2 | llama3).
Json byte_level_pre_tokenizer_json(const std::string& pattern);

}  // namespace rlhf
