#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <sstream>
#include <thread>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace rlhf {

namespace {

// ---- types ---------------------------------------------------------------------------------------

// Block sizes and bytes per block: ggml.c's type_traits (= sizeof the block structs of ggml-common.h).
// gguf-py's GGML_QUANT_SIZES agrees except for Q8_1 (it says 40 bytes; ggml's block_q8_1 is 36).
constexpr GgmlTypeTraits kGgmlTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},          {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", 32, 18, true},      {GgmlType::Q4_1, "Q4_1", 32, 20, true},
    {GgmlType::Q5_0, "Q5_0", 32, 22, true},      {GgmlType::Q5_1, "Q5_1", 32, 24, true},
    {GgmlType::Q8_0, "Q8_0", 32, 34, true},      {GgmlType::Q8_1, "Q8_1", 32, 36, false},
    {GgmlType::Q2_K, "Q2_K", 256, 84, true},     {GgmlType::Q3_K, "Q3_K", 256, 110, true},
    {GgmlType::Q4_K, "Q4_K", 256, 144, true},    {GgmlType::Q5_K, "Q5_K", 256, 176, true},
    {GgmlType::Q6_K, "Q6_K", 256, 210, true},    {GgmlType::Q8_K, "Q8_K", 256, 292, true},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66, false}, {GgmlType::IQ2_XS, "IQ2_XS", 256, 74, false},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98, false}, {GgmlType::IQ1_S, "IQ1_S", 256, 50, false},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18, true},  {GgmlType::IQ3_S, "IQ3_S", 256, 110, false},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82, false},  {GgmlType::IQ4_XS, "IQ4_XS", 256, 136, true},
    {GgmlType::I8, "I8", 1, 1, true},            {GgmlType::I16, "I16", 1, 2, true},
    {GgmlType::I32, "I32", 1, 4, true},          {GgmlType::I64, "I64", 1, 8, true},
    {GgmlType::F64, "F64", 1, 8, true},          {GgmlType::IQ1_M, "IQ1_M", 256, 56, false},
    {GgmlType::BF16, "BF16", 1, 2, true},        {GgmlType::TQ1_0, "TQ1_0", 256, 54, false},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66, true},   {GgmlType::MXFP4, "MXFP4", 32, 17, true},
    {GgmlType::NVFP4, "NVFP4", 64, 36, false},   {GgmlType::Q1_0, "Q1_0", 128, 18, false},
};

const char* removed_ggml_type(uint32_t id) {
  switch (id) {
    case 4: return "Q4_2";
    case 5: return "Q4_3";
    case 31: return "Q4_0_4_4";
    case 32: return "Q4_0_4_8";
    case 33: return "Q4_0_8_8";
    case 36: return "IQ4_NL_4_4";
    case 37: return "IQ4_NL_4_8";
    case 38: return "IQ4_NL_8_8";
    default: return nullptr;
  }
}

constexpr uint32_t kNumValueTypes = 13;
const char* const kValueTypeNames[kNumValueTypes] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32",
                                                     "INT32", "FLOAT32", "BOOL",  "STRING", "ARRAY",
                                                     "UINT64", "INT64", "FLOAT64"};

// Bytes of a numeric/bool value; 0 for STRING and ARRAY.
uint64_t value_type_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    default: return 0;
  }
}

bool is_integer_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::UINT16: case GgufValueType::INT16:
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::UINT64: case GgufValueType::INT64:
      return true;
    default: return false;
  }
}
bool is_float_type(GgufValueType t) { return t == GgufValueType::FLOAT32 || t == GgufValueType::FLOAT64; }

