// Errors: RLHF_CHECK(cond, "what went wrong", ..., "; what to do") throws rlhf::Error carrying the
// message and the source location. Only src/cli/main.cpp catches, prints one line, exits non-zero.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace rlhf {

struct Error : std::runtime_error {
  Error(const std::string& msg, const char* file, int line)
      : std::runtime_error(msg), file(file), line(line) {}
  const char* file;
  int line;
};

namespace detail {
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}
[[noreturn]] void fail(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace rlhf

#define RLHF_CHECK(cond, ...)                                                         \
  do {                                                                                \
    if (!(cond)) ::rlhf::detail::fail(__FILE__, __LINE__, ::rlhf::detail::cat(__VA_ARGS__)); \
  } while (0)

#define RLHF_FAIL(...) ::rlhf::detail::fail(__FILE__, __LINE__, ::rlhf::detail::cat(__VA_ARGS__))
