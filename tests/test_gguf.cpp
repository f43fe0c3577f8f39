// GGUF reading and dequantisation. Three parts:
//  1. hand-built files: metadata of every value type through the typed accessors, known dequantised
//     values, and every way a header can be broken (truncated at every byte, counts of 2^40, string
//     lengths past the end, misaligned and overlapping offsets, unknown types, n_dims 5, overflowing
//     dims, rows that are not whole blocks, random mutations): each is one rlhf::Error naming the file,
//     never a crash, a huge allocation or a hang. No torch, no model code: this file also runs under
//     AddressSanitizer + UBSan.
//  2. fixtures written by the gguf Python package (tests/ref/gguf_fixtures.py, run by CTest as
//     gguf_fixtures_generate; directory $RLHF_GGUF_FIXTURE_DIR or the one compiled in, else skipped): every supported type must dequantise bit for bit
//     as gguf.quants.dequantize does, and metadata must read back as written.
//  3. $RLHF_GGUF_MODEL (optional, e.g. SmolLM2-135M-Instruct.Q4_1.gguf): open, list, dequantise all.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "io/json.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;
using test::TempDir;

// ---- a byte-level GGUF builder ---------------------------------------------------------------------

struct Bytes {
  std::string b;
  Bytes& u8(uint8_t v) { b.push_back(char(v)); return *this; }
  template <class T>
  Bytes& put(T v) {
    char tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.append(tmp, sizeof(T));
    return *this;
  }
  Bytes& u16(uint16_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& f32(float v) { return put(v); }
  Bytes& str(std::string_view s) { u64(s.size()); b.append(s); return *this; }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b += "GGUF";
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& key(std::string_view k, GgufValueType t) { return str(k).u32(uint32_t(t)); }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, GgmlType type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(uint32_t(type)).u64(offset);
  }
  Bytes& pad(size_t alignment) {
    while (b.size() % alignment) b.push_back('\0');
    return *this;
  }
};

constexpr uint16_t kHalfOne = 0x3C00, kHalfTwo = 0x4000, kHalfHalf = 0x3800, kHalfMinusHalf = 0xB800;

// The data of the valid file's tensors: "a" F32 {8, 2}, "b" Q8_0 {32, 2}, "c" Q4_0 {32}, "d" F16 {4}.
struct ValidFile {
  std::string bytes;
  size_t data_start = 0;
  size_t data_end = 0;  // end of the last tensor (padding follows)
};

ValidFile valid_file() {
  Bytes h;
  h.header(3, 4, 5);
  h.key("general.architecture", GgufValueType::STRING).str("llama");
  h.key("llama.block_count", GgufValueType::UINT32).u32(2);
  h.key("llama.rope.freq_base", GgufValueType::FLOAT32).f32(10000.0f);
  h.key("tokenizer.ggml.tokens", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::STRING)).u64(3);
  h.str("<s>").str("").str("Ġthe");
  h.key("tokenizer.ggml.add_bos_token", GgufValueType::BOOL).u8(1);
  h.tensor("a", {8, 2}, GgmlType::F32, 0);      // 64 bytes
  h.tensor("b", {32, 2}, GgmlType::Q8_0, 64);   // 68 bytes
  h.tensor("c", {32}, GgmlType::Q4_0, 160);     // 18 bytes
  h.tensor("d", {4}, GgmlType::F16, 192);       // 8 bytes
  h.pad(32);
  ValidFile v;
  v.data_start = h.b.size();
  Bytes d;
  for (int i = 0; i < 16; ++i) d.f32(float(i) - 7.5f);
  for (int blk = 0; blk < 2; ++blk) {
    d.u16(blk == 0 ? kHalfHalf : kHalfTwo);
    for (int j = 0; j < 32; ++j) d.u8(uint8_t(int8_t(j - 16)));
  }
  d.pad(32);
  d.u16(kHalfTwo);
  for (int j = 0; j < 16; ++j) d.u8(uint8_t(j | ((15 - j) << 4)));
  d.pad(32);
  d.u16(kHalfOne).u16(0x8000).u16(0x7C00).u16(0x0001);
  v.data_end = v.data_start + d.b.size();
  d.pad(32);
  v.bytes = h.b + d.b;
  return v;
}

std::filesystem::path write_file(const TempDir& dir, const std::string& bytes, const std::string& name = "t.gguf") {
  auto p = dir / name;
  test::write_bytes(p, bytes);
  return p;
}

// Expects opening `bytes` to fail with one rlhf::Error naming the file and containing `parts`.
void expect_broken(const std::string& bytes, std::initializer_list<std::string> parts, const char* what) {
  TempDir dir;
  auto p = write_file(dir, bytes, "broken.gguf");
  std::vector<std::string> all(parts);
  std::string msg = expect_error([&] { GgufFile f(p); }, {p.string()}, what);
  for (const auto& part : all) EXPECT_NE(msg.find(part), std::string::npos) << what << ": message lacks \"" << part << "\": " << msg;
}

// A file with the given metadata bytes (n_kv entries) and no tensors.
std::string meta_only(uint64_t n_kv, const Bytes& kvs, uint32_t version = 3) {
  Bytes h;
  h.header(version, 0, n_kv);
  return h.b + kvs.b;
}

