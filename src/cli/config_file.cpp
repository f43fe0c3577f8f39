#include "cli/config_file.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "io/json.h"

namespace rlhf::cli {

namespace {

std::string scalar_text(const Json& v, const std::string& where, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) return Json(v).dump();
  RLHF_FAIL(where, ": value of \"", key, "\" must be a string, number, boolean or a list of them");
}

// Index just after the subcommand chain that `--config` belongs to.
size_t insertion_point(const CLI::App& root, const std::vector<std::string>& args, size_t config_at) {
  const CLI::App* app = &root;
  size_t after = 0;
  for (size_t i = 0; i < config_at; ++i) {
    for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == args[i]) {
        app = sub;
        after = i + 1;
        break;
      }
    }
  }
  return after;
}

}  // namespace

std::vector<std::string> expand_config_args(const CLI::App& root, const std::vector<std::string>& in) {
  std::vector<std::string> args = in;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string file;
    size_t consumed = 0;
    if (args[i] == "--config" && i + 1 < args.size()) {
      file = args[i + 1];
      consumed = 2;
    } else if (args[i].rfind("--config=", 0) == 0) {
      file = args[i].substr(9);
      consumed = 1;
    } else {
      continue;
    }
    // `rlhf pipeline --config FILE` reads its own (stage-structured) config.
    if (size_t at = insertion_point(root, args, i); at > 0 && args[at - 1] == "pipeline") continue;
    Json j = read_json_file(file, "config file");
    RLHF_CHECK(j.is_object(), file, ": a config file must be a JSON object of option names and values");
    std::vector<std::string> extra;
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string key = it.key();
      if (!key.empty() && key[0] == '_') continue;  // notes such as "_runtime" (threads, dtype of the run)
      RLHF_CHECK(key != "config", file, ": a config file cannot name another --config");
      std::replace(key.begin(), key.end(), '_', '-');  // "learning_rate" as Hugging Face configs write it
      std::string opt = "--" + key;
      const Json& v = it.value();
      if (v.is_null()) continue;
      if (v.is_boolean()) {
        extra.push_back(opt + "=" + (v.get<bool>() ? "true" : "false"));
      } else if (v.is_array()) {
        if (v.empty()) continue;
        extra.push_back(opt);
        for (const auto& e : v) extra.push_back(scalar_text(e, file, key));
      } else {
        extra.push_back(opt);
        extra.push_back(scalar_text(v, file, key));
      }
    }
    size_t at = insertion_point(root, args, i);
    args.erase(args.begin() + long(i), args.begin() + long(i + consumed));
    args.insert(args.begin() + long(at), extra.begin(), extra.end());
    i = at + extra.size() - 1;
  }
  return args;
}

Json resolved_options(const CLI::App* app) {
  Json j = Json::object();
  for (const CLI::Option* o : app->get_options()) {
    std::string name = o->get_single_name();
    if (o->get_lnames().empty() || name == "help" || name == "config") continue;
    name = o->get_lnames().front();
    if (o->get_type_size_max() == 0) {  // a flag
      j[name] = o->count() > 0 && o->as<bool>();
      continue;
    }
    std::vector<std::string> vals = o->count() > 0 ? o->results() : std::vector<std::string>{};
    if (o->count() == 0 && !o->get_default_str().empty()) vals = {o->get_default_str()};
    auto to_json = [](const std::string& s) -> Json {
      if (s == "true" || s == "false") return s == "true";
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0') {
        long long ll = std::strtoll(s.c_str(), &end, 10);
        if (*end == '\0') return ll;
        return d;
      }
      return s;
    };
    if (o->get_expected_max() > 1) {
      Json arr = Json::array();
      for (auto& v : vals) arr.push_back(to_json(v));
      j[name] = arr;
    } else if (!vals.empty()) {
      j[name] = to_json(vals.back());
    } else {
      j[name] = nullptr;
    }
  }
  // What the data files given as options hold now, so that --resume can tell a changed file.
  Json inputs = Json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::vector<Json> vals = it->is_array() ? std::vector<Json>(it->begin(), it->end()) : std::vector<Json>{*it};
    for (const Json& v : vals)
      if (v.is_string() && !v.get<std::string>().empty())
        if (std::string fp = file_fingerprint(v.get<std::string>()); !fp.empty()) inputs[v.get<std::string>()] = fp;
  }
  if (!inputs.empty()) j["_inputs"] = inputs;
  return j;
}

}  // namespace rlhf::cli
