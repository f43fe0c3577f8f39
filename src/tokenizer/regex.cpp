// Oniguruma-to-PCRE2 pattern translation, and matching with PCRE2's JIT.
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

// Oniguruma's \w: Unicode "Word" = Alphabetic + Mark + Decimal_Number + Connector_Punctuation +
// Join_Control; as a class, its complement, and inside a class.
#define RLHF_WORD_SET "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
constexpr std::string_view kWordSet = RLHF_WORD_SET;
constexpr std::string_view kWordClass = "[" RLHF_WORD_SET "]";
constexpr std::string_view kNotWordClass = "[^" RLHF_WORD_SET "]";
constexpr std::string_view kWordBoundary = "(?:(?<=[" RLHF_WORD_SET "])(?![" RLHF_WORD_SET "])|(?<![" RLHF_WORD_SET
                                           "])(?=[" RLHF_WORD_SET "]))";
constexpr std::string_view kNotWordBoundary = "(?:(?<=[" RLHF_WORD_SET "])(?=[" RLHF_WORD_SET "])|(?<![" RLHF_WORD_SET
                                              "])(?![" RLHF_WORD_SET "]))";
#undef RLHF_WORD_SET

}  // namespace

std::string onig_to_pcre2(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  auto refuse = [&](const char* what) {
    RLHF_FAIL(where, ": regex \"", std::string(p), "\" uses ", what,
              ", which this tokenizer implementation does not support; rewrite the pattern without it");
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      RLHF_CHECK(i + 1 < p.size(), where, ": regex \"", std::string(p), "\" ends with a lone backslash");
      char n = p[++i];
      switch (n) {
        case 's': out += "\\p{White_Space}"; break;
        case 'S': out += "\\P{White_Space}"; break;
        case 'w': out += in_class ? kWordSet : kWordClass; break;
        case 'W':
          if (in_class) refuse("\\W inside a character class");
          out += kNotWordClass;
          break;
        case 'h': out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]"; break;
        case 'H':
          if (in_class) refuse("\\H inside a character class");
          out += "[^0-9a-fA-F]";
          break;
        case 'b': out += in_class ? std::string_view("\\b") : kWordBoundary; break;
        case 'B':
          if (in_class) refuse("\\B inside a character class");
          out += kNotWordBoundary;
          break;
        case 'u': {
          RLHF_CHECK(i + 4 < p.size(), where, ": regex \"", std::string(p), "\": \\u needs four hex digits");
          out.append("\\x{").append(p.substr(i + 1, 4)).append("}");
          i += 4;
          break;
        }
        default:
          out += '\\';
          out += n;
      }
    } else if (c == '[') {
      if (in_class && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX bracket [:alpha:]
        size_t close = p.find(":]", i + 2);
        RLHF_CHECK(close != std::string_view::npos, where, ": regex \"", std::string(p), "\": unterminated [:...:]");
        out += p.substr(i, close + 2 - i);
        i = close + 1;
        continue;
      }
      if (in_class) refuse("a nested character class");
      in_class = true;
      out += '[';
      // A ']' right after '[' or '[^' is a literal in both syntaxes.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += "\\]", ++i;
    } else if (c == ']' && in_class) {
      in_class = false;
      out += ']';
    } else if (c == '&' && in_class && i + 1 < p.size() && p[i + 1] == '&') {
      refuse("class intersection (&&)");
    } else if (c == '(' && !in_class && i + 2 < p.size() && p[i + 1] == '?' &&
               std::string_view("imx-").find(p[i + 2]) != std::string_view::npos) {
      // Inline options: Ruby's m is PCRE2's s (dot matches newline).
      out += "(?";
      for (i += 2; i < p.size() && std::string_view("imx-").find(p[i]) != std::string_view::npos; ++i)
        out += p[i] == 'm' ? 's' : p[i];
      --i;
    } else {
      out += c;
    }
  }
  RLHF_CHECK(!in_class, where, ": regex \"", std::string(p), "\" has an unterminated character class");
  return out;
}

struct Regex::Code {
  pcre2_code* re = nullptr;
  ~Code() { pcre2_code_free(re); }
};

namespace {

// Per-thread scratch for matching: a match block and a JIT stack large enough for long inputs.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Regex::Regex(std::string_view pattern, const std::string& where) : source_(pattern), code_(std::make_unique<Code>()) {
  std::string translated = onig_to_pcre2(pattern, where);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  code_->re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_NO_UTF_CHECK, &err, &err_offset, nullptr);
  RLHF_CHECK(code_->re, where, ": invalid regex \"", source_, "\": ", pcre2_message(err), " (at offset ", err_offset,
             " of the translated pattern \"", translated, "\")");
  int jit = pcre2_jit_compile(code_->re, PCRE2_JIT_COMPLETE);
  RLHF_CHECK(jit == 0 || jit == PCRE2_ERROR_JIT_BADOPTION, where, ": PCRE2 JIT failed for \"", source_,
             "\": ", pcre2_message(jit));
}

Regex::~Regex() = default;

bool Regex::search(std::string_view text, size_t start, size_t& begin, size_t& end) const {
  MatchScratch& s = scratch();
  int rc = pcre2_match(code_->re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, PCRE2_NO_UTF_CHECK,
                       s.data, s.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  RLHF_CHECK(rc >= 0, "regex \"", source_, "\": matching failed: ", pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
  begin = ov[0];
  end = ov[1];
  return true;
}

void Regex::for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const {
  size_t pos = 0, last_match_end = std::string_view::npos;
  while (pos <= text.size()) {
    size_t b, e;
    if (!search(text, pos, b, e)) return;
    if (b == e && last_match_end == e) {
      // An empty match right after the previous one: step over one character and retry.
      pos += pos < text.size() ? utf8::sequence_length(static_cast<unsigned char>(text[pos])) : 1;
      continue;
    }
    pos = e;
    last_match_end = e;
    on_match(b, e);
  }
}

bool is_word_char(char32_t c) {
  static const Regex word("\\w", "is_word_char");
  std::string s;
  utf8::append(s, c);
  bool found = false;
  word.for_each_match(s, [&](size_t, size_t) { found = true; });
  return found;
}

}  // namespace rlhf
