// The byte <-> character tables of GPT-2's byte-level alphabet.
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace rlhf::byte_level {

namespace {

bool maps_to_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

}  // namespace

const std::array<char32_t, 256>& byte_to_char() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) t[b] = maps_to_itself(b) ? char32_t(b) : next++;
    return t;
  }();
  return table;
}

const std::array<std::string, 256>& byte_to_utf8() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) utf8::append(t[b], byte_to_char()[b]);
    return t;
  }();
  return table;
}

int char_to_byte(char32_t c) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_char()[b]] = int16_t(b);
    return t;
  }();
  return c < table.size() ? table[c] : -1;
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_to_utf8()[b];
  return out;
}

bool decode(std::string_view text, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    if (utf8::valid_sequence_at(text, i) == 0) return false;
    int b = char_to_byte(utf8::next(text, i));
    if (b < 0) return false;
    out += char(b);
  }
  return true;
}

}  // namespace rlhf::byte_level
