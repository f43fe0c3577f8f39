// Finding added tokens in text: a byte trie per matching set, leftmost-longest, then the
// single_word / lstrip / rstrip rules of Hugging Face's AddedVocabulary::find_matches.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// The last / first character of `s` (valid UTF-8, not empty).
char32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  return utf8::next(s, i);
}

char32_t first_char(std::string_view s) {
  size_t i = 0;
  return utf8::next(s, i);
}

// Start of the whitespace that ends `s` (s.size() when none).
size_t trailing_space_begin(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t b = end - 1;
    while (b > 0 && (uint8_t(s[b]) & 0xC0) == 0x80) --b;
    size_t i = b;
    if (!utf8::is_white_space(utf8::next(s, i))) break;
    end = b;
  }
  return end;
}

// Length of the whitespace that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!utf8::is_white_space(utf8::next(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token) {
  int32_t node = 0;
  for (char c : key) {
    auto& children = nodes[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), uint8_t(c),
                               [](const std::pair<uint8_t, int32_t>& e, uint8_t b) { return e.first < b; });
    if (it == children.end() || it->first != uint8_t(c)) {
      int32_t fresh = int32_t(nodes.size());
      it = children.insert(it, {uint8_t(c), fresh});
      nodes.emplace_back();
    }
    node = it->second;
  }
  if (nodes[node].token < 0) nodes[node].token = token;  // the first token with this content wins
  first_byte[uint8_t(key[0])] = true;
}

int32_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, size_t& length) const {
  int32_t found = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), uint8_t(text[i]),
                               [](const std::pair<uint8_t, int32_t>& e, uint8_t b) { return e.first < b; });
    if (it == children.end() || it->first != uint8_t(text[i])) break;
    node = it->second;
    if (nodes[node].token >= 0) found = nodes[node].token, length = i + 1 - pos;
  }
  return found;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_.emplace(t.id, i);
    by_content_.emplace(t.content, i);
    if (t.content.empty()) continue;
    if (!t.normalized) {
      raw_.insert(t.content, int32_t(i));
      continue;
    }
    NormalizedString n(t.content, 0);
    if (normalizer) normalizer->normalize(n);
    if (!n.empty()) normalized_.insert(n.get(), int32_t(i));
  }
}

const AddedToken* AddedVocabulary::by_id(int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

// single_word: no word character right before or right after the match.
bool AddedVocabulary::accept(const AddedToken& t, std::string_view text, size_t begin, size_t end) const {
  if (!t.single_word) return true;
  bool space_before = begin == 0 || !is_word_char(last_char(text.substr(0, begin)));
  bool space_after = end == text.size() || !is_word_char(first_char(text.substr(end)));
  return space_before && space_after;
}

// AddedVocabulary::find_matches of Hugging Face tokenizers: leftmost-longest matches; lstrip and
// rstrip widen a match over adjacent whitespace (never back over the previous match).
std::vector<AddedMatch> AddedVocabulary::split(std::string_view text, bool normalized) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  std::vector<AddedMatch> out;
  size_t done = 0;  // end of the previous match
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 0;
    int32_t index = trie.first_byte[uint8_t(text[pos])] ? trie.longest_at(text, pos, length) : -1;
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[index];
    size_t begin = pos, end = pos + length;
    pos = end;
    if (!accept(t, text, begin, end)) continue;
    if (t.lstrip) begin = std::max(trailing_space_begin(text.substr(0, begin)), done);
    if (t.rstrip) end += leading_space_length(text.substr(end));
    if (done < begin) out.push_back({done, begin, -1});
    out.push_back({begin, end, index});
    done = end;
  }
  if (done != text.size()) out.push_back({done, text.size(), -1});
  return out;
}

std::vector<AddedToken> added_tokens_from_json(const Json& j, const std::string& where) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  RLHF_CHECK(j.is_array(), where, ": expected a list of tokens, got ", json_type_name(j));
  for (size_t i = 0; i < j.size(); ++i) {
    std::string at = where + "[" + std::to_string(i) + "]";
    const Json& t = j[i];
    RLHF_CHECK(t.is_object(), at, ": expected an object with \"id\" and \"content\"");
    AddedToken a;
    auto id = t.find("id");
    RLHF_CHECK(id != t.end() && id->is_number_integer() && id->get<int64_t>() >= 0 && id->get<int64_t>() < (int64_t(1) << 31),
               at, ": \"id\" must be an integer in [0, 2^31), got ", id == t.end() ? std::string("nothing") : id->dump());
    a.id = id->get<int32_t>();
    a.content = json_require<std::string>(t, "content", at);
    RLHF_CHECK(!a.content.empty(), at, ": empty \"content\"");
    a.special = json_get<bool>(t, "special", false, at);
    a.single_word = json_get<bool>(t, "single_word", false, at);
    a.lstrip = json_get<bool>(t, "lstrip", false, at);
    a.rstrip = json_get<bool>(t, "rstrip", false, at);
    a.normalized = json_get<bool>(t, "normalized", !a.special, at);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace rlhf
