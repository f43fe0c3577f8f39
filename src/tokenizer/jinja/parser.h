// The Jinja parser: tokens become the syntax tree of ast.h, following jinja2/parser.py's grammar
// and precedence (conditional < or < and < not < comparisons < + - < ~ < * / // % < ** < unary
// minus < filters, tests, calls, attributes, subscripts). Statements: if / elif / else, for (with
// else and an `if` filter), set (also namespace attributes, tuples and `{% set %}...{% endset %}`),
// macro, call, filter, with, break, continue, and `{% generation %}`. Statements Hugging Face chat
// templates do not use (extends, block, include, import, from, autoescape, recursive loops) are
// refused with an error naming them.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace rlhf::jinja {

// The template body. Errors are rlhf::Error naming `where` and the line and column.
Body parse_template(const std::vector<Token>& tokens, const std::string& where, const SourceMap& map);

}  // namespace rlhf::jinja
