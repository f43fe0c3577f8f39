#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/lock.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/example.h"
#include "data/preference_data.h"
#include "data/prompts.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "generate/generator.h"
#include "io/jsonl.h"
#include "model/lora.h"
#include "train/checkpoint.h"
#include "train/reward.h"
#include "train/sft.h"
#include "world/world.h"

namespace rlhf {

namespace {

namespace fs = std::filesystem;

Json num(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

Transformer load_policy(const std::string& dir) {
  auto m = load_model_or_adapter(dir);
  merge_lora(*m);
  RLHF_CHECK(m->config().head == Head::LM, dir, ": is not a causal language model (a reward model?)");
  m->eval();
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  return m;
}

// Everything evaluation needs besides the policy under test.
struct Judge {
  explicit Judge(const EvalConfig& c) : cfg(c) {}
  const EvalConfig& cfg;
  std::shared_ptr<Tokenizer> tok;
  std::vector<PromptRecord> prompts;
  std::vector<std::string> user_texts;  // what the gold rater reads
  std::vector<std::string> families;    // each prompt's "family" ("" when it has none)
  std::vector<Json> rm_prompts;         // prompt field of the reward model's records
  std::optional<World> world;
  std::optional<RewardModel> rm;
  std::shared_ptr<Tokenizer> rm_tok;
  std::unique_ptr<PreferenceParser> rm_parser;
  Transformer ref;
  std::vector<int64_t> eos;
  int64_t pad = 0;

  std::vector<std::vector<Generation>> sample(TransformerImpl& model, const std::vector<size_t>& which, int64_t n,
                                              uint64_t seed) {
    std::vector<std::vector<int64_t>> ids;
    for (auto i : which) ids.push_back(prompts[i].ids);
    GenerateParams p;
    p.n = n;
    p.max_new_tokens = cfg.max_new_tokens;
    p.sampling.temperature = cfg.temperature;
    p.seed = seed;
    p.eos_ids = eos;
    p.pad_id = pad;
    p.batch_rows = 64;
    p.vocab_limit = tok->vocab_size();
    auto t = tok;
    p.decode = [t](const std::vector<int64_t>& v) { return t->decode(v, /*skip_special_tokens=*/true); };
    p.progress = true;
    return generate(model, ids, p);
  }

  // Learned rewards of responses (texts) to prompts `which`; NaN without a reward model.
  std::vector<std::vector<double>> rewards(const std::vector<size_t>& which, const std::vector<std::vector<std::string>>& texts) {
    std::vector<std::vector<double>> out(which.size());
    if (!rm) {
      for (size_t i = 0; i < which.size(); ++i) out[i].assign(texts[i].size(), NAN);
      return out;
    }
    torch::NoGradGuard ng;
    std::vector<PreferenceExample> ex;
    for (size_t i = 0; i < which.size(); ++i)
      ex.push_back(rm_parser->parse({{"prompt", rm_prompts[which[i]]}, {"responses", texts[i]}}, prompts[which[i]].where));
    std::vector<std::pair<size_t, size_t>> slots;
    std::vector<const TokenizedExample*> seqs;
    for (size_t i = 0; i < ex.size(); ++i) {
      out[i].assign(ex[i].responses.size(), NAN);
      for (size_t j = 0; j < ex[i].responses.size(); ++j) slots.push_back({i, j}), seqs.push_back(&ex[i].responses[j]);
    }
    const int64_t rm_pad = rm->pad_id >= 0 ? rm->pad_id : 0;
    for (size_t a = 0; a < seqs.size(); a += 64) {
      size_t b = std::min(seqs.size(), a + 64);
      std::vector<const TokenizedExample*> chunk(seqs.begin() + long(a), seqs.begin() + long(b));
      auto s = rm->score(collate(chunk, rm_pad, device())).to(torch::kCPU);
      for (size_t k = a; k < b; ++k) out[slots[k].first][slots[k].second] = s[long(k - a)].item<double>();
    }
    return out;
  }

  // log pi(y|x) - log pi_ref(y|x) per response (the policy's log-probs come from sampling at T = 1).
  std::vector<std::vector<double>> kls(const std::vector<size_t>& which, const std::vector<std::vector<Generation>>& gens) {
    torch::NoGradGuard ng;
    std::vector<TokenizedExample> seqs;
    std::vector<double> policy_lp;
    for (size_t i = 0; i < which.size(); ++i)
      for (auto& g : gens[i]) {
        TokenizedExample e;
        e.ids = prompts[which[i]].ids;
        e.loss_mask.assign(e.ids.size(), 0);
        e.ids.insert(e.ids.end(), g.ids.begin(), g.ids.end());
        e.loss_mask.resize(e.ids.size(), 1);
        seqs.push_back(std::move(e));
        double s = 0;
        for (float x : g.model_logprobs) s += x;
        policy_lp.push_back(s);
      }
    std::vector<double> ref_lp(seqs.size(), 0.0);
    for (size_t a = 0; a < seqs.size(); a += 64) {
      size_t b = std::min(seqs.size(), a + 64);
      std::vector<const TokenizedExample*> chunk;
      for (size_t k = a; k < b; ++k) chunk.push_back(&seqs[k]);
      auto lp = masked_sequence_logps(*ref, collate(chunk, pad, device())).first.to(torch::kDouble).to(torch::kCPU);
      for (size_t k = a; k < b; ++k) ref_lp[k] = lp[long(k - a)].item<double>();
    }
    std::vector<std::vector<double>> out(which.size());
    size_t k = 0;
    for (size_t i = 0; i < which.size(); ++i)
      for (size_t j = 0; j < gens[i].size(); ++j, ++k) out[i].push_back(policy_lp[k] - ref_lp[k]);
    return out;
  }

  std::vector<GoldRating> gold(const std::vector<size_t>& which, const std::vector<std::vector<std::string>>& texts) {
    std::vector<GoldRating> out;
    if (!world) return out;
    for (size_t i = 0; i < which.size(); ++i)
      for (auto& t : texts[i]) out.push_back(world->rate(user_texts[which[i]], t));
    return out;
  }
};

std::vector<std::vector<std::string>> texts_of(const std::vector<std::vector<Generation>>& gens) {
  std::vector<std::vector<std::string>> out;
  for (auto& row : gens) {
    out.emplace_back();
    for (auto& g : row) out.back().push_back(trim(g.text));
  }
  return out;
}

// One policy's single samples, scored.
struct PolicyRun {
  std::vector<std::string> texts;
  std::vector<GoldRating> gold;
  std::vector<double> reward, kl;
};

PolicyRun run_policy(Judge& J, TransformerImpl& model, bool is_reference) {
  std::vector<size_t> all(J.prompts.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto gens = J.sample(model, all, 1, J.cfg.seed);
  auto texts = texts_of(gens);
  PolicyRun r;
  for (auto& t : texts) r.texts.push_back(t[0]);
  r.gold = J.gold(all, texts);
  for (auto& v : J.rewards(all, texts)) r.reward.push_back(v[0]);
  if (is_reference) r.kl.assign(all.size(), 0.0);
  else
    for (auto& v : J.kls(all, gens)) r.kl.push_back(v[0]);
  return r;
}

Json verdict_counts(const std::vector<GoldRating>& gold) {
  std::map<std::string, int64_t> v;
  for (auto& g : gold) ++v[g.verdict];
  return v;
}

// families: each prompt's "family" field ("" when the prompts file has none).
Json summarize(const std::string& name, const std::string& model, const PolicyRun& r, const PolicyRun* ref,
               const std::vector<std::string>& families) {
  Json j = {{"name", name}, {"model", model}, {"n", int64_t(r.texts.size())}};
  auto rw = mean_ci95(r.reward), kl = mean_ci95(r.kl);
  j["reward_mean"] = num(rw.mean);
  j["reward_ci95"] = num(rw.ci95);
  j["kl_mean"] = num(kl.mean);
  j["kl_ci95"] = num(kl.ci95);
  if (!r.gold.empty()) {
    auto g = summarize_gold(r.gold).to_json();
    j["gold_mean"] = g["gold_mean"];
    j["gold_ci95"] = g["gold_ci95"];
    j["axes"] = g["axes"];
    if (ref && ref->gold.size() == r.gold.size()) {
      double w = 0;
      for (size_t i = 0; i < r.gold.size(); ++i) {
        double d = r.gold[i].score - ref->gold[i].score;
        w += d > 1e-9 ? 1.0 : d < -1e-9 ? 0.0 : 0.5;
      }
      j["win_rate_vs_sft"] = w / double(r.gold.size());
    }
    j["verdicts"] = verdict_counts(r.gold);
    // The same per prompt family (refusal of harmful asks and of their look-alikes are different figures).
    std::map<std::string, std::vector<GoldRating>> by_family;
    for (size_t i = 0; i < r.gold.size() && i < families.size(); ++i)
      if (!families[i].empty()) by_family[families[i]].push_back(r.gold[i]);
    if (!by_family.empty()) {
      Json fams = Json::object();
      for (auto& [f, gs] : by_family) {
        Json fj = summarize_gold(gs).to_json();
        fj["verdicts"] = verdict_counts(gs);
        fams[f] = fj;
      }
      j["families"] = fams;
    }
  } else if (ref && !r.reward.empty() && std::isfinite(r.reward[0])) {
    // No gold rater: the win rate under the learned reward.
    double w = 0;
    for (size_t i = 0; i < r.reward.size(); ++i) {
      double d = r.reward[i] - ref->reward[i];
      w += d > 1e-9 ? 1.0 : d < -1e-9 ? 0.0 : 0.5;
    }
    j["win_rate_vs_sft"] = w / double(r.reward.size());
    j["win_rate_judge"] = "learned reward";
  }
  return j;
}

Json overopt_point(const std::string& label, const PolicyRun& r) {
  Json p = {{"label", label}, {"kl", num(mean_ci95(r.kl).mean)}, {"reward", num(mean_ci95(r.reward).mean)}};
  if (!r.gold.empty()) p["gold"] = num(summarize_gold(r.gold).mean);
  return p;
}

}  // namespace

Json run_eval(const EvalConfig& cfg) {
  RLHF_CHECK(!cfg.policies.empty(), "rlhf eval: give at least one --policy NAME=DIR");
  RLHF_CHECK(!cfg.prompts.empty(), "rlhf eval: --prompts is required");
  RLHF_CHECK(!cfg.out.empty(), "rlhf eval: --out is required");
  auto t0 = std::chrono::steady_clock::now();
  std::string ref_dir;
  std::set<std::string> names;
  for (auto& [n, d] : cfg.policies) {
    RLHF_CHECK(names.insert(n).second, "rlhf eval: policy name \"", n, "\" given twice");
    if (n == cfg.reference) ref_dir = d;
  }
  RLHF_CHECK(!ref_dir.empty(), "rlhf eval: the reference \"", cfg.reference,
             "\" is not among the --policy names; add --policy ", cfg.reference, "=DIR or set --reference");
  RLHF_CHECK(cfg.max_new_tokens >= 1, "--max-new-tokens ", cfg.max_new_tokens, " must be >= 1");
  RLHF_CHECK(std::isfinite(cfg.temperature) && cfg.temperature > 0, "--temperature must be a finite number > 0");
  DirLock out_lock(cfg.out);

  Judge J(cfg);
  J.ref = load_policy(ref_dir);
  J.tok = Tokenizer::load(cfg.tokenizer.empty() ? ref_dir : cfg.tokenizer);
  RLHF_CHECK(J.tok->vocab_size() <= J.ref->config().vocab_size, cfg.tokenizer.empty() ? ref_dir : cfg.tokenizer,
             ": the tokenizer has ", J.tok->vocab_size(), " tokens but the model only ", J.ref->config().vocab_size,
             "; pass the matching --tokenizer");
  J.eos = stop_token_ids(*J.tok, J.ref->config());
  J.pad = J.tok->pad_id() >= 0 ? J.tok->pad_id() : (J.tok->eos_id() >= 0 ? J.tok->eos_id() : 0);
  PromptOptions po;
  po.chat = cfg.chat;
  po.chat_template = cfg.chat_template;
  po.max_new_tokens = cfg.max_new_tokens;
  po.n_ctx = J.ref->config().n_ctx;
  J.prompts = load_prompts(cfg.prompts, *J.tok, po);
  for (auto& p : J.prompts) {
    J.user_texts.push_back(prompt_user_text(p.prompt, p.where));
    const Json& fam = p.record.contains("family") ? p.record["family"] : Json("");
    RLHF_CHECK(fam.is_string(), p.where, ": \"family\" must be text (a label to group the results by)");
    J.families.push_back(fam.get<std::string>());
    J.rm_prompts.push_back(p.prompt.is_string() && cfg.chat ? Json::array({{{"role", "user"}, {"content", p.prompt}}})
                                                            : p.prompt);
  }
  if (!cfg.world.empty()) J.world = World::load(cfg.world);
  if (!cfg.reward.empty()) {
    J.rm = load_reward_model(cfg.reward);
    J.rm_tok = Tokenizer::load(cfg.reward);
    PreferenceDataOptions o;
    o.allow_unranked = true;
    o.chat_template = cfg.chat_template;
    o.max_length = J.rm->model->config().n_ctx;
    J.rm_parser = std::make_unique<PreferenceParser>(*J.rm_tok, o);
  }
  log_info("evaluating ", cfg.policies.size(), " policies on ", J.prompts.size(), " prompts (", cfg.prompts, ")",
           J.world ? ", gold rater " + cfg.world : std::string(", no gold rater"),
           J.rm ? ", reward model " + cfg.reward : std::string(", no reward model"), ", KL to ", cfg.reference);

  Json results = Json::object();
  results["title"] = "rlhf evaluation";
  // 1. the policies
  std::map<std::string, PolicyRun> runs;
  runs[cfg.reference] = run_policy(J, *J.ref, true);
  for (auto& [n, d] : cfg.policies) {
    if (n == cfg.reference) continue;
    log_info("policy ", n, " (", d, ")");
    auto m = load_policy(d);
    RLHF_CHECK(m->config().vocab_size == J.ref->config().vocab_size, d, ": vocabulary ", m->config().vocab_size,
               " differs from the reference's (", J.ref->config().vocab_size, "); policies must share the tokenizer");
    runs[n] = run_policy(J, *m, false);
  }
  Json policies = Json::array();
  for (auto& [n, d] : cfg.policies) policies.push_back(summarize(n, d, runs[n], &runs[cfg.reference], J.families));
  results["policies"] = policies;

  // 2. samples side by side: the first prompt of each family (or the first prompts)
  Json samples = Json::array();
  std::set<std::string> seen;
  for (size_t i = 0; i < J.prompts.size() && int64_t(samples.size()) < cfg.samples_shown; ++i) {
    const std::string& fam = J.families[i];
    if (!fam.empty() && !seen.insert(fam).second) continue;
    Json s = {{"prompt", J.user_texts[i]}, {"family", fam}, {"responses", Json::object()}};
    for (auto& [n, d] : cfg.policies) {
      Json r = {{"text", runs[n].texts[i]}};
      if (!runs[n].gold.empty()) r["gold"] = runs[n].gold[i].score;
      if (std::isfinite(runs[n].reward[i])) r["reward"] = runs[n].reward[i];
      s["responses"][n] = r;
    }
    samples.push_back(s);
  }
  results["samples"] = samples;
  {
    JsonlWriter w(fs::path(cfg.out) / "samples.jsonl");
    for (size_t i = 0; i < J.prompts.size(); ++i) {
      Json line = {{"prompt", J.prompts[i].prompt}};
      if (J.prompts[i].record.contains("family")) line["family"] = J.prompts[i].record["family"];
      for (auto& [n, d] : cfg.policies) {
        Json r = {{"text", runs[n].texts[i]}, {"reward", num(runs[n].reward[i])}, {"kl", num(runs[n].kl[i])}};
        if (!runs[n].gold.empty()) r["gold"] = runs[n].gold[i].to_json();
        line[n] = r;
      }
      w.write(line);
    }
    w.commit();
  }

  // 3. over-optimisation: RL checkpoints, and best-of-N from the reference
  Json overopt = Json::object();
  if (!cfg.checkpoints.empty()) {
    RLHF_CHECK(fs::is_directory(cfg.checkpoints), cfg.checkpoints,
               ": no such checkpoints directory (train with --save-steps N --keep-last 0 to keep every checkpoint)");
    std::vector<std::pair<int64_t, fs::path>> cks;
    for (auto& e : fs::directory_iterator(cfg.checkpoints)) {
      // A checkpoint holds the policy as a model (config.json) or, after LoRA training, as an adapter.
      if (!e.is_directory() || !(fs::exists(e.path() / "config.json") || fs::exists(e.path() / "adapter_config.json")))
        continue;
      int64_t step = CheckpointManager::step_of(e.path());
      if (step >= 0) cks.push_back({step, e.path()});
    }
    std::sort(cks.begin(), cks.end());
    Json pts = Json::array();
    pts.push_back(overopt_point("step 0", runs[cfg.reference]));
    for (auto& [step, dir] : cks) {
      log_info("checkpoint ", dir.string());
      auto m = load_policy(dir.string());
      pts.push_back(overopt_point("step " + std::to_string(step), run_policy(J, *m, false)));
    }
    overopt[cfg.checkpoints_name] = pts;
  }
  if (cfg.best_of_n > 0 && J.rm) {
    std::vector<size_t> which;
    for (size_t i = 0; i < J.prompts.size() && int64_t(which.size()) < cfg.best_of_n_prompts; ++i) which.push_back(i);
    log_info("best-of-", cfg.best_of_n, " from ", cfg.reference, " on ", which.size(), " prompts");
    auto gens = J.sample(*J.ref, which, cfg.best_of_n, cfg.seed + 1);
    auto texts = texts_of(gens);
    auto rw = J.rewards(which, texts);
    auto gold = J.gold(which, texts);
    Json pts = Json::array();
    for (int64_t n = 1; n <= cfg.best_of_n; n *= 2) {
      double g = 0, r = 0;
      for (size_t i = 0; i < which.size(); ++i) {
        size_t best = 0;
        for (size_t j = 1; j < size_t(n); ++j)
          if (rw[i][j] > rw[i][best]) best = j;
        r += rw[i][best];
        if (!gold.empty()) g += gold[i * size_t(cfg.best_of_n) + best].score;
      }
      double kl = std::log(double(n)) - double(n - 1) / double(n);
      Json p = {{"n", n}, {"label", "N=" + std::to_string(n)}, {"kl", kl}, {"reward", r / double(which.size())}};
      if (!gold.empty()) p["gold"] = g / double(which.size());
      pts.push_back(p);
    }
    overopt["best_of_n"] = pts;
  }
  if (!overopt.empty()) results["overoptimization"] = overopt;

  // 4. the reward model against the raters' own ceiling on held-out rankings
  if (!cfg.heldout.empty() && J.rm) {
    int64_t pairs = 0;
    double rm_acc = 0, gold_acc = 0, gold_order = 0;
    int64_t gold_pairs = 0;
    for (auto& rec : read_jsonl(cfg.heldout)) {
      const Json& j = rec.value;
      RLHF_CHECK(j.contains("responses") && j.contains("ranking"), rec.where(), ": expected a ranking record");
      auto ex = J.rm_parser->parse(j, rec.where());
      std::vector<const TokenizedExample*> seqs;
      for (auto& r : ex.responses) seqs.push_back(&r);
      torch::NoGradGuard ng;
      auto s = J.rm->score(collate(seqs, J.rm->pad_id >= 0 ? J.rm->pad_id : 0, device())).to(torch::kCPU);
      for (auto& pr : ex.pairs) {
        double d = s[pr.better].item<double>() - s[pr.worse].item<double>();
        rm_acc += d > 0 ? 1.0 : d < 0 ? 0.0 : 0.5;
        ++pairs;
        if (j.contains("gold")) {
          double gd = j["gold"][size_t(pr.better)].get<double>() - j["gold"][size_t(pr.worse)].get<double>();
          gold_acc += gd > 1e-9 ? 1.0 : gd < -1e-9 ? 0.0 : 0.5;
          if (std::abs(gd) > 1e-9) {
            ++gold_pairs;
            // Does the reward model order this pair as the gold rater does?
            gold_order += (gd > 0) == (d > 0) ? 1.0 : 0.0;
          }
        }
      }
    }
    Json rmj = {{"heldout_pairs", pairs}, {"heldout_accuracy", pairs ? num(rm_acc / double(pairs)) : Json(nullptr)}};
    if (gold_pairs > 0 || gold_acc > 0) {
      rmj["gold_accuracy_on_heldout"] = num(gold_acc / double(pairs));
      rmj["gold_order_accuracy"] = num(gold_order / double(std::max<int64_t>(1, gold_pairs)));
    }
    results["reward_model"] = rmj;
  }

  if (!cfg.extra.empty()) {
    Json extra = read_json_file(cfg.extra, "--extra results");
    RLHF_CHECK(extra.is_object(), cfg.extra, ": must hold a JSON object");
    for (auto& [k, v] : extra.items()) {
      if (k == "reward_model" && results.contains(k) && v.is_object()) results[k].update(v);
      else results[k] = v;
    }
  }
  results["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_json_atomic(fs::path(cfg.out) / "eval.json", results);
  write_report(results, cfg.out);
  log_info("wrote ", (fs::path(cfg.out) / "eval.json").string(), ", report.md, report.html and samples.jsonl");
  return results;
}

}  // namespace rlhf
