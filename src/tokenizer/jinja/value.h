// The values a Jinja template computes with, modelled on the Python objects Jinja2 hands a
// template: undefined (jinja2.Undefined, with the message it raises when used), None, bool, int
// (int64; overflow is an error, never a wrong number), float, str (UTF-8; `safe` marks
// markupsafe.Markup), list / tuple / range / dict views (immutable, shared), dict (insertion
// ordered, like Python's) and objects (namespace, loop, macros, builtins, generators).
//
// Containers are never modified after construction (Jinja's ImmutableSandboxedEnvironment forbids
// list.append, dict.update, ...), so copies share them; only a namespace changes, through
// `{% set ns.attr = ... %}`.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rlhf::jinja {

class Value;
class Object;

// An operation the template asked for that Python would refuse (TypeError, UndefinedError, ...).
// The interpreter adds the template position and turns it into an rlhf::Error.
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Python's sequence types as templates meet them; they differ in repr(), in tojson (only list and
// tuple are JSON arrays) and in indexing (the dict views cannot be indexed).
enum class SeqKind : uint8_t { list, tuple, range, dict_keys, dict_values, dict_items };

struct ListData;
struct DictData;

class Value {
 public:
  enum class Type : uint8_t { undefined, none, boolean, integer, floating, string, list, dict, object };

  Value() = default;  // undefined, with Jinja's generic message
  static Value undefined(std::string message);
  // An attribute the sandbox refuses (list.append, dict.pop, ...): renders as '' like any
  // undefined but calling it raises the security message.
  static Value unsafe(std::string message);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s, bool safe = false);
  static Value list(std::vector<Value> items, SeqKind kind = SeqKind::list);
  static Value range(int64_t start, int64_t stop, int64_t step);
  static Value dict(std::vector<std::pair<Value, Value>> items);  // keys must be unique
  static Value object(std::shared_ptr<Object> obj);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::undefined; }
  bool is_none() const { return type_ == Type::none; }
  bool is_bool() const { return type_ == Type::boolean; }
  bool is_int() const { return type_ == Type::integer; }
  bool is_float() const { return type_ == Type::floating; }
  bool is_number() const { return type_ == Type::integer || type_ == Type::floating || type_ == Type::boolean; }
  bool is_string() const { return type_ == Type::string; }
  bool is_list() const { return type_ == Type::list; }
  bool is_dict() const { return type_ == Type::dict; }
  bool is_object() const { return type_ == Type::object; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return type_ == Type::boolean ? (b_ ? 1 : 0) : i_; }  // bool is an int in Python
  double as_float() const { return type_ == Type::floating ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *s_; }  // string text
  bool safe() const { return flag_; }              // string: a Markup
  const std::string& undefined_message() const;     // what using this undefined raises
  bool unsafe_attribute() const { return type_ == Type::undefined && flag_; }
  const ListData& seq() const { return *list_; }
  const std::shared_ptr<const ListData>& seq_ptr() const { return list_; }
  const DictData& map() const { return *dict_; }
  const std::shared_ptr<const DictData>& map_ptr() const { return dict_; }
  Object& obj() const { return *obj_; }
  const std::shared_ptr<Object>& obj_ptr() const { return obj_; }

 private:
  Type type_ = Type::undefined;
  bool flag_ = false;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<const std::string> s_;  // string text, or the message of an undefined
  std::shared_ptr<const ListData> list_;
  std::shared_ptr<const DictData> dict_;
  std::shared_ptr<Object> obj_;
};

struct ListData {
  std::vector<Value> items;
  SeqKind kind = SeqKind::list;
  int64_t start = 0, stop = 0, step = 1;  // kind == range: the arguments, for repr()
};

struct DictData {
  std::vector<std::pair<Value, Value>> items;  // insertion order; keys unique under Python ==
  const Value* find(const Value& key) const;
};

// Objects: everything that is not plain data. A template reaches their attributes through
// get_attr (Python getattr, as the sandbox allows it).
class Object {
 public:
  virtual ~Object() = default;
  virtual const char* type_name() const = 0;  // Python's type name, for messages
  // The attribute, or an undefined when there is none.
  virtual Value get_attr(const std::string& name) const;
  // Python's repr(); objects whose repr carries a memory address refuse (an OpError).
  virtual std::string repr() const;
  virtual bool callable() const { return false; }
};

// ---- Python semantics shared by the interpreter, the filters and the tests -------------------

const char* type_name(const Value& v);          // "str", "int", "dict", "NoneType", ...
std::string object_type_repr(const Value& v);   // jinja2's "dict object" / "None", quoted in messages
bool truthy(const Value& v);                    // bool(v)
bool equal(const Value& a, const Value& b);     // a == b
bool hashable(const Value& v);
std::string py_str(const Value& v);             // str(v); undefined is ''
std::string py_repr(const Value& v);            // repr(v)
std::string float_repr(double d);               // repr(float): '1.0', '1e-05', '0.30000000000000004'
std::string string_repr(const std::string& s);  // repr(str), quotes chosen as Python does

// A dict with the given pairs; a later duplicate key replaces the earlier value (Python's dict
// literal / dict() semantics). Unhashable keys are an OpError.
Value make_dict(std::vector<std::pair<Value, Value>> items);

// Raises the undefined's message (UndefinedError, or the sandbox's SecurityError).
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace rlhf::jinja
