// Parsing tokenizer_config.json and writing it (with special_tokens_map.json) on save.
#include "tokenizer/config_files.h"

#include "core/error.h"

namespace rlhf {

namespace {

std::string token_field(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  RLHF_CHECK(it->is_object() && it->contains("content") && (*it)["content"].is_string(), where, ": \"", key,
             "\" must be a string or an object with a \"content\" string");
  return (*it)["content"].get<std::string>();
}

// A string, or HF's list of named templates ({"name": "default", "template": ...}).
std::string chat_template_field(const Json& j, const std::string& where) {
  auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  RLHF_CHECK(it->is_array() && !it->empty(), where, ": \"chat_template\" must be a string or a list of "
                                                    "{\"name\", \"template\"} objects");
  for (const auto& t : *it)
    if (t.is_object() && t.contains("name") && t["name"] == "default") return json_require<std::string>(t, "template", where + ".chat_template");
  return json_require<std::string>((*it)[0], "template", where + ".chat_template");
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": expected a JSON object");
  TokenizerConfig c;
  c.bos_token = token_field(j, "bos_token", where);
  c.eos_token = token_field(j, "eos_token", where);
  c.pad_token = token_field(j, "pad_token", where);
  c.unk_token = token_field(j, "unk_token", where);
  if (j.contains("add_bos_token") && !j["add_bos_token"].is_null()) c.add_bos_token = json_require<bool>(j, "add_bos_token", where);
  if (j.contains("add_eos_token") && !j["add_eos_token"].is_null()) c.add_eos_token = json_require<bool>(j, "add_eos_token", where);
  c.chat_template = chat_template_field(j, where);
  if (auto it = j.find("chat_template"); it != j.end() && it->is_array()) {
    for (const auto& t : *it)
      if (t.is_object() && t.contains("name") && t["name"] == "tool_use")
        c.chat_template_tool_use = json_require<std::string>(t, "template", where + ".chat_template");
  }
  // HF writes 1e30 for "no limit".
  double max_length = json_get<double>(j, "model_max_length", 0.0, where);
  c.model_max_length = max_length > 0 && max_length < 1e15 ? int64_t(max_length) : 0;
  return c;
}

void write_tokenizer_config(const std::filesystem::path& dir, const Json& loaded, const TokenizerConfig& config,
                            const std::string& tokenizer_class) {
  Json special = Json::object();
  for (auto [key, value] : {std::pair{"bos_token", &config.bos_token}, {"eos_token", &config.eos_token},
                            {"pad_token", &config.pad_token}, {"unk_token", &config.unk_token}})
    if (!value->empty()) special[key] = *value;
  Json out = loaded;
  if (out.is_null()) {
    out = special;
    out["tokenizer_class"] = tokenizer_class;
    out["clean_up_tokenization_spaces"] = false;  // decode exactly what the tokens spell
    if (config.add_bos_token) out["add_bos_token"] = *config.add_bos_token;
    if (config.add_eos_token) out["add_eos_token"] = *config.add_eos_token;
    if (config.model_max_length > 0) out["model_max_length"] = config.model_max_length;
    if (!config.chat_template.empty()) out["chat_template"] = config.chat_template;
  } else if (out.is_object()) {
    // The file as it was read, but with the special tokens as they are now (a reward model may
    // have been given another pad): a token written as an AddedToken object keeps its form when
    // its content is unchanged; of the tokens the file lacks, only a pad is added.
    for (auto& [key, value] : special.items()) {
      auto it = out.find(key);
      bool same = it != out.end() && ((it->is_string() && *it == value) ||
                                      (it->is_object() && it->contains("content") && (*it)["content"] == value));
      if (!same && (it != out.end() || key == "pad_token")) out[key] = value;
    }
  }
  write_json_atomic(dir / "tokenizer_config.json", out);
  write_json_atomic(dir / "special_tokens_map.json", special);
}

}  // namespace rlhf
