// `rlhf judge` (RL-CAI / RLAIF preference labels from a judge model's option log-probabilities) and
// `rlhf cai revise` (SL-CAI: critique -> revision data). See src/feedback/.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/prompts.h"
#include "feedback/judge.h"
#include "feedback/revise.h"
#include "io/jsonl.h"

namespace rlhf::cli {

namespace {

struct JudgeCli {
  std::string model, tokenizer, constitution, pairs, samples, out, stats, format = "ranking", few_shot_file;
  JudgeOptions o;
  bool one_order = false, no_chat = false, prompts_as_chat = false;
  double label_temperature = 1.0;
};

// `c` with its few-shot examples of kind `key` ("comparison_examples" | "critique_examples") replaced by
// those of a JSONL file, checked as the constitution's own are.
Constitution with_examples_from(const Constitution& c, const char* key, const std::string& path) {
  Json arr = Json::array();
  for (auto& r : read_jsonl(path)) arr.push_back(r.value);
  RLHF_CHECK(!arr.empty(), path, ": no few-shot examples in the file");
  Json j = c.to_json();
  j[key] = arr;
  Constitution out = parse_constitution(j, path);
  out.source = c.source;
  return out;
}

// A response field: text, or (TRL's conversational form) a list of messages whose last assistant turn
// is the response.
std::string fb_text_of(const Json& j, const char* key, const JsonlRecord& r) {
  RLHF_CHECK(j.contains(key), r.where(), ": missing \"", key, "\"");
  const Json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array())
    for (auto it = v.rbegin(); it != v.rend(); ++it)
      if (it->is_object() && it->value("role", "") == "assistant" && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
  RLHF_FAIL(r.where(), ": \"", key, "\" must be a string or a list of messages ending in an assistant turn");
}

// The record as written out: without the sampler's token-level fields; with `as_chat` a text prompt becomes
// the user turn it was sampled as (rlhf generate --chat), so that rm and dpo render it with the template.
Json fb_slim(const Json& rec, bool as_chat = false) {
  Json out = rec;
  if (as_chat && out.contains("prompt") && out["prompt"].is_string())
    out["prompt"] = Json::array({{{"role", "user"}, {"content", out["prompt"]}}});
  for (const char* k : {"logprobs", "model_logprobs", "response_ids", "prompt_ids", "finish_reasons", "finished"}) out.erase(k);
  return out;
}

void run_judge(JudgeCli& a, const Json& resolved) {
  RLHF_CHECK(a.pairs.empty() != a.samples.empty(), "give exactly one of --pairs IN.jsonl or --samples S.jsonl");
  RLHF_CHECK(a.format == "ranking" || a.format == "pairs", "--format must be ranking or pairs");
  a.o.both_orders = !a.one_order;
  a.o.chat = !a.no_chat;
  Constitution c = load_constitution(a.constitution);
  if (!a.few_shot_file.empty()) c = with_examples_from(c, "comparison_examples", a.few_shot_file);
  const std::string in = a.pairs.empty() ? a.samples : a.pairs;
  auto recs = read_jsonl(in);
  RLHF_CHECK(!recs.empty(), in, ": the file holds no records; give ", a.pairs.empty() ? "samples" : "pairs", " to judge");
  // 1. what to compare
  struct Job {
    size_t rec;
    int i, j;
  };
  std::vector<Comparison> items;
  std::vector<Job> jobs;
  std::vector<std::vector<std::string>> responses(recs.size());
  std::vector<int> labelled(recs.size(), -1);  // pairs: 1 when the input says which is chosen
  for (size_t r = 0; r < recs.size(); ++r) {
    const Json& j = recs[r].value;
    RLHF_CHECK(j.is_object() && j.contains("prompt"), recs[r].where(), ": a record needs \"prompt\"");
    if (!a.pairs.empty()) {
      if (j.contains("chosen")) {
        responses[r] = {fb_text_of(j, "chosen", recs[r]), fb_text_of(j, "rejected", recs[r])};
        labelled[r] = 1;
      } else if (j.contains("response_a")) {
        responses[r] = {fb_text_of(j, "response_a", recs[r]), fb_text_of(j, "response_b", recs[r])};
      } else {
        responses[r] = sample_responses(recs[r]);
        RLHF_CHECK(responses[r].size() == 2, recs[r].where(), ": --pairs records hold two responses (\"chosen\"/\"rejected\", "
                   "\"response_a\"/\"response_b\" or \"responses\": [a, b]); use --samples for ", responses[r].size());
      }
    } else {
      responses[r] = sample_responses(recs[r]);
      RLHF_CHECK(responses[r].size() >= 2, recs[r].where(), ": a samples record needs at least two responses to compare");
    }
    prompt_user_text(j["prompt"], recs[r].where());  // a prompt the judge can read, checked before any work
    for (int x = 0; x < int(responses[r].size()); ++x)
      for (int y = x + 1; y < int(responses[r].size()); ++y) {
        if (responses[r][size_t(x)] == responses[r][size_t(y)]) continue;  // identical: a tie, nothing to ask
        items.push_back({j["prompt"], responses[r][size_t(x)], responses[r][size_t(y)]});
        jobs.push_back({r, x, y});
      }
  }
  remove_stale_temporaries_of(a.out);
  JsonlWriter w(a.out);  // fails now, not after judging, when --out cannot be written
  // 2. judge
  JudgeModel m = load_judge(a.model, a.tokenizer, a.o);
  AiJudge judge(m, c, a.o);
  log_info("judging ", items.size(), " comparison(s) of ", recs.size(), " record(s) with ", a.model, " (",
           a.o.both_orders ? "both orders" : "one order", ", ", a.o.principles, " principle(s) each", a.o.cot ? ", chain of thought" : "", ")");
  JudgeStats st;
  auto res = judge.compare(items, &st);
  // Temperature scaling of the labels: the logit of each averaged probability divided by T (below 1
  // sharpens an under-confident judge; p_ab and p_ba stay as measured).
  RLHF_CHECK(a.label_temperature > 0, "--label-temperature must be > 0");
  if (a.label_temperature != 1.0)
    for (auto& R : res) {
      double q = std::clamp(R.p_first, 1e-12, 1 - 1e-12);
      R.p_first = 1.0 / (1.0 + std::exp(-std::log(q / (1 - q)) / a.label_temperature));
    }
  // 3. write
  std::map<std::pair<size_t, std::pair<int, int>>, size_t> at;
  for (size_t k = 0; k < jobs.size(); ++k) at[{jobs[k].rec, {jobs[k].i, jobs[k].j}}] = k;
  int64_t consistent = 0, n_labelled = 0, ties = 0, undecided = 0;
  double agree = 0;  // a comparison the judge leaves at exactly 0.5 counts half
  double confidence = 0;
  for (auto& R : res) {
    consistent += R.consistent;
    confidence += std::fabs(R.p_first - 0.5) * 2;
  }
  auto judge_json = [&](const ComparisonResult& R) {
    Json j = {{"p_first", R.p_first}, {"p_ab", R.p_ab}, {"principles", R.principles}, {"consistent", R.consistent}};
    if (!R.p_ba.empty()) j["p_ba"] = R.p_ba;
    if (!R.rationales.empty()) j["rationales"] = R.rationales;
    return j;
  };
  for (size_t r = 0; r < recs.size(); ++r) {
    const Json& j = recs[r].value;
    const auto& resp = responses[r];
    const int K = int(resp.size());
    if (!a.pairs.empty() || a.format == "pairs") {
      for (int x = 0; x < K; ++x)
        for (int y = x + 1; y < K; ++y) {
          auto it = at.find({r, {x, y}});
          if (it == at.end()) {
            ++ties;
            continue;
          }
          const auto& R = res[it->second];
          // Exactly 0.5 (e.g. the same option in both orders under --cot's clamp): no preference. It is
          // written with "tie": true and counts half towards the accuracy.
          const bool tie = std::fabs(R.p_first - 0.5) < 1e-12;
          bool first = R.p_first > 0.5 || tie;
          undecided += tie;
          Json line = fb_slim(j, a.prompts_as_chat);
          for (const char* k : {"responses", "response_a", "response_b"}) line.erase(k);
          line["chosen"] = resp[size_t(first ? x : y)];
          line["rejected"] = resp[size_t(first ? y : x)];
          line["p_chosen"] = first ? R.p_first : 1.0 - R.p_first;
          line["judge"] = judge_json(R);
          line["source"] = "ai";
          if (tie) line["tie"] = true;
          if (labelled[r] == 1) {
            line["agrees_with_input"] = tie ? Json(nullptr) : Json(first);
            agree += tie ? 0.5 : double(first);
            ++n_labelled;
          }
          w.write(line);
        }
    } else {
      std::vector<std::vector<double>> p(static_cast<size_t>(K), std::vector<double>(static_cast<size_t>(K), -1.0));
      Json comps = Json::array(), cons = Json::array();
      for (int x = 0; x < K; ++x)
        for (int y = x + 1; y < K; ++y) {
          auto it = at.find({r, {x, y}});
          p[size_t(x)][size_t(y)] = it == at.end() ? 0.5 : res[it->second].p_first;
          if (it != at.end()) {
            comps.push_back(Json::array({x, y, res[it->second].p_first}));
            cons.push_back(res[it->second].consistent);
          } else {
            ++ties;
          }
        }
      auto s = bradley_terry_fit(p);
      // Best first; identical responses sit together (they have the same strength), and the readers of
      // rankings count identical responses as tied, so the list stays flat.
      std::vector<int> order(static_cast<size_t>(K));
      for (int x = 0; x < K; ++x) order[size_t(x)] = x;
      std::stable_sort(order.begin(), order.end(), [&](int u, int v) { return s[size_t(u)] > s[size_t(v)]; });
      Json ranking = Json::array();
      std::vector<bool> used(static_cast<size_t>(K), false);
      for (int u : order) {
        if (used[size_t(u)]) continue;
        for (int v : order)
          if (!used[size_t(v)] && resp[size_t(v)] == resp[size_t(u)]) {
            ranking.push_back(v);
            used[size_t(v)] = true;
          }
      }
      Json line = fb_slim(j, a.prompts_as_chat);
      line["responses"] = resp;  // as compared: trimmed of the space after the assistant header
      line["ranking"] = ranking;
      line["ai_scores"] = s;
      // The soft labels themselves: rm and dpo train on these pairs (P(i better than j)) rather than on
      // the ranking, which is for reading and for the agreement figures.
      if (!comps.empty()) {
        line["comparisons"] = comps;
        line["ai_consistent"] = cons;
      }
      line["source"] = "ai";
      w.write(line);
    }
  }
  w.commit();
  const double n = double(std::max<size_t>(1, res.size()));
  Json summary = {{"judge", a.model},
                  {"constitution", c.name},
                  {"records", recs.size()},
                  {"comparisons", res.size()},
                  {"identical_pairs", ties},
                  {"undecided", undecided},
                  {"sequences", st.sequences},
                  {"both_orders", a.o.both_orders},
                  {"position_consistency", a.o.both_orders ? Json(double(consistent) / n) : Json(nullptr)},
                  {"mean_confidence", confidence / n},
                  {"prefix_tokens", st.prefix_tokens},
                  {"suffix_tokens", st.suffix_tokens},
                  {"seconds", st.seconds},
                  {"comparisons_per_second", double(res.size()) / std::max(st.seconds, 1e-9)},
                  {"options", resolved}};
  if (n_labelled > 0) summary["accuracy_vs_input"] = agree / double(n_labelled);  // undecided count half
  const std::string stats_path = a.stats.empty() ? a.out + ".stats.json" : a.stats;
  write_json_atomic(stats_path, summary);
  std::printf("judged %zu comparisons in %.2f s (%.1f/s)", res.size(), st.seconds, double(res.size()) / std::max(st.seconds, 1e-9));
  if (a.o.both_orders) std::printf("; position consistency %.1f%%", 100.0 * double(consistent) / n);
  if (n_labelled > 0) std::printf("; agrees with the input's chosen on %.1f%% (%lld pairs)", 100.0 * agree / double(n_labelled), (long long)n_labelled);
  if (undecided > 0) std::printf("; %lld undecided (exactly 0.5, counted half)", (long long)undecided);
  std::printf("\nwrote %s and %s\n", a.out.c_str(), stats_path.c_str());
}

struct ReviseCli {
  std::string model, tokenizer, constitution, prompts, out, chat_template, few_shot_file;
  ReviseOptions o;
  bool keep_all = false;
  int64_t max_prompts = 0;
};

void run_revise(ReviseCli& a, const Json& resolved) {
  Constitution c = load_constitution(a.constitution);
  if (!a.few_shot_file.empty()) c = with_examples_from(c, "critique_examples", a.few_shot_file);
  auto recs = read_jsonl(a.prompts);
  RLHF_CHECK(!recs.empty(), a.prompts, ": no prompts in the file");
  std::vector<Json> prompts;
  for (auto& r : recs) {
    RLHF_CHECK(r.value.is_object() && r.value.contains("prompt") && (r.value["prompt"].is_string() || r.value["prompt"].is_array()),
               r.where(), ": a prompt record needs \"prompt\": text or a list of messages");
    prompts.push_back(r.value);
    if (a.max_prompts > 0 && int64_t(prompts.size()) >= a.max_prompts) break;
  }
  ensure_directory(a.out);
  JudgeOptions jo;
  jo.chat = true;
  jo.chat_template = a.chat_template;
  JudgeModel m = load_judge(a.model, a.tokenizer, jo);
  a.o.progress = true;
  ReviseStats st;
  auto ts = cai_revise(m, c, prompts, a.o, &st);
  namespace fs = std::filesystem;
  JsonlWriter sft(fs::path(a.out) / "sft.jsonl"), pairs(fs::path(a.out) / "pairs.jsonl"),
      tr(fs::path(a.out) / "transcripts.jsonl");
  int64_t changed = 0, n_sft = 0;
  for (auto& t : ts) {
    Json msgs = t.prompt.is_string() ? Json::array({{{"role", "user"}, {"content", t.prompt}}}) : t.prompt;
    auto sft_line = [&](const std::string& answer) {
      Json m2 = msgs;
      m2.push_back({{"role", "assistant"}, {"content", answer}});
      sft.write({{"messages", m2}, {"source", "sl-cai"}});
      ++n_sft;
    };
    if (a.keep_all) {
      for (auto& r : t.rounds)
        if (!r.revision.empty()) sft_line(r.revision);
    } else {
      sft_line(t.final_answer);
    }
    if (t.final_answer != t.original) {
      pairs.write({{"prompt", t.prompt}, {"chosen", t.final_answer}, {"rejected", t.original}, {"source", "sl-cai"}});
      ++changed;
    }
    Json line = t.to_json();
    for (auto& [k, v] : t.record.items())
      if (!line.contains(k)) line[k] = v;
    tr.write(line);
  }
  sft.commit();
  pairs.commit();
  tr.commit();
  Json summary = {{"prompts", ts.size()},     {"rounds", a.o.rounds},       {"revised", changed},
                  {"sft_examples", n_sft},     {"generated_tokens", st.generated_tokens},
                  {"sequences", st.sequences}, {"seconds", st.seconds},
                  {"revisions_per_second", double(ts.size() * size_t(a.o.rounds)) / std::max(st.seconds, 1e-9)},
                  {"options", resolved}};
  write_json_atomic(fs::path(a.out) / "summary.json", summary);
  std::printf("revised %zu prompts x %lld rounds in %.2f s (%.2f revisions/s); %lld final answers differ from the first; wrote %s/{sft,pairs,transcripts}.jsonl\n",
              ts.size(), (long long)a.o.rounds, st.seconds, double(ts.size() * size_t(a.o.rounds)) / std::max(st.seconds, 1e-9),
              (long long)changed, a.out.c_str());
}

}  // namespace

Command add_judge(CLI::App& root) {
  auto a = std::make_shared<JudgeCli>();
  auto* app = root.add_subcommand(
      "judge", "AI preference labels (RL-CAI / RLAIF): a judge model answers a constitution's multiple-choice question "
               "for each pair of responses; the option probabilities, averaged over both orders, are soft labels (p_chosen)");
  add_config_option(app);
  app->add_option("--model", a->model, "judge model (Hugging Face directory or adapter)")->required();
  app->add_option("--tokenizer", a->tokenizer, "judge tokenizer (default: the model's)");
  app->add_option("--constitution", a->constitution, "constitution JSON (examples/constitutions/default.json)")->required();
  auto* p = app->add_option("--pairs", a->pairs, "JSONL of pairs: {\"prompt\", \"chosen\", \"rejected\"} (accuracy against "
                                                 "them is reported), {\"prompt\", \"response_a\", \"response_b\"} or \"responses\": [a, b]");
  auto* s = app->add_option("--samples", a->samples, "JSONL of K responses per prompt (rlhf generate --n K): every pair is judged");
  p->excludes(s);
  app->add_option("--out", a->out, "output JSONL")->required();
  app->add_option("--stats", a->stats, "summary JSON (default: OUT.stats.json): position consistency, accuracy, speed");
  app->add_option("--format", a->format, "with --samples: ranking (one record per prompt: the soft labels as "
                                         "\"comparisons\": [[i, j, p]] and a Bradley-Terry ranking) | pairs (every pair "
                                         "with p_chosen)")->capture_default_str();
  app->add_option("--principles", a->o.principles, "principles per comparison, drawn by weight; > 1 averages an ensemble")
      ->capture_default_str();
  app->add_option("--principle", a->o.principle_tag, "draw only principles with this tag or name (e.g. harmless)");
  app->add_flag("--one-order", a->one_order, "score only the given order (default: both orders, averaged)");
  app->add_option("--few-shot", a->few_shot_file, "JSONL of comparison examples replacing the constitution's");
  app->add_option("--few-shot-count", a->o.few_shot, "comparison examples put before each question (-1 = all)")->capture_default_str();
  app->add_flag("--cot", a->o.cot, "chain of thought: a greedy rationale after judge.cot_prefix, then the options");
  app->add_option("--cot-max-new-tokens", a->o.cot_max_new_tokens, "rationale length limit")->capture_default_str();
  app->add_option("--cot-clamp", a->o.cot_clamp, "with --cot, clamp each order's probability to [x, 1 - x] (0 = off)")
      ->capture_default_str();
  app->add_option("--batch-rows", a->o.batch_rows, "sequences per forward pass")->capture_default_str();
  app->add_option("--label-temperature", a->label_temperature,
                  "temperature scaling of the written labels: logit(p) / T (below 1 sharpens an under-confident "
                  "judge; p_ab / p_ba stay as measured)")
      ->capture_default_str();
  app->add_option("--seed", a->o.seed, "seed of the principle draws")->capture_default_str();
  app->add_flag("--no-chat", a->no_chat, "plain text prompts instead of a user turn of the judge's chat template");
  app->add_flag("--prompts-as-chat", a->prompts_as_chat,
                "the inputs' text prompts were sampled as a user turn (rlhf generate --chat): write them as one, so that "
                "rlhf rm / dpo render them with the chat template");
  add_chat_template_options(app, a->o.chat_template, "the judge's template");
  add_input_limit_options(app);
  return {app, [a, app] { run_judge(*a, resolved_options(app)); }};
}

Command add_cai(CLI::App& root) {
  auto a = std::make_shared<ReviseCli>();
  auto* app = root.add_subcommand("cai", "Constitutional AI, supervised phase: critique -> revision data");
  app->require_subcommand(1);
  auto* rv = app->add_subcommand(
      "revise", "SL-CAI: the model answers each prompt, then critiques and revises its answer under a principle drawn per "
                "round; writes SFT data (sft.jsonl), revision-over-original pairs (pairs.jsonl) and transcripts");
  add_config_option(rv);
  rv->add_option("--model", a->model, "the model that answers, critiques and revises")->required();
  rv->add_option("--tokenizer", a->tokenizer, "tokenizer (default: the model's)");
  rv->add_option("--constitution", a->constitution, "constitution JSON")->required();
  rv->add_option("--prompts", a->prompts, "JSONL of {\"prompt\": text | [messages]}")->required();
  rv->add_option("--out", a->out, "output directory")->required();
  rv->add_option("--rounds", a->o.rounds, "critique -> revision rounds")->capture_default_str();
  rv->add_option("--few-shot", a->few_shot_file, "JSONL of critique examples replacing the constitution's");
  rv->add_option("--few-shot-count", a->o.few_shot, "critique examples put before each prompt (-1 = all)")->capture_default_str();
  rv->add_option("--principle", a->o.principle_tag, "draw only principles with this tag or name");
  rv->add_flag("--keep-all-revisions", a->keep_all, "SFT data from every round's revision, not only the final one");
  rv->add_option("--max-new-tokens", a->o.max_new_tokens, "tokens per answer, critique and revision")->capture_default_str();
  rv->add_option("--temperature", a->o.temperature, "0 = greedy")->capture_default_str();
  rv->add_option("--seed", a->o.seed, "seed of the principle draws (and of sampling)")->capture_default_str();
  rv->add_option("--batch-rows", a->o.batch_rows, "sequences decoded together")->capture_default_str();
  rv->add_option("--max-prompts", a->max_prompts, "use only the first N prompts (0 = all)")->capture_default_str();
  add_chat_template_options(rv, a->chat_template, "");
  add_input_limit_options(rv);
  return {app, [a, rv] {
            if (rv->parsed()) run_revise(*a, resolved_options(rv));
          }};
}

}  // namespace rlhf::cli
