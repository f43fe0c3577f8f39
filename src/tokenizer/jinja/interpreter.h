// The Jinja interpreter: walks the syntax tree of one template for one render, with jinja2's
// scoping (a for loop, a macro call, a call or generation block and `with` open a scope; `if` does
// not; `namespace()` objects carry values out of a loop), its Undefined, the loop object and
// macros. Filters and tests call back into it (select / map with a test or filter name, macros).
// Used through Template (template.h); this header is for the filters and tests.
#pragma once
#include <cstddef>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/callable.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
};

class Macro;
class Namespace;

class Interpreter {
 public:
  Interpreter(const std::string& where, const SourceMap& map, const Limits& limits, std::tm now);

  // Renders `body` with these variables; the generation spans are byte ranges of the result.
  std::string run(const Body& body, const std::vector<std::pair<std::string, Value>>& vars,
                  std::vector<std::pair<size_t, size_t>>& generation_spans);

  // f(args): a macro, builtin or bound method; anything else is an OpError.
  Value call(const Value& f, CallArgs args);
  Value call_macro(const Macro& m, CallArgs args);
  const std::tm& now() const { return now_; }
  Value make_namespace(std::vector<std::pair<Value, Value>> items);

 private:
  enum class Flow { normal, break_, continue_ };

  const std::string& where_;
  const SourceMap& map_;
  const Limits& limits_;
  std::tm now_;
  std::shared_ptr<Frame> frame_;
  std::vector<std::string*> out_;  // output buffers; out_[0] is the template's
  std::vector<std::pair<size_t, size_t>>* spans_ = nullptr;
  const Value* filter_head_ = nullptr;  // the input of a filter block's / set block's filter chain
  std::vector<std::weak_ptr<Object>> namespaces_;  // emptied after the render, breaking reference cycles
  int64_t iterations_ = 0;
  int eval_depth_ = 0;
  int call_depth_ = 0;

  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const;
  void emit(std::string_view text);
  Value lookup(const std::string& name) const;
  void assign(const Expr& target, const Value& v);

  Flow exec_body(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  std::string capture(const Body& body, std::shared_ptr<Frame> frame);

  Value eval(const Expr& e);
  Value eval_inner(const Expr& e);
  Value eval_filter(const Expr& e);
  CallArgs eval_args(const Expr& e);
};

// A macro, or the body of a call block as `caller`.
class Macro : public Callable {
 public:
  Macro(const Stmt* def, std::string name, const std::shared_ptr<Frame>& closure)
      : def_(def), name_(std::move(name)), closure_(closure) {}
  const char* type_name() const override { return "Macro"; }
  std::string repr() const override;
  Value call(Interpreter& in, CallArgs args) override { return in.call_macro(*this, std::move(args)); }
  const Stmt& def() const { return *def_; }
  const std::string& name() const { return name_; }
  // The scope the macro was defined in; null once that scope has ended.
  std::shared_ptr<Frame> closure() const { return closure_.lock(); }

 private:
  const Stmt* def_;
  std::string name_;
  std::weak_ptr<Frame> closure_;  // weak: the frame holds the macro, which must not keep it alive
};

}  // namespace rlhf::jinja
