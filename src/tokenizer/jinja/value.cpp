// Values and the Python semantics every part of the engine shares: truthiness, ==, str(), repr().
#include "tokenizer/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

constexpr int kMaxNesting = 200;  // containers deeper than this cannot be compared or printed

const std::string& generic_undefined_message() {
  static const std::string m = "value is undefined";
  return m;
}

void check_depth(int depth) {
  if (depth > kMaxNesting) throw OpError("values nested deeper than 200 levels");
}

bool equal_at(const Value& a, const Value& b, int depth);

// int, float and bool compare by numeric value, exactly, as in Python (True == 1 == 1.0).
bool number_equal(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) return a.as_int() == b.as_int();
  const Value& f = a.is_float() ? a : b;
  const Value& o = a.is_float() ? b : a;
  if (o.is_float()) return f.as_float() == o.as_float();
  double d = f.as_float();
  if (!std::isfinite(d) || d != std::floor(d)) return false;
  if (d < -9.2233720368547758e18 || d >= 9.2233720368547758e18) return false;
  return static_cast<int64_t>(d) == o.as_int();
}

// Set-like equality of dict_keys / dict_items views.
bool same_members(const ListData& a, const ListData& b, int depth) {
  if (a.items.size() != b.items.size()) return false;
  for (const Value& x : a.items) {
    bool found = false;
    for (const Value& y : b.items) {
      if (equal_at(x, y, depth + 1)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool equal_at(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  using T = Value::Type;
  if (a.is_number() && b.is_number()) return number_equal(a, b);
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::undefined:
    case T::none:
      return true;
    case T::string:
      return a.str() == b.str();
    case T::list: {
      const ListData& x = a.seq();
      const ListData& y = b.seq();
      if (a.seq_ptr() == b.seq_ptr()) return true;
      if (x.kind != y.kind) return false;
      if (x.kind == SeqKind::dict_values) return false;  // identity only, as in Python
      if (x.kind == SeqKind::dict_keys || x.kind == SeqKind::dict_items) return same_members(x, y, depth);
      if (x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equal_at(x.items[i], y.items[i], depth + 1)) return false;
      }
      return true;
    }
    case T::dict: {
      const DictData& x = a.map();
      const DictData& y = b.map();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !equal_at(v, *w, depth + 1)) return false;
      }
      return true;
    }
    case T::object:
      return a.obj_ptr() == b.obj_ptr();
    default:
      return false;
  }
}

void repr_to(std::string& out, const Value& v, int depth);

void seq_items_repr(std::string& out, const std::vector<Value>& items, int depth) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    repr_to(out, items[i], depth + 1);
  }
}

void repr_to(std::string& out, const Value& v, int depth) {
  check_depth(depth);
  using T = Value::Type;
  switch (v.type()) {
    case T::undefined:
      out += "Undefined";
      return;
    case T::string:
      out += string_repr(v.str());
      return;
    case T::list: {
      const ListData& l = v.seq();
      switch (l.kind) {
        case SeqKind::list:
          out += '[';
          seq_items_repr(out, l.items, depth);
          out += ']';
          return;
        case SeqKind::tuple:
          out += '(';
          seq_items_repr(out, l.items, depth);
          if (l.items.size() == 1) out += ',';
          out += ')';
          return;
        case SeqKind::range:
          out += "range(" + std::to_string(l.start) + ", " + std::to_string(l.stop);
          if (l.step != 1) out += ", " + std::to_string(l.step);
          out += ')';
          return;
        case SeqKind::dict_keys:
        case SeqKind::dict_values:
        case SeqKind::dict_items:
          out += l.kind == SeqKind::dict_keys ? "dict_keys([" : l.kind == SeqKind::dict_values ? "dict_values([" : "dict_items([";
          seq_items_repr(out, l.items, depth);
          out += "])";
          return;
      }
      return;
    }
    case T::dict: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.map().items) {
        if (!first) out += ", ";
        first = false;
        repr_to(out, k, depth + 1);
        out += ": ";
        repr_to(out, val, depth + 1);
      }
      out += '}';
      return;
    }
    case T::object:
      out += v.obj().repr();
      return;
    default:
      out += py_str(v);
      return;
  }
}

void hex_escape(std::string& out, const char* prefix, int digits, char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", digits, static_cast<unsigned>(c));
  out += prefix;
  out += buf;
}

}  // namespace

// ---- construction -------------------------------------------------------------------------------

Value Value::undefined(std::string message) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(message));
  return v;
}

Value Value::unsafe(std::string message) {
  Value v = undefined(std::move(message));
  v.flag_ = true;
  return v;
}

Value Value::none() {
  Value v;
  v.type_ = Type::none;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::boolean;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.type_ = Type::integer;
  v.i_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.type_ = Type::floating;
  v.f_ = d;
  return v;
}

