// Jinja's builtin tests (jinja2/tests.py): `x is defined`, `x is string`, `n is divisibleby 3`, ...
#pragma once
#include <string>

#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

bool is_jinja_test(const std::string& name);

// value is name(args); failures (an unknown test, wrong arguments) are OpErrors.
bool apply_test(Interpreter& in, const std::string& name, const Value& value, CallArgs args);

}  // namespace rlhf::jinja