std::string describe_type(const GgufValue& v) {
  if (!v.is_array()) return gguf_value_type_name(v.type);
  return std::string("ARRAY of ") + gguf_value_type_name(v.elem_type);
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Limits that no real file reaches; they keep a corrupt header from recursing or looping forever.
constexpr int kMaxArrayDepth = 8;   // arrays of arrays nested deeper are refused
constexpr uint32_t kMaxDims = 4;    // GGML_MAX_DIMS

// A cursor over the mapped header. Every read checks the bytes left first; `what` is only evaluated
// (to name the field) when the check fails.
struct Cursor {
  const uint8_t* base;
  uint64_t size;
  uint64_t pos;
  const std::string& file;

  uint64_t left() const { return size - pos; }
  template <class W>
  void need(uint64_t n, W&& what) const {
    if (n > left())
      RLHF_FAIL(file, ": truncated or corrupt GGUF header: ", what(), " needs ", n, " bytes at byte ", pos,
                " but the file has only ", left(), " left (", size, " bytes in all); re-download or re-convert the file");
  }
  template <class T, class W>
  T read(W&& what) {
    need(sizeof(T), what);
    T v = load<T>(base + pos);
    pos += sizeof(T);
    return v;
  }
  template <class W>
  std::string_view string(W&& what) {
    const uint64_t len = read<uint64_t>([&] { return what() + " (string length)"; });
    if (len > left())
      RLHF_FAIL(file, ": ", what(), " has string length ", len, " at byte ", pos - 8, " but only ", left(),
                " bytes are left in the file; the file is truncated or corrupt");
    std::string_view s(reinterpret_cast<const char*>(base + pos), size_t(len));
    pos += len;
    return s;
  }
};

GgufValueType read_value_type(Cursor& c, const std::string& what) {
  const uint32_t t = c.read<uint32_t>([&] { return what + " (value type)"; });
  RLHF_CHECK(t < kNumValueTypes, c.file, ": ", what, " has unknown value type ", t,
             " (GGUF defines 0..12); the file is corrupt or from a newer GGUF version");
  return GgufValueType(t);
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& what, int depth) {
  GgufValue v;
  v.type = type;
  if (type == GgufValueType::STRING) {
    v.str = c.string([&] { return what; });
    return v;
  }
  if (type != GgufValueType::ARRAY) {
    const uint64_t n = value_type_size(type);
    c.need(n, [&] { return what + " (" + gguf_value_type_name(type) + " value)"; });
    v.data = c.base + c.pos;
    c.pos += n;
    return v;
  }
  RLHF_CHECK(depth < kMaxArrayDepth, c.file, ": ", what, " nests arrays more than ", kMaxArrayDepth,
             " deep; the file is corrupt");
  v.elem_type = read_value_type(c, what + " (array element type)");
  v.count = c.read<uint64_t>([&] { return what + " (array length)"; });
  // Bound the count by what the rest of the file can hold before allocating anything.
  const uint64_t min_elem = v.elem_type == GgufValueType::STRING  ? 8
                            : v.elem_type == GgufValueType::ARRAY ? 12
                                                                  : value_type_size(v.elem_type);
  if (v.count > c.left() / min_elem)
    RLHF_FAIL(c.file, ": ", what, " claims ", v.count, " elements of type ", gguf_value_type_name(v.elem_type),
              " but only ", c.left(), " bytes are left in the file (room for at most ", c.left() / min_elem,
              "); the file is truncated or corrupt");
  if (v.elem_type == GgufValueType::STRING) {
    v.strings.reserve(size_t(v.count));
    for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.string([&] { return what + "[" + std::to_string(i) + "]"; }));
  } else if (v.elem_type == GgufValueType::ARRAY) {
    v.items.reserve(size_t(v.count));
    for (uint64_t i = 0; i < v.count; ++i)
      v.items.push_back(read_value(c, GgufValueType::ARRAY, what + "[" + std::to_string(i) + "]", depth + 1));
  } else {
    v.data = c.base + c.pos;
    c.pos += v.count * min_elem;
  }
  return v;
}

// ---- dequantisation kernels -----------------------------------------------------------------------
// Each is a line-for-line port of ggml-quants.c's dequantize_row_<type> (the reference C versions, not
// the SIMD ones), on `nb` blocks read with memcpy (the mapping gives no alignment guarantee). The order
// of float operations is the reference's, and no multiply-add may be fused into an FMA, which would
// round differently from ggml's reference and from numpy: the section is compiled with contraction off.
#if defined(__clang__)
#define RLHF_GGUF_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define RLHF_GGUF_NO_CONTRACT
#if defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#endif

// ggml_compute_fp16_to_fp32, exact for every bit pattern (NaN payloads are kept).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else {
    // zero or subnormal: man * 2^-24 is exact in float32
    bits = sign | std::bit_cast<uint32_t>(float(man) * 5.9604644775390625e-8f);
  }
  return std::bit_cast<float>(bits);
}
inline float half_at(const uint8_t* p) { return fp16_to_fp32(load<uint16_t>(p)); }

// GGML_E8M0_TO_FP32_HALF (ggml-impl.h): 2^(e-127) / 2.
inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (uint32_t(e - 1) << 23);
  return std::bit_cast<float>(bits);
}

const int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// get_scale_min_k4 (ggml-quants.c): 6-bit scale and min j of Q4_K/Q5_K's 12 packed bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

