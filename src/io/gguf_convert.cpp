// GGUF -> Hugging Face model directory. See gguf_convert.h and dev/GGUF.md (sections 3 and 4).
#include "io/gguf_convert.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numbers>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "io/gguf_tokenizer.h"
#include "model/config.h"

namespace rlhf {

namespace {

const char* kSupportedArchs = "llama (Llama, Mistral, SmolLM), qwen2, gpt2";

std::string gguf_where(const GgufFile& f) { return f.path().string(); }

// A positive integer key, bounded (the config loader bounds them again, with HF names).
int64_t positive_key(const GgufFile& f, const std::string& key, int64_t max = int64_t(1) << 40) {
  const int64_t v = f.get_int(key);
  RLHF_CHECK(v > 0 && v <= max, gguf_where(f), ": ", key, " = ", v, " must be a positive integer (at most ", max, ")");
  return v;
}

// A float key as the decimal it was written from (FLOAT32 keys), or `def` when absent.
double float_key(const GgufFile& f, const std::string& key, double def) {
  const GgufValue* v = f.find(key);
  if (!v) return def;
  const double x = f.get_float(key);
  return v->type == GgufValueType::FLOAT32 ? gguf_float32_decimal(x) : x;
}

// llama3-style RoPE scaling is stored only as the computed per-frequency factors (rope_freqs.weight,
// convert_hf_to_gguf.py LlamaModel.generate_extra_tensors). Recover rope_scaling by recomputing the
// factors for the parameters every Llama 3.x release uses (low 1, high 4, original context 8192 unless
// the file names one) and the factor the tensor itself shows; anything else is refused.
Json llama3_rope_scaling(const GgufFile& f, const std::string& arch, int64_t head_dim, double theta) {
  const GgufTensorInfo& t = f.tensor("rope_freqs.weight");
  RLHF_CHECK(t.ne.size() == 1 && t.ne[0] == head_dim / 2, gguf_where(f), ": rope_freqs.weight has shape ",
             t.shape_string(), "; expected ", head_dim / 2, " (head_dim / 2)");
  std::vector<float> got(size_t(t.numel));
  f.dequantize(t, got.data());
  const double factor = *std::max_element(got.begin(), got.end());
  const double low = 1.0, high = 4.0;
  const double old_ctx = double(f.get_int(arch + ".rope.scaling.original_context_length", 8192));
  bool ok = factor > 1.0;
  for (int64_t i = 0; ok && i < head_dim / 2; ++i) {
    // The converter's float32 torch arithmetic: freq = 1 / base^(2i/dim).
    const float freq = 1.0f / std::pow(float(theta), float(2 * i) / float(head_dim));
    const double wavelen = 2 * std::numbers::pi / freq;
    double want;
    if (wavelen < old_ctx / high) want = 1.0;
    else if (wavelen > old_ctx / low) want = factor;
    else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      want = 1.0 / ((1 - smooth) / factor + smooth);
    }
    ok = std::fabs(double(got[size_t(i)]) - want) <= 1e-4 * want;
  }
  RLHF_CHECK(ok, gguf_where(f), ": rope_freqs.weight holds RoPE scaling factors that are not Llama 3's (factor ", factor,
             ", low_freq_factor 1, high_freq_factor 4, original context ", int64_t(old_ctx),
             "); this RoPE scaling is not supported");
  return {{"rope_type", "llama3"}, {"factor", gguf_float32_decimal(factor)}, {"low_freq_factor", low},
          {"high_freq_factor", high}, {"original_max_position_embeddings", int64_t(old_ctx)}};
}

bool same_tensor(const GgufTensorInfo& a, const GgufTensorInfo& b) {
  return a.type == b.type && a.ne == b.ne && a.n_bytes == b.n_bytes && std::memcmp(a.data, b.data, a.n_bytes) == 0;
}

// output.weight absent, or a byte-identical copy of token_embd.weight (llama.cpp's gpt2 converter
// writes one): the head is tied.
bool head_is_tied(const GgufFile& f) {
  const GgufTensorInfo* out = f.find_tensor("output.weight");
  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  return !out || (emb && same_tensor(*out, *emb));
}

// Special ids as config.json has them: present in the file and inside the vocabulary.
void add_special_ids(const GgufFile& f, Json& j, int64_t vocab) {
  auto id = [&](const char* key) -> int64_t {
    const std::string k = std::string("tokenizer.ggml.") + key;
    if (!f.has(k)) return -1;
    const int64_t v = f.get_int(k);
    return v >= 0 && v < vocab ? v : -1;
  };
  if (int64_t b = id("bos_token_id"); b >= 0) j["bos_token_id"] = b;
  if (int64_t e = id("eos_token_id"); e >= 0) j["eos_token_id"] = e;
  if (int64_t p = id("padding_token_id"); p >= 0) j["pad_token_id"] = p;
}

const char* save_dtype_name(SaveDtype d) { return d == SaveDtype::F32 ? "F32" : d == SaveDtype::BF16 ? "BF16" : "F16"; }
size_t save_dtype_size(SaveDtype d) { return d == SaveDtype::F32 ? 4 : 2; }

}  // namespace

