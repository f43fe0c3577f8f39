#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>

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

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string unknown_option_message(const CLI::App& root, const std::vector<std::string>& args) {
  // The subcommand chain the arguments name, and every long option it and the root take.
  std::vector<const CLI::App*> chain = {&root};
  std::string command = "rlhf";
  for (const auto& a : args) {
    for (const CLI::App* sub : chain.back()->get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == a) {
        chain.push_back(sub);
        command += " " + a;
        break;
      }
  }
  std::set<std::string> known;
  for (const CLI::App* app : chain)
    for (const CLI::Option* o : app->get_options())
      for (const auto& n : o->get_lnames()) known.insert(n);
  for (const auto& a : args) {
    if (a.size() < 3 || a.rfind("--", 0) != 0) continue;
    std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    if (known.count(name)) continue;
    // Underscores as Python spells them (--learning_rate) are the same option.
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    std::string best;
    size_t best_d = std::string::npos;
    for (const auto& k : known) {
      size_t d = edit_distance(dashed, k);
      if (d < best_d) best_d = d, best = k;
    }
    std::string hint = best_d <= std::max<size_t>(2, dashed.size() / 3) ? "; did you mean --" + best + "?" : "";
    if (dashed != name && known.count(dashed)) hint = "; options are written with dashes: --" + dashed;
    return "--" + name + " is not an option of `" + command + "`" + hint + " (see `" + command + " --help`)";
  }
  return "";
}

}  // namespace rlhf::cli
