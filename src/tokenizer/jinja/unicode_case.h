// Python's per-character string semantics on UTF-8 text, for the Jinja engine: str.upper(),
// str.lower() (with the final-sigma rule), str.title(), str.capitalize(), str.isspace() and the
// printable test that repr() uses, from tables generated with Python 3.11 (Unicode 14).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace rlhf::jinja::unicode {

// Code points of valid UTF-8 (the engine only ever holds valid UTF-8).
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t length(std::string_view s);  // in code points

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::u32string upper_char(char32_t c);
std::u32string title_char(char32_t c);
std::u32string lower_char(char32_t c);

bool is_space(char32_t c);      // str.isspace()
bool is_printable(char32_t c);  // str.isprintable()
bool is_cased(char32_t c);      // has a case (Lu, Ll, Lt, Other_Lowercase, Other_Uppercase)

}  // namespace rlhf::jinja::unicode
