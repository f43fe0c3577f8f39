// Byte-level BPE training: word counting over pre-tokenized lines, then HF BpeTrainer's merge
// loop with incremental pair counts and a lazily updated priority queue.
#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <optional>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

using Pair = uint64_t;  // (left id << 32) | right id
Pair make_pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t left_of(Pair p) { return int32_t(p >> 32); }
int32_t right_of(Pair p) { return int32_t(p & 0xFFFFFFFFu); }

// Pre-tokenized words (raw bytes) of every line of every file, with their counts.
std::unordered_map<std::string, uint64_t> count_words(const BpeTrainOptions& o, const PreTokenizer& pre) {
  std::unordered_map<std::string, uint64_t> counts;
  uintmax_t total = 0;
  for (const auto& f : o.text_files) {
    RLHF_CHECK(fs::is_regular_file(f), "--text ", f.string(), ": no such file");
    total += fs::file_size(f);
  }
  std::optional<Progress> progress;
  if (o.show_progress) progress.emplace("counting words", int64_t(total), "B");
  int64_t done = 0;
  std::vector<NormalizedString> pieces;
  for (const auto& f : o.text_files) {
    std::string text = read_file(f, "training text");
    size_t bad = utf8::find_invalid(text);
    RLHF_CHECK(bad == std::string::npos, f.string(), ": not valid UTF-8 at byte ", bad, "; convert the file to UTF-8");
    for (size_t begin = 0; begin < text.size();) {
      size_t end = text.find('\n', begin);
      end = end == std::string::npos ? text.size() : end + 1;
      pieces.clear();
      pieces.emplace_back(std::string_view(text).substr(begin, end - begin), 0);
      pre.pre_tokenize(pieces);
      for (const auto& p : pieces) ++counts[p.get()];
      done += int64_t(end - begin);
      begin = end;
      if (progress) progress->update(done);
    }
  }
  if (progress) progress->finish(detail::cat(counts.size(), " distinct words"));
  return counts;
}

struct Candidate {
  uint64_t count;
  Pair pair;
  bool operator<(const Candidate& o) const {  // max count first, then the smaller pair
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

// The word-level state of training: every distinct word as symbol ids, its count, and where
// each pair occurs.
class MergeState {
 public:
  MergeState(std::vector<std::vector<int32_t>> words, std::vector<uint64_t> counts)
      : words_(std::move(words)), counts_(std::move(counts)) {
    for (uint32_t w = 0; w < words_.size(); ++w)
      for (size_t i = 0; i + 1 < words_[w].size(); ++i) {
        Pair p = make_pair_key(words_[w][i], words_[w][i + 1]);
        pair_counts_[p] += int64_t(counts_[w]);
        new_where_[p].push_back(w);
      }
    flush_new_pairs();
  }

  // The most frequent pair and its count, or false when none is left.
  bool pop(Candidate& top) {
    while (!queue_.empty()) {
      top = queue_.top();
      queue_.pop();
      int64_t current = pair_counts_[top.pair];
      if (uint64_t(std::max<int64_t>(current, 0)) == top.count) return true;
      queue_.push({uint64_t(std::max<int64_t>(current, 0)), top.pair});
    }
    return false;
  }

  // Replaces `pair` by `new_id` in every word that has it (Word::merge), updating pair counts.
  void merge(Pair pair, int32_t new_id) {
    auto it = where_.find(pair);
    if (it == where_.end()) return;
    std::vector<uint32_t> positions = std::move(it->second);
    where_.erase(it);
    for (uint32_t w : positions) merge_word(w, left_of(pair), right_of(pair), new_id);
    flush_new_pairs();
  }

 private:
  void change(Pair p, int delta, uint32_t w) {
    pair_counts_[p] += delta * int64_t(counts_[w]);
    if (delta > 0) new_where_[p].push_back(w);
  }

  void merge_word(uint32_t w, int32_t a, int32_t b, int32_t new_id) {
    std::vector<int32_t>& s = words_[w];
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != a || i + 1 >= s.size() || s[i + 1] != b) continue;
      if (i > 0) {
        change(make_pair_key(s[i - 1], a), -1, w);
        change(make_pair_key(s[i - 1], new_id), +1, w);
      }
      s[i] = new_id;
      s.erase(s.begin() + i + 1);
      if (i + 1 < s.size()) {
        change(make_pair_key(b, s[i + 1]), -1, w);
        change(make_pair_key(new_id, s[i + 1]), +1, w);
      }
    }
  }

  // Pairs that gained occurrences become candidates (HF pushes each with its current count).
  void flush_new_pairs() {
    for (auto& [p, words] : new_where_) {
      std::sort(words.begin(), words.end());
      words.erase(std::unique(words.begin(), words.end()), words.end());
      auto& all = where_[p];
      all.insert(all.end(), words.begin(), words.end());
      int64_t count = pair_counts_[p];
      if (count > 0) queue_.push({uint64_t(count), p});
    }
    new_where_.clear();
  }

  std::vector<std::vector<int32_t>> words_;
  std::vector<uint64_t> counts_;
  std::unordered_map<Pair, int64_t> pair_counts_;
  std::unordered_map<Pair, std::vector<uint32_t>> where_, new_where_;
  std::priority_queue<Candidate> queue_;
};