void deq_q4_0(const uint8_t* x, float* y, int64_t nb) {  // { half d; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = half_at(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; ++j) {
      const int x0 = (qs[j] & 0x0F) - 8;
      const int x1 = (qs[j] >> 4) - 8;
      y[j + 0] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

void deq_q4_1(const uint8_t* x, float* y, int64_t nb) {  // { half d, m; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 20, y += 32) {
    const float d = half_at(x), m = half_at(x + 2);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < 16; ++j) {
      const int x0 = qs[j] & 0x0F;
      const int x1 = qs[j] >> 4;
      y[j + 0] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    }
  }
}

void deq_q5_0(const uint8_t* x, float* y, int64_t nb) {  // { half d; u8 qh[4]; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 22, y += 32) {
    const float d = half_at(x);
    const uint32_t qh = load<uint32_t>(x + 2);
    const uint8_t* qs = x + 6;
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = uint8_t((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((qs[j] >> 4) | xh_1) - 16;
      y[j + 0] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

void deq_q5_1(const uint8_t* x, float* y, int64_t nb) {  // { half d, m; u8 qh[4]; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 24, y += 32) {
    const float d = half_at(x), m = half_at(x + 2);
    const uint32_t qh = load<uint32_t>(x + 4);
    const uint8_t* qs = x + 8;
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = uint8_t((qh >> (j + 12)) & 0x10);
      const int x0 = (qs[j] & 0x0F) | xh_0;
      const int x1 = (qs[j] >> 4) | xh_1;
      y[j + 0] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    }
  }
}

void deq_q8_0(const uint8_t* x, float* y, int64_t nb) {  // { half d; i8 qs[32]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
    const float d = half_at(x);
    for (int j = 0; j < 32; ++j) y[j] = int8_t(x[2 + j]) * d;
  }
}

void deq_q2_k(const uint8_t* x, float* y, int64_t nb) {  // { u8 scales[16]; u8 qs[64]; half d, dmin; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 84) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = half_at(x + 80), min = half_at(x + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        uint8_t sc = scales[is++];
        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * int8_t((q[l] >> shift) & 3) - ml;
        sc = scales[is++];
        dl = d * (sc & 0xF);
        ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * int8_t((q[l + 16] >> shift) & 3) - ml;
        shift += 2;
      }
      q += 32;
    }
  }
}

void deq_q3_k(const uint8_t* x, float* y, int64_t nb) {  // { u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d; }
  RLHF_GGUF_NO_CONTRACT
  const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  for (int64_t i = 0; i < nb; ++i, x += 110) {
    const float d_all = half_at(x + 108);
    const uint8_t* q = x + 32;
    const uint8_t* hm = x;
    uint8_t m = 1;
    uint32_t aux[4];
    std::memcpy(aux, x + 96, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) *y++ = dl * (int8_t((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
        dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) *y++ = dl * (int8_t((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
        shift += 2;
        m = uint8_t(m << 1);
      }
      q += 32;
    }
  }
}

void deq_q4_k(const uint8_t* x, float* y, int64_t nb) {  // { half d, dmin; u8 scales[12]; u8 qs[128]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = half_at(x), min = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < 256; j += 64) {
      scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void deq_q5_k(const uint8_t* x, float* y, int64_t nb) {  // { half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 176) {
    const float d = half_at(x), min = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
      scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = uint8_t(u1 << 2);
      u2 = uint8_t(u2 << 2);
    }
  }
}

void deq_q6_k(const uint8_t* x, float* y, int64_t nb) {  // { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const float d = half_at(x + 208);
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const uint8_t* scb = x + 192;
    for (int n = 0; n < 256; n += 128) {
      int8_t sc[8];
      std::memcpy(sc, scb, 8);
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int8_t q1 = int8_t((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int8_t q2 = int8_t((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int8_t q3 = int8_t((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int8_t q4 = int8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      scb += 8;
    }
  }
}

void deq_q8_k(const uint8_t* x, float* y, int64_t nb) {  // { float d; i8 qs[256]; i16 bsums[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 292) {
    const float d = load<float>(x);
    for (int j = 0; j < 256; ++j) *y++ = d * int8_t(x[4 + j]);
  }
}

void deq_iq4_nl(const uint8_t* x, float* y, int64_t nb) {  // { half d; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = half_at(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; ++j) {
      y[j + 0] = d * kValuesIq4nl[qs[j] & 0xf];
      y[j + 16] = d * kValuesIq4nl[qs[j] >> 4];
    }
  }
}

void deq_iq4_xs(const uint8_t* x, float* y, int64_t nb) {  // { half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 136) {
    const float d = half_at(x);
    const uint16_t scales_h = load<uint16_t>(x + 2);
    const uint8_t* scales_l = x + 4;
    const uint8_t* qs = x + 8;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j + 0] = dl * kValuesIq4nl[qs[j] & 0xf];
        y[j + 16] = dl * kValuesIq4nl[qs[j] >> 4];
      }
      y += 32;
      qs += 16;
    }
  }
}

