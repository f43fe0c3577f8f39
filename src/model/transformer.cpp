#include "model/transformer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <set>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"
#include "model/gpt2.h"
#include "model/llama.h"

namespace rlhf {

namespace {
// Parameters a checkpoint of another head type lacks: load_model draws them.
bool is_head_parameter(const std::string& name) {
  return name.starts_with("score.") || name.starts_with("lm_head.");
}
}  // namespace

std::vector<std::pair<std::string, Linear>> TransformerImpl::linear_layers() {
  std::vector<std::pair<std::string, Linear>> out;
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (auto lin = std::dynamic_pointer_cast<LinearImpl>(item.value())) out.emplace_back(item.key(), Linear(lin));
  }
  return out;
}

bool TransformerImpl::hf_ignorable(const std::string& name) const {
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") ||
         name.ends_with("rotary_emb.inv_freq") || name == "lm_head.weight";
}

torch::Tensor TransformerImpl::lm_logits(const torch::Tensor& h) {
  if (Linear* head = lm_head_slot(); head && *head && (*head)->has_lora()) return (*head)->forward(h);
  auto w = lm_head_weight();
  return dense(h, lora_switch_->attached ? head_cast_(w) : w);
}

Linear TransformerImpl::lm_head_linear() {
  Linear* slot = lm_head_slot();
  if (!slot) return nullptr;
  if (!*slot) *slot = register_module("lm_head", Linear(LinearImpl::sharing(lm_head_weight())));
  return *slot;
}

void TransformerImpl::set_dropout(double p) {
  RLHF_CHECK(p >= 0 && p < 1, "dropout must be in [0, 1), got ", p);
  embd_pdrop_ = attn_pdrop_ = resid_pdrop_ = p;
}

void TransformerImpl::init_weights(uint64_t seed, const ParamFilter& only) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  const double std = cfg_.initializer_range;
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    if (name.find("lora_") != std::string::npos) continue;  // adapters initialise themselves
    if (only && !only(name)) continue;
    bool is_norm = name.find("ln_") != std::string::npos || name.find("layernorm") != std::string::npos ||
                   name.find("norm.") != std::string::npos;
    if (is_norm) {
      name.ends_with(".bias") ? p.zero_() : p.fill_(1.0);
    } else if (name.ends_with(".bias")) {
      p.zero_();
    } else {
      auto cpu = torch::empty(p.sizes(), torch::kFloat);
      cpu.normal_(0, std, gen);
      p.copy_(cpu);
    }
  }
}

TransformerImpl::Prepared TransformerImpl::prepare(const torch::Tensor& ids, const ForwardArgs& a) const {
  RLHF_CHECK(ids.dim() == 2, "input ids must be (batch, time), got ", ids.dim(), " dims");
  const int64_t B = ids.size(0), T = ids.size(1);
  KVCache* cache = a.cache;
  const int64_t past = cache ? cache->len : 0, S = past + T;
  torch::Tensor key_mask;
  if (cache) {
    RLHF_CHECK(cache->batch() == B, "KV cache holds ", cache->batch(), " rows but the input has ", B);
    RLHF_CHECK(S <= cache->capacity, "KV cache overflow: ", S, " positions > capacity ", cache->capacity);
    if (a.attention_mask.defined()) {
      RLHF_CHECK(a.attention_mask.size(0) == B && a.attention_mask.size(1) == T,
                 "with a KV cache the attention mask covers the new tokens only: expected (", B, ", ", T, ")");
      cache->key_mask.narrow(1, past, T).copy_(a.attention_mask);
    } else {
      cache->key_mask.narrow(1, past, T).fill_(1);
    }
    key_mask = cache->key_mask.narrow(1, 0, S);
  } else if (a.attention_mask.defined()) {
    RLHF_CHECK(a.attention_mask.size(0) == B && a.attention_mask.size(1) == T, "attention mask shape [",
               a.attention_mask.size(0), ", ", a.attention_mask.size(1), "] does not match input ids [", B, ", ", T, "]");
    key_mask = a.attention_mask;
  }
  Prepared p;
  if (a.position_ids.defined()) {
    RLHF_CHECK(a.position_ids.size(0) == B && a.position_ids.size(1) == T, "position ids must be (", B, ", ", T, ")");
    p.positions = a.position_ids;
  } else if (a.segment_ids.defined()) {
    RLHF_CHECK(a.segment_ids.size(0) == B && a.segment_ids.size(1) == T, "segment ids must be (", B, ", ", T, ")");
    p.positions = positions_from_segments(a.segment_ids);  // packed rows: each sequence starts at 0
  } else if (key_mask.defined()) {
    p.positions = positions_from_mask(key_mask).narrow(1, past, T);
  } else {
    p.positions = torch::arange(past, S, torch::TensorOptions().dtype(torch::kLong).device(ids.device()))
                      .unsqueeze(0)
                      .expand({B, T});
  }
  p.bias = attention_bias(T, S, key_mask, a.segment_ids, cfg_.sliding_window, ids.device());
  return p;
}

