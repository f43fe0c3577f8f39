// Python's str methods on UTF-8 text (see pystring.h).
#include "tokenizer/jinja/pystring.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "tokenizer/jinja/access.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

using U32 = std::u32string;

bool ascii_only(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Python's slice.indices() for a start / end pair (None = nullopt), as find() and count() use.
void clamp_range(std::optional<int64_t> start, std::optional<int64_t> end, int64_t n, int64_t& s, int64_t& e) {
  s = start.value_or(0);
  e = end.value_or(n);
  if (s < 0) s = std::max<int64_t>(0, s + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  e = std::min(e, n);
}

std::optional<int64_t> opt_index(const std::optional<Value>& v, const char* fn) {
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_int() && !v->is_bool()) {
    throw OpError(std::string("slice indices must be integers or None or have an __index__ method (in ") + fn + ")");
  }
  return v->as_int();
}

std::string require_str(const std::optional<Value>& v, const char* fn, const char* what = "argument") {
  if (!v || !v->is_string()) {
    throw OpError(std::string(fn) + "() " + what + " must be str, not " + (v ? type_name(*v) : "missing"));
  }
  return v->str();
}

int64_t require_int(const std::optional<Value>& v, const char* fn) {
  if (!v || !(v->is_int() || v->is_bool())) {
    throw OpError(std::string("'") + (v ? type_name(*v) : "missing") + "' object cannot be interpreted as an integer (in " +
                  fn + ")");
  }
  return v->as_int();
}

int64_t find_in(const U32& hay, const U32& needle, int64_t s, int64_t e, bool reverse) {
  if (s > e || e - s < static_cast<int64_t>(needle.size())) {
    if (needle.empty() && s <= static_cast<int64_t>(hay.size()) && s <= e) return reverse ? e : s;
    return -1;
  }
  if (needle.empty()) return reverse ? e : s;
  if (!reverse) {
    for (int64_t i = s; i + static_cast<int64_t>(needle.size()) <= e; ++i) {
      if (hay.compare(static_cast<size_t>(i), needle.size(), needle) == 0) return i;
    }
  } else {
    for (int64_t i = e - static_cast<int64_t>(needle.size()); i >= s; --i) {
      if (hay.compare(static_cast<size_t>(i), needle.size(), needle) == 0) return i;
    }
  }
  return -1;
}

bool is_line_break(char32_t c) {
  return c == U'\n' || c == U'\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

Value strings_list(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

// isdigit / isalpha / ...: ASCII exactly; other characters need Unicode tables the engine does
// not carry, so they are refused rather than guessed.
bool ascii_predicate(const std::string& s, const char* name, bool (*pred)(unsigned char)) {
  if (!ascii_only(s)) throw OpError(std::string("str.") + name + "() on non-ASCII text is not supported");
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool char_is_lower(char32_t c) { return unicode::is_cased(c) && unicode::upper_char(c) != U32(1, c) && unicode::lower_char(c) == U32(1, c); }
bool char_is_upper(char32_t c) { return unicode::is_cased(c) && unicode::lower_char(c) != U32(1, c) && unicode::upper_char(c) == U32(1, c); }

}  // namespace

size_t unicode_length(std::string_view s) { return unicode::length(s); }

std::string py_slice_chars(const std::string& s, int64_t start, int64_t stop) {
  U32 cs = unicode::decode(s);
  int64_t n = static_cast<int64_t>(cs.size()), a, b;
  clamp_range(start, stop, n, a, b);
  if (a >= b) return "";
  return unicode::encode(U32(cs.begin() + a, cs.begin() + b));
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  U32 cs = unicode::decode(s);
  U32 set = chars ? unicode::decode(*chars) : U32();
  auto strip_it = [&](char32_t c) { return chars ? set.find(c) != U32::npos : unicode::is_space(c); };
  size_t a = 0, b = cs.size();
  if (left) {
    while (a < b && strip_it(cs[a])) ++a;
  }
  if (right) {
    while (b > a && strip_it(cs[b - 1])) --b;
  }
  if (a == 0 && b == cs.size()) return s;
  return unicode::encode(U32(cs.begin() + static_cast<std::ptrdiff_t>(a), cs.begin() + static_cast<std::ptrdiff_t>(b)));
}

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = std::numeric_limits<int64_t>::max();
  if (!sep) {
    U32 cs = unicode::decode(s);
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < cs.size() && unicode::is_space(cs[i])) ++i;
        if (i >= cs.size()) break;
        if (static_cast<int64_t>(out.size()) == maxsplit) {
          out.push_back(unicode::encode(U32(cs.begin() + static_cast<std::ptrdiff_t>(i), cs.end())));
          break;
        }
        size_t j = i;
        while (j < cs.size() && !unicode::is_space(cs[j])) ++j;
        out.push_back(unicode::encode(U32(cs.begin() + static_cast<std::ptrdiff_t>(i), cs.begin() + static_cast<std::ptrdiff_t>(j))));
        i = j;
      }
    } else {
      size_t i = cs.size();
      while (true) {
        while (i > 0 && unicode::is_space(cs[i - 1])) --i;
        if (i == 0) break;
        if (static_cast<int64_t>(out.size()) == maxsplit) {
          out.push_back(unicode::encode(U32(cs.begin(), cs.begin() + static_cast<std::ptrdiff_t>(i))));
          break;
        }
        size_t j = i;
        while (j > 0 && !unicode::is_space(cs[j - 1])) --j;
        out.push_back(unicode::encode(U32(cs.begin() + static_cast<std::ptrdiff_t>(j), cs.begin() + static_cast<std::ptrdiff_t>(i))));
        i = j;
      }
      std::reverse(out.begin(), out.end());
    }
    return out;
  }
  if (sep->empty()) throw OpError("empty separator");
  const std::string& d = *sep;
  if (!from_right) {
    size_t start = 0;
    while (static_cast<int64_t>(out.size()) < maxsplit) {
      size_t p = s.find(d, start);
      if (p == std::string::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + d.size();
    }
    out.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    int64_t splits = 0;
    while (splits < maxsplit && end >= d.size()) {
      size_t p = s.rfind(d, end - d.size());
      if (p == std::string::npos) break;
      out.push_back(s.substr(p + d.size(), end - p - d.size()));
      end = p;
      ++splits;
    }
    out.push_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  if (count < 0) count = std::numeric_limits<int64_t>::max();
  std::string out;
  if (old.empty()) {
    U32 cs = unicode::decode(s);
    int64_t done = 0;
    for (char32_t c : cs) {
      if (done < count) {
        out += with;
        ++done;
      }
      unicode::append_utf8(out, c);
    }
    if (done < count) out += with;
    detail::charge(out.size());
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (done < count) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += with;
    start = p + old.size();
    ++done;
    detail::charge(with.size());
  }
  out.append(s, start, std::string::npos);
  detail::charge(out.size());
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : unicode::decode(s)) {
    U32 m = prev_cased ? unicode::lower_char(c) : unicode::title_char(c);
    for (char32_t x : m) unicode::append_utf8(out, x);
    prev_cased = unicode::is_cased(c);
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  U32 cs = unicode::decode(s);
  if (cs.empty()) return "";
  std::string out;
  for (char32_t x : unicode::title_char(cs[0])) unicode::append_utf8(out, x);
  out += unicode::lower(unicode::encode(U32(cs.begin() + 1, cs.end())));
  return out;
}

std::string py_center(const std::string& s, int64_t width, const std::string& fill) {
  int64_t n = static_cast<int64_t>(unicode_length(s));
  if (unicode_length(fill) != 1) throw OpError("The fill character must be exactly one character long");
  if (n >= width) return s;
  int64_t marg = width - n;
  int64_t left = marg / 2 + (marg & width & 1);
  detail::charge(static_cast<size_t>(marg) * fill.size() + s.size());
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

bool is_str_method(const std::string& name) {
  static const std::set<std::string> kMethods = {
      "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha",
      "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "isupper", "join", "ljust", "lower",
      "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
      "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"};
  return kMethods.count(name) > 0;
}

bool is_python_str_attribute(const std::string& name) {
  static const std::set<std::string> kOthers = {"encode", "expandtabs", "format_map", "isidentifier", "isprintable",
                                                "istitle", "maketrans", "translate"};
  return is_str_method(name) || kOthers.count(name) > 0;
}

Value call_str_method(const Value& self, const std::string& name, CallArgs& a) {
  const std::string& s = self.str();
  const char* fn = name.c_str();
  auto opt_str = [&](size_t i, const char* kw) -> std::optional<std::string> {
    std::optional<Value> v = a.take(i, kw);
    if (!v || v->is_none()) return std::nullopt;
    return require_str(v, fn);
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    std::optional<std::string> chars = opt_str(0, nullptr);
    a.done(fn, 1);
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"), self.safe());
  }
  if (name == "split" || name == "rsplit") {
    std::optional<std::string> sep = opt_str(0, "sep");
    std::optional<Value> m = a.take(1, "maxsplit");
    int64_t maxsplit = m ? require_int(m, fn) : -1;
    a.done(fn, 2);
    return strings_list(py_split(s, sep, maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    std::optional<Value> k = a.take(0, "keepends");
    bool keep = k && truthy(*k);
    a.done(fn, 1);
    U32 cs = unicode::decode(s);
    std::vector<std::string> out;
    size_t i = 0;
    while (i < cs.size()) {
      size_t j = i;
      while (j < cs.size() && !is_line_break(cs[j])) ++j;
      size_t eol = j;
      if (j < cs.size()) {
        eol = (cs[j] == U'\r' && j + 1 < cs.size() && cs[j + 1] == U'\n') ? j + 2 : j + 1;
      }
      out.push_back(unicode::encode(U32(cs.begin() + static_cast<std::ptrdiff_t>(i),
                                        cs.begin() + static_cast<std::ptrdiff_t>(keep ? eol : j))));
      i = eol;
    }
    return strings_list(std::move(out));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "swapcase" ||
      name == "casefold") {
    a.done(fn, 0);
    if (name == "upper") return Value::string(unicode::upper(s), self.safe());
    if (name == "lower") return Value::string(unicode::lower(s), self.safe());
    if (name == "title") return Value::string(py_title(s), self.safe());
    if (name == "capitalize") return Value::string(py_capitalize(s), self.safe());
    if (!ascii_only(s)) throw OpError("str." + name + "() on non-ASCII text is not supported");
    std::string out = s;
    for (char& c : out) {
      if (name == "casefold") {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      } else if (c >= 'A' && c <= 'Z') {
        c = static_cast<char>(c + 32);
      } else if (c >= 'a' && c <= 'z') {
        c = static_cast<char>(c - 32);
      }
    }
    return Value::string(out, self.safe());
  }
  if (name == "replace") {
    std::string old = require_str(a.take(0, nullptr), fn);
    std::string with = require_str(a.take(1, nullptr), fn);
    std::optional<Value> c = a.take(2, "count");
    int64_t count = c ? require_int(c, fn) : -1;
    a.done(fn, 3);
    return Value::string(py_replace(s, old, with, count), self.safe());
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    std::string sub = require_str(a.take(0, nullptr), fn);
    std::optional<int64_t> start = opt_index(a.take(1, nullptr), fn);
    std::optional<int64_t> end = opt_index(a.take(2, nullptr), fn);
    a.done(fn, 3);
    U32 hay = unicode::decode(s), needle = unicode::decode(sub);
    int64_t lo, hi;
    clamp_range(start, end, static_cast<int64_t>(hay.size()), lo, hi);
    if (name == "count") {
      if (lo > hi) return Value::integer(0);
      if (needle.empty()) return Value::integer(hi - lo + 1);
      int64_t n = 0;
      for (int64_t i = lo; i + static_cast<int64_t>(needle.size()) <= hi;) {
        if (hay.compare(static_cast<size_t>(i), needle.size(), needle) == 0) {
          ++n;
          i += static_cast<int64_t>(needle.size());
        } else {
          ++i;
        }
      }
      return Value::integer(n);
    }
    int64_t r = find_in(hay, needle, lo, hi, name[0] == 'r');
    if (r < 0 && (name == "index" || name == "rindex")) throw OpError("substring not found");
    return Value::integer(r);
  }
  if (name == "startswith" || name == "endswith") {
    std::optional<Value> p = a.take(0, nullptr);
    std::optional<int64_t> start = opt_index(a.take(1, nullptr), fn);
    std::optional<int64_t> end = opt_index(a.take(2, nullptr), fn);
    a.done(fn, 3);
    std::vector<std::string> prefixes;
    if (p && p->is_list() && p->seq().kind == SeqKind::tuple) {
      for (const Value& x : p->seq().items) prefixes.push_back(require_str(x, fn, "tuple item"));
    } else if (p && p->is_string()) {
      prefixes.push_back(p->str());
    } else {
      throw OpError(name + " first arg must be str or a tuple of str, not " + (p ? type_name(*p) : "missing"));
    }
    U32 hay = unicode::decode(s);
    int64_t lo, hi;
    clamp_range(start, end, static_cast<int64_t>(hay.size()), lo, hi);
    for (const std::string& pre : prefixes) {
      U32 x = unicode::decode(pre);
      if (lo > static_cast<int64_t>(hay.size())) continue;
      if (hi - lo < static_cast<int64_t>(x.size())) continue;
      size_t at = name == "startswith" ? static_cast<size_t>(lo) : static_cast<size_t>(hi) - x.size();
      if (hay.compare(at, x.size(), x) == 0) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "join") {
    std::optional<Value> it = a.take(0, nullptr);
    a.done(fn, 1);
    if (!it) throw OpError("join() takes exactly one argument (0 given)");
    std::vector<Value> items = iterate(*it);
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        throw OpError("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(items[i]) + " found");
      }
      if (i) out += s;
      out += items[i].str();
    }
    detail::charge(out.size());
    return Value::string(std::move(out));
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    int64_t width = require_int(a.take(0, nullptr), fn);
    std::optional<Value> f = a.take(1, nullptr);
    std::string fill = f ? require_str(f, fn) : " ";
    a.done(fn, 2);
    if (name == "center") return Value::string(py_center(s, width, fill));
    if (unicode_length(fill) != 1) throw OpError("The fill character must be exactly one character long");
    int64_t n = static_cast<int64_t>(unicode_length(s));
    if (n >= width) return self;
    detail::charge(static_cast<size_t>(width - n) * fill.size() + s.size());
    std::string pad;
    for (int64_t i = n; i < width; ++i) pad += fill;
    return Value::string(name == "ljust" ? s + pad : pad + s);
  }
  if (name == "zfill") {
    int64_t width = require_int(a.take(0, nullptr), fn);
    a.done(fn, 1);
    int64_t n = static_cast<int64_t>(unicode_length(s));
    if (n >= width) return self;
    detail::charge(static_cast<size_t>(width));
    std::string zeros(static_cast<size_t>(width - n), '0');
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) return Value::string(s.substr(0, 1) + zeros + s.substr(1));
    return Value::string(zeros + s);
  }
  if (name == "partition" || name == "rpartition") {
    std::string sep = require_str(a.take(0, nullptr), fn);
    a.done(fn, 1);
    if (sep.empty()) throw OpError("empty separator");
    size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (p == std::string::npos) {
      parts = name == "partition"
                  ? std::vector<Value>{Value::string(s), Value::string(""), Value::string("")}
                  : std::vector<Value>{Value::string(""), Value::string(""), Value::string(s)};
    } else {
      parts = {Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))};
    }
    return Value::list(std::move(parts), SeqKind::tuple);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    std::string x = require_str(a.take(0, nullptr), fn);
    a.done(fn, 1);
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
    if (name == "removesuffix" && !x.empty() && s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0) {
      return Value::string(s.substr(0, s.size() - x.size()));
    }
    return self;
  }
  if (name == "format") {
    return Value::string(py_format(s, a.pos, a.kw));
  }
  a.done(fn, 0);
  if (name == "isascii") return Value::boolean(ascii_only(s));
  if (name == "isspace") {
    U32 cs = unicode::decode(s);
    return Value::boolean(!cs.empty() && std::all_of(cs.begin(), cs.end(), unicode::is_space));
  }
  if (name == "islower" || name == "isupper") {
    bool any = false;
    for (char32_t c : unicode::decode(s)) {
      if (!unicode::is_cased(c)) continue;
      any = true;
      if (name == "islower" ? !char_is_lower(c) : !char_is_upper(c)) return Value::boolean(false);
    }
    return Value::boolean(any);
  }
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
    return Value::boolean(ascii_predicate(s, fn, [](unsigned char c) { return c >= '0' && c <= '9'; }));
  }
  if (name == "isalpha") {
    return Value::boolean(ascii_predicate(s, fn, [](unsigned char c) { return std::isalpha(c) != 0; }));
  }
  if (name == "isalnum") {
    return Value::boolean(ascii_predicate(s, fn, [](unsigned char c) { return std::isalnum(c) != 0; }));
  }
  throw OpError("str." + name + "() is not supported by rlhf's Jinja engine");
}

