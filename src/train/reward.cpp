#include "train/reward.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "align/losses.h"
#include "core/error.h"
#include "core/lock.h"
#include "train/checkpoint.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/sft_data.h"
#include "io/jsonl.h"
#include "train/sft.h"

namespace rlhf {

torch::Tensor reward_positions(const torch::Tensor& ids, const torch::Tensor& attention_mask, int64_t pad_id) {
  auto last_real = attention_mask.sum(1) - 1;  // (B)
  if (pad_id < 0) return last_real;
  // Hugging Face's rule (transformers >= 4.48): the last token that is not pad_token_id. Unlike the
  // older "first pad - 1" it stays right when BOS or EOS share the pad id (GPT-2 style tokenizers).
  // Rows made only of pad tokens score their last real token.
  auto keep = (ids != pad_id).logical_and(attention_mask.to(torch::kBool));  // (B, T)
  auto idx = torch::arange(ids.size(1), ids.options().dtype(torch::kLong)).unsqueeze(0).expand_as(ids);
  auto last_non_pad = torch::where(keep, idx, torch::full_like(idx, -1)).amax(1);
  return torch::where(last_non_pad >= 0, last_non_pad, last_real);
}

torch::Tensor RewardModel::score(const Batch& b) {
  auto h = model->hidden(b.ids, batch_args(b));  // (B, T, C)
  auto pos = reward_positions(b.ids, b.attention_mask, pad_id);
  auto last = h.gather(1, pos.view({-1, 1, 1}).expand({-1, 1, h.size(2)})).squeeze(1);  // (B, C)
  return model->head(last).select(-1, 0).to(torch::kFloat) + bias;
}

RewardModel load_reward_model(const std::string& dir) {
  RewardModel rm;
  rm.model = load_model_or_adapter(dir, Head::Score);
  merge_lora(*rm.model);
  for (auto& p : rm.model->parameters()) p.set_requires_grad(false);
  rm.model->eval();
  const ModelConfig& c = rm.model->config();
  RLHF_CHECK(c.head == Head::Score, dir, ": is not a reward model (no score head)");
  rm.bias = c.raw.value("reward_bias", 0.0);
  rm.pad_id = c.pad_token_id;
  return rm;
}

Json reward_metrics(const std::vector<double>& r, const std::vector<std::pair<double, double>>& pairs) {
  Json j = Json::object();
  if (!r.empty()) {
    j["mean_reward"] = std::accumulate(r.begin(), r.end(), 0.0) / double(r.size());
    j["min_reward"] = *std::min_element(r.begin(), r.end());
    j["max_reward"] = *std::max_element(r.begin(), r.end());
  }
  if (!pairs.empty()) {
    double acc = 0, margin = 0;
    for (auto& [b, w] : pairs) {
      acc += b > w ? 1.0 : (b == w ? 0.5 : 0.0);
      margin += b - w;
    }
    j["accuracy"] = acc / double(pairs.size());
    j["margin"] = margin / double(pairs.size());
  }
  return j;
}

namespace {

// Per-record loss: mean over its pairs of the Bradley-Terry loss (+ centering).
}  // namespace

torch::Tensor reward_record_losses(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                                   const FlatResponses& f, const torch::Tensor& rewards, double center,
                                   std::vector<std::pair<double, double>>* pair_rewards) {
  FlatPairs fp = flatten_pairs(data, idx, f);
  auto dev = rewards.device();
  auto rb = rewards.index_select(0, torch::tensor(fp.better).to(dev));
  auto rw = rewards.index_select(0, torch::tensor(fp.worse).to(dev));
  auto loss = bradley_terry_loss(rb, rw, torch::tensor(fp.margin).to(dev), torch::tensor(fp.p_better).to(dev));
  if (center > 0) loss = loss + reward_centering(rb, rw, center);
  auto own = torch::tensor(fp.owner).to(dev);
  auto per_record = torch::zeros({int64_t(idx.size())}, loss.options()).index_add(0, own, loss);
  auto counts = pair_normalizers(data, idx, dev).to(loss.scalar_type());  // ties of identical responses count
  if (pair_rewards) {
    auto b = rb.detach().to(torch::kCPU).to(torch::kDouble), w = rw.detach().to(torch::kCPU).to(torch::kDouble);
    for (int64_t i = 0; i < b.numel(); ++i) pair_rewards->emplace_back(b[i].item<double>(), w[i].item<double>());
  }
  return per_record / counts;
}

namespace {

std::vector<double> to_vec(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The pad id the saved reward model and its tokenizer agree on. transformers reads a score model's
// output at the token before the first pad_token_id (before 4.48) or at the last token that is not
// the pad (4.48 on, and rlhf): the two agree, and a right-padded batch scores as rlhf does, only when
// the pad occurs in no sequence except as its trailing run (an EOS at the end). The tokenizer's pad
// (else EOS) is kept when it is such a token; otherwise a special token that no sequence contains
// (unk first) becomes the pad of both, said once. The demo's GPT-2 style vocabularies keep EOS.
int64_t choose_reward_pad(Tokenizer& tok, std::initializer_list<const std::vector<PreferenceExample>*> sets) {
  const int64_t V = tok.vocab_size();
  std::vector<uint8_t> inside(size_t(std::max<int64_t>(V, 0)), 0);  // occurs before a sequence's trailing run
  const int64_t p = tok.pad_id() >= 0 ? tok.pad_id() : tok.eos_id();
  for (auto* set : sets)
    for (auto& ex : *set)
      for (auto& r : ex.responses) {
        size_t end = r.ids.size();
        while (end > 0 && r.ids[end - 1] == p) --end;  // the trailing run of the current pad
        for (size_t i = 0; i < end; ++i)
          if (r.ids[i] >= 0 && r.ids[i] < V) inside[size_t(r.ids[i])] = 1;
      }
  if (p < 0 || !inside[size_t(p)]) return p;
  std::vector<int64_t> candidates;
  if (tok.unk_id() >= 0) candidates.push_back(tok.unk_id());
  for (int64_t id = 0; id < V; ++id)
    if (tok.is_special(id)) candidates.push_back(id);
  for (int64_t c : candidates) {
    if (c == p || c == tok.bos_id() || c == tok.eos_id() || inside[size_t(c)]) continue;
    log_info("reward model: padding with ", tok.id_to_token(c), " (id ", c, "), which no sequence contains: the tokenizer's ",
             tok.pad_id() >= 0 ? "pad " : "EOS (it has no pad) ", tok.id_to_token(p), " (id ", p,
             ") occurs inside them, where transformers before 4.48 would read the score; the saved config.json and "
             "tokenizer_config.json both name the new pad");
    tok.set_pad_token(tok.id_to_token(c));
    return c;
  }
  log_warn("reward model: the pad ", tok.id_to_token(p), " (id ", p, ") occurs inside the sequences and the tokenizer has no "
           "special token they lack; transformers before 4.48 would read the score at its first occurrence (4.48 on "
           "and rlhf read the last token that is not the pad)");
  return p;
}

}  // namespace

void run_reward(const RewardConfig& cfg) {
  RLHF_CHECK(!cfg.model.empty() && !cfg.data.empty(), "--model and --data are required");
  RLHF_CHECK(cfg.eval_split >= 0 && cfg.eval_split < 1, "--eval-split must be in [0, 1)");
  RLHF_CHECK(std::isfinite(cfg.center_rewards_coefficient) && cfg.center_rewards_coefficient >= 0,
             "--center-rewards-coefficient must be a finite number >= 0");
  validate_train_config(cfg.train);
  validate_preference_options(cfg.data_opts);
  if (cfg.use_lora) validate_lora_config(cfg.lora);
  parse_save_dtype(cfg.save_dtype);  // now, not after training
  DirLock out_lock(cfg.train.out);
  if (claim_training_output(cfg.train.out, "rm", cfg.resolved, cfg.train.resume, cfg.train.overwrite_output_dir,
                            cfg.train.resume_anyway))
    return;  // finished already
  auto tok = Tokenizer::load(cfg.tokenizer.empty() ? cfg.model : cfg.tokenizer);

  // 1. data
  PreferenceDataOptions dopt = cfg.data_opts;
  std::string cap_note;  // said with the data line below, so that a bad line stays the only output
  dopt.max_length = cap_to_context(dopt.max_length, config_of_model_or_adapter(cfg.model), &cap_note);
  PreferenceDataStats st;
  auto train = load_preference_data(cfg.data, *tok, dopt, &st);
  log_info("preference data ", cfg.data, ": ", st.describe(), cap_note.empty() ? "" : "; " + cap_note);
  std::vector<PreferenceExample> eval;
  if (!cfg.eval_data.empty()) {
    eval = load_preference_data(cfg.eval_data, *tok, dopt, &st);
    log_info("eval data ", cfg.eval_data, ": ", st.describe());
  } else if (cfg.eval_split > 0) {
    eval = split_off_eval(train, cfg.eval_split, cfg.train.seed);
  }
  // 2. the model (after the data, so bad data fails before any heavy work)
  RewardModel rm;
  rm.model = load_model_or_adapter(cfg.model, Head::Score, cfg.train.seed);  // an SFT adapter: merged into its base
  merge_lora(*rm.model);
  RLHF_CHECK(tok->vocab_size() <= rm.model->config().vocab_size, "the tokenizer has ", tok->vocab_size(),
             " tokens but the model only ", rm.model->config().vocab_size, "; pass the matching --tokenizer");
  rm.pad_id = choose_reward_pad(*tok, {&train, &eval});
  rm.model->mutable_config().pad_token_id = rm.pad_id;
  rm.model->set_dropout(0);
  const auto train_off = response_offsets(train);
  std::optional<LoraConfig> lora;
  if (cfg.use_lora) {
    LoraConfig lc = cfg.lora;
    lc.base_model = cfg.model;
    attach_lora(*rm.model, lc, cfg.train.seed);
    lora = lc;
  }
  const int64_t pad = rm.pad_id >= 0 ? rm.pad_id : 0;
  const torch::Device dev = device();

  // 3. the loop: one forward per response, pairs averaged per prompt
  TrainHooks hooks;
  hooks.weight = [](int64_t) { return 1.0; };
  hooks.micro_step = [&](const std::vector<int64_t>& idx, double denom, StepMetrics& m) {
    FlatResponses f = flatten_responses(train, train_off, idx);
    Batch b = collate(f.seqs, pad, dev);
    std::vector<std::pair<double, double>> pr;
    torch::Tensor loss, rewards;
    {
      ComputeScope cs;
      rewards = rm.score(b);
      loss = reward_record_losses(train, idx, f, rewards, cfg.center_rewards_coefficient, &pr);
    }
    (loss.sum() / denom).backward();
    m.add("loss", loss.sum().item<double>(), double(idx.size()));
    Json rmm = reward_metrics(to_vec(rewards), pr);
    m.add("accuracy", rmm["accuracy"].get<double>() * double(pr.size()), double(pr.size()));
    m.add("margin", rmm["margin"].get<double>() * double(pr.size()), double(pr.size()));
    m.add("mean_reward", rmm["mean_reward"].get<double>() * double(rewards.numel()), double(rewards.numel()));
    m.add("num_tokens", double(b.tokens), 1);
  };
  auto evaluate_on = [&](const std::vector<PreferenceExample>& data) {
    std::vector<double> all;
    std::vector<std::pair<double, double>> pairs;
    double loss = 0;
    const int64_t mb = cfg.train.micro_batch_size > 0 ? cfg.train.micro_batch_size : cfg.train.batch_size;
    for (size_t i = 0; i < data.size(); i += size_t(mb)) {
      std::vector<int64_t> idx;
      for (size_t k = i; k < std::min(data.size(), i + size_t(mb)); ++k) idx.push_back(int64_t(k));
      FlatResponses f = flatten_responses(data, response_offsets(data), idx);
      ComputeScope cs;
      auto r = rm.score(collate(f.seqs, pad, dev));
      loss += reward_record_losses(data, idx, f, r, cfg.center_rewards_coefficient, &pairs).sum().item<double>();
      auto v = to_vec(r);
      all.insert(all.end(), v.begin(), v.end());
    }
    Json j = reward_metrics(all, pairs);
    j["loss"] = loss / double(data.size());
    return j;
  };
  if (!eval.empty()) hooks.evaluate = [&] { return evaluate_on(eval); };
  hooks.save_output = [&](const std::filesystem::path& dir) {
    rm.model->eval();
    if (!cfg.normalize_on.empty()) {
      // InstructGPT: shift rewards so the reference responses score 0 on average.
      SftDataOptions so;
      so.add_eos = dopt.add_eos;
      so.max_length = dopt.max_length;
      so.chat_template = dopt.chat_template;
      auto ref = load_sft_data(cfg.normalize_on, *tok, so);
      double sum = 0;
      torch::NoGradGuard ng;
      for (size_t i = 0; i < ref.size(); i += 16) {
        std::vector<const TokenizedExample*> seqs;
        for (size_t k = i; k < std::min(ref.size(), i + 16); ++k) seqs.push_back(&ref[k]);
        ComputeScope cs;
        sum += (rm.score(collate(seqs, pad, dev)) - rm.bias).sum().item<double>();
      }
      rm.bias = -sum / double(ref.size());
      log_info("reward bias ", rm.bias, ": the ", ref.size(), " responses of ", cfg.normalize_on, " now score 0 on average");
    }
    rm.model->mutable_config().raw["reward_bias"] = rm.bias;
    if (lora) save_lora(*rm.model, *lora, dir);
    else save_model(*rm.model, dir, parse_save_dtype(cfg.save_dtype));
    if (lora) {  // the adapter directory also records the score model's config
      write_json_atomic(dir / "config.json", rm.model->config().to_json());
    }
    tok->save(dir);
    if (!eval.empty()) {
      Json ev = evaluate_on(eval);
      log_info("held-out: accuracy ", ev["accuracy"].get<double>(), ", margin ", ev["margin"].get<double>(), ", mean reward ",
               ev["mean_reward"].get<double>());
    }
  };
  Json resolved = cfg.resolved;
  resolved["_runtime"] = {{"threads", runtime().threads}, {"dtype", runtime().dtype}, {"device", runtime().device}};
  run_training(cfg.train, *rm.model, lora, int64_t(train.size()), hooks, "rm", resolved);
}

std::vector<std::vector<double>> score_records(RewardModel& rm, const Tokenizer& tok, const std::vector<JsonlRecord>& records,
                                               int64_t max_length, const std::string& chat_template) {
  PreferenceDataOptions po;
  po.add_eos = false;
  po.max_length = cap_to_context(max_length, rm.model->config());
  po.chat_template = chat_template;
  po.allow_unpaired = true;
  po.allow_unranked = true;
  PreferenceParser parser(tok, po);
  const int64_t pad = rm.pad_id >= 0 ? rm.pad_id : 0;
  std::vector<std::vector<double>> out;
  torch::NoGradGuard ng;
  for (auto& r : records) {
    // Any record with responses is scored: a single completion reads as an unpaired record.
    Json j = r.value;
    if (j.contains("response") && !j.contains("completion")) j["completion"] = j["response"];
    if (j.contains("completion") && !j.contains("label")) j["label"] = true;
    PreferenceExample ex = parser.parse(j, r.where());
    std::vector<const TokenizedExample*> seqs;
    for (auto& resp : ex.responses) {
      RLHF_CHECK(resp.loss_tokens() > 0, r.where(), ": a response has no tokens left within --max-length ", max_length);
      seqs.push_back(&resp);
    }
    ComputeScope cs;
    auto t = rm.score(collate(seqs, pad, device())).to(torch::kCPU).to(torch::kDouble).contiguous();
    out.emplace_back(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }
  return out;
}

}  // namespace rlhf
