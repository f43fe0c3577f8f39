#include "model/lora.h"

#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "io/json.h"
#include "io/hf_dirs.h"
#include "io/safetensors.h"

namespace rlhf {

namespace {

const std::string kPeftPrefix = "base_model.model.";

bool matches(const std::string& module, const std::vector<std::string>& targets) {
  if (targets.size() == 1 && targets[0].rfind("re:", 0) == 0) return std::regex_match(module, std::regex(targets[0].substr(3)));
  for (const auto& t : targets) {
    if (module == t) return true;
    if (module.size() > t.size() && module.ends_with(t) && module[module.size() - t.size() - 1] == '.') return true;
  }
  return false;
}

bool is_score_head(const std::string& param) { return param.rfind("score.", 0) == 0; }

}  // namespace

std::vector<std::string> default_lora_targets(const ModelConfig& cfg) {
  if (cfg.arch == Arch::GPT2) return {"c_attn", "c_proj", "c_fc"};
  return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
}

std::vector<std::string> attach_lora(TransformerImpl& model, const LoraConfig& cfg, uint64_t seed) {
  validate_lora_config(cfg);
  RLHF_CHECK(cfg.r > 0, "LoRA rank r must be positive, got ", cfg.r);
  RLHF_CHECK(cfg.alpha > 0, "LoRA alpha must be positive, got ", cfg.alpha);
  RLHF_CHECK(cfg.dropout >= 0 && cfg.dropout < 1, "LoRA dropout must be in [0, 1), got ", cfg.dropout);
  auto targets = cfg.target_modules.empty() ? default_lora_targets(model.config()) : cfg.target_modules;
  std::vector<std::string> adapted;
  torch::manual_seed(seed);
  // The output head only when named (PEFT's target "lm_head"); a tied head then gets a Linear over
  // the embedding's weight, which carries the adapter (and unties only if merged).
  if (model.config().head == Head::LM && matches("lm_head", targets)) model.lm_head_linear();
  for (auto& [name, lin] : model.linear_layers()) {
    if (name == "score" || !matches(name, targets)) continue;
    lin->attach_lora(cfg.r, cfg.alpha, cfg.dropout, model.lora_switch(), cfg.use_rslora);
    adapted.push_back(name);
  }
  RLHF_CHECK(!adapted.empty(), "LoRA target modules [", [&] {
    std::string s;
    for (auto& t : targets) s += (s.empty() ? "" : ", ") + t;
    return s;
  }(), "] match no Linear layer of this ", model.config().model_type, " model");
  for (auto& item : model.named_parameters(true)) {
    bool train = item.key().find("lora_") != std::string::npos || is_score_head(item.key());
    item.value().set_requires_grad(train);
  }
  return adapted;
}

bool has_lora(TransformerImpl& model) {
  for (auto& [name, lin] : model.linear_layers())
    if (lin->has_lora()) return true;
  return false;
}

AdaptersDisabled::AdaptersDisabled(TransformerImpl& model) : sw_(model.lora_switch()), prev_(sw_->enabled) {
  sw_->enabled = false;
}
AdaptersDisabled::~AdaptersDisabled() { sw_->enabled = prev_; }

void save_lora(TransformerImpl& model, const LoraConfig& cfg, const std::filesystem::path& dir) {
  ensure_directory(dir);
  NamedTensors tensors;
  std::vector<std::string> modules;
  for (auto& item : model.named_parameters(true)) {
    const std::string& n = item.key();
    if (n.find("lora_") != std::string::npos) {
      tensors.emplace_back(kPeftPrefix + n, item.value().detach());
      std::string mod = n.substr(0, n.find(".lora_"));
      if (modules.empty() || modules.back() != mod) modules.push_back(mod);
    } else if (is_score_head(n)) {
      tensors.emplace_back(kPeftPrefix + n, item.value().detach());
    }
  }
  RLHF_CHECK(!modules.empty(), "save_lora: the model has no LoRA adapters");
  const ModelConfig& mc = model.config();
  // Target module names as PEFT writes them: the last name component.
  std::vector<std::string> targets = cfg.target_modules.empty() ? default_lora_targets(mc) : cfg.target_modules;
  Json j = {{"peft_type", "LORA"},
            {"task_type", mc.head == Head::Score ? "SEQ_CLS" : "CAUSAL_LM"},
            {"r", cfg.r},
            {"lora_alpha", cfg.alpha},
            {"lora_dropout", cfg.dropout},
            {"target_modules", targets},
            {"bias", "none"},
            {"fan_in_fan_out", mc.arch == Arch::GPT2},
            {"use_rslora", cfg.use_rslora},
            {"use_dora", false},
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"modules_to_save", mc.head == Head::Score ? Json::array({"score"}) : Json(nullptr)},
            {"base_model_name_or_path", cfg.base_model},
            {"revision", nullptr},
            {"layers_to_transform", nullptr},
            {"layers_pattern", nullptr},
            {"rank_pattern", Json::object()},
            {"alpha_pattern", Json::object()}};
  if (targets.size() == 1 && targets[0].rfind("re:", 0) == 0) j["target_modules"] = targets[0].substr(3);
  require_finite_to_save(tensors, dir.string());
  save_safetensors(dir / "adapter_model.safetensors", tensors, torch::kFloat);
  write_json_atomic(dir / "adapter_config.json", j);
}

