#include "model/config.h"

#include <filesystem>

#include <cmath>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/log.h"

namespace rlhf {

namespace {

// An integer field within [lo, hi]: 300.5 or 1e12 for a size is an error naming the field, not a
// silent truncation or a later allocation of terabytes.
int64_t int_field(const Json& j, const char* key, int64_t def, const std::string& where, int64_t lo, int64_t hi) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  int64_t v = 0;
  if (it->is_number_integer()) {
    RLHF_CHECK(!it->is_number_unsigned() || it->get<uint64_t>() <= uint64_t(INT64_MAX), where, ": \"", key,
               "\" is ", it->dump(), ", far above the largest accepted value ", hi);
    v = it->get<int64_t>();
  } else if (it->is_number_float()) {
    double d = it->get<double>();
    RLHF_CHECK(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15, where, ": \"", key,
               "\" must be an integer, got ", it->dump());
    v = int64_t(d);
  } else {
    RLHF_FAIL(where, ": field \"", key, "\" has the wrong type (", json_type_name(*it), "); it must be an integer");
  }
  RLHF_CHECK(v >= lo, where, ": \"", key, "\" must be ", lo == 1 ? std::string("a positive integer") : ">= " + std::to_string(lo),
             ", got ", v);
  RLHF_CHECK(v <= hi, where, ": \"", key, "\" is ", v, ", more than ", hi,
             " (no real model is that large; the config is corrupt)");
  return v;
}

int64_t positive(const Json& j, const char* key, int64_t def, const std::string& where, int64_t hi) {
  return int_field(j, key, def, where, 1, hi);
}

// A finite number field within [lo, hi] (open at hi when hi_open): eps and rope_theta must be > 0.
double real_field(const Json& j, const char* key, double def, const std::string& where, double lo, bool lo_open,
                  double hi = INFINITY) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  RLHF_CHECK(it->is_number(), where, ": \"", key, "\" must be a number, got ", json_type_name(*it));
  double v = it->get<double>();
  bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  RLHF_CHECK(ok, where, ": \"", key, "\" is ", it->dump(), "; it must be a finite number ", lo_open ? "> " : ">= ", lo,
             std::isfinite(hi) ? " and <= " + Json(hi).dump() : std::string());
  return v;
}

// Bounds no real model reaches; beyond them a config.json is corrupt (and would ask for terabytes).
constexpr int64_t kMaxVocab = int64_t(1) << 24, kMaxPositions = int64_t(1) << 24, kMaxWidth = int64_t(1) << 17,
                  kMaxLayers = 1024, kMaxHeads = 4096, kMaxInner = int64_t(1) << 20;

std::vector<int64_t> id_list(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  auto one = [&](const Json& v) {
    RLHF_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxVocab, where, ": \"", key,
               "\" must hold token ids (integers in [0, ", kMaxVocab, ")), got ", v.dump());
    return v.get<int64_t>();
  };
  if (it->is_number_integer()) return {one(*it)};
  RLHF_CHECK(it->is_array(), where, ": \"", key, "\" must be an integer or a list of integers");
  std::vector<int64_t> out;
  for (auto& v : *it) out.push_back(one(v));
  return out;
}

}  // namespace

