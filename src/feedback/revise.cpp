#include "feedback/revise.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "generate/generator.h"

namespace rlhf {


Json RevisionTranscript::to_json() const {
  Json rs = Json::array();
  for (auto& r : rounds)
    rs.push_back({{"principle", r.principle}, {"critique_request", r.critique_request}, {"critique", r.critique},
                  {"revision_request", r.revision_request}, {"revision", r.revision}});
  return {{"prompt", prompt}, {"original", original}, {"rounds", rs},
          {"final", final_answer}};
}

std::vector<ChatMessage> revision_messages(const Constitution& c, const Json& prompt, const std::string& answer,
                                           size_t principle, const std::string* critique, int64_t few_shot) {
  std::vector<ChatMessage> m;
  size_t shots = few_shot < 0 ? c.critique_examples.size() : std::min(size_t(few_shot), c.critique_examples.size());
  for (size_t i = 0; i < shots; ++i) {
    auto& e = c.critique_examples[i];
    m.push_back({ChatRole::user, e.prompt});
    m.push_back({ChatRole::assistant, e.response});
    m.push_back({ChatRole::user, e.critique_request});
    m.push_back({ChatRole::assistant, e.critique});
    m.push_back({ChatRole::user, e.revision_request});
    m.push_back({ChatRole::assistant, e.revision});
  }
  if (prompt.is_string()) m.push_back({ChatRole::user, prompt.get<std::string>()});
  else
    for (auto& x : parse_chat_messages(prompt, "prompt")) m.push_back(x);
  m.push_back({ChatRole::assistant, answer});
  const Principle& p = c.principles[principle];
  m.push_back({ChatRole::user, p.critique_request});
  if (critique) {
    m.push_back({ChatRole::assistant, *critique});
    m.push_back({ChatRole::user, p.revision_request});
  }
  return m;
}

std::vector<RevisionTranscript> cai_revise(JudgeModel& m, const Constitution& c, const std::vector<Json>& records,
                                           const ReviseOptions& o, ReviseStats* stats) {
  RLHF_CHECK(m.chat.has_value(), "cai revise needs the model's chat template (critiques and revisions are chat turns)");
  RLHF_CHECK(o.rounds >= 1, "--rounds must be >= 1");
  RLHF_CHECK(o.max_new_tokens >= 1, "--max-new-tokens must be >= 1");
  auto t0 = std::chrono::steady_clock::now();
  std::vector<size_t> pool;
  if (o.principle_tag.empty())
    for (size_t i = 0; i < c.principles.size(); ++i) pool.push_back(i);
  else
    pool = c.with_tag(o.principle_tag);
  GenerateParams gp = feedback_generate_params(m, o.max_new_tokens, o.batch_rows, o.temperature);
  int64_t step = 0;
  auto run = [&](const std::vector<std::vector<ChatMessage>>& convs, const char* what) {
    std::vector<std::vector<int64_t>> ids;
    for (size_t i = 0; i < convs.size(); ++i) {
      auto r = m.chat->render(convs[i], /*add_generation_prompt=*/true, "prompt " + std::to_string(i + 1));
      ids.push_back(tokenize_chat(*m.tok, r).ids);
      RLHF_CHECK(int64_t(ids.back().size()) + o.max_new_tokens <= m.model->config().n_ctx, "cai revise: the ", what,
                 " prompt of prompt ", i + 1, " has ", ids.back().size(), " tokens; with --max-new-tokens ", o.max_new_tokens,
                 " it exceeds the model's context of ", m.model->config().n_ctx,
                 " (use fewer --few-shot examples, fewer new tokens, or shorter prompts)");
    }
    gp.seed = derive_seed(o.seed, uint64_t(++step));
    if (o.progress) log_info("cai revise: ", what, " for ", convs.size(), " prompts");
    GenerateStats gs;
    auto g = generate(*m.model, ids, gp, &gs);
    if (stats) {
      stats->generated_tokens += gs.generated_tokens;
      stats->sequences += int64_t(convs.size());
    }
    std::vector<std::string> out;
    for (auto& r : g) out.push_back(feedback_trim(r[0].text));
    return out;
  };
  std::vector<RevisionTranscript> ts(records.size());
  std::vector<std::vector<ChatMessage>> convs;
  for (size_t i = 0; i < records.size(); ++i) {
    ts[i].record = records[i];
    ts[i].prompt = records[i].at("prompt");
    std::vector<ChatMessage> msgs;
    if (ts[i].prompt.is_string()) msgs.push_back({ChatRole::user, ts[i].prompt.get<std::string>()});
    else msgs = parse_chat_messages(ts[i].prompt, "prompt " + std::to_string(i + 1));
    convs.push_back(msgs);
  }
  // 1. the first answers
  auto answers = run(convs, "answers");
  for (size_t i = 0; i < ts.size(); ++i) ts[i].original = answers[i];
  std::vector<std::string> current = answers;
  for (int64_t r = 0; r < o.rounds; ++r) {
    // 2. a principle per prompt and round, and the critique
    std::vector<size_t> pr(ts.size());
    convs.clear();
    for (size_t i = 0; i < ts.size(); ++i) {
      pr[i] = draw_principles(c, pool, 1, o.seed, uint64_t(i) * 1000003ull + uint64_t(r))[0];
      convs.push_back(revision_messages(c, ts[i].prompt, current[i], pr[i], nullptr, o.few_shot));
    }
    auto crit = run(convs, "critiques");
    // 3. the revision
    convs.clear();
    for (size_t i = 0; i < ts.size(); ++i)
      convs.push_back(revision_messages(c, ts[i].prompt, current[i], pr[i], &crit[i], o.few_shot));
    auto rev = run(convs, "revisions");
    for (size_t i = 0; i < ts.size(); ++i) {
      const Principle& p = c.principles[pr[i]];
      ts[i].rounds.push_back({p.name, p.critique_request, crit[i], p.revision_request, rev[i]});
      if (!rev[i].empty()) current[i] = rev[i];  // an empty revision keeps the answer it revised
    }
  }
  for (size_t i = 0; i < ts.size(); ++i) ts[i].final_answer = current[i];
  if (stats) stats->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ts;
}

}  // namespace rlhf
