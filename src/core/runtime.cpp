#include "core/runtime.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/syscall.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"

namespace rlhf {

namespace {

RuntimeInfo g_info;
torch::Device g_device = torch::kCPU;

template <class F>
F blas_fn(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

std::string openblas_core() {
  auto f = blas_fn<char* (*)()>("openblas_get_corename");
  return f ? std::string(f()) : std::string();
}

// How capable an OpenBLAS kernel is, by the ISA it assumes. Unknown names rank 0.
int kernel_rank(std::string core) {
  for (auto& ch : core) ch = char(std::tolower(ch));
  static const std::map<std::string, int> rank = {
      {"prescott", 1}, {"core2", 1}, {"penryn", 1}, {"dunnington", 1}, {"nehalem", 1},
      {"atom", 1}, {"katmai", 1}, {"coppermine", 1}, {"northwood", 1}, {"banias", 1},
      {"opteron", 1}, {"barcelona", 1}, {"bobcat", 1}, {"sandybridge", 2}, {"bulldozer", 2},
      {"piledriver", 2}, {"steamroller", 2}, {"excavator", 2}, {"haswell", 3}, {"zen", 3},
      {"skylakex", 4}, {"cooperlake", 5}, {"sapphirerapids", 6}};
  auto it = rank.find(core);
  return it == rank.end() ? 0 : it->second;
}

// The best OpenBLAS kernel this CPU can run, as an OPENBLAS_CORETYPE value.
std::string best_kernel(const CpuInfo& c) {
  if (c.avx512_core()) return c.native_bf16() ? "Cooperlake" : "SkylakeX";
  if (c.avx2 && c.fma) return c.vendor == "AuthenticAMD" ? "Zen" : "Haswell";
  if (c.avx) return "Sandybridge";
  return "";
}

std::string blas_library_name() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info dl{};
  std::string path = (sym && dladdr(sym, &dl) && dl.dli_fname) ? dl.dli_fname : "";
  if (auto cfg = blas_fn<char* (*)()>("openblas_get_config")) return std::string(cfg());
  if (path.find("mkl") != std::string::npos) return "MKL (" + path + ")";
  if (path.find("blis") != std::string::npos) return "BLIS (" + path + ")";
  // PyTorch's own builds (pip wheels) link MKL statically into libtorch_cpu; the build config says so.
  if (at::show_config().find("BLAS_INFO=mkl") != std::string::npos)
    return "MKL (linked into libtorch" + (path.empty() ? std::string() : ": " + path) + ")";
  if (!path.empty()) return "reference BLAS? (" + path + ")";
  return "none found";
}

// The file of the first loaded shared object whose name contains `needle` ("" if none).
std::string loaded_library(const char* needle) {
  std::pair<const char*, std::string> q{needle, ""};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* q = static_cast<std::pair<const char*, std::string>*>(data);
        if (info->dlpi_name && std::strstr(info->dlpi_name, q->first)) {
          q->second = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &q);
  return q.second;
}

}  // namespace

// glibc hands every allocation above its mmap threshold (32 MB at most unless set at start-up) to
// the kernel and back on free(), so the activations and logits a training step frees must be faulted
// in and zeroed page by page again on the next step: 15-20% of a GPT-2-124M training step here went
// to page faults. A 1 GiB threshold and trim threshold keep freed blocks in the heap for reuse.
// glibc reads thresholds above 32 MB only from GLIBC_TUNABLES at process start, hence the restart.
constexpr const char* kMallocTunables = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296";

namespace {
// Who decides glibc's malloc thresholds in this process, from the environment alone (so the
// restart and the report read the same answer).
enum class MallocSetup { Ours, User, Off, Untuned, NotGlibc };
MallocSetup malloc_setup() {
#ifdef __GLIBC__
  const char* mode = std::getenv("RLHF_MALLOC");
  if (mode && std::string(mode) == "default") return MallocSetup::Off;
  const char* t = std::getenv("GLIBC_TUNABLES");
  if (t && std::strstr(t, kMallocTunables)) return MallocSetup::Ours;
  if (t && std::strstr(t, "glibc.malloc.")) return MallocSetup::User;
  return MallocSetup::Untuned;
#else
  return MallocSetup::NotGlibc;
#endif
}
}  // namespace

void fix_blas_kernel_or_reexec(char** argv) {
  const CpuInfo& cpu = cpu_info();
  // oneDNN (bf16 matmuls) keeps AMX behind a cap in older releases, and Linux wants permission
  // before a process may use the AMX tile registers.
  if (cpu.amx_tile) {
    setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX", /*overwrite=*/0);
    setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE_AMX", 0);
#ifdef SYS_arch_prctl
    syscall(SYS_arch_prctl, 0x1023 /*ARCH_REQ_XCOMP_PERM*/, 18 /*XFEATURE_XTILEDATA*/);
#endif
  }
  if (std::getenv("RLHF_REEXEC") != nullptr) return;  // restarted once already: don't loop
  const char* old_tunables = std::getenv("GLIBC_TUNABLES");
  const std::string saved_tunables = old_tunables ? old_tunables : "";
  bool restart = false;
  if (malloc_setup() == MallocSetup::Untuned) {
    setenv("GLIBC_TUNABLES", (saved_tunables.empty() ? std::string(kMallocTunables) : saved_tunables + ":" + kMallocTunables).c_str(), 1);
    restart = true;
  }
  std::string core = std::getenv("OPENBLAS_CORETYPE") == nullptr ? openblas_core() : "";  // set = the user decided
  std::string best = core.empty() ? "" : best_kernel(cpu);
  if (!best.empty() && kernel_rank(core) < kernel_rank(best)) {
    setenv("OPENBLAS_CORETYPE", best.c_str(), 1);
    setenv("RLHF_BLAS_REEXEC", core.c_str(), 1);
    restart = true;
  }
  if (!restart) return;
  setenv("RLHF_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
  // exec failed: carry on as we are; init_runtime reports what is in effect.
  unsetenv("RLHF_REEXEC");
  if (std::getenv("RLHF_BLAS_REEXEC")) {
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("RLHF_BLAS_REEXEC");
  }
  if (saved_tunables.empty()) unsetenv("GLIBC_TUNABLES");
  else setenv("GLIBC_TUNABLES", saved_tunables.c_str(), 1);
}

void init_runtime(const RuntimeOptions& opts) {
  const CpuInfo& cpu = cpu_info();
  RuntimeInfo info;
  info.isa = cpu.best_isa();
  info.torch_version = TORCH_VERSION;
  info.libstdcxx = loaded_library("libstdc++");

  // Threads: libtorch (OpenMP) and OpenBLAS share the count.
  int cores = usable_cores();
  RLHF_CHECK(opts.threads >= 0, "--threads ", opts.threads, " is negative; use 0 for all cores");
  info.threads = opts.threads > 0 ? opts.threads : cores;
  if (opts.threads > cores)
    log_warn("--threads ", opts.threads, " is more than the ", cores, " usable cores; threads will wait on each other "
             "(use --threads ", cores, " or 0)");
  torch::set_num_threads(info.threads);
  if (auto set = blas_fn<void (*)(int)>("openblas_set_num_threads")) set(info.threads);

  info.blas = blas_library_name();
  switch (malloc_setup()) {
    case MallocSetup::Ours:
      info.malloc = "glibc, freed memory kept for reuse (GLIBC_TUNABLES mmap/trim threshold 1/4 GiB, set at start; RLHF_MALLOC=default to turn off)";
      break;
    case MallocSetup::User: info.malloc = std::string("glibc, GLIBC_TUNABLES=") + std::getenv("GLIBC_TUNABLES") + " set by the user"; break;
    case MallocSetup::Off: info.malloc = "glibc defaults (RLHF_MALLOC=default)"; break;
    case MallocSetup::Untuned: info.malloc = "glibc defaults (the start-up restart did not happen)"; break;
    case MallocSetup::NotGlibc: info.malloc = "system default"; break;
  }
  info.blas_kernel = openblas_core();
  if (const char* was = std::getenv("RLHF_BLAS_REEXEC")) {
    info.blas_note = std::string("OpenBLAS detected '") + was + "' on this CPU; restarted with OPENBLAS_CORETYPE=" +
                     (std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "?");
  } else if (std::getenv("OPENBLAS_CORETYPE")) {
    info.blas_note = std::string("OPENBLAS_CORETYPE=") + std::getenv("OPENBLAS_CORETYPE") + " set by the user";
  }
  if (info.blas.rfind("OpenBLAS", 0) != 0 && info.blas.rfind("MKL", 0) != 0 &&
      info.blas.rfind("BLIS", 0) != 0) {
    log_warn("BLAS is ", info.blas, ": fp32 matmuls will be ~50x slower; install libopenblas0-openmp");
  }

  // Device.
  if (opts.device == "cpu") {
    g_device = torch::kCPU;
  } else if (opts.device.rfind("cuda", 0) == 0) {
    RLHF_CHECK(torch::cuda::is_available(), "--device ", opts.device,
               ": this libtorch build has no CUDA or no GPU is visible; use --device cpu");
    g_device = torch::Device(opts.device);
    RLHF_CHECK(g_device.index() < int(torch::cuda::device_count()), "--device ", opts.device,
               ": only ", torch::cuda::device_count(), " GPU(s) visible");
  } else {
    RLHF_FAIL("--device '", opts.device, "' is not known; use cpu or cuda[:N]");
  }
  info.device = opts.device;

  // Compute dtype.
  RLHF_CHECK(opts.dtype == "fp32" || opts.dtype == "bf16", "--dtype '", opts.dtype,
             "' is not known; use fp32 or bf16");
  info.dtype = opts.dtype;
  if (opts.dtype == "bf16" && g_device.is_cpu() && !cpu.native_bf16() && !cpu.avx512_core()) {
    log_warn("--dtype bf16 on a CPU without AVX512-BF16/AMX (", info.isa,
             ") is emulated and slower than fp32");
  }
  g_info = info;
}

const RuntimeInfo& runtime() { return g_info; }
torch::Device device() { return g_device; }
bool use_bf16() { return g_info.dtype == "bf16"; }
void synchronize_device() {
  if (g_device.is_cuda()) torch::cuda::synchronize(g_device.index());
}

std::string RuntimeInfo::summary() const {
  std::string s = "runtime: " + device + ", " + dtype + ", " + std::to_string(threads) +
                  " threads, " + isa + ", BLAS " + blas;
  if (!blas_kernel.empty()) s += " [kernel " + blas_kernel + "]";
  if (!blas_note.empty()) s += " (" + blas_note + ")";
  if (!malloc.empty()) s += "; malloc: " + malloc.substr(0, malloc.find(" ("));
  return s;
}

// ---- autocast ----------------------------------------------------------------------------------

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define RLHF_NEW_AUTOCAST 1
#endif

bool autocast_enabled(torch::Device dev) {
#ifdef RLHF_NEW_AUTOCAST
  return at::autocast::is_autocast_enabled(dev.type());
#else
  return dev.is_cpu() ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

ComputeScope::ComputeScope() : ComputeScope(use_bf16()) {}

ComputeScope::ComputeScope(bool enable) {
  if (!enable) return;
  active_ = true;
#ifdef RLHF_NEW_AUTOCAST
  auto dev = g_device.type();
  prev_ = at::autocast::is_autocast_enabled(dev);
  at::autocast::set_autocast_enabled(dev, true);
  at::autocast::set_autocast_dtype(dev, at::kBFloat16);
#else
  if (g_device.is_cpu()) {
    prev_ = at::autocast::is_cpu_enabled();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  } else {
    prev_ = at::autocast::is_enabled();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  }
#endif
  at::autocast::increment_nesting();
}

ComputeScope::~ComputeScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#ifdef RLHF_NEW_AUTOCAST
  at::autocast::set_autocast_enabled(g_device.type(), prev_);
#else
  if (g_device.is_cpu()) at::autocast::set_cpu_enabled(prev_);
  else at::autocast::set_enabled(prev_);
#endif
}

double measure_matmul_gflops(torch::ScalarType dtype, int n, double seconds) {
  torch::NoGradGuard ng;
  auto opt = torch::TensorOptions().dtype(dtype).device(g_device);
  auto a = torch::randn({n, n}, opt), b = torch::randn({n, n}, opt);
  for (int i = 0; i < 2; ++i) torch::mm(a, b);
  synchronize_device();
  int iters = 0;
  auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  do {
    torch::mm(a, b);
    ++iters;
    if (iters % 4 == 0) synchronize_device();
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (el < seconds || iters < 3);
  synchronize_device();
  el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(n) * n * n * iters / el / 1e9;
}

}  // namespace rlhf