ModelConfig ModelConfig::from_json(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": config must be a JSON object");
  ModelConfig c;
  c.raw = j;
  c.model_type = json_get<std::string>(j, "model_type", "", where);
  RLHF_CHECK(!c.model_type.empty(), where, ": no \"model_type\"; is this a Hugging Face config.json?");
  auto archs = json_get<std::vector<std::string>>(j, "architectures", {}, where);
  for (auto& a : archs)
    if (a.find("ForSequenceClassification") != std::string::npos) c.head = Head::Score;
  c.num_labels = int_field(j, "num_labels", 0, where, 0, 1 << 16);
  if (c.num_labels <= 0 && j.contains("id2label") && j["id2label"].is_object()) c.num_labels = int64_t(j["id2label"].size());
  // transformers' default is 2 labels, and a config.json with 2 labels then carries no id2label at all.
  if (c.num_labels <= 0) c.num_labels = c.head == Head::Score ? 2 : 1;
  c.bos_token_id = int_field(j, "bos_token_id", -1, where, -1, kMaxVocab - 1);  // -1: none (old Llama configs write it)
  c.pad_token_id = int_field(j, "pad_token_id", -1, where, -1, kMaxVocab - 1);
  c.eos_token_ids = id_list(j, "eos_token_id", where);
  c.initializer_range = real_field(j, "initializer_range", 0.02, where, 0.0, false);

  if (c.model_type == "gpt2") {
    c.arch = Arch::GPT2;
    c.vocab_size = positive(j, "vocab_size", 50257, where, kMaxVocab);
    c.n_ctx = positive(j, "n_positions", 1024, where, kMaxPositions);
    c.n_embd = positive(j, "n_embd", 768, where, kMaxWidth);
    c.n_layer = positive(j, "n_layer", 12, where, kMaxLayers);
    c.n_head = positive(j, "n_head", 12, where, kMaxHeads);
    c.n_kv_head = c.n_head;
    RLHF_CHECK(c.n_embd % c.n_head == 0, where, ": n_embd ", c.n_embd, " is not divisible by n_head ", c.n_head);
    c.head_dim = c.n_embd / c.n_head;
    c.n_inner = positive(j, "n_inner", 4 * c.n_embd, where, kMaxInner);
    c.norm_eps = real_field(j, "layer_norm_epsilon", 1e-5, where, 0.0, true, 1.0);
    c.activation = json_get<std::string>(j, "activation_function", "gelu_new", where);
    c.tie_word_embeddings = json_get<bool>(j, "tie_word_embeddings", true, where);
    c.qkv_bias = c.out_bias = c.mlp_bias = true;
    c.scale_attn_weights = json_get<bool>(j, "scale_attn_weights", true, where);
    c.scale_attn_by_inverse_layer_idx = json_get<bool>(j, "scale_attn_by_inverse_layer_idx", false, where);
    RLHF_CHECK(!json_get<bool>(j, "reorder_and_upcast_attn", false, where), where,
               ": reorder_and_upcast_attn=true is not supported; set it to false");
    c.embd_pdrop = real_field(j, "embd_pdrop", 0.1, where, 0.0, false, 0.99);
    c.attn_pdrop = real_field(j, "attn_pdrop", 0.1, where, 0.0, false, 0.99);
    c.resid_pdrop = real_field(j, "resid_pdrop", 0.1, where, 0.0, false, 0.99);
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    c.arch = Arch::Llama;
    c.vocab_size = positive(j, "vocab_size", 32000, where, kMaxVocab);
    c.n_ctx = positive(j, "max_position_embeddings", 2048, where, kMaxPositions);
    c.n_embd = positive(j, "hidden_size", 4096, where, kMaxWidth);
    c.n_layer = positive(j, "num_hidden_layers", 32, where, kMaxLayers);
    c.n_head = positive(j, "num_attention_heads", 32, where, kMaxHeads);
    c.n_kv_head = positive(j, "num_key_value_heads", c.n_head, where, kMaxHeads);
    RLHF_CHECK(c.n_head % c.n_kv_head == 0, where, ": num_attention_heads ", c.n_head,
               " is not a multiple of num_key_value_heads ", c.n_kv_head);
    int64_t hd_default = c.n_embd % c.n_head == 0 ? c.n_embd / c.n_head : 0;
    c.head_dim = int_field(j, "head_dim", hd_default, where, 0, 4096);
    RLHF_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, where, ": head_dim must be a positive even number (hidden_size / num_attention_heads, or set \"head_dim\")");
    c.n_inner = positive(j, "intermediate_size", 11008, where, kMaxInner);
    c.norm_eps = real_field(j, "rms_norm_eps", 1e-6, where, 0.0, true, 1.0);
    c.activation = json_get<std::string>(j, "hidden_act", "silu", where);
    c.rope_theta = real_field(j, "rope_theta", 10000.0, where, 0.0, true);
    c.tie_word_embeddings = json_get<bool>(j, "tie_word_embeddings", false, where);
    if (c.model_type == "qwen2") {
      c.qkv_bias = true;
      c.out_bias = c.mlp_bias = false;
      if (json_get<bool>(j, "use_sliding_window", false, where))
        c.sliding_window = int_field(j, "sliding_window", 0, where, 0, kMaxPositions);
    } else if (c.model_type == "mistral") {
      c.qkv_bias = c.out_bias = c.mlp_bias = false;
      c.sliding_window = int_field(j, "sliding_window", 0, where, 0, kMaxPositions);
    } else {
      c.qkv_bias = c.out_bias = json_get<bool>(j, "attention_bias", false, where);
      c.mlp_bias = json_get<bool>(j, "mlp_bias", false, where);
    }
    c.attn_pdrop = real_field(j, "attention_dropout", 0.0, where, 0.0, false, 0.99);
    auto rs = j.find("rope_scaling");
    if (rs != j.end() && !rs->is_null()) {
      RLHF_CHECK(rs->is_object(), where, ": rope_scaling must be an object or null");
      std::string type = json_get<std::string>(*rs, "rope_type", json_get<std::string>(*rs, "type", "", where), where);
      if (type == "default" || type.empty()) {
        // no scaling
      } else if (type == "linear" || type == "llama3") {
        c.rope_scaling.type = type;
        c.rope_scaling.factor = real_field(*rs, "factor", 1.0, where + ": rope_scaling", 0.0, true);
        if (type == "llama3") {
          c.rope_scaling.low_freq_factor = real_field(*rs, "low_freq_factor", 1.0, where + ": rope_scaling", 0.0, true);
          c.rope_scaling.high_freq_factor = real_field(*rs, "high_freq_factor", 4.0, where + ": rope_scaling", 0.0, true);
          c.rope_scaling.original_max_position_embeddings =
              positive(*rs, "original_max_position_embeddings", 8192, where + ": rope_scaling", kMaxPositions);
          RLHF_CHECK(c.rope_scaling.high_freq_factor != c.rope_scaling.low_freq_factor, where,
                     ": rope_scaling high_freq_factor must differ from low_freq_factor");
        }
      } else {
        RLHF_FAIL(where, ": rope_scaling type \"", type, "\" is not supported (supported: linear, llama3)");
      }
    }
  } else {
    RLHF_FAIL(where, ": model_type \"", c.model_type,
              "\" is not supported; supported: gpt2, llama, mistral, qwen2");
  }
  static const char* acts[] = {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu", "silu", "swish"};
  bool ok = false;
  for (auto* a : acts) ok |= c.activation == a;
  RLHF_CHECK(ok, where, ": activation \"", c.activation, "\" is not supported (gelu_new, gelu, relu, silu)");
  // Special ids past the vocabulary (transformers' tiny GPT-2 configs keep the default 50256 with 128
  // tokens) can never occur: they are not used, and said so. config.json keeps them (raw) on saving.
  std::vector<int64_t> outside;
  std::erase_if(c.eos_token_ids, [&](int64_t id) { return id >= c.vocab_size && (outside.push_back(id), true); });
  for (int64_t* id : {&c.bos_token_id, &c.pad_token_id})
    if (*id >= c.vocab_size) outside.push_back(std::exchange(*id, -1));
  if (!outside.empty()) {
    std::string list;
    for (size_t i = 0; i < outside.size(); ++i) list += (i ? ", " : "") + std::to_string(outside[i]);
    log_warn(where, ": special token id(s) ", list, " (bos/eos/pad_token_id) are outside the vocabulary (vocab_size ",
             c.vocab_size, ") and are not used; the tokenizer's special tokens apply");
  }
  c.source = where;
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  ModelConfig c = from_json(read_json_file(path, "model config"), path);
  std::error_code ec;
  auto gen = std::filesystem::path(path).parent_path() / "generation_config.json";
  if (std::filesystem::exists(gen, ec)) {
    c.generation_config = read_json_file(gen, "generation config");
    RLHF_CHECK(c.generation_config.is_object(), gen.string(), ": expected a JSON object, got ",
               json_type_name(c.generation_config));
    c.generation_eos_ids = id_list(c.generation_config, "eos_token_id", gen.string());
    std::erase_if(c.generation_eos_ids, [&](int64_t id) { return id >= c.vocab_size; });
  }
  return c;
}

