// Jinja's builtin filters, function for function as jinja2/filters.py (see filters.h).
#include "tokenizer/jinja/filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "tokenizer/jinja/access.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/is_tests.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/pystring.h"
#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

// ---- argument helpers ---------------------------------------------------------------------------

Value opt(CallArgs& a, size_t i, const char* name, Value def) {
  std::optional<Value> v = a.take(i, name);
  return v ? *v : def;
}

bool opt_bool(CallArgs& a, size_t i, const char* name, bool def) {
  std::optional<Value> v = a.take(i, name);
  return v ? truthy(*v) : def;
}

int64_t as_index(const Value& v, const char* filter, const char* what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) fail_undefined(v);
  throw OpError(std::string(filter) + ": " + what + " must be an integer, not " + type_name(v));
}

Value lower_if_string(const Value& v) { return v.is_string() ? Value::string(unicode::lower(v.str())) : v; }

// ---- lazy sequences (what select / map / ... return in jinja2: generators) ---------------------

// A generator over the items of `source` (consumed lazily: generators chain without copies).
class Source {
 public:
  explicit Source(const Value& v) {
    if (v.is_object()) {
      if (dynamic_cast<Generator*>(&v.obj())) {
        gen_ = v;
        return;
      }
    }
    items_ = std::make_shared<std::vector<Value>>(iterate(v));
  }
  std::optional<Value> next() {
    if (!gen_.is_undefined()) return dynamic_cast<Generator&>(gen_.obj()).next();
    if (i_ >= items_->size()) return std::nullopt;
    return (*items_)[i_++];
  }

 private:
  Value gen_;
  std::shared_ptr<std::vector<Value>> items_;
  size_t i_ = 0;
};

Value generator(const char* name, Generator::Next next) {
  return Value::object(std::make_shared<Generator>(name, std::move(next)));
}

// Python's sorted(items, key, reverse): stable, and reverse keeps equal items in order.
std::vector<Value> sorted_by(std::vector<Value> items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> idx(items.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    return reverse ? less(keys[y], keys[x]) : less(keys[x], keys[y]);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : idx) out.push_back(std::move(items[i]));
  return out;
}

// ---- select / reject / map ------------------------------------------------------------------------

Value select_or_reject(Interpreter& in, const Value& value, CallArgs& args, bool select, bool lookup_attr) {
  std::optional<Value> attr;
  size_t off = 0;
  if (lookup_attr) {
    if (args.pos.empty()) throw OpError("Missing parameter for attribute name");
    attr = args.pos[0];
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.pos.size() > off) {
    const Value& t = args.pos[off];
    if (!t.is_string()) throw OpError(std::string("test name must be a string, not ") + type_name(t));
    test = t.str();
    test_args.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(off) + 1, args.pos.end());
    test_args.kw = args.kw;
  } else if (!args.kw.empty()) {
    throw OpError("select/reject got keyword arguments but no test name");
  }
  auto src = std::make_shared<Source>(value);
  bool empty = !truthy(value);
  Interpreter* ip = &in;
  return generator(select ? "select" : "reject", [=]() -> std::optional<Value> {
    if (empty) return std::nullopt;
    while (std::optional<Value> item = src->next()) {
      Value x = attr ? attr_lookup(*item, *attr) : *item;
      bool ok = test ? apply_test(*ip, *test, x, test_args) : truthy(x);
      if (ok == select) return item;
    }
    return std::nullopt;
  });
}

Value do_map(Interpreter& in, const Value& value, CallArgs& args) {
  std::function<Value(const Value&)> func;
  Interpreter* ip = &in;
  if (args.pos.empty() && std::any_of(args.kw.begin(), args.kw.end(), [](auto& kv) { return kv.first == "attribute"; })) {
    Value attribute = *args.take(99, "attribute");
    std::optional<Value> def = args.take(99, "default");
    if (def && def->is_none()) def.reset();
    if (!args.kw.empty()) throw OpError("Unexpected keyword argument '" + args.kw[0].first + "'");
    func = [attribute, def](const Value& item) { return attr_lookup(item, attribute, def); };
  } else {
    if (args.pos.empty()) throw OpError("map requires a filter argument");
    Value name = args.pos[0];
    if (!name.is_string()) throw OpError(std::string("map: the filter name must be a string, not ") + type_name(name));
    CallArgs rest;
    rest.pos.assign(args.pos.begin() + 1, args.pos.end());
    rest.kw = args.kw;
    func = [ip, name, rest](const Value& item) { return apply_filter(*ip, name.str(), item, rest); };
  }
  auto src = std::make_shared<Source>(value);
  bool empty = !truthy(value);
  return generator("map", [=]() -> std::optional<Value> {
    if (empty) return std::nullopt;
    std::optional<Value> item = src->next();
    if (!item) return std::nullopt;
    return func(*item);
  });
}

