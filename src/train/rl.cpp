#include "train/rl.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/lock.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "data/chat_data.h"
#include "data/prompts.h"
#include "data/sft_data.h"
#include "generate/generator.h"
#include "io/jsonl.h"
#include "model/fused.h"
#include "model/logprobs.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/reward.h"
#include "feedback/judge.h"
#include "train/sft.h"

namespace rlhf {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using Prompt = PromptRecord;

std::vector<Prompt> load_prompts(const RlConfig& cfg, const Tokenizer& tok, const ModelConfig& mc) {
  PromptOptions o;
  o.chat = cfg.chat;
  o.chat_template = cfg.chat_template;
  o.max_new_tokens = cfg.max_new_tokens;
  o.n_ctx = mc.n_ctx;
  return rlhf::load_prompts(cfg.prompts, tok, o);
}

// Whether two tokenizers produce the same ids (then the reward model reads the policy's ids).
bool same_tokenizer(const Tokenizer& a, const Tokenizer& b) {
  if (a.vocab_size() != b.vocab_size() || a.eos_id() != b.eos_id()) return false;
  const char* probe = "Hello, world! 1234  \n\tÜnïcödé 你好 🙂 The quick brown fox.";
  return a.encode(probe, true) == b.encode(probe, true);
}

// One iteration's rollout: prompts left-padded to P, responses right-padded to R.
struct Rollout {
  torch::Tensor qr, attn;        // (N, P+R)
  torch::Tensor resp_mask;       // (N, R) bool
  torch::Tensor old_logp, ref_logp, values, scores, advantages, returns, kl;  // (N, R) / (N)
  int64_t P = 0, R = 0, N = 0;
  std::vector<int64_t> prompt_of;  // row -> prompt index in the batch
  std::vector<std::string> responses;
  std::vector<bool> ended;        // finished on EOS / stop
  int64_t generated_tokens = 0;
};

// Rows of (prompt, response) as one left/right-padded batch.
void layout(Rollout& ro, const std::vector<Prompt>& prompts, const std::vector<int64_t>& batch,
            const std::vector<std::vector<Generation>>& gens, int64_t pad, double temperature) {
  ro.P = 0;
  ro.R = 1;
  for (auto i : batch) ro.P = std::max<int64_t>(ro.P, int64_t(prompts[size_t(i)].ids.size()));
  for (auto& g : gens)
    for (auto& s : g) ro.R = std::max<int64_t>(ro.R, int64_t(s.ids.size()));
  ro.N = 0;
  for (auto& g : gens) ro.N += int64_t(g.size());
  const int64_t W = ro.P + ro.R;
  std::vector<int64_t> qr(size_t(ro.N * W), pad), attn(size_t(ro.N * W), 0);
  std::vector<uint8_t> rm(size_t(ro.N * ro.R), 0);
  std::vector<float> old(size_t(ro.N * ro.R), 0.0f);
  int64_t row = 0;
  for (size_t b = 0; b < gens.size(); ++b)
    for (auto& g : gens[b]) {
      const auto& p = prompts[size_t(batch[b])].ids;
      int64_t off = ro.P - int64_t(p.size());
      for (size_t t = 0; t < p.size(); ++t) {
        qr[size_t(row * W + off) + t] = p[t];
        attn[size_t(row * W + off) + t] = 1;
      }
      for (size_t t = 0; t < g.ids.size(); ++t) {
        qr[size_t(row * W + ro.P) + t] = g.ids[t];
        attn[size_t(row * W + ro.P) + t] = 1;
        rm[size_t(row * ro.R) + t] = 1;
        // Without top-k/top-p the sampling distribution is the temperature-scaled policy.
        old[size_t(row * ro.R) + t] = temperature == 1.0 ? g.model_logprobs[t] : g.logprobs[t];
      }
      ro.prompt_of.push_back(int64_t(b));
      ro.responses.push_back(g.text);
      ro.ended.push_back(g.finished());
      ro.generated_tokens += int64_t(g.ids.size());
      ++row;
    }
  auto dev = device();
  ro.qr = torch::tensor(qr).view({ro.N, W}).to(dev);
  ro.attn = torch::tensor(attn).view({ro.N, W}).to(dev);
  ro.resp_mask = torch::from_blob(rm.data(), {ro.N, ro.R}, torch::kUInt8).to(torch::kBool).to(dev);
  ro.old_logp = torch::from_blob(old.data(), {ro.N, ro.R}, torch::kFloat).clone().to(dev);
}

// Hidden states that predict the response tokens: positions P-1 .. P+R-2.  (n, R, C)
torch::Tensor response_hidden(TransformerImpl& m, const Rollout& ro, const torch::Tensor& rows) {
  ForwardArgs a;
  a.attention_mask = ro.attn.index_select(0, rows);
  auto h = m.hidden(ro.qr.index_select(0, rows), a);
  return h.narrow(1, ro.P - 1, ro.R);
}

// log p(response token) under logits / temperature, and optionally the entropy.  (n, R)
// The entropy joins the autograd graph only when entropy_grad (an entropy bonus in the loss);
// otherwise it is a metric (token_logp frees its full-vocabulary temporaries at once).
torch::Tensor response_logp(TransformerImpl& m, const torch::Tensor& h, const Rollout& ro, const torch::Tensor& rows,
                            double temperature, torch::Tensor* entropy, bool entropy_grad = false) {
  auto tokens = ro.qr.index_select(0, rows).narrow(1, ro.P, ro.R);
  auto r = token_logp(m.head(h), tokens, 1.0 / temperature, entropy != nullptr, entropy_grad);
  if (entropy) *entropy = r.entropy;
  return r.logp;
}

}  // namespace