// A file with one tensor info `info` (n_tensors 1, no metadata) and `data_bytes` zero bytes of data.
std::string one_tensor(const Bytes& info, size_t data_bytes, size_t alignment = 32) {
  Bytes h;
  h.header(3, 1, 0);
  h.b += info.b;
  h.pad(alignment);
  return h.b + std::string(data_bytes, '\0');
}

// ---- valid files ------------------------------------------------------------------------------------

TEST(Gguf, ReadsAValidFile) {
  TempDir dir;
  ValidFile v = valid_file();
  GgufFile f(write_file(dir, v.bytes));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), v.data_start);
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.metadata().size(), 5u);
  EXPECT_EQ(f.metadata()[0].key, "general.architecture");  // file order

  const GgufTensorInfo& a = f.tensor("a");
  EXPECT_EQ(a.type, GgmlType::F32);
  EXPECT_EQ(a.ne, (std::vector<int64_t>{8, 2}));
  EXPECT_EQ(a.torch_shape(), (std::vector<int64_t>{2, 8}));  // row-major [rows, cols]
  EXPECT_EQ(a.row_size(), 8);
  EXPECT_EQ(a.n_rows(), 2);
  EXPECT_EQ(a.numel, 16);
  EXPECT_EQ(a.n_bytes, 64u);
  EXPECT_EQ(a.shape_string(), "8 x 2");
  std::vector<float> av = f.dequantize("a");
  for (int i = 0; i < 16; ++i) EXPECT_EQ(av[i], float(i) - 7.5f);

  std::vector<float> bv = f.dequantize("b");  // Q8_0: y = q * d
  ASSERT_EQ(bv.size(), 64u);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(bv[j], float(j - 16) * 0.5f);
    EXPECT_EQ(bv[32 + j], float(j - 16) * 2.0f);
  }
  std::vector<float> cv = f.dequantize("c");  // Q4_0: low nibbles first, then high nibbles, minus 8, times d
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(cv[j], float(j - 8) * 2.0f);
    EXPECT_EQ(cv[16 + j], float(15 - j - 8) * 2.0f);
  }
  std::vector<float> dv = f.dequantize("d");
  EXPECT_EQ(dv[0], 1.0f);
  EXPECT_TRUE(dv[1] == 0.0f && std::signbit(dv[1]));
  EXPECT_TRUE(std::isinf(dv[2]) && dv[2] > 0);
  EXPECT_EQ(dv[3], std::ldexp(1.0f, -24));  // the smallest fp16 subnormal

  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  expect_error([&] { f.tensor("nope"); }, {"t.gguf", "no tensor named \"nope\""});
}

TEST(Gguf, Fp16AndBf16Conversions) {
  const uint16_t h[] = {0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0400, 0x03FF, 0x0001, 0x7C00, 0xFC00, 0x3555};
  const float want[] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -14), 1023 * std::ldexp(1.0f, -24),
                        std::ldexp(1.0f, -24), INFINITY, -INFINITY, 0.333251953125f};
  float out[11];
  dequantize_row(GgmlType::F16, h, out, 11);
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(std::memcmp(&out[i], &want[i], 4), 0) << "fp16 0x" << std::hex << h[i] << " -> " << out[i];
  }
  const uint16_t nan16 = 0x7E01;
  dequantize_row(GgmlType::F16, &nan16, out, 1);
  uint32_t bits;
  std::memcpy(&bits, out, 4);
  EXPECT_EQ(bits, 0x7FC02000u);  // NaN payload kept
  const uint16_t b[] = {0x3F80, 0xC0A0, 0x0001};
  dequantize_row(GgmlType::BF16, b, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -5.0f);
  std::memcpy(&bits, &out[2], 4);
  EXPECT_EQ(bits, 0x00010000u);
}

TEST(Gguf, Q4_1AndQ5BitLayouts) {
  // Q4_1: y = q * d + m
  Bytes q41;
  q41.u16(kHalfOne).u16(kHalfMinusHalf);
  for (int j = 0; j < 16; ++j) q41.u8(uint8_t(j | (j << 4)));
  float y[32];
  dequantize_row(GgmlType::Q4_1, q41.b.data(), y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], float(j) - 0.5f);
    EXPECT_EQ(y[16 + j], float(j) - 0.5f);
  }
  // Q5_0: the fifth bit of value j is bit j of qh; y = (q - 16) * d
  Bytes q50;
  q50.u16(kHalfOne).u32(0xFFFF0000u);
  for (int j = 0; j < 16; ++j) q50.u8(0x00);
  dequantize_row(GgmlType::Q5_0, q50.b.data(), y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -16.0f);
    EXPECT_EQ(y[16 + j], 0.0f);
  }
}

