// The canonical form of a Jinja template as Hugging Face renders chat templates (trim_blocks and
// lstrip_blocks on, keep_trailing_newline off): whitespace that cannot reach the output is dropped,
// so two templates with the same canonical form render the same text. Chat templates are recognised
// by comparing canonical forms, whatever the indentation and spacing of a tokenizer_config.json.
#pragma once
#include <string>
#include <string_view>

namespace rlhf {

// Text outside tags stays as Jinja outputs it after whitespace control ({%- -%} marks, trim_blocks,
// lstrip_blocks, the dropped final newline; "\r\n" and "\r" become "\n"). Tags keep their kind
// ("{{...}}" or "{%...%}") but lose their whitespace-control marks; inside them whitespace is kept
// only between two name characters (as one space), and string literals are re-quoted as '...' with
// the escapes \\ \' \n \r \t. Comments are dropped. An unterminated tag or string literal is kept
// as text.
std::string jinja_canonical_form(std::string_view source);

// The value of a Jinja string literal's body (the text between its quotes): Python's escapes
// \\ \' \" \n \r \t \a \b \f \v \0 \xHH \uHHHH \UHHHHHHHH; an unknown escape keeps its backslash.
std::string jinja_unescape(std::string_view body);

}  // namespace rlhf
