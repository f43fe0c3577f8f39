// A compiled Jinja template and its render, the way transformers' apply_chat_template renders a
// chat_template: jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
// loopcontrols extension (break / continue), `{% generation %}` blocks (whose byte spans the render
// reports, for assistant masks), transformers' tojson, raise_exception and strftime_now. Syntax
// errors are thrown by the constructor, runtime errors by render(); both are rlhf::Error naming
// `where` and the template line and column, so a render that fails is never a wrong render.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/value.h"

namespace rlhf::jinja {

struct RenderOptions {
  std::string date;  // strftime_now's clock: "YYYY-MM-DD" pins it at midnight ("" = the local time now)
  Limits limits;
};

struct RenderOutput {
  std::string text;
  std::vector<std::pair<size_t, size_t>> generation_spans;  // bytes [begin, end) of each {% generation %} block
};

using Vars = std::vector<std::pair<std::string, Value>>;

class Template {
 public:
  explicit Template(std::string_view source, std::string where = "chat template");

  RenderOutput render(const Vars& vars, const RenderOptions& options = {}) const;
  // Whether the source has a {% generation %} block (transformers' test for assistant masks).
  bool has_generation() const { return has_generation_; }
  const std::string& where() const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> c_;
  bool has_generation_ = false;
};

// JSON values as templates see them: objects become dicts in their key order (use ordered_json
// to keep a file's order, as Python's json.load does), arrays lists, numbers int or float.
Value value_from_json(const nlohmann::ordered_json& j);
Value value_from_json(const nlohmann::json& j);

// "YYYY-MM-DD" as a valid calendar date, or an rlhf::Error naming `where`.
void check_date(const std::string& date, const std::string& where);

}  // namespace rlhf::jinja