// ---- str.format -------------------------------------------------------------------------------------

namespace {

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  int n = 0;
  for (size_t i = digits.size(); i-- > 0;) {
    if (n && n % 3 == 0) out += sep;
    out += digits[i];
    ++n;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace

std::string format_value(const Value& v, const std::string& spec) {
  if (spec.empty()) return py_str(v);
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  U32 sp = unicode::decode(spec);
  auto is_align = [](char32_t c) { return c == U'<' || c == U'>' || c == U'^' || c == U'='; };
  if (sp.size() >= 2 && is_align(sp[1])) {
    fill = unicode::encode(U32(1, sp[0]));
    align = static_cast<char>(sp[1]);
    i = 2;
  } else if (!sp.empty() && is_align(sp[0])) {
    align = static_cast<char>(sp[0]);
    i = 1;
  }
  std::string rest = unicode::encode(U32(sp.begin() + static_cast<std::ptrdiff_t>(i), sp.end()));
  size_t k = 0;
  char sign = '-';
  if (k < rest.size() && (rest[k] == '+' || rest[k] == '-' || rest[k] == ' ')) sign = rest[k++];
  if (k < rest.size() && rest[k] == '#') throw OpError("'#' in format specs is not supported");
  if (k < rest.size() && rest[k] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++k;
  }
  int64_t width = 0;
  while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k]))) width = width * 10 + (rest[k++] - '0');
  char grouping = 0;
  if (k < rest.size() && (rest[k] == ',' || rest[k] == '_')) grouping = rest[k++];
  int precision = -1;
  if (k < rest.size() && rest[k] == '.') {
    ++k;
    precision = 0;
    while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k]))) precision = precision * 10 + (rest[k++] - '0');
  }
  char type = 0;
  if (k < rest.size()) type = rest[k++];
  if (k != rest.size()) throw OpError("Invalid format specifier '" + spec + "'");

  std::string body, prefix;
  if (v.is_string() || (!v.is_number() && (type == 0 || type == 's'))) {
    if (type != 0 && type != 's') throw OpError(std::string("Unknown format code '") + type + "' for object of type 'str'");
    if (!v.is_string()) throw OpError(std::string("format specs for ") + type_name(v) + " values are not supported");
    body = precision >= 0 ? py_slice_chars(v.str(), 0, precision) : v.str();
    if (!align) align = '<';
  } else if (v.is_number()) {
    bool is_float = v.is_float() || (type && std::string("eEfFgG%").find(type) != std::string::npos);
    double d = v.as_float();
    bool neg = false;
    if (!is_float) {
      if (type && std::string("dbxXo").find(type) == std::string::npos) {
        throw OpError(std::string("Unknown format code '") + type + "' for object of type 'int'");
      }
      if (precision >= 0) throw OpError("Precision not allowed in integer format specifier");
      int64_t n = v.as_int();
      neg = n < 0;
      unsigned long long u = neg ? 0ull - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
      char buf[80];
      if (type == 'x' || type == 'X' || type == 'o' || type == 'b') {
        if (type == 'b') {
          std::string bits;
          do {
            bits += static_cast<char>('0' + (u & 1));
            u >>= 1;
          } while (u);
          std::reverse(bits.begin(), bits.end());
          body = bits;
        } else {
          std::snprintf(buf, sizeof buf, type == 'x' ? "%llx" : type == 'X' ? "%llX" : "%llo", u);
          body = buf;
        }
      } else {
        std::snprintf(buf, sizeof buf, "%llu", u);
        body = buf;
      }
      if (grouping) body = group_digits(body, grouping);
    } else {
      if (std::isnan(d) || std::isinf(d)) throw OpError("formatting nan or inf with a spec is not supported");
      neg = std::signbit(d);
      d = std::fabs(d);
      char t = type ? type : 'g';
      if (!type) {
        if (precision < 0) {
          body = float_repr(d);
        } else {
          throw OpError("float format specs without a type are not supported");
        }
      } else {
        int p = precision < 0 ? 6 : precision;
        char buf[512];
        if (t == '%') {
          std::snprintf(buf, sizeof buf, "%.*f", p, d * 100);
          body = std::string(buf) + "%";
        } else {
          char f[8] = {'%', '.', '*', t, 0};
          std::snprintf(buf, sizeof buf, f, p, d);
          body = buf;
        }
      }
      if (grouping) {
        size_t dot = body.find_first_not_of("0123456789");
        body = group_digits(body.substr(0, dot), grouping) + (dot == std::string::npos ? "" : body.substr(dot));
      }
    }
    if (neg) {
      prefix = "-";
    } else if (sign == '+') {
      prefix = "+";
    } else if (sign == ' ') {
      prefix = " ";
    }
    if (!align) align = '>';
  } else {
    throw OpError(std::string("unsupported format string passed to ") + type_name(v) + ".__format__");
  }
  int64_t len = static_cast<int64_t>(unicode_length(prefix) + unicode_length(body));
  if (len >= width) return prefix + body;
  detail::charge(static_cast<size_t>(width) * fill.size());
  std::string pad;
  for (int64_t n = len; n < width; ++n) pad += fill;
  switch (align) {
    case '<': return prefix + body + pad;
    case '^': {
      size_t half = static_cast<size_t>(width - len) / 2 * fill.size();
      return pad.substr(0, half) + prefix + body + pad.substr(half);
    }
    case '=': return prefix + pad + body;
    default: return pad + prefix + body;
  }
}

