// Benchmark: the decode-sized matmul y = x W^T of every projection, rlhf's dense() (the small-gemm
// kernel for up to kSmallGemmMaxRows rows, src/model/small_gemm.cpp) against torch::linear (sgemm of
// the BLAS libtorch uses), at GPT-2-124M's shapes and a range of row counts. It picks the row count
// up to which dense() takes the kernel; the end-to-end figures are bench/run_generate.sh's.
//
//   bench_small_gemm [--threads N] [--rows 1,4,8,16,32,64,128] [--seconds 0.3]
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "model/layers.h"
#include "model/small_gemm.h"

using namespace rlhf;

template <class F>
static double gflops(F&& f, double flop, double seconds) {
  f();
  int reps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  while (el < seconds) {
    f();
    ++reps;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return flop * reps / el / 1e9;
}

int main(int argc, char** argv) {
  fix_blas_kernel_or_reexec(argv);
  RuntimeOptions ro;
  std::vector<int64_t> rows = {1, 2, 4, 8, 16, 32, 48, 64, 96, 128};
  double seconds = 0.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") ro.threads = std::stoi(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--rows") {
      rows.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) rows.push_back(std::stoll(t));
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  init_runtime(ro);
  std::fprintf(stderr, "runtime: %s\nsmall-gemm kernel: %s, used by dense() for 1..%lld rows\n", runtime().summary().c_str(),
               small_gemm_available() ? "available" : "not available on this CPU", (long long)kSmallGemmMaxRows);
  torch::NoGradGuard ng;
  struct Shape { const char* name; int64_t in, out; };
  const Shape shapes[] = {{"qkv 768->2304", 768, 2304}, {"proj 768->768", 768, 768}, {"fc 768->3072", 768, 3072},
                          {"fc2 3072->768", 3072, 768}, {"head 768->50257", 768, 50257}};
  std::printf("%-18s %5s %14s %14s %7s\n", "shape", "rows", "dense GFLOP/s", "linear GFLOP/s", "ratio");
  for (const auto& s : shapes) {
    auto w = torch::randn({s.out, s.in}) * 0.02;
    auto b = torch::randn({s.out});
    for (auto r : rows) {
      auto x = torch::randn({r, s.in});
      double flop = 2.0 * double(r) * double(s.in) * double(s.out);
      double ours = gflops([&] { dense(x, w, b); }, flop, seconds);
      double theirs = gflops([&] { torch::linear(x, w, b); }, flop, seconds);
      std::printf("%-18s %5lld %14.1f %14.1f %6.2fx\n", s.name, (long long)r, ours, theirs, ours / theirs);
    }
  }
}
