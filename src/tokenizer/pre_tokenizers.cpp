// The pre-tokenizers of tokenizer.json (ByteLevel, Split, Digits, Metaspace, Sequence) and the
// factory that reads them.
#include "tokenizer/pre_tokenizers.h"

#include <optional>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace rlhf {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

template <class F>
void split_each(std::vector<NormalizedString>& pieces, F split_one) {
  std::vector<NormalizedString> out;
  out.reserve(pieces.size());
  for (auto& piece : pieces)
    for (auto& sub : split_one(piece))
      if (!sub.empty()) out.push_back(std::move(sub));
  pieces = std::move(out);
}

// Optionally adds a leading space, splits with GPT-2's pattern, then shows every byte as a
// character of the byte-level alphabet (unless the model does that, see PreTokenizerOptions).
class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex, bool map_bytes, const std::string& where)
      : add_prefix_space_(add_prefix_space), map_bytes_(map_bytes) {
    if (use_regex) pattern_ = Pattern::regex(kGpt2Pattern, where);
  }
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    split_each(pieces, [&](NormalizedString& piece) {
      if (add_prefix_space_ && piece.get()[0] != ' ') piece.prepend(" ");
      if (!pattern_) return std::vector<NormalizedString>{std::move(piece)};
      return piece.split(*pattern_, SplitBehavior::Isolated);
    });
    if (map_bytes_)
      for (auto& piece : pieces) map_bytes(piece);
  }

 private:
  // Each byte of a character becomes its byte-level character: the first replaces the character,
  // the others are inserted after it (so all take the character's input range).
  static void map_bytes(NormalizedString& piece) {
    const std::string& s = piece.get();
    std::vector<CharChange> dest;
    dest.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      int n = utf8::sequence_length(static_cast<unsigned char>(s[i]));
      for (int k = 0; k < n; ++k)
        dest.push_back({byte_level::byte_to_char()[static_cast<unsigned char>(s[i + k])], k > 0 ? 1 : 0});
      i += n;
    }
    piece.transform(dest);
  }

  bool add_prefix_space_, map_bytes_;
  std::optional<Pattern> pattern_;
};

class Split : public PreTokenizer {
 public:
  Split(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    split_each(pieces, [&](NormalizedString& piece) { return piece.split(pattern_, behavior_, invert_); });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Replaces spaces by the replacement character, prepends one (per prepend_scheme), and splits
// before each replacement character.
class Metaspace : public PreTokenizer {
 public:
  enum class Prepend { Always, Never, First };
  Metaspace(std::string replacement, Prepend prepend, bool split, const std::string& where)
      : replacement_(replacement),
        space_(Pattern::literal(" ", where)),
        delimiter_(Pattern::literal(replacement, where + ".replacement")),
        prepend_(prepend),
        split_(split) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    split_each(pieces, [&](NormalizedString& piece) {
      piece.replace(space_, replacement_);
      bool starts = piece.get().compare(0, replacement_.size(), replacement_) == 0;
      if ((prepend_ == Prepend::Always && !starts) ||
          (prepend_ == Prepend::First && !starts && piece.original_begin() == 0))
        piece.prepend(replacement_);
      if (!split_) return std::vector<NormalizedString>{std::move(piece)};
      return piece.split(delimiter_, SplitBehavior::MergedWithNext);
    });
  }

 private:
  std::string replacement_;
  Pattern space_, delimiter_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

Metaspace::Prepend prepend_scheme_from_json(const Json& j, const std::string& where) {
  std::string scheme = json_get<std::string>(j, "prepend_scheme", "always", where);
  Metaspace::Prepend prepend;
  if (scheme == "always") prepend = Metaspace::Prepend::Always;
  else if (scheme == "never") prepend = Metaspace::Prepend::Never;
  else if (scheme == "first") prepend = Metaspace::Prepend::First;
  else RLHF_FAIL(where, ": unknown prepend_scheme \"", scheme, "\"; expected always, never or first");
  // Files from before prepend_scheme existed say add_prefix_space.
  if (!json_get<bool>(j, "add_prefix_space", true, where)) {
    RLHF_CHECK(!j.contains("prepend_scheme") || prepend == Metaspace::Prepend::Never, where,
               ": add_prefix_space false contradicts prepend_scheme \"", scheme, "\"");
    prepend = Metaspace::Prepend::Never;
  }
  return prepend;
}

std::unique_ptr<PreTokenizer> make_metaspace(const Json& j, const std::string& where) {
  std::string replacement = json_require<std::string>(j, "replacement", where);
  RLHF_CHECK(!replacement.empty() && utf8::valid_sequence_at(replacement, 0) == replacement.size(), where,
             ": \"replacement\" must be one character, got \"", replacement, "\"");
  return std::make_unique<Metaspace>(replacement, prepend_scheme_from_json(j, where),
                                     json_get<bool>(j, "split", true, where), where);
}

std::unique_ptr<PreTokenizer> make_one(const Json& j, const std::string& where, bool map_bytes,
                                       const PreTokenizerOptions& options) {
  RLHF_CHECK(j.is_object(), where, ": expected an object or null, got ", json_type_name(j));
  std::string type = json_require<std::string>(j, "type", where);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(json_get<bool>(j, "add_prefix_space", true, where),
                                       json_get<bool>(j, "use_regex", true, where), map_bytes, where);
  if (type == "Split") {
    RLHF_CHECK(j.contains("pattern") && j.contains("behavior"), where, ": Split needs \"pattern\" and \"behavior\"");
    return std::make_unique<Split>(Pattern::from_json(j["pattern"], where + ".pattern"),
                                   split_behavior_from_json(j["behavior"], where + ".behavior"),
                                   json_get<bool>(j, "invert", false, where));
  }
  if (type == "Digits") {
    // Rust's char::is_numeric (\p{N}): each digit alone, or runs of digits.
    bool individual = json_get<bool>(j, "individual_digits", false, where);
    return std::make_unique<Split>(Pattern::regex(individual ? "\\p{N}" : "\\p{N}+", where), SplitBehavior::Isolated,
                                   false);
  }
  if (type == "Metaspace") return make_metaspace(j, where);
  if (type == "Sequence") {
    RLHF_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(), where,
               ": Sequence needs a \"pretokenizers\" array");
    const Json& steps_json = j["pretokenizers"];
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < steps_json.size(); ++i) {
      bool last = i + 1 == steps_json.size();
      steps.push_back(make_one(steps_json[i], where + ".pretokenizers[" + std::to_string(i) + "]",
                               map_bytes || !last, options));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  RLHF_FAIL(where, ": pre_tokenizer type \"", type,
            "\" is not supported (supported: ByteLevel, Split, Digits, Metaspace, Sequence)");
}

}  // namespace

bool pre_tokenizer_ends_with_byte_level(const Json& j) {
  if (!j.is_object()) return false;
  auto t = j.find("type");
  const std::string type = t != j.end() && t->is_string() ? t->get<std::string>() : "";  // make_one reports a bad one
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && j.contains("pretokenizers") && j["pretokenizers"].is_array() &&
      !j["pretokenizers"].empty())
    return pre_tokenizer_ends_with_byte_level(j["pretokenizers"].back());
  return false;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& where,
                                                 const PreTokenizerOptions& options) {
  if (j.is_null()) return nullptr;
  return make_one(j, where, !options.defer_byte_mapping, options);
}

}  // namespace rlhf