std::string py_format(const std::string& fmt, const std::vector<Value>& args,
                      const std::vector<std::pair<std::string, Value>>& kwargs) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false, used_manual = false;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw OpError("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw OpError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find('{') != std::string::npos) throw OpError("nested format fields are not supported");
    i = close;
    std::string spec, conv;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    size_t end = field.find_first_of(".[");
    std::string first = field.substr(0, end);
    Value v;
    if (first.empty()) {
      if (used_manual) throw OpError("cannot switch from manual field specification to automatic field numbering");
      used_auto = true;
      if (auto_index >= args.size()) throw OpError("Replacement index " + std::to_string(auto_index) + " out of range");
      v = args[auto_index++];
    } else if (std::all_of(first.begin(), first.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
      if (used_auto) throw OpError("cannot switch from automatic field numbering to manual field specification");
      used_manual = true;
      size_t idx = std::stoul(first);
      if (idx >= args.size()) throw OpError("Replacement index " + first + " out of range");
      v = args[idx];
    } else {
      bool found = false;
      for (const auto& [k, val] : kwargs) {
        if (k == first) {
          v = val;
          found = true;
        }
      }
      if (!found) throw OpError("KeyError: '" + first + "'");
    }
    // .attr and [key] parts go through the sandbox's getattr / getitem
    size_t p = end;
    while (p != std::string::npos && p < field.size()) {
      if (field[p] == '.') {
        size_t q = field.find_first_of(".[", p + 1);
        v = get_attr(v, field.substr(p + 1, q == std::string::npos ? std::string::npos : q - p - 1));
        p = q;
      } else {
        size_t q = field.find(']', p);
        if (q == std::string::npos) throw OpError("Missing ']' in format string");
        std::string key = field.substr(p + 1, q - p - 1);
        bool digits = !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
        v = get_item(v, digits ? Value::integer(std::stoll(key)) : Value::string(key));
        p = q + 1;
      }
    }
    if (conv == "r") {
      v = Value::string(py_repr(v));
    } else if (conv == "s") {
      v = Value::string(py_str(v));
    } else if (!conv.empty()) {
      throw OpError("Unknown conversion specifier " + conv);
    }
    out += format_value(v, spec);
  }
  detail::charge(out.size());
  return out;
}

}  // namespace rlhf::jinja
