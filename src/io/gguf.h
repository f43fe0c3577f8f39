// GGUF, llama.cpp's model container (versions 2 and 3): memory-mapped, fully bounds-checked reading of
// the metadata and the tensor infos, and dequantisation of tensor data to float32 exactly as
// ggml-quants.c's dequantize_row_* does. No libtorch here: a converter wraps the floats itself.
//
// Layout, all little-endian (ggml/src/gguf.cpp, gguf-py/gguf/gguf_reader.py):
//   "GGUF", u32 version, u64 n_tensors, u64 n_kv
//   n_kv x      { string key, u32 value type, value }
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
//   padding to general.alignment (u32, a power of two, default 32), then the data section; each tensor
//   starts at data + offset, a multiple of the alignment.
// A string is u64 length + bytes (no NUL); an array is u32 element type + u64 count + elements
// (arrays of strings and of arrays are allowed; llama.cpp itself refuses arrays of arrays).
//
// Shapes: ne[0] is the fastest-varying dimension (ggml order, the reverse of PyTorch's). A 2-D weight
// with ne = {cols, rows} is the row-major [rows, cols] matrix transformers stores (nn.Linear's
// [out_features, in_features]): element (r, c) is out[r * ne[0] + c], and torch_shape() returns the
// reversed ne. Quantised blocks run along ne[0] and never cross a row (ne[0] % block size == 0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rlhf {

// Metadata value types (gguf.h's enum gguf_type).
enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);  // "UINT32", ...; "?" for an unknown id

// Tensor types (ggml.h's enum ggml_type). Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 ...) and 36-38
// (IQ4_NL_4_4 ...) were removed from ggml and are refused, as are ids above Q1_0.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;     // "Q4_K"
  int64_t block_size;   // values per block (1 for plain types)
  int64_t type_size;    // bytes per block
  bool dequantizable;   // dequantize_row() supports it
};
// The traits of ggml type id `id`, or nullptr when this reader does not know the id.
const GgmlTypeTraits* ggml_type_traits(uint32_t id);
const GgmlTypeTraits& ggml_type_traits(GgmlType t);
const char* ggml_type_name(GgmlType t);
// "F32 F16 BF16 ..." for messages.
std::string ggml_dequantizable_type_names();

// Dequantises `n` values of `type` (n a multiple of its block size) from `src` to float32 in `dst`,
// bit for bit as ggml-quants.c's dequantize_row_<type> (and the gguf Python package's dequantize).
// Throws rlhf::Error "type X is not supported" for a type without a kernel.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// One metadata value. Strings and numeric data point into the mapped file: a GgufValue lives as long
// as the GgufFile that holds it (the accessors of GgufFile return copies).
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;       // a scalar type, STRING or ARRAY
  GgufValueType elem_type = GgufValueType::UINT8;  // ARRAY: the elements' type
  uint64_t count = 1;                              // ARRAY: the number of elements; 1 for a scalar
  const uint8_t* data = nullptr;                   // numeric/bool scalar or array: count elements
  std::string_view str;                            // STRING
  std::vector<std::string_view> strings;           // ARRAY of STRING
  std::vector<GgufValue> items;                    // ARRAY of ARRAY

  bool is_array() const { return type == GgufValueType::ARRAY; }
  // Element i of a numeric or bool scalar/array (i = 0 for a scalar), converted; no range check.
  int64_t int_at(uint64_t i) const;     // integer and bool types (UINT64 above INT64_MAX wraps: check first)
  uint64_t uint_at(uint64_t i) const;   // integer and bool types, as stored
  double float_at(uint64_t i) const;    // every numeric type
};

// "llama", 30, 1e-05, true, "[49152 x STRING] <|endoftext|>, <|im_start|>, ..." for listings.
std::string gguf_value_to_string(const GgufValue& v, size_t max_items = 8);

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;        // ggml order: ne[0] is the fastest-varying (row length); 0..4 entries
  uint64_t offset = 0;            // from the start of the data section (a multiple of the alignment)
  uint64_t n_bytes = 0;           // numel / block size * type size
  int64_t numel = 1;              // the product of ne (1 for n_dims 0)
  const uint8_t* data = nullptr;  // into the mapping

  int64_t row_size() const { return ne.empty() ? 1 : ne[0]; }
  int64_t n_rows() const { return row_size() == 0 ? 0 : numel / row_size(); }
  std::vector<int64_t> torch_shape() const { return {ne.rbegin(), ne.rend()}; }  // row-major order
  std::string shape_string() const;  // "576 x 49152" (ggml order, as llama.cpp prints)
};

// One .gguf file, mapped read-only. The constructor validates the whole header against the file size:
// a truncated file or a header that lies (counts, string lengths, types, shapes, offsets, overlaps) is
// one rlhf::Error naming the file and what is wrong. Every count is bounded by the bytes left in the
// file before anything is allocated, so a corrupt header cannot ask for a huge allocation.
class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  uint64_t file_size() const { return size_; }

  // ---- metadata, in file order ----
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  const GgufValue* find(const std::string& key) const;
  // Typed accessors. A missing key (for the forms without a default) or a value of another type is an
  // error naming the file, the key, the type found and the type expected.
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  int64_t get_int(const std::string& key) const;  // any integer type that fits int64
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;  // FLOAT32, FLOAT64 or an integer type
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool def) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;  // numeric elements
  std::vector<int64_t> get_int_array(const std::string& key) const;   // integer or bool elements
  uint64_t get_array_size(const std::string& key) const;

  // ---- tensors, in file order ----
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& tensor(const std::string& name) const;  // error naming the file when missing
  // Writes t.numel floats (t from this file's tensors()). Unsupported types are an error naming the
  // file, the tensor and its type. n_threads > 1 splits the blocks over that many threads.
  void dequantize(const GgufTensorInfo& t, float* out, int n_threads = 1) const;
  std::vector<float> dequantize(const std::string& name, int n_threads = 1) const;

 private:
  void open_and_validate();
  void release();
  [[noreturn]] void wrong_type(const std::string& key, const GgufValue& v, const char* expected) const;
  const GgufValue& require(const std::string& key, const char* expected) const;

  std::filesystem::path path_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace rlhf
