// Python's str methods on UTF-8 text (indices and lengths in characters, as Python counts them),
// for the string methods templates call (`content.strip()`, `name.split('/')`, ...) and the string
// filters: strip / split / replace / find / startswith / title / center / format / ...
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

size_t unicode_length(std::string_view s);
// s[start:stop] in characters, with Python's clamping of negative and large indices.
std::string py_slice_chars(const std::string& s, int64_t start, int64_t stop);

// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(const std::string& s);

// str.strip / lstrip / rstrip; chars = nullopt strips whitespace.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; sep = nullopt splits on runs of whitespace.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right);
std::string py_replace(const std::string& s, const std::string& old, const std::string& with, int64_t count);
std::string py_title(const std::string& s);       // str.title()
std::string py_capitalize(const std::string& s);  // str.capitalize()
std::string py_center(const std::string& s, int64_t width, const std::string& fill);

// Whether `name` is a method of Python's str that templates can call here; str attributes the
// engine does not implement are refused.
bool is_str_method(const std::string& name);
bool is_python_str_attribute(const std::string& name);
Value call_str_method(const Value& self, const std::string& name, CallArgs& args);

// str.format(*args, **kwargs) as the sandbox runs it (fields, !r / !s, common format specs).
std::string py_format(const std::string& fmt, const std::vector<Value>& args,
                      const std::vector<std::pair<std::string, Value>>& kwargs);
// format(value, spec) for the specs templates use: [[fill]align][sign][0][width][.prec][type].
std::string format_value(const Value& v, const std::string& spec);

}  // namespace rlhf::jinja
