// Jinja's builtin tests, as jinja2/tests.py defines them (see is_tests.h).
#include "tokenizer/jinja/is_tests.h"

#include <set>

#include "tokenizer/jinja/access.h"
#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

Value arg(CallArgs& a, const char* test, const char* name) {
  std::optional<Value> v = a.take(0, name);
  if (!v) throw OpError(std::string("test '") + test + "' missing required argument '" + name + "'");
  a.done(test, 1);
  return *v;
}

bool is_int_value(const Value& v) { return v.is_int(); }

Value py_mod(const Value& a, const Value& b) { return op_mod(a, b); }

bool same_object(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::undefined:
    case Value::Type::none: return true;
    case Value::Type::boolean: return a.as_bool() == b.as_bool();
    case Value::Type::integer: return a.as_int() == b.as_int();
    case Value::Type::floating: return false;
    case Value::Type::string: return a.str() == b.str();
    case Value::Type::list: return a.seq_ptr() == b.seq_ptr();
    case Value::Type::dict: return a.map_ptr() == b.map_ptr();
    case Value::Type::object: return a.obj_ptr() == b.obj_ptr();
  }
  return false;
}

bool is_generator(const Value& v) { return v.is_object() && dynamic_cast<const Generator*>(&v.obj()) != nullptr; }

}  // namespace

bool is_jinja_test(const std::string& name) {
  static const std::set<std::string> kTests = {
      "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
      "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
      "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", "ge", ">=", "<",
      "lt", "lessthan", "<=", "le"};
  return kTests.count(name) > 0;
}

bool apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs a) {
  (void)in;
  auto no_args = [&] { a.done(name.c_str(), 0); };
  if (name == "defined") return no_args(), !v.is_undefined();
  if (name == "undefined") return no_args(), v.is_undefined();
  if (name == "none") return no_args(), v.is_none();
  if (name == "boolean") return no_args(), v.is_bool();
  if (name == "false") return no_args(), v.is_bool() && !v.as_bool();
  if (name == "true") return no_args(), v.is_bool() && v.as_bool();
  if (name == "integer") return no_args(), is_int_value(v);
  if (name == "float") return no_args(), v.is_float();
  if (name == "number") return no_args(), v.is_number();
  if (name == "string") return no_args(), v.is_string();
  if (name == "mapping") return no_args(), v.is_dict();
  if (name == "escaped") return no_args(), v.is_string() && v.safe();
  if (name == "callable") return no_args(), v.is_object() && v.obj().callable();
  if (name == "iterable") {
    no_args();
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() || is_generator(v);
  }
  if (name == "sequence") {
    no_args();  // len() and __getitem__: str, list, tuple, range, dict; an undefined has len() but no item access
    if (v.is_string() || v.is_dict()) return true;
    if (v.is_list()) {
      SeqKind k = v.seq().kind;
      return k == SeqKind::list || k == SeqKind::tuple || k == SeqKind::range;
    }
    return false;
  }
  if (name == "lower" || name == "upper") {
    no_args();
    std::string s = py_str(v);
    bool cased = false;
    for (char32_t c : unicode::decode(s)) {
      if (!unicode::is_cased(c)) continue;
      std::u32string other = name == "lower" ? unicode::upper_char(c) : unicode::lower_char(c);
      std::u32string same = name == "lower" ? unicode::lower_char(c) : unicode::upper_char(c);
      if (other == std::u32string(1, c) || same != std::u32string(1, c)) return false;
      cased = true;
    }
    return cased;
  }
  if (name == "odd" || name == "even") {
    no_args();
    Value m = py_mod(v, Value::integer(2));
    return name == "odd" ? equal(m, Value::integer(1)) : equal(m, Value::integer(0));
  }
  if (name == "divisibleby") return equal(py_mod(v, arg(a, "divisibleby", "num")), Value::integer(0));
  if (name == "filter") {
    Value n = arg(a, "filter", "value");
    return n.is_string() && is_jinja_filter(n.str());
  }
  if (name == "test") {
    Value n = arg(a, "test", "value");
    return n.is_string() && is_jinja_test(n.str());
  }
  if (name == "sameas") return same_object(v, arg(a, "sameas", "other"));
  if (name == "in") return contains(arg(a, "in", "seq"), v);
  if (name == "==" || name == "eq" || name == "equalto") return equal(v, arg(a, name.c_str(), "b"));
  if (name == "!=" || name == "ne") return !equal(v, arg(a, name.c_str(), "b"));
  if (name == ">" || name == "gt" || name == "greaterthan") return compare(">", v, arg(a, name.c_str(), "b"));
  if (name == ">=" || name == "ge") return compare(">=", v, arg(a, name.c_str(), "b"));
  if (name == "<" || name == "lt" || name == "lessthan") return compare("<", v, arg(a, name.c_str(), "b"));
  if (name == "<=" || name == "le") return compare("<=", v, arg(a, name.c_str(), "b"));
  throw OpError("No test named '" + name + "'.");
}

}  // namespace rlhf::jinja
