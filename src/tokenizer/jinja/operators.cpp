// Python's operators on template values (see operators.h).
#include "tokenizer/jinja/operators.h"

#include <cmath>
#include <limits>

#include "tokenizer/jinja/access.h"
#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/pystring.h"

namespace rlhf::jinja {
namespace {

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  throw OpError(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" +
                type_name(b) + "'");
}

void check_operands(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
}

bool is_int_like(const Value& v) { return v.is_int() || v.is_bool(); }

Value checked_int(__int128 v) {
  if (v > std::numeric_limits<int64_t>::max() || v < std::numeric_limits<int64_t>::min()) {
    throw OpError("integer overflow: the result does not fit in 64 bits (rlhf does not do Python's big integers)");
  }
  return Value::integer(static_cast<int64_t>(v));
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.str();
    detail::charge(s.size() * static_cast<size_t>(n));
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out), seq.safe());
  }
  const ListData& l = seq.seq();
  detail::charge(l.items.size() * static_cast<size_t>(n) * 16);
  std::vector<Value> out;
  out.reserve(l.items.size() * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.items.begin(), l.items.end());
  return Value::list(std::move(out), l.kind == SeqKind::tuple ? SeqKind::tuple : SeqKind::list);
}

bool is_repeatable(const Value& v) {
  return v.is_string() || (v.is_list() && (v.seq().kind == SeqKind::list || v.seq().kind == SeqKind::tuple));
}

// CPython's float_divmod.
void float_divmod(double vx, double wx, double& floordiv, double& mod) {
  if (wx == 0.0) throw OpError("float divmod()");
  mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
}

// -1, 0, 1 for numbers; nan compares false everywhere (reported as 2).
int number_cmp(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  long double x = a.is_float() ? static_cast<long double>(a.as_float()) : static_cast<long double>(a.as_int());
  long double y = b.is_float() ? static_cast<long double>(b.as_float()) : static_cast<long double>(b.as_int());
  if (std::isnan(x) || std::isnan(y)) return 2;
  return x < y ? -1 : x > y ? 1 : 0;
}


// Ordering of two values as Python's < does; `op` names the operator in the error.
int order(const Value& a, const Value& b, const std::string& op, int depth) {
  if (depth > 200) throw OpError("values nested deeper than 200 levels");
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) return number_cmp(a, b);
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.seq().kind == b.seq().kind &&
      (a.seq().kind == SeqKind::list || a.seq().kind == SeqKind::tuple)) {
    const auto& x = a.seq().items;
    const auto& y = b.seq().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equal(x[i], y[i])) continue;
      return order(x[i], y[i], op, depth + 1);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw OpError("'" + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

}  // namespace

Value op_add(const Value& a, const Value& b) {
  check_operands(a, b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_float() + b.as_float());
    return checked_int(static_cast<__int128>(a.as_int()) + b.as_int());
  }
  if (a.is_string() && b.is_string()) {
    // Markup + str escapes the str (and str + Markup likewise), as markupsafe does
    bool safe = a.safe() || b.safe();
    std::string x = a.safe() || !safe ? a.str() : html_escape(a.str());
    const std::string& y = b.safe() || !safe ? b.str() : html_escape(b.str());
    detail::charge(x.size() + y.size());
    x += y;
    return Value::string(std::move(x), safe);
  }
  if (a.is_string()) {
    throw OpError(std::string("can only concatenate str (not \"") + type_name(b) + "\") to str");
  }
  if (a.is_list() && (a.seq().kind == SeqKind::list || a.seq().kind == SeqKind::tuple)) {
    if (!b.is_list() || a.seq().kind != b.seq().kind) {
      const char* k = a.seq().kind == SeqKind::list ? "list" : "tuple";
      throw OpError(std::string("can only concatenate ") + k + " (not \"" + type_name(b) + "\") to " + k);
    }
    std::vector<Value> items = a.seq().items;
    detail::charge((items.size() + b.seq().items.size()) * 16);
    items.insert(items.end(), b.seq().items.begin(), b.seq().items.end());
    return Value::list(std::move(items), a.seq().kind);
  }
  unsupported("+", a, b);
}

Value op_sub(const Value& a, const Value& b) {
  check_operands(a, b);
  if (!a.is_number() || !b.is_number()) unsupported("-", a, b);
  if (a.is_float() || b.is_float()) return Value::floating(a.as_float() - b.as_float());
  return checked_int(static_cast<__int128>(a.as_int()) - b.as_int());
}

