// Compiling and rendering a template (see template.h).
#include "tokenizer/jinja/template.h"

#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/utf8.h"

namespace rlhf::jinja {

struct Template::Compiled {
  std::string where;
  std::string source;  // normalised
  std::unique_ptr<SourceMap> map;
  Body body;
};

namespace {

bool body_has_generation(const Body& body) {
  for (const StmtPtr& s : body) {
    if (s->kind == StmtKind::generation) return true;
    for (const auto& [test, b] : s->branches) {
      if (body_has_generation(b)) return true;
    }
    if (body_has_generation(s->body) || body_has_generation(s->else_body)) return true;
  }
  return false;
}

template <class J>
Value from_json(const J& j, int depth) {
  if (depth > 200) throw OpError("JSON value nested deeper than 200 levels");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::floating(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value::floating(j.template get<double>());
    case nlohmann::json::value_t::string: {
      std::string s = j.template get<std::string>();
      size_t bad = utf8::find_invalid(s);
      if (bad != std::string::npos) throw OpError("a string passed to the template is not valid UTF-8 (byte " + std::to_string(bad) + ")");
      return Value::string(std::move(s));
    }
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<Value, Value>> items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(Value::string(it.key()), from_json(it.value(), depth + 1));
      return Value::dict(std::move(items));
    }
    default: throw OpError("binary JSON values cannot be passed to a template");
  }
}

std::tm clock_for(const std::string& date) {
  std::tm tm{};
  if (date.empty()) {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
    return tm;
  }
  tm.tm_year = std::stoi(date.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(date.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(date.substr(8, 2));
  tm.tm_isdst = -1;
  std::tm copy = tm;
  timegm(&copy);  // fills in the weekday and day of the year
  tm.tm_wday = copy.tm_wday;
  tm.tm_yday = copy.tm_yday;
  return tm;
}

}  // namespace

void check_date(const std::string& date, const std::string& where) {
  bool shape = date.size() == 10 && date[4] == '-' && date[7] == '-';
  for (size_t i = 0; shape && i < date.size(); ++i) {
    if (i != 4 && i != 7 && (date[i] < '0' || date[i] > '9')) shape = false;
  }
  RLHF_CHECK(shape, where, ": date \"", date, "\" is not YYYY-MM-DD; write e.g. --date 2024-07-26");
  int y = std::stoi(date.substr(0, 4)), m = std::stoi(date.substr(5, 2)), d = std::stoi(date.substr(8, 2));
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  bool ok = m >= 1 && m <= 12 && d >= 1 && d <= kDays[m - 1] && !(m == 2 && d == 29 && !leap) && y >= 1;
  RLHF_CHECK(ok, where, ": date \"", date, "\" is not a calendar date; write e.g. --date 2024-07-26");
}

Template::Template(std::string_view source, std::string where) {
  size_t bad = utf8::find_invalid(source);
  RLHF_CHECK(bad == std::string::npos, where, ": the template is not valid UTF-8 (byte ", bad, ")");
  auto c = std::make_shared<Compiled>();
  c->where = std::move(where);
  c->source = normalise_newlines(source);
  c->map = std::make_unique<SourceMap>(c->source);
  std::vector<Token> tokens = tokenize(c->source, c->where, *c->map);
  c->body = parse_template(tokens, c->where, *c->map);
  has_generation_ = body_has_generation(c->body);
  c_ = std::move(c);
}

const std::string& Template::where() const { return c_->where; }

RenderOutput Template::render(const Vars& vars, const RenderOptions& options) const {
  if (!options.date.empty()) check_date(options.date, c_->where);
  Interpreter in(c_->where, *c_->map, options.limits, clock_for(options.date));
  RenderOutput out;
  try {
    out.text = in.run(c_->body, vars, out.generation_spans);
  } catch (const OpError& e) {
    RLHF_FAIL(c_->where, ": ", e.what());
  }
  return out;
}

Value value_from_json(const nlohmann::ordered_json& j) {
  try {
    return from_json(j, 0);
  } catch (const OpError& e) {
    RLHF_FAIL(e.what());
  }
}
Value value_from_json(const nlohmann::json& j) {
  try {
    return from_json(j, 0);
  } catch (const OpError& e) {
    RLHF_FAIL(e.what());
  }
}

}  // namespace rlhf::jinja
