// What the CPU can do (cpuid) and how many cores this process may use (affinity, cgroup quota).
#pragma once
#include <cstdint>
#include <string>

namespace rlhf {

struct CpuInfo {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  std::string brand;   // "Intel(R) Xeon(R) Platinum 8480+", ...
  int family = 0, model = 0;
  bool avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512cd = false;
  bool avx512_vnni = false, avx512_bf16 = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;

  bool avx512_core() const { return avx512f && avx512bw && avx512vl && avx512dq && avx512cd; }
  bool native_bf16() const { return amx_bf16 || avx512_bf16; }
  // The most capable instruction set, as a short name: "AMX-BF16", "AVX512-BF16", "AVX512", ...
  std::string best_isa() const;
};

const CpuInfo& cpu_info();

// Cores this process may run on: min(sched affinity, cgroup v2/v1 CPU quota), at least 1.
int usable_cores();

// Memory this process can still allocate, in bytes: the kernel's MemAvailable, lowered to what the
// cgroup (v2 memory.max or v1 limit) leaves. UINT64_MAX when neither can be read.
uint64_t available_memory_bytes();

}  // namespace rlhf
