#include "generate/generator.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {

std::vector<int64_t> stop_token_ids(const Tokenizer& tok, const ModelConfig& cfg) {
  std::vector<int64_t> ids;
  auto add = [&](int64_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (auto id : cfg.eos_token_ids) add(id);
  for (auto id : cfg.generation_eos_ids) add(id);
  const int64_t t = tok.eos_id();
  add(t);
  auto named = [&](const std::vector<int64_t>& v) {
    std::string s;
    for (auto id : v) s += (s.empty() ? "" : ", ") + std::to_string(id) + " (" + tok.id_to_token(id) + ")";
    return v.size() == 1 ? s : "[" + s + "]";
  };
  auto has = [](const std::vector<int64_t>& v, int64_t id) { return std::find(v.begin(), v.end(), id) != v.end(); };
  const bool cfg_differs = !cfg.eos_token_ids.empty() && t >= 0 && !has(cfg.eos_token_ids, t);
  const bool gen_differs = !cfg.generation_eos_ids.empty() && t >= 0 && !has(cfg.generation_eos_ids, t);
  if (cfg_differs || gen_differs) {
    static std::mutex mu;
    static std::set<std::string> said;
    std::lock_guard<std::mutex> lock(mu);
    if (said.insert(cfg.source).second) {
      std::string dir = std::filesystem::path(cfg.source).parent_path().string();
      std::string msg = (dir.empty() ? std::string("the model") : dir) + ": the tokenizer's EOS is " + named({t}) + " but";
      if (cfg_differs) msg += " config.json says eos_token_id " + named(cfg.eos_token_ids);
      if (gen_differs) msg += std::string(cfg_differs ? " and" : "") + " generation_config.json says " + named(cfg.generation_eos_ids);
      log_warn(msg, "; responses end at any of ", named(ids), " (fix the file that is wrong to silence this)");
    }
  }
  return ids;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The live state of one sequence in the batch.
struct Row {
  int64_t prompt = 0, sample = 0;
  int64_t prompt_len = 0;
  uint64_t seed = 0;
  bool done = false;
  Generation out;
};

// Earliest position of any stop string in text, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const auto& s : stops) {
    size_t p = text.find(s);
    if (p < best) best = p;
  }
  return best;
}

void validate(const TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateParams& p) {
  const ModelConfig& cfg = model.config();
  RLHF_CHECK(cfg.head == Head::LM, "generation needs a causal LM, not a score (reward/value) model");
  RLHF_CHECK(p.n >= 1, "n (samples per prompt) must be >= 1");
  RLHF_CHECK(p.max_new_tokens >= 1, "max_new_tokens must be >= 1");
  RLHF_CHECK(p.batch_rows >= 1, "batch rows must be >= 1");
  RLHF_CHECK(p.vocab_limit >= 0, "vocab limit must be >= 0");
  RLHF_CHECK(p.stop_strings.empty() || p.decode, "stop strings need a tokenizer to decode with");
  for (const auto& s : p.stop_strings) RLHF_CHECK(!s.empty(), "stop strings must not be empty");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& pr = prompts[i];
    RLHF_CHECK(!pr.empty(), "prompt ", p.prompt_offset + i, " is empty (no tokens); give at least a BOS token");
    RLHF_CHECK(int64_t(pr.size()) < cfg.n_ctx, "prompt ", p.prompt_offset + i, " has ", pr.size(),
               " tokens, which leaves no room in the model's context of ", cfg.n_ctx,
               " tokens; shorten the prompt");
    for (int64_t id : pr)
      RLHF_CHECK(id >= 0 && id < cfg.vocab_size, "prompt ", p.prompt_offset + i, " has token id ", id,
                 " outside the model's vocabulary [0, ", cfg.vocab_size, "); does the tokenizer match the model?");
  }
}