TEST(Gguf, EveryValueTypeThroughTheAccessors) {
  Bytes kv;
  uint64_t n = 0;
  auto k = [&](const char* key, GgufValueType t) -> Bytes& { ++n; return kv.key(key, t); };
  k("u8", GgufValueType::UINT8).u8(200);
  k("i8", GgufValueType::INT8).u8(uint8_t(int8_t(-100)));
  k("u16", GgufValueType::UINT16).u16(60000);
  k("i16", GgufValueType::INT16).put<int16_t>(-30000);
  k("u32", GgufValueType::UINT32).u32(4000000000u);
  k("i32", GgufValueType::INT32).put<int32_t>(-2000000000);
  k("f32", GgufValueType::FLOAT32).f32(1e-5f);
  k("bool", GgufValueType::BOOL).u8(0);
  k("str", GgufValueType::STRING).str("héllo\nworld");
  k("u64", GgufValueType::UINT64).u64(uint64_t(1) << 63);
  k("u64small", GgufValueType::UINT64).u64(12345);
  k("i64", GgufValueType::INT64).put<int64_t>(-(int64_t(1) << 62));
  k("f64", GgufValueType::FLOAT64).put<double>(0.1);
  k("arr_str", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::STRING)).u64(3).str("a").str("").str("日本");
  k("arr_f32", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::FLOAT32)).u64(2).f32(-0.5f).f32(2.0f);
  k("arr_i32", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::INT32)).u64(3).put<int32_t>(1).put<int32_t>(-3).put<int32_t>(7);
  k("arr_bool", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::BOOL)).u64(2).u8(1).u8(0);
  k("arr_u64", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::UINT64)).u64(1).u64(~uint64_t(0));
  k("arr_empty", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::INT32)).u64(0);
  k("arr_nested", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::ARRAY)).u64(2);
  kv.u32(uint32_t(GgufValueType::UINT8)).u64(2).u8(1).u8(2);
  kv.u32(uint32_t(GgufValueType::STRING)).u64(1).str("x");
  TempDir dir;
  auto p = write_file(dir, meta_only(n, kv));
  GgufFile f(p);
  EXPECT_EQ(f.metadata().size(), n);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000LL);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_float("f32"), double(1e-5f));
  EXPECT_EQ(f.get_float("u32"), 4e9);  // integers are numbers too
  EXPECT_FALSE(f.get_bool("bool"));
  EXPECT_EQ(f.get_string("str"), "héllo\nworld");
  EXPECT_EQ(f.find("u64")->uint_at(0), uint64_t(1) << 63);
  EXPECT_EQ(f.get_int("u64small"), 12345);
  EXPECT_EQ(f.get_int("i64"), -(int64_t(1) << 62));
  EXPECT_EQ(f.get_float("f64"), 0.1);
  EXPECT_EQ(f.get_string_array("arr_str"), (std::vector<std::string>{"a", "", "日本"}));
  EXPECT_EQ(f.get_float_array("arr_f32"), (std::vector<double>{-0.5, 2.0}));
  EXPECT_EQ(f.get_int_array("arr_i32"), (std::vector<int64_t>{1, -3, 7}));
  EXPECT_EQ(f.get_int_array("arr_bool"), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(f.get_float_array("arr_i32"), (std::vector<double>{1, -3, 7}));
  EXPECT_EQ(f.get_array_size("arr_str"), 3u);
  EXPECT_EQ(f.get_array_size("arr_empty"), 0u);
  EXPECT_TRUE(f.get_int_array("arr_empty").empty());
  const GgufValue* nested = f.find("arr_nested");
  ASSERT_TRUE(nested && nested->is_array());
  EXPECT_EQ(nested->elem_type, GgufValueType::ARRAY);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].elem_type, GgufValueType::UINT8);
  EXPECT_EQ(nested->items[0].int_at(1), 2);
  EXPECT_EQ(nested->items[1].strings.at(0), "x");
  EXPECT_EQ(gguf_value_to_string(*nested), "[2 x ARRAY] [2 x UINT8] 1, 2, [1 x STRING] \"x\"");
  EXPECT_EQ(gguf_value_to_string(*f.find("str")), "\"héllo\\nworld\"");
  EXPECT_EQ(gguf_value_to_string(*f.find("arr_bool")), "[2 x BOOL] true, false");

  // defaults, presence, and errors naming the key and the expected type
  EXPECT_TRUE(f.has("u8"));
  EXPECT_FALSE(f.has("nope"));
  EXPECT_EQ(f.get_int("nope", 7), 7);
  EXPECT_EQ(f.get_string("nope", "d"), "d");
  EXPECT_EQ(f.get_float("nope", 1.5), 1.5);
  EXPECT_TRUE(f.get_bool("nope", true));
  expect_error([&] { f.get_int("nope"); }, {p.string(), "\"nope\" is missing", "integer"});
  expect_error([&] { f.get_int("str"); }, {p.string(), "\"str\" is STRING, expected an integer"});
  expect_error([&] { f.get_int("f32"); }, {"\"f32\" is FLOAT32, expected an integer"});
  expect_error([&] { f.get_int("u64"); }, {"\"u64\"", "too large for int64"});
  expect_error([&] { f.get_string("u8"); }, {"\"u8\" is UINT8, expected STRING"});
  expect_error([&] { f.get_bool("u8"); }, {"\"u8\" is UINT8, expected BOOL"});
  expect_error([&] { f.get_float("str"); }, {"\"str\" is STRING, expected a number"});
  expect_error([&] { f.get_string_array("arr_i32"); }, {"\"arr_i32\" is ARRAY of INT32, expected ARRAY of STRING"});
  expect_error([&] { f.get_int_array("arr_f32"); }, {"\"arr_f32\" is ARRAY of FLOAT32, expected an ARRAY of integers"});
  expect_error([&] { f.get_int_array("arr_u64"); }, {"\"arr_u64\"[0]", "too large for int64"});
  expect_error([&] { f.get_float_array("arr_str"); }, {"ARRAY of STRING, expected an ARRAY of numbers"});
  expect_error([&] { f.get_array_size("u8"); }, {"\"u8\" is UINT8, expected an ARRAY"});
  expect_error([&] { f.get_string("arr_str"); }, {"\"arr_str\" is ARRAY of STRING, expected STRING"});
}

