// The syntax tree the parser builds and the interpreter walks: expressions and statements, each
// with the byte offset of the token it starts at (for error messages).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  constant,   // value
  name,       // name
  ns_ref,     // name.attr as an assignment target (set ns.attr = ...)
  list,       // [items]
  tuple,      // (items) or a, b
  dict,       // {items[0]: items[1], ...} (keys and values interleaved)
  get_attr,   // a.name
  get_item,   // a[b]
  slice,      // a:b:c inside [] (any of them may be null)
  call,       // a(args, kwargs)
  filter,     // a | name(args, kwargs); a is null in a filter block's chain head
  test,       // a is name(args, kwargs)
  neg, pos, not_,
  add, sub, mul, div, floordiv, mod, pow,
  and_, or_,
  concat,     // items joined by ~
  compare,    // a, then ops[i] against items[i]
  cond,       // a if b else c (c may be null)
};

struct Expr {
  ExprKind kind;
  size_t pos = 0;
  Value value;                                         // constant
  std::string name;                                    // name, attribute, filter / test name
  ExprPtr a, b, c;                                     // operands
  std::vector<ExprPtr> items;                          // list / tuple / dict / call args / concat / compare
  std::vector<std::pair<std::string, ExprPtr>> kwargs; // call / filter / test keyword arguments
  ExprPtr dyn_args, dyn_kwargs;                        // *args, **kwargs in a call
  std::vector<std::string> ops;                        // compare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"

  Expr(ExprKind k, size_t p) : kind(k), pos(p) {}
};

enum class StmtKind : uint8_t {
  data,        // text
  output,      // {{ expr }}
  if_,         // branches: (test, body)...; else_body
  for_,        // target in iter [if test]; body; else_body
  set,         // target = expr
  set_block,   // {% set target | filters %}body{% endset %}
  macro,       // {% macro name(params) %}body{% endmacro %}
  call_block,  // {% call(params) expr %}body{% endcall %}
  filter_block,
  with,        // {% with a = 1, b = 2 %}body{% endwith %}
  break_,
  continue_,
  generation,  // {% generation %}body{% endgeneration %} (transformers' AssistantTracker)
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  size_t pos = 0;
  std::string text;  // data text, macro name
  ExprPtr target;    // for / set / set_block target
  ExprPtr expr;      // output / for iterable / set value / call_block call / set_block or filter_block filters
  ExprPtr test;      // for filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // if / elif
  Body body, else_body;
  std::vector<Param> params;  // macro / call block caller
  std::vector<std::pair<ExprPtr, ExprPtr>> assigns;  // with
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false, uses_loop = false;

  Stmt(StmtKind k, size_t p) : kind(k), pos(p) {}
};

}  // namespace rlhf::jinja
