// The Jinja lexer, rule for rule as jinja2/lexer.py applies them (see lexer.h).
#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// The Unicode whitespace (Python's \s and str.isspace) starting at s[i], as a byte length; 0 if none.
size_t space_at(std::string_view s, size_t i) {
  unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return (b == ' ' || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F)) ? 1 : 0;
  size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  if (i + n > s.size()) return 0;
  std::u32string c = unicode::decode(s.substr(i, n));
  return !c.empty() && unicode::is_space(c[0]) ? n : 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (i < s.size()) {
    size_t n = space_at(s, i);
    if (!n) break;
    i += n;
  }
  return i;
}

bool all_spaces(std::string_view s) { return skip_spaces(s, 0) == s.size(); }

// Python's str.rstrip(): the text without trailing Unicode whitespace.
std::string_view rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (space_at(s, start) != end - start) break;
    end = start;
  }
  return s.substr(0, end);
}

// What jinja2's OptionalLStrip does to the text before a tag.
std::string_view strip_before_tag(std::string_view text, char sign, bool variable, bool line_starting) {
  if (sign == '-') return rstrip(text);
  if (sign != '+' && !variable) {
    size_t nl = text.rfind('\n');
    size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    if (l_pos > 0 || line_starting) {
      std::string_view tail = text.substr(l_pos);
      if (!tail.empty() && all_spaces(tail)) return text.substr(0, l_pos);
    }
  }
  return text;
}

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& where, const SourceMap& map) : s_(src), where_(where), map_(map) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      size_t t = find_tag(pos);
      if (t == std::string_view::npos) {
        push_data(s_.substr(pos), pos);
        break;
      }
      char kind = s_[t + 1];  // '%', '{' or '#'
      size_t after = t + 2;
      char sign = 0;
      if (after < s_.size() && (s_[after] == '-' || s_[after] == '+')) sign = s_[after++];
      size_t raw_end = kind == '%' ? match_raw_begin(t) : 0;
      std::string_view text = strip_before_tag(s_.substr(pos, t - pos), sign, kind == '{', line_starting);
      push_data(text, pos);
      if (raw_end) {
        line_starting = s_[raw_end - 1] == '\n';
        pos = lex_raw(t, raw_end, line_starting);
        line_starting = s_[pos - 1] == '\n';
      } else if (kind == '#') {
        pos = lex_comment(t, after);
        line_starting = s_[pos - 1] == '\n';
      } else {
        pos = lex_tag(t, after, kind == '%');
        line_starting = s_[pos - 1] == '\n';
      }
    }
    Token eof;
    eof.kind = Tok::eof;
    eof.pos = s_.size();
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  std::string_view s_;
  const std::string& where_;
  const SourceMap& map_;
  std::vector<Token> out_;

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    RLHF_FAIL(where_, ": ", map_.describe(pos), ": ", msg);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < s_.size(); ++i) {
      if (s_[i] == '{' && (s_[i + 1] == '%' || s_[i + 1] == '{' || s_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void push_data(std::string_view text, size_t pos) {
    if (text.empty()) return;
    Token t;
    t.kind = Tok::data;
    t.value = std::string(text);
    t.pos = pos;
    out_.push_back(std::move(t));
  }

  void push(Tok kind, size_t pos, std::string value = {}) {
    Token t;
    t.kind = kind;
    t.value = std::move(value);
    t.pos = pos;
    out_.push_back(std::move(t));
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at t: the end of the match, or 0.
  size_t match_raw_begin(size_t t) const {
    size_t i = t + 2;
    if (i < s_.size() && (s_[i] == '-' || s_[i] == '+')) ++i;
    i = skip_spaces(s_, i);
    if (s_.substr(i, 3) != "raw") return 0;
    i = skip_spaces(s_, i + 3);
    if (s_.substr(i, 3) == "-%}") return skip_spaces(s_, i + 3);
    if (s_.substr(i, 2) == "%}") return i + 2;
    return 0;
  }

  // After `{% raw %}`: data up to `{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
  size_t lex_raw(size_t tag, size_t start, bool line_starting) {
    for (size_t i = start; i + 1 < s_.size(); ++i) {
      if (s_[i] != '{' || s_[i + 1] != '%') continue;
      size_t j = i + 2;
      char sign = 0;
      if (j < s_.size() && (s_[j] == '-' || s_[j] == '+')) sign = s_[j++];
      j = skip_spaces(s_, j);
      if (s_.substr(j, 6) != "endraw") continue;
      j = skip_spaces(s_, j + 6);
      size_t end = 0;
      if (s_.substr(j, 3) == "+%}") {
        end = j + 3;
      } else if (s_.substr(j, 3) == "-%}") {
        end = skip_spaces(s_, j + 3);
      } else if (s_.substr(j, 2) == "%}") {
        end = j + 2;
        if (end < s_.size() && s_[end] == '\n') ++end;
      } else {
        continue;
      }
      push_data(strip_before_tag(s_.substr(start, i - start), sign, false, line_starting), start);
      return end;
    }
    fail(tag, "Missing end of raw directive");
  }

  // `{# ... (+#}|-#}\s*|#}\n?)`
  size_t lex_comment(size_t tag, size_t start) {
    for (size_t i = start; i + 1 < s_.size(); ++i) {
      if (s_[i] == '+' && s_.substr(i + 1, 2) == "#}") return i + 3;
      if (s_[i] == '-' && s_.substr(i + 1, 2) == "#}") return skip_spaces(s_, i + 3);
      if (s_[i] == '#' && s_[i + 1] == '}') {
        size_t end = i + 2;
        if (end < s_.size() && s_[end] == '\n') ++end;
        return end;
      }
    }
    fail(tag, "Missing end of comment tag");
  }

  size_t lex_tag(size_t tag, size_t i, bool block) {
    push(block ? Tok::block_begin : Tok::var_begin, tag);
    std::vector<char> balance;  // closing brackets expected
    while (i < s_.size()) {
      if (balance.empty()) {
        if (block) {
          if (s_.substr(i, 3) == "+%}") {
            push(Tok::block_end, i);
            return i + 3;
          }
          if (s_.substr(i, 3) == "-%}") {
            push(Tok::block_end, i);
            return skip_spaces(s_, i + 3);
          }
          if (s_.substr(i, 2) == "%}") {
            push(Tok::block_end, i);
            size_t end = i + 2;
            if (end < s_.size() && s_[end] == '\n') ++end;
            return end;
          }
        } else {
          if (s_.substr(i, 3) == "-}}") {
            push(Tok::var_end, i);
            return skip_spaces(s_, i + 3);
          }
          if (s_.substr(i, 2) == "}}") {
            push(Tok::var_end, i);
            return i + 2;
          }
        }
      }
      if (size_t n = space_at(s_, i)) {
        i = skip_spaces(s_, i + n);
        continue;
      }
      if (size_t end = match_float(i)) {
        lex_float(i, end);
        i = end;
        continue;
      }
      if (size_t end = match_integer(i)) {
        lex_integer(i, end);
        i = end;
        continue;
      }
      if (is_name_start(s_[i])) {
        size_t j = i + 1;
        while (j < s_.size() && is_name_char(s_[j])) ++j;
        push(Tok::name, i, std::string(s_.substr(i, j - i)));
        i = j;
        continue;
      }
      if (s_[i] == '\'' || s_[i] == '"') {
        i = lex_string(i);
        continue;
      }
      if (size_t n = match_operator(i)) {
        std::string op(s_.substr(i, n));
        if (op == "{" || op == "(" || op == "[") {
          balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
        } else if (op == "}" || op == ")" || op == "]") {
          if (balance.empty()) fail(i, "unexpected '" + op + "'");
          char expected = balance.back();
          balance.pop_back();
          if (expected != op[0]) fail(i, "unexpected '" + op + "', expected '" + std::string(1, expected) + "'");
        }
        push(Tok::op, i, std::move(op));
        i += n;
        continue;
      }
      fail(i, "unexpected char '" + std::string(s_.substr(i, unicode_char_len(i))) + "'");
    }
    return i;  // the parser reports the missing end of the tag
  }

  size_t unicode_char_len(size_t i) const {
    unsigned char b = static_cast<unsigned char>(s_[i]);
    size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return std::min(n, s_.size() - i);
  }

  // (\d+_)*\d+ : digits with single underscores between them; returns the end or i.
  size_t digits_at(size_t i) const {
    size_t j = i;
    if (j >= s_.size() || !is_digit(s_[j])) return i;
    while (true) {
      while (j < s_.size() && is_digit(s_[j])) ++j;
      if (j + 1 < s_.size() && s_[j] == '_' && is_digit(s_[j + 1])) {
        ++j;
        continue;
      }
      return j;
    }
  }

  // jinja2's float_re: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+\-]?(\d+_)*\d+|\.(\d+_)*\d+)
  size_t match_float(size_t i) const {
    if (i > 0 && s_[i - 1] == '.') return 0;
    size_t j = digits_at(i);
    if (j == i) return 0;
    size_t frac_end = 0;
    if (j < s_.size() && s_[j] == '.') {
      size_t k = digits_at(j + 1);
      if (k > j + 1) frac_end = k;
    }
    size_t e = frac_end ? frac_end : j;
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t k = e + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
      size_t d = digits_at(k);
      if (d > k) return d;
    }
    return frac_end;
  }

  // jinja2's integer_re: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*
  size_t match_integer(size_t i) const {
    if (!is_digit(s_[i])) return 0;
    auto prefixed = [&](size_t k, auto ok) -> size_t {  // (_?[digit])+ after the prefix
      size_t j = k;
      while (true) {
        size_t m = j;
        if (m < s_.size() && s_[m] == '_') ++m;
        if (m < s_.size() && ok(s_[m])) {
          j = m + 1;
        } else {
          break;
        }
      }
      return j > k ? j : 0;
    };
    if (s_[i] == '0' && i + 1 < s_.size()) {
      char p = static_cast<char>(s_[i + 1] | 0x20);
      size_t end = 0;
      if (p == 'b') end = prefixed(i + 2, [](char c) { return c == '0' || c == '1'; });
      if (p == 'o') end = prefixed(i + 2, [](char c) { return c >= '0' && c <= '7'; });
      if (p == 'x') end = prefixed(i + 2, [](char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); });
      if (end) return end;
    }
    if (s_[i] == '0') {
      size_t j = i + 1;
      while (true) {
        size_t m = j;
        if (m < s_.size() && s_[m] == '_') ++m;
        if (m < s_.size() && s_[m] == '0') {
          j = m + 1;
        } else {
          break;
        }
      }
      return j;
    }
    return digits_at(i);
  }

  void lex_integer(size_t i, size_t end) {
    std::string text;
    for (size_t k = i; k < end; ++k) {
      if (s_[k] != '_') text += s_[k];
    }
    int base = 10;
    size_t start = 0;
    if (text.size() > 1 && text[0] == '0') {
      char p = static_cast<char>(text[1] | 0x20);
      if (p == 'b') base = 2;
      if (p == 'o') base = 8;
      if (p == 'x') base = 16;
      if (base != 10) start = 2;
    }
    int64_t v = 0;
    for (size_t k = start; k < text.size(); ++k) {
      char c = static_cast<char>(text[k] | 0x20);
      int d = is_digit(text[k]) ? text[k] - '0' : c - 'a' + 10;
      if (v > (std::numeric_limits<int64_t>::max() - d) / base) {
        fail(i, "integer literal " + std::string(s_.substr(i, end - i)) + " is outside the 64-bit range rlhf supports");
      }
      v = v * base + d;
    }
    Token t;
    t.kind = Tok::integer;
    t.ival = v;
    t.value = std::string(s_.substr(i, end - i));
    t.pos = i;
    out_.push_back(std::move(t));
  }

  void lex_float(size_t i, size_t end) {
    std::string text;
    for (size_t k = i; k < end; ++k) {
      if (s_[k] != '_') text += s_[k];
    }
    Token t;
    t.kind = Tok::floating;
    t.fval = std::strtod(text.c_str(), nullptr);
    t.value = std::string(s_.substr(i, end - i));
    t.pos = i;
    out_.push_back(std::move(t));
  }

  size_t match_operator(size_t i) const {
    static const char* kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (s_.substr(i, 2) == op) return 2;
    }
    static const std::string_view kOne = "+-/*%~[](){}><=.:|,;";
    return kOne.find(s_[i]) != std::string_view::npos ? 1 : 0;
  }

  // A string literal: '...' or "..." where a backslash escapes any character; its value is what
  // Python's  body.encode("ascii", "backslashreplace").decode("unicode-escape")  gives.
  size_t lex_string(size_t i) {
    char q = s_[i];
    size_t j = i + 1;
    while (j < s_.size() && s_[j] != q) {
      if (s_[j] == '\\') ++j;
      ++j;
    }
    if (j >= s_.size()) fail(i, std::string("unexpected char '") + q + "'");
    Token t;
    t.kind = Tok::string;
    t.value = decode_string(s_.substr(i + 1, j - i - 1), i);
    t.pos = i;
    out_.push_back(std::move(t));
    return j + 1;
  }

  std::string decode_string(std::string_view body, size_t pos) const {
    // backslashreplace: non-ASCII characters become \xhh, \uhhhh or \Uhhhhhhhh escapes first
    std::string ascii;
    for (char32_t c : unicode::decode(body)) {
      if (c < 0x80) {
        ascii += static_cast<char>(c);
        continue;
      }
      char buf[16];
      if (c <= 0xFF) {
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      } else if (c <= 0xFFFF) {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      }
      ascii += buf;
    }
    // unicode-escape
    std::string out;
    auto hex = [&](size_t k, int n) -> char32_t {
      if (k + n > ascii.size()) fail(pos, "truncated escape sequence in string literal");
      char32_t v = 0;
      for (int d = 0; d < n; ++d) {
        char c = ascii[k + d];
        int x = is_digit(c) ? c - '0' : ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') ? (c | 0x20) - 'a' + 10 : -1;
        if (x < 0) fail(pos, "truncated escape sequence in string literal");
        v = v * 16 + x;
      }
      return v;
    };
    for (size_t k = 0; k < ascii.size(); ++k) {
      char c = ascii[k];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (k + 1 >= ascii.size()) fail(pos, "\\ at end of string");
      char e = ascii[++k];
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': unicode::append_utf8(out, hex(k + 1, 2)); k += 2; break;
        case 'u': unicode::append_utf8(out, hex(k + 1, 4)); k += 4; break;
        case 'U': {
          char32_t v = hex(k + 1, 8);
          if (v > 0x10FFFF) fail(pos, "illegal Unicode character in string literal");
          unicode::append_utf8(out, v);
          k += 8;
          break;
        }
        case 'N': fail(pos, "\\N{...} escapes in string literals are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = e - '0';
            for (int d = 0; d < 2 && k + 1 < ascii.size() && ascii[k + 1] >= '0' && ascii[k + 1] <= '7'; ++d) {
              v = v * 8 + (ascii[++k] - '0');
            }
            unicode::append_utf8(out, v);
          } else {
            out += '\\';  // unknown escapes keep their backslash
            out += e;
          }
      }
    }
    for (size_t k = 0; k < out.size(); ++k) {
      // a surrogate from \ud800-style escapes cannot be UTF-8; Python would keep it, we refuse
      unsigned char b = static_cast<unsigned char>(out[k]);
      if (b == 0xED && k + 1 < out.size() && (static_cast<unsigned char>(out[k + 1]) & 0xE0) == 0xA0) {
        fail(pos, "string literal holds a lone surrogate, which is not valid UTF-8");
      }
    }
    return out;
  }
};

}  // namespace

SourceMap::SourceMap(std::string_view normalised) : src_(normalised) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < normalised.size(); ++i) {
    if (normalised[i] == '\n') line_starts_.push_back(i + 1);
  }
}

int SourceMap::line(size_t pos) const {
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
  return static_cast<int>(it - line_starts_.begin());
}

int SourceMap::column(size_t pos) const {
  size_t start = line_starts_[static_cast<size_t>(line(pos)) - 1];
  pos = std::min(pos, src_.size());
  return static_cast<int>(unicode::length(src_.substr(start, pos - start))) + 1;
}

std::string SourceMap::describe(size_t pos) const {
  return "template line " + std::to_string(line(pos)) + ", column " + std::to_string(column(pos));
}

std::string normalise_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& normalised, const std::string& where, const SourceMap& map) {
  return Lexer(normalised, where, map).run();
}

}  // namespace rlhf::jinja
