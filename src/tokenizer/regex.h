// Regular expressions for pre-tokenizers, normalizers and decoders, through PCRE2 (UTF + UCP, JIT).
// Hugging Face tokenizers runs these patterns with Oniguruma (Ruby syntax); the constructor
// rewrites the constructs whose meaning differs so that matches are the same:
//   \s \S   White_Space (PCRE2's \s also takes U+180E)      -> \p{White_Space} / \P{White_Space}
//   \w \W   Alphabetic, marks, Nd, Pc, joiners (PCRE2: L, N, _) -> an explicit class
//   \b \B   boundaries of that \w                            -> lookarounds
//   \h \H   hexadecimal digit (PCRE2: horizontal space)       -> [0-9a-fA-F]
//   \uHHHH  -> \x{HHHH};  (?m) (Ruby: dot matches newline)    -> (?s);  ^ $ are line anchors
// Class intersection (&&) and nested classes have no PCRE2 equivalent and are refused.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace rlhf {

class Regex {
 public:
  // `where` names the pattern's origin in errors ("tokenizer.json: pre_tokenizer.pattern").
  Regex(std::string_view pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(begin, end) for each match in `text` (valid UTF-8), left to right, as Rust's
  // onig::Regex::find_iter does (an empty match right where the previous one ended is skipped).
  void for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

  const std::string& pattern() const { return source_; }

 private:
  // First match at or after `start`; false when none.
  bool search(std::string_view text, size_t start, size_t& begin, size_t& end) const;
  std::string source_;
  struct Code;
  std::unique_ptr<Code> code_;
};

// Whether `c` is a word character of \w (Alphabetic, marks, Nd, Pc, joiners), as Rust's regex
// crate and Oniguruma define it.
bool is_word_char(char32_t c);

// Translates an Oniguruma (Ruby syntax) pattern to PCRE2 as described above. Exposed for tests.
std::string onig_to_pcre2(std::string_view pattern, const std::string& where);

}  // namespace rlhf
