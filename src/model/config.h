// Model hyper-parameters, read from and written to a Hugging Face config.json. One struct covers
// GPT-2 and the Llama family (Llama 2/3/3.x, Mistral, Qwen2); `raw` keeps the original JSON so
// fields we do not model survive a load/save round trip.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf {

enum class Arch { GPT2, Llama };
enum class Head { LM, Score };  // language-model head, or a scalar score head (reward / value model)

struct RopeScaling {
  std::string type;  // "" = none, "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;    // llama3
  int64_t original_max_position_embeddings = 8192;         // llama3
};

struct ModelConfig {
  std::string model_type = "gpt2";  // gpt2 | llama | mistral | qwen2
  Arch arch = Arch::GPT2;
  Head head = Head::LM;
  int64_t num_labels = 1;          // score head width
  int64_t vocab_size = 50257;
  int64_t n_ctx = 1024;            // max positions
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_kv_head = 12;          // < n_head: grouped-query attention
  int64_t head_dim = 64;
  int64_t n_inner = 3072;          // MLP width
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = true;
  bool qkv_bias = true;            // bias on q/k/v projections
  bool out_bias = true;            // bias on the attention output projection
  bool mlp_bias = true;
  std::string activation = "gelu_new";  // gelu_new | gelu | relu | silu
  int64_t sliding_window = 0;           // 0 = full attention
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  double embd_pdrop = 0.0, attn_pdrop = 0.0, resid_pdrop = 0.0;
  double initializer_range = 0.02;
  int64_t bos_token_id = -1, pad_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  // generation_config.json beside config.json (read by from_file; written back by save_model), and
  // its eos_token_id(s), which transformers' generate() stops at.
  Json generation_config;  // null when there is none
  std::vector<int64_t> generation_eos_ids;
  Json raw = Json::object();
  std::string source;  // where it was read from ("runs/sft/config.json"), for messages


  static ModelConfig from_json(const Json& j, const std::string& where);
  static ModelConfig from_file(const std::string& path);
  Json to_json() const;  // HF config.json (architectures follow `head`)
  int64_t num_parameters() const;
  // Refuses, naming the config.json fields that make the model large, when its fp32 parameters would
  // take more than `available` bytes (see available_memory_bytes()).
  void check_fits_in_memory(uint64_t available) const;
  std::string describe() const;  // "llama 4L 256d 8h/2kv 1.2M params"
};

// `max_length` capped at the model's context (n_positions / max_position_embeddings): longer rows
// would run past the positions the model was trained with (GPT-2 cannot run them at all, RoPE models
// would run them badly). When it caps, `note` gets the sentence that says so, for the line that
// reports the data (and its truncated examples, which the data loaders count).
int64_t cap_to_context(int64_t max_length, const ModelConfig& cfg, std::string* note = nullptr,
                       const std::string& option = "--max-length");

// Built-in shapes for `rlhf init` and `rlhf pretrain`, e.g. "gpt2-124m", "tiny", "llama-tiny".
ModelConfig preset_config(const std::string& arch, const std::string& size);

}  // namespace rlhf