TEST(Gguf, VersionTwoAndCustomAlignment) {
  Bytes h;
  h.header(2, 1, 1);
  h.key("general.alignment", GgufValueType::UINT32).u32(64);
  h.tensor("w", {4}, GgmlType::F32, 0);
  h.pad(64);
  const size_t start = h.b.size();
  h.f32(1).f32(2).f32(3).f32(4);
  TempDir dir;
  GgufFile f(write_file(dir, h.b));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset(), start);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.dequantize("w"), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Gguf, EdgeShapesAndEmptyFiles) {
  // a 0-d tensor (one value), an empty tensor, and a file without tensors or metadata
  Bytes h;
  h.header(3, 2, 0);
  h.tensor("scalar", {}, GgmlType::F32, 0);
  h.tensor("empty", {0, 5}, GgmlType::Q4_K, 0);  // no bytes: may share an offset
  h.pad(32);
  h.f32(42.0f);
  TempDir dir;
  GgufFile f(write_file(dir, h.b));
  EXPECT_EQ(f.tensor("scalar").numel, 1);
  EXPECT_EQ(f.tensor("scalar").shape_string(), "scalar");
  EXPECT_EQ(f.dequantize("scalar"), std::vector<float>{42.0f});
  EXPECT_EQ(f.tensor("empty").numel, 0);
  EXPECT_EQ(f.tensor("empty").n_bytes, 0u);
  EXPECT_TRUE(f.dequantize("empty").empty());

  Bytes e;
  e.header(3, 0, 0);
  GgufFile g(write_file(dir, e.b, "empty.gguf"));
  EXPECT_TRUE(g.tensors().empty());
  EXPECT_TRUE(g.metadata().empty());
}

TEST(Gguf, ThreadsGiveTheSameFloats) {
  // 65536 Q8_0 blocks: enough for the threaded path (16384 blocks per thread at least)
  const uint64_t blocks = 65536;
  Bytes h;
  h.header(3, 1, 0);
  h.tensor("big", {32 * 256, blocks / 256}, GgmlType::Q8_0, 0);
  h.pad(32);
  std::mt19937 rng(7);
  for (uint64_t b = 0; b < blocks; ++b) {
    h.u16(uint16_t(0x2000 + rng() % 0x3000));
    for (int j = 0; j < 32; ++j) h.u8(uint8_t(rng()));
  }
  TempDir dir;
  GgufFile f(write_file(dir, h.b));
  std::vector<float> one = f.dequantize("big", 1), four = f.dequantize("big", 4);
  ASSERT_EQ(one.size(), blocks * 32);
  EXPECT_EQ(std::memcmp(one.data(), four.data(), one.size() * 4), 0);
}

TEST(Gguf, UnsupportedTypesAreRefusedByName) {
  Bytes info;
  info.tensor("blk.0.attn_q.weight", {256}, GgmlType::IQ2_XXS, 0);
  TempDir dir;
  auto p = write_file(dir, one_tensor(info, 66));
  GgufFile f(p);  // sized and listed
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").n_bytes, 66u);
  expect_error([&] { f.dequantize("blk.0.attn_q.weight"); },
               {p.string(), "\"blk.0.attn_q.weight\"", "type IQ2_XXS", "not supported", "Q4_K"});
  float y[256];
  expect_error([&] { dequantize_row(GgmlType::Q1_0, nullptr, y, 128); }, {"type Q1_0 is not supported"});
  expect_error([&] { dequantize_row(GgmlType::Q4_K, nullptr, y, 100); }, {"not a whole number of Q4_K blocks"});
}

// ---- broken files ---------------------------------------------------------------------------------------

TEST(GgufBroken, TruncatedAtEveryByte) {
  ValidFile v = valid_file();
  TempDir dir;
  auto p = dir / "cut.gguf";
  for (size_t cut = 0; cut < v.data_end; ++cut) {
    test::write_bytes(p, v.bytes.substr(0, cut));
    std::string what = "cut at " + std::to_string(cut);
    expect_error([&] { GgufFile f(p); }, {p.string()}, what.c_str());
  }
  // cuts inside the padding after the last tensor leave a complete file
  for (size_t cut = v.data_end; cut <= v.bytes.size(); ++cut) {
    test::write_bytes(p, v.bytes.substr(0, cut));
    EXPECT_NO_THROW(GgufFile f(p)) << "cut at " << cut;
  }
}

