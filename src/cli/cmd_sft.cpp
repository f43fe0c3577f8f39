// `rlhf sft`: supervised fine-tuning of a Hugging Face causal LM on JSONL data (full or LoRA).
#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "train/sft.h"

namespace rlhf::cli {

Command add_sft(CLI::App& root) {
  auto c = std::make_shared<SftConfig>();
  c->train.adam.lr = 2e-5;
  auto* app = root.add_subcommand(
      "sft",
      "Supervised fine-tuning. Data (JSONL, one example per line): {\"text\"} | {\"prompt\",\"completion\"} | "
      "{\"messages\":[{\"role\",\"content\"},...]} | {\"prompt\":[messages],\"completion\":[messages]}. "
      "Loss on completion/assistant tokens only unless --loss-on all; records with \"label\": false (KTO's "
      "undesirable completions) are skipped and counted. Writes a Hugging Face model directory (or a PEFT adapter "
      "with --lora).");
  add_config_option(app);
  app->add_option("--model", c->model, "base model directory (config.json, model.safetensors, tokenizer)")->required();
  app->add_option("--tokenizer", c->tokenizer, "tokenizer directory or file (default: the model directory)");
  app->add_option("--data", c->data, "training JSONL")->required();
  app->add_option("--eval-data", c->eval_data, "held-out JSONL for eval loss and perplexity");
  app->add_option("--eval-split", c->eval_split, "fraction of --data held out when no --eval-data")->capture_default_str();
  app->add_option("--max-length,--max-seq-length", c->data_opts.max_length, "tokens per example; longer ones keep their start")
      ->capture_default_str();
  app->add_option("--loss-on", [c](const CLI::results_t& r) {
       RLHF_CHECK(r[0] == "completion" || r[0] == "all", "--loss-on must be completion or all");
       c->data_opts.loss_on_all = r[0] == "all";
       return true;
     }, "completion (prompt tokens masked) | all")->default_str("completion");
  add_chat_template_options(app, c->data_opts.chat_template, "for message-list data");
  app->add_flag("!--no-eos", c->data_opts.add_eos, "do not end text/completions with EOS");
  app->add_flag("--skip-bad-lines", c->data_opts.skip_bad_lines, "skip malformed lines (counted) instead of stopping");
  app->add_flag("--packing", c->packing, "pack short examples into full rows (attention stays within each example)");
  app->add_option("--dropout", c->dropout, "model dropout while training (-1 = as in config.json)")->capture_default_str();
  app->add_option("--save-dtype", c->save_dtype, "fp32 | bf16 | fp16 for the saved weights")->capture_default_str();
  add_lora_options(app, c->use_lora, c->lora);
  add_train_options(app, c->train);
  return {app, [c, app] {
            c->resolved = resolved_options(app);
            run_sft(*c);
          }};
}

}  // namespace rlhf::cli