void run_rl(const RlConfig& cfg_in) {
  RlConfig cfg = cfg_in;
  RLHF_CHECK(cfg.algo == "ppo" || cfg.algo == "grpo" || cfg.algo == "rloo", "algorithm '", cfg.algo,
             "' is not known; use ppo, grpo or rloo");
  const bool ppo = cfg.algo == "ppo";
  if (cfg.kl_in.empty()) cfg.kl_in = cfg.algo == "grpo" ? "loss" : "reward";
  RLHF_CHECK(cfg.kl_in == "reward" || cfg.kl_in == "loss", "--kl-in must be reward or loss");
  RLHF_CHECK(!ppo || cfg.kl_in == "reward", "PPO puts the KL penalty in the reward (--kl-in reward)");
  RLHF_CHECK(!cfg.policy.empty() && !cfg.prompts.empty() && !cfg.out.empty(), "--policy, --prompts and --out are required");
  RLHF_CHECK(!cfg.reward.empty() || cfg.reward_fn || !cfg.reward_judge.empty(),
             "give --reward RM_DIR (a reward model) or --reward-judge JUDGE --constitution C (direct RLAIF)");
  RLHF_CHECK(cfg.reward.empty() || cfg.reward_judge.empty(), "give --reward or --reward-judge, not both");
  RLHF_CHECK(cfg.reward_judge.empty() || !cfg.constitution.empty(),
             "--reward-judge needs --constitution C (the judge's score question and options)");
  RLHF_CHECK(cfg.temperature > 0, "--temperature must be > 0 for RL (samples must come from the policy)");
  const int64_t G = std::max<int64_t>(1, cfg.group);
  RLHF_CHECK(ppo || G >= 2, cfg.algo, " needs --group >= 2 samples per prompt");
  RLHF_CHECK(cfg.rollout_batch >= 1 && cfg.iterations >= 1 && cfg.ppo_epochs >= 1 && cfg.mini_batches >= 1,
             "rollout batch, iterations, PPO epochs and mini-batches must be >= 1");
  const int64_t N = cfg.rollout_batch * G;
  RLHF_CHECK(N % cfg.mini_batches == 0, "rollout rows (", N, " = prompts x group) must divide into --mini-batches ",
             cfg.mini_batches);
  const KlEstimator kl_est = parse_kl_estimator(cfg.kl_estimator);
  validate_optimizer_options(cfg.adam, cfg.schedule, cfg.max_grad_norm);
  auto finite_at_least = [](double v, double lo, const char* opt) {
    RLHF_CHECK(std::isfinite(v) && v >= lo, opt, " ", v, " must be a finite number >= ", lo);
  };
  finite_at_least(cfg.temperature, 1e-6, "--temperature");
  finite_at_least(cfg.kl_coef, 0, "--kl-coef");
  finite_at_least(cfg.kl_target, 1e-9, "--kl-target");
  finite_at_least(cfg.kl_horizon, 1, "--kl-horizon");
  finite_at_least(cfg.score_clip, 0, "--score-clip");
  finite_at_least(cfg.cliprange, 0, "--cliprange");
  finite_at_least(cfg.cliprange_value, 0, "--cliprange-value");
  finite_at_least(cfg.vf_coef, 0, "--vf-coef");
  finite_at_least(cfg.ent_coef, 0, "--ent-coef");
  finite_at_least(cfg.max_approx_kl, 0, "--max-approx-kl");
  finite_at_least(cfg.ptx_coef, 0, "--ptx-coef");
  RLHF_CHECK(std::isfinite(cfg.missing_eos_penalty), "--missing-eos-penalty must be a finite number");
  RLHF_CHECK(std::isfinite(cfg.gamma) && cfg.gamma >= 0 && cfg.gamma <= 1, "--gamma ", cfg.gamma, " must be in [0, 1]");
  RLHF_CHECK(std::isfinite(cfg.lam) && cfg.lam >= 0 && cfg.lam <= 1, "--lam ", cfg.lam, " must be in [0, 1]");
  RLHF_CHECK(cfg.max_new_tokens >= 1, "--max-new-tokens ", cfg.max_new_tokens, " must be >= 1");
  RLHF_CHECK(cfg.micro_batch >= 0, "--micro-batch ", cfg.micro_batch, " must be >= 0 (0 = the whole mini-batch)");
  RLHF_CHECK(cfg.ptx_batch >= 1, "--ptx-batch ", cfg.ptx_batch, " must be >= 1");
  RLHF_CHECK(cfg.save_steps >= 0 && cfg.keep_last >= 0 && cfg.sample_every >= 0, "--save-steps, --keep-last and "
             "--sample-every must be >= 0");
  RLHF_CHECK(cfg.max_bad_steps >= 1, "--max-bad-steps ", cfg.max_bad_steps, " must be >= 1");
  RLHF_CHECK(cfg.report_to == "tensorboard" || cfg.report_to == "none", "--report-to \"", cfg.report_to,
             "\" is not available; use tensorboard or none");
  DirLock out_lock(cfg.out);  // one writer per output directory, from here to the end
  if (claim_training_output(cfg.out, cfg.algo, cfg.resolved, cfg.resume, cfg.overwrite_output_dir, cfg.resume_anyway)) return;

  // 1. models and data (data first: bad input fails before heavy work)
  auto tok = Tokenizer::load(cfg.tokenizer.empty() ? cfg.policy : cfg.tokenizer);
  ModelConfig pcfg = config_of_model_or_adapter(cfg.policy);
  auto prompts = load_prompts(cfg, *tok, pcfg);
  RLHF_CHECK(int64_t(prompts.size()) >= cfg.rollout_batch, cfg.prompts, ": ", prompts.size(),
             " prompts, fewer than --rollout-batch ", cfg.rollout_batch);
  std::vector<TokenizedExample> ptx;
  if (!cfg.ptx_data.empty() && cfg.ptx_coef > 0) {
    SftDataOptions po;
    po.max_length = cap_to_context(po.max_length, pcfg);
    ptx = load_sft_data(cfg.ptx_data, *tok, po);
  }

  auto policy = load_model_or_adapter(cfg.policy);
  merge_lora(*policy);
  RLHF_CHECK(policy->config().head == Head::LM, cfg.policy, ": the policy must be a causal LM");
  RLHF_CHECK(tok->vocab_size() <= policy->config().vocab_size, "the tokenizer has ", tok->vocab_size(),
             " tokens but the policy only ", policy->config().vocab_size, "; pass the matching --tokenizer");
  policy->set_dropout(0);
  policy->set_gradient_checkpointing(cfg.gradient_checkpointing);
  torch::manual_seed(cfg.seed);
  std::optional<LoraConfig> lora;
  if (cfg.use_lora) {
    LoraConfig lc = cfg.lora;
    lc.base_model = cfg.policy;
    attach_lora(*policy, lc, cfg.seed);
    lora = lc;
  } else {
    for (auto& p : policy->parameters()) p.set_requires_grad(true);
  }
  Transformer ref_model;  // a frozen copy unless LoRA's adapters-off gives the reference for free
  if (!cfg.ref_model.empty() || !lora) {
    ref_model = load_model_or_adapter(cfg.ref_model.empty() ? cfg.policy : cfg.ref_model);
    RLHF_CHECK(ref_model->config().vocab_size == policy->config().vocab_size, cfg.ref_model,
               ": the reference model's vocabulary (", ref_model->config().vocab_size, ") differs from the policy's (",
               policy->config().vocab_size, "); the KL needs the same tokenizer");
    merge_lora(*ref_model);
    ref_model->eval();
    for (auto& p : ref_model->parameters()) p.set_requires_grad(false);
  }
  std::optional<RewardModel> rm;
  std::shared_ptr<Tokenizer> rm_tok;
  bool retokenize = false;
  std::optional<JudgeModel> judge_model;
  std::optional<Constitution> constitution;
  std::unique_ptr<AiJudge> judge;
  if (!cfg.reward_judge.empty()) {
    JudgeOptions jo;
    jo.chat = true;
    jo.chat_template = cfg.judge_chat_template;
    jo.batch_rows = cfg.judge_batch_rows;
    constitution = load_constitution(cfg.constitution);
    judge_model = load_judge(cfg.reward_judge, "", jo);
    RLHF_CHECK(cfg.judge_retokenize || same_tokenizer(*tok, *judge_model->tok), "--reward-judge ", cfg.reward_judge,
               ": the judge's tokenizer differs from the policy's (", cfg.policy, "); the judge would read the policy's "
               "responses re-tokenised as text. Use a judge with the policy's tokenizer, or pass --judge-retokenize to accept that");
    judge = std::make_unique<AiJudge>(*judge_model, *constitution, jo);
    log_info("direct RLAIF: rewards are ", cfg.reward_judge, "'s expected score on \"", constitution->judge.score_question,
             "\", rescaled to [-1, 1]");
  } else if (!cfg.reward_fn) {
    rm = load_reward_model(cfg.reward);
    rm_tok = Tokenizer::load(cfg.reward);
    retokenize = !same_tokenizer(*tok, *rm_tok);
    if (retokenize)
      log_info("the reward model's tokenizer differs from the policy's: responses are re-tokenised through text");
  }
  Transformer value;          // PPO critic
  Linear value_head{nullptr};  // or a head on the policy
  if (ppo && cfg.shared_value) {
    value_head = Linear(policy->config().n_embd, 1, true);
    torch::NoGradGuard ng;
    value_head->weight.normal_(0, 1.0 / std::sqrt(double(policy->config().n_embd + 1)));
    value_head->bias.zero_();
    value_head->to(device());
  } else if (ppo) {
    // With a judge there is no reward model to start the critic from: the policy's own weights then.
    std::string vdir = !cfg.value_model.empty() ? cfg.value_model : !cfg.reward.empty() ? cfg.reward : cfg.policy;
    RLHF_CHECK(!vdir.empty(), "PPO needs a value model: --value-model, a --reward model to start it from, or --shared-value");
    value = load_model_or_adapter(vdir, Head::Score, cfg.seed);
    merge_lora(*value);
    value->set_dropout(0);
    value->set_gradient_checkpointing(cfg.gradient_checkpointing);
    if (lora) {
      LoraConfig vl = cfg.lora;
      vl.base_model = vdir;
      attach_lora(*value, vl, cfg.seed + 1);
    }
  }

  // 2. optimizer over policy (+ value) parameters, checkpoints, metrics
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& [n, t] : trainable_parameters(*policy)) params.emplace_back("policy." + n, t);
  if (value)
    for (auto& [n, t] : trainable_parameters(*value)) params.emplace_back("value." + n, t);
  if (value_head)
    for (auto& item : value_head->named_parameters()) params.emplace_back("value_head." + item.key(), item.value());
  std::vector<torch::Tensor> param_tensors;
  for (auto& [n, t] : params) param_tensors.push_back(t);
  AdamW opt(params, cfg.adam, /*decay_all=*/false);
  AdaptiveKlController klc(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon);
  RunningMoments score_moments;
  CheckpointManager ck(cfg.out, cfg.keep_last);
  int64_t it0 = 0, bad_streak = 0;
  auto save_weights = [&](const fs::path& dir) {
    if (lora) save_lora(*policy, *lora, dir);
    else save_model(*policy, dir, torch::kFloat);
    if (value) {
      if (lora) save_lora(*value, *lora, dir / "value");
      else save_model(*value, dir / "value", torch::kFloat);
    }
    if (value_head) save_safetensors(dir / "value_head.safetensors", {{"weight", value_head->weight}, {"bias", value_head->bias}});
  };
  Json resolved = cfg.resolved;
  resolved["_runtime"] = {{"threads", runtime().threads}, {"dtype", runtime().dtype}, {"device", runtime().device}};
  Activity act("training (" + cfg.algo + ")");
  auto latest = cfg.resume ? checkpoint_to_resume(ck, cfg.algo, resolved, cfg.resume_anyway) : ck.latest();
  if (latest && cfg.resume) {
    load_trainable_weights(*policy, lora.has_value(), *latest);
    if (value) load_trainable_weights(*value, lora.has_value(), *latest / "value");
    if (value_head) {
      SafetensorsFile f(*latest / "value_head.safetensors");
      torch::NoGradGuard ng;
      value_head->weight.copy_(f.load("weight"));
      value_head->bias.copy_(f.load("bias"));
    }
    opt.load(*latest / "optimizer.safetensors");
    restore_rng_states(*latest / "rng.safetensors");
    Json s = read_json_file(*latest / "trainer_state.json", "trainer state");
    it0 = s.at("step").get<int64_t>();
    klc.value = s.value("kl_coef", cfg.kl_coef);
    bad_streak = s.value("bad_streak", int64_t(0));
    score_moments.mean = s.value("score_mean", 0.0);
    score_moments.m2 = s.value("score_m2", 0.0);
    score_moments.count = s.value("score_count", int64_t(0));
    log_info("resuming from ", latest->string(), " (iteration ", it0, " of ", cfg.iterations, ")");
  } else if (latest) {
    RLHF_FAIL(cfg.out, ": holds checkpoints of an earlier run (", latest->string(),
              "); pass --resume to continue it, or choose another --out");
  }
  ensure_directory(cfg.out);
  write_json_atomic(fs::path(cfg.out) / (cfg.algo + "_config.json"), resolved);
  MetricsLog metrics(cfg.out, it0 > 0 ? it0 : -1, cfg.report_to == "tensorboard");
  install_stop_handlers();
  auto save_checkpoint = [&](int64_t it) {
    ck.save(it, [&](const fs::path& dir) {
      save_weights(dir);
      opt.save(dir / "optimizer.safetensors");
      save_safetensors(dir / "rng.safetensors", rng_states());
      write_json_atomic(dir / (cfg.algo + "_config.json"), resolved);
      write_json_atomic(dir / "trainer_state.json",
                        Json{{"step", it}, {"kl_coef", klc.value}, {"bad_streak", bad_streak},
                             {"score_mean", score_moments.mean}, {"score_m2", score_moments.m2},
                             {"score_count", score_moments.count}});
    });
  };
  const int64_t pad = tok->pad_id() >= 0 ? tok->pad_id() : (tok->eos_id() >= 0 ? tok->eos_id() : 0);
  const auto eos = stop_token_ids(*tok, policy->config());
  RLHF_CHECK(!eos.empty(), "the tokenizer and model config name no EOS token; responses could never end");
  const auto dev = device();
  log_info(cfg.algo, ": ", prompts.size(), " prompts, ", cfg.iterations, " iterations of ", cfg.rollout_batch, " prompts x ",
           G, " samples, ", params.size(), " trainable tensors", !cfg.ref_model.empty() ? " (reference: " + cfg.ref_model + ")" : lora ? " (LoRA; reference = adapters off)" : "",
           value_head ? ", shared value head" : "");

  Progress bar(cfg.algo, cfg.iterations, "iterations");
  bar.update(it0);
  const int64_t n_prompts = int64_t(prompts.size());
  for (int64_t it = it0; it < cfg.iterations; ++it) {
    const double lr = scheduled_lr(cfg.schedule, cfg.adam.lr, it, cfg.iterations);
    // ---- 1. rollout --------------------------------------------------------------------------------
    auto t_gen = Clock::now();
    std::vector<int64_t> batch;
    for (int64_t k = 0; k < cfg.rollout_batch; ++k) {
      int64_t flat = it * cfg.rollout_batch + k;
      batch.push_back(epoch_order(n_prompts, cfg.seed, flat / n_prompts)[size_t(flat % n_prompts)]);
    }
    std::vector<std::vector<int64_t>> batch_ids;
    for (auto i : batch) batch_ids.push_back(prompts[size_t(i)].ids);
    GenerateParams gp;
    gp.n = G;
    gp.max_new_tokens = cfg.max_new_tokens;
    gp.sampling.temperature = float(cfg.temperature);
    gp.seed = derive_seed(cfg.seed, uint64_t(it));
    gp.eos_ids = eos;
    gp.pad_id = pad;
    gp.vocab_limit = tok->vocab_size();
    gp.batch_rows = std::max<int64_t>(G, 64);
    gp.decode = [&](const std::vector<int64_t>& v) { return tok->decode(v, true); };
    auto gens = generate(*policy, batch_ids, gp);
    Rollout ro;
    layout(ro, prompts, batch, gens, pad, cfg.temperature);
    double gen_s = seconds_since(t_gen);

    // ---- 2. score, reference log-probs, values -------------------------------------------------------
    auto t_score = Clock::now();
    std::vector<std::string> texts_p, texts_r;
    for (int64_t r = 0; r < ro.N; ++r) {
      texts_p.push_back(prompts[size_t(batch[size_t(ro.prompt_of[size_t(r)])])].text);
      texts_r.push_back(ro.responses[size_t(r)]);
    }
    torch::Tensor scores;
    if (judge) {
      std::vector<Json> jp;
      for (int64_t r = 0; r < ro.N; ++r) jp.push_back(prompts[size_t(batch[size_t(ro.prompt_of[size_t(r)])])].prompt);
      auto s = judge->rewards(jp, texts_r);
      scores = torch::tensor(s, torch::kDouble).to(torch::kFloat).to(dev);
    } else if (cfg.reward_fn) {
      auto s = cfg.reward_fn(texts_p, texts_r);
      RLHF_CHECK(int64_t(s.size()) == ro.N, "the reward function returned ", s.size(), " scores for ", ro.N, " responses");
      scores = torch::tensor(s, torch::kDouble).to(torch::kFloat).to(dev);
    } else {
      std::vector<TokenizedExample> seqs(size_t(ro.N));
      for (int64_t r = 0; r < ro.N; ++r) {
        auto& s = seqs[size_t(r)];
        if (retokenize) {
          s.ids = rm_tok->encode(texts_p[size_t(r)] + texts_r[size_t(r)], true);
        } else {
          const auto& g = gens[size_t(ro.prompt_of[size_t(r)])][size_t(r % G)];
          s.ids = prompts[size_t(batch[size_t(ro.prompt_of[size_t(r)])])].ids;
          s.ids.insert(s.ids.end(), g.ids.begin(), g.ids.end());
        }
        s.loss_mask.assign(s.ids.size(), 0);
      }
      std::vector<float> sc;
      torch::NoGradGuard ng;
      for (size_t i = 0; i < seqs.size(); i += 16) {
        std::vector<const TokenizedExample*> part;
        for (size_t k = i; k < std::min(seqs.size(), i + 16); ++k) part.push_back(&seqs[k]);
        ComputeScope cs;
        auto r = rm->score(collate(part, rm->pad_id >= 0 ? rm->pad_id : 0, dev)).to(torch::kCPU);
        for (int64_t k = 0; k < r.numel(); ++k) sc.push_back(r[k].item<float>());
      }
      scores = torch::tensor(sc).to(dev);
    }
    auto raw_scores = scores.clone();
    if (cfg.missing_eos_penalty > 0) {
      std::vector<float> miss;
      for (bool e : ro.ended) miss.push_back(e ? 0.f : float(cfg.missing_eos_penalty));
      scores = scores - torch::tensor(miss).to(dev);
    }
    if (cfg.normalize_scores) {
      score_moments.update(scores);
      scores = (scores - score_moments.mean) / (score_moments.std() + 1e-8);
    }
    if (cfg.score_clip > 0) scores = scores.clamp(-cfg.score_clip, cfg.score_clip);
    ro.scores = scores;
    {
      torch::NoGradGuard ng;
      policy->eval();  // no dropout while recording the rollout's reference log-probs and values
      if (value) value->eval();
      std::vector<torch::Tensor> refs, vals;
      const int64_t mb = cfg.micro_batch > 0 ? cfg.micro_batch : N / cfg.mini_batches;
      for (int64_t s = 0; s < ro.N; s += mb) {
        auto rows = torch::arange(s, std::min(ro.N, s + mb), torch::TensorOptions().dtype(torch::kLong).device(dev));
        ComputeScope cs;
        if (ref_model) {
          refs.push_back(response_logp(*ref_model, response_hidden(*ref_model, ro, rows), ro, rows, cfg.temperature, nullptr));
        } else {
          AdaptersDisabled off(*policy);
          refs.push_back(response_logp(*policy, response_hidden(*policy, ro, rows), ro, rows, cfg.temperature, nullptr));
        }
        if (value) vals.push_back(value->head(response_hidden(*value, ro, rows)).select(-1, 0).to(torch::kFloat));
        if (value_head) vals.push_back(value_head(response_hidden(*policy, ro, rows)).select(-1, 0).to(torch::kFloat));
      }
      policy->train();
      if (value) value->train();
      ro.ref_logp = torch::cat(refs).masked_fill(ro.resp_mask.logical_not(), 0);
      if (!vals.empty()) ro.values = torch::cat(vals).masked_fill(ro.resp_mask.logical_not(), 0);
    }
    double score_s = seconds_since(t_score);

    // ---- 3. rewards and advantages --------------------------------------------------------------------
    auto mask = ro.resp_mask;
    auto maskf = mask.to(torch::kFloat);
    ro.kl = kl_estimate(ro.old_logp, ro.ref_logp, kl_est) * maskf;  // (N, R)
    const double beta = klc.value;
    auto non_score = -beta * ro.kl;
    auto lengths = mask.sum(1);                                       // (N)
    auto last = (lengths - 1).clamp_min(0);
    torch::Tensor token_adv;
    if (ppo) {
      auto rewards = non_score.clone();
      rewards.scatter_add_(1, last.unsqueeze(1), scores.unsqueeze(1));
      if (cfg.whiten_rewards) rewards = masked_whiten(rewards, mask, /*shift_mean=*/false);
      auto [adv, ret] = gae(rewards, ro.values, mask, cfg.gamma, cfg.lam);
      ro.returns = ret;
      token_adv = masked_whiten(adv, mask);
    } else {
      auto seq = scores.clone();
      if (cfg.kl_in == "reward") seq = seq - beta * ro.kl.sum(1);
      auto a = cfg.algo == "grpo" ? grpo_advantages(seq, G, cfg.grpo_scale_by_std) : rloo_advantages(seq, G);
      token_adv = a.unsqueeze(1).expand({ro.N, ro.R}) * maskf;
    }
    ro.advantages = token_adv;

    // ---- 4. PPO epochs x mini-batches ------------------------------------------------------------------
    auto t_train = Clock::now();
    StepMetrics m;
    double first_ratio = NAN;
    bool stop_epochs = false, bad = false;
    std::mt19937_64 shuffle_rng(derive_seed(cfg.seed ^ 0xabcdull, uint64_t(it)));
    int64_t ptx_cursor = it * cfg.ptx_batch;
    const int64_t mini = N / cfg.mini_batches;
    const int64_t micro = cfg.micro_batch > 0 ? std::min(cfg.micro_batch, mini) : mini;
    int64_t trained_tokens = 0;
    for (int64_t ep = 0; ep < cfg.ppo_epochs && !stop_epochs && !bad; ++ep) {
      std::vector<int64_t> perm(static_cast<size_t>(N));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), shuffle_rng);
      double epoch_kl = 0;
      int64_t epoch_mb = 0;
      for (int64_t mbi = 0; mbi < cfg.mini_batches && !bad; ++mbi) {
        opt.zero_grad();
        StepMetrics mm;
        for (int64_t s = 0; s < mini; s += micro) {
          std::vector<int64_t> r(perm.begin() + mbi * mini + s, perm.begin() + mbi * mini + std::min(mini, s + micro));
          auto rows = torch::tensor(r).to(dev);
          auto msk = mask.index_select(0, rows);
          torch::Tensor loss;
          {
            ComputeScope cs;
            auto h = response_hidden(*policy, ro, rows);
            torch::Tensor ent;
            auto logp = response_logp(*policy, h, ro, rows, cfg.temperature, &ent, cfg.ent_coef > 0);
            auto pg = ppo_policy_loss(logp, ro.old_logp.index_select(0, rows), ro.advantages.index_select(0, rows), msk,
                                      cfg.cliprange);
            loss = pg.loss;
            mm.add("policy/approxkl_avg", pg.approxkl.item<double>());
            mm.add("policy/clipfrac_avg", pg.clipfrac.item<double>());
            mm.add("loss/policy_avg", pg.loss.item<double>());
            mm.add("val/ratio", pg.ratio.item<double>());
            auto ent_mean = masked_mean(ent, msk);
            mm.add("policy/entropy_avg", ent_mean.item<double>());
            if (std::isnan(first_ratio)) first_ratio = pg.ratio.item<double>();
            if (cfg.ent_coef > 0) loss = loss - cfg.ent_coef * ent_mean;
            if (!ppo && cfg.kl_in == "loss") {
              auto kl_tok = kl_estimate(logp, ro.ref_logp.index_select(0, rows), KlEstimator::K3);
              loss = loss + beta * masked_mean(kl_tok, msk);
            }
            if (ppo) {
              torch::Tensor v = value ? value->head(response_hidden(*value, ro, rows)).select(-1, 0).to(torch::kFloat)
                                      : value_head(h).select(-1, 0).to(torch::kFloat);
              auto vl = ppo_value_loss(v, ro.values.index_select(0, rows), ro.returns.index_select(0, rows), msk,
                                       cfg.cliprange_value);
              loss = loss + cfg.vf_coef * vl.loss;
              mm.add("loss/value_avg", vl.loss.item<double>());
              mm.add("val/clipfrac_avg", vl.clipfrac.item<double>());
            }
            if (!ptx.empty()) {
              std::vector<const TokenizedExample*> pb;
              for (int64_t k = 0; k < cfg.ptx_batch; ++k) pb.push_back(&ptx[size_t((ptx_cursor++) % int64_t(ptx.size()))]);
              auto tl = sft_token_loss(*policy, collate(pb, pad, dev));
              auto ptx_loss = tl.nll_sum / double(std::max<int64_t>(1, tl.tokens));
              loss = loss + cfg.ptx_coef * ptx_loss;
              mm.add("loss/ptx_avg", ptx_loss.item<double>());
            }
          }
          (loss * (double(r.size()) / double(mini))).backward();
          trained_tokens += msk.sum().item<int64_t>();
        }
        double gnorm = grad_norm(param_tensors);
        Json mmean = mm.mean();
        if (!std::isfinite(gnorm) || !std::isfinite(mmean.value("loss/policy_avg", 0.0))) {
          bad = true;
          opt.zero_grad();
          break;
        }
        opt.step(lr, clip_scale(gnorm, cfg.max_grad_norm));
        for (auto iter = mmean.begin(); iter != mmean.end(); ++iter) m.add(iter.key(), iter.value().get<double>());
        m.add("grad_norm", gnorm);
        epoch_kl += mmean.value("policy/approxkl_avg", 0.0);
        ++epoch_mb;
      }
      if (cfg.max_approx_kl > 0 && epoch_mb > 0 && epoch_kl / double(epoch_mb) > cfg.max_approx_kl) stop_epochs = true;
    }
    double train_s = seconds_since(t_train);
    if (bad) {
      ++bad_streak;
      log_warn("iteration ", it + 1, ": NaN/Inf in the loss or gradients; update skipped (", bad_streak, " in a row)");
      if (bad_streak >= cfg.max_bad_steps) {
        auto lastck = ck.latest();
        RLHF_FAIL(cfg.algo, ": stopped after ", bad_streak, " consecutive iterations with NaN/Inf; ",
                  lastck ? "last good checkpoint: " + lastck->string() : std::string("no checkpoint was written"),
                  "; lower the learning rate");
      }
    } else {
      bad_streak = 0;
    }

    // ---- 5. KL controller, metrics, samples, checkpoints -----------------------------------------------
    double mean_kl = ro.kl.sum(1).mean().item<double>();
    if (cfg.adaptive_kl) klc.update(mean_kl, N);
    Json row = m.mean();
    row["objective/kl"] = mean_kl;
    row["objective/entropy"] = (-ro.old_logp * maskf).sum(1).mean().item<double>();
    row["objective/non_score_reward"] = non_score.sum(1).mean().item<double>();
    row["objective/scores"] = raw_scores.mean().item<double>();
    row["objective/rlhf_reward"] = raw_scores.mean().item<double>() + non_score.sum(1).mean().item<double>();
    row["objective/kl_coef"] = beta;
    row["val/num_eos_tokens"] = int64_t(std::count(ro.ended.begin(), ro.ended.end(), true));
    row["val/mean_response_length"] = lengths.to(torch::kFloat).mean().item<double>();
    row["val/first_ratio"] = first_ratio;
    row["learning_rate"] = lr;
    row["episode"] = (it + 1) * N;
    row["time/generate"] = gen_s;
    row["time/score"] = score_s;
    row["time/train"] = train_s;
    row["tokens_per_second/generate"] = double(ro.generated_tokens) / std::max(gen_s, 1e-9);
    row["tokens_per_second/score"] = double(ro.N * (ro.P + ro.R)) / std::max(score_s, 1e-9);
    row["tokens_per_second/train"] = double(trained_tokens) / std::max(train_s, 1e-9);
    if (bad) row["skipped"] = true;
    metrics.log(it + 1, row);
    if (cfg.sample_every > 0 && (it % cfg.sample_every == 0 || it + 1 == cfg.iterations)) {
      const fs::path samples = fs::path(cfg.out) / "samples.jsonl";
      std::FILE* f = std::fopen(samples.c_str(), it == 0 ? "wb" : "ab");
      RLHF_CHECK(f, samples.string(), ": cannot open for writing (", errno_text(errno), ")");
      bool ok = true;
      for (int64_t r = 0; r < std::min<int64_t>(ro.N, 4); ++r) {
        Json s = {{"iteration", it + 1}, {"prompt", texts_p[size_t(r)]}, {"response", texts_r[size_t(r)]},
                  {"score", raw_scores[r].item<double>()}};
        std::string line = s.dump() + "\n";
        ok = ok && std::fwrite(line.data(), 1, line.size(), f) == line.size();
      }
      int e = ok ? 0 : errno;
      if (std::fclose(f) != 0 && ok) ok = false, e = errno;
      RLHF_CHECK(ok, samples.string(), ": write failed (", errno_text(e), ")");
    }
    char extra[160];
    std::snprintf(extra, sizeof extra, "score %.3f kl %.3f", row["objective/scores"].get<double>(), mean_kl);
    bar.update(it + 1, extra);
    bool stop = stop_requested();
    bool last_it = it + 1 == cfg.iterations;
    if ((cfg.save_steps > 0 && ((it + 1) % cfg.save_steps == 0 || last_it)) || (last_it && cfg.save_final_state) || stop)
      save_checkpoint(it + 1);
    if (stop && !last_it) {
      bar.finish(extra);
      RLHF_FAIL(cfg.algo, ": interrupted at iteration ", it + 1, " of ", cfg.iterations,
                "; checkpoint saved, continue with --resume");
    }
  }
  bar.finish();
  RLHF_CHECK(bad_streak == 0, cfg.algo, ": the last ", bad_streak, " iteration(s) had NaN/Inf loss or gradients, so "
             "the policy was not saved; lower the learning rate (checkpoint: ",
             ck.latest() ? ck.latest()->string() : std::string("none"), ")");
  save_weights(cfg.out);
  tok->save(cfg.out);
  mark_training_finished(cfg.out, cfg.iterations);
  log_info(cfg.algo, ": wrote ", cfg.out);
}

}  // namespace rlhf
