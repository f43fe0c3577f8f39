// UTF-8 encoding, validation (Unicode's well-formed byte sequences) and lossy conversion.
#include "tokenizer/utf8.h"

namespace rlhf::utf8 {

void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

namespace {

// How many bytes from s[i] on belong to a (possibly truncated) valid sequence: the full length
// when it is complete, the valid prefix length otherwise (0 or more). Sets `complete`.
size_t scan_sequence(std::string_view s, size_t i, bool& complete) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char lead = at(0);
  complete = false;
  if (lead < 0x80) return complete = true, 1;
  int n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (Unicode table 3-7)
  if (lead >= 0xC2 && lead <= 0xDF) n = 2;
  else if (lead == 0xE0) n = 3, lo = 0xA0;
  else if (lead >= 0xE1 && lead <= 0xEC) n = 3;
  else if (lead == 0xED) n = 3, hi = 0x9F;
  else if (lead >= 0xEE && lead <= 0xEF) n = 3;
  else if (lead == 0xF0) n = 4, lo = 0x90;
  else if (lead >= 0xF1 && lead <= 0xF3) n = 4;
  else if (lead == 0xF4) n = 4, hi = 0x8F;
  else return 0;
  size_t k = 1;
  for (; k < size_t(n) && i + k < s.size(); ++k) {
    unsigned char b = at(k);
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return k;
  }
  complete = k == size_t(n);
  return k;
}

}  // namespace

size_t valid_sequence_at(std::string_view s, size_t i) {
  bool complete;
  size_t n = scan_sequence(s, i, complete);
  return complete ? n : 0;
}

size_t find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = valid_sequence_at(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string to_valid(std::string_view s) {
  if (find_invalid(s) == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    bool complete;
    size_t n = scan_sequence(s, i, complete);
    if (complete) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += kReplacement;
      i += n == 0 ? 1 : n;
    }
  }
  return out;
}

}  // namespace rlhf::utf8
