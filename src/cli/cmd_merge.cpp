// `rlhf merge`: fold a PEFT LoRA adapter into its base model's weights.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/lock.h"
#include "core/log.h"
#include "model/lora.h"
#include "train/sft.h"

namespace rlhf::cli {

Command add_merge(CLI::App& root) {
  struct Opts {
    std::string model, adapter, out, save_dtype = "fp32";
    bool overwrite = false;
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand("merge", "Merge a LoRA adapter (PEFT format) into the base model: W += alpha/r * B A");
  app->add_option("--model", o->model, "base model directory")->required();
  app->add_option("--adapter", o->adapter, "adapter directory (adapter_config.json, adapter_model.safetensors)")->required();
  app->add_option("--out", o->out, "output model directory")->required();
  app->add_option("--save-dtype", o->save_dtype, "fp32 | bf16 | fp16")->capture_default_str();
  add_overwrite_option(app, o->overwrite);
  return {app, [o] {
            const torch::ScalarType dt = parse_save_dtype(o->save_dtype);
            DirLock lock(o->out);
            prepare_model_output_dir(o->out, o->overwrite, /*clear=*/false);  // refuse now, before the work
            auto model = load_model(o->model);
            auto cfg = load_lora(*model, o->adapter);
            merge_lora(*model);
            // The tokenizer travels with the model: from the adapter directory if it has one.
            std::shared_ptr<Tokenizer> tok;
            for (const std::string& src : {o->adapter, o->model}) {
              std::error_code ec;
              if (std::filesystem::exists(std::filesystem::path(src) / "tokenizer.json", ec) ||
                  std::filesystem::exists(std::filesystem::path(src) / "tokenizer.model", ec)) {
                tok = Tokenizer::load(src);
                break;
              }
            }
            prepare_model_output_dir(o->out, o->overwrite);  // everything is read: now the old files may go
            save_model(*model, o->out, dt);
            if (tok) tok->save(o->out);
            log_info("merged LoRA r=", cfg.r, " alpha=", cfg.alpha, " into ", o->out);
          }};
}

}  // namespace rlhf::cli