Value op_mul(const Value& a, const Value& b) {
  check_operands(a, b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_float() * b.as_float());
    return checked_int(static_cast<__int128>(a.as_int()) * b.as_int());
  }
  if (is_repeatable(a) && is_int_like(b)) return repeat(a, b.as_int());
  if (is_int_like(a) && is_repeatable(b)) return repeat(b, a.as_int());
  if (is_repeatable(a) || is_repeatable(b)) {
    const Value& other = is_repeatable(a) ? b : a;
    throw OpError(std::string("can't multiply sequence by non-int of type '") + type_name(other) + "'");
  }
  unsupported("*", a, b);
}

Value op_div(const Value& a, const Value& b) {
  check_operands(a, b);
  if (!a.is_number() || !b.is_number()) unsupported("/", a, b);
  if (b.as_float() == 0.0) throw OpError(a.is_float() || b.is_float() ? "float division by zero" : "division by zero");
  return Value::floating(a.as_float() / b.as_float());
}

Value op_floordiv(const Value& a, const Value& b) {
  check_operands(a, b);
  if (!a.is_number() || !b.is_number()) unsupported("//", a, b);
  if (a.is_float() || b.is_float()) {
    if (b.as_float() == 0.0) throw OpError("float floor division by zero");
    double q, m;
    float_divmod(a.as_float(), b.as_float(), q, m);
    return Value::floating(q);
  }
  int64_t x = a.as_int(), y = b.as_int();
  if (y == 0) throw OpError("integer division or modulo by zero");
  if (x == std::numeric_limits<int64_t>::min() && y == -1) return checked_int(-static_cast<__int128>(x));
  int64_t q = x / y;
  if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
  return Value::integer(q);
}

Value op_mod(const Value& a, const Value& b) {
  if (a.is_string() && !b.is_undefined()) {
    if (a.safe()) throw OpError("'%' formatting of Markup strings is not supported");
    return Value::string(percent_format(a.str(), b));
  }
  check_operands(a, b);
  if (!a.is_number() || !b.is_number()) unsupported("%", a, b);
  if (a.is_float() || b.is_float()) {
    if (b.as_float() == 0.0) throw OpError("float modulo");
    double q, m;
    float_divmod(a.as_float(), b.as_float(), q, m);
    return Value::floating(m);
  }
  int64_t x = a.as_int(), y = b.as_int();
  if (y == 0) throw OpError("integer division or modulo by zero");
  if (y == -1) return Value::integer(0);
  int64_t r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return Value::integer(r);
}