void deq_mxfp4(const uint8_t* x, float* y, int64_t nb) {  // { u8 e; u8 qs[16]; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 17, y += 32) {
    const float d = e8m0_half(x[0]);
    const uint8_t* qs = x + 1;
    for (int j = 0; j < 16; ++j) {
      const int8_t x0 = kValuesMxfp4[qs[j] & 0x0F];
      const int8_t x1 = kValuesMxfp4[qs[j] >> 4];
      y[j + 0] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

void deq_tq2_0(const uint8_t* x, float* y, int64_t nb) {  // { u8 qs[64]; half d; }
  RLHF_GGUF_NO_CONTRACT
  for (int64_t i = 0; i < nb; ++i, x += 66) {
    const float d = half_at(x + 64);
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) {
          const int8_t q = int8_t((x[j + m] >> (l * 2)) & 3);
          *y++ = float(q - 1) * d;
        }
  }
}

template <class T>
void deq_plain(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(load<T>(x + i * int64_t(sizeof(T))));
}

void deq_f16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = half_at(x + 2 * i);
}

void deq_bf16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::bit_cast<float>(uint32_t(load<uint16_t>(x + 2 * i)) << 16);
}

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif
#undef RLHF_GGUF_NO_CONTRACT

}  // namespace

// ---- public helpers ------------------------------------------------------------------------------------

const char* gguf_value_type_name(GgufValueType t) {
  const auto i = uint32_t(t);
  return i < kNumValueTypes ? kValueTypeNames[i] : "?";
}

const GgmlTypeTraits* ggml_type_traits(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (uint32_t(t.type) == id) return &t;
  return nullptr;
}

const GgmlTypeTraits& ggml_type_traits(GgmlType t) {
  const GgmlTypeTraits* tr = ggml_type_traits(uint32_t(t));
  RLHF_CHECK(tr, "unknown ggml type id ", uint32_t(t));
  return *tr;
}

const char* ggml_type_name(GgmlType t) {
  const GgmlTypeTraits* tr = ggml_type_traits(uint32_t(t));
  return tr ? tr->name : "?";
}

std::string ggml_dequantizable_type_names() {
  std::string s;
  for (const auto& t : kGgmlTypes)
    if (t.dequantizable) {
      if (!s.empty()) s += ' ';
      s += t.name;
    }
  return s;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlTypeTraits& tr = ggml_type_traits(type);
  RLHF_CHECK(n >= 0 && n % tr.block_size == 0, "dequantize_row: ", n, " values are not a whole number of ", tr.name,
             " blocks of ", tr.block_size);
  const auto* x = static_cast<const uint8_t*>(src);
  const int64_t nb = n / tr.block_size;
  switch (type) {
    case GgmlType::F32: if (n > 0) std::memcpy(dst, x, size_t(n) * 4); return;
    case GgmlType::F16: return deq_f16(x, dst, n);
    case GgmlType::BF16: return deq_bf16(x, dst, n);
    case GgmlType::F64: return deq_plain<double>(x, dst, n);
    case GgmlType::I8: return deq_plain<int8_t>(x, dst, n);
    case GgmlType::I16: return deq_plain<int16_t>(x, dst, n);
    case GgmlType::I32: return deq_plain<int32_t>(x, dst, n);
    case GgmlType::I64: return deq_plain<int64_t>(x, dst, n);
    case GgmlType::Q4_0: return deq_q4_0(x, dst, nb);
    case GgmlType::Q4_1: return deq_q4_1(x, dst, nb);
    case GgmlType::Q5_0: return deq_q5_0(x, dst, nb);
    case GgmlType::Q5_1: return deq_q5_1(x, dst, nb);
    case GgmlType::Q8_0: return deq_q8_0(x, dst, nb);
    case GgmlType::Q2_K: return deq_q2_k(x, dst, nb);
    case GgmlType::Q3_K: return deq_q3_k(x, dst, nb);
    case GgmlType::Q4_K: return deq_q4_k(x, dst, nb);
    case GgmlType::Q5_K: return deq_q5_k(x, dst, nb);
    case GgmlType::Q6_K: return deq_q6_k(x, dst, nb);
    case GgmlType::Q8_K: return deq_q8_k(x, dst, nb);
    case GgmlType::IQ4_NL: return deq_iq4_nl(x, dst, nb);
    case GgmlType::IQ4_XS: return deq_iq4_xs(x, dst, nb);
    case GgmlType::MXFP4: return deq_mxfp4(x, dst, nb);
    case GgmlType::TQ2_0: return deq_tq2_0(x, dst, nb);
    default: break;
  }
  RLHF_FAIL("type ", tr.name, " is not supported for dequantisation (supported: ", ggml_dequantizable_type_names(), ")");
}

