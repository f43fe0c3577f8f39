// The Jinja interpreter (see interpreter.h): statements, expressions, scopes, the loop object,
// macros, and the globals Hugging Face chat templates see (range, dict, namespace, cycler, joiner,
// raise_exception, strftime_now).
#include "tokenizer/jinja/interpreter.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/jinja/access.h"
#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/is_tests.h"
#include "tokenizer/jinja/operators.h"

namespace rlhf::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

// ---- objects --------------------------------------------------------------------------------------

}  // namespace

class Namespace : public Object {
 public:
  explicit Namespace(std::vector<std::pair<Value, Value>> items) : items_(std::move(items)) {}
  const char* type_name() const override { return "Namespace"; }
  Value get_attr(const std::string& name) const override {
    for (const auto& [k, v] : items_) {
      if (k.is_string() && k.str() == name) return v;
    }
    return Value::undefined("'jinja2.utils.Namespace object' has no attribute '" + name + "'");
  }
  std::string repr() const override { return "<Namespace " + py_repr(Value::dict(items_)) + ">"; }
  void set(const std::string& name, Value v) {
    for (auto& [k, x] : items_) {
      if (k.is_string() && k.str() == name) {
        x = std::move(v);
        return;
      }
    }
    items_.emplace_back(Value::string(name), std::move(v));
  }
  void clear() { items_.clear(); }

 private:
  std::vector<std::pair<Value, Value>> items_;
};

namespace {

Value builtin(const char* name, Builtin::Fn fn) { return Value::object(std::make_shared<Builtin>(name, std::move(fn))); }

class LoopObject : public Object {
 public:
  explicit LoopObject(std::shared_ptr<const std::vector<Value>> items) : items_(std::move(items)) {}
  const char* type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_->size()) + ">";
  }
  void set_index(size_t i) { index_ = i; }

  Value get_attr(const std::string& name) const override {
    int64_t n = static_cast<int64_t>(items_->size());
    int64_t i = static_cast<int64_t>(index_);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem") {
      return i > 0 ? (*items_)[index_ - 1] : Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
      return i + 1 < n ? (*items_)[index_ + 1] : Value::undefined("there is no next item");
    }
    if (name == "cycle") {
      size_t idx = index_;
      return builtin("cycle", [idx](Interpreter&, CallArgs& a) -> Value {
        if (!a.kw.empty()) throw OpError("cycle() takes no keyword arguments");
        if (a.pos.empty()) throw OpError("no items for cycling given");
        return a.pos[idx % a.pos.size()];
      });
    }
    if (name == "changed") {
      auto last = last_changed_;
      return builtin("changed", [last](Interpreter&, CallArgs& a) -> Value {
        Value now = Value::list(a.pos, SeqKind::tuple);
        if (!last->is_undefined() && equal(*last, now)) return Value::boolean(false);
        *last = now;
        return Value::boolean(true);
      });
    }
    return Object::get_attr(name);
  }

 private:
  std::shared_ptr<const std::vector<Value>> items_;  // shared: `loop` may outlive its for statement
  size_t index_ = 0;
  std::shared_ptr<Value> last_changed_ = std::make_shared<Value>();
};

class Cycler : public Object {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  const char* type_name() const override { return "Cycler"; }
  Value get_attr(const std::string& name) const override {
    auto self = const_cast<Cycler*>(this);
    if (name == "current") return items_[pos_];
    if (name == "next") {
      return builtin("next", [self](Interpreter&, CallArgs& a) -> Value {
        a.done("next", 0);
        Value v = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return v;
      });
    }
    if (name == "reset") {
      return builtin("reset", [self](Interpreter&, CallArgs& a) -> Value {
        a.done("reset", 0);
        self->pos_ = 0;
        return Value::none();
      });
    }
    return Object::get_attr(name);
  }

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
};

