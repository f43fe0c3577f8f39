// dev: per-op profile of one train step (legacy autograd profiler), aggregated by op name.
#include <torch/csrc/autograd/profiler_legacy.h>
#include "core/runtime.h"
#include "model/logprobs.h"
#include "model/transformer.h"
#include <fstream>
using namespace rlhf;
int main(int argc, char** argv) {
  RuntimeOptions ro; ro.threads = argc > 3 ? atoi(argv[3]) : 1; if (argc > 2) ro.dtype = argv[2]; init_runtime(ro);
  ModelConfig cfg = preset_config("gpt2", argc > 1 ? argv[1] : "medium");
  auto model = make_model(cfg, 0); model->set_dropout(0); model->train();
  auto ids = torch::randint(cfg.vocab_size, {4, 257}, torch::kLong);
  auto input = ids.narrow(1, 0, 256), target = ids.narrow(1, 1, 256);
  for (int s = 0; s < 2; ++s) {
    model->zero_grad(true);
    std::unique_ptr<torch::autograd::profiler::RecordProfile> rp;
    if (s == 1) rp = std::make_unique<torch::autograd::profiler::RecordProfile>("/tmp/trace.json");
    ComputeScope cs0; auto h = model->hidden(input);
    auto loss = -token_logprobs(*model, h, target).mean();
    loss.backward();
  }
}