double gguf_float32_decimal(double v) {
  const float x = float(v);
  if (!std::isfinite(x)) return v;
  char buf[64];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, double(x));
    const double d = std::strtod(buf, nullptr);
    if (float(d) == x) return d;
  }
  return double(x);
}

void gguf_unpermute_rows(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head) {
  RLHF_CHECK(n_head > 0 && rows % (2 * n_head) == 0, "cannot undo the Q/K permutation: ", rows,
             " rows are not a whole number of heads (", n_head, ") of even size");
  const int64_t d = rows / n_head, half = d / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t jj = 0; jj < half; ++jj)
        std::memcpy(dst + (h * d + i * half + jj) * cols, src + (h * d + 2 * jj + i) * cols, size_t(cols) * sizeof(float));
}

Json gguf_hf_config(const GgufFile& f) {
  const std::string where = gguf_where(f);
  RLHF_CHECK(f.get_int("split.count", 1) <= 1, where, ": this is one part of a split GGUF (split.count = ",
             f.get_int("split.count", 1), "); merge the parts first (llama-gguf-split --merge FIRST-PART OUT.gguf)");
  const std::string arch = f.get_string("general.architecture");
  RLHF_CHECK(arch == "llama" || arch == "qwen2" || arch == "gpt2", where, ": general.architecture \"", arch,
             "\" is not supported; supported: ", kSupportedArchs);
  auto key = [&](const char* k) { return arch + "." + k; };
  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  RLHF_CHECK(emb && emb->ne.size() == 2, where, ": no 2-D tensor token_embd.weight; is this a ", arch, " model file?");
  const int64_t n_embd = positive_key(f, key("embedding_length"), 1 << 20);
  RLHF_CHECK(emb->ne[0] == n_embd, where, ": token_embd.weight has shape ", emb->shape_string(), " but ",
             key("embedding_length"), " is ", n_embd);
  const int64_t vocab = emb->ne[1];
  if (f.has("tokenizer.ggml.tokens")) {
    const uint64_t n_tokens = f.get_array_size("tokenizer.ggml.tokens");
    RLHF_CHECK(n_tokens <= uint64_t(vocab), where, ": tokenizer.ggml.tokens has ", n_tokens,
               " tokens but token_embd.weight only ", vocab, " rows");
  }
  const int64_t n_layer = positive_key(f, key("block_count"), 4096);
  const int64_t n_head = positive_key(f, key("attention.head_count"), 4096);
  const int64_t n_ctx = positive_key(f, key("context_length"), int64_t(1) << 24);
  const int64_t n_ff = positive_key(f, key("feed_forward_length"), int64_t(1) << 22);
  const bool tied = head_is_tied(f);
  Json j = Json::object();
  j["vocab_size"] = vocab;
  j["tie_word_embeddings"] = tied;
  if (arch == "gpt2") {
    RLHF_CHECK(!f.has(key("attention.head_count_kv")) || f.get_int(key("attention.head_count_kv")) == n_head, where,
               ": gpt2.attention.head_count_kv differs from head_count; GPT-2 has no grouped-query attention");
    j["model_type"] = "gpt2";
    j["architectures"] = {"GPT2LMHeadModel"};
    j["n_positions"] = n_ctx;
    j["n_ctx"] = n_ctx;
    j["n_embd"] = n_embd;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_inner"] = n_ff;
    j["layer_norm_epsilon"] = float_key(f, key("attention.layer_norm_epsilon"), 1e-5);
    j["activation_function"] = "gelu_new";
    j["embd_pdrop"] = j["attn_pdrop"] = j["resid_pdrop"] = 0.0;
  } else {
    const int64_t n_kv = f.has(key("attention.head_count_kv")) ? positive_key(f, key("attention.head_count_kv"), 4096) : n_head;
    const int64_t head_dim = f.has(key("attention.key_length")) ? positive_key(f, key("attention.key_length"), 4096)
                                                                 : (n_embd % n_head == 0 ? n_embd / n_head : 0);
    RLHF_CHECK(head_dim > 0, where, ": ", key("embedding_length"), " ", n_embd, " is not a multiple of ",
               key("attention.head_count"), " ", n_head, " and there is no ", key("attention.key_length"));
    if (f.has(key("attention.value_length")))
      RLHF_CHECK(f.get_int(key("attention.value_length")) == head_dim, where, ": ", key("attention.value_length"),
                 " differs from the key length ", head_dim, "; not supported");
    if (f.has(key("rope.dimension_count")))
      RLHF_CHECK(f.get_int(key("rope.dimension_count")) == head_dim, where, ": ", key("rope.dimension_count"), " = ",
                 f.get_int(key("rope.dimension_count")), " rotates only part of each head (head_dim ", head_dim,
                 "); partial rotary embeddings are not supported");
    const double theta = float_key(f, key("rope.freq_base"), 10000.0);
    j["model_type"] = arch;
    j["architectures"] = {arch == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
    j["hidden_size"] = n_embd;
    j["intermediate_size"] = n_ff;
    j["num_hidden_layers"] = n_layer;
    j["num_attention_heads"] = n_head;
    j["num_key_value_heads"] = n_kv;
    j["head_dim"] = head_dim;
    j["max_position_embeddings"] = n_ctx;
    j["rms_norm_eps"] = float_key(f, key("attention.layer_norm_rms_epsilon"), 1e-5);
    j["rope_theta"] = theta;
    j["hidden_act"] = "silu";
    if (arch == "llama") {
      j["attention_bias"] = f.find_tensor("blk.0.attn_q.bias") != nullptr;
      j["mlp_bias"] = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
    } else {
      j["use_sliding_window"] = false;
    }
    // RoPE scaling: linear from the keys, llama3 from rope_freqs.weight; yarn and others are refused.
    const std::string scaling = f.get_string(key("rope.scaling.type"), "none");
    if (f.find_tensor("rope_freqs.weight")) {
      RLHF_CHECK(arch == "llama", where, ": rope_freqs.weight in a ", arch, " model is not supported");
      j["rope_scaling"] = llama3_rope_scaling(f, arch, head_dim, theta);
    } else if (scaling == "linear") {
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", float_key(f, key("rope.scaling.factor"), 1.0)}};
    } else {
      RLHF_CHECK(scaling == "none", where, ": ", key("rope.scaling.type"), " \"", scaling,
                 "\" is not supported (supported: none, linear, llama3 via rope_freqs.weight)");
      j["rope_scaling"] = nullptr;
    }
  }
  add_special_ids(f, j, vocab);
  // The project's own loader validates every field (and knows the bounds); what it accepts is written.
  ModelConfig cfg = ModelConfig::from_json(j, where + " (config.json made from its metadata)");
  Json out = cfg.to_json();
  if (arch == "qwen2") out["use_sliding_window"] = false;
  return out;
}

std::vector<GgufTensorPlan> gguf_tensor_plan(const GgufFile& f, const Json& config) {
  const std::string where = gguf_where(f);
  const ModelConfig c = ModelConfig::from_json(config, where);
  const bool gpt2 = c.arch == Arch::GPT2, llama = c.model_type == "llama";
  const int64_t C = c.n_embd, V = c.vocab_size, I = c.n_inner, q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim;
  using Op = GgufTensorPlan::Op;
  struct Want {
    std::string gguf, hf;
    std::vector<int64_t> shape;
    Op op;
  };
  std::vector<Want> want;
  auto add = [&](std::string g, std::string h, std::vector<int64_t> shape, Op op = Op::Copy) {
    want.push_back({std::move(g), std::move(h), std::move(shape), op});
  };
  if (gpt2) {
    add("token_embd.weight", "transformer.wte.weight", {V, C});
    add("position_embd.weight", "transformer.wpe.weight", {c.n_ctx, C});
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".", h = "transformer.h." + std::to_string(l) + ".";
      add(b + "attn_norm.weight", h + "ln_1.weight", {C});
      add(b + "attn_norm.bias", h + "ln_1.bias", {C});
      add(b + "attn_qkv.weight", h + "attn.c_attn.weight", {C, 3 * C}, Op::Transpose);
      add(b + "attn_qkv.bias", h + "attn.c_attn.bias", {3 * C});
      add(b + "attn_output.weight", h + "attn.c_proj.weight", {C, C}, Op::Transpose);
      add(b + "attn_output.bias", h + "attn.c_proj.bias", {C});
      add(b + "ffn_norm.weight", h + "ln_2.weight", {C});
      add(b + "ffn_norm.bias", h + "ln_2.bias", {C});
      add(b + "ffn_up.weight", h + "mlp.c_fc.weight", {C, I}, Op::Transpose);
      add(b + "ffn_up.bias", h + "mlp.c_fc.bias", {I});
      add(b + "ffn_down.weight", h + "mlp.c_proj.weight", {I, C}, Op::Transpose);
      add(b + "ffn_down.bias", h + "mlp.c_proj.bias", {C});
    }
    add("output_norm.weight", "transformer.ln_f.weight", {C});
    add("output_norm.bias", "transformer.ln_f.bias", {C});
  } else {
    add("token_embd.weight", "model.embed_tokens.weight", {V, C});
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
      add(b + "attn_norm.weight", h + "input_layernorm.weight", {C});
      add(b + "attn_q.weight", h + "self_attn.q_proj.weight", {q, C}, llama ? Op::UnpermuteQ : Op::Copy);
      add(b + "attn_k.weight", h + "self_attn.k_proj.weight", {kv, C}, llama ? Op::UnpermuteK : Op::Copy);
      add(b + "attn_v.weight", h + "self_attn.v_proj.weight", {kv, C});
      if (c.qkv_bias) {
        add(b + "attn_q.bias", h + "self_attn.q_proj.bias", {q}, llama ? Op::UnpermuteQ : Op::Copy);
        add(b + "attn_k.bias", h + "self_attn.k_proj.bias", {kv}, llama ? Op::UnpermuteK : Op::Copy);
        add(b + "attn_v.bias", h + "self_attn.v_proj.bias", {kv});
      }
      add(b + "attn_output.weight", h + "self_attn.o_proj.weight", {C, q});
      if (c.out_bias) add(b + "attn_output.bias", h + "self_attn.o_proj.bias", {C});
      add(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {C});
      add(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {I, C});
      add(b + "ffn_up.weight", h + "mlp.up_proj.weight", {I, C});
      add(b + "ffn_down.weight", h + "mlp.down_proj.weight", {C, I});
      if (c.mlp_bias) {
        add(b + "ffn_gate.bias", h + "mlp.gate_proj.bias", {I});
        add(b + "ffn_up.bias", h + "mlp.up_proj.bias", {I});
        add(b + "ffn_down.bias", h + "mlp.down_proj.bias", {C});
      }
    }
    add("output_norm.weight", "model.norm.weight", {C});
  }
  if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight", {V, C});

  // Every tensor of the file must be accounted for; llama.cpp's extras are known by name.
  std::set<std::string> wanted;
  for (const auto& w : want) wanted.insert(w.gguf);
  for (const auto& t : f.tensors()) {
    if (wanted.count(t.name)) continue;
    if (t.name == "rope_freqs.weight") continue;                        // read into rope_scaling
    if (t.name == "output.weight" && c.tie_word_embeddings) continue;  // a copy of token_embd
    if (t.name.ends_with(".attn_rot_embd")) continue;                  // gguf-py MODEL_TENSOR_SKIP
    RLHF_FAIL(where, ": tensor ", t.name, " (", ggml_type_name(t.type), ", ", t.shape_string(),
              ") has no place in a ", c.model_type, " model of this shape; this file is not supported");
  }
  std::vector<GgufTensorPlan> plan;
  for (const auto& w : want) {
    const GgufTensorInfo* t = f.find_tensor(w.gguf);
    RLHF_CHECK(t, where, ": tensor ", w.gguf, " (", w.hf, ") is missing");
    std::vector<int64_t> expect = w.shape;
    if (w.op == Op::Transpose) std::reverse(expect.begin(), expect.end());
    auto shape_str = [](const std::vector<int64_t>& s) {
      std::string r;
      for (size_t i = s.size(); i-- > 0;) r += std::to_string(s[i]) + (i ? " x " : "");
      return r;
    };
    RLHF_CHECK(t->torch_shape() == expect, where, ": tensor ", w.gguf, " has shape ", t->shape_string(), "; ",
               w.hf, " needs ", shape_str(expect), " (ggml order) for the shape in the metadata");
    RLHF_CHECK(ggml_type_traits(t->type).dequantizable, where, ": tensor ", w.gguf, " has type ",
               ggml_type_name(t->type), ", which is not supported (supported: ", ggml_dequantizable_type_names(), ")");
    plan.push_back({w.hf, t, w.shape, w.op});
  }
  return plan;
}

