#include <cerrno>
#include <cstdlib>

#include "cli/commands.h"
#include "core/error.h"

namespace rlhf::cli {

std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    RLHF_CHECK(!item.empty(), option, ": empty entry in \"", text, "\"; give comma-separated integers like 5,17,300");
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    RLHF_CHECK(errno == 0 && end && *end == '\0', option, ": \"", item, "\" is not an integer");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

}  // namespace rlhf::cli
