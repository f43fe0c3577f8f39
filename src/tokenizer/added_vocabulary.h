// Added tokens (tokenizer.json "added_tokens": special tokens such as <|endoftext|> and any tokens
// added after training): found in the text before normalisation and BPE, leftmost-longest, with
// the single_word / lstrip / rstrip / normalized options of Hugging Face tokenizers.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/json.h"
#include "tokenizer/normalizers.h"

namespace rlhf {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;  // only where no word character touches it on either side
  bool lstrip = false;       // takes the whitespace on its left with it
  bool rstrip = false;       // takes the whitespace on its right with it
  bool normalized = true;    // matched in the normalized text (else in the raw text)
};

// A run of text: an added token (token >= 0, an index into tokens()) or plain text (-1).
struct AddedMatch {
  size_t begin, end;
  int32_t token;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) normalizes the contents of normalized tokens for matching.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` into added tokens and plain runs covering it, using the tokens matched in raw
  // text (`normalized` false) or those matched in normalized text (true).
  std::vector<AddedMatch> split(std::string_view text, bool normalized) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* by_id(int64_t id) const;
  const AddedToken* by_content(std::string_view content) const;

 private:
  // A byte trie over the token contents of one matching set.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token = -1;
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void insert(std::string_view key, int32_t token);
    // Index of the longest token starting at text[pos] and its length; -1 when none.
    int32_t longest_at(std::string_view text, size_t pos, size_t& length) const;
  };
  bool accept(const AddedToken& t, std::string_view text, size_t begin, size_t end) const;

  std::vector<AddedToken> tokens_;
  Trie raw_, normalized_;
  std::unordered_map<int64_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
};

// Parses tokenizer.json "added_tokens".
std::vector<AddedToken> added_tokens_from_json(const Json& j, const std::string& where);

}  // namespace rlhf