void validate_lora_config(const LoraConfig& c, const std::string& where) {
  const std::string at = where.empty() ? std::string() : where + ": ";
  RLHF_CHECK(c.r >= 1 && c.r <= 65536, at, "LoRA rank (--lora-r, \"r\") ", c.r, " must be in [1, 65536]");
  RLHF_CHECK(std::isfinite(c.alpha) && c.alpha > 0, at, "LoRA alpha (--lora-alpha) ", c.alpha, " must be a finite number > 0");
  RLHF_CHECK(std::isfinite(c.dropout) && c.dropout >= 0 && c.dropout < 1, at, "LoRA dropout (--lora-dropout) ", c.dropout,
             " must be in [0, 1)");
}

LoraConfig load_lora(TransformerImpl& model, const std::filesystem::path& dir) {
  auto cpath = dir / "adapter_config.json";
  Json j = read_json_file(cpath, "PEFT adapter config");
  const std::string where = cpath.string();
  std::string type = json_get<std::string>(j, "peft_type", "", where);
  RLHF_CHECK(type == "LORA", where, ": peft_type is \"", type, "\"; only LORA adapters are supported");
  RLHF_CHECK(!json_get<bool>(j, "use_dora", false, where), where, ": DoRA adapters are not supported");
  LoraConfig cfg;
  cfg.r = json_get<int64_t>(j, "r", 8, where);
  cfg.alpha = json_get<double>(j, "lora_alpha", 8, where);
  cfg.dropout = json_get<double>(j, "lora_dropout", 0.0, where);
  RLHF_CHECK(j.value("r", Json(8)).is_number_integer(), where, ": \"r\" must be an integer rank");
  validate_lora_config(cfg, where);
  cfg.use_rslora = json_get<bool>(j, "use_rslora", false, where);
  cfg.base_model = json_get<std::string>(j, "base_model_name_or_path", "", where);
  RLHF_CHECK(j.value("rank_pattern", Json::object()).empty() && j.value("alpha_pattern", Json::object()).empty(),
             where, ": per-module rank_pattern / alpha_pattern are not supported");
  auto tm = j.find("target_modules");
  RLHF_CHECK(tm != j.end() && (tm->is_array() || tm->is_string()), where, ": target_modules must be a list or a regex string");
  if (tm->is_string()) cfg.target_modules = {"re:" + tm->get<std::string>()};
  else cfg.target_modules = tm->get<std::vector<std::string>>();
  attach_lora(model, cfg);

  SafetensorsReader st(dir, "adapter_model");
  torch::NoGradGuard ng;
  std::set<std::string> used;
  for (auto& item : model.named_parameters(true)) {
    const std::string& n = item.key();
    bool lora = n.find("lora_") != std::string::npos;
    if (!lora && !is_score_head(n)) continue;
    // PEFT names: base_model.model.<name>; older files may carry the adapter name ("lora_A.default.weight").
    std::vector<std::string> names = {kPeftPrefix + n};
    if (lora) {
      std::string alt = n;
      alt.insert(alt.rfind(".weight"), ".default");
      names.push_back(kPeftPrefix + alt);
    } else {
      names.push_back(kPeftPrefix + n.substr(0, n.find('.')) + ".modules_to_save.default" + n.substr(n.find('.')));
    }
    const std::string* found = nullptr;
    for (auto& c : names)
      if (st.contains(c)) {
        found = &c;
        break;
      }
    if (!found) {
      RLHF_CHECK(!lora, dir.string(), ": adapter_model.safetensors has no \"", names[0],
                 "\"; the adapter does not match this model (different target modules or architecture)");
      continue;  // a score head not saved with the adapter keeps the base model's
    }
    const auto& info = st.info(*found);
    RLHF_CHECK(info.shape == item.value().sizes().vec(), dir.string(), ": tensor \"", *found, "\" has the wrong shape for this model (rank ",
               cfg.r, ")");
    auto t = st.load(*found);
    require_finite(t, dir.string(), *found, "the adapter is corrupt or came from a diverged run");
    item.value().copy_(t);
    used.insert(*found);
  }
  // PEFT saves the base weight of adapted embedding-like layers with the adapter ("lm_head.base_layer.weight",
  // save_embedding_layers="auto" when lm_head or embed_tokens is a target): loading puts it in place, as
  // PEFT does (a tied head's weight is the embedding's).
  auto params = model.named_parameters(true);
  for (auto& n : st.names()) {
    if (used.count(n) || !n.starts_with(kPeftPrefix) || !n.ends_with(".base_layer.weight")) continue;
    std::string module = n.substr(kPeftPrefix.size(), n.size() - kPeftPrefix.size() - std::string(".base_layer.weight").size());
    torch::Tensor target;
    if (params.contains(module + ".weight")) target = params[module + ".weight"];
    else if (module == "lm_head" && model.config().head == Head::LM) target = model.lm_head_weight();
    if (!target.defined()) continue;
    const auto& info = st.info(n);
    RLHF_CHECK(info.shape == target.sizes().vec(), dir.string(), ": tensor \"", n, "\" has the wrong shape for this model");
    auto t = st.load(n);
    require_finite(t, dir.string(), n, "the adapter is corrupt");
    target.copy_(t);
    used.insert(n);
  }
  for (auto& n : st.names())
    RLHF_CHECK(used.count(n), dir.string(), ": adapter tensor \"", n, "\" matches no module of this model");
  return cfg;
}

