// The CPU/GPU runtime: threads, the BLAS kernel, the compute dtype and the device, chosen once at
// start-up for the machine we are on, and reported (`rlhf env`, and one line per command).
#pragma once
#include <torch/torch.h>

#include <string>

namespace rlhf {

struct RuntimeOptions {
  int threads = 0;             // 0 = all cores this process may use (affinity and cgroup quota)
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string dtype = "fp32";  // fp32 | bf16 (bf16 autocast for matmuls; weights and optimizer stay fp32)
};

struct RuntimeInfo {
  int threads = 1;
  std::string blas;          // "OpenBLAS 0.3.21 ...", "reference BLAS (slow)", ...
  std::string blas_kernel;   // OpenBLAS core in use ("SkylakeX"), empty if not OpenBLAS
  std::string blas_note;     // e.g. "OpenBLAS detected Prescott; restarted with OPENBLAS_CORETYPE=SkylakeX"
  std::string malloc;        // allocator set-up: "glibc, freed memory kept for reuse (...)", ...
  std::string isa;           // best CPU ISA, "AVX512-BF16" ...
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::string torch_version;
  std::string libstdcxx;     // the libstdc++ the loader picked (a mismatch with the compiler's breaks std::filesystem)
  std::string summary() const;  // one line
};

// Call first in main(), before any libtorch work. OpenBLAS chooses its kernel when the library is
// loaded; on CPUs newer than the OpenBLAS release it falls back to a generic one ("Prescott") that
// runs ~10x slower. If that happened (and the user did not set OPENBLAS_CORETYPE), this re-executes
// the program with OPENBLAS_CORETYPE set to the best kernel for this CPU. Returns only if no restart
// is needed. It also restarts (once, together) with GLIBC_TUNABLES raising glibc's mmap and trim
// thresholds, so memory a training step frees is reused instead of returned to the kernel and faulted
// in again (RLHF_MALLOC=default or the user's own glibc.malloc tunables turn this off). Also enables
// oneDNN's AMX kernels where the CPU has them.
void fix_blas_kernel_or_reexec(char** argv);

// Applies threads / device / dtype. Throws rlhf::Error on an unusable choice (e.g. cuda without GPU).
void init_runtime(const RuntimeOptions& opts);
const RuntimeInfo& runtime();
torch::Device device();
bool use_bf16();
// Waits for the work queued on the runtime device (CUDA kernels run asynchronously); no-op on CPU.
// For timings: a clock read without it measures only the queueing.
void synchronize_device();

// True while autocast is on for the device type (inside a bf16 ComputeScope on that device).
bool autocast_enabled(torch::Device dev);
inline bool cpu_autocast_enabled() { return autocast_enabled(torch::kCPU); }

// Runs its scope under bf16 autocast when the runtime dtype is bf16 (no-op for fp32). Clears the
// autocast weight cache on exit, so updated weights are re-cast next step.
class ComputeScope {
 public:
  ComputeScope();
  explicit ComputeScope(bool enable);
  ~ComputeScope();
  ComputeScope(const ComputeScope&) = delete;
  ComputeScope& operator=(const ComputeScope&) = delete;

 private:
  bool active_ = false, prev_ = false;
};

// Measured n x n x n matmul throughput on the runtime device.
double measure_matmul_gflops(torch::ScalarType dtype, int n = 1024, double seconds = 0.5);

}  // namespace rlhf
