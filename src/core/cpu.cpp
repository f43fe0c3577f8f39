#include "core/cpu.h"

#include <cpuid.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

namespace rlhf {

static CpuInfo detect() {
  CpuInfo c;
  unsigned a = 0, b = 0, cx = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return c;
  unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &cx, 4);
  c.vendor = vendor;
  __get_cpuid(1, &a, &b, &cx, &d);
  unsigned base_family = (a >> 8) & 0xf, ext_family = (a >> 20) & 0xff;
  unsigned base_model = (a >> 4) & 0xf, ext_model = (a >> 16) & 0xf;
  c.family = int(base_family == 0xf ? base_family + ext_family : base_family);
  c.model = int((base_family == 0x6 || base_family == 0xf) ? (ext_model << 4) | base_model : base_model);
  bool osxsave = cx & (1u << 27);
  c.fma = cx & (1u << 12);
  c.avx = (cx & (1u << 28)) && osxsave;
  // The OS must save the wide registers, or the instructions fault.
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  bool ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
  bool amx_ok = (xcr0 & (3ull << 17)) == (3ull << 17);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, cx, d);
    c.avx2 = (b & (1u << 5)) && ymm_ok;
    c.avx512f = (b & (1u << 16)) && zmm_ok;
    c.avx512dq = (b & (1u << 17)) && zmm_ok;
    c.avx512cd = (b & (1u << 28)) && zmm_ok;
    c.avx512bw = (b & (1u << 30)) && zmm_ok;
    c.avx512vl = (b & (1u << 31)) && zmm_ok;
    c.avx512_vnni = (cx & (1u << 11)) && zmm_ok;
    c.amx_bf16 = (d & (1u << 22)) && amx_ok;
    c.amx_tile = (d & (1u << 24)) && amx_ok;
    c.amx_int8 = (d & (1u << 25)) && amx_ok;
    __cpuid_count(7, 1, a, b, cx, d);
    c.avx512_bf16 = (a & (1u << 5)) && zmm_ok;
  }
  __get_cpuid(0x80000000, &a, &b, &cx, &d);
  if (a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &a, &b, &cx, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &cx, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
    c.brand = brand;
    c.brand.erase(0, c.brand.find_first_not_of(' '));
  }
  return c;
}

std::string CpuInfo::best_isa() const {
  if (amx_bf16) return "AMX-BF16";
  if (avx512_bf16) return "AVX512-BF16";
  if (avx512_core()) return "AVX512";
  if (avx2 && fma) return "AVX2";
  if (avx) return "AVX";
  return "SSE";
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

static int cgroup_quota_cores() {
  // cgroup v2: "max 100000" or "200000 100000"
  std::ifstream f2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (f2 >> quota >> period && quota != "max" && period > 0) {
    return std::max(1, int(std::ceil(std::stod(quota) / double(period))));
  }
  std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  long qv = -1, pv = 0;
  if (q >> qv && p >> pv && qv > 0 && pv > 0) return std::max(1, int(std::ceil(double(qv) / pv)));
  return 1 << 20;
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int n = 1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  return std::max(1, std::min(n, cgroup_quota_cores()));
}

uint64_t available_memory_bytes() {
  uint64_t avail = UINT64_MAX;
  {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemAvailable:") {
        avail = kb * 1024;
        break;
      }
    }
  }
  auto read_u64 = [](const char* path, uint64_t& v) {
    std::ifstream f(path);
    std::string s;
    if (!(f >> s) || s == "max" || s.find_first_not_of("0123456789") != std::string::npos) return false;
    v = std::stoull(s);
    return true;
  };
  uint64_t limit = 0, used = 0;
  if ((read_u64("/sys/fs/cgroup/memory.max", limit) && read_u64("/sys/fs/cgroup/memory.current", used)) ||
      (read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes", limit) &&
       read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes", used))) {
    if (limit < (uint64_t(1) << 62)) avail = std::min(avail, limit > used ? limit - used : 0);
  }
  return avail;
}

}  // namespace rlhf
