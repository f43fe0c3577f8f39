// Argument handling for builtins, filters and methods (see callable.h).
#include "tokenizer/jinja/callable.h"

#include <cstring>

namespace rlhf::jinja {

std::optional<Value> CallArgs::take(size_t index, const char* name) {
  for (size_t i = 0; i < kw.size(); ++i) {
    if (name && kw[i].first == name) {
      if (index < pos.size()) throw OpError(std::string("got multiple values for argument '") + name + "'");
      Value v = std::move(kw[i].second);
      kw.erase(kw.begin() + static_cast<std::ptrdiff_t>(i));
      return v;
    }
  }
  if (index < pos.size()) return pos[index];
  return std::nullopt;
}

void CallArgs::done(const char* fn, size_t max_pos) const {
  if (pos.size() > max_pos) {
    throw OpError(std::string(fn) + "() takes at most " + std::to_string(max_pos) + " argument(s) (" +
                  std::to_string(pos.size()) + " given)");
  }
  if (!kw.empty()) throw OpError(std::string(fn) + "() got an unexpected keyword argument '" + kw[0].first + "'");
}

}  // namespace rlhf::jinja