// dict(*args, **kwargs) as Python builds it.
Value build_dict(CallArgs& a, const char* fn) {
  if (a.pos.size() > 1) throw OpError(std::string(fn) + " expected at most 1 argument, got " + std::to_string(a.pos.size()));
  std::vector<std::pair<Value, Value>> items;
  if (!a.pos.empty()) {
    const Value& src = a.pos[0];
    if (src.is_dict()) {
      items = src.map().items;
    } else {
      for (const Value& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) {
          throw OpError("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        }
        items.emplace_back(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : a.kw) items.emplace_back(Value::string(k), v);
  return make_dict(std::move(items));
}

Value builtin_range(Interpreter&, CallArgs& a) {
  if (!a.kw.empty()) throw OpError("range() takes no keyword arguments");
  if (a.pos.empty() || a.pos.size() > 3) {
    throw OpError("range expected at most 3 arguments, got " + std::to_string(a.pos.size()));
  }
  for (const Value& v : a.pos) {
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_int() && !v.is_bool()) {
      throw OpError(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer");
    }
  }
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) {
    stop = a.pos[0].as_int();
  } else {
    start = a.pos[0].as_int();
    stop = a.pos[1].as_int();
    if (a.pos.size() == 3) step = a.pos[2].as_int();
  }
  if (step == 0) throw OpError("range() arg 3 must not be zero");
  __int128 len = 0;
  if (step > 0 && stop > start) len = ((__int128)stop - start + step - 1) / step;
  if (step < 0 && stop < start) len = ((__int128)start - stop - step - 1) / -step;
  if (len > kMaxRange) {
    throw OpError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  detail::charge(static_cast<size_t>(len) * 16);
  return Value::range(start, stop, step);
}

std::string strftime_text(const std::tm& tm, const std::string& fmt) {
  if (fmt.empty()) return "";
  std::vector<char> buf(fmt.size() * 8 + 256);
  size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
  if (n == 0) throw OpError("strftime_now: the format " + string_repr(fmt) + " gives no text or too long a text");
  return std::string(buf.data(), n);
}

void add_builtins(Frame& f) {
  auto& g = f.vars;
  g["range"] = builtin("range", builtin_range);
  g["dict"] = builtin("dict", [](Interpreter&, CallArgs& a) { return build_dict(a, "dict"); });
  g["namespace"] = builtin("namespace", [](Interpreter& in, CallArgs& a) {
    Value d = build_dict(a, "namespace");
    return in.make_namespace(d.map().items);
  });
  g["raise_exception"] = builtin("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
    std::optional<Value> m = a.take(0, "message");
    a.done("raise_exception", 1);
    throw OpError("template raised: " + (m ? py_str(*m) : std::string()));
  });
  g["strftime_now"] = builtin("strftime_now", [](Interpreter& in, CallArgs& a) -> Value {
    std::optional<Value> f = a.take(0, "format");
    a.done("strftime_now", 1);
    if (!f || !f->is_string()) throw OpError("strftime_now() needs a format string");
    return Value::string(strftime_text(in.now(), f->str()));
  });
  g["cycler"] = builtin("cycler", [](Interpreter&, CallArgs& a) -> Value {
    if (!a.kw.empty()) throw OpError("cycler() takes no keyword arguments");
    if (a.pos.empty()) throw OpError("at least one item has to be provided");
    return Value::object(std::make_shared<Cycler>(a.pos));
  });
  g["joiner"] = builtin("joiner", [](Interpreter&, CallArgs& a) -> Value {
    Value sep = a.take(0, "sep").value_or(Value::string(", "));
    a.done("joiner", 1);
    auto used = std::make_shared<bool>(false);
    return builtin("joiner", [sep, used](Interpreter&, CallArgs& b) -> Value {
      b.done("joiner", 0);
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return sep;
    });
  });
}

struct DepthGuard {
  int& depth;
  DepthGuard(int& d, int max, const char* what) : depth(d) {
    if (++depth > max) {
      --depth;
      throw OpError(std::string("the template ") + what + " more than " + std::to_string(max) + " levels deep (limit)");
    }
  }
  ~DepthGuard() { --depth; }
};

}  // namespace

std::string Macro::repr() const { return "<Macro " + string_repr(name_) + ">"; }

Value Interpreter::make_namespace(std::vector<std::pair<Value, Value>> items) {
  auto ns = std::make_shared<Namespace>(std::move(items));
  namespaces_.push_back(ns);
  return Value::object(ns);
}

Interpreter::Interpreter(const std::string& where, const SourceMap& map, const Limits& limits, std::tm now)
    : where_(where), map_(map), limits_(limits), now_(now) {}

void Interpreter::fail_at(size_t pos, const std::string& msg) const {
  RLHF_FAIL(where_, ": ", map_.describe(pos), ": ", msg);
}

std::string Interpreter::run(const Body& body, const std::vector<std::pair<std::string, Value>>& vars,
                             std::vector<std::pair<size_t, size_t>>& generation_spans) {
  auto globals = std::make_shared<Frame>();
  add_builtins(*globals);
  for (const auto& [k, v] : vars) globals->vars[k] = v;
  frame_ = std::make_shared<Frame>();
  frame_->parent = globals;
  std::string out;
  out_ = {&out};
  spans_ = &generation_spans;
  detail::BudgetScope budget(limits_);
  struct Cleanup {  // a namespace may hold itself (ns.me = ns): empty them all, whatever happened
    Interpreter& in;
    ~Cleanup() {
      for (auto& w : in.namespaces_)
        if (auto ns = w.lock()) static_cast<Namespace&>(*ns).clear();
      in.frame_.reset();
    }
  } cleanup{*this};
  exec_body(body);
  return out;
}

void Interpreter::emit(std::string_view text) {
  std::string& o = *out_.back();
  if (o.size() + text.size() > limits_.max_value_bytes) {
    throw OpError("the template's output exceeds " + std::to_string(limits_.max_value_bytes) + " bytes (limit)");
  }
  detail::charge(text.size());
  o += text;
}

Value Interpreter::lookup(const std::string& name) const {
  for (const Frame* f = frame_.get(); f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const Expr& target, const Value& v) {
  switch (target.kind) {
    case ExprKind::name:
      frame_->vars[target.name] = v;
      return;
    case ExprKind::ns_ref: {
      Value ns = lookup(target.name);
      auto* n = ns.is_object() ? dynamic_cast<Namespace*>(&ns.obj()) : nullptr;
      if (!n) fail_at(target.pos, "Cannot assign attribute on non-namespace object");
      n->set(target.value.str(), v);
      return;
    }
    case ExprKind::tuple: {
      std::vector<Value> items;
      try {
        items = iterate(v);
      } catch (const OpError& e) {
        fail_at(target.pos, std::string("cannot unpack non-iterable ") + type_name(v) + " object");
      }
      size_t n = target.items.size();
      if (items.size() < n) {
        fail_at(target.pos, "not enough values to unpack (expected " + std::to_string(n) + ", got " +
                                std::to_string(items.size()) + ")");
      }
      if (items.size() > n) fail_at(target.pos, "too many values to unpack (expected " + std::to_string(n) + ")");
      for (size_t i = 0; i < n; ++i) assign(*target.items[i], items[i]);
      return;
    }
    default:
      fail_at(target.pos, "can't assign to this expression");
  }
}

// ---- statements ------------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const Body& body) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

std::string Interpreter::capture(const Body& body, std::shared_ptr<Frame> frame) {
  std::string buf;
  std::shared_ptr<Frame> saved = frame_;
  if (frame) frame_ = std::move(frame);
  out_.push_back(&buf);
  try {
    exec_body(body);
  } catch (...) {
    out_.pop_back();
    frame_ = saved;
    throw;
  }
  out_.pop_back();
  frame_ = saved;
  return buf;
}

Interpreter::Flow Interpreter::exec(const Stmt& s) {
  DepthGuard g(eval_depth_, limits_.max_eval_depth, "nests statements and expressions");
  try {
    switch (s.kind) {
      case StmtKind::data:
        emit(s.text);
        return Flow::normal;
      case StmtKind::output: {
        Value v = eval(*s.expr);
        try {
          emit(py_str(v));
        } catch (const OpError& e) {
          fail_at(s.expr->pos, e.what());
        }
        return Flow::normal;
      }
      case StmtKind::if_:
        for (const auto& [test, body] : s.branches) {
          if (truthy(eval(*test))) return exec_body(body);
        }
        return exec_body(s.else_body);
      case StmtKind::for_:
        return exec_for(s);
      case StmtKind::set:
        assign(*s.target, eval(*s.expr));
        return Flow::normal;
      case StmtKind::set_block: {
        Value v = Value::string(capture(s.body, nullptr));
        if (s.expr) {
          const Value* saved = filter_head_;
          filter_head_ = &v;
          Value r = eval(*s.expr);
          filter_head_ = saved;
          v = r;
        }
        assign(*s.target, v);
        return Flow::normal;
      }
      case StmtKind::macro:
        frame_->vars[s.text] = Value::object(std::make_shared<Macro>(&s, s.text, frame_));
        return Flow::normal;
      case StmtKind::call_block: {
        const Expr& call = *s.expr;
        Value f = eval(*call.a);
        CallArgs args = eval_args(call);
        args.kw.emplace_back("caller", Value::object(std::make_shared<Macro>(&s, "caller", frame_)));
        Value r;
        try {
          r = this->call(f, std::move(args));
        } catch (const OpError& e) {
          fail_at(call.pos, e.what());
        }
        emit(py_str(r));
        return Flow::normal;
      }
      case StmtKind::filter_block: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        Value v = Value::string(capture(s.body, inner));
        const Value* saved = filter_head_;
        filter_head_ = &v;
        Value r = eval(*s.expr);
        filter_head_ = saved;
        emit(py_str(r));
        return Flow::normal;
      }
      case StmtKind::with: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        std::vector<Value> values;
        for (const auto& [target, value] : s.assigns) values.push_back(eval(*value));
        std::shared_ptr<Frame> saved = frame_;
        frame_ = inner;
        try {
          for (size_t i = 0; i < values.size(); ++i) assign(*s.assigns[i].first, values[i]);
          Flow f = exec_body(s.body);
          frame_ = saved;
          return f;
        } catch (...) {
          frame_ = saved;
          throw;
        }
      }
      case StmtKind::break_:
        return Flow::break_;
      case StmtKind::continue_:
        return Flow::continue_;
      case StmtKind::generation: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        std::string text = capture(s.body, inner);
        bool root = out_.size() == 1;
        size_t begin = out_.back()->size();
        emit(text);
        if (root && spans_) spans_->emplace_back(begin, begin + text.size());
        return Flow::normal;
      }
    }
  } catch (const OpError& e) {
    fail_at(s.pos, e.what());
  }
  return Flow::normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
  Value iterable = eval(*s.expr);
  std::vector<Value> items;
  try {
    items = iterate(iterable);
  } catch (const OpError& e) {
    fail_at(s.expr->pos, e.what());
  }
  auto inner = std::make_shared<Frame>();
  inner->parent = frame_;
  std::shared_ptr<Frame> saved = frame_;
  frame_ = inner;
  struct Restore {
    Interpreter& in;
    std::shared_ptr<Frame> f;
    ~Restore() { in.frame_ = f; }
  } restore{*this, saved};

  if (s.test) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      assign(*s.target, item);
      if (truthy(eval(*s.test))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
  const std::vector<Value>& all = *shared_items;
  auto loop = std::make_shared<LoopObject>(shared_items);
  Value loop_value = Value::object(loop);
  for (size_t i = 0; i < all.size(); ++i) {
    if (++iterations_ > limits_.max_loop_iterations) {
      fail_at(s.pos, "the template ran more than " + std::to_string(limits_.max_loop_iterations) +
                         " loop iterations (limit)");
    }
    loop->set_index(i);
    inner = std::make_shared<Frame>();  // jinja2: what the body sets lives for one iteration
    inner->parent = saved;
    frame_ = inner;
    inner->vars["loop"] = loop_value;
    assign(*s.target, all[i]);
    Flow f = exec_body(s.body);
    if (f == Flow::break_) break;
  }
  if (all.empty()) {
    frame_ = saved;
    auto else_frame = std::make_shared<Frame>();
    else_frame->parent = saved;
    frame_ = else_frame;
    return exec_body(s.else_body);
  }
  return Flow::normal;
}

// ---- calls ---------------------------------------------------------------------------------------------

Value Interpreter::call(const Value& f, CallArgs args) {
  if (f.is_undefined()) fail_undefined(f);
  if (f.is_object() && f.obj().callable()) {
    return static_cast<Callable&>(f.obj()).call(*this, std::move(args));
  }
  throw OpError(std::string("'") + type_name(f) + "' object is not callable");
}

Value Interpreter::call_macro(const Macro& m, CallArgs args) {
  DepthGuard g(call_depth_, limits_.max_call_depth, "calls macros");
  const Stmt& def = m.def();
  const std::string& name = m.name();
  auto frame = std::make_shared<Frame>();
  frame->parent = m.closure();
  if (!frame->parent) {
    throw OpError("macro " + string_repr(m.name()) + " is called after the block it was defined in ended, "
                  "which rlhf's Jinja engine does not support");
  }
  size_t n = def.params.size();
  std::vector<std::optional<Value>> bound(n);
  for (size_t i = 0; i < n && i < args.pos.size(); ++i) bound[i] = args.pos[i];
  bool found_caller = false;
  for (size_t i = args.pos.size(); i < n; ++i) {
    for (size_t k = 0; k < args.kw.size(); ++k) {
      if (args.kw[k].first == def.params[i].name) {
        bound[i] = args.kw[k].second;
        args.kw.erase(args.kw.begin() + static_cast<std::ptrdiff_t>(k));
        break;
      }
    }
    if (def.params[i].name == "caller") found_caller = true;
  }
  if (def.uses_caller && !found_caller) {
    Value caller = Value::undefined("No caller defined");
    for (size_t k = 0; k < args.kw.size(); ++k) {
      if (args.kw[k].first == "caller") {
        caller = args.kw[k].second;
        args.kw.erase(args.kw.begin() + static_cast<std::ptrdiff_t>(k));
        break;
      }
    }
    frame->vars["caller"] = caller;
  }
  if (def.uses_kwargs) {
    std::vector<std::pair<Value, Value>> kw;
    for (auto& [k, v] : args.kw) kw.emplace_back(Value::string(k), v);
    frame->vars["kwargs"] = Value::dict(std::move(kw));
  } else if (!args.kw.empty()) {
    if (args.kw[0].first == "caller") {
      throw OpError("macro " + string_repr(name) +
                    " was invoked with two values for the special caller argument. This is most likely a bug.");
    }
    throw OpError("macro " + string_repr(name) + " takes no keyword argument " + string_repr(args.kw[0].first));
  }
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = n; i < args.pos.size(); ++i) rest.push_back(args.pos[i]);
    frame->vars["varargs"] = Value::list(std::move(rest), SeqKind::tuple);
  } else if (args.pos.size() > n) {
    throw OpError("macro " + string_repr(name) + " takes not more than " + std::to_string(n) + " argument(s)");
  }
  std::shared_ptr<Frame> saved = frame_;
  frame_ = frame;
  try {
    for (size_t i = 0; i < n; ++i) {
      const Param& p = def.params[i];
      Value v;
      if (bound[i]) {
        v = *bound[i];
      } else if (p.default_value) {
        v = eval(*p.default_value);
      } else {
        v = Value::undefined("parameter " + string_repr(p.name) + " was not provided");
      }
      frame->vars[p.name] = v;
    }
  } catch (...) {
    frame_ = saved;
    throw;
  }
  frame_ = saved;
  return Value::string(capture(def.body, frame));
}

