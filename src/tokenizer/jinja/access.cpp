// Attribute and item access, iteration and len() as Jinja's sandbox does them (see access.h).
#include "tokenizer/jinja/access.h"

#include <set>

#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/pystring.h"
#include "tokenizer/jinja/unicode_case.h"

namespace rlhf::jinja {
namespace {

// A method bound to its object: `'abc'.upper`, `d.items`, `l.index`.
class BoundMethod : public Callable {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  const char* type_name() const override { return "builtin_function_or_method"; }
  Value call(Interpreter&, CallArgs args) override;

 private:
  Value self_;
  std::string name_;
};

Value method(const Value& self, const std::string& name) {
  return Value::object(std::make_shared<BoundMethod>(self, name));
}

Value unsafe_attr(const Value& obj, const std::string& name) {
  return Value::unsafe("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.");
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

Value no_element(const Value& obj, const Value& key) {
  return Value::undefined("'" + object_type_repr(obj) + "' has no element " + py_repr(key));
}

[[noreturn]] void not_supported(const Value& obj, const std::string& name) {
  throw OpError(std::string(type_name(obj)) + "." + name + " is not supported by rlhf's Jinja engine");
}

const std::set<std::string>& dict_methods() {
  static const std::set<std::string> m = {"items", "keys", "values", "get", "copy"};
  return m;
}
const std::set<std::string>& dict_unsafe() {
  static const std::set<std::string> m = {"clear", "pop", "popitem", "setdefault", "update"};
  return m;
}
const std::set<std::string>& list_unsafe() {
  static const std::set<std::string> m = {"append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"};
  return m;
}
const std::set<std::string>& number_attrs() {
  static const std::set<std::string> m = {"real", "imag", "numerator", "denominator", "conjugate", "bit_length",
                                          "bit_count", "to_bytes", "as_integer_ratio", "is_integer", "hex",
                                          "fromhex", "from_bytes"};
  return m;
}

// Python getattr(obj, name) for the builtin types: a method, an unsafe undefined, or nullopt
// when the type has no such attribute.
std::optional<Value> python_attr(const Value& obj, const std::string& name) {
  if (name.size() > 1 && name[0] == '_' && name[1] == '_') return unsafe_attr(obj, name);
  switch (obj.type()) {
    case Value::Type::string:
      if (is_str_method(name)) return method(obj, name);
      if (is_python_str_attribute(name)) not_supported(obj, name);
      return std::nullopt;
    case Value::Type::dict:
      if (dict_methods().count(name)) return method(obj, name);
      if (dict_unsafe().count(name)) return unsafe_attr(obj, name);
      if (name == "fromkeys") not_supported(obj, name);
      return std::nullopt;
    case Value::Type::list: {
      SeqKind k = obj.seq().kind;
      if (k == SeqKind::list || k == SeqKind::tuple || k == SeqKind::range) {
        if (name == "index" || name == "count") return method(obj, name);
        if (k == SeqKind::list && name == "copy") return method(obj, name);
        if (k == SeqKind::list && list_unsafe().count(name)) return unsafe_attr(obj, name);
        if (k == SeqKind::range && (name == "start" || name == "stop" || name == "step")) {
          const ListData& l = obj.seq();
          return Value::integer(name == "start" ? l.start : name == "stop" ? l.stop : l.step);
        }
      } else if (name == "mapping" || name == "isdisjoint") {
        not_supported(obj, name);
      }
      return std::nullopt;
    }
    case Value::Type::boolean:
    case Value::Type::integer:
    case Value::Type::floating:
      if (number_attrs().count(name)) not_supported(obj, name);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

int64_t normalise_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

Value list_method(const Value& self, const std::string& name, CallArgs& a) {
  const ListData& l = self.seq();
  if (name == "copy") {
    a.done("copy", 0);
    return Value::list(l.items);
  }
  std::optional<Value> x = a.take(0, nullptr);
  if (!x) throw OpError(name + "() takes at least 1 argument (0 given)");
  if (name == "count") {
    a.done("count", 1);
    int64_t n = 0;
    for (const Value& v : l.items) n += equal(v, *x);
    return Value::integer(n);
  }
  // index(x, start, stop)
  int64_t n = static_cast<int64_t>(l.items.size());
  auto bound = [&](size_t i, int64_t def) {
    std::optional<Value> v = a.take(i, nullptr);
    if (!v) return def;
    if (!v->is_int() && !v->is_bool()) throw OpError("slice indices must be integers");
    int64_t b = normalise_index(v->as_int(), n);
    return std::clamp<int64_t>(b, 0, n);
  };
  int64_t lo = bound(1, 0), hi = bound(2, n);
  a.done("index", 3);
  for (int64_t i = lo; i < hi; ++i) {
    if (equal(l.items[static_cast<size_t>(i)], *x)) return Value::integer(i);
  }
  throw OpError(py_repr(*x) + " is not in " + type_name(self));
}

Value dict_method(const Value& self, const std::string& name, CallArgs& a) {
  const DictData& d = self.map();
  if (name == "get") {
    std::optional<Value> key = a.take(0, nullptr);
    std::optional<Value> def = a.take(1, nullptr);
    a.done("get", 2);
    if (!key) throw OpError("get expected at least 1 argument, got 0");
    if (!hashable(*key)) throw OpError(std::string("unhashable type: '") + type_name(*key) + "'");
    const Value* v = d.find(*key);
    return v ? *v : def ? *def : Value::none();
  }
  a.done(name.c_str(), 0);
  if (name == "copy") return Value::dict(d.items);
  std::vector<Value> out;
  out.reserve(d.items.size());
  for (const auto& [k, v] : d.items) {
    if (name == "keys") {
      out.push_back(k);
    } else if (name == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::list({k, v}, SeqKind::tuple));
    }
  }
  SeqKind kind = name == "keys" ? SeqKind::dict_keys : name == "values" ? SeqKind::dict_values : SeqKind::dict_items;
  return Value::list(std::move(out), kind);
}

Value BoundMethod::call(Interpreter&, CallArgs args) {
  if (self_.is_string()) return call_str_method(self_, name_, args);
  if (self_.is_dict()) return dict_method(self_, name_, args);
  if (self_.is_list()) return list_method(self_, name_, args);
  throw OpError("cannot call " + name_);
}

}  // namespace

std::optional<Value> python_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) return std::nullopt;
  if (obj.is_object()) {
    Value v = obj.obj().get_attr(name);
    if (v.is_undefined() && !v.unsafe_attribute()) return std::nullopt;
    return v;
  }
  return python_attr(obj, name);
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_object()) {
    if (name.size() > 1 && name[0] == '_' && name[1] == '_') return unsafe_attr(obj, name);
    return obj.obj().get_attr(name);
  }
  if (std::optional<Value> a = python_attr(obj, name)) return *a;
  if (obj.is_dict()) {
    if (const Value* v = obj.map().find(Value::string(name))) return *v;
  }
  return no_attribute(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  switch (obj.type()) {
    case Value::Type::dict:
      if (hashable(key)) {
        if (const Value* v = obj.map().find(key)) return *v;
      }
      break;
    case Value::Type::list: {
      const ListData& l = obj.seq();
      bool indexable = l.kind == SeqKind::list || l.kind == SeqKind::tuple || l.kind == SeqKind::range;
      if (indexable && (key.is_int() || key.is_bool())) {
        int64_t n = static_cast<int64_t>(l.items.size());
        int64_t i = normalise_index(key.as_int(), n);
        if (i >= 0 && i < n) return l.items[static_cast<size_t>(i)];
      }
      break;
    }
    case Value::Type::string:
      if (key.is_int() || key.is_bool()) {
        std::u32string cs = unicode::decode(obj.str());
        int64_t n = static_cast<int64_t>(cs.size());
        int64_t i = normalise_index(key.as_int(), n);
        if (i >= 0 && i < n) return Value::string(unicode::encode(std::u32string(1, cs[static_cast<size_t>(i)])));
      }
      break;
    case Value::Type::object:
      if (key.is_string()) return get_attr(obj, key.str());
      return no_element(obj, key);
    default:
      break;
  }
  if (key.is_string()) {
    if (std::optional<Value> a = python_attr(obj, key.str())) return *a;
    return no_attribute(obj, key.str());
  }
  return no_element(obj, key);
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_int() && !v.is_bool()) {
      throw OpError("slice indices must be integers or None or have an __index__ method");
    }
    return v.as_int();
  };
  std::optional<int64_t> a = index(start), b = index(stop), c = index(step);
  int64_t st = c.value_or(1);
  if (st == 0) throw OpError("slice step cannot be zero");
  bool is_str = obj.is_string();
  bool is_seq = obj.is_list() && (obj.seq().kind == SeqKind::list || obj.seq().kind == SeqKind::tuple ||
                                  obj.seq().kind == SeqKind::range);
  if (!is_str && !is_seq) {
    return Value::undefined("'" + object_type_repr(obj) + "' has no element slice(" + (a ? std::to_string(*a) : "None") +
                            ", " + (b ? std::to_string(*b) : "None") + ", " + (c ? std::to_string(*c) : "None") + ")");
  }
  std::u32string cs;
  int64_t n;
  if (is_str) {
    cs = unicode::decode(obj.str());
    n = static_cast<int64_t>(cs.size());
  } else {
    n = static_cast<int64_t>(obj.seq().items.size());
  }
  // PySlice_AdjustIndices
  int64_t lo, hi;
  if (st > 0) {
    lo = a ? (*a < 0 ? std::max<int64_t>(*a + n, 0) : std::min(*a, n)) : 0;
    hi = b ? (*b < 0 ? std::max<int64_t>(*b + n, 0) : std::min(*b, n)) : n;
  } else {
    lo = a ? (*a < 0 ? std::max<int64_t>(*a + n, -1) : std::min(*a, n - 1)) : n - 1;
    hi = b ? (*b < 0 ? std::max<int64_t>(*b + n, -1) : std::min(*b, n - 1)) : -1;
  }
  std::vector<int64_t> picks;
  if (st > 0) {
    for (int64_t i = lo; i < hi; i += st) picks.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += st) picks.push_back(i);
  }
  if (is_str) {
    std::u32string out;
    for (int64_t i : picks) out += cs[static_cast<size_t>(i)];
    return Value::string(unicode::encode(out), obj.safe());
  }
  std::vector<Value> out;
  out.reserve(picks.size());
  for (int64_t i : picks) out.push_back(obj.seq().items[static_cast<size_t>(i)]);
  SeqKind k = obj.seq().kind;
  if (k == SeqKind::range) {
    // a slice of a range is a range
    const ListData& l = obj.seq();
    int64_t first = picks.empty() ? l.start : l.start + picks[0] * l.step;
    Value r = Value::list(std::move(out), SeqKind::range);
    auto& data = const_cast<ListData&>(r.seq());
    data.start = first;
    data.step = l.step * st;
    data.stop = first + static_cast<int64_t>(data.items.size()) * data.step;
    return r;
  }
  return Value::list(std::move(out), k);
}

