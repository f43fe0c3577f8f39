// The BPE model of tokenizer.json: vocab, ranked merges, byte fallback (<0xXX> tokens), unk
// handling and ignore_merges, with the merge order of Hugging Face tokenizers (lowest rank
// first, leftmost first among equals). Results per piece are cached.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/json.h"

namespace rlhf {

// One token of a piece: its id and the bytes [begin, end) of the piece it covers.
struct PieceToken {
  int32_t id;
  uint32_t begin, end;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `j` is tokenizer.json's "model" object (type BPE). With `byte_level_input`, pieces are raw
  // bytes and each byte stands for its byte-level character (see byte_level.h).
  BpeModel(const Json& j, const std::string& where, bool byte_level_input);
  ~BpeModel();

  // Appends the tokens of one pre-tokenized piece to `out`.
  void tokenize(std::string_view piece, std::vector<PieceToken>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int64_t id) const;  // null when no token has this id
  int64_t max_id() const { return int64_t(id_to_token_.size()) - 1; }
  // Ids number the tokens 0..N-1 with at most this many gaps (real vocabularies have none): a
  // lone id of 10^8 in a 7 KB file would otherwise size tables, and models, by it.
  static constexpr int64_t kMaxIdGaps = 65536;
  size_t size() const { return vocab_.size(); }
  std::optional<std::string> unk_token() const { return unk_token_; }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours still alive, -1 at the ends
    uint32_t len;        // bytes of the piece; 0 once merged into its left neighbour
  };
  struct Merge {
    int32_t rank, new_id;
  };
  void load_vocab(const Json& j, const std::string& where);
  void load_merges(const Json& j, const std::string& where);
  static void append(std::vector<Symbol>& word, int32_t id, uint32_t len);  // links it to its left neighbour
  void initial_symbols(std::string_view piece, std::vector<Symbol>& word) const;
  void add_char(std::string_view ch, uint32_t len, std::vector<Symbol>& word, std::optional<Symbol>& unk) const;
  void merge(std::vector<Symbol>& word) const;
  const Merge* find_merge(int32_t a, int32_t b) const;
  std::optional<int32_t> whole_piece_id(std::string_view piece) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;  // "" where no token has the id
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<std::string> unk_token_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  bool byte_level_input_;
  int32_t byte_ids_[256];       // byte-level input: vocab id of each byte's character, -1 if none
  int32_t fallback_ids_[256];   // id of "<0xXX>", -1 if none
  TokenMap byte_level_vocab_;   // byte-level input with ignore_merges: vocab keyed by raw bytes

  struct Cache;
  std::unique_ptr<Cache> cache_;
};

}  // namespace rlhf