CallArgs Interpreter::eval_args(const Expr& e) {
  CallArgs args;
  for (const ExprPtr& a : e.items) args.pos.push_back(eval(*a));
  for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v));
  if (e.dyn_args) {
    Value extra = eval(*e.dyn_args);
    try {
      for (Value& v : iterate(extra)) args.pos.push_back(std::move(v));
    } catch (const OpError& err) {
      fail_at(e.dyn_args->pos, err.what());
    }
  }
  if (e.dyn_kwargs) {
    Value extra = eval(*e.dyn_kwargs);
    if (!extra.is_dict()) fail_at(e.dyn_kwargs->pos, std::string("argument after ** must be a mapping, not ") + type_name(extra));
    for (const auto& [k, v] : extra.map().items) {
      if (!k.is_string()) fail_at(e.dyn_kwargs->pos, "keywords must be strings");
      args.kw.emplace_back(k.str(), v);
    }
  }
  return args;
}

// ---- expressions ---------------------------------------------------------------------------------------

Value Interpreter::eval(const Expr& e) {
  DepthGuard g(eval_depth_, limits_.max_eval_depth, "nests statements and expressions");
  try {
    return eval_inner(e);
  } catch (const OpError& err) {
    fail_at(e.pos, err.what());
  }
}

Value Interpreter::eval_filter(const Expr& e) {
  Value input;
  if (e.a) {
    input = eval(*e.a);
  } else {
    if (!filter_head_) throw OpError("filter without input");
    input = *filter_head_;
  }
  CallArgs args = eval_args(e);
  return apply_filter(*this, e.name, input, std::move(args));
}