int64_t GgufValue::int_at(uint64_t i) const { return int64_t(uint_at(i)); }

uint64_t GgufValue::uint_at(uint64_t i) const {
  const GgufValueType t = is_array() ? elem_type : type;
  const uint8_t* p = data + i * value_type_size(t);
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::BOOL: return *p;
    case GgufValueType::INT8: return uint64_t(int64_t(int8_t(*p)));
    case GgufValueType::UINT16: return load<uint16_t>(p);
    case GgufValueType::INT16: return uint64_t(int64_t(load<int16_t>(p)));
    case GgufValueType::UINT32: return load<uint32_t>(p);
    case GgufValueType::INT32: return uint64_t(int64_t(load<int32_t>(p)));
    case GgufValueType::UINT64: return load<uint64_t>(p);
    case GgufValueType::INT64: return uint64_t(load<int64_t>(p));
    default: return 0;  // floats, strings and arrays have no integer value here
  }
}

double GgufValue::float_at(uint64_t i) const {
  const GgufValueType t = is_array() ? elem_type : type;
  const uint8_t* p = data + i * value_type_size(t);
  switch (t) {
    case GgufValueType::FLOAT32: return load<float>(p);
    case GgufValueType::FLOAT64: return load<double>(p);
    case GgufValueType::UINT64: return double(load<uint64_t>(p));
    default: return double(int_at(i));
  }
}

std::string gguf_value_to_string(const GgufValue& v, size_t max_items) {
  std::ostringstream s;
  s.precision(9);
  auto scalar = [&](const GgufValue& x, GgufValueType t, uint64_t i) {
    if (t == GgufValueType::BOOL) s << (x.uint_at(i) ? "true" : "false");
    else if (is_float_type(t)) s << x.float_at(i);
    else if (t == GgufValueType::UINT64) s << x.uint_at(i);
    else s << x.int_at(i);
  };
  auto quoted = [&](std::string_view str) {
    constexpr size_t kMax = 80;
    s << '"';
    for (char ch : str.substr(0, kMax)) {
      if (ch == '\n') s << "\\n";
      else if (ch == '"' || ch == '\\') s << '\\' << ch;
      else s << ch;
    }
    s << (str.size() > kMax ? "\"..." : "\"");
  };
  if (v.type == GgufValueType::STRING) {
    quoted(v.str);
  } else if (!v.is_array()) {
    scalar(v, v.type, 0);
  } else {
    s << "[" << v.count << " x " << gguf_value_type_name(v.elem_type) << "]";
    const uint64_t n = std::min<uint64_t>(v.count, max_items);
    for (uint64_t i = 0; i < n; ++i) {
      s << (i ? ", " : " ");
      if (v.elem_type == GgufValueType::STRING) quoted(v.strings[i]);
      else if (v.elem_type == GgufValueType::ARRAY) s << gguf_value_to_string(v.items[i], max_items);
      else scalar(v, v.elem_type, i);
    }
    if (v.count > n) s << ", ...";
  }
  return s.str();
}

std::string GgufTensorInfo::shape_string() const {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (i) s += " x ";
    s += std::to_string(ne[i]);
  }
  return s.empty() ? "scalar" : s;
}

// ---- the file --------------------------------------------------------------------------------------------

GgufFile::GgufFile(const std::filesystem::path& path) : path_(path) {
  try {
    open_and_validate();
  } catch (...) {
    release();  // a constructor that throws runs no destructor: unmap and close here
    throw;
  }
}

GgufFile::~GgufFile() { release(); }

void GgufFile::release() {
  if (map_) munmap(const_cast<uint8_t*>(map_), size_t(size_));
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
}

