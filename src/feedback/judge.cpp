#include "feedback/judge.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "data/prompts.h"
#include "generate/generator.h"
#include "model/lora.h"

namespace rlhf {

namespace {

double fb_log_sum_exp(const std::vector<double>& v) {
  double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

}  // namespace

JudgeModel load_judge(const std::string& dir, const std::string& tokenizer, const JudgeOptions& o) {
  JudgeModel m;
  m.dir = dir;
  m.model = load_model_or_adapter(dir);
  merge_lora(*m.model);
  RLHF_CHECK(m.model->config().head == Head::LM, dir, ": the judge must be a causal language model, not a reward/score model");
  m.tok = Tokenizer::load(tokenizer.empty() ? dir : tokenizer);
  if (o.chat) m.chat.emplace(ChatTemplate::for_tokenizer(*m.tok, o.chat_template));
  m.model->eval();
  return m;
}

std::string feedback_trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

GenerateParams feedback_generate_params(const JudgeModel& m, int64_t max_new_tokens, int64_t batch_rows,
                                        double temperature) {
  GenerateParams p;
  p.max_new_tokens = max_new_tokens;
  p.sampling.temperature = temperature;
  p.batch_rows = batch_rows;
  p.eos_ids = stop_token_ids(*m.tok, m.model->config());
  p.pad_id = m.tok->pad_id() >= 0 ? m.tok->pad_id() : 0;
  p.vocab_limit = m.tok->vocab_size();
  auto tok = m.tok;
  p.decode = [tok](const std::vector<int64_t>& v) { return tok->decode(v, /*skip_special_tokens=*/true); };
  p.share_prefix = true;  // few-shot turns and instructions are the same for every row
  return p;
}

// ---- option log-probs with a shared prefix ------------------------------------------------------------

std::vector<std::vector<double>> option_logprobs(TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const std::vector<std::vector<int64_t>>& options, int64_t batch_rows,
                                                 int64_t pad_id, JudgeStats* stats) {
  torch::NoGradGuard ng;
  model.eval();
  const int64_t N = int64_t(prompts.size()), K = int64_t(options.size());
  std::vector<std::vector<double>> out(size_t(N), std::vector<double>(size_t(K), 0.0));
  if (N == 0) return out;
  RLHF_CHECK(K >= 2, "a judge needs at least two options");
  bool single = true;
  int64_t max_opt = 0;
  for (auto& o : options) {
    RLHF_CHECK(!o.empty(), "an option of the judge tokenises to nothing; give it text");
    single = single && o.size() == 1;
    max_opt = std::max<int64_t>(max_opt, int64_t(o.size()));
  }
  // 1. the longest common prefix, leaving every prompt at least one token of its own
  size_t P = prompts[0].size(), min_len = prompts[0].size();
  for (auto& p : prompts) {
    RLHF_CHECK(!p.empty(), "a judge prompt tokenises to nothing");
    min_len = std::min(min_len, p.size());
    size_t k = 0;
    while (k < P && k < p.size() && p[k] == prompts[0][k]) ++k;
    P = k;
  }
  P = std::min(P, min_len - 1);
  int64_t max_suffix = 0;
  for (auto& p : prompts) max_suffix = std::max<int64_t>(max_suffix, int64_t(p.size() - P) + (single ? 0 : max_opt));
  const ModelConfig& cfg = model.config();
  RLHF_CHECK(int64_t(P) + max_suffix <= cfg.n_ctx, "a judge prompt with its option has ", int64_t(P) + max_suffix,
             " tokens, more than the judge's context of ", cfg.n_ctx, "; use shorter responses or fewer few-shot examples");
  const torch::Device dev = model.parameters().front().device();
  const auto opt_long = torch::TensorOptions().dtype(torch::kLong);
  auto dtype = model.parameters().front().scalar_type();
  // 2. prefill the prefix once
  KVCache base;
  base.init(cfg, 1, int64_t(P) + max_suffix, dtype, dev);
  if (P > 0) {
    auto ids = torch::tensor(std::vector<int64_t>(prompts[0].begin(), prompts[0].begin() + long(P)), opt_long).unsqueeze(0).to(dev);
    ForwardArgs a;
    a.cache = &base;
    model.hidden(ids, a);  // advances base.len to P
  }
  if (stats) stats->prefix_tokens += int64_t(P);
  // 3. work items: (prompt, option) rows, or one row per prompt when every option is one token
  struct Item {
    int64_t prompt, option;  // option -1: every (single-token) option read at the last position
  };
  std::vector<Item> items;
  for (int64_t i = 0; i < N; ++i) {
    if (single) items.push_back({i, -1});
    else
      for (int64_t k = 0; k < K; ++k) items.push_back({i, k});
  }
  // Longest rows together, so padding stays small.
  auto row_len = [&](const Item& it) {
    return int64_t(prompts[size_t(it.prompt)].size() - P) + (it.option >= 0 ? int64_t(options[size_t(it.option)].size()) : 0);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Item& x, const Item& y) { return row_len(x) > row_len(y); });
  std::vector<int64_t> single_ids;
  for (auto& o : options) single_ids.push_back(o[0]);
  for (size_t s = 0; s < items.size(); s += size_t(batch_rows)) {
    const size_t e = std::min(items.size(), s + size_t(batch_rows));
    const int64_t B = int64_t(e - s);
    int64_t T = 0;
    for (size_t q = s; q < e; ++q) T = std::max(T, row_len(items[q]));
    std::vector<int64_t> ids(size_t(B * T), pad_id), mask(size_t(B * T), 0);
    for (size_t q = s; q < e; ++q) {
      const auto& p = prompts[size_t(items[q].prompt)];
      std::vector<int64_t> row(p.begin() + long(P), p.end());
      if (items[q].option >= 0) row.insert(row.end(), options[size_t(items[q].option)].begin(), options[size_t(items[q].option)].end());
      for (size_t t = 0; t < row.size(); ++t) {
        ids[(q - s) * size_t(T) + t] = row[t];
        mask[(q - s) * size_t(T) + t] = 1;
      }
      if (stats) stats->suffix_tokens += int64_t(row.size());
    }
    KVCache cache = base;  // shares the prefix tensors until repeat_rows copies them
    if (B == 1) {
      for (auto& t : cache.k) t = t.clone();
      for (auto& t : cache.v) t = t.clone();
      cache.key_mask = cache.key_mask.clone();
    } else {
      cache.repeat_rows(B);
    }
    ForwardArgs a;
    a.cache = &cache;
    a.attention_mask = torch::tensor(mask, opt_long).view({B, T}).to(dev);
    a.position_ids = (torch::arange(int64_t(P), int64_t(P) + T, opt_long).unsqueeze(0).expand({B, T})).contiguous().to(dev);
    auto h = model.hidden(torch::tensor(ids, opt_long).view({B, T}).to(dev), a);  // (B, T, C)
    if (single) {
      std::vector<int64_t> last;
      for (size_t q = s; q < e; ++q) last.push_back(row_len(items[q]) - 1);
      auto idx = torch::tensor(last, opt_long).to(dev);
      auto hl = h.index({torch::arange(B, opt_long.device(dev)), idx});      // (B, C)
      auto lp = torch::log_softmax(model.lm_logits(hl).to(torch::kFloat), -1);  // (B, V)
      auto sel = lp.index_select(1, torch::tensor(single_ids, opt_long).to(dev)).to(torch::kCPU).contiguous();  // (B, K)
      auto acc = sel.accessor<float, 2>();
      for (size_t q = s; q < e; ++q)
        for (int64_t k = 0; k < K; ++k) out[size_t(items[q].prompt)][size_t(k)] = double(acc[int64_t(q - s)][k]);
    } else {
      for (size_t q = s; q < e; ++q) {
        const auto& opt = options[size_t(items[q].option)];
        const int64_t L = row_len(items[q]), n = int64_t(opt.size());
        // positions L-n-1 .. L-2 predict the option's tokens
        auto hs = h[int64_t(q - s)].narrow(0, L - n - 1, n);                   // (n, C)
        auto lp = torch::log_softmax(model.lm_logits(hs).to(torch::kFloat), -1);  // (n, V)
        auto tgt = torch::tensor(opt, opt_long).to(dev).unsqueeze(1);
        out[size_t(items[q].prompt)][size_t(items[q].option)] = lp.gather(1, tgt).sum().item<double>();
      }
    }
  }
  if (stats) stats->sequences += N;
  return out;
}

// ---- the judge --------------------------------------------------------------------------------------------

AiJudge::AiJudge(JudgeModel& m, const Constitution& c, const JudgeOptions& o) : m_(m), c_(c), o_(o) {
  RLHF_CHECK(o.principles >= 1, "--principles must be >= 1 (principles averaged per comparison)");
  RLHF_CHECK(o.batch_rows >= 1, "--batch-rows must be >= 1");
  RLHF_CHECK(o.cot_clamp >= 0 && o.cot_clamp < 0.5, "--cot-clamp must be in [0, 0.5)");
  if (o.principle_tag.empty()) {
    for (size_t i = 0; i < c.principles.size(); ++i) pool_.push_back(i);
  } else {
    pool_ = c.with_tag(o.principle_tag);
  }
  auto ids_of = [&](const std::vector<std::string>& opts, const char* what) {
    std::vector<std::vector<int64_t>> out;
    for (auto& s : opts) {
      auto v = m_.tok->encode(s, /*add_special_tokens=*/false);
      RLHF_CHECK(!v.empty(), c.source, ": judge.", what, " \"", s, "\" tokenises to nothing with ", m_.dir, "'s tokenizer");
      out.push_back(v);
    }
    for (size_t i = 0; i < out.size(); ++i)
      for (size_t j = 0; j < out.size(); ++j)
        RLHF_CHECK(i == j || out[i] != out[j], c.source, ": judge.", what, " \"", opts[i], "\" and \"", opts[j],
                   "\" tokenise to the same ids");
    return out;
  };
  option_ids_ = ids_of(c.judge.options, "options");
  score_ids_ = ids_of(c.judge.score_options, "score_options");
  size_t shots = o.few_shot < 0 ? c.comparison_examples.size() : std::min(size_t(o.few_shot), c.comparison_examples.size());
  for (size_t i = 0; i < shots; ++i) {
    auto& e = c.comparison_examples[i];
    std::string user = fill_template(c.judge.comparison_template,
                                     {{"prompt", e.prompt}, {"response_a", e.response_a}, {"response_b", e.response_b},
                                      {"question", e.question}});
    shots_.push_back({user, c.judge.answer_prefix + c.judge.options[size_t(e.answer)]});
  }
}

std::vector<int64_t> AiJudge::encode(const std::string& text) const {
  // A rendered chat holds its own special tokens; plain text gets the tokenizer's (BOS) as sampling does.
  return m_.tok->encode(text, /*add_special_tokens=*/!m_.chat.has_value());
}

std::string AiJudge::render(const std::vector<std::pair<std::string, std::string>>& shots, const std::string& user,
                          const std::string& answer_prefix) const {
  if (m_.chat) {
    std::vector<ChatMessage> msgs;
    if (!c_.judge.system.empty()) msgs.push_back({ChatRole::system, c_.judge.system});
    for (auto& [u, a] : shots) {
      msgs.push_back({ChatRole::user, u});
      msgs.push_back({ChatRole::assistant, feedback_trim(a)});
    }
    msgs.push_back({ChatRole::user, user});
    return m_.chat->render(msgs, /*add_generation_prompt=*/true, c_.source + ": judge prompt").text + answer_prefix;
  }
  std::string t = c_.judge.system.empty() ? "" : c_.judge.system + "\n\n";
  for (auto& [u, a] : shots) t += u + a + "\n\n";
  return t + user + answer_prefix;
}

std::string AiJudge::comparison_text(const Json& prompt, const std::string& a, const std::string& b, size_t principle) const {
  std::string user = fill_template(c_.judge.comparison_template, {{"prompt", prompt_user_text(prompt, "a judge prompt")},
                                                                   {"response_a", a},
                                                                   {"response_b", b},
                                                                   {"question", c_.principles[principle].comparison}});
  return render(shots_, user, o_.cot ? c_.judge.cot_prefix : c_.judge.answer_prefix);
}

std::string AiJudge::score_text(const Json& prompt, const std::string& response) const {
  std::string user = fill_template(c_.judge.score_template, {{"prompt", prompt_user_text(prompt, "a judge prompt")},
                                                              {"response", response},
                                                              {"question", c_.judge.score_question}});
  return render({}, user, c_.judge.score_answer_prefix);
}

std::vector<std::string> AiJudge::rationales(const std::vector<std::string>& texts) {
  std::vector<std::vector<int64_t>> ids;
  for (auto& t : texts) ids.push_back(encode(t));
  auto g = generate(*m_.model, ids, feedback_generate_params(m_, o_.cot_max_new_tokens, o_.batch_rows));
  std::vector<std::string> out;
  for (auto& r : g) out.push_back(r[0].text);
  return out;
}

std::vector<ComparisonResult> AiJudge::compare(const std::vector<Comparison>& items, JudgeStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  const size_t orders = o_.both_orders ? 2 : 1;
  std::vector<ComparisonResult> res(items.size());
  struct Row {
    size_t item, slot, order;
  };
  std::vector<Row> rows;
  std::vector<std::string> texts;
  for (size_t i = 0; i < items.size(); ++i) {
    auto ps = draw_principles(c_, pool_, size_t(o_.principles), o_.seed, i);
    for (size_t s = 0; s < ps.size(); ++s) {
      res[i].principles.push_back(c_.principles[ps[s]].name);
      for (size_t ord = 0; ord < orders; ++ord) {
        const auto& A = ord == 0 ? items[i].a : items[i].b;
        const auto& B = ord == 0 ? items[i].b : items[i].a;
        texts.push_back(comparison_text(items[i].prompt, A, B, ps[s]));
        rows.push_back({i, s, ord});
      }
    }
    res[i].p_ab.assign(ps.size(), 0.5);
    if (o_.both_orders) res[i].p_ba.assign(ps.size(), 0.5);
  }
  if (o_.cot) {
    auto why = rationales(texts);
    for (size_t r = 0; r < texts.size(); ++r) {
      texts[r] += why[r] + c_.judge.cot_answer;
      res[rows[r].item].rationales.push_back(why[r]);
    }
  }
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(texts.size());
  for (auto& t : texts) ids.push_back(encode(t));
  const int64_t pad = m_.tok->pad_id() >= 0 ? m_.tok->pad_id() : 0;
  auto lp = option_logprobs(*m_.model, ids, option_ids_, o_.batch_rows, pad, stats);
  for (size_t r = 0; r < rows.size(); ++r) {
    // P(option A) over the two options; the first response's probability in this order
    double pa = 1.0 / (1.0 + std::exp(lp[r][1] - lp[r][0]));
    if (o_.cot && o_.cot_clamp > 0) pa = std::clamp(pa, o_.cot_clamp, 1.0 - o_.cot_clamp);
    auto& R = res[rows[r].item];
    if (rows[r].order == 0) R.p_ab[rows[r].slot] = pa;
    else R.p_ba[rows[r].slot] = 1.0 - pa;
  }
  for (auto& R : res) {
    double sum = 0;
    int n = 0;
    for (size_t s = 0; s < R.p_ab.size(); ++s) {
      sum += R.p_ab[s];
      ++n;
      if (o_.both_orders) {
        sum += R.p_ba[s];
        ++n;
        if ((R.p_ab[s] > 0.5) != (R.p_ba[s] > 0.5)) R.consistent = false;
      }
    }
    R.p_first = n ? sum / n : 0.5;
  }
  if (stats) stats->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

std::vector<double> AiJudge::expected_scores(const std::vector<Json>& prompts, const std::vector<std::string>& responses,
                                           JudgeStats* stats) {
  RLHF_CHECK(prompts.size() == responses.size(), "expected_scores: ", prompts.size(), " prompts for ", responses.size(), " responses");
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int64_t>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) ids.push_back(encode(score_text(prompts[i], responses[i])));
  const int64_t pad = m_.tok->pad_id() >= 0 ? m_.tok->pad_id() : 0;
  auto lp = option_logprobs(*m_.model, ids, score_ids_, o_.batch_rows, pad, stats);
  std::vector<double> out;
  for (auto& row : lp) {
    double z = fb_log_sum_exp(row), e = 0;
    for (size_t k = 0; k < row.size(); ++k) e += std::exp(row[k] - z) * double(k + 1);
    out.push_back(e);
  }
  if (stats) stats->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<double> AiJudge::rewards(const std::vector<Json>& prompts, const std::vector<std::string>& responses,
                                   JudgeStats* stats) {
  auto e = expected_scores(prompts, responses, stats);
  const double n = double(score_ids_.size());
  for (auto& x : e) x = 2.0 * (x - 1.0) / (n - 1.0) - 1.0;
  return e;
}

std::vector<double> bradley_terry_fit(const std::vector<std::vector<double>>& p, double ridge) {
  const size_t K = p.size();
  std::vector<double> s(K, 0.0);
  if (K < 2) return s;
  // Gradient ascent with a step below 1 / (largest curvature): the log-likelihood's Hessian is bounded
  // by (K - 1) / 4 + ridge, so every step increases it.
  const double step = 1.0 / (0.25 * double(K - 1) + ridge);
  for (int it = 0; it < 5000; ++it) {
    std::vector<double> g(K, 0.0);
    for (size_t i = 0; i < K; ++i)
      for (size_t j = 0; j < K; ++j) {
        if (i == j || p[i][j] < 0) continue;
        double pij = p[i][j];
        double sig = 1.0 / (1.0 + std::exp(-(s[i] - s[j])));
        g[i] += pij - sig;  // d/ds_i of p log s(si - sj) + (1 - p) log s(sj - si)
        g[j] -= pij - sig;
      }
    double norm = 0;
    for (size_t i = 0; i < K; ++i) {
      g[i] -= ridge * s[i];
      norm += g[i] * g[i];
      s[i] += step * g[i];
    }
    if (norm < 1e-20) break;
  }
  double mean = 0;
  for (double x : s) mean += x / double(K);
  for (double& x : s) x -= mean;
  return s;
}

}  // namespace rlhf
