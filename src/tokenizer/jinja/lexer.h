// The Jinja lexer: template text becomes data, `{{ }}` / `{% %}` delimiters and the tokens inside
// them, with the whitespace control Hugging Face renders chat templates with (jinja2.Lexer with
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//
//   - "\r\n", "\r" become "\n", and one final newline of the source is dropped;
//   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag, `-%}`, `-}}`, `-#}` all after it;
//   - trim_blocks: the first "\n" after a block or comment tag is removed (not after `}}`), unless
//     the tag ends with `+%}`;
//   - lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are
//     removed (not before `{{`), unless the tag starts with `{%+`;
//   - `{# ... #}` comments vanish; `{% raw %}...{% endraw %}` is data.
//
// Positions are byte offsets into the normalised source; SourceMap turns them into the line and
// column (in characters, both from 1) that error messages name.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlhf::jinja {

enum class Tok : uint8_t {
  data,         // text outside tags (value: the text)
  var_begin,    // {{
  var_end,      // }}
  block_begin,  // {%
  block_end,    // %}
  name,         // identifier or keyword
  string,       // string literal (value: the decoded string)
  integer,
  floating,
  op,  // operator or punctuation (value: its text, e.g. "//", "(", "|")
  eof,
};

struct Token {
  Tok kind = Tok::eof;
  std::string value;
  int64_t ival = 0;
  double fval = 0;
  size_t pos = 0;  // byte offset in the normalised source

  bool is_op(std::string_view o) const { return kind == Tok::op && value == o; }
  bool is_name(std::string_view n) const { return kind == Tok::name && value == n; }
};

class SourceMap {
 public:
  explicit SourceMap(std::string_view normalised);
  int line(size_t pos) const;
  int column(size_t pos) const;
  // "template line L, column C"
  std::string describe(size_t pos) const;

 private:
  std::string_view src_;
  std::vector<size_t> line_starts_;
};

// "\r\n" and "\r" to "\n"; one trailing newline removed.
std::string normalise_newlines(std::string_view source);

// Tokens of a normalised source, ending with Tok::eof. Lexical errors are rlhf::Error naming
// `where` and the position.
std::vector<Token> tokenize(const std::string& normalised, const std::string& where, const SourceMap& map);

}  // namespace rlhf::jinja
