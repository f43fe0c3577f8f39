// Reaching into values as Jinja's ImmutableSandboxedEnvironment does: `obj.attr` tries the
// Python attribute first (so `d.items` is the method) and then the item; `obj[key]` tries the item
// first and then the attribute (so `'x'['strip']` is the method). What is missing is an undefined
// carrying jinja2's message ("'dict object' has no attribute 'x'"); methods that would change a
// list or dict (append, pop, update, ...) are undefined with the sandbox's SecurityError message;
// Python attributes the engine does not implement are an error, never a silent undefined. Also
// iteration (list(v)), len(v) and slicing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

Value get_attr(const Value& obj, const std::string& name);
// Python's getattr alone, without the item fallback (the attr filter): nullopt when missing.
std::optional<Value> python_attribute(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step]; a missing part is none.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

std::vector<Value> iterate(const Value& v);  // list(v): undefined gives [], a generator is consumed
int64_t length(const Value& v);              // len(v)

// The characters of a string as one-character strings.
std::vector<Value> string_chars(const std::string& s);

}  // namespace rlhf::jinja