Json added_tokens_json(const std::vector<std::string>& specials) {
  Json out = Json::array();
  for (size_t i = 0; i < specials.size(); ++i)
    out.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                   {"rstrip", false}, {"normalized", false}, {"special", true}});
  return out;
}

}  // namespace

Json byte_level_pre_tokenizer_json(const std::string& pattern) {
  if (pattern == "gpt2")
    return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  RLHF_CHECK(pattern == "llama3", "--pattern: unknown pattern \"", pattern, "\"; use gpt2 or llama3");
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

TrainedTokenizer train_bpe(const BpeTrainOptions& o) {
  RLHF_CHECK(!o.text_files.empty(), "--text: give at least one training text file");
  int64_t base = int64_t(o.special_tokens.size()) + 256;
  RLHF_CHECK(o.vocab_size > base, "--vocab-size ", o.vocab_size, " leaves no room for merges after ",
             o.special_tokens.size(), " special tokens and 256 byte tokens; use at least ", base + 1);
  for (const auto& s : o.special_tokens) RLHF_CHECK(!s.empty(), "--special-tokens: empty token in the list");

  Json pre_json = byte_level_pre_tokenizer_json(o.pattern);
  PreTokenizerOptions pre_options;
  pre_options.defer_byte_mapping = true;  // words stay raw bytes
  auto pre = make_pre_tokenizer(pre_json, "pre_tokenizer", pre_options);
  auto word_counts = count_words(o, *pre);

  // 1. ids: special tokens, then the 256 byte characters sorted by code point.
  std::vector<std::string> id_to_token(o.special_tokens);
  std::unordered_map<std::string, int32_t> token_to_id;
  for (size_t i = 0; i < id_to_token.size(); ++i) token_to_id.emplace(id_to_token[i], int32_t(i));
  std::vector<std::pair<char32_t, int>> alphabet;
  for (int b = 0; b < 256; ++b) alphabet.emplace_back(byte_level::byte_to_char()[b], b);
  std::sort(alphabet.begin(), alphabet.end());
  int32_t byte_id[256];
  for (auto [c, b] : alphabet) {
    const std::string& s = byte_level::byte_to_utf8()[b];
    auto [it, fresh] = token_to_id.emplace(s, int32_t(id_to_token.size()));
    if (fresh) id_to_token.push_back(s);
    byte_id[b] = it->second;
  }

  // 2. words as byte symbols.
  std::vector<std::vector<int32_t>> words;
  std::vector<uint64_t> counts;
  words.reserve(word_counts.size());
  for (const auto& [word, count] : word_counts) {
    std::vector<int32_t> symbols;
    for (unsigned char c : word) symbols.push_back(byte_id[c]);
    words.push_back(std::move(symbols));
    counts.push_back(count);
  }
  MergeState state(std::move(words), std::move(counts));

  // 3. merges until the vocabulary is full or no pair is frequent enough.
  Json merges = Json::array();
  std::optional<Progress> progress;
  if (o.show_progress) progress.emplace("merging pairs", o.vocab_size - int64_t(id_to_token.size()), "merges");
  int64_t first_free = int64_t(id_to_token.size());
  Candidate top;
  while (int64_t(id_to_token.size()) < o.vocab_size && state.pop(top)) {
    if (top.count < 1 || top.count < uint64_t(std::max<int64_t>(o.min_frequency, 0))) break;
    const std::string& a = id_to_token[left_of(top.pair)];
    const std::string& b = id_to_token[right_of(top.pair)];
    std::string merged = a + b;
    auto [it, fresh] = token_to_id.emplace(merged, int32_t(id_to_token.size()));
    if (fresh) id_to_token.push_back(merged);
    merges.push_back(a + " " + b);
    state.merge(top.pair, it->second);
    if (progress) progress->update(int64_t(id_to_token.size()) - first_free);
  }
  if (progress) progress->finish(detail::cat(merges.size(), " merges, vocabulary ", id_to_token.size()));

  Json vocab = Json::object();
  for (size_t i = 0; i < id_to_token.size(); ++i) vocab[id_to_token[i]] = i;
  Json model = {{"type", "BPE"},         {"dropout", nullptr},   {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},          {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},     {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", vocab},        {"merges", merges}};
  Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
  TrainedTokenizer out;
  out.tokenizer_json = {{"version", "1.0"},          {"truncation", nullptr},     {"padding", nullptr},
                        {"added_tokens", added_tokens_json(o.special_tokens)}, {"normalizer", nullptr},
                        {"pre_tokenizer", pre_json}, {"post_processor", byte_level}, {"decoder", byte_level},
                        {"model", model}};
  auto or_first = [&](const std::string& t) { return t.empty() && !o.special_tokens.empty() ? o.special_tokens[0] : t; };
  out.config_json = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"clean_up_tokenization_spaces", false}};
  for (auto [key, value] : {std::pair{"bos_token", or_first(o.bos_token)}, {"eos_token", or_first(o.eos_token)},
                            {"pad_token", or_first(o.pad_token)}})
    if (!value.empty()) out.config_json[key] = value;
  return out;
}

}  // namespace rlhf
