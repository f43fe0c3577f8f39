// Calling from a template: the arguments of a call, the objects that can be called (macros,
// builtins, bound methods) and generators (what Jinja's select / map / ... filters return: lazy,
// single-pass, always true, without a length).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

class Interpreter;

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  // The argument at `index` or named `name` (removed from the call), or nullopt.
  std::optional<Value> take(size_t index, const char* name);
  // Fails (OpError) if positional arguments beyond `max_pos` or keyword arguments are left.
  void done(const char* fn, size_t max_pos) const;
};

class Callable : public Object {
 public:
  bool callable() const override { return true; }
  virtual Value call(Interpreter& in, CallArgs args) = 0;
};

class Generator : public Object {
 public:
  using Next = std::function<std::optional<Value>()>;
  Generator(const char* name, Next next) : name_(name), next_(std::move(next)) {}
  const char* type_name() const override { return "generator"; }
  std::optional<Value> next() {
    if (done_) return std::nullopt;
    std::optional<Value> v = next_();
    if (!v) done_ = true;
    return v;
  }

 private:
  const char* name_;
  Next next_;
  bool done_ = false;
};

// A builtin function (range, dict, namespace, raise_exception, ...).
class Builtin : public Callable {
 public:
  using Fn = std::function<Value(Interpreter&, CallArgs&)>;
  Builtin(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  const char* type_name() const override { return "builtin_function_or_method"; }
  Value call(Interpreter& in, CallArgs args) override { return fn_(in, args); }

 private:
  std::string name_;
  Fn fn_;
};

}  // namespace rlhf::jinja