Value Value::string(std::string s, bool safe) {
  Value v;
  v.type_ = Type::string;
  v.flag_ = safe;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::list(std::vector<Value> items, SeqKind kind) {
  Value v;
  v.type_ = Type::list;
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->kind = kind;
  v.list_ = std::move(data);
  return v;
}

Value Value::range(int64_t start, int64_t stop, int64_t step) {
  std::vector<Value> items;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) items.push_back(integer(i));
  } else {
    for (int64_t i = start; i > stop; i += step) items.push_back(integer(i));
  }
  Value v = list(std::move(items), SeqKind::range);
  auto data = std::const_pointer_cast<ListData>(v.list_);
  data->start = start;
  data->stop = stop;
  data->step = step;
  return v;
}

Value Value::dict(std::vector<std::pair<Value, Value>> items) {
  Value v;
  v.type_ = Type::dict;
  auto data = std::make_shared<DictData>();
  data->items = std::move(items);
  v.dict_ = std::move(data);
  return v;
}

Value Value::object(std::shared_ptr<Object> obj) {
  Value v;
  v.type_ = Type::object;
  v.obj_ = std::move(obj);
  return v;
}

const std::string& Value::undefined_message() const {
  return s_ ? *s_ : generic_undefined_message();
}

const Value* DictData::find(const Value& key) const {
  for (const auto& [k, v] : items) {
    if (equal(k, key)) return &v;
  }
  return nullptr;
}

Value Object::get_attr(const std::string& name) const {
  return Value::undefined("'" + std::string(type_name()) + " object' has no attribute '" + name + "'");
}

std::string Object::repr() const {
  throw OpError(std::string("cannot render a ") + type_name() +
                " object as text (Python would print its memory address)");
}

// ---- Python semantics -----------------------------------------------------------------------------

const char* type_name(const Value& v) {
  using T = Value::Type;
  switch (v.type()) {
    case T::undefined: return "Undefined";
    case T::none: return "NoneType";
    case T::boolean: return "bool";
    case T::integer: return "int";
    case T::floating: return "float";
    case T::string: return v.safe() ? "Markup" : "str";
    case T::dict: return "dict";
    case T::object: return v.obj().type_name();
    case T::list:
      switch (v.seq().kind) {
        case SeqKind::list: return "list";
        case SeqKind::tuple: return "tuple";
        case SeqKind::range: return "range";
        case SeqKind::dict_keys: return "dict_keys";
        case SeqKind::dict_values: return "dict_values";
        case SeqKind::dict_items: return "dict_items";
      }
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return std::string(type_name(v)) + " object";
}

bool truthy(const Value& v) {
  using T = Value::Type;
  switch (v.type()) {
    case T::undefined:
    case T::none: return false;
    case T::boolean: return v.as_bool();
    case T::integer: return v.as_int() != 0;
    case T::floating: return v.as_float() != 0.0;
    case T::string: return !v.str().empty();
    case T::list: return !v.seq().items.empty();
    case T::dict: return !v.map().items.empty();
    case T::object: return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b) { return equal_at(a, b, 0); }

bool hashable(const Value& v) {
  using T = Value::Type;
  switch (v.type()) {
    case T::list: {
      const ListData& l = v.seq();
      if (l.kind == SeqKind::range) return true;
      if (l.kind != SeqKind::tuple) return false;
      for (const Value& x : l.items) {
        if (!hashable(x)) return false;
      }
      return true;
    }
    case T::dict: return false;
    default: return true;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);  // shortest round trip
  std::string s(buf, res.ptr);
  std::string out;
  if (s[0] == '-') {
    out += '-';
    s.erase(0, 1);
  }
  size_t e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  int decpt = exp + 1;  // value = 0.DIGITS * 10^decpt
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  return out;
}

std::string string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : unicode::decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == U'\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (unicode::is_printable(c)) {
      unicode::append_utf8(out, c);
    } else if (c <= 0xFF) {
      hex_escape(out, "\\x", 2, c);
    } else if (c <= 0xFFFF) {
      hex_escape(out, "\\u", 4, c);
    } else {
      hex_escape(out, "\\U", 8, c);
    }
  }
  out += quote;
  return out;
}

std::string py_str(const Value& v) {
  using T = Value::Type;
  switch (v.type()) {
    case T::undefined: return "";
    case T::none: return "None";
    case T::boolean: return v.as_bool() ? "True" : "False";
    case T::integer: return std::to_string(v.as_int());
    case T::floating: return float_repr(v.as_float());
    case T::string: return v.str();
    default: return py_repr(v);
  }
}

std::string py_repr(const Value& v) {
  std::string out;
  repr_to(out, v, 0);
  return out;
}

Value make_dict(std::vector<std::pair<Value, Value>> items) {
  std::vector<std::pair<Value, Value>> unique;
  unique.reserve(items.size());
  for (auto& [k, v] : items) {
    if (!hashable(k)) throw OpError(std::string("unhashable type: '") + type_name(k) + "'");
    bool replaced = false;
    for (auto& [uk, uv] : unique) {
      if (equal(uk, k)) {
        uv = std::move(v);
        replaced = true;
        break;
      }
    }
    if (!replaced) unique.emplace_back(std::move(k), std::move(v));
  }
  return Value::dict(std::move(unique));
}

void fail_undefined(const Value& v) { throw OpError(v.undefined_message()); }

}  // namespace rlhf::jinja