// ---- construction and Hugging Face I/O -------------------------------------------------------------------

static Transformer construct(const ModelConfig& cfg) {
  cfg.check_fits_in_memory(available_memory_bytes());  // before libtorch asks for the bytes
  if (cfg.arch == Arch::GPT2) return std::make_shared<Gpt2Impl>(cfg);
  return std::make_shared<LlamaImpl>(cfg);
}

Transformer make_model(const ModelConfig& cfg, uint64_t seed) {
  auto m = construct(cfg);
  m->init_weights(seed);
  m->to(device());
  return m;
}

std::vector<std::string> load_weights(TransformerImpl& model, const SafetensorsReader& st, bool allow_missing_head) {
  torch::NoGradGuard ng;
  std::set<std::string> used;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (name.find("lora_") != std::string::npos) continue;
    torch::Tensor p = item.value();
    std::vector<std::string> candidates = {name};
    for (auto& a : model.hf_aliases(name)) candidates.push_back(a);
    const std::string* found = nullptr;
    for (auto& c : candidates)
      if (st.contains(c)) {
        found = &c;
        break;
      }
    if (!found) {
      RLHF_CHECK(allow_missing_head && is_head_parameter(name), st.describe(), ": missing tensor \"", name, "\" needed by the ",
                 model.config().model_type, " architecture in config.json; the weights do not match the config");
      log_info(st.describe(), ": no \"", name, "\" in the checkpoint; initialised a new head");
      continue;
    }
    const StTensorInfo& info = st.info(*found);
    bool tr = model.hf_transposed(name);
    std::vector<int64_t> want = p.sizes().vec();
    if (tr) std::reverse(want.begin(), want.end());
    auto shape_str = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    RLHF_CHECK(info.shape == want, st.describe(), ": tensor \"", *found, "\" has shape ", shape_str(info.shape),
               " but config.json implies ", shape_str(want), "; the weights do not match the config");
    RLHF_CHECK(info.dtype == "F32" || info.dtype == "BF16" || info.dtype == "F16" || info.dtype == "F64",
               st.describe(), ": tensor \"", *found, "\" has dtype ", info.dtype, "; expected a float type");
    auto t = st.load(*found, torch::kFloat);
    require_finite(t, st.file_of(*found), *found, "the checkpoint is corrupt or came from a diverged run");
    if (tr) t = t.t();
    p.copy_(t.to(p.dtype()));
    used.insert(*found);
  }
  std::vector<std::string> unused;
  for (auto& n : st.names())
    if (!used.count(n) && !model.hf_ignorable(n)) unused.push_back(n);
  return unused;
}

Transformer load_model(const std::filesystem::path& dir, std::optional<Head> head, uint64_t seed) {
  std::error_code ec;
  RLHF_CHECK(std::filesystem::is_directory(dir, ec), dir.string(), ": model directory not found");
  ModelConfig cfg = ModelConfig::from_file((dir / "config.json").string());
  bool new_head = head.has_value() && *head != cfg.head;
  if (head) {
    cfg.head = *head;
    if (new_head && *head == Head::Score) cfg.num_labels = 1;
  }
  SafetensorsReader st(dir);
  // Constructed with uninitialised tensors (the checkpoint fills them); only a new head is drawn.
  // Drawing all of them first, as before, cost a second per GPT-2-124M and about a minute at 8B.
  auto model = construct(cfg);
  if (new_head) model->init_weights(seed, is_head_parameter);
  model->to(device());
  auto unused = load_weights(*model, st, new_head);
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 4; ++i) list += (i ? ", " : "") + unused[i];
    log_warn(dir.string(), ": ", unused.size(), " tensor(s) in the checkpoint are not used by a ", cfg.model_type,
             " model (", list, unused.size() > 4 ? ", ..." : "", ")");
  }
  return model;
}

NamedTensors hf_state_dict(TransformerImpl& model) {
  NamedTensors out;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (name.find("lora_") != std::string::npos) continue;
    torch::Tensor t = item.value().detach();
    if (model.hf_transposed(name)) t = t.t().contiguous();
    out.emplace_back(name, t);
  }
  return out;
}

void save_model(TransformerImpl& model, const std::filesystem::path& dir, torch::ScalarType dtype) {
  auto tensors = hf_state_dict(model);
  require_finite_to_save(tensors, dir.string());
  ensure_directory(dir);
  save_safetensors_dir(dir, tensors, dtype);
  Json cfg = model.config().to_json();
  cfg["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kHalf ? "float16" : "float32";
  write_json_atomic(dir / "config.json", cfg);
  // The stopping and sampling defaults the model came with (transformers writes the file too).
  if (model.config().head == Head::LM && model.config().generation_config.is_object())
    write_json_atomic(dir / "generation_config.json", model.config().generation_config);
}

}  // namespace rlhf