Value Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::constant:
      return e.value;
    case ExprKind::name:
      return lookup(e.name);
    case ExprKind::ns_ref:
      return get_attr(lookup(e.name), e.value.str());
    case ExprKind::list:
    case ExprKind::tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& x : e.items) items.push_back(eval(*x));
      detail::charge(items.size() * 16);
      return Value::list(std::move(items), e.kind == ExprKind::tuple ? SeqKind::tuple : SeqKind::list);
    }
    case ExprKind::dict: {
      std::vector<std::pair<Value, Value>> items;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i]);
        items.emplace_back(std::move(k), eval(*e.items[i + 1]));
      }
      detail::charge(items.size() * 32);
      return make_dict(std::move(items));
    }
    case ExprKind::get_attr:
      return get_attr(eval(*e.a), e.name);
    case ExprKind::get_item: {
      Value obj = eval(*e.a);
      if (e.b->kind == ExprKind::slice) {
        const Expr& sl = *e.b;
        Value start = sl.a ? eval(*sl.a) : Value::none();
        Value stop = sl.b ? eval(*sl.b) : Value::none();
        Value step = sl.c ? eval(*sl.c) : Value::none();
        return slice(obj, start, stop, step);
      }
      return get_item(obj, eval(*e.b));
    }
    case ExprKind::slice:
      throw OpError("a slice outside of []");
    case ExprKind::call: {
      Value f = eval(*e.a);
      CallArgs args = eval_args(e);
      return call(f, std::move(args));
    }
    case ExprKind::filter:
      return eval_filter(e);
    case ExprKind::test: {
      Value v = eval(*e.a);
      CallArgs args = eval_args(e);
      return Value::boolean(apply_test(*this, e.name, v, std::move(args)));
    }
    case ExprKind::neg:
      return op_neg(eval(*e.a));
    case ExprKind::pos:
      return op_pos(eval(*e.a));
    case ExprKind::not_:
      return Value::boolean(!truthy(eval(*e.a)));
    case ExprKind::add: {
      Value a = eval(*e.a);
      return op_add(a, eval(*e.b));
    }
    case ExprKind::sub: {
      Value a = eval(*e.a);
      return op_sub(a, eval(*e.b));
    }
    case ExprKind::mul: {
      Value a = eval(*e.a);
      return op_mul(a, eval(*e.b));
    }
    case ExprKind::div: {
      Value a = eval(*e.a);
      return op_div(a, eval(*e.b));
    }
    case ExprKind::floordiv: {
      Value a = eval(*e.a);
      return op_floordiv(a, eval(*e.b));
    }
    case ExprKind::mod: {
      Value a = eval(*e.a);
      return op_mod(a, eval(*e.b));
    }
    case ExprKind::pow: {
      Value a = eval(*e.a);
      return op_pow(a, eval(*e.b));
    }
    case ExprKind::and_: {
      Value a = eval(*e.a);
      return truthy(a) ? eval(*e.b) : a;
    }
    case ExprKind::or_: {
      Value a = eval(*e.a);
      return truthy(a) ? a : eval(*e.b);
    }
    case ExprKind::concat: {
      std::string out;
      for (const ExprPtr& x : e.items) out += py_str(eval(*x));
      detail::charge(out.size());
      return Value::string(std::move(out));
    }
    case ExprKind::compare: {
      Value left = eval(*e.a);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.items[i]);
        const std::string& op = e.ops[i];
        bool ok;
        if (op == "in") {
          ok = contains(right, left);
        } else if (op == "notin") {
          ok = !contains(right, left);
        } else {
          ok = compare(op, left, right);
        }
        if (!ok) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::cond:
      if (truthy(eval(*e.b))) return eval(*e.a);
      if (e.c) return eval(*e.c);
      return Value::undefined("the inline if-expression on " + map_.describe(e.pos) +
                              " evaluated to false and no else section was defined.");
  }
  throw OpError("unknown expression");
}

}  // namespace rlhf::jinja
