// `rlhf init`: a randomly initialised model in Hugging Face layout (tests and the demo start here).
#include "cli/commands.h"
#include "cli/common.h"
#include "core/lock.h"
#include "core/log.h"
#include "model/transformer.h"
#include "train/sft.h"

namespace rlhf::cli {

Command add_init(CLI::App& root) {
  struct Opts {
    std::string arch = "gpt2", size = "tiny", out, save_dtype = "fp32", model_type;
    int64_t n_layer = 0, n_head = 0, n_kv_head = 0, n_embd = 0, n_inner = 0, vocab_size = 0, n_ctx = 0;
    uint64_t seed = 0;
    bool tie = false, untie = false, qkv_bias = false, overwrite = false;
    double rope_theta = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand("init", "Write a randomly initialised model (config.json + model.safetensors)");
  app->add_option("--arch", o->arch, "gpt2 | llama")->capture_default_str();
  app->add_option("--size", o->size, "preset shape: tiny | small | medium | 124m | 350m")->capture_default_str();
  app->add_option("--out", o->out, "output directory")->required();
  app->add_option("--model-type", o->model_type, "llama arch only: llama | mistral | qwen2 (default llama)");
  app->add_option("--n-layer", o->n_layer, "layers (0 = preset)");
  app->add_option("--n-head", o->n_head, "attention heads (0 = preset)");
  app->add_option("--n-kv-head", o->n_kv_head, "key/value heads, < n-head for grouped-query attention (0 = preset)");
  app->add_option("--n-embd", o->n_embd, "width (0 = preset)");
  app->add_option("--n-inner", o->n_inner, "MLP width (0 = 4x width for gpt2, ~8/3x for llama)");
  app->add_option("--vocab-size", o->vocab_size, "vocabulary size (0 = preset)");
  app->add_option("--n-ctx", o->n_ctx, "context length (0 = preset)");
  app->add_option("--rope-theta", o->rope_theta, "llama: rotary base (0 = preset)");
  app->add_flag("--tie", o->tie, "tie the output head to the embedding");
  app->add_flag("--untie", o->untie, "separate output head");
  app->add_flag("--qkv-bias", o->qkv_bias, "llama: bias on q/k/v projections");
  app->add_option("--seed", o->seed, "initialisation seed")->capture_default_str();
  app->add_option("--save-dtype", o->save_dtype, "fp32 | bf16 | fp16 on disk")->capture_default_str();
  add_overwrite_option(app, o->overwrite);
  return {app, [o] {
            torch::ScalarType dt = parse_save_dtype(o->save_dtype);
            ModelConfig base = preset_config(o->arch, o->size);
            Json j = base.to_json();
            bool gpt2 = base.arch == Arch::GPT2;
            auto set = [&](const char* gkey, const char* lkey, int64_t v) {
              if (v > 0) j[gpt2 ? gkey : lkey] = v;
            };
            set("n_layer", "num_hidden_layers", o->n_layer);
            set("n_head", "num_attention_heads", o->n_head);
            set("n_embd", "hidden_size", o->n_embd);
            set("n_inner", "intermediate_size", o->n_inner);
            set("vocab_size", "vocab_size", o->vocab_size);
            set("n_positions", "max_position_embeddings", o->n_ctx);
            if (!gpt2) {
              if (o->n_kv_head > 0) j["num_key_value_heads"] = o->n_kv_head;
              else if (o->n_head > 0) j["num_key_value_heads"] = o->n_head;
              if (o->n_embd > 0 || o->n_head > 0) j.erase("head_dim");
              if (o->n_embd > 0 && o->n_inner == 0) j["intermediate_size"] = ((o->n_embd * 8 / 3) + 63) / 64 * 64;
              if (o->rope_theta > 0) j["rope_theta"] = o->rope_theta;
              if (o->qkv_bias) j["attention_bias"] = true;
              if (!o->model_type.empty()) j["model_type"] = o->model_type;
            } else {
              if (o->n_embd > 0 && o->n_inner == 0) j["n_inner"] = nullptr;
              RLHF_CHECK(o->n_kv_head == 0 || o->n_kv_head == o->n_head, "--n-kv-head: gpt2 has no grouped-query attention");
            }
            RLHF_CHECK(!(o->tie && o->untie), "--tie and --untie exclude each other");
            if (o->tie) j["tie_word_embeddings"] = true;
            if (o->untie) j["tie_word_embeddings"] = false;
            ModelConfig cfg = ModelConfig::from_json(j, "init options");
            DirLock lock(o->out);
            prepare_model_output_dir(o->out, o->overwrite);
            auto model = make_model(cfg, o->seed);
            save_model(*model, o->out, dt);
            log_info("wrote ", cfg.describe(), " to ", o->out);
          }};
}

}  // namespace rlhf::cli
