// UTF-8 helpers for the tokenizers: decoding code points, validating, and the lossy conversion
// (each maximal invalid subsequence becomes U+FFFD) that Hugging Face tokenizers apply when
// decoding bytes back to text.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace rlhf::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the sequence a lead byte starts (1..4); 1 for bytes that cannot start one.
inline int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// The code point starting at s[i] of valid UTF-8; advances i past it.
inline char32_t next(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return char32_t(static_cast<unsigned char>(s[i + k])); };
  char32_t c = b(0);
  int n = sequence_length(static_cast<unsigned char>(c));
  switch (n) {
    case 1: break;
    case 2: c = ((c & 0x1F) << 6) | (b(1) & 0x3F); break;
    case 3: c = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); break;
    default: c = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F); break;
  }
  i += n;
  return c;
}

inline int encoded_length(char32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

void append(std::string& out, char32_t c);

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s test).
inline bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Length of the valid sequence at s[i], or 0 when the bytes there are not valid UTF-8.
size_t valid_sequence_at(std::string_view s, size_t i);

// Byte offset of the first invalid byte, or std::string_view::npos when `s` is valid UTF-8.
size_t find_invalid(std::string_view s);

// Rust's String::from_utf8_lossy: every maximal prefix of a valid sequence that is cut short,
// and every byte that cannot start one, becomes one U+FFFD.
std::string to_valid(std::string_view s);

}  // namespace rlhf::utf8
