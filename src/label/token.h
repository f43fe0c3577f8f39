// Secrets for the labelling server: 128-bit random tokens (32 hex digits, from the kernel's
// getrandom), their SHA-256 (what the task database keeps), and a comparison in constant time.
#pragma once
#include <string>
#include <string_view>

namespace rlhf::label {

std::string random_token();                       // 32 lowercase hex digits
std::string sha256_hex(std::string_view data);    // 64 lowercase hex digits
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace rlhf::label