TEST(GgufBroken, MagicAndVersion) {
  expect_broken("GGU", {"truncated GGUF file (3 bytes"}, "3 bytes");
  expect_broken("", {"truncated GGUF file (0 bytes"}, "empty");
  expect_broken("GGML" + std::string(20, '\0'), {"not a GGUF file (magic \"GGML\""}, "magic");
  Bytes v1;
  v1.b = "GGUF";
  v1.u32(1).u32(0).u32(0);
  expect_broken(v1.b, {"GGUF version 1 is not supported", "2 and 3"}, "v1");
  Bytes v4;
  v4.header(4, 0, 0);
  expect_broken(v4.b, {"unsupported GGUF version 4"}, "v4");
  Bytes be;
  be.header(0x03000000u, 0, 0);
  expect_broken(be.b, {"big-endian"}, "big-endian");
  Bytes v0;
  v0.header(0, 0, 0);
  expect_broken(v0.b, {"GGUF version 0 is invalid"}, "version 0");
}

TEST(GgufBroken, CountsLargerThanTheFile) {
  Bytes t;
  t.header(3, uint64_t(1) << 40, 0);
  expect_broken(t.b, {"claims 1099511627776 tensors"}, "n_tensors 2^40");
  Bytes k;
  k.header(3, 0, uint64_t(1) << 40);
  expect_broken(k.b, {"claims 1099511627776 metadata entries"}, "n_kv 2^40");
  Bytes k2;
  k2.header(3, 0, ~uint64_t(0));
  expect_broken(k2.b, {"metadata entries"}, "n_kv 2^64-1");
  // counts the file could hold, but more entries than there are
  Bytes k3;
  k3.header(3, 0, 2);
  k3.key("a", GgufValueType::UINT32).u32(1);
  k3.b += std::string(20, '\0');
  expect_broken(k3.b, {"metadata entry 1"}, "second entry missing");
}

TEST(GgufBroken, StringsAndArraysPastTheEnd) {
  Bytes key_len;
  key_len.u64(uint64_t(1) << 40).b += std::string(16, 'x');
  expect_broken(meta_only(1, key_len), {"metadata entry 0 key", "string length 1099511627776"}, "key length");
  Bytes val_len;
  val_len.key("general.name", GgufValueType::STRING).u64(~uint64_t(0)).b += "abc";
  expect_broken(meta_only(1, val_len), {"metadata key \"general.name\"", "string length 18446744073709551615"}, "value length");
  Bytes arr;
  arr.key("tokenizer.ggml.scores", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::FLOAT32)).u64(uint64_t(1) << 40);
  arr.f32(0);
  expect_broken(meta_only(1, arr), {"\"tokenizer.ggml.scores\"", "claims 1099511627776 elements of type FLOAT32"}, "array count");
  Bytes sarr;
  sarr.key("tokenizer.ggml.tokens", GgufValueType::ARRAY).u32(uint32_t(GgufValueType::STRING)).u64(3);
  sarr.str("a").u64(1000).b += std::string(40, 'z');
  expect_broken(meta_only(1, sarr), {"\"tokenizer.ggml.tokens\"[1]", "string length 1000"}, "string in array");
  Bytes name;
  name.header(3, 1, 0);
  name.u64(uint64_t(1) << 40).b += std::string(40, 'n');
  expect_broken(name.b, {"tensor info 0 name", "string length 1099511627776"}, "tensor name length");
}

TEST(GgufBroken, TypesAndShapes) {
  Bytes vt;
  vt.key("x", GgufValueType(13)).u32(0);
  expect_broken(meta_only(1, vt), {"metadata key \"x\"", "unknown value type 13"}, "value type 13");
  Bytes et;
  et.key("x", GgufValueType::ARRAY).u32(99).u64(1).u32(0);
  expect_broken(meta_only(1, et), {"\"x\" (array element type)", "unknown value type 99"}, "element type 99");
  Bytes deep;
  deep.key("x", GgufValueType::ARRAY);
  for (int i = 0; i < 20; ++i) deep.u32(uint32_t(GgufValueType::ARRAY)).u64(1);
  deep.u32(uint32_t(GgufValueType::UINT8)).u64(1).u8(0);
  expect_broken(meta_only(1, deep), {"nests arrays more than 8 deep"}, "deep nesting");

  auto info = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset = 0) {
    Bytes b;
    b.tensor("w", std::move(ne), GgmlType(type), offset);
    return b;
  };
  expect_broken(one_tensor(info({32}, 99), 64), {"tensor \"w\"", "unknown ggml type id 99"}, "ggml type 99");
  expect_broken(one_tensor(info({32}, 31), 64), {"tensor \"w\"", "Q4_0_4_4 (31)", "no longer"}, "removed type");
  expect_broken(one_tensor(info({32}, 4), 64), {"Q4_2 (4)"}, "removed type 4");
  Bytes five;
  five.str("w").u32(5);
  for (int i = 0; i < 5; ++i) five.u64(2);
  five.u32(0).u64(0);
  expect_broken(one_tensor(five, 256), {"tensor \"w\" has n_dims 5", "at most 4"}, "n_dims 5");
  expect_broken(one_tensor(info({uint64_t(1) << 40, uint64_t(1) << 40}, 0), 64), {"tensor \"w\"", "overflows int64"},
                "dims overflow");
  expect_broken(one_tensor(info({uint64_t(1) << 63}, 0), 64), {"tensor \"w\" dimension 0", "negative"}, "dim 2^63");
  expect_broken(one_tensor(info({uint64_t(1) << 61, 2}, 0), 64), {"tensor \"w\"", "overflows"}, "bytes overflow");
  expect_broken(one_tensor(info({33, 2}, uint32_t(GgmlType::Q4_0)), 128),
                {"tensor \"w\" of type Q4_0 has rows of 33 values", "block size 32"}, "not whole blocks");
  expect_broken(one_tensor(info({1000, 1000}, 0), 64), {"tensor \"w\" (F32, 1000 x 1000) needs 4000000 bytes",
                                                        "the data section has only 64 bytes"}, "past the end");
  expect_broken(one_tensor(info({4}, 0, uint64_t(1) << 62), 64), {"data offset 4611686018427387904"}, "offset past the end");
  expect_broken(one_tensor(info({4}, 0, 16), 64), {"data offset 16", "not a multiple of the alignment 32"}, "misaligned");
}

