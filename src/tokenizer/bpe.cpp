// The BPE model: loading vocab and merges, the first symbols of a piece (characters, byte-level
// bytes, <0xXX> fallback, unk), Hugging Face's merge loop, and the shared per-piece cache.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace rlhf {

// Results per piece, shared by all threads: 16 independently locked shards. A full shard is
// emptied and refilled, so that the cache follows the text (Hugging Face stops filling instead).
struct BpeModel::Cache {
  static constexpr size_t kShards = 16, kShardCapacity = 8192, kMaxPieceBytes = 256;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<PieceToken>, StringHash, std::equal_to<>> map;
  };
  Shard shards[kShards];

  Shard& shard(size_t hash) { return shards[(hash >> 7) % kShards]; }

  bool get(std::string_view piece, size_t hash, std::vector<PieceToken>& out) {
    Shard& s = shard(hash);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(piece);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void put(std::string_view piece, size_t hash, const PieceToken* tokens, size_t n) {
    if (piece.size() >= kMaxPieceBytes) return;
    Shard& s = shard(hash);
    std::lock_guard lock(s.mu);
    if (s.map.size() >= kShardCapacity) s.map.clear();
    s.map.emplace(std::string(piece), std::vector<PieceToken>(tokens, tokens + n));
  }
};

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

std::string fallback_token(int byte) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
  return buf;
}

}  // namespace

BpeModel::BpeModel(const Json& j, const std::string& where, bool byte_level_input)
    : byte_level_input_(byte_level_input), cache_(std::make_unique<Cache>()) {
  RLHF_CHECK(j.is_object(), where, ": expected an object");
  std::string type = json_get<std::string>(j, "type", "BPE", where);
  RLHF_CHECK(type == "BPE", where, ": model type \"", type,
             "\" is not supported; only BPE models (GPT-2, Llama, Qwen, Mistral style) are");
  RLHF_CHECK(json_get<double>(j, "dropout", 0.0, where) == 0.0, where,
             ": BPE dropout makes encoding random; set \"dropout\" to null for inference and training data");
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"})
    RLHF_CHECK(json_get<std::string>(j, field, "", where).empty(), where, ": \"", field,
               "\" is not supported (word-piece style BPE); only byte-level and SentencePiece-style BPE are");
  if (auto unk = json_get<std::string>(j, "unk_token", "", where); !unk.empty()) unk_token_ = unk;
  fuse_unk_ = json_get<bool>(j, "fuse_unk", false, where);
  byte_fallback_ = json_get<bool>(j, "byte_fallback", false, where);
  ignore_merges_ = json_get<bool>(j, "ignore_merges", false, where);
  load_vocab(j, where);
  load_merges(j, where);
  if (unk_token_) {
    auto it = vocab_.find(*unk_token_);
    if (it != vocab_.end()) unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(fallback_token(b));
    fallback_ids_[b] = it == vocab_.end() ? -1 : it->second;
    byte_ids_[b] = -1;
    if (byte_level_input_) {
      auto ch = vocab_.find(byte_level::byte_to_utf8()[b]);
      RLHF_CHECK(ch != vocab_.end(), where, ": byte-level vocab lacks the character for byte ", b);
      byte_ids_[b] = ch->second;
    }
  }
  if (byte_level_input_ && ignore_merges_) {
    std::string bytes;
    for (const auto& [token, id] : vocab_)
      if (byte_level::decode(token, bytes)) byte_level_vocab_.emplace(bytes, id);
  }
}

BpeModel::~BpeModel() = default;

void BpeModel::load_vocab(const Json& j, const std::string& where) {
  RLHF_CHECK(j.contains("vocab") && j["vocab"].is_object(), where, ": \"vocab\" must be an object {token: id}");
  int64_t max_id = -1;
  const int64_t n = int64_t(j["vocab"].size());
  for (const auto& [token, id] : j["vocab"].items()) {
    RLHF_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t(1) << 31), where,
               ".vocab: token \"", token, "\" has id ", id.dump(), "; ids must be integers in [0, 2^31)");
    RLHF_CHECK(id.get<int64_t>() < n + kMaxIdGaps, where, ".vocab: token \"", token, "\" has id ", id.get<int64_t>(),
               " but the vocab holds only ", n, " tokens; ids must number them from 0 (the file is corrupt)");
    vocab_.emplace(token, id.get<int32_t>());
    max_id = std::max(max_id, id.get<int64_t>());
  }
  id_to_token_.assign(size_t(max_id + 1), std::string());
  has_id_.assign(size_t(max_id + 1), false);
  for (const auto& [token, id] : vocab_) {
    if (has_id_[id]) continue;
    id_to_token_[id] = token;
    has_id_[id] = true;
  }
}

