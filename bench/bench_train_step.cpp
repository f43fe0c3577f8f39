// Benchmark: forward + backward tokens/s of a GPT-2-shaped model (default 124M, batch 4 x 256),
// fp32 and bf16 autocast, through the same code the trainers use. bench/train_step.py is the
// PyTorch-Python twin; bench/run_train_step.sh runs both and prints the ratios.
//
//   bench_train_step [--size 124m] [--batch 4] [--seq 256] [--steps 5] [--dtype fp32|bf16] [--arch gpt2|llama]
//                    [--threads N] [--device cpu|cuda]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/runtime.h"
#include "model/logprobs.h"
#include "model/transformer.h"

using namespace rlhf;

int main(int argc, char** argv) {
  fix_blas_kernel_or_reexec(argv);
  std::string size = "124m", dtype = "fp32", arch = "gpt2", dev = "cpu";
  int batch = 4, seq = 256, steps = 5, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--size") size = v;
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--seq") seq = std::stoi(v);
    else if (k == "--steps") steps = std::stoi(v);
    else if (k == "--dtype") dtype = v;
    else if (k == "--arch") arch = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--device") dev = v;
  }
  bool pure = dtype == "bf16-pure";
  RuntimeOptions ro;
  ro.dtype = pure ? "fp32" : dtype;
  ro.threads = threads;
  ro.device = dev;
  init_runtime(ro);
  std::fprintf(stderr, "%s\n", runtime().summary().c_str());
  ModelConfig cfg = preset_config(arch, size);
  auto model = make_model(cfg, 0);
  model->set_dropout(0);
  model->train();
  if (pure) model->to(torch::kBFloat16);
  auto gen = at::detail::createCPUGenerator(1);
  auto ids = torch::randint(cfg.vocab_size, {batch, seq + 1}, gen, torch::kLong).to(device());
  auto input = ids.narrow(1, 0, seq), target = ids.narrow(1, 1, seq);
  double best = 1e30, total = 0;
  for (int s = 0; s < steps + 1; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    model->zero_grad();
    torch::Tensor loss;
    {
      ComputeScope cs;
      auto h = model->hidden(input);
      loss = -token_logprobs(*model, h, target).mean();
    }
    loss.backward();
    synchronize_device();
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s == 0) continue;  // warm-up
    best = std::min(best, el);
    total += el;
    std::fprintf(stderr, "step %d: %.3fs loss %.4f\n", s, el, loss.item<double>());
  }
  double tok = double(batch) * seq;
  std::printf("{\"impl\":\"rlhf-cpp\",\"arch\":\"%s\",\"size\":\"%s\",\"dtype\":\"%s\",\"batch\":%d,\"seq\":%d,"
              "\"threads\":%d,\"device\":\"%s\",\"tokens_per_s\":%.2f,\"best_tokens_per_s\":%.2f}\n",
              arch.c_str(), size.c_str(), dtype.c_str(), batch, seq, runtime().threads, runtime().device.c_str(), tok * steps / total,
              tok / best);
  return 0;
}
