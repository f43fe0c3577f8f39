// `rlhf logprobs`: log p(ids[i+1] | ids[0..i]) under a model, in fp32, as one JSON line (checks use it).
#include <cstdio>

#include "cli/commands.h"
#include "core/runtime.h"
#include "io/json.h"
#include "model/logprobs.h"
#include "model/lora.h"

namespace rlhf::cli {

Command add_logprobs(CLI::App& root) {
  auto model_dir = std::make_shared<std::string>();
  auto ids_text = std::make_shared<std::string>();
  auto* app = root.add_subcommand("logprobs", "Print {\"ids\":[...],\"logprobs\":[...]} with logprobs[i] = "
                                              "log p(ids[i+1] | ids[0..i]), computed in fp32");
  app->add_option("--model", *model_dir, "Hugging Face model directory or PEFT adapter")->required();
  app->add_option("--ids", *ids_text, "comma-separated token ids, e.g. 5,17,300")->required();
  return {app, [model_dir, ids_text] {
            auto ids = parse_id_list(*ids_text, "--ids");
            RLHF_CHECK(ids.size() >= 2, "--ids: need at least two ids to score one transition");
            auto model = load_model_or_adapter(*model_dir);
            merge_lora(*model);
            const ModelConfig& cfg = model->config();
            RLHF_CHECK(cfg.head == Head::LM, *model_dir, ": is a ", cfg.model_type,
                       " sequence-classification (score) model; logprobs needs a causal LM");
            for (auto id : ids)
              RLHF_CHECK(id >= 0 && id < cfg.vocab_size, "--ids: token id ", id, " is outside the model's vocabulary [0, ",
                         cfg.vocab_size, ")");
            RLHF_CHECK(int64_t(ids.size()) <= cfg.n_ctx, "--ids: ", ids.size(), " tokens exceed the model's context of ",
                       cfg.n_ctx, " positions");
            model->eval();
            torch::NoGradGuard ng;
            auto t = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device());
            auto lp = sequence_logprobs(*model, t).squeeze(0).to(torch::kCPU).to(torch::kDouble);
            std::vector<double> out(lp.data_ptr<double>(), lp.data_ptr<double>() + lp.numel());
            Json j = {{"ids", ids}, {"logprobs", out}};
            std::printf("%s\n", j.dump().c_str());
          }};
}

}  // namespace rlhf::cli
