#include "io/json.h"

#include "core/fs.h"

namespace rlhf {

std::string json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return "number";
    default: return "other";
  }
}

int64_t json_nesting_depth(std::string_view text) {
  int64_t depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

Json parse_json(std::string_view text, const std::string& where) {
  // nlohmann's parser is iterative, but dumping, comparing and our own walks recurse: bound the depth.
  if (int64_t d = json_nesting_depth(text); d > kMaxJsonDepth)
    RLHF_FAIL(where, ": JSON nested ", d, " levels deep (at most ", kMaxJsonDepth, " are accepted); the file is corrupt");
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    RLHF_FAIL(where, ": invalid JSON at byte ", e.byte, " (",
              std::string(e.what()).substr(std::string(e.what()).rfind(':') + 2), ")");
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range.406: a number like 1e999
    RLHF_FAIL(where, ": invalid JSON (", e.what(), ")");
  }
}

Json read_json_file(const std::filesystem::path& path, std::string_view what) {
  return parse_json(read_file(path, what), path.string());
}

void write_json_atomic(const std::filesystem::path& path, const Json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace rlhf
