// Python's per-character string semantics (see unicode_case.h). The tables in
// unicode_case_tables.inc were written by this script, run with the Python that the reference
// fixtures use (tests/ref/jinja_fixtures.py's venv, Python 3.11.2, Unicode 14.0.0):
//
//   runs(fn): for every code point c whose fn(chr(c)) is one character, group consecutive c
//   (stride 1 or 2) with the same delta ord(fn(c)) - c into {first, last, stride, delta}; longer
//   results go to a special table. fn = str.upper gives kUpperRuns / kUpperSpecial, str.lower gives
//   kLowerRuns / kLowerSpecial; kTitleDiffers lists c where chr(c).title() != chr(c).upper();
//   kNotPrintable holds the ranges >= 0x80 where not chr(c).isprintable(); kCased the ranges where
//   ch.lower() != ch.upper() or ch.islower() or ch.isupper() or ch.istitle(); kSpaces every c with
//   chr(c).isspace().
#include "tokenizer/jinja/unicode_case.h"

#include <algorithm>
#include <cstdint>

namespace rlhf::jinja::unicode {
namespace {

struct CaseRun {
  char32_t first, last;
  int stride;
  int32_t delta;
};
struct CaseSpecial {
  char32_t c;
  int n;
  char32_t out[3];
};
struct CodeRange {
  char32_t first, last;
};

#include "tokenizer/jinja/unicode_case_tables.inc"

template <size_t N>
bool lookup_run(const CaseRun (&runs)[N], char32_t c, char32_t& out) {
  // Runs are sorted by first code point and do not overlap.
  const CaseRun* it = std::upper_bound(std::begin(runs), std::end(runs), c,
                                       [](char32_t v, const CaseRun& r) { return v < r.first; });
  if (it == std::begin(runs)) return false;
  --it;
  if (c > it->last || (c - it->first) % it->stride != 0) return false;
  out = static_cast<char32_t>(static_cast<int32_t>(c) + it->delta);
  return true;
}

template <size_t N>
const CaseSpecial* lookup_special(const CaseSpecial (&table)[N], char32_t c) {
  const CaseSpecial* it = std::lower_bound(std::begin(table), std::end(table), c,
                                           [](const CaseSpecial& s, char32_t v) { return s.c < v; });
  return it != std::end(table) && it->c == c ? it : nullptr;
}

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  const CodeRange* it = std::upper_bound(std::begin(table), std::end(table), c,
                                         [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= (it - 1)->last;
}

template <size_t N, size_t M>
std::u32string map_char(const CaseRun (&runs)[N], const CaseSpecial (&special)[M], char32_t c) {
  if (c < 0x80) {
    return std::u32string(1, c);  // callers handle ASCII themselves; kept for completeness
  }
  if (const CaseSpecial* s = lookup_special(special, c)) return std::u32string(s->out, s->out + s->n);
  char32_t out;
  if (lookup_run(runs, c, out)) return std::u32string(1, out);
  return std::u32string(1, c);
}

// Characters that do not break a word for the final-sigma rule (Case_Ignorable, approximately:
// apostrophes, the soft hyphen, combining marks).
bool case_ignorable(char32_t c) {
  return c == U'\'' || c == U'.' || c == U':' || c == 0xAD || c == 0x2019 || c == 0xB7 ||
         (c >= 0x300 && c <= 0x36F) || (c >= 0x483 && c <= 0x489) || (c >= 0x1AB0 && c <= 0x1AFF) ||
         (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE20 && c <= 0xFE2F);
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (i + n > s.size()) n = 1;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out += c;
    i += n;
  }
  return out;
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (unsigned char b : s) n += (b & 0xC0) != 0x80;
  return n;
}

std::u32string upper_char(char32_t c) {
  if (c < 0x80) return std::u32string(1, c >= 'a' && c <= 'z' ? c - 32 : c);
  return map_char(kUpperRuns, kUpperSpecial, c);
}

std::u32string lower_char(char32_t c) {
  if (c < 0x80) return std::u32string(1, c >= 'A' && c <= 'Z' ? c + 32 : c);
  return map_char(kLowerRuns, kLowerSpecial, c);
}

std::u32string title_char(char32_t c) {
  if (c >= 0x80) {
    if (const CaseSpecial* s = lookup_special(kTitleDiffers, c)) return std::u32string(s->out, s->out + s->n);
  }
  return upper_char(c);
}

bool is_space(char32_t c) {
  return std::find(std::begin(kSpaces), std::end(kSpaces), c) != std::end(kSpaces);
}

bool is_printable(char32_t c) {
  if (c < 0x80) return c >= 0x20 && c < 0x7F;
  return !in_ranges(kNotPrintable, c);
}

bool is_cased(char32_t c) { return in_ranges(kCased, c); }

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool ascii = std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (ascii) {
    for (char ch : s) out += (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 32) : ch;
    return out;
  }
  for (char32_t c : decode(s)) {
    for (char32_t u : upper_char(c)) append_utf8(out, u);
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool ascii = std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (ascii) {
    for (char ch : s) out += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    return out;
  }
  std::u32string cs = decode(s);
  for (size_t i = 0; i < cs.size(); ++i) {
    char32_t c = cs[i];
    if (c == 0x3A3) {  // capital sigma: final form at the end of a word (Python's Final_Sigma)
      bool before = false, after = false;
      for (size_t j = i; j-- > 0;) {
        if (case_ignorable(cs[j])) continue;
        before = is_cased(cs[j]);
        break;
      }
      for (size_t j = i + 1; j < cs.size(); ++j) {
        if (case_ignorable(cs[j])) continue;
        after = is_cased(cs[j]);
        break;
      }
      append_utf8(out, before && !after ? 0x3C2 : 0x3C3);
      continue;
    }
    for (char32_t l : lower_char(c)) append_utf8(out, l);
  }
  return out;
}

}  // namespace rlhf::jinja::unicode