TEST(GgufBroken, OverlapsDuplicatesAndAlignment) {
  Bytes ov;
  ov.header(3, 2, 0);
  ov.tensor("a", {16}, GgmlType::F32, 0).tensor("b", {8}, GgmlType::F32, 32);  // a is 64 bytes
  ov.pad(32);
  ov.b += std::string(128, '\0');
  expect_broken(ov.b, {"tensor \"b\" at data offset 32 overlaps tensor \"a\""}, "overlap");
  Bytes same;
  same.header(3, 2, 0);
  same.tensor("a", {8}, GgmlType::F32, 0).tensor("b", {8}, GgmlType::F32, 0);
  same.pad(32);
  same.b += std::string(64, '\0');
  expect_broken(same.b, {"overlaps"}, "same offset");
  Bytes dup;
  dup.header(3, 2, 0);
  dup.tensor("a", {8}, GgmlType::F32, 0).tensor("a", {8}, GgmlType::F32, 32);
  dup.pad(32);
  dup.b += std::string(64, '\0');
  expect_broken(dup.b, {"tensor \"a\" appears twice"}, "duplicate tensor");
  Bytes noname;
  noname.header(3, 1, 0);
  noname.tensor("", {8}, GgmlType::F32, 0);
  noname.pad(32);
  noname.b += std::string(32, '\0');
  expect_broken(noname.b, {"tensor info 0 has an empty name"}, "empty name");
  Bytes dupk;
  dupk.key("k", GgufValueType::UINT8).u8(1).key("k", GgufValueType::UINT8).u8(2);
  expect_broken(meta_only(2, dupk), {"metadata key \"k\" appears twice"}, "duplicate key");
  Bytes emptyk;
  emptyk.key("", GgufValueType::UINT8).u8(1).b += std::string(8, '\0');
  expect_broken(meta_only(1, emptyk), {"metadata entry 0 has an empty key"}, "empty key");
  Bytes a3;
  a3.key("general.alignment", GgufValueType::UINT32).u32(48);
  expect_broken(meta_only(1, a3), {"general.alignment is 48, not a power of two"}, "alignment 48");
  Bytes a0;
  a0.key("general.alignment", GgufValueType::UINT32).u32(0);
  expect_broken(meta_only(1, a0), {"general.alignment is 0"}, "alignment 0");
  Bytes at;
  at.key("general.alignment", GgufValueType::UINT64).u64(32);
  expect_broken(meta_only(1, at), {"\"general.alignment\" is UINT64, expected UINT32"}, "alignment type");
  // the data section would start past the end of the file
  Bytes nodata;
  nodata.header(3, 1, 0);
  nodata.tensor("w", {0}, GgmlType::F32, 0);
  expect_broken(nodata.b, {"the data section would start at byte 64"}, "no room for padding");
}

// Random corruption of a valid file: every outcome is either a file that opens (and then dequantises
// without reading out of bounds) or one rlhf::Error naming the file.
TEST(GgufBroken, RandomMutations) {
  ValidFile v = valid_file();
  TempDir dir;
  auto p = dir / "fuzz.gguf";
  std::mt19937_64 rng(20240611);
  int opened = 0, refused = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = v.bytes;
    const int n_mut = 1 + int(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t at = rng() % (iter % 2 ? v.data_start : b.size());  // mostly the header
      switch (rng() % 4) {
        case 0: b[at] = char(rng()); break;
        case 1: b[at] = char(0xff); break;
        case 2: b[at] = char(b[at] ^ (1 << (rng() % 8))); break;
        default: b.resize(at); break;
      }
      if (b.empty()) break;
    }
    test::write_bytes(p, b);
    try {
      GgufFile f(p);
      ++opened;
      for (const auto& t : f.tensors()) {
        if (!ggml_type_traits(t.type).dequantizable || t.numel > (1 << 20)) continue;
        std::vector<float> out(size_t(t.numel));
        f.dequantize(t, out.data());
      }
      for (const auto& kv : f.metadata()) (void)gguf_value_to_string(kv.value);
    } catch (const rlhf::Error& e) {
      ++refused;
      ASSERT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": a non-rlhf exception: " << e.what();
    }
  }
  EXPECT_GT(opened, 0);
  EXPECT_GT(refused, 0);
}

