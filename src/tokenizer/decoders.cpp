// The decoders of tokenizer.json, each a step over the list of token strings, transcribed from
// Hugging Face tokenizers' decode_chain implementations.
#include "tokenizer/decoders.h"

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// Byte-level characters back to bytes (tokens with other characters, such as added tokens, are
// taken as they are); the result is one string, invalid UTF-8 replaced by U+FFFD.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes, decoded;
    for (const auto& t : tokens) bytes += byte_level::decode(t, decoded) ? decoded : t;
    tokens.assign(1, utf8::to_valid(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::string out;
      for (const Segment& s : pattern_.find_matches(t))
        out += s.is_match ? std::string_view(content_) : std::string_view(t).substr(s.begin, s.end - s.begin);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xXX> tokens become the text they encode, or one U+FFFD per byte when that is not
// valid UTF-8.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (utf8::find_invalid(bytes) == std::string::npos) out.push_back(bytes);
      else out.insert(out.end(), bytes.size(), std::string(utf8::kReplacement));
      bytes.clear();
    };
    for (auto& t : tokens) {
      int byte = parse_byte_token(t);
      if (byte >= 0) {
        bytes += char(byte);
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int value = 0;
    for (int k = 3; k < 5; ++k) {
      char c = t[k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      value = value * 16 + d;
    }
    return value;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && t.compare(begin, content_.size(), content_) == 0; ++k) begin += content_.size();
      for (size_t k = 0; k < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++k)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

// The replacement character becomes a space, except at the start of the first token when the
// pre-tokenizer prepended it.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          p += replacement_.size();
        } else {
          out += t[p++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

std::string one_char(const Json& j, const char* key, const std::string& where) {
  std::string c = json_require<std::string>(j, key, where);
  RLHF_CHECK(!c.empty() && utf8::valid_sequence_at(c, 0) == c.size(), where, ": \"", key,
             "\" must be one character, got \"", c, "\"");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  RLHF_CHECK(j.is_object(), where, ": expected an object or null, got ", json_type_name(j));
  std::string type = json_require<std::string>(j, "type", where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    RLHF_CHECK(j.contains("pattern"), where, ": Replace needs a \"pattern\"");
    return std::make_unique<ReplaceDecoder>(Pattern::from_json(j["pattern"], where + ".pattern"),
                                            json_require<std::string>(j, "content", where));
  }
  if (type == "Strip")
    return std::make_unique<StripDecoder>(one_char(j, "content", where), json_get<size_t>(j, "start", 0, where),
                                          json_get<size_t>(j, "stop", 0, where));
  if (type == "Metaspace") {
    std::string scheme = json_get<std::string>(j, "prepend_scheme", "always", where);
    bool prepends = scheme != "never" && json_get<bool>(j, "add_prefix_space", true, where);
    return std::make_unique<MetaspaceDecoder>(one_char(j, "replacement", where), prepends);
  }
  if (type == "Sequence") {
    RLHF_CHECK(j.contains("decoders") && j["decoders"].is_array(), where, ": Sequence needs a \"decoders\" array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < j["decoders"].size(); ++i)
      if (auto d = make_decoder(j["decoders"][i], where + ".decoders[" + std::to_string(i) + "]"))
        steps.push_back(std::move(d));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  RLHF_FAIL(where, ": decoder type \"", type,
            "\" is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
}

}  // namespace rlhf
