#include "io/hf_dirs.h"

#include "core/error.h"
#include "io/json.h"

namespace rlhf {

bool is_adapter_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::exists(dir / "adapter_config.json", ec) && !std::filesystem::exists(dir / "model.safetensors", ec) &&
         !std::filesystem::exists(dir / "model.safetensors.index.json", ec);
}

std::filesystem::path adapter_base_dir(const std::filesystem::path& dir) {
  auto cpath = dir / "adapter_config.json";
  Json ac = read_json_file(cpath, "PEFT adapter config");
  std::string base = json_get<std::string>(ac, "base_model_name_or_path", "", cpath.string());
  RLHF_CHECK(!base.empty(), cpath.string(), ": no base_model_name_or_path; merge the adapter with `rlhf merge --model BASE`");
  std::filesystem::path base_dir = base;
  std::error_code ec;
  if (!std::filesystem::is_directory(base_dir, ec) && std::filesystem::is_directory(dir.parent_path() / base, ec))
    base_dir = dir.parent_path() / base;
  RLHF_CHECK(std::filesystem::is_directory(base_dir, ec), cpath.string(), ": base model \"", base,
             "\" is not a directory here; merge the adapter with `rlhf merge --model BASE --adapter ", dir.string(), "`");
  return base_dir;
}

}  // namespace rlhf