namespace {

// model.safetensors, one tensor at a time: the header is known from the plan, so each tensor is
// dequantised, rearranged, converted and written before the next is read.
uint64_t write_safetensors(const GgufFile& f, const std::vector<GgufTensorPlan>& plan, const ModelConfig& c,
                           const std::filesystem::path& path, const GgufConvertOptions& opt) {
  const std::string where = gguf_where(f);
  Json header = Json::object();
  Json meta = {{"format", "pt"},
               {"source", "gguf"},
               {"gguf_file", f.path().filename().string()},
               {"gguf_file_type", std::to_string(f.get_int("general.file_type", -1))},
               {"note", "weights dequantised from the GGUF file: the quantised model's values, not the original checkpoint's"}};
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& p : plan) {
    const uint64_t bytes = uint64_t(p.src->numel) * save_dtype_size(opt.dtype);
    header[p.hf_name] = {{"dtype", save_dtype_name(opt.dtype)}, {"shape", p.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
  AtomicFile out(path);
  out.write(len, 8);
  out.write(h);
  std::vector<float> buf, tmp;
  std::vector<uint16_t> half;
  Progress progress("converting " + f.path().filename().string(), int64_t(plan.size()), "tensors", 30.0);
  for (size_t k = 0; k < plan.size(); ++k) {
    const GgufTensorPlan& p = plan[k];
    const GgufTensorInfo& t = *p.src;
    buf.resize(size_t(t.numel));
    f.dequantize(t, buf.data(), opt.threads);
    const int64_t bad = std::count_if(buf.begin(), buf.end(), [](float x) { return !std::isfinite(x); });
    RLHF_CHECK(bad == 0, where, ": tensor ", t.name, " holds ", bad, " NaN/Inf values after dequantisation; the file is damaged");
    using Op = GgufTensorPlan::Op;
    if (p.op != Op::Copy) {
      tmp.resize(buf.size());
      const int64_t rows = t.n_rows() == 1 && t.ne.size() == 1 ? t.numel : t.n_rows();
      const int64_t cols = t.numel / rows;
      if (p.op == Op::Transpose) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t cc = 0; cc < cols; ++cc) tmp[size_t(cc * rows + r)] = buf[size_t(r * cols + cc)];
      } else {
        gguf_unpermute_rows(buf.data(), tmp.data(), rows, cols, p.op == Op::UnpermuteQ ? c.n_head : c.n_kv_head);
      }
      buf.swap(tmp);
    }
    if (opt.dtype == SaveDtype::F32) {
      out.write(buf.data(), buf.size() * sizeof(float));
    } else {
      half.resize(buf.size());
      int64_t overflow = 0;
      for (size_t i = 0; i < buf.size(); ++i) {
        if (opt.dtype == SaveDtype::BF16) {
          half[i] = c10::BFloat16(buf[i]).x;
        } else {
          const c10::Half v(buf[i]);
          overflow += std::isinf(float(v));
          half[i] = v.x;
        }
      }
      RLHF_CHECK(overflow == 0, where, ": tensor ", t.name, " has ", overflow,
                 " values beyond the fp16 range; use --save-dtype bf16 or fp32");
      out.write(half.data(), half.size() * sizeof(uint16_t));
    }
    progress.update(int64_t(k + 1));
  }
  progress.finish();
  out.commit();
  return 8 + h.size() + offset;
}

}  // namespace