void GgufFile::open_and_validate() {
  const std::string p = path_.string();
  fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  RLHF_CHECK(fd_ >= 0, p, ": cannot open (", std::strerror(errno), "); check the path");
  struct stat st {};
  RLHF_CHECK(fstat(fd_, &st) == 0 && S_ISREG(st.st_mode), p, ": not a regular file");
  size_ = uint64_t(st.st_size);
  RLHF_CHECK(size_ >= 4, p, ": truncated GGUF file (", size_, " bytes; a GGUF file starts with the 4-byte magic \"GGUF\")");
  void* m = mmap(nullptr, size_t(size_), PROT_READ, MAP_PRIVATE, fd_, 0);
  RLHF_CHECK(m != MAP_FAILED, p, ": cannot memory-map (", std::strerror(errno), ")");
  map_ = static_cast<const uint8_t*>(m);

  if (std::memcmp(map_, "GGUF", 4) != 0) {
    std::string shown;
    for (int i = 0; i < 4; ++i) shown += (map_[i] >= 32 && map_[i] < 127) ? char(map_[i]) : '?';
    RLHF_FAIL(p, ": not a GGUF file (magic \"", shown, "\", expected \"GGUF\")");
  }
  Cursor c{map_, size_, 4, p};
  version_ = c.read<uint32_t>([] { return std::string("the version"); });
  RLHF_CHECK(version_ != 0, p, ": GGUF version 0 is invalid; the file is corrupt");
  RLHF_CHECK((version_ & 0xFFFFu) != 0, p, ": GGUF version field is ", version_,
             "; this looks like a big-endian GGUF file, which is not supported (convert it on a little-endian machine)");
  RLHF_CHECK(version_ != 1, p, ": GGUF version 1 is not supported (only versions 2 and 3, which use 64-bit counts); "
             "re-convert the model with a current llama.cpp");
  RLHF_CHECK(version_ == 2 || version_ == 3, p, ": unsupported GGUF version ", version_, " (this reader knows 2 and 3)");
  const uint64_t n_tensors = c.read<uint64_t>([] { return std::string("the tensor count"); });
  const uint64_t n_kv = c.read<uint64_t>([] { return std::string("the metadata count"); });

  // The smallest entries: a key of 1 byte + type + a 1-byte value (14 bytes); a tensor info with a
  // 1-byte name and no dims (25 bytes). Counts the file cannot hold are refused before any allocation.
  const uint64_t left = c.left();
  RLHF_CHECK(n_kv <= left / 14, p, ": header claims ", n_kv, " metadata entries but the ", left,
             " bytes after the header hold at most ", left / 14, "; the file is truncated or corrupt");
  RLHF_CHECK(n_tensors <= left / 25, p, ": header claims ", n_tensors, " tensors but the ", left,
             " bytes after the header hold at most ", left / 25, "; the file is truncated or corrupt");

  // 1. metadata
  kvs_.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string entry = "metadata entry " + std::to_string(i);
    GgufKv kv;
    kv.key = std::string(c.string([&] { return entry + " key"; }));
    RLHF_CHECK(!kv.key.empty(), p, ": ", entry, " has an empty key; the file is corrupt");
    const std::string what = "metadata key \"" + kv.key + "\"";
    RLHF_CHECK(!kv_index_.count(kv.key), p, ": ", what, " appears twice; the file is corrupt");
    kv.value = read_value(c, read_value_type(c, what), what, 0);
    kv_index_.emplace(kv.key, kvs_.size());
    kvs_.push_back(std::move(kv));
  }
  if (const GgufValue* a = find("general.alignment")) {
    RLHF_CHECK(a->type == GgufValueType::UINT32, p, ": metadata key \"general.alignment\" is ", describe_type(*a),
               ", expected UINT32");
    alignment_ = a->uint_at(0);
    RLHF_CHECK(alignment_ != 0 && (alignment_ & (alignment_ - 1)) == 0, p, ": general.alignment is ", alignment_,
               ", not a power of two; the file is corrupt");
  }

  // 2. tensor infos
  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = std::string(c.string([&] { return "tensor info " + std::to_string(i) + " name"; }));
    RLHF_CHECK(!t.name.empty(), p, ": tensor info ", i, " has an empty name; the file is corrupt");
    const std::string what = "tensor \"" + t.name + "\"";
    RLHF_CHECK(!tensor_index_.count(t.name), p, ": ", what, " appears twice; the file is corrupt");
    const uint32_t n_dims = c.read<uint32_t>([&] { return what + " n_dims"; });
    RLHF_CHECK(n_dims <= kMaxDims, p, ": ", what, " has n_dims ", n_dims, " (GGUF allows at most ", kMaxDims,
               "); the file is corrupt");
    uint64_t numel = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>([&] { return what + " dimension " + std::to_string(d); });
      RLHF_CHECK(ne <= uint64_t(std::numeric_limits<int64_t>::max()), p, ": ", what, " dimension ", d, " is ", ne,
                 " (negative as int64); the file is corrupt");
      t.ne.push_back(int64_t(ne));
      if (ne != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / ne) overflow = true;
      else numel *= ne;
    }
    // A zero dimension makes the tensor empty, whatever the others are.
    if (std::find(t.ne.begin(), t.ne.end(), 0) != t.ne.end()) numel = 0, overflow = false;
    RLHF_CHECK(!overflow, p, ": ", what, " has shape ", t.shape_string(), " whose element count overflows int64; the file is corrupt");
    t.numel = int64_t(numel);
    const uint32_t type_id = c.read<uint32_t>([&] { return what + " type"; });
    const GgmlTypeTraits* tr = ggml_type_traits(type_id);
    if (!tr) {
      if (const char* removed = removed_ggml_type(type_id))
        RLHF_FAIL(p, ": ", what, " has ggml type ", removed, " (", type_id,
                  "), which ggml no longer supports in files; re-quantise the model with a current llama.cpp");
      RLHF_FAIL(p, ": ", what, " has unknown ggml type id ", type_id,
                " (this reader knows ids up to 41); the file is corrupt or from a newer llama.cpp");
    }
    t.type = tr->type;
    RLHF_CHECK(t.row_size() % tr->block_size == 0, p, ": ", what, " of type ", tr->name, " has rows of ", t.row_size(),
               " values (shape ", t.shape_string(), "), not a multiple of the block size ", tr->block_size, "; the file is corrupt");
    const uint64_t blocks = numel / uint64_t(tr->block_size);
    RLHF_CHECK(blocks <= std::numeric_limits<uint64_t>::max() / uint64_t(tr->type_size), p, ": ", what,
               " has a size in bytes that overflows; the file is corrupt");
    t.n_bytes = blocks * uint64_t(tr->type_size);
    t.offset = c.read<uint64_t>([&] { return what + " offset"; });
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // 3. the data section, aligned; every tensor inside it, aligned, none overlapping
  const uint64_t pad = (alignment_ - c.pos % alignment_) % alignment_;
  data_offset_ = c.pos + pad;
  if (tensors_.empty()) return;
  RLHF_CHECK(pad <= c.left(), p, ": the data section would start at byte ", data_offset_, " (after ", pad,
             " bytes of alignment padding) but the file has only ", size_, " bytes; the file is truncated");
  const uint64_t data_size = size_ - data_offset_;
  for (auto& t : tensors_) {
    const std::string what = "tensor \"" + t.name + "\" (" + ggml_type_name(t.type) + ", " + t.shape_string() + ")";
    RLHF_CHECK(t.offset % alignment_ == 0, p, ": ", what, " has data offset ", t.offset,
               ", not a multiple of the alignment ", alignment_, "; the file is corrupt");
    RLHF_CHECK(t.offset <= data_size && t.n_bytes <= data_size - t.offset, p, ": ", what, " needs ", t.n_bytes,
               " bytes at data offset ", t.offset, " (file byte ", data_offset_ + t.offset,
               ") but the data section has only ", data_size, " bytes; the file is truncated or the header lies");
    t.data = map_ + data_offset_ + t.offset;
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const auto& t : tensors_)
    if (t.n_bytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    RLHF_CHECK(a.offset + a.n_bytes <= b.offset, p, ": tensor \"", b.name, "\" at data offset ", b.offset,
               " overlaps tensor \"", a.name, "\" (", a.n_bytes, " bytes at ", a.offset, "); the header is corrupt");
  }
}

