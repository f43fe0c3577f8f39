// GPT-2's byte-level alphabet: every byte is shown as one printable character (printable Latin-1
// bytes as themselves, the others as U+0100.. in byte order), so that "Ġ" is a space and "Ċ" a
// newline. Shared by the ByteLevel pre-tokenizer and decoder, the BPE model and the trainer.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rlhf::byte_level {

// The character for each byte.
const std::array<char32_t, 256>& byte_to_char();

// UTF-8 of the character for each byte ("Ġ" for ' ').
const std::array<std::string, 256>& byte_to_utf8();

// The byte a character stands for, or -1 when it is not in the alphabet.
int char_to_byte(char32_t c);

// Maps every byte of `bytes` to its character ("a b" -> "aĠb").
std::string encode(std::string_view bytes);

// The bytes a string of alphabet characters stands for; false (and `out` unspecified) when it
// contains a character outside the alphabet.
bool decode(std::string_view text, std::string& out);

}  // namespace rlhf::byte_level
