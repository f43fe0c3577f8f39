// Jinja canonical form: a small lexer (text, {{ }}, {% %}, {# #}, with Jinja's bracket balancing
// and string literals), Jinja's whitespace control as Hugging Face configures it, and tag bodies
// reduced to their tokens.
#include "tokenizer/jinja_canonical.h"

#include <vector>

#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

constexpr size_t npos = std::string_view::npos;

enum class PieceKind { text, expression, statement, comment };

struct Piece {
  PieceKind kind = PieceKind::text;
  std::string body;     // the text, or what is between the tag's delimiters and marks
  char left_mark = 0;   // '-' or '+' right after the opening delimiter, else 0
  char right_mark = 0;  // '-' or '+' right before the closing delimiter, else 0
};

// trim_blocks and lstrip_blocks apply to statements and comments, not to {{ expressions }}.
bool is_block(const Piece& p) { return p.kind == PieceKind::statement || p.kind == PieceKind::comment; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_name_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
}

// "\r\n" and "\r" become "\n"; one final "\n" goes (Jinja's lexer does both before anything else).
std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\r') {
      out += s[i];
      continue;
    }
    out += '\n';
    if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Index just past the string literal whose opening quote is s[i]; npos when it is unterminated.
size_t skip_string(std::string_view s, size_t i) {
  char quote = s[i];
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == quote) return i + 1;
  }
  return npos;
}

// Index of the closing delimiter of a tag whose body starts at s[i]. In expressions and statements
// it is looked for outside string literals and brackets, as Jinja's lexer balances them
// ("{{ {'a': 1}}}" ends at the last "}}"). npos when the tag is unterminated.
size_t find_tag_end(std::string_view s, size_t i, std::string_view close, bool code) {
  int depth = 0;
  while (i < s.size()) {
    char c = s[i];
    if (code && (c == '\'' || c == '"')) {
      i = skip_string(s, i);
      if (i == npos) return npos;
      continue;
    }
    if (depth == 0 && s.compare(i, close.size(), close) == 0) return i;
    if (code && (c == '(' || c == '[' || c == '{')) ++depth;
    if (code && (c == ')' || c == ']' || c == '}') && depth > 0) --depth;
    ++i;
  }
  return npos;
}

size_t find_tag_start(std::string_view s, size_t from) {
  for (size_t i = s.find('{', from); i != npos && i + 1 < s.size(); i = s.find('{', i + 1))
    if (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#') return i;
  return npos;
}

std::vector<Piece> lex(std::string_view s) {
  std::vector<Piece> pieces;
  auto add_text = [&](std::string_view t) {
    if (!t.empty()) pieces.push_back({PieceKind::text, std::string(t)});
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t open = find_tag_start(s, i);
    if (open == npos) {
      add_text(s.substr(i));
      break;
    }
    add_text(s.substr(i, open - i));
    char c = s[open + 1];
    PieceKind kind = c == '{' ? PieceKind::expression : c == '%' ? PieceKind::statement : PieceKind::comment;
    std::string_view close = c == '{' ? "}}" : c == '%' ? "%}" : "#}";
    size_t body = open + 2;
    char left = 0;
    if (body < s.size() && (s[body] == '-' || s[body] == '+')) left = s[body++];
    size_t end = find_tag_end(s, body, close, kind != PieceKind::comment);
    if (end == npos) {
      add_text(s.substr(open));
      break;
    }
    size_t body_end = end;
    char right = 0;
    if (body_end > body && (s[body_end - 1] == '-' || s[body_end - 1] == '+')) right = s[--body_end];
    pieces.push_back({kind, std::string(s.substr(body, body_end - body)), left, right});
    i = end + close.size();
  }
  return pieces;
}

// What Jinja outputs of each text piece: "-" marks strip all whitespace next to the tag;
// trim_blocks drops the newline right after a block tag; lstrip_blocks drops the spaces and tabs
// between the start of a line and a block tag. "+" marks turn the last two off.
void apply_whitespace_control(std::vector<Piece>& pieces) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].kind != PieceKind::text) continue;
    const Piece* prev = i > 0 ? &pieces[i - 1] : nullptr;
    const Piece* next = i + 1 < pieces.size() ? &pieces[i + 1] : nullptr;
    std::string& t = pieces[i].body;
    bool line_start = prev == nullptr;
    if (prev && prev->right_mark == '-') {
      size_t n = 0;
      while (n < t.size() && is_space(t[n])) ++n;
      line_start = n > 0 && t[n - 1] == '\n';
      t.erase(0, n);
    } else if (prev && is_block(*prev) && prev->right_mark != '+' && !t.empty() && t[0] == '\n') {
      t.erase(0, 1);
      line_start = true;
    }
    if (next && next->left_mark == '-') {
      while (!t.empty() && is_space(t.back())) t.pop_back();
    } else if (next && is_block(*next) && next->left_mark != '+') {
      size_t newline = t.rfind('\n');
      size_t from = newline == npos ? 0 : newline + 1;
      if ((newline != npos || line_start) && t.find_first_not_of(" \t", from) == npos) t.erase(from);
    }
  }
}