TEST(GgufBroken, NotAFile) {
  TempDir dir;
  expect_error([&] { GgufFile f(dir / "missing.gguf"); }, {"missing.gguf", "cannot open"});
  expect_error([&] { GgufFile f(dir.path()); }, {"not a regular file"});
}

// ---- the gguf Python package's fixtures ---------------------------------------------------------------

// $RLHF_GGUF_FIXTURE_DIR, else the directory CTest's gguf_fixtures_generate writes (compiled in when the
// venv existed at configure time: then a missing manifest fails the test instead of skipping it).
const char* fixture_dir() {
  const char* d = std::getenv("RLHF_GGUF_FIXTURE_DIR");
  if (d && *d) return d;
#ifdef RLHF_GGUF_FIXTURE_DIR
  return RLHF_GGUF_FIXTURE_DIR;
#else
  return nullptr;
#endif
}

Json read_manifest(const std::filesystem::path& dir) {
  std::ifstream in(dir / "manifest.json");
  if (!in) throw std::runtime_error("cannot read " + (dir / "manifest.json").string());
  return Json::parse(in);
}

std::vector<float> read_f32(const std::filesystem::path& p) {
  std::string b = test::read_bytes(p);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// Bit-exact comparison. The only latitude: where both are NaN, the payload may differ (numpy's
// float16 -> float32 cast and ggml's conversion need not agree on signalling NaNs), counted in `nan`.
struct Diff {
  int64_t mismatches = 0, nan_payload = 0;
  int64_t first = -1;
};
Diff compare_bits(const std::vector<float>& got, const std::vector<float>& want) {
  Diff d;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], 4) == 0) continue;
    if (std::isnan(got[i]) && std::isnan(want[i])) {
      ++d.nan_payload;
      continue;
    }
    if (d.first < 0) d.first = int64_t(i);
    ++d.mismatches;
  }
  return d;
}

TEST(GgufFixtures, EveryTypeMatchesTheGgufPackageBitForBit) {
  const char* dir = fixture_dir();
  if (!dir) GTEST_SKIP() << "RLHF_GGUF_FIXTURE_DIR is not set (run tests/ref/gguf_fixtures.py --out DIR)";
  Json m = read_manifest(dir);
  std::map<std::string, int> compared;  // type -> tensors compared
  int refused = 0;
  for (const auto& file : m["files"]) {
    const auto path = std::filesystem::path(dir) / file["file"].get<std::string>();
    GgufFile f(path);
    EXPECT_EQ(f.version(), file["version"].get<uint32_t>()) << path;
    EXPECT_EQ(f.alignment(), file["alignment"].get<uint64_t>()) << path;
    EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
    ASSERT_EQ(f.tensors().size(), file["tensors"].size()) << path;
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const Json& e = file["tensors"][i];
      const GgufTensorInfo& t = f.tensors()[i];  // file order = writing order
      const std::string name = e["name"].get<std::string>();
      ASSERT_EQ(t.name, name);
      EXPECT_STREQ(ggml_type_name(t.type), e["type"].get<std::string>().c_str()) << name;
      EXPECT_EQ(t.ne, e["ne"].get<std::vector<int64_t>>()) << name;
      EXPECT_EQ(t.numel, e["numel"].get<int64_t>()) << name;
      EXPECT_EQ(t.offset % f.alignment(), 0u) << name;
      if (e["ref"].is_null()) {
        expect_error([&] { f.dequantize(t, nullptr); }, {path.string(), "\"" + name + "\"", "not supported"}, name.c_str());
        ++refused;
        continue;
      }
      const std::vector<float> want = read_f32(std::filesystem::path(dir) / e["ref"].get<std::string>());
      ASSERT_EQ(int64_t(want.size()), t.numel) << name;
      std::vector<float> got(size_t(t.numel));
      f.dequantize(t, got.data(), 3);
      Diff d = compare_bits(got, want);
      EXPECT_EQ(d.mismatches, 0) << name << " (" << e["type"] << "): " << d.mismatches << " of " << t.numel
                                 << " values differ; first at " << d.first << ": got "
                                 << (d.first >= 0 ? got[size_t(d.first)] : 0.f) << ", want "
                                 << (d.first >= 0 ? want[size_t(d.first)] : 0.f);
      EXPECT_EQ(d.nan_payload, 0) << name << ": NaN payloads differ";
      compared[e["type"].get<std::string>()]++;
    }
  }
  std::string summary;
  for (auto& [type, n] : compared) summary += type + "x" + std::to_string(n) + " ";
  std::cout << "[ gguf     ] compared bit for bit: " << summary << "(" << compared.size() << " types); refused "
            << refused << " unsupported tensors\n";
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K",
                           "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS", "MXFP4", "TQ2_0", "F64", "I8", "I16", "I32", "I64"})
    EXPECT_GT(compared[type], 0) << "no fixture tensor of type " << type;
}

