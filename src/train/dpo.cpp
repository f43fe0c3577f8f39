#include "train/dpo.h"

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/lock.h"
#include "train/checkpoint.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"
#include "train/sft.h"

namespace rlhf {

namespace fs = std::filesystem;

namespace {

// Log-probs the loss uses: sums, or per-token averages for the length-normalised losses.
torch::Tensor as_used(const std::pair<torch::Tensor, torch::Tensor>& lp, bool normalise) {
  return normalise ? lp.first / lp.second.clamp_min(1) : lp.first;
}

struct Losses {
  torch::Tensor per_record;  // (R) differentiable
  StepMetrics metrics;
};

// Per-record loss (mean over its pairs, or the KTO term) and TRL's metrics.
Losses record_losses(const DpoConfig& cfg, bool kto, DpoLoss kind, const std::vector<PreferenceExample>& data,
                     const std::vector<int64_t>& idx, const FlatResponses& f, const torch::Tensor& pol,
                     const torch::Tensor& ref, const torch::Tensor& pol_sum, const torch::Tensor& logit_sum,
                     const torch::Tensor& counts) {
  Losses out;
  auto dev = pol.device();
  const double beta = cfg.params.beta;
  auto refd = ref.defined() ? ref : torch::zeros_like(pol);
  if (kto) {
    std::vector<int64_t> label;
    for (auto i : idx) label.push_back(data[size_t(i)].label);
    auto lab = torch::tensor(label).to(dev);
    auto logratio = pol - refd;
    auto z0 = logratio.detach().mean().clamp_min(0);
    out.per_record = kto_loss(logratio, lab, z0, beta, cfg.kto_desirable_weight, cfg.kto_undesirable_weight);
    auto r = (beta * logratio.detach()).to(torch::kCPU);
    for (int64_t k = 0; k < r.numel(); ++k) {
      bool g = label[size_t(k)] == 1;
      out.metrics.add(g ? "rewards/chosen" : "rewards/rejected", r[k].item<double>());
      out.metrics.add(g ? "logps/chosen" : "logps/rejected", pol_sum[k].item<double>());
      out.metrics.add(g ? "logits/chosen" : "logits/rejected", logit_sum[k].item<double>(), counts[k].item<double>());
    }
    out.metrics.add("kl", z0.item<double>());
    return out;
  }
  FlatPairs fp = flatten_pairs(data, idx, f);
  // Pair indices on the CPU for the metrics (pol_sum lives there), and on the loss's device.
  auto B_cpu = torch::tensor(fp.better), W_cpu = torch::tensor(fp.worse);
  auto B = B_cpu.to(dev), W = W_cpu.to(dev), own = torch::tensor(fp.owner).to(dev);
  auto pc = pol.index_select(0, B), pr = pol.index_select(0, W);
  auto rc = refd.index_select(0, B), rr = refd.index_select(0, W);
  // Soft labels (p_chosen, a judge's comparisons) where the data has them; the sigmoid loss reads them.
  torch::Tensor soft;
  if (kind == DpoLoss::Sigmoid && std::any_of(fp.p_better.begin(), fp.p_better.end(), [](float v) { return !std::isnan(v); }))
    soft = torch::tensor(fp.p_better).to(dev);
  auto loss = dpo_loss(kind, cfg.params, pc, pr, rc, rr, soft);
  const int64_t R = int64_t(idx.size());
  auto sum = torch::zeros({R}, loss.options()).index_add(0, own, loss);
  auto cnt = pair_normalizers(data, idx, dev).to(loss.scalar_type());  // ties of identical responses count
  out.per_record = sum / cnt;
  // Implicit rewards beta * (policy - reference); SimPO's are beta * average log-prob.
  auto chosen_r = (beta * (pc - rc)).detach(), rejected_r = (beta * (pr - rr)).detach();
  const double n = double(fp.better.size());
  out.metrics.add("rewards/chosen", chosen_r.sum().item<double>(), n);
  out.metrics.add("rewards/rejected", rejected_r.sum().item<double>(), n);
  out.metrics.add("rewards/accuracies", (chosen_r > rejected_r).to(torch::kFloat).sum().item<double>(), n);
  out.metrics.add("rewards/margins", (chosen_r - rejected_r).sum().item<double>(), n);
  out.metrics.add("logps/chosen", pol_sum.index_select(0, B_cpu).sum().item<double>(), n);
  out.metrics.add("logps/rejected", pol_sum.index_select(0, W_cpu).sum().item<double>(), n);
  // TRL's logits/chosen and logits/rejected: the mean logit over the vocabulary and the completion tokens.
  out.metrics.add("logits/chosen", logit_sum.index_select(0, B_cpu).sum().item<double>(),
                  counts.index_select(0, B_cpu).sum().item<double>());
  out.metrics.add("logits/rejected", logit_sum.index_select(0, W_cpu).sum().item<double>(),
                  counts.index_select(0, W_cpu).sum().item<double>());
  return out;
}

// A fingerprint of what the cached reference log-probs depend on.
std::string cache_key(const DpoConfig& cfg, int64_t n_responses, bool normalise) {
  std::error_code ec;
  auto size = fs::file_size(cfg.data, ec);
  return cfg.data + "|" + std::to_string(size) + "|" + (cfg.ref_model.empty() ? cfg.model : cfg.ref_model) + "|" +
         std::to_string(n_responses) + "|" + std::to_string(cfg.data_opts.max_length) + "|" +
         std::to_string(cfg.data_opts.max_prompt_length) + "|" + (normalise ? "avg" : "sum");
}

}  // namespace

void run_dpo(const DpoConfig& cfg) {
  RLHF_CHECK(!cfg.model.empty() && !cfg.data.empty(), "--model and --data are required");
  const bool kto = cfg.loss == "kto";
  const DpoLoss kind = kto ? DpoLoss::Sigmoid : parse_dpo_loss(cfg.loss);
  const bool need_ref = kto || dpo_loss_needs_reference(kind);
  const bool normalise = !kto && dpo_loss_length_normalised(kind);
  RLHF_CHECK(cfg.reference == "cached" || cfg.reference == "online", "--reference must be cached or online");
  RLHF_CHECK(std::isfinite(cfg.params.beta) && cfg.params.beta > 0, "--beta ", cfg.params.beta, " must be a finite number > 0");
  RLHF_CHECK(std::isfinite(cfg.params.label_smoothing) && cfg.params.label_smoothing >= 0 && cfg.params.label_smoothing < 0.5,
             "--label-smoothing ", cfg.params.label_smoothing, " must be in [0, 0.5)");
  RLHF_CHECK(std::isfinite(cfg.params.simpo_gamma), "--simpo-gamma must be a finite number");
  RLHF_CHECK(std::isfinite(cfg.kto_desirable_weight) && cfg.kto_desirable_weight > 0 && std::isfinite(cfg.kto_undesirable_weight) &&
                 cfg.kto_undesirable_weight > 0,
             "--kto-desirable-weight and --kto-undesirable-weight must be finite numbers > 0");
  RLHF_CHECK(std::isfinite(cfg.dropout) && cfg.dropout >= 0 && cfg.dropout < 1, "--dropout ", cfg.dropout,
             " must be in [0, 1)");
  RLHF_CHECK(cfg.eval_split >= 0 && cfg.eval_split < 1, "--eval-split must be in [0, 1)");
  validate_train_config(cfg.train);
  validate_preference_options(cfg.data_opts);
  if (cfg.use_lora) validate_lora_config(cfg.lora);
  parse_save_dtype(cfg.save_dtype);  // now, not after training
  DirLock out_lock(cfg.train.out);
  if (claim_training_output(cfg.train.out, "dpo", cfg.resolved, cfg.train.resume, cfg.train.overwrite_output_dir,
                            cfg.train.resume_anyway))
    return;  // finished already

  auto tok = Tokenizer::load(cfg.tokenizer.empty() ? cfg.model : cfg.tokenizer);

  // 1. data
  PreferenceDataOptions dopt = cfg.data_opts;
  std::string cap_note;  // said with the data line below, so that a bad line stays the only output
  dopt.max_length = cap_to_context(dopt.max_length, config_of_model_or_adapter(cfg.model), &cap_note);
  dopt.allow_unpaired = kto;
  PreferenceDataStats st;
  auto train = load_preference_data(cfg.data, *tok, dopt, &st);
  log_info("preference data ", cfg.data, ": ", st.describe(), cap_note.empty() ? "" : "; " + cap_note);
  std::vector<PreferenceExample> eval;
  if (!cfg.eval_data.empty()) {
    eval = load_preference_data(cfg.eval_data, *tok, dopt, &st);
  } else if (cfg.eval_split > 0) {
    eval = split_off_eval(train, cfg.eval_split, cfg.train.seed);
  }
  for (auto* set : {&train, &eval})
    for (auto& e : *set) {
      if (kto) {
        RLHF_CHECK(e.label >= 0 || (e.pairs.size() == 1 && e.responses.size() == 2), cfg.data, ":", e.source_line,
                   ": KTO needs {\"completion\",\"label\"} records or chosen/rejected pairs");
      } else {
        RLHF_CHECK(e.label < 0, cfg.data, ":", e.source_line, ": unpaired records need --loss kto");
      }
    }
  if (kto) {  // a chosen/rejected pair becomes one desirable and one undesirable example
    auto split = [](std::vector<PreferenceExample>& v) {
      std::vector<PreferenceExample> out;
      for (auto& e : v) {
        if (e.label >= 0) {
          out.push_back(std::move(e));
          continue;
        }
        for (int k = 0; k < 2; ++k) {
          PreferenceExample u;
          u.responses = {e.responses[size_t(k == 0 ? e.pairs[0].better : e.pairs[0].worse)]};
          u.label = k == 0 ? 1 : 0;
          u.source_line = e.source_line;
          out.push_back(std::move(u));
        }
      }
      v = std::move(out);
    };
    split(train);
    split(eval);
  }
  const auto train_off = response_offsets(train), eval_off = response_offsets(eval);
  auto policy = load_model_or_adapter(cfg.model);
  merge_lora(*policy);
  RLHF_CHECK(policy->config().head == Head::LM, cfg.model, ": DPO needs a causal LM policy");
  RLHF_CHECK(tok->vocab_size() <= policy->config().vocab_size, "the tokenizer has ", tok->vocab_size(),
             " tokens but the model only ", policy->config().vocab_size, "; pass the matching --tokenizer");
  policy->set_dropout(cfg.dropout);

  // 2. LoRA (the reference is then the adapters switched off) or a separate reference model
  std::optional<LoraConfig> lora;
  if (cfg.use_lora) {
    RLHF_CHECK(cfg.ref_model.empty(), "--ref-model cannot be combined with --lora: the reference is the base weights");
    LoraConfig lc = cfg.lora;
    lc.base_model = cfg.model;
    attach_lora(*policy, lc, cfg.train.seed);
    lora = lc;
  }
  const int64_t pad = tok->pad_id() >= 0 ? tok->pad_id() : (tok->eos_id() >= 0 ? tok->eos_id() : 0);
  const torch::Device dev = device();
  Transformer ref_model;  // only when a second model is really needed
  if (need_ref && (!cfg.ref_model.empty() || (cfg.reference == "online" && !lora))) {
    ref_model = load_model_or_adapter(cfg.ref_model.empty() ? cfg.model : cfg.ref_model);
    merge_lora(*ref_model);
    ref_model->eval();
    for (auto& p : ref_model->parameters()) p.set_requires_grad(false);
  }
  // Reference log-probs of a flat batch, without grad.
  auto reference_logps = [&](const Batch& b) {
    torch::NoGradGuard ng;
    ComputeScope cs;
    if (ref_model) return as_used(masked_sequence_logps(*ref_model, b), normalise);
    bool was = policy->is_training();
    policy->eval();
    AdaptersDisabled off(*policy);
    auto r = as_used(masked_sequence_logps(*policy, b), normalise);
    policy->train(was);
    return r;
  };

  // 3. cached reference log-probs: computed once, before any update, and stored with the run
  torch::Tensor ref_cache_train, ref_cache_eval;
  if (need_ref && cfg.reference == "cached") {
    ensure_directory(cfg.train.out);
    fs::path file = fs::path(cfg.train.out) / "reference_logps.safetensors";
    std::string key = cache_key(cfg, train_off.back() + eval_off.back(), normalise);
    std::error_code ec;
    if (fs::exists(file, ec)) {
      SafetensorsFile f(file);
      auto it = f.metadata().find("key");
      if (it != f.metadata().end() && it->second == key) {
        ref_cache_train = f.load("train");
        ref_cache_eval = f.find("eval") ? f.load("eval") : torch::Tensor();
        log_info("reference log-probs: cached in ", file.string());
      }
    }
    if (!ref_cache_train.defined()) {
      RLHF_CHECK(!cfg.train.resume || lora || ref_model || !fs::exists(fs::path(cfg.train.out) / "checkpoints", ec), file.string(),
                 ": missing or stale, and the policy has already been updated; restart without --resume or use --reference online");
      auto compute = [&](const std::vector<PreferenceExample>& data, const std::vector<int64_t>& off) {
        auto out = torch::zeros({off.back()}, torch::kFloat);
        std::vector<int64_t> all(data.size());
        for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
        Progress bar("reference log-probs", int64_t(data.size()), "prompts");
        const size_t chunk = 8;
        for (size_t i = 0; i < all.size(); i += chunk) {
          std::vector<int64_t> idx(all.begin() + long(i), all.begin() + long(std::min(all.size(), i + chunk)));
          FlatResponses f = flatten_responses(data, off, idx);
          auto r = reference_logps(collate(f.seqs, pad, dev)).to(torch::kCPU);
          for (size_t k = 0; k < f.ids.size(); ++k) out[f.ids[k]] = r[int64_t(k)];
          bar.update(int64_t(i + idx.size()));
        }
        bar.finish();
        return out;
      };
      ref_cache_train = compute(train, train_off);
      NamedTensors t = {{"train", ref_cache_train}};
      if (!eval.empty()) {
        ref_cache_eval = compute(eval, eval_off);
        t.emplace_back("eval", ref_cache_eval);
      }
      save_safetensors(file, t, torch::ScalarType::Undefined, {{"key", key}});
    }
  }
  auto ref_for = [&](const FlatResponses& f, const Batch& b, const torch::Tensor& cache) -> torch::Tensor {
    if (!need_ref) return {};
    if (cache.defined()) return cache.index_select(0, torch::tensor(f.ids)).to(dev);
    return reference_logps(b);
  };

  // 4. the loop
  TrainHooks hooks;
  hooks.weight = [](int64_t) { return 1.0; };
  hooks.micro_step = [&](const std::vector<int64_t>& idx, double denom, StepMetrics& m) {
    FlatResponses f = flatten_responses(train, train_off, idx);
    Batch b = collate(f.seqs, pad, dev);  // chosen and rejected together: one forward
    auto ref = ref_for(f, b, ref_cache_train);
    Losses l;
    {
      ComputeScope cs;
      torch::Tensor logit_sums;
      auto lp = masked_sequence_logps(*policy, b, &logit_sums);
      l = record_losses(cfg, kto, kind, train, idx, f, as_used(lp, normalise), ref, lp.first.detach().to(torch::kCPU),
                        logit_sums.to(torch::kCPU), lp.second.detach().to(torch::kCPU));
    }
    (l.per_record.sum() / denom).backward();
    m.add("loss", l.per_record.sum().item<double>(), double(idx.size()));
    Json lm = l.metrics.mean();
    for (auto it = lm.begin(); it != lm.end(); ++it) m.add(it.key(), it.value().get<double>() * double(idx.size()), double(idx.size()));
    m.add("num_tokens", double(b.tokens), 1);
  };
  if (!eval.empty()) {
    hooks.evaluate = [&] {
      StepMetrics m;
      const size_t mb = size_t(cfg.train.micro_batch_size > 0 ? cfg.train.micro_batch_size : cfg.train.batch_size);
      for (size_t i = 0; i < eval.size(); i += mb) {
        std::vector<int64_t> idx;
        for (size_t k = i; k < std::min(eval.size(), i + mb); ++k) idx.push_back(int64_t(k));
        FlatResponses f = flatten_responses(eval, eval_off, idx);
        Batch b = collate(f.seqs, pad, dev);
        auto ref = ref_for(f, b, ref_cache_eval);
        ComputeScope cs;
        torch::Tensor logit_sums;
        auto lp = masked_sequence_logps(*policy, b, &logit_sums);
        auto l = record_losses(cfg, kto, kind, eval, idx, f, as_used(lp, normalise), ref, lp.first.to(torch::kCPU),
                               logit_sums.to(torch::kCPU), lp.second.to(torch::kCPU));
        m.add("loss", l.per_record.sum().item<double>(), double(idx.size()));
        Json lm = l.metrics.mean();
        for (auto it = lm.begin(); it != lm.end(); ++it) m.add(it.key(), it.value().get<double>() * double(idx.size()), double(idx.size()));
      }
      return m.mean();
    };
  }
  hooks.save_output = [&](const fs::path& dir) {
    if (lora) save_lora(*policy, *lora, dir);
    else save_model(*policy, dir, parse_save_dtype(cfg.save_dtype));
    tok->save(dir);
  };
  Json resolved = cfg.resolved;
  resolved["_runtime"] = {{"threads", runtime().threads}, {"dtype", runtime().dtype}, {"device", runtime().device}};
  log_info(kto ? "kto" : dpo_loss_name(kind), " loss, beta ", cfg.params.beta, ", reference ",
           !need_ref ? "none (reference-free)" : (cfg.reference == "cached" ? "cached" : "online"),
           lora ? " (LoRA: adapters off)" : ref_model ? " (separate model)" : "");
  run_training(cfg.train, *policy, lora, int64_t(train.size()), hooks, "dpo", resolved);
}

}  // namespace rlhf
