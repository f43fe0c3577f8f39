// `rlhf pretrain`: train a small base model (and, if none is given, its tokenizer) from raw text.
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "train/sft.h"

namespace rlhf::cli {

Command add_pretrain(CLI::App& root) {
  auto c = std::make_shared<PretrainConfig>();
  c->train.adam.lr = 1e-3;
  c->train.schedule.warmup_ratio = 0.05;
  c->train.adam.weight_decay = 0.1;
  auto* app = root.add_subcommand("pretrain", "Train a fresh causal LM (and a byte-level BPE tokenizer unless "
                                              "--tokenizer is given) on raw text: documents joined with EOS, cut "
                                              "into rows of --seq-len tokens");
  add_config_option(app);
  app->add_option("--text", c->text, "text files (one document per line) or JSONL files ({\"text\": ...})")->required();
  app->add_option("--tokenizer", c->tokenizer, "existing tokenizer (default: train one on --text)");
  app->add_option("--vocab-size", c->vocab_size, "vocabulary of the trained tokenizer")->capture_default_str();
  app->add_option("--chat-template", c->chat_template,
                  "chat template written into the trained tokenizer's config (plain | chatml | ...; \"\" = none)")
      ->capture_default_str();
  app->add_option("--arch", c->arch, "gpt2 | llama")->capture_default_str();
  app->add_option("--size", c->size, "preset shape: tiny | small | medium | 124m | 350m")->capture_default_str();
  app->add_option("--n-layer", c->n_layer, "layers (0 = preset)");
  app->add_option("--n-embd", c->n_embd, "width (0 = preset)");
  app->add_option("--n-head", c->n_head, "heads (0 = preset)");
  app->add_option("--seq-len", c->seq_len, "tokens per training row")->capture_default_str();
  app->add_option("--n-ctx", c->n_ctx, "model context (0 = max(seq-len, preset))")->capture_default_str();
  app->add_option("--eval-split", c->eval_split, "fraction of rows held out for eval loss")->capture_default_str();
  app->add_option("--save-dtype", c->save_dtype, "fp32 | bf16 | fp16")->capture_default_str();
  add_train_options(app, c->train);
  return {app, [c, app] {
            c->resolved = resolved_options(app);
            run_pretrain(*c);
          }};
}

}  // namespace rlhf::cli
