// Benchmark: decode tokens/s of the batched KV-cache generator at a given batch size, plus the
// memory-bandwidth bound for batch 1 (weight bytes per token / measured copy bandwidth).
// bench/generate.py is the PyTorch-Python twin (Hugging Face generate); bench/run_generate.sh
// runs both and prints the ratios.
//
//   bench_generate [--arch gpt2] [--n-layer 6 --n-embd 512 --n-head 8 | --size 124m] [--batch 32]
//                  [--prompt 16] [--new 128] [--dtype fp32|bf16] [--threads N] [--device cpu|cuda]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/runtime.h"
#include "generate/generator.h"

using namespace rlhf;

static double copy_bandwidth_gbs() {
  auto a = torch::randn({64 << 20}, torch::TensorOptions().device(device())), b = torch::empty_like(a);  // 256 MB each
  b.copy_(a);
  synchronize_device();
  auto t0 = std::chrono::steady_clock::now();
  const int reps = 5;
  for (int i = 0; i < reps; ++i) b.copy_(a);
  synchronize_device();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(a.numel()) * 4 * reps / el / 1e9;  // read + write
}

int main(int argc, char** argv) {
  fix_blas_kernel_or_reexec(argv);
  std::string arch = "gpt2", size, dtype = "fp32", dev = "cpu";
  int64_t n_layer = 6, n_embd = 512, n_head = 8, batch = 32, prompt = 16, new_tokens = 128;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--arch") arch = v;
    else if (k == "--size") size = v;
    else if (k == "--n-layer") n_layer = std::stoll(v);
    else if (k == "--n-embd") n_embd = std::stoll(v);
    else if (k == "--n-head") n_head = std::stoll(v);
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--prompt") prompt = std::stoll(v);
    else if (k == "--new") new_tokens = std::stoll(v);
    else if (k == "--dtype") dtype = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--device") dev = v;
  }
  RuntimeOptions ro;
  ro.dtype = dtype;
  ro.threads = threads;
  ro.device = dev;
  init_runtime(ro);
  std::fprintf(stderr, "%s\n", runtime().summary().c_str());
  ModelConfig cfg = preset_config(arch, size.empty() ? "124m" : size);
  if (size.empty()) {
    Json j = cfg.to_json();
    j["n_layer"] = n_layer;
    j["n_embd"] = n_embd;
    j["n_head"] = n_head;
    j["n_inner"] = nullptr;
    cfg = ModelConfig::from_json(j, "bench");
  }
  auto model = make_model(cfg, 0);
  auto gen = at::detail::createCPUGenerator(1);
  auto ids = torch::randint(cfg.vocab_size, {batch, prompt}, gen, torch::kLong);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < batch; ++b)
    prompts.emplace_back(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + prompt);
  GenerateParams p;
  p.max_new_tokens = new_tokens;
  p.batch_rows = batch;
  p.sampling.temperature = 1.0f;
  {  // warm-up at the measured batch size (CUDA loads or JIT-compiles kernels per shape on first use)
    GenerateParams w = p;
    w.max_new_tokens = std::min<int64_t>(8, new_tokens);
    generate(*model, prompts, w);
  }
  GenerateStats st;
  auto t0 = std::chrono::steady_clock::now();
  generate(*model, prompts, p, &st);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double weight_bytes = double(cfg.num_parameters()) * (dtype == "bf16" ? 2 : 4);
  double bw = copy_bandwidth_gbs();
  std::printf("{\"impl\":\"rlhf-cpp\",\"model\":\"%s\",\"params_m\":%.1f,\"dtype\":\"%s\",\"batch\":%lld,"
              "\"prompt\":%lld,\"new\":%lld,\"threads\":%d,\"device\":\"%s\",\"tokens_per_s\":%.2f,\"decode_tokens_per_s\":%.2f,"
              "\"copy_gbs\":%.2f,\"bandwidth_bound_tokens_per_s\":%.2f}\n",
              cfg.describe().c_str(), cfg.num_parameters() / 1e6, dtype.c_str(), (long long)batch,
              (long long)prompt, (long long)new_tokens, runtime().threads, runtime().device.c_str(), double(st.generated_tokens) / total,
              double(st.generated_tokens) / st.decode_s, bw, bw * 1e9 / weight_bytes);
  return 0;
}