std::vector<Value> string_chars(const std::string& s) {
  std::vector<Value> out;
  for (char32_t c : unicode::decode(s)) out.push_back(Value::string(unicode::encode(std::u32string(1, c))));
  return out;
}

std::vector<Value> iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::undefined: return {};
    case Value::Type::list: return v.seq().items;
    case Value::Type::string: return string_chars(v.str());
    case Value::Type::dict: {
      std::vector<Value> keys;
      keys.reserve(v.map().items.size());
      for (const auto& [k, val] : v.map().items) keys.push_back(k);
      return keys;
    }
    case Value::Type::object:
      if (auto* g = dynamic_cast<Generator*>(&v.obj())) {
        std::vector<Value> out;
        while (std::optional<Value> x = g->next()) {
          out.push_back(std::move(*x));
          detail::charge(16);
        }
        return out;
      }
      break;
    default:
      break;
  }
  throw OpError(std::string("'") + type_name(v) + "' object is not iterable");
}

int64_t length(const Value& v) {
  switch (v.type()) {
    case Value::Type::undefined: return 0;
    case Value::Type::string: return static_cast<int64_t>(unicode_length(v.str()));
    case Value::Type::list: return static_cast<int64_t>(v.seq().items.size());
    case Value::Type::dict: return static_cast<int64_t>(v.map().items.size());
    default: throw OpError(std::string("object of type '") + type_name(v) + "' has no len()");
  }
}

}  // namespace rlhf::jinja
