// Python's operators on template values: arithmetic (+ - * / // % ** and unary - +, with Python's
// floor division and modulo, str and list repetition, int overflow refused), comparisons and `in`.
// Failures are OpErrors with Python's messages; an undefined operand raises its own message.
#pragma once
#include <string>

#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

Value op_add(const Value& a, const Value& b);
Value op_sub(const Value& a, const Value& b);
Value op_mul(const Value& a, const Value& b);
Value op_div(const Value& a, const Value& b);
Value op_floordiv(const Value& a, const Value& b);
Value op_mod(const Value& a, const Value& b);
Value op_pow(const Value& a, const Value& b);
Value op_neg(const Value& a);
Value op_pos(const Value& a);

// op is one of "==", "!=", "<", "<=", ">", ">=".
bool compare(const std::string& op, const Value& a, const Value& b);
// a < b, as sorted() and min() / max() use it.
bool less(const Value& a, const Value& b);
// item in container (consumes a generator up to the match, as Python does).
bool contains(const Value& container, const Value& item);

// printf-style str % args.
std::string percent_format(const std::string& fmt, const Value& args);

}  // namespace rlhf::jinja
