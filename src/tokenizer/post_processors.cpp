// The post-processors of tokenizer.json: TemplateProcessing, ByteLevel offset trimming, Sequence.
#include "tokenizer/post_processors.h"

#include <map>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// Special tokens before and after the single-sequence template's "A"; type ids and pair templates
// do not matter for a single sequence of ids.
class TemplateProcessing : public PostProcessor {
 public:
  struct Special {
    std::vector<int64_t> ids;
    std::vector<std::string> tokens;
  };
  TemplateProcessing(Special before, Special after) : before_(std::move(before)), after_(std::move(after)) {}

  void process(TokenList& t, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    insert(t, 0, before_);
    insert(t, t.ids.size(), after_);
  }
  void special_ids(std::vector<int64_t>& prefix, std::vector<int64_t>& suffix) const override {
    prefix.insert(prefix.end(), before_.ids.begin(), before_.ids.end());
    suffix.insert(suffix.end(), after_.ids.begin(), after_.ids.end());
  }

 private:
  static void insert(TokenList& t, size_t at, const Special& s) {
    t.ids.insert(t.ids.begin() + at, s.ids.begin(), s.ids.end());
    t.offsets.insert(t.offsets.begin() + at, s.ids.size(), {0, 0});
    t.values.insert(t.values.begin() + at, s.tokens.begin(), s.tokens.end());
  }
  Special before_, after_;
};

// With trim_offsets, offsets leave out the spaces ('Ġ' or whitespace) a token starts or ends
// with (process_offsets of Hugging Face tokenizers, counting characters as it does).
class ByteLevelProcessor : public PostProcessor {
 public:
  ByteLevelProcessor(bool trim_offsets, bool add_prefix_space) : trim_(trim_offsets), add_prefix_space_(add_prefix_space) {}
  void process(TokenList& t, bool) const override {
    if (!trim_) return;
    for (size_t i = 0; i < t.ids.size(); ++i) trim(i, t.values[i], t.offsets[i]);
  }
  bool needs_values() const override { return trim_; }

 private:
  static bool is_space(char32_t c) { return c == byte_level::byte_to_char()[' '] || utf8::is_white_space(c); }
  void trim(size_t i, const std::string& value, std::pair<int64_t, int64_t>& off) const {
    std::vector<char32_t> chars;
    for (size_t p = 0; p < value.size();) chars.push_back(utf8::next(value, p));
    int64_t leading = 0, trailing = 0;
    while (leading < int64_t(chars.size()) && is_space(chars[leading])) ++leading;
    while (trailing < int64_t(chars.size()) && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    if (leading > 0) {
      bool is_first = i == 0 || off.first == 0;
      if (is_first && add_prefix_space_ && leading == 1) leading = 0;
      off.first = std::min(off.first + leading, off.second);
    }
    if (trailing > 0 && off.second >= trailing) off.second = std::max(off.second - trailing, off.first);
  }
  bool trim_, add_prefix_space_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(TokenList& t, bool add_special_tokens) const override {
    for (const auto& s : steps_) s->process(t, add_special_tokens);
  }
  void special_ids(std::vector<int64_t>& prefix, std::vector<int64_t>& suffix) const override {
    for (const auto& s : steps_) s->special_ids(prefix, suffix);
  }
  bool needs_values() const override {
    for (const auto& s : steps_)
      if (s->needs_values()) return true;
    return false;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const Json& j, const std::string& where) {
  RLHF_CHECK(j.contains("single") && j["single"].is_array(), where, ": TemplateProcessing needs a \"single\" list");
  std::map<std::string, TemplateProcessing::Special> specials;
  if (j.contains("special_tokens") && j["special_tokens"].is_object())
    for (const auto& [name, s] : j["special_tokens"].items()) {
      std::string at = where + ".special_tokens." + name;
      specials[name] = {json_require<std::vector<int64_t>>(s, "ids", at),
                        json_get<std::vector<std::string>>(s, "tokens", {}, at)};
      specials[name].tokens.resize(specials[name].ids.size());
    }
  TemplateProcessing::Special before, after;
  bool seen_sequence = false;
  const Json& single = j["single"];
  for (size_t i = 0; i < single.size(); ++i) {
    std::string at = where + ".single[" + std::to_string(i) + "]";
    const Json& piece = single[i];
    if (piece.contains("Sequence")) {
      RLHF_CHECK(!seen_sequence && json_require<std::string>(piece["Sequence"], "id", at) == "A", at,
                 ": a single-sequence template holds sequence A exactly once");
      seen_sequence = true;
      continue;
    }
    RLHF_CHECK(piece.contains("SpecialToken"), at, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    std::string name = json_require<std::string>(piece["SpecialToken"], "id", at);
    auto it = specials.find(name);
    RLHF_CHECK(it != specials.end(), at, ": special token \"", name, "\" is missing from special_tokens");
    TemplateProcessing::Special& side = seen_sequence ? after : before;
    side.ids.insert(side.ids.end(), it->second.ids.begin(), it->second.ids.end());
    side.tokens.insert(side.tokens.end(), it->second.tokens.begin(), it->second.tokens.end());
  }
  RLHF_CHECK(seen_sequence, where, ".single: the template never places sequence A");
  return std::make_unique<TemplateProcessing>(std::move(before), std::move(after));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  RLHF_CHECK(j.is_object(), where, ": expected an object or null, got ", json_type_name(j));
  std::string type = json_require<std::string>(j, "type", where);
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelProcessor>(json_get<bool>(j, "trim_offsets", true, where),
                                                json_get<bool>(j, "add_prefix_space", true, where));
  if (type == "Sequence") {
    RLHF_CHECK(j.contains("processors") && j["processors"].is_array(), where, ": Sequence needs a \"processors\" array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < j["processors"].size(); ++i)
      if (auto p = make_post_processor(j["processors"][i], where + ".processors[" + std::to_string(i) + "]"))
        steps.push_back(std::move(p));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  RLHF_FAIL(where, ": post_processor type \"", type,
            "\" is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
}

}  // namespace rlhf