Json ModelConfig::to_json() const {
  Json j = raw.is_object() ? raw : Json::object();
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["initializer_range"] = initializer_range;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  static const std::map<std::string, std::string> cls = {
      {"gpt2", "GPT2"}, {"llama", "Llama"}, {"mistral", "Mistral"}, {"qwen2", "Qwen2"}};
  std::string prefix = cls.count(model_type) ? cls.at(model_type) : "GPT2";
  if (head == Head::Score) {
    j["architectures"] = {prefix + "ForSequenceClassification"};
    j["num_labels"] = num_labels;
    Json id2label = Json::object(), label2id = Json::object();
    for (int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  } else {
    j["architectures"] = {prefix + "ForCausalLM"};
    if (model_type == "gpt2") j["architectures"] = {"GPT2LMHeadModel"};
    j.erase("num_labels");
    j.erase("id2label");
    j.erase("label2id");
  }
  if (arch == Arch::GPT2) {
    j["n_positions"] = n_ctx;
    j["n_ctx"] = n_ctx;
    j["n_embd"] = n_embd;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_inner"] = n_inner == 4 * n_embd ? Json(nullptr) : Json(n_inner);
    j["layer_norm_epsilon"] = norm_eps;
    j["activation_function"] = activation;
    j["scale_attn_weights"] = scale_attn_weights;
    j["scale_attn_by_inverse_layer_idx"] = scale_attn_by_inverse_layer_idx;
    j["embd_pdrop"] = embd_pdrop;
    j["attn_pdrop"] = attn_pdrop;
    j["resid_pdrop"] = resid_pdrop;
  } else {
    j["max_position_embeddings"] = n_ctx;
    j["hidden_size"] = n_embd;
    j["num_hidden_layers"] = n_layer;
    j["num_attention_heads"] = n_head;
    j["num_key_value_heads"] = n_kv_head;
    j["head_dim"] = head_dim;
    j["intermediate_size"] = n_inner;
    j["rms_norm_eps"] = norm_eps;
    j["hidden_act"] = activation;
    j["rope_theta"] = rope_theta;
    j["attention_dropout"] = attn_pdrop;
    if (model_type == "llama") {
      j["attention_bias"] = qkv_bias;
      j["mlp_bias"] = mlp_bias;
    }
    if (model_type == "mistral") j["sliding_window"] = sliding_window > 0 ? Json(sliding_window) : Json(nullptr);
    if (rope_scaling.type.empty()) {
      j["rope_scaling"] = nullptr;
    } else {
      Json rs = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
      if (rope_scaling.type == "llama3") {
        rs["low_freq_factor"] = rope_scaling.low_freq_factor;
        rs["high_freq_factor"] = rope_scaling.high_freq_factor;
        rs["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
      }
      j["rope_scaling"] = rs;
    }
  }
  return j;
}

int64_t ModelConfig::num_parameters() const {
  int64_t C = n_embd, q = n_head * head_dim, kv = n_kv_head * head_dim;
  int64_t attn = C * (q + 2 * kv) + q * C + (qkv_bias ? q + 2 * kv : 0) + (out_bias ? C : 0);
  int64_t mlp = arch == Arch::GPT2 ? 2 * C * n_inner + (mlp_bias ? n_inner + C : 0)
                                   : 3 * C * n_inner + (mlp_bias ? 2 * n_inner + C : 0);
  int64_t norms = arch == Arch::GPT2 ? 4 * C : 2 * C;
  int64_t emb = vocab_size * C + (arch == Arch::GPT2 ? n_ctx * C : 0);
  int64_t head_p = head == Head::Score ? num_labels * C : (tie_word_embeddings ? 0 : vocab_size * C);
  return emb + n_layer * (attn + mlp + norms) + (arch == Arch::GPT2 ? 2 * C : C) + head_p;
}

void ModelConfig::check_fits_in_memory(uint64_t available) const {
  const bool gpt2 = arch == Arch::GPT2;
  const char* vocab_key = "vocab_size";
  const char* width_key = gpt2 ? "n_embd" : "hidden_size";
  const int64_t C = n_embd;
  const int64_t total = num_parameters();
  const uint64_t bytes = uint64_t(total) * 4;  // weights are fp32 in memory (bf16 is an autocast compute type)
  if (bytes <= available) return;
  // Name the part that dominates, with the config.json fields that make it.
  const int64_t emb = vocab_size * C * (tie_word_embeddings || head == Head::Score ? 1 : 2);
  const int64_t pos = gpt2 ? n_ctx * C : 0;
  const int64_t blocks = total - emb - pos;
  std::string part;
  if (emb >= pos && emb >= blocks) {
    part = detail::cat("the embedding", tie_word_embeddings || head == Head::Score ? "" : " and output head", " (",
                       vocab_key, " ", vocab_size, " x ", width_key, " ", C, ")");
  } else if (pos >= blocks) {
    part = detail::cat("the position embedding (n_positions ", n_ctx, " x n_embd ", C, ")");
  } else {
    part = detail::cat("the layers (", gpt2 ? "n_layer " : "num_hidden_layers ", n_layer, " of ", width_key, " ", C, ", ",
                       gpt2 ? "n_inner " : "intermediate_size ", n_inner, ")");
  }
  auto gb = [](double b) { return detail::cat(std::round(b / 1e8) / 10, " GB"); };
  RLHF_FAIL(source.empty() ? std::string("model config") : source, ": the model needs ", gb(double(bytes)),
            " for its parameters, mostly ", part, ", but only ", gb(double(available)),
            " of memory are available; check those fields of config.json");
}

std::string ModelConfig::describe() const {
  std::ostringstream s;
  s << model_type << " " << n_layer << "L " << n_embd << "d " << n_head << "h";
  if (n_kv_head != n_head) s << "/" << n_kv_head << "kv";
  s << " vocab " << vocab_size << " ctx " << n_ctx << ", " << (double(num_parameters()) / 1e6) << "M params";
  if (head == Head::Score) s << " (score head)";
  return s.str();
}

int64_t cap_to_context(int64_t max_length, const ModelConfig& cfg, std::string* note, const std::string& option) {
  if (max_length <= cfg.n_ctx) return max_length;
  if (note)
    *note = detail::cat(option, " ", max_length, " capped at the model's context of ", cfg.n_ctx, " positions (",
                        cfg.arch == Arch::GPT2 ? "n_positions" : "max_position_embeddings", " in config.json)");
  return cfg.n_ctx;
}

ModelConfig preset_config(const std::string& arch, const std::string& size) {
  ModelConfig c;
  Json j;
  struct Shape { int64_t layer, embd, head, kv, ctx; };
  static const std::map<std::string, Shape> shapes = {
      {"tiny", {2, 64, 4, 2, 128}},     {"small", {4, 128, 4, 2, 256}},
      {"medium", {6, 256, 8, 4, 512}},  {"124m", {12, 768, 12, 12, 1024}},
      {"350m", {24, 1024, 16, 16, 1024}}};
  auto it = shapes.find(size);
  RLHF_CHECK(it != shapes.end(), "--size '", size, "' is not known; use tiny, small, medium, 124m or 350m");
  const Shape& s = it->second;
  if (arch == "gpt2") {
    j = {{"model_type", "gpt2"}, {"n_layer", s.layer}, {"n_embd", s.embd}, {"n_head", s.head},
         {"n_positions", s.ctx}, {"vocab_size", 50257}, {"embd_pdrop", 0.0}, {"attn_pdrop", 0.0},
         {"resid_pdrop", 0.0}};
  } else if (arch == "llama") {
    int64_t inter = ((s.embd * 8 / 3) + 63) / 64 * 64;
    j = {{"model_type", "llama"}, {"num_hidden_layers", s.layer}, {"hidden_size", s.embd},
         {"num_attention_heads", s.head}, {"num_key_value_heads", s.kv}, {"intermediate_size", inter},
         {"max_position_embeddings", s.ctx}, {"vocab_size", 32000}, {"rope_theta", 10000.0},
         {"tie_word_embeddings", false}, {"rms_norm_eps", 1e-5}};
  } else {
    RLHF_FAIL("--arch '", arch, "' is not known; use gpt2 or llama");
  }
  return ModelConfig::from_json(j, "preset " + arch + "-" + size);
}

}  // namespace rlhf
