// `rlhf env`: what the runtime chose on this machine, and how fast its matmuls are.
#include <cstdio>

#include "cli/commands.h"
#include "core/cpu.h"
#include "core/parallel.h"
#include "core/runtime.h"
#include "io/json.h"
#include "model/small_gemm.h"

namespace rlhf::cli {

Command add_env(CLI::App& root) {
  auto* app = root.add_subcommand("env", "Show threads, BLAS and its kernel, the allocator set-up (glibc mmap/trim "
                                         "thresholds raised at start-up; RLHF_MALLOC=default keeps glibc's defaults), "
                                         "CPU ISA, libtorch and the libstdc++ loaded, device, the decode kernels, and measured fp32/bf16 "
                                         "matmul GFLOP/s");
  auto json = std::make_shared<bool>(false);
  auto size = std::make_shared<int>(1024);
  app->add_flag("--json", *json, "print one JSON object");
  app->add_option("--size", *size, "matmul size n for the n x n x n measurement")->capture_default_str();
  return {app, [json, size] {
            const RuntimeInfo& rt = runtime();
            const CpuInfo& cpu = cpu_info();
            double f32 = measure_matmul_gflops(torch::kFloat, *size);
            double b16 = measure_matmul_gflops(torch::kBFloat16, *size);
            // Decode-sized fp32 matmuls and attention (model/small_gemm.h) and their threading.
            std::string decode = small_gemm_available()
                                     ? "AVX-512 small-gemm kernels for 1-" + std::to_string(kSmallGemmMaxRows) + " rows"
                                     : "BLAS (no AVX-512 on this CPU)";
            decode += parallel_chunks_available() ? ", OpenMP threads" : ", one thread (built without OpenMP)";
            Json j = {{"threads", rt.threads},
                      {"usable_cores", usable_cores()},
                      {"cpu", cpu.brand},
                      {"isa", rt.isa},
                      {"blas", rt.blas},
                      {"blas_kernel", rt.blas_kernel},
                      {"blas_note", rt.blas_note},
                      {"malloc", rt.malloc},
                      {"libtorch", rt.torch_version},
                      {"libstdcxx", rt.libstdcxx},
                      {"device", rt.device},
                      {"dtype", rt.dtype},
                      {"decode_kernels", decode},
                      {"matmul_n", *size},
                      {"fp32_gflops", f32},
                      {"bf16_gflops", b16}};
            if (*json) {
              std::printf("%s\n", j.dump().c_str());
              return;
            }
            std::printf("cpu          %s (%s)\n", cpu.brand.c_str(), rt.isa.c_str());
            std::printf("threads      %d (usable cores: %d)\n", rt.threads, usable_cores());
            std::printf("blas         %s\n", rt.blas.c_str());
            std::printf("blas kernel  %s%s%s\n", rt.blas_kernel.empty() ? "-" : rt.blas_kernel.c_str(),
                        rt.blas_note.empty() ? "" : "  ", rt.blas_note.c_str());
            std::printf("malloc       %s\n", rt.malloc.c_str());
            std::printf("libtorch     %s\n", rt.torch_version.c_str());
            std::printf("libstdc++    %s\n", rt.libstdcxx.empty() ? "(linked statically)" : rt.libstdcxx.c_str());
            std::printf("device       %s\n", rt.device.c_str());
            std::printf("dtype        %s\n", rt.dtype.c_str());
            std::printf("decode       %s\n", decode.c_str());
            std::printf("matmul %d^3  fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", *size, f32, b16);
          }};
}

}  // namespace rlhf::cli