Value op_pow(const Value& a, const Value& b) {
  check_operands(a, b);
  if (!a.is_number() || !b.is_number()) unsupported("** or pow()", a, b);
  if (!a.is_float() && !b.is_float()) {
    int64_t base = a.as_int(), e = b.as_int();
    if (e < 0) {
      if (base == 0) throw OpError("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(static_cast<double>(base), static_cast<double>(e)));
    }
    __int128 result = 1, x = base;
    while (e > 0) {
      if (e & 1) {
        result *= x;
        checked_int(result);
      }
      e >>= 1;
      if (e > 0) {
        x *= x;
        if (x > std::numeric_limits<int64_t>::max() || x < std::numeric_limits<int64_t>::min()) {
          checked_int(x);
        }
      }
    }
    return checked_int(result);
  }
  double x = a.as_float(), y = b.as_float();
  if (x == 0.0 && y < 0) throw OpError("0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y)) throw OpError("a negative number to a fractional power is complex; not supported");
  double r = std::pow(x, y);
  if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) throw OpError("(34, 'Numerical result out of range')");
  return Value::floating(r);
}

Value op_neg(const Value& a) {
  if (a.is_undefined()) fail_undefined(a);
  if (a.is_float()) return Value::floating(-a.as_float());
  if (a.is_number()) return checked_int(-static_cast<__int128>(a.as_int()));
  throw OpError(std::string("bad operand type for unary -: '") + type_name(a) + "'");
}

Value op_pos(const Value& a) {
  if (a.is_undefined()) fail_undefined(a);
  if (a.is_float()) return a;
  if (a.is_number()) return Value::integer(a.as_int());
  throw OpError(std::string("bad operand type for unary +: '") + type_name(a) + "'");
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equal(a, b);
  if (op == "!=") return !equal(a, b);
  int c = order(a, b, op, 0);
  if (c == 2) return false;  // nan
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

bool less(const Value& a, const Value& b) { return order(a, b, "<", 0) == -1; }

bool contains(const Value& container, const Value& item) {
  const Value& c = container;
  if (c.is_string()) {
    if (!item.is_string()) {
      throw OpError(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
    }
    return c.str().find(item.str()) != std::string::npos;
  }
  if (c.is_undefined()) return false;  // iterating an undefined yields nothing
  if (c.is_dict()) {
    if (!hashable(item)) throw OpError(std::string("unhashable type: '") + type_name(item) + "'");
    return c.map().find(item) != nullptr;
  }
  if (c.is_list()) {
    for (const Value& v : c.seq().items) {
      if (equal(v, item)) return true;
    }
    return false;
  }
  if (c.is_object()) {
    if (auto* g = dynamic_cast<Generator*>(&c.obj())) {
      while (std::optional<Value> v = g->next()) {
        if (equal(*v, item)) return true;
      }
      return false;
    }
  }
  throw OpError(std::string("argument of type '") + type_name(c) + "' is not iterable");
}

std::string percent_format(const std::string& fmt, const Value& args) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_list() && args.seq().kind == SeqKind::tuple) {
    positional = args.seq().items;
  } else if (args.is_dict()) {
    mapping = &args;
    positional.push_back(args);
  } else {
    positional.push_back(args);
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw OpError("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    Value arg;
    bool have = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos || !mapping) throw OpError("format requires a mapping");
      Value key = Value::string(fmt.substr(i + 1, close - i - 1));
      const Value* v = mapping->map().find(key);
      if (!v) throw OpError("KeyError: " + py_repr(key));
      arg = *v;
      have = true;
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string("-+ #0").find(fmt[i]) != std::string::npos) flags += fmt[i++];
    int width = -1, precision = -1;
    if (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) {
      width = 0;
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) width = width * 10 + (fmt[i++] - '0');
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      precision = 0;
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) precision = precision * 10 + (fmt[i++] - '0');
    }
    if (i >= fmt.size()) throw OpError("incomplete format");
    char conv = fmt[i];
    if (!have) {
      if (next >= positional.size()) throw OpError("not enough arguments for format string");
      arg = positional[next++];
    }
    std::string piece;
    if (conv == 's' || conv == 'r' || conv == 'a') {
      piece = conv == 's' ? py_str(arg) : py_repr(arg);
      if (precision >= 0) piece = py_slice_chars(piece, 0, precision);
    } else if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' || conv == 'o' ||
               conv == 'f' || conv == 'F' || conv == 'e' || conv == 'E' || conv == 'g' || conv == 'G' || conv == 'c') {
      if (arg.is_undefined()) fail_undefined(arg);
      if (!arg.is_number()) {
        throw OpError(std::string("%") + conv + " format: a real number is required, not " + type_name(arg));
      }
      std::string spec = "%" + flags;
      if (precision >= 0) spec += "." + std::to_string(precision);
      char buf[512];
      if (conv == 'd' || conv == 'i' || conv == 'u') {
        int64_t v = arg.is_float() ? static_cast<int64_t>(std::trunc(arg.as_float())) : arg.as_int();
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), static_cast<long long>(v));
      } else if (conv == 'x' || conv == 'X' || conv == 'o') {
        if (arg.is_float()) throw OpError(std::string("%") + conv + " format: an integer is required, not float");
        int64_t v = arg.as_int();
        std::string s;
        std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), static_cast<unsigned long long>(v < 0 ? -v : v));
        s = buf;
        if (v < 0) s = "-" + s;
        std::snprintf(buf, sizeof buf, "%s", s.c_str());
      } else if (conv == 'c') {
        throw OpError("%c formatting is not supported");
      } else {
        if (precision < 0) spec += ".6";
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), arg.as_float());
      }
      piece = buf;
    } else {
      throw OpError(std::string("unsupported format character '") + conv + "'");
    }
    if (width >= 0 && static_cast<int>(unicode_length(piece)) < width) {
      std::string pad(static_cast<size_t>(width) - unicode_length(piece), ' ');
      piece = flags.find('-') != std::string::npos ? piece + pad : pad + piece;
    }
    out += piece;
  }
  if (!used_mapping && !mapping && next < positional.size()) {
    throw OpError("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace rlhf::jinja
