// The Jinja parser, function for function as jinja2/parser.py (see parser.h).
#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/is_tests.h"

namespace rlhf::jinja {
namespace {

constexpr int kMaxParseDepth = 200;

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::data: return "template data";
    case Tok::var_begin: return "begin of print statement";
    case Tok::var_end: return "end of print statement";
    case Tok::block_begin: return "begin of statement block";
    case Tok::block_end: return "end of statement block";
    case Tok::name: return t.value;
    case Tok::string: return "string";
    case Tok::integer: return "integer";
    case Tok::floating: return "float";
    case Tok::op: return t.value;
    case Tok::eof: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& where, const SourceMap& map)
      : t_(tokens), where_(where), map_(map) {}

  Body parse() {
    Body body = subparse({});
    if (cur().kind != Tok::eof) fail(cur().pos, "unexpected '" + describe(cur()) + "'");
    return body;
  }

 private:
  const std::vector<Token>& t_;
  const std::string& where_;
  const SourceMap& map_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // for break / continue
  size_t open_pos_ = 0;  // the tag of the statement being parsed, which an unclosed block names
  int soft_ = 0;        // inside an if statement or conditional expression: unknown filters fail at run time

  struct Guard {  // bounds the recursion of the parser
    Parser& p;
    explicit Guard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) p.fail(p.cur().pos, "template nested more than 200 levels deep");
    }
    ~Guard() { --p.depth_; }
  };

  // A frame that resets the soft flag (for bodies, macros, ...), as jinja2's Frame.inner().
  struct Hard {
    Parser& p;
    int saved;
    explicit Hard(Parser& parser) : p(parser), saved(parser.soft_) { p.soft_ = 0; }
    ~Hard() { p.soft_ = saved; }
  };

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    RLHF_FAIL(where_, ": ", map_.describe(pos), ": ", msg);
  }

  const Token& cur() const { return t_[i_]; }
  const Token& look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool skip_op(const char* op) {
    if (cur().is_op(op)) {
      next();
      return true;
    }
    return false;
  }
  bool skip_name(const char* n) {
    if (cur().is_name(n)) {
      next();
      return true;
    }
    return false;
  }
  const Token& expect_op(const char* op) {
    if (!cur().is_op(op)) fail(cur().pos, std::string("expected token '") + op + "', got '" + describe(cur()) + "'");
    return next();
  }
  const Token& expect_name() {
    if (cur().kind != Tok::name) fail(cur().pos, "expected token 'name', got '" + describe(cur()) + "'");
    return next();
  }
  const Token& expect_name(const char* n) {
    if (!cur().is_name(n)) fail(cur().pos, std::string("expected token '") + n + "', got '" + describe(cur()) + "'");
    return next();
  }
  void expect(Tok kind, const char* what) {
    if (cur().kind != kind) fail(cur().pos, std::string("expected token '") + what + "', got '" + describe(cur()) + "'");
    next();
  }

  static ExprPtr make(ExprKind k, size_t pos) { return std::make_unique<Expr>(k, pos); }
  static StmtPtr make_stmt(StmtKind k, size_t pos) { return std::make_unique<Stmt>(k, pos); }

  // ---- statements --------------------------------------------------------------------------------

  bool at_end_token(const std::vector<const char*>& ends) const {
    for (const char* e : ends) {
      if (cur().is_name(e)) return true;
    }
    return false;
  }

  Body subparse(const std::vector<const char*>& ends) {
    Guard g(*this);
    Body body;
    while (cur().kind != Tok::eof) {
      const Token& tok = cur();
      if (tok.kind == Tok::data) {
        auto s = make_stmt(StmtKind::data, tok.pos);
        s->text = tok.value;
        body.push_back(std::move(s));
        next();
      } else if (tok.kind == Tok::var_begin) {
        next();
        auto s = make_stmt(StmtKind::output, cur().pos);
        s->expr = parse_tuple(false, true, {}, false, false);
        expect(Tok::var_end, "end of print statement");
        body.push_back(std::move(s));
      } else if (tok.kind == Tok::block_begin) {
        next();
        if (!ends.empty() && at_end_token(ends)) return body;
        parse_statement(body);
        expect(Tok::block_end, "end of statement block");
      } else {
        fail(tok.pos, "unexpected '" + describe(tok) + "'");
      }
    }
    return body;
  }

  // Body up to one of `ends`; the current token is then that end name (consumed when drop).
  Body parse_statements(const std::vector<const char*>& ends, bool drop) {
    size_t start = open_pos_;
    skip_op(":");
    expect(Tok::block_end, "end of statement block");
    Body body = subparse(ends);
    if (cur().kind == Tok::eof) {
      std::string names;
      for (const char* e : ends) names += (names.empty() ? "'" : " or '") + std::string(e) + "'";
      fail(start, "unexpected end of template; this block needs " + names);
    }
    if (drop) next();
    return body;
  }

  void parse_statement(Body& body) {
    const Token& tok = cur();
    struct Opener {  // open_pos_ is this statement's tag while it is parsed
      size_t& pos;
      size_t saved;
      ~Opener() { pos = saved; }
    } opener{open_pos_, open_pos_};
    open_pos_ = tok.pos;
    if (tok.kind != Tok::name) fail(tok.pos, "tag name expected");
    const std::string& n = tok.value;
    if (n == "for") return body.push_back(parse_for());
    if (n == "if") return body.push_back(parse_if());
    if (n == "set") return body.push_back(parse_set());
    if (n == "macro") return body.push_back(parse_macro());
    if (n == "call") return body.push_back(parse_call_block());
    if (n == "filter") return body.push_back(parse_filter_block());
    if (n == "with") return body.push_back(parse_with());
    if (n == "print") return parse_print(body);
    if (n == "generation") {
      auto s = make_stmt(StmtKind::generation, tok.pos);
      next();
      Hard h(*this);
      int saved_loops = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_statements({"endgeneration"}, true);
      loop_depth_ = saved_loops;
      return body.push_back(std::move(s));
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) fail(tok.pos, "'" + n + "' outside of a for loop");
      body.push_back(make_stmt(n == "break" ? StmtKind::break_ : StmtKind::continue_, tok.pos));
      next();
      return;
    }
    if (n == "block" || n == "extends" || n == "include" || n == "import" || n == "from" || n == "autoescape") {
      fail(tok.pos, "the '" + n + "' statement is not supported by rlhf's Jinja engine (chat templates do not use it)");
    }
    fail(tok.pos, "Encountered unknown tag '" + n + "'.");
  }

  StmtPtr parse_for() {
    auto s = make_stmt(StmtKind::for_, next().pos);
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) {
      Hard h(*this);
      s->test = parse_expression(true);
    }
    if (cur().is_name("recursive")) fail(cur().pos, "recursive for loops are not supported by rlhf's Jinja engine");
    {
      Hard h(*this);
      ++loop_depth_;
      s->body = parse_statements({"endfor", "else"}, false);
      --loop_depth_;
    }
    if (next().value == "else") {
      Hard h(*this);
      s->else_body = parse_statements({"endfor"}, true);
    }
    return s;
  }

  StmtPtr parse_if() {
    auto s = make_stmt(StmtKind::if_, next().pos);
    ++soft_;
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const Token& t = next();
      if (t.value == "elif") continue;
      if (t.value == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    --soft_;
    return s;
  }

  StmtPtr parse_set() {
    auto s = make_stmt(StmtKind::set, next().pos);
    s->target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      s->expr = parse_tuple(false, true, {}, false, false);
      return s;
    }
    s->kind = StmtKind::set_block;
    s->expr = parse_filter(nullptr, false);
    Hard h(*this);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!cur().is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      Param p;
      p.name = parse_assign_target(false, true, {}, false)->name;
      if (skip_op("=")) {
        p.default_value = parse_expression(true);
      } else if (!s.params.empty() && s.params.back().default_value) {
        fail(cur().pos, "non-default argument follows default argument");
      }
      s.params.push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(StmtKind::macro, next().pos);
    s->text = parse_assign_target(false, true, {}, false)->name;
    Hard h(*this);
    parse_signature(*s);
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved_loops;
    scan_special_names(*s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(StmtKind::call_block, next().pos);
    Hard h(*this);
    if (cur().is_op("(")) parse_signature(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::call) fail(s->pos, "expected call");
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved_loops;
    scan_special_names(*s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(StmtKind::filter_block, next().pos);
    Hard h(*this);
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(StmtKind::with, next().pos);
    Hard h(*this);
    while (cur().kind != Tok::block_end) {
      if (!s->assigns.empty()) expect_op(",");
      ExprPtr target = parse_assign_target(true, false, {}, false);
      expect_op("=");
      s->assigns.emplace_back(std::move(target), parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  void parse_print(Body& body) {
    next();
    bool first = true;
    while (cur().kind != Tok::block_end) {
      if (!first) expect_op(",");
      first = false;
      auto s = make_stmt(StmtKind::output, cur().pos);
      s->expr = parse_expression(true);
      body.push_back(std::move(s));
    }
  }

  // Whether a macro or call block body refers to caller / varargs / kwargs.
  static void scan_expr(const Expr* e, Stmt& s) {
    if (!e) return;
    if (e->kind == ExprKind::name) {
      if (e->name == "caller") s.uses_caller = true;
      if (e->name == "varargs") s.uses_varargs = true;
      if (e->name == "kwargs") s.uses_kwargs = true;
    }
    scan_expr(e->a.get(), s);
    scan_expr(e->b.get(), s);
    scan_expr(e->c.get(), s);
    scan_expr(e->dyn_args.get(), s);
    scan_expr(e->dyn_kwargs.get(), s);
    for (const auto& x : e->items) scan_expr(x.get(), s);
    for (const auto& kv : e->kwargs) scan_expr(kv.second.get(), s);
  }
  static void scan_body(const Body& body, Stmt& s) {
    for (const auto& st : body) {
      scan_expr(st->target.get(), s);
      scan_expr(st->expr.get(), s);
      scan_expr(st->test.get(), s);
      for (const auto& [test, b] : st->branches) {
        scan_expr(test.get(), s);
        scan_body(b, s);
      }
      for (const auto& p : st->params) scan_expr(p.default_value.get(), s);
      for (const auto& [t, v] : st->assigns) scan_expr(v.get(), s);
      scan_body(st->body, s);
      scan_body(st->else_body, s);
    }
  }
  static void scan_special_names(Stmt& s) {
    scan_body(s.body, s);
    for (const auto& p : s.params) scan_expr(p.default_value.get(), s);
  }

  // ---- assignment targets --------------------------------------------------------------------------

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, const std::vector<const char*>& extra_end,
                              bool with_namespace) {
    ExprPtr target;
    if (name_only) {
      const Token& t = expect_name();
      target = make(ExprKind::name, t.pos);
      target->name = t.value;
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end, false, with_namespace);
    } else {
      target = parse_primary(with_namespace);
    }
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& e) const {
    if (e.kind == ExprKind::name || e.kind == ExprKind::ns_ref) {
      if (e.kind == ExprKind::name && e.name == "loop") {
        fail(e.pos, "Can't assign to special loop variable");
      }
      return;
    }
    if (e.kind == ExprKind::tuple) {
      for (const auto& x : e.items) check_assignable(*x);
      return;
    }
    fail(e.pos, "can't assign to this expression");
  }

  // ---- expressions ----------------------------------------------------------------------------------

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    Guard g(*this);
    ExprPtr expr1 = parse_or();
    while (cur().is_name("if")) {
      size_t pos = next().pos;
      ++soft_;
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      --soft_;
      auto n = make(ExprKind::cond, pos);
      n->b = std::move(expr2);  // test
      n->a = std::move(expr1);  // value when true
      n->c = std::move(expr3);  // value when false (may be null)
      expr1 = std::move(n);
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (cur().is_name("or")) {
      size_t pos = next().pos;
      auto n = make(ExprKind::or_, pos);
      n->a = std::move(left);
      n->b = parse_and();
      left = std::move(n);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (cur().is_name("and")) {
      size_t pos = next().pos;
      auto n = make(ExprKind::and_, pos);
      n->a = std::move(left);
      n->b = parse_not();
      left = std::move(n);
    }
    return left;
  }

  ExprPtr parse_not() {
    Guard g(*this);
    if (cur().is_name("not")) {
      auto n = make(ExprKind::not_, next().pos);
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t pos = cur().pos;
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      const Token& t = cur();
      if (t.kind == Tok::op && (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" ||
                                t.value == ">" || t.value == ">=")) {
        op = t.value;
        next();
      } else if (t.is_name("in")) {
        op = "in";
        next();
      } else if (t.is_name("not") && look().is_name("in")) {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(ExprKind::compare, pos);
        cmp->a = std::move(expr);
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(expr);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (cur().is_op("+") || cur().is_op("-")) {
      const Token& t = next();
      auto n = make(t.value == "+" ? ExprKind::add : ExprKind::sub, t.pos);
      n->a = std::move(left);
      n->b = parse_concat();
      left = std::move(n);
    }
    return left;
  }

  ExprPtr parse_concat() {
    size_t pos = cur().pos;
    ExprPtr first = parse_math2();
    if (!cur().is_op("~")) return first;
    auto n = make(ExprKind::concat, pos);
    n->items.push_back(std::move(first));
    while (skip_op("~")) n->items.push_back(parse_math2());
    return n;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (cur().is_op("*") || cur().is_op("/") || cur().is_op("//") || cur().is_op("%")) {
      const Token& t = next();
      ExprKind k = t.value == "*" ? ExprKind::mul : t.value == "/" ? ExprKind::div
                 : t.value == "//" ? ExprKind::floordiv : ExprKind::mod;
      auto n = make(k, t.pos);
      n->a = std::move(left);
      n->b = parse_pow();
      left = std::move(n);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (cur().is_op("**")) {
      size_t pos = next().pos;
      auto n = make(ExprKind::pow, pos);
      n->a = std::move(left);
      n->b = parse_unary(true);
      left = std::move(n);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Guard g(*this);
    ExprPtr node;
    if (cur().is_op("-") || cur().is_op("+")) {
      const Token& t = next();
      node = make(t.value == "-" ? ExprKind::neg : ExprKind::pos, t.pos);
      node->a = parse_unary(false);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    Guard g(*this);
    const Token& t = cur();
    if (t.kind == Tok::name) {
      next();
      if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
        auto n = make(ExprKind::constant, t.pos);
        n->value = Value::boolean(t.value == "true" || t.value == "True");
        return n;
      }
      if (t.value == "none" || t.value == "None") {
        auto n = make(ExprKind::constant, t.pos);
        n->value = Value::none();
        return n;
      }
      if (with_namespace && cur().is_op(".")) {
        next();
        auto n = make(ExprKind::ns_ref, t.pos);
        n->name = t.value;
        n->value = Value::string(expect_name().value);
        return n;
      }
      auto n = make(ExprKind::name, t.pos);
      n->name = t.value;
      return n;
    }
    if (t.kind == Tok::string) {
      std::string s;
      size_t pos = t.pos;
      while (cur().kind == Tok::string) s += next().value;
      auto n = make(ExprKind::constant, pos);
      n->value = Value::string(std::move(s));
      return n;
    }
    if (t.kind == Tok::integer || t.kind == Tok::floating) {
      next();
      auto n = make(ExprKind::constant, t.pos);
      n->value = t.kind == Tok::integer ? Value::integer(t.ival) : Value::floating(t.fval);
      return n;
    }
    if (t.is_op("(")) {
      next();
      ExprPtr n = parse_tuple(false, true, {}, true, false);
      expect_op(")");
      return n;
    }
    if (t.is_op("[")) return parse_list();
    if (t.is_op("{")) return parse_dict();
    fail(t.pos, "unexpected '" + describe(t) + "'");
  }

  bool is_tuple_end(const std::vector<const char*>& extra_end) const {
    const Token& t = cur();
    if (t.kind == Tok::var_end || t.kind == Tok::block_end || t.is_op(")")) return true;
    for (const char* e : extra_end) {
      if (t.is_name(e)) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<const char*>& extra_end,
                      bool explicit_parens, bool with_namespace) {
    Guard g(*this);
    size_t pos = cur().pos;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (cur().is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail(cur().pos, "Expected an expression, got '" + describe(cur()) + "'");
    }
    auto n = make(ExprKind::tuple, pos);
    n->items = std::move(args);
    return n;
  }

  ExprPtr parse_list() {
    auto n = make(ExprKind::list, expect_op("[").pos);
    while (!cur().is_op("]")) {
      if (!n->items.empty()) expect_op(",");
      if (cur().is_op("]")) break;
      n->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return n;
  }

  ExprPtr parse_dict() {
    auto n = make(ExprKind::dict, expect_op("{").pos);
    while (!cur().is_op("}")) {
      if (!n->items.empty()) expect_op(",");
      if (cur().is_op("}")) break;
      n->items.push_back(parse_expression(true));
      expect_op(":");
      n->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return n;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (cur().is_op(".") || cur().is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (cur().is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (cur().is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (cur().is_name("is")) {
        node = parse_test(std::move(node));
      } else if (cur().is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Guard g(*this);
    const Token& t = next();
    if (t.is_op(".")) {
      const Token& attr = next();
      if (attr.kind == Tok::name) {
        auto n = make(ExprKind::get_attr, t.pos);
        n->a = std::move(node);
        n->name = attr.value;
        return n;
      }
      if (attr.kind != Tok::integer) fail(attr.pos, "expected name or number");
      auto n = make(ExprKind::get_item, t.pos);
      n->a = std::move(node);
      n->b = make(ExprKind::constant, attr.pos);
      n->b->value = Value::integer(attr.ival);
      return n;
    }
    std::vector<ExprPtr> args;
    while (!cur().is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto n = make(ExprKind::get_item, t.pos);
    n->a = std::move(node);
    if (args.size() == 1) {
      n->b = std::move(args[0]);
    } else {
      n->b = make(ExprKind::tuple, t.pos);
      n->b->items = std::move(args);
    }
    return n;
  }

  ExprPtr parse_subscribed() {
    size_t pos = cur().pos;
    ExprPtr start, stop, step;
    if (cur().is_op(":")) {
      next();
    } else {
      ExprPtr node = parse_expression(true);
      if (!cur().is_op(":")) return node;
      next();
      start = std::move(node);
    }
    if (!cur().is_op(":") && !cur().is_op("]") && !cur().is_op(",")) stop = parse_expression(true);
    if (cur().is_op(":")) {
      next();
      if (!cur().is_op("]") && !cur().is_op(",")) step = parse_expression(true);
    }
    auto n = make(ExprKind::slice, pos);
    n->a = std::move(start);
    n->b = std::move(stop);
    n->c = std::move(step);
    return n;
  }

  void parse_call_args(Expr& n) {
    size_t pos = expect_op("(").pos;
    auto ensure = [&](bool ok) {
      if (!ok) fail(pos, "invalid syntax for function call expression");
    };
    bool require_comma = false;
    while (!cur().is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (cur().is_op(")")) break;
      }
      if (cur().is_op("*")) {
        ensure(!n.dyn_args && !n.dyn_kwargs);
        next();
        n.dyn_args = parse_expression(true);
      } else if (cur().is_op("**")) {
        ensure(!n.dyn_kwargs);
        next();
        n.dyn_kwargs = parse_expression(true);
      } else if (cur().kind == Tok::name && look().is_op("=")) {
        ensure(!n.dyn_kwargs);
        std::string key = next().value;
        next();
        n.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!n.dyn_args && !n.dyn_kwargs && n.kwargs.empty());
        n.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto n = make(ExprKind::call, node->pos);
    n->a = std::move(node);
    parse_call_args(*n);
    return n;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (cur().is_op("|") || start_inline) {
      if (!start_inline) next();
      const Token& t = expect_name();
      std::string name = t.value;
      while (cur().is_op(".")) {
        next();
        name += "." + expect_name().value;
      }
      if (!is_jinja_filter(name) && !soft_) fail(t.pos, "No filter named '" + name + "'.");
      auto n = make(ExprKind::filter, t.pos);
      n->a = std::move(node);
      n->name = name;
      if (cur().is_op("(")) parse_call_args(*n);
      node = std::move(n);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    size_t pos = next().pos;
    bool negated = skip_name("not");
    const Token& t = expect_name();
    std::string name = t.value;
    while (cur().is_op(".")) {
      next();
      name += "." + expect_name().value;
    }
    if (!is_jinja_test(name) && !soft_) fail(t.pos, "No test named '" + name + "'.");
    auto n = make(ExprKind::test, pos);
    n->a = std::move(node);
    n->name = name;
    const Token& c = cur();
    if (c.is_op("(")) {
      parse_call_args(*n);
    } else if ((c.kind == Tok::name || c.kind == Tok::string || c.kind == Tok::integer || c.kind == Tok::floating ||
                c.is_op("[") || c.is_op("{")) &&
               !c.is_name("else") && !c.is_name("or") && !c.is_name("and")) {
      if (c.is_name("is")) fail(c.pos, "You cannot chain multiple tests with is");
      ExprPtr arg = parse_postfix(parse_primary(false));
      n->items.push_back(std::move(arg));
    }
    if (!negated) return n;
    auto neg = make(ExprKind::not_, pos);
    neg->a = std::move(n);
    return neg;
  }
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens, const std::string& where, const SourceMap& map) {
  return Parser(tokens, where, map).parse();
}

}  // namespace rlhf::jinja