TEST(GgufFixtures, MetadataReadsBackAsWritten) {
  const char* dir = fixture_dir();
  if (!dir) GTEST_SKIP() << "RLHF_GGUF_FIXTURE_DIR is not set (run tests/ref/gguf_fixtures.py --out DIR)";
  Json m = read_manifest(dir);
  int checked = 0;
  for (const auto& file : m["files"]) {
    GgufFile f(std::filesystem::path(dir) / file["file"].get<std::string>());
    for (const auto& e : file["metadata"]) {
      const std::string key = e["key"].get<std::string>(), type = e["type"].get<std::string>();
      const GgufValue* v = f.find(key);
      ASSERT_TRUE(v) << key;
      EXPECT_EQ(gguf_value_type_name(v->type), type) << key;
      const Json& want = e["value"];
      if (type == "STRING") {
        EXPECT_EQ(f.get_string(key), want.get<std::string>()) << key;
      } else if (type == "BOOL") {
        EXPECT_EQ(f.get_bool(key), want.get<bool>()) << key;
      } else if (type == "FLOAT32" || type == "FLOAT64") {
        EXPECT_EQ(f.get_float(key), want.get<double>()) << key;
      } else if (type == "UINT64") {
        EXPECT_EQ(v->uint_at(0), want.get<uint64_t>()) << key;
      } else if (type != "ARRAY") {
        EXPECT_EQ(f.get_int(key), want.get<int64_t>()) << key;
      } else {
        const std::string et = e["elem_type"].get<std::string>();
        EXPECT_EQ(gguf_value_type_name(v->elem_type), et) << key;
        ASSERT_EQ(v->count, want.size()) << key;
        if (et == "STRING") {
          EXPECT_EQ(f.get_string_array(key), want.get<std::vector<std::string>>()) << key;
        } else if (et == "FLOAT32" || et == "FLOAT64") {
          EXPECT_EQ(f.get_float_array(key), want.get<std::vector<double>>()) << key;
        } else if (et == "BOOL") {
          for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(v->uint_at(i) != 0, want[i].get<bool>()) << key;
        } else if (et == "UINT64") {
          for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(v->uint_at(i), want[i].get<uint64_t>()) << key;
        } else if (et == "ARRAY") {
          ASSERT_EQ(v->items.size(), want.size()) << key;
          for (size_t i = 0; i < want.size(); ++i) {
            const GgufValue& item = v->items[i];
            ASSERT_EQ(item.count, want[i].size()) << key << "[" << i << "]";
            for (size_t j = 0; j < want[i].size(); ++j) {
              if (want[i][j].is_string()) EXPECT_EQ(item.strings.at(j), want[i][j].get<std::string>()) << key;
              else EXPECT_EQ(item.int_at(j), want[i][j].get<int64_t>()) << key;
            }
          }
        } else {
          EXPECT_EQ(f.get_int_array(key), want.get<std::vector<int64_t>>()) << key;
        }
      }
      ++checked;
    }
    EXPECT_EQ(f.metadata().size(), file["metadata"].size());
  }
  EXPECT_GE(checked, 30);
}

// Truncating a real package-written file anywhere before the end of its last tensor is an error.
TEST(GgufFixtures, TruncatedPackageFilesAreRefused) {
  const char* dir = fixture_dir();
  if (!dir) GTEST_SKIP() << "RLHF_GGUF_FIXTURE_DIR is not set";
  const std::string bytes = test::read_bytes(std::filesystem::path(dir) / "meta_v3.gguf");
  uint64_t end = 0;
  {
    GgufFile f(std::filesystem::path(dir) / "meta_v3.gguf");
    for (const auto& t : f.tensors()) end = std::max(end, f.data_offset() + t.offset + t.n_bytes);
  }
  TempDir tmp;
  auto p = tmp / "cut.gguf";
  for (uint64_t cut = 0; cut < end; ++cut) {
    test::write_bytes(p, bytes.substr(0, cut));
    expect_error([&] { GgufFile f(p); }, {p.string()}, ("cut at " + std::to_string(cut)).c_str());
  }
}

// ---- a real model, when given ---------------------------------------------------------------------------

TEST(GgufModel, OpensListsAndDequantisesEveryTensor) {
  const char* model = std::getenv("RLHF_GGUF_MODEL");
  if (!model || !*model) GTEST_SKIP() << "RLHF_GGUF_MODEL is not set";
  auto t0 = std::chrono::steady_clock::now();
  GgufFile f(model);
  auto t1 = std::chrono::steady_clock::now();
  std::map<std::string, int> types;
  int64_t values = 0;
  std::vector<float> buf;
  for (const auto& t : f.tensors()) {
    buf.resize(size_t(t.numel));
    f.dequantize(t, buf.data());
    for (float x : buf) ASSERT_TRUE(std::isfinite(x)) << t.name;
    types[ggml_type_name(t.type)]++;
    values += t.numel;
  }
  auto t2 = std::chrono::steady_clock::now();
  std::cout << "[ gguf     ] " << model << ": GGUF v" << f.version() << ", " << f.metadata().size() << " keys, "
            << f.tensors().size() << " tensors, " << values << " values; types:";
  for (auto& [k, n] : types) std::cout << " " << k << "x" << n;
  std::cout << "\n[ gguf     ] open " << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms, dequantise all "
            << std::chrono::duration<double, std::milli>(t2 - t1).count() << " ms (1 thread, incl. finiteness check)\n";
  for (const auto& kv : f.metadata()) std::cout << "  " << kv.key << " = " << gguf_value_to_string(kv.value, 4) << "\n";
}

}  // namespace
}  // namespace rlhf