// ---- strings ----------------------------------------------------------------------------------------

// jinja2's do_title: words split at [-\s({\[<]+, each first character upper, the rest lower.
std::string jinja_title(const std::string& s) {
  std::u32string cs = unicode::decode(s);
  std::string out;
  bool word_start = true;
  for (char32_t c : cs) {
    bool sep = c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<' || unicode::is_space(c);
    if (sep) {
      unicode::append_utf8(out, c);
      word_start = true;
    } else if (word_start) {
      out += unicode::encode(unicode::upper_char(c));
      word_start = false;
    } else {
      out += unicode::encode(unicode::lower_char(c));
    }
  }
  return out;
}

std::string do_indent(const std::string& in, const Value& width, bool first, bool blank) {
  std::string indention;
  if (width.is_string()) {
    indention = width.str();
  } else {
    int64_t w = as_index(width, "indent", "width");
    indention = std::string(static_cast<size_t>(std::max<int64_t>(w, 0)), ' ');
  }
  std::string s = in + "\n";
  CallArgs none;
  Value lines_v = call_str_method(Value::string(s), "splitlines", none);
  std::vector<std::string> lines;
  for (const Value& l : lines_v.seq().items) lines.push_back(l.str());
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        rv += lines[i].empty() ? lines[i] : indention + lines[i];
      }
    }
  }
  if (first) rv = indention + rv;
  detail::charge(rv.size());
  return rv;
}

size_t word_count(const std::string& s) {  // len(re.findall(r"\w+", s))
  size_t n = 0;
  bool in_word = false;
  for (char32_t c : unicode::decode(s)) {
    bool w = (c < 0x80) ? (std::isalnum(static_cast<int>(c)) || c == U'_') : (!unicode::is_space(c) && unicode::is_printable(c));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

Value do_int(const Value& v, const Value& def, int64_t base) {
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    std::string digits;
    for (char c : s) {
      if (c != '_') digits += c;
    }
    bool neg = false;
    size_t i = 0;
    if (i < digits.size() && (digits[i] == '+' || digits[i] == '-')) neg = digits[i++] == '-';
    if (base == 16 || base == 8 || base == 2) {
      if (digits.size() > i + 1 && digits[i] == '0') {
        char p = static_cast<char>(digits[i + 1] | 0x20);
        if ((base == 16 && p == 'x') || (base == 8 && p == 'o') || (base == 2 && p == 'b')) i += 2;
      }
    }
    if (i < digits.size()) {
      __int128 acc = 0;
      bool ok = true;
      for (size_t k = i; k < digits.size() && ok; ++k) {
        char c = static_cast<char>(digits[k] | 0x20);
        int d = (digits[k] >= '0' && digits[k] <= '9') ? digits[k] - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
        if (d >= base) ok = false;
        acc = acc * base + d;
        if (acc > static_cast<__int128>(INT64_MAX)) ok = false;
      }
      if (ok) return Value::integer(static_cast<int64_t>(neg ? -acc : acc));
    }
    // int(float(value))
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::integer(static_cast<int64_t>(d));
    }
    return def;
  }
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return def;
    return Value::integer(static_cast<int64_t>(d));
  }
  return def;
}

Value do_float(const Value& v, const Value& def) {
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value::floating(static_cast<double>(v.as_int()));
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    std::string t;
    for (char c : s) {
      if (c != '_') t += c;
    }
    std::string low = unicode::lower(t);
    if (low == "nan" || low == "+nan" || low == "-nan") return Value::floating(NAN);
    if (low == "inf" || low == "+inf" || low == "infinity" || low == "+infinity") return Value::floating(INFINITY);
    if (low == "-inf" || low == "-infinity") return Value::floating(-INFINITY);
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && end == t.c_str() + t.size() && low.find_first_of("xp") == std::string::npos) {
      return Value::floating(d);
    }
  }
  return def;
}

