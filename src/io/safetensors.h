// Safetensors: memory-mapped, fully bounds-checked reading (single file or a sharded
// model.safetensors.index.json) and atomic writing. Format: u64 little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {...}}, data.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rlhf {

struct StTensorInfo {
  std::string name;
  std::string dtype;            // "F32", "BF16", "F16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

// One .safetensors file, mapped read-only. The constructor validates the whole header against
// the file size: a truncated file, a header that lies about offsets, dtypes or sizes is an error
// naming the file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<StTensorInfo>& tensors() const { return infos_; }
  const StTensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A copy of the tensor converted to `dtype` (float types only convert among themselves).
  torch::Tensor load(const std::string& name, torch::ScalarType dtype = torch::kFloat) const;

 private:
  void open_and_validate();
  void release();

  std::filesystem::path path_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::vector<StTensorInfo> infos_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model directory: model.safetensors, or model.safetensors.index.json and its
// shards, or a single .safetensors file path.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::filesystem::path& dir_or_file,
                             const std::string& basename = "model");
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const StTensorInfo& info(const std::string& name) const;
  torch::Tensor load(const std::string& name, torch::ScalarType dtype = torch::kFloat) const;
  std::string describe() const;  // path(s) for messages
  std::string file_of(const std::string& name) const;  // the file holding tensor `name`

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> file index
  std::filesystem::path root_;
};

// "F32" etc. for a torch dtype and back.
std::string st_dtype_name(torch::ScalarType t);
torch::ScalarType st_dtype_from_name(const std::string& name, const std::string& where);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Throws "<where>: tensor "<name>" holds N NaN/Inf values; <fix>" when a floating-point tensor is
// not finite: weights read from a file are checked before use, and weights are checked before they
// are written, so a diverged run never saves a NaN model as a success.
void require_finite(const torch::Tensor& t, const std::string& where, const std::string& name, const std::string& fix);
// The same over every tensor, for writing `where`.
void require_finite_to_save(const NamedTensors& tensors, const std::string& where);

// Writes tensors (converted to `dtype` when floating point; kUndefined keeps each tensor's dtype)
// atomically to `path`, with "__metadata__" {"format":"pt", ...}.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      torch::ScalarType dtype = torch::ScalarType::Undefined,
                      const std::map<std::string, std::string>& metadata = {});

// Writes `dir/<basename>.safetensors`, or shards of at most `max_shard_bytes` plus
// `<basename>.safetensors.index.json` as transformers does when the model is larger.
void save_safetensors_dir(const std::filesystem::path& dir, const NamedTensors& tensors,
                          torch::ScalarType dtype, const std::string& basename = "model",
                          uint64_t max_shard_bytes = 5ull << 30);

}  // namespace rlhf