GgufConvertStats convert_gguf(const GgufFile& f, const std::filesystem::path& out, const GgufConvertOptions& opt) {
  // Everything small is built (and so validated) before the first byte is written.
  const Json config = gguf_hf_config(f);
  const std::vector<GgufTensorPlan> plan = gguf_tensor_plan(f, config);
  const ModelConfig c = ModelConfig::from_json(config, gguf_where(f));
  const GgufTokenizerFiles tok = gguf_tokenizer_files(f, c.vocab_size, c.n_ctx);
  Json config_out = config;
  config_out["torch_dtype"] = opt.dtype == SaveDtype::F32 ? "float32" : opt.dtype == SaveDtype::BF16 ? "bfloat16" : "float16";
  for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    config_out.erase(k);
    if (tok.generation_config.contains(k)) config_out[k] = tok.generation_config[k];
  }
  if (config_out.contains("eos_token_id") && config_out["eos_token_id"].is_array())
    config_out["eos_token_id"] = config_out["eos_token_id"][0];  // config.json: the EOS; generation_config: all stops

  GgufConvertStats s;
  s.bytes_written = write_safetensors(f, plan, c, out / "model.safetensors", opt);
  write_json_atomic(out / "tokenizer.json", tok.tokenizer_json);
  write_json_atomic(out / "tokenizer_config.json", tok.tokenizer_config);
  write_json_atomic(out / "special_tokens_map.json", tok.special_tokens_map);
  write_json_atomic(out / "generation_config.json", tok.generation_config);
  write_json_atomic(out / "config.json", config_out);  // last: a directory with config.json is complete
  s.n_tensors = int64_t(plan.size());
  for (const auto& p : plan) s.n_values += p.src->numel;
  s.describe = c.describe() + (c.tie_word_embeddings ? ", tied embeddings" : "");
  return s;
}