// Python's round(x, n) for floats: the correctly rounded decimal, ties to even.
double py_round(double x, int64_t n) {
  if (!std::isfinite(x) || n > 300) return x;
  char buf[512];
  if (n >= 0) {
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);  // glibc rounds exactly, ties to even
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-n));
  double y = x / p;
  double r = std::nearbyint(y);
  return r * p;
}

Value do_round(const Value& v, int64_t precision, const std::string& method) {
  if (method != "common" && method != "ceil" && method != "floor") throw OpError("method must be common, ceil or floor");
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) throw OpError(std::string("type ") + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::integer(v.as_int());
      __int128 p = 1;
      for (int64_t i = 0; i < -precision && p < static_cast<__int128>(1e19); ++i) p *= 10;
      __int128 x = v.as_int();
      __int128 q = x / p, r = x % p;
      if (r < 0) { r += p; q -= 1; }
      if (2 * r > p || (2 * r == p && (q % 2 != 0))) q += 1;
      __int128 res = q * p;
      if (res > INT64_MAX || res < INT64_MIN) throw OpError("integer overflow in round");
      return Value::integer(static_cast<int64_t>(res));
    }
    return Value::floating(py_round(v.as_float(), precision));
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * p;
  return Value::floating((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value do_truncate(const std::string& s, int64_t length, bool killwords, const std::string& end, int64_t leeway) {
  int64_t n = static_cast<int64_t>(unicode_length(s));
  int64_t end_n = static_cast<int64_t>(unicode_length(end));
  if (length < end_n) throw OpError("expected length >= " + std::to_string(end_n) + ", got " + std::to_string(length));
  if (leeway < 0) throw OpError("expected leeway >= 0, got " + std::to_string(leeway));
  if (n <= length + leeway) return Value::string(s);
  std::string head = py_slice_chars(s, 0, length - end_n);
  if (killwords) return Value::string(head + end);
  std::vector<std::string> parts = py_split(head, std::string(" "), 1, true);
  return Value::string((parts.empty() ? std::string() : parts[0]) + end);
}

// ---- JSON (Python's json.dumps) ---------------------------------------------------------------------

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : unicode::decode(s)) {
    switch (c) {
      case U'"': out += "\\\""; continue;
      case U'\\': out += "\\\\"; continue;
      case U'\n': out += "\\n"; continue;
      case U'\r': out += "\\r"; continue;
      case U'\t': out += "\\t"; continue;
      case U'\b': out += "\\b"; continue;
      case U'\f': out += "\\f"; continue;
      default: break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c > 0xFFFF) {
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      unicode::append_utf8(out, c);
    }
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

struct JsonWriter {
  bool ensure_ascii;
  std::optional<std::string> indent;
  std::string item_sep, key_sep;
  bool sort_keys;
  std::string out;

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *indent;
  }

  std::string key_text(const Value& k) {
    if (k.is_string()) return k.str();
    if (k.is_bool()) return k.as_bool() ? "true" : "false";
    if (k.is_int()) return std::to_string(k.as_int());
    if (k.is_float()) return json_float(k.as_float());
    if (k.is_none()) return "null";
    throw OpError(std::string("keys must be str, int, float, bool or None, not ") + type_name(k));
  }

  void write(const Value& v, int level) {
    if (level > 200) throw OpError("tojson: value nested deeper than 200 levels");
    switch (v.type()) {
      case Value::Type::none: out += "null"; return;
      case Value::Type::boolean: out += v.as_bool() ? "true" : "false"; return;
      case Value::Type::integer: out += std::to_string(v.as_int()); return;
      case Value::Type::floating: out += json_float(v.as_float()); return;
      case Value::Type::string: json_string(out, v.str(), ensure_ascii); return;
      case Value::Type::list: {
        SeqKind k = v.seq().kind;
        if (k != SeqKind::list && k != SeqKind::tuple) break;
        const auto& items = v.seq().items;
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (indent) newline(level + 1);
          write(items[i], level + 1);
        }
        if (indent) newline(level);
        out += ']';
        return;
      }
      case Value::Type::dict: {
        const auto& items = v.map().items;
        if (items.empty()) {
          out += "{}";
          return;
        }
        std::vector<size_t> order(items.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        if (sort_keys) {
          std::stable_sort(order.begin(), order.end(),
                           [&](size_t a, size_t b) { return less(items[a].first, items[b].first); });
        }
        out += '{';
        bool first = true;
        for (size_t i : order) {
          std::string key = key_text(items[i].first);
          if (!first) out += item_sep;
          first = false;
          if (indent) newline(level + 1);
          json_string(out, key, ensure_ascii);
          out += key_sep;
          write(items[i].second, level + 1);
        }
        if (indent) newline(level);
        out += '}';
        return;
      }
      default: break;
    }
    throw OpError(std::string("Object of type ") + type_name(v) + " is not JSON serializable");
  }
};

// ---- the filter table ---------------------------------------------------------------------------------

std::string text_of(const Value& v) { return py_str(v); }  // soft_str

Value do_first(const Value& v) {
  if (v.is_object()) {
    if (auto* g = dynamic_cast<Generator*>(&v.obj())) {
      if (std::optional<Value> x = g->next()) return *x;
      return Value::undefined("No first item, sequence was empty.");
    }
  }
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value do_last(const Value& v) {
  if (v.is_undefined() || (v.is_object() && dynamic_cast<Generator*>(&v.obj()))) {
    throw OpError(std::string("'") + type_name(v) + "' object is not reversible");
  }
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value min_or_max(const Value& v, bool is_max, bool case_sensitive, const std::optional<Value>& attribute) {
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& x) {
    Value k = attribute && !attribute->is_none() ? attr_lookup(x, *attribute) : x;
    return case_sensitive ? k : lower_if_string(k);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (is_max ? less(best_key, k) : less(k, best_key)) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}

// sort / unique / dictsort keys: attribute "a,b" gives tuples (make_multi_attrgetter).
Value sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
  std::vector<Value> parts;
  if (attribute.is_string() && attribute.str().find(',') != std::string::npos) {
    for (const std::string& a : py_split(attribute.str(), std::string(","), -1, false)) {
      Value k = attr_lookup(item, Value::string(a));
      parts.push_back(case_sensitive ? k : lower_if_string(k));
    }
    return Value::list(std::move(parts), SeqKind::tuple);
  }
  Value k = attribute.is_none() ? item : attr_lookup(item, attribute);
  return case_sensitive ? k : lower_if_string(k);
}

[[noreturn]] void unsupported_filter(const std::string& name) {
  throw OpError("the '" + name + "' filter is not supported by rlhf's Jinja engine (chat templates do not use it)");
}

}  // namespace

Value attr_lookup(const Value& item, const Value& attribute, const std::optional<Value>& fallback) {
  std::vector<Value> parts;
  if (attribute.is_none()) {
    // no parts: the item itself
  } else if (attribute.is_string()) {
    for (const std::string& p : py_split(attribute.str(), std::string("."), -1, false)) {
      bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits && p.size() < 18 ? Value::integer(std::stoll(p)) : Value::string(p));
    }
  } else {
    parts.push_back(attribute);
  }
  Value cur = item;
  for (const Value& p : parts) {
    cur = get_item(cur, p);
    if (fallback && cur.is_undefined()) cur = *fallback;
  }
  return cur;
}

