// `rlhf merge`: fold a PEFT LoRA adapter into its base model's weights.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/log.h"
#include "model/lora.h"
#include "train/sft.h"

namespace rlhf::cli {

Command add_merge(CLI::App& root) {
  struct Opts {
    std::string model, adapter, out, save_dtype = "fp32";
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand("merge", "Merge a LoRA adapter (PEFT format) into the base model: W += alpha/r * B A");
  app->add_option("--model", o->model, "base model directory")->required();
  app->add_option("--adapter", o->adapter, "adapter directory (adapter_config.json, adapter_model.safetensors)")->required();
  app->add_option("--out", o->out, "output model directory")->required();
  app->add_option("--save-dtype", o->save_dtype, "fp32 | bf16 | fp16")->capture_default_str();
  return {app, [o] {
            auto model = load_model(o->model);
            auto cfg = load_lora(*model, o->adapter);
            merge_lora(*model);
            save_model(*model, o->out, parse_save_dtype(o->save_dtype));
            // The tokenizer travels with the model: from the adapter directory if it has one.
            for (const std::string& src : {o->adapter, o->model}) {
              std::error_code ec;
              if (std::filesystem::exists(std::filesystem::path(src) / "tokenizer.json", ec) ||
                  std::filesystem::exists(std::filesystem::path(src) / "tokenizer.model", ec)) {
                Tokenizer::load(src)->save(o->out);
                break;
              }
            }
            log_info("merged LoRA r=", cfg.r, " alpha=", cfg.alpha, " into ", o->out);
          }};
}

}  // namespace rlhf::cli
