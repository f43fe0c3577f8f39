// Jinja's builtin filters (jinja2/filters.py) with transformers' own `tojson`
// (json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)), as the
// ImmutableSandboxedEnvironment of apply_chat_template runs them with autoescape off. Filters Chat
// templates never use and that need facilities the engine lacks (urlize, wordwrap, random, ...) are
// known names that fail with an error naming them, never a silent wrong render.
#pragma once
#include <optional>
#include <string>

#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

bool is_jinja_filter(const std::string& name);

// value | name(args); failures are OpErrors.
Value apply_filter(Interpreter& in, const std::string& name, const Value& value, CallArgs args);

// Python's json.dumps of a template value (json.dumps(x, ensure_ascii, indent, separators,
// sort_keys)); indent is none, an int or a string; separators none or a pair of strings.
std::string to_json(const Value& v, bool ensure_ascii, const Value& indent, const Value& separators, bool sort_keys);

// jinja2's make_attrgetter: "a.b.0" looked up item first, then attribute, part by part; an
// undefined result becomes `fallback` when one is given.
Value attr_lookup(const Value& item, const Value& attribute, const std::optional<Value>& fallback = std::nullopt);

}  // namespace rlhf::jinja