void merge_lora(TransformerImpl& model) {
  for (auto& [name, lin] : model.linear_layers()) {
    // A tied head with an adapter gets its own weight when merged: the embedding must not change.
    if (lin->shares_weight() && lin->has_lora()) model.mutable_config().tie_word_embeddings = false;
    lin->merge_lora();
  }
  model.lora_switch()->attached = false;
  for (auto& item : model.named_parameters(true)) item.value().set_requires_grad(true);
}

constexpr int kMaxAdapterChain = 8;

ModelConfig config_of_model_or_adapter(const std::filesystem::path& dir) {
  std::filesystem::path d = dir;
  for (int depth = 0; is_adapter_dir(d); ++depth) {
    RLHF_CHECK(depth < kMaxAdapterChain, dir.string(), ": a chain of more than ", kMaxAdapterChain, " adapters; merge them");
    d = adapter_base_dir(d);
  }
  return ModelConfig::from_file((d / "config.json").string());
}

namespace {

Transformer load_chain(const std::filesystem::path& dir, std::optional<Head> head, uint64_t seed, int depth) {
  if (!is_adapter_dir(dir)) return load_model(dir, head, seed);
  RLHF_CHECK(depth < kMaxAdapterChain, dir.string(), ": a chain of more than ", kMaxAdapterChain, " adapters; merge them");
  auto cpath = dir / "adapter_config.json";
  Json ac = read_json_file(cpath, "PEFT adapter config");
  std::filesystem::path base_dir = adapter_base_dir(dir);
  std::error_code ec;
  const bool reward_adapter = json_get<std::string>(ac, "task_type", "", cpath.string()) == "SEQ_CLS";
  if (!head && reward_adapter) head = Head::Score;
  // A reward adapter over a model without a score head (LoRA rm from a causal LM) must bring the head:
  // else every score would come from the head drawn at random for the base. (A causal adapter asked
  // for a score head, as `rlhf rm --model SFT_ADAPTER` does, gets a new one: that is the point.)
  std::filesystem::path root = base_dir;  // the full model under any chain of adapters
  for (int i = depth + 1; is_adapter_dir(root) && i < kMaxAdapterChain; ++i) root = adapter_base_dir(root);
  const bool head_from_adapter = reward_adapter && head == Head::Score && !is_adapter_dir(root) &&
                                 ModelConfig::from_file((root / "config.json").string()).head != Head::Score;
  if (head_from_adapter) {
    SafetensorsReader st(dir, "adapter_model");
    RLHF_CHECK(st.contains(kPeftPrefix + "score.weight") || st.contains(kPeftPrefix + "score.modules_to_save.default.weight"),
               dir.string(), ": a reward adapter over ", base_dir.string(),
               ", which has no score head, must carry one (modules_to_save [\"score\"]); adapter_model.safetensors has "
               "none, so its scores would come from a random head");
  }
  // An adapter trained on top of another one (LoRA SFT, then LoRA RL): the inner one is merged first.
  Transformer model = nullptr;
  {
    // The base's "initialised a new head" line would mislead when the adapter's head replaces it.
    struct Quiet {
      LogLevel was = log_level();
      explicit Quiet(bool on) { if (on && was < LogLevel::Warn) set_log_level(LogLevel::Warn); }
      ~Quiet() { set_log_level(was); }
    } quiet(head_from_adapter);
    model = load_chain(base_dir, head, seed, depth + 1);
  }
  merge_lora(*model);
  load_lora(*model, dir);
  if (std::filesystem::exists(dir / "config.json", ec)) {
    Json extra = read_json_file(dir / "config.json", "model config");
    auto& cfg = model->mutable_config();
    if (extra.contains("reward_bias")) cfg.raw["reward_bias"] = extra["reward_bias"];
    if (extra.contains("pad_token_id") && extra["pad_token_id"].is_number_integer()) cfg.pad_token_id = extra["pad_token_id"].get<int64_t>();
  }
  return model;
}

}  // namespace

Transformer load_model_or_adapter(const std::filesystem::path& dir, std::optional<Head> head, uint64_t seed) {
  return load_chain(dir, head, seed, 0);
}

std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(TransformerImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : model.named_parameters(true))
    if (item.value().requires_grad()) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace rlhf