void BpeModel::load_merges(const Json& j, const std::string& where) {
  RLHF_CHECK(j.contains("merges") && j["merges"].is_array(), where,
             ": \"merges\" must be a list of \"a b\" strings or [\"a\", \"b\"] pairs");
  const Json& merges = j["merges"];
  merges_.reserve(merges.size());
  auto id_of = [&](const std::string& token, size_t rank) {
    auto it = vocab_.find(token);
    RLHF_CHECK(it != vocab_.end(), where, ".merges[", rank, "]: token \"", token,
               "\" is not in the vocab; the merges do not belong to this vocab");
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Json& m = merges[rank];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ');
      RLHF_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, where, ".merges[", rank,
                 "]: \"", s, "\" is not two tokens separated by one space");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else {
      RLHF_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), where, ".merges[", rank,
                 "]: expected \"a b\" or [\"a\", \"b\"], got ", m.dump());
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    }
    int32_t left = id_of(a, rank), right = id_of(b, rank), merged = id_of(a + b, rank);
    merges_[pair_key(left, right)] = Merge{int32_t(rank), merged};  // a later duplicate wins, as in HF
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int64_t id) const {
  if (id < 0 || id >= int64_t(id_to_token_.size()) || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

std::optional<int32_t> BpeModel::whole_piece_id(std::string_view piece) const {
  const TokenMap& map = byte_level_input_ ? byte_level_vocab_ : vocab_;
  auto it = map.find(piece);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

// One character that is `len` bytes of the piece: its token, else its bytes as <0xXX> tokens
// (byte_fallback), else the unk token (fused with a preceding unk when fuse_unk), else nothing.
void BpeModel::add_char(std::string_view ch, uint32_t len, std::vector<Symbol>& word,
                        std::optional<Symbol>& unk) const {
  auto push = [&](int32_t id, uint32_t n) { append(word, id, n); };
  if (auto it = vocab_.find(ch); it != vocab_.end()) {
    if (unk) push(unk->id, unk->len), unk.reset();
    push(it->second, len);
    return;
  }
  if (byte_fallback_ && std::all_of(ch.begin(), ch.end(), [&](char c) { return fallback_ids_[uint8_t(c)] >= 0; })) {
    for (char c : ch) push(fallback_ids_[uint8_t(c)], 1);
    return;
  }
  if (!unk_token_) return;
  if (unk && fuse_unk_) {
    unk->len += len;
    return;
  }
  RLHF_CHECK(unk_id_, "tokenizer.json: model.unk_token \"", *unk_token_, "\" is not in model.vocab");
  if (unk) push(unk->id, unk->len);
  unk = Symbol{*unk_id_, -1, -1, len};
}

void BpeModel::append(std::vector<Symbol>& word, int32_t id, uint32_t len) {
  int32_t index = int32_t(word.size());
  if (!word.empty()) word.back().next = index;
  word.push_back({id, index - 1, -1, len});
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<Symbol>& word) const {
  if (byte_level_input_) {
    for (char c : piece) append(word, byte_ids_[uint8_t(c)], 1);
    return;
  }
  std::optional<Symbol> unk;
  for (size_t i = 0; i < piece.size();) {
    uint32_t n = utf8::sequence_length(uint8_t(piece[i]));
    add_char(piece.substr(i, n), n, word, unk);
    i += n;
  }
  if (unk) append(word, unk->id, unk->len);
}

// Word::merge_all of Hugging Face tokenizers: a min-heap of candidate merges ordered by (rank,
// position); stale candidates (a side already merged away) are skipped when popped.
void BpeModel::merge(std::vector<Symbol>& word) const {
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Candidate> heap;
  heap.clear();
  auto push = [&](int32_t pos, const Merge* m) {
    heap.push_back({m->rank, pos, m->new_id});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t i = 0; i + 1 < word.size(); ++i)
    if (const Merge* m = find_merge(word[i].id, word[i + 1].id)) push(int32_t(i), m);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& cur = word[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    Symbol right = word[cur.next];
    const Merge* m = find_merge(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;
    word[cur.next].len = 0;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    if (right.next >= 0) word[right.next].prev = top.pos;
    if (cur.prev >= 0)
      if (const Merge* left = find_merge(word[cur.prev].id, cur.id)) push(cur.prev, left);
    if (cur.next >= 0)
      if (const Merge* next = find_merge(cur.id, word[cur.next].id)) push(top.pos, next);
  }
}

void BpeModel::tokenize(std::string_view piece, std::vector<PieceToken>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_)
    if (auto id = whole_piece_id(piece)) {
      out.push_back({*id, 0, uint32_t(piece.size())});
      return;
    }
  size_t hash = StringHash{}(piece);
  if (cache_->get(piece, hash, out)) return;
  thread_local std::vector<Symbol> word;
  word.clear();
  initial_symbols(piece, word);
  merge(word);
  size_t first = out.size();
  uint32_t pos = 0;
  for (const Symbol& s : word) {
    if (s.len == 0) continue;
    out.push_back({s.id, pos, pos + s.len});
    pos += s.len;
  }
  cache_->put(piece, hash, out.data() + first, out.size() - first);
}

}  // namespace rlhf
