// What a Hugging Face directory is: a model (config.json + weights) or a PEFT adapter
// (adapter_config.json naming its base model in base_model_name_or_path). Every command that reads
// a model or its tokenizer accepts either; these two functions are where the difference is decided.
#pragma once
#include <filesystem>

namespace rlhf {

// adapter_config.json without weights of its own.
bool is_adapter_dir(const std::filesystem::path& dir);
// The base model directory an adapter names (base_model_name_or_path as given, or relative to the
// adapter's parent directory); an error naming adapter_config.json when it is missing or not there.
std::filesystem::path adapter_base_dir(const std::filesystem::path& adapter_dir);

}  // namespace rlhf