// ---- metadata accessors --------------------------------------------------------------------------

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

void GgufFile::wrong_type(const std::string& key, const GgufValue& v, const char* expected) const {
  RLHF_FAIL(path_.string(), ": metadata key \"", key, "\" is ", describe_type(v), ", expected ", expected);
}

const GgufValue& GgufFile::require(const std::string& key, const char* expected) const {
  const GgufValue* v = find(key);
  RLHF_CHECK(v, path_.string(), ": metadata key \"", key, "\" is missing (expected ", expected, ")");
  return *v;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(key, "STRING");
  if (v.type != GgufValueType::STRING) wrong_type(key, v, "STRING");
  return std::string(v.str);
}
std::string GgufFile::get_string(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = require(key, "an integer");
  if (v.is_array() || !is_integer_type(v.type)) wrong_type(key, v, "an integer");
  RLHF_CHECK(v.type != GgufValueType::UINT64 || v.uint_at(0) <= uint64_t(std::numeric_limits<int64_t>::max()),
             path_.string(), ": metadata key \"", key, "\" is ", v.uint_at(0), ", too large for int64");
  return v.int_at(0);
}
int64_t GgufFile::get_int(const std::string& key, int64_t def) const { return has(key) ? get_int(key) : def; }

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = require(key, "a number");
  if (v.is_array() || !(is_float_type(v.type) || is_integer_type(v.type))) wrong_type(key, v, "a number");
  return v.float_at(0);
}
double GgufFile::get_float(const std::string& key, double def) const { return has(key) ? get_float(key) : def; }

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = require(key, "BOOL");
  if (v.type != GgufValueType::BOOL) wrong_type(key, v, "BOOL");
  return v.uint_at(0) != 0;
}
bool GgufFile::get_bool(const std::string& key, bool def) const { return has(key) ? get_bool(key) : def; }

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = require(key, "ARRAY of STRING");
  if (!v.is_array() || v.elem_type != GgufValueType::STRING) wrong_type(key, v, "ARRAY of STRING");
  return {v.strings.begin(), v.strings.end()};
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = require(key, "an ARRAY of numbers");
  if (!v.is_array() || !(is_float_type(v.elem_type) || is_integer_type(v.elem_type)))
    wrong_type(key, v, "an ARRAY of numbers");
  std::vector<double> out(size_t(v.count));
  for (uint64_t i = 0; i < v.count; ++i) out[i] = v.float_at(i);
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = require(key, "an ARRAY of integers");
  if (!v.is_array() || !(is_integer_type(v.elem_type) || v.elem_type == GgufValueType::BOOL))
    wrong_type(key, v, "an ARRAY of integers");
  std::vector<int64_t> out(size_t(v.count));
  for (uint64_t i = 0; i < v.count; ++i) {
    RLHF_CHECK(v.elem_type != GgufValueType::UINT64 || v.uint_at(i) <= uint64_t(std::numeric_limits<int64_t>::max()),
               path_.string(), ": metadata key \"", key, "\"[", i, "] is ", v.uint_at(i), ", too large for int64");
    out[i] = v.int_at(i);
  }
  return out;
}

