// JSON helpers over nlohmann::json whose errors name the file, the field and the fix.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace rlhf {

using Json = nlohmann::json;

// Parses `text`; `where` names the source in errors ("runs/a/config.json", "data.jsonl:12"). Text
// nested deeper than kMaxJsonDepth objects/lists is refused before parsing.
inline constexpr int64_t kMaxJsonDepth = 128;
Json parse_json(std::string_view text, const std::string& where);
// Deepest nesting of objects and lists in JSON text (strings skipped), without parsing it.
int64_t json_nesting_depth(std::string_view text);
Json read_json_file(const std::filesystem::path& path, std::string_view what = "JSON file");
void write_json_atomic(const std::filesystem::path& path, const Json& j, int indent = 2);

std::string json_type_name(const Json& j);

// j[key] converted to T, or `def` when the key is absent or null. A value of the wrong type is an
// error naming `where` and the key.
template <class T>
T json_get(const Json& j, const char* key, const T& def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception&) {
    RLHF_FAIL(where, ": field \"", key, "\" has the wrong type (", json_type_name(*it), ")");
  }
}

template <class T>
T json_require(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  RLHF_CHECK(it != j.end() && !it->is_null(), where, ": required field \"", key, "\" is missing");
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception&) {
    RLHF_FAIL(where, ": field \"", key, "\" has the wrong type (", json_type_name(*it), ")");
  }
}

}  // namespace rlhf