std::string to_json(const Value& v, bool ensure_ascii, const Value& indent, const Value& separators, bool sort_keys) {
  JsonWriter w;
  w.ensure_ascii = ensure_ascii;
  w.sort_keys = sort_keys;
  if (indent.is_int()) {
    w.indent = std::string(static_cast<size_t>(std::max<int64_t>(indent.as_int(), 0)), ' ');
  } else if (indent.is_string()) {
    w.indent = indent.str();
  } else if (!indent.is_none()) {
    throw OpError(std::string("tojson: indent must be an integer or a string, not ") + type_name(indent));
  }
  w.item_sep = w.indent ? "," : ", ";
  w.key_sep = ": ";
  if (!separators.is_none()) {
    std::vector<Value> seps = separators.is_list() ? separators.seq().items : std::vector<Value>{};
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string()) {
      throw OpError("tojson: separators must be a pair of strings (item_separator, key_separator)");
    }
    w.item_sep = seps[0].str();
    w.key_sep = seps[1].str();
  }
  w.write(v, 0);
  detail::charge(w.out.size());
  return std::move(w.out);
}

bool is_jinja_filter(const std::string& name) {
  static const std::set<std::string> kFilters = {
      "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
      "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last",
      "length", "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr",
      "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum",
      "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
      "tojson"};
  return kFilters.count(name) > 0;
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs a) {
  const char* fn = name.c_str();
  auto str_input = [&]() {
    if (v.is_undefined()) return std::string();
    return text_of(v);
  };
  if (name == "trim") {
    std::optional<Value> chars = a.take(0, "chars");
    a.done(fn, 1);
    std::optional<std::string> c;
    if (chars && !chars->is_none()) c = text_of(*chars);
    return Value::string(py_strip(str_input(), c, true, true));
  }
  if (name == "tojson") {
    bool ensure_ascii = opt_bool(a, 0, "ensure_ascii", false);
    Value indent = opt(a, 1, "indent", Value::none());
    Value separators = opt(a, 2, "separators", Value::none());
    bool sort_keys = opt_bool(a, 3, "sort_keys", false);
    a.done(fn, 4);
    return Value::string(to_json(v, ensure_ascii, indent, separators, sort_keys));
  }
  if (name == "length" || name == "count") {
    a.done(fn, 0);
    return Value::integer(length(v));
  }
  if (name == "upper" || name == "lower") {
    a.done(fn, 0);
    return Value::string(name == "upper" ? unicode::upper(str_input()) : unicode::lower(str_input()));
  }
  if (name == "title") {
    a.done(fn, 0);
    return Value::string(jinja_title(str_input()));
  }
  if (name == "capitalize") {
    a.done(fn, 0);
    return Value::string(py_capitalize(str_input()));
  }
  if (name == "replace") {
    std::optional<Value> old = a.take(0, "old"), with = a.take(1, "new");
    Value count = opt(a, 2, "count", Value::none());
    a.done(fn, 3);
    if (!old || !with) throw OpError("replace() missing required argument");
    int64_t n = count.is_none() ? -1 : as_index(count, fn, "count");
    std::string out = py_replace(str_input(), text_of(*old), text_of(*with), n);
    detail::charge(out.size());
    return Value::string(std::move(out));
  }
  if (name == "join") {
    std::string d = text_of(opt(a, 0, "d", Value::string("")));
    Value attribute = opt(a, 1, "attribute", Value::none());
    a.done(fn, 2);
    std::string out;
    bool first = true;
    Source src(v);
    while (std::optional<Value> x = src.next()) {
      if (!first) out += d;
      first = false;
      out += text_of(attribute.is_none() ? *x : attr_lookup(*x, attribute));
    }
    detail::charge(out.size());
    return Value::string(std::move(out));
  }
  if (name == "items") {
    a.done(fn, 0);
    if (v.is_undefined()) return Value::list({});
    if (!v.is_dict()) throw OpError("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, x] : v.map().items) out.push_back(Value::list({k, x}, SeqKind::tuple));
    auto items = std::make_shared<std::vector<Value>>(std::move(out));
    auto i = std::make_shared<size_t>(0);
    return generator("items", [items, i]() -> std::optional<Value> {
      if (*i >= items->size()) return std::nullopt;
      return (*items)[(*i)++];
    });
  }
  if (name == "default" || name == "d") {
    Value def = opt(a, 0, "default_value", Value::string(""));
    bool boolean = opt_bool(a, 1, "boolean", false);
    a.done(fn, 2);
    if (v.is_undefined() || (boolean && !truthy(v))) return def;
    return v;
  }
  if (name == "first") {
    a.done(fn, 0);
    return do_first(v);
  }
  if (name == "last") {
    a.done(fn, 0);
    return do_last(v);
  }
  if (name == "list") {
    a.done(fn, 0);
    std::vector<Value> items = iterate(v);
    detail::charge(items.size() * 16);
    return Value::list(std::move(items));
  }
  if (name == "map") return do_map(in, v, a);
  if (name == "select" || name == "reject") return select_or_reject(in, v, a, name == "select", false);
  if (name == "selectattr" || name == "rejectattr") return select_or_reject(in, v, a, name == "selectattr", true);
  if (name == "string") {
    a.done(fn, 0);
    return v.is_string() ? v : Value::string(str_input());
  }
  if (name == "int") {
    Value def = opt(a, 0, "default", Value::integer(0));
    int64_t base = as_index(opt(a, 1, "base", Value::integer(10)), fn, "base");
    a.done(fn, 2);
    return do_int(v, def, base);
  }
  if (name == "float") {
    Value def = opt(a, 0, "default", Value::floating(0.0));
    a.done(fn, 1);
    return do_float(v, def);
  }
  if (name == "abs") {
    a.done(fn, 0);
    if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) {
      if (v.as_int() == INT64_MIN) throw OpError("integer overflow in abs");
      return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_undefined()) fail_undefined(v);
    throw OpError(std::string("bad operand type for abs(): '") + type_name(v) + "'");
  }
  if (name == "round") {
    int64_t precision = as_index(opt(a, 0, "precision", Value::integer(0)), fn, "precision");
    Value method = opt(a, 1, "method", Value::string("common"));
    a.done(fn, 2);
    return do_round(v, precision, text_of(method));
  }
  if (name == "safe") {
    a.done(fn, 0);
    return Value::string(str_input(), true);
  }
  if (name == "e" || name == "escape" || name == "forceescape") {
    a.done(fn, 0);
    if (v.is_string() && v.safe() && name != "forceescape") return v;
    if (v.is_undefined()) return Value::string("", true);
    return Value::string(html_escape(text_of(v)), true);
  }
  if (name == "indent") {
    Value width = opt(a, 0, "width", Value::integer(4));
    bool first = opt_bool(a, 1, "first", false);
    bool blank = opt_bool(a, 2, "blank", false);
    a.done(fn, 3);
    return Value::string(do_indent(str_input(), width, first, blank));
  }
  if (name == "wordcount") {
    a.done(fn, 0);
    return Value::integer(static_cast<int64_t>(word_count(str_input())));
  }
  if (name == "unique") {
    bool case_sensitive = opt_bool(a, 0, "case_sensitive", false);
    Value attribute = opt(a, 1, "attribute", Value::none());
    a.done(fn, 2);
    std::vector<Value> out, seen;
    for (const Value& x : iterate(v)) {
      Value k = sort_key(x, attribute, case_sensitive);
      if (!hashable(k)) throw OpError(std::string("unhashable type: '") + type_name(k) + "'");
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, k); })) {
        seen.push_back(k);
        out.push_back(x);
      }
    }
    auto items = std::make_shared<std::vector<Value>>(std::move(out));
    auto i = std::make_shared<size_t>(0);
    return generator("unique", [items, i]() -> std::optional<Value> {
      if (*i >= items->size()) return std::nullopt;
      return (*items)[(*i)++];
    });
  }
  if (name == "sort") {
    bool reverse = opt_bool(a, 0, "reverse", false);
    bool case_sensitive = opt_bool(a, 1, "case_sensitive", false);
    Value attribute = opt(a, 2, "attribute", Value::none());
    a.done(fn, 3);
    std::vector<Value> items = iterate(v);
    std::vector<Value> keys;
    keys.reserve(items.size());
    for (const Value& x : items) keys.push_back(sort_key(x, attribute, case_sensitive));
    return Value::list(sorted_by(std::move(items), keys, reverse));
  }
  if (name == "dictsort") {
    bool case_sensitive = opt_bool(a, 0, "case_sensitive", false);
    std::string by = text_of(opt(a, 1, "by", Value::string("key")));
    bool reverse = opt_bool(a, 2, "reverse", false);
    a.done(fn, 3);
    if (by != "key" && by != "value") throw OpError("You can only sort by either \"key\" or \"value\"");
    if (!v.is_dict()) throw OpError(std::string("'") + type_name(v) + "' object has no attribute 'items'");
    std::vector<Value> items, keys;
    for (const auto& [k, x] : v.map().items) {
      items.push_back(Value::list({k, x}, SeqKind::tuple));
      const Value& key = by == "key" ? k : x;
      keys.push_back(case_sensitive ? key : lower_if_string(key));
    }
    return Value::list(sorted_by(std::move(items), keys, reverse));
  }
  if (name == "reverse") {
    a.done(fn, 0);
    if (v.is_string()) {
      std::u32string cs = unicode::decode(v.str());
      std::reverse(cs.begin(), cs.end());
      return Value::string(unicode::encode(cs));
    }
    if (v.is_undefined()) throw OpError("argument must be iterable");
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    bool iterator = !(v.is_object());  // reversed(seq) is an iterator; list(generator).reverse() a list
    if (!iterator) return Value::list(std::move(items));
    auto shared = std::make_shared<std::vector<Value>>(std::move(items));
    auto i = std::make_shared<size_t>(0);
    return generator("reversed", [shared, i]() -> std::optional<Value> {
      if (*i >= shared->size()) return std::nullopt;
      return (*shared)[(*i)++];
    });
  }
  if (name == "sum") {
    Value attribute = opt(a, 0, "attribute", Value::none());
    Value total = opt(a, 1, "start", Value::integer(0));
    a.done(fn, 2);
    if (total.is_string()) throw OpError("sum() can't sum strings [use ''.join(seq) instead]");
    for (const Value& x : iterate(v)) total = op_add(total, attribute.is_none() ? x : attr_lookup(x, attribute));
    return total;
  }
  if (name == "min" || name == "max") {
    bool case_sensitive = opt_bool(a, 0, "case_sensitive", false);
    std::optional<Value> attribute = a.take(1, "attribute");
    a.done(fn, 2);
    return min_or_max(v, name == "max", case_sensitive, attribute);
  }
  if (name == "batch") {
    std::optional<Value> count = a.take(0, "linecount");
    Value fill = opt(a, 1, "fill_with", Value::none());
    a.done(fn, 2);
    if (!count) throw OpError("batch() missing required argument 'linecount'");
    int64_t n = as_index(*count, fn, "linecount");
    std::vector<Value> items = iterate(v), rows, tmp;
    for (const Value& x : items) {
      if (static_cast<int64_t>(tmp.size()) == n) {
        rows.push_back(Value::list(std::move(tmp)));
        tmp.clear();
      }
      tmp.push_back(x);
    }
    if (!tmp.empty()) {
      if (!fill.is_none()) {
        while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(fill);
      }
      rows.push_back(Value::list(std::move(tmp)));
    }
    auto shared = std::make_shared<std::vector<Value>>(std::move(rows));
    auto i = std::make_shared<size_t>(0);
    return generator("batch", [shared, i]() -> std::optional<Value> {
      if (*i >= shared->size()) return std::nullopt;
      return (*shared)[(*i)++];
    });
  }
  if (name == "attr") {
    std::optional<Value> attr = a.take(0, "name");
    a.done(fn, 1);
    if (!attr || !attr->is_string()) throw OpError("attr() needs an attribute name (a string)");
    if (std::optional<Value> x = python_attribute(v, attr->str())) return *x;
    return Value::undefined("'" + object_type_repr(v) + "' has no attribute '" + attr->str() + "'");
  }
  if (name == "center") {
    int64_t width = as_index(opt(a, 0, "width", Value::integer(80)), fn, "width");
    a.done(fn, 1);
    return Value::string(py_center(str_input(), width, " "));
  }
  if (name == "truncate") {
    int64_t len = as_index(opt(a, 0, "length", Value::integer(255)), fn, "length");
    bool killwords = opt_bool(a, 1, "killwords", false);
    std::string end = text_of(opt(a, 2, "end", Value::string("...")));
    Value leeway = opt(a, 3, "leeway", Value::none());
    a.done(fn, 4);
    return do_truncate(str_input(), len, killwords, end, leeway.is_none() ? 5 : as_index(leeway, fn, "leeway"));
  }
  if (name == "format") {
    if (!a.kw.empty() && !a.pos.empty()) throw OpError("can't handle positional and keyword arguments at the same time");
    Value args = a.kw.empty() ? Value::list(a.pos, SeqKind::tuple) : [&] {
      std::vector<std::pair<Value, Value>> d;
      for (auto& [k, x] : a.kw) d.emplace_back(Value::string(k), x);
      return Value::dict(std::move(d));
    }();
    return Value::string(percent_format(str_input(), args));
  }
  if (name == "striptags" || name == "filesizeformat" || name == "groupby" || name == "pprint" ||
      name == "random" || name == "slice" || name == "urlencode" || name == "urlize" || name == "wordwrap" ||
      name == "xmlattr") {
    unsupported_filter(name);
  }
  throw OpError("No filter named '" + name + "'.");
}

}  // namespace rlhf::jinja
