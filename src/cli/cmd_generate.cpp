// `rlhf generate`: sample responses from a model for one prompt or a JSONL file of prompts, with
// the batched KV-cache generator; writes JSONL (prompt, responses, logprobs, finished, ...).
#include <cstdio>

#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "cli/common.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/prompts.h"
#include "generate/generator.h"
#include "io/jsonl.h"
#include "model/lora.h"

namespace rlhf::cli {

namespace {

struct GenerateOpts {
  std::string model, tokenizer, prompt, prompts, out;
  GenerateParams gen;
  std::vector<std::string> stop;
  bool no_special = false;
  bool chat = false;
  std::string chat_template;
};

}  // namespace

Command add_generate(CLI::App& root) {
  auto o = std::make_shared<GenerateOpts>();
  auto* app = root.add_subcommand("generate", "Sample responses with the batched KV-cache generator; writes JSONL");
  app->add_option("--model", o->model, "Hugging Face model directory or PEFT adapter")->required();
  app->add_option("--tokenizer", o->tokenizer, "tokenizer directory or file (default: the model directory)");
  auto* one = app->add_option("--prompt", o->prompt, "one prompt text");
  auto* many = app->add_option("--prompts", o->prompts, "JSONL file with {\"prompt\": ...} per line");
  one->excludes(many);
  app->add_option("--out", o->out, "output JSONL (default: stdout)");
  app->add_option("--n", o->gen.n, "samples per prompt (they share the prompt's prefill)")->capture_default_str();
  app->add_option("--max-new-tokens", o->gen.max_new_tokens, "maximum tokens generated per sample")->capture_default_str();
  add_sampling_options(app, o->gen.sampling);
  app->add_option("--seed", o->gen.seed, "run seed; sample j of prompt i always gets the same stream")->capture_default_str();
  app->add_option("--stop", o->stop, "stop strings (repeatable); the text is cut before them");
  app->add_option("--batch-rows", o->gen.batch_rows, "sequences decoded together")->capture_default_str();
  app->add_flag("--no-special-tokens", o->no_special, "do not add the tokenizer's BOS/special tokens to prompts");
  app->add_flag("--chat", o->chat, "render text prompts as a user turn of the chat template, ending in the assistant "
                                   "header (message-list prompts always are)");
  add_chat_template_options(app, o->chat_template, "");
  add_input_limit_options(app);
  return {app, [o] {
            RLHF_CHECK(!o->prompt.empty() || !o->prompts.empty(), "give --prompt TEXT or --prompts FILE.jsonl");
            RLHF_CHECK(o->gen.n >= 1, "--n ", o->gen.n, " must be >= 1");
            RLHF_CHECK(o->gen.max_new_tokens >= 1, "--max-new-tokens ", o->gen.max_new_tokens, " must be >= 1");
            RLHF_CHECK(o->gen.batch_rows >= 1, "--batch-rows ", o->gen.batch_rows, " must be >= 1");
            o->gen.sampling.validate();
            // The output is checked (and opened) now, not after generating everything.
            std::unique_ptr<JsonlWriter> w;
            if (!o->out.empty()) {
              remove_stale_temporaries_of(o->out);
              w = std::make_unique<JsonlWriter>(o->out);
            }
            auto model = load_model_or_adapter(o->model);
            merge_lora(*model);
            auto tok = load_tokenizer_for(o->model, o->tokenizer, model->config());
            std::vector<PromptRecord> prompts;
            PromptOptions po;
            po.chat = o->chat;
            po.chat_template = o->chat_template;
            po.add_special_tokens = !o->no_special;
            po.max_new_tokens = o->gen.max_new_tokens;
            po.n_ctx = model->config().n_ctx;
            if (o->prompts.empty()) {
              JsonlRecord one;
              one.value = Json{{"prompt", o->prompt}};
              one.file = "--prompt";
              one.line = 1;
              prompts = parse_prompts({one}, *tok, po);
            } else {
              prompts = load_prompts(o->prompts, *tok, po);
            }
            std::vector<std::vector<int64_t>> ids;
            for (auto& pr : prompts) ids.push_back(pr.ids);
            GenerateParams p = o->gen;
            p.eos_ids = stop_token_ids(*tok, model->config());
            p.pad_id = tok->pad_id() >= 0 ? tok->pad_id() : 0;
            p.vocab_limit = tok->vocab_size();  // ids past the tokenizer have no text: never sample them
            p.stop_strings = o->stop;
            p.decode = [tok](const std::vector<int64_t>& v) { return tok->decode(v, /*skip_special_tokens=*/true); };
            p.progress = prompts.size() > 1;
            log_info("generating ", p.n, " sample(s) for ", prompts.size(), " prompt(s), ", p.sampling.describe(),
                     ", up to ", p.max_new_tokens, " new tokens");
            GenerateStats st;
            auto res = generate(*model, ids, p, &st);
            log_info("generated ", st.generated_tokens, " tokens: prefill ", format_duration(st.prefill_s), ", decode ",
                     format_duration(st.decode_s), " (", int64_t(double(st.generated_tokens) / std::max(st.decode_s, 1e-9)),
                     " tokens/s)");
            for (size_t i = 0; i < prompts.size(); ++i) {
              Json responses = Json::array(), lps = Json::array(), mlps = Json::array(), fin = Json::array(),
                   reasons = Json::array(), rids = Json::array();
              for (auto& g : res[i]) {
                responses.push_back(g.text);
                lps.push_back(g.logprobs);
                mlps.push_back(g.model_logprobs);
                fin.push_back(g.finished());
                reasons.push_back(g.finish_reason);
                rids.push_back(g.ids);
              }
              Json line = {{"prompt", prompts[i].prompt},        {"responses", responses}, {"logprobs", lps},
                           {"model_logprobs", mlps},    {"finished", fin},        {"finish_reasons", reasons},
                           {"response_ids", rids},      {"prompt_ids", ids[i]}};
              // Other fields of the prompt record (ids, families, ...) travel along.
              for (auto& [k, v] : prompts[i].record.items())
                if (!line.contains(k) && k != "messages") line[k] = v;
              if (w) w->write(line);
              else std::printf("%s\n", line.dump().c_str());
            }
            if (w) {
              w->commit();
              log_info("wrote ", o->out);
            }
          }};
}

}  // namespace rlhf::cli