std::string quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "'";
}

// A tag body reduced to its tokens: string literals re-quoted, whitespace kept (as one space)
// only where it separates two names or numbers ("not loop.first", "is defined").
std::string canonical_body(std::string_view b) {
  std::string out;
  bool pending_space = false;
  size_t i = 0;
  while (i < b.size()) {
    char c = b[i];
    if (is_space(c)) {
      pending_space = true;
      ++i;
      continue;
    }
    if (c == '\'' || c == '"') {
      size_t end = skip_string(b, i);  // terminated: the lexer skipped over it
      out += quote(jinja_unescape(b.substr(i + 1, end - i - 2)));
      pending_space = false;
      i = end;
      continue;
    }
    if (pending_space && !out.empty() && is_name_char(out.back()) && is_name_char(c)) out += ' ';
    pending_space = false;
    out += c;
    ++i;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads `digits` hex digits at s[i]; -1 when they are not all there.
int64_t read_hex(std::string_view s, size_t i, int digits) {
  if (i + digits > s.size()) return -1;
  int64_t v = 0;
  for (int k = 0; k < digits; ++k) {
    int h = hex_value(s[i + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

}  // namespace

std::string jinja_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case '\\': out += '\\'; continue;
      case '\'': out += '\''; continue;
      case '"': out += '"'; continue;
      case 'n': out += '\n'; continue;
      case 'r': out += '\r'; continue;
      case 't': out += '\t'; continue;
      case 'a': out += '\a'; continue;
      case 'b': out += '\b'; continue;
      case 'f': out += '\f'; continue;
      case 'v': out += '\v'; continue;
      case '\n': continue;  // a backslash before a line break joins the lines
      default: break;
    }
    if (c >= '0' && c <= '7') {  // up to three octal digits
      int v = 0;
      size_t end = i;
      while (end < i + 3 && end < s.size() && s[end] >= '0' && s[end] <= '7') v = v * 8 + (s[end++] - '0');
      i = end - 1;
      utf8::append(out, char32_t(v));
      continue;
    }
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    int64_t v = digits ? read_hex(s, i + 1, digits) : -1;
    if (v >= 0 && v <= 0x10FFFF) {
      utf8::append(out, char32_t(v));
      i += digits;
      continue;
    }
    out += '\\';
    out += c;
  }
  return out;
}

std::string jinja_canonical_form(std::string_view source) {
  std::vector<Piece> pieces = lex(normalize_newlines(source));
  apply_whitespace_control(pieces);
  std::string out;
  for (const Piece& p : pieces) {
    switch (p.kind) {
      case PieceKind::text: out += p.body; break;
      case PieceKind::expression: out += "{{" + canonical_body(p.body) + "}}"; break;
      case PieceKind::statement: out += "{%" + canonical_body(p.body) + "%}"; break;
      case PieceKind::comment: break;
    }
  }
  return out;
}

}  // namespace rlhf
