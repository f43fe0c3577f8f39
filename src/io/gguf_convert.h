// GGUF -> Hugging Face model directory (`rlhf convert --from-gguf`): config.json from the `<arch>.*`
// metadata, model.safetensors from the dequantised tensors (HF names, Llama's Q/K permutation undone,
// GPT-2's Conv1D weights transposed back, tied embeddings when there is no separate output.weight),
// and the tokenizer files of gguf_tokenizer.h. Architectures: llama (Llama, Mistral, SmolLM, ...),
// qwen2, gpt2. dev/GGUF.md records where each rule comes from (llama.cpp's convert_hf_to_gguf.py,
// gguf-py, transformers' GGUF loader) and what was checked.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/json.h"

namespace rlhf {

enum class SaveDtype { F32, BF16, F16 };

struct GgufConvertOptions {
  SaveDtype dtype = SaveDtype::F32;  // weights on disk; F32 keeps the dequantised values exactly
  int threads = 1;                   // dequantisation threads
};

struct GgufConvertStats {
  int64_t n_tensors = 0;   // written to model.safetensors
  int64_t n_values = 0;
  uint64_t bytes_written = 0;
  std::string describe;    // "llama 30L 576d 9h/3kv, 134.5M params, tied embeddings"
};

// One HF tensor and where it comes from in the GGUF file.
struct GgufTensorPlan {
  std::string hf_name;
  const GgufTensorInfo* src = nullptr;
  std::vector<int64_t> shape;  // the HF (row-major) shape
  enum class Op { Copy, UnpermuteQ, UnpermuteK, Transpose } op = Op::Copy;
};

// The HF config.json for the file's architecture (validated by ModelConfig::from_json). Errors name
// the file and the key ("model.gguf: general.architecture \"mamba\" is not supported; ...").
Json gguf_hf_config(const GgufFile& f);

// The tensor list of model.safetensors, in file order, with shapes checked against the config: a
// missing tensor, an unexpected one or a wrong shape is one error naming the file and the tensor.
std::vector<GgufTensorPlan> gguf_tensor_plan(const GgufFile& f, const Json& config);

// Writes config.json, model.safetensors, generation_config.json and the tokenizer files into `out`
// (an existing directory; each file through a temporary name, renamed when complete). Tensors are
// dequantised one at a time, so memory holds the mapping and one tensor.
GgufConvertStats convert_gguf(const GgufFile& f, const std::filesystem::path& out, const GgufConvertOptions& opt);

// The metadata (arrays shortened) and the tensor table, for `rlhf convert --from-gguf F --list`.
std::string gguf_listing(const GgufFile& f);

// Undoes llama.cpp's permute(w, n_head, n_head) of a Llama q_proj / k_proj weight or bias: `rows`
// rows of `cols` floats, `n_head` heads (head_count for Q, head_count_kv for K). From src to dst.
void gguf_unpermute_rows(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head);

// The decimal that a FLOAT32 metadata value was written from: the shortest one that rounds to the
// same float (1e-05, not 9.99999974738e-06).
double gguf_float32_decimal(double v);

}  // namespace rlhf