std::string gguf_listing(const GgufFile& f) {
  std::ostringstream o;
  o << f.path().string() << ": GGUF v" << f.version() << ", " << f.metadata().size() << " keys, " << f.tensors().size()
    << " tensors, alignment " << f.alignment() << "\n";
  for (const auto& kv : f.metadata()) {
    std::string v = gguf_value_to_string(kv.value, 8);
    if (v.size() > 160) v = v.substr(0, 157) + "...";
    for (char& ch : v)
      if (ch == '\n') ch = ' ';
    o << "  " << kv.key << " = " << v << "\n";
  }
  std::map<std::string, int64_t> types;
  int64_t values = 0;
  size_t width = 4;
  for (const auto& t : f.tensors()) width = std::max(width, t.name.size());
  o << "tensors (shape in ggml order: row length first):\n";
  for (const auto& t : f.tensors()) {
    std::string name = t.name;
    name.resize(width, ' ');
    std::string type = ggml_type_name(t.type);
    type.resize(8, ' ');
    o << "  " << name << "  " << type << t.shape_string() << "\n";
    types[ggml_type_name(t.type)] += 1;
    values += t.numel;
  }
  o << values << " values;";
  for (const auto& [k, n] : types) o << " " << k << " x" << n;
  o << "\n";
  return o.str();
}

}  // namespace rlhf