uint64_t GgufFile::get_array_size(const std::string& key) const {
  const GgufValue& v = require(key, "an ARRAY");
  if (!v.is_array()) wrong_type(key, v, "an ARRAY");
  return v.count;
}

// ---- tensors ---------------------------------------------------------------------------------------

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  RLHF_CHECK(t, path_.string(), ": no tensor named \"", name, "\"");
  return *t;
}

void GgufFile::dequantize(const GgufTensorInfo& t, float* out, int n_threads) const {
  const GgmlTypeTraits& tr = ggml_type_traits(t.type);
  RLHF_CHECK(tr.dequantizable, path_.string(), ": tensor \"", t.name, "\" has type ", tr.name,
             ", which is not supported for dequantisation (supported: ", ggml_dequantizable_type_names(),
             "); re-quantise the model to one of those, or convert from the original safetensors");
  const int64_t blocks = t.numel / tr.block_size;
  // Threads only pay for themselves on large tensors; each takes a contiguous range of blocks.
  constexpr int64_t kMinBlocksPerThread = 1 << 14;
  const int64_t n = std::max<int64_t>(1, std::min<int64_t>(n_threads, blocks / kMinBlocksPerThread));
  if (n == 1) return dequantize_row(t.type, t.data, out, t.numel);
  std::vector<std::thread> pool;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t b0 = blocks * k / n, b1 = blocks * (k + 1) / n;
    pool.emplace_back([&, b0, b1] {
      dequantize_row(t.type, t.data + b0 * tr.type_size, out + b0 * tr.block_size, (b1 - b0) * tr.block_size);
    });
  }
  for (auto& th : pool) th.join();
}

std::vector<float> GgufFile::dequantize(const std::string& name, int n_threads) const {
  const GgufTensorInfo& t = tensor(name);
  std::vector<float> out(size_t(t.numel));
  dequantize(t, out.data(), n_threads);
  return out;
}

}  // namespace rlhf