// Generates for one group of prompts that fits in the batch.
void generate_group(TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts, size_t first,
                    size_t count, const GenerateParams& p, const SamplerChain& chain,
                    std::vector<std::vector<Generation>>& result, GenerateStats& st) {
  const ModelConfig& cfg = model.config();
  const torch::Device dev = device();
  int64_t lmax = 0;
  for (size_t i = 0; i < count; ++i) lmax = std::max<int64_t>(lmax, int64_t(prompts[first + i].size()));
  const int64_t max_new = std::min(p.max_new_tokens, cfg.n_ctx - 1);  // a row also stops at its context end
  const int64_t P = int64_t(count);
  // The prefix every prompt of the group shares (each keeps at least one token of its own).
  int64_t L = 0;
  if (p.share_prefix && P > 1) {
    size_t lcp = prompts[first].size(), shortest = prompts[first].size();
    for (size_t i = 1; i < count; ++i) {
      const auto& a = prompts[first], &b = prompts[first + i];
      size_t k = 0;
      while (k < lcp && k < b.size() && a[k] == b[k]) ++k;
      lcp = k;
      shortest = std::min(shortest, b.size());
    }
    lcp = std::min(lcp, shortest - 1);
    if (int64_t(lcp) >= p.min_shared_prefix) L = int64_t(lcp);
  }
  const int64_t smax = lmax - L;  // the batch's columns after the shared prefix

  // 1. Left-padded prompt batch (after the shared prefix) and its mask.
  std::vector<int64_t> ids(size_t(P * smax), p.pad_id), mask(size_t(P * smax), 0);
  for (int64_t i = 0; i < P; ++i) {
    const auto& pr = prompts[first + size_t(i)];
    const int64_t len = int64_t(pr.size()) - L;
    int64_t off = smax - len;
    for (int64_t t = 0; t < len; ++t) {
      ids[size_t(i * smax + off + t)] = pr[size_t(L + t)];
      mask[size_t(i * smax + off + t)] = 1;
    }
    st.prompt_tokens += int64_t(pr.size());
  }
  auto lopt = torch::TensorOptions().dtype(torch::kLong);
  auto ids_t = torch::from_blob(ids.data(), {P, smax}, lopt).to(dev);
  auto mask_t = torch::from_blob(mask.data(), {P, smax}, lopt).to(dev);

  // 2. Prefill once per prompt (the shared prefix once for the group), then repeat the cache rows for
  //    the n samples. Positions follow the key mask, so the padding between prefix and rest is skipped.
  auto t0 = Clock::now();
  KVCache cache;
  cache.init(cfg, L > 0 ? 1 : P, lmax + max_new, use_bf16() ? torch::kBFloat16 : torch::kFloat, dev);
  if (L > 0) {
    const auto& pr = prompts[first];
    auto pre = torch::tensor(std::vector<int64_t>(pr.begin(), pr.begin() + L), lopt).unsqueeze(0).to(dev);
    ForwardArgs pa;
    pa.cache = &cache;
    model.hidden(pre, pa);
    cache.repeat_rows(P);
  }
  ForwardArgs args;
  args.attention_mask = mask_t;
  args.cache = &cache;
  auto h = model.hidden(ids_t, args).select(1, smax - 1);  // (P, C): left padding puts the last token at the end
  auto logits = model.head(h).to(torch::kFloat);           // (P, V)
  cache.repeat_rows(p.n);
  logits = logits.repeat_interleave(p.n, 0);
  st.prefill_s += since(t0);

  std::vector<Row> rows;
  for (int64_t i = 0; i < P; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      Row r;
      r.prompt = int64_t(first) + i;
      r.sample = j;
      r.prompt_len = int64_t(prompts[size_t(r.prompt)].size());
      r.seed = derive_seed(p.seed, p.prompt_offset + uint64_t(r.prompt), uint64_t(j));
      rows.push_back(std::move(r));
    }
  std::vector<size_t> live(rows.size());  // batch row -> index into rows
  for (size_t i = 0; i < live.size(); ++i) live[i] = i;

  // 3. Decode: sample, record, stop, compact, feed the new tokens back.
  t0 = Clock::now();
  for (int64_t step = 0; step < max_new; ++step) {
    const int64_t R = int64_t(live.size());
    std::vector<double> u(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) u[size_t(r)] = counter_uniform(rows[live[size_t(r)]].seed, uint64_t(step));
    auto uniforms = torch::from_blob(u.data(), {R}, torch::kDouble).clone();
    auto model_logp_all = torch::log_softmax(logits, -1);
    if (p.vocab_limit > 0 && p.vocab_limit < logits.size(-1))
      logits.narrow(-1, p.vocab_limit, logits.size(-1) - p.vocab_limit).fill_(-std::numeric_limits<float>::infinity());
    torch::Tensor sample_logp;
    auto tokens = chain.sample(logits, uniforms, &sample_logp);
    auto model_logp = model_logp_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    auto tok_c = tokens.to(torch::kCPU);
    auto slp_c = sample_logp.to(torch::kCPU).to(torch::kFloat);
    auto mlp_c = model_logp.to(torch::kCPU).to(torch::kFloat);
    const int64_t* tk = tok_c.data_ptr<int64_t>();
    const float* sl = slp_c.data_ptr<float>();
    const float* ml = mlp_c.data_ptr<float>();

    int64_t n_live = 0;
    for (int64_t r = 0; r < R; ++r) {
      Row& row = rows[live[size_t(r)]];
      if (row.done) continue;
      row.out.ids.push_back(tk[r]);
      row.out.logprobs.push_back(sl[r]);
      row.out.model_logprobs.push_back(ml[r]);
      ++st.generated_tokens;
      bool eos = std::find(p.eos_ids.begin(), p.eos_ids.end(), tk[r]) != p.eos_ids.end();
      if (eos) {
        row.out.finish_reason = "eos";
      } else if (!p.stop_strings.empty() && find_stop(p.decode(row.out.ids), p.stop_strings) != std::string::npos) {
        row.out.finish_reason = "stop";
      } else if (int64_t(row.out.ids.size()) >= max_new || row.prompt_len + int64_t(row.out.ids.size()) >= cfg.n_ctx) {
        row.out.finish_reason = "length";
      }
      row.done = !row.out.finish_reason.empty();
      n_live += row.done ? 0 : 1;
    }
    if (n_live == 0) break;

    // Compact when a quarter of the rows are finished: copying the cache costs about one step.
    torch::Tensor next = tok_c.clone();
    if (n_live * 4 <= R * 3) {
      std::vector<int64_t> keep;
      std::vector<size_t> live2;
      for (int64_t r = 0; r < R; ++r)
        if (!rows[live[size_t(r)]].done) {
          keep.push_back(r);
          live2.push_back(live[size_t(r)]);
        }
      auto keep_t = torch::tensor(keep, lopt);
      cache.select_rows(keep_t.to(dev));
      next = next.index_select(0, keep_t);
      live = std::move(live2);
    }
    ForwardArgs a;
    a.cache = &cache;
    auto hs = model.hidden(next.unsqueeze(1).to(dev), a).select(1, 0);  // (R', C)
    logits = model.head(hs).to(torch::kFloat);
  }
  st.decode_s += since(t0);

  for (auto& row : rows) {
    if (row.out.finish_reason.empty()) row.out.finish_reason = "length";
    if (p.decode) {
      row.out.text = p.decode(row.out.ids);
      if (row.out.finish_reason == "stop") row.out.text = row.out.text.substr(0, find_stop(row.out.text, p.stop_strings));
    }
    result[size_t(row.prompt)][size_t(row.sample)] = std::move(row.out);
  }
}

}  // namespace

std::vector<std::vector<Generation>> generate(TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                              const GenerateParams& params, GenerateStats* stats) {
  validate(model, prompts, params);
  SamplerChain chain(params.sampling);
  std::vector<std::vector<Generation>> result(prompts.size(), std::vector<Generation>(size_t(params.n)));
  GenerateStats st;
  bool was_training = model.is_training();
  model.eval();
  {
    c10::InferenceMode guard;
    ComputeScope cs;
    const size_t per_group = size_t(std::max<int64_t>(1, params.batch_rows / params.n));
    std::unique_ptr<Progress> bar;
    if (params.progress) bar = std::make_unique<Progress>("generate", int64_t(prompts.size()), "prompts");
    for (size_t first = 0; first < prompts.size(); first += per_group) {
      size_t count = std::min(per_group, prompts.size() - first);
      generate_group(model, prompts, first, count, params, chain, result, st);
      if (bar) bar->update(int64_t(first + count));
    }
    if (bar) bar->finish();
  }
  model.train(was_training);
  if (stats) *stats = st;
  return result;
}

}  // namespace rlhf
