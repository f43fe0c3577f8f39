// Constitutional AI and RLAIF (src/feedback): constitutions and their errors, principle draws, the
// Bradley-Terry fit of pairwise probabilities, option log-probs with the shared prefix cached (against
// full forward passes), and the judge / cai revise / --reward-judge command lines with bad input.
// FeedbackReference.* (test_feedback_reference.cpp) compare with transformers.
#include <gtest/gtest.h>

#include <cmath>

#include "feedback/constitution.h"
#include "feedback/judge.h"
#include "generate/generator.h"
#include "io/jsonl.h"
#include "lm_fixture.h"
#include "model/logprobs.h"
#include "test_util.h"
#include "world/world.h"

namespace rlhf {
namespace {

using test::TempDir;

Json tiny_constitution() {
  return Json::parse(R"({
    "name": "test",
    "principles": [
      {"name": "harmless", "tags": ["harmless"], "critique_request": "Is it harmful?", "revision_request": "Fix it.",
       "comparison": "Which is less harmful?"},
      {"name": "helpful", "tags": ["helpful"], "critique_request": "Is it helpful?", "revision_request": "Improve it.",
       "comparison": "Which is more helpful?", "weight": 3}
    ],
    "comparison_examples": [{"prompt": "What is 1 plus 1?", "response_a": "2.", "response_b": "3.", "answer": "A"}],
    "judge": {"system": "You judge answers.", "comparison_template": "Q: {prompt}\nA: {response_a}\nB: {response_b}\n{question}",
              "answer_prefix": " Answer:", "options": [" A", " B"]}
  })");
}

TEST(Constitution, ParsesTheShippedOnesAndFillsTemplates) {
  auto c = load_constitution(std::string(RLHF_SOURCE_DIR) + "/examples/constitutions/default.json");
  EXPECT_EQ(c.principles.size(), 16u);
  EXPECT_FALSE(c.with_tag("harmless").empty());
  EXPECT_FALSE(c.with_tag("honest").empty());
  EXPECT_FALSE(c.with_tag("helpful").empty());
  EXPECT_GE(c.comparison_examples.size(), 1u);
  auto w = parse_constitution(World::constitution(), "world");
  EXPECT_EQ(w.principles.size(), 4u);
  EXPECT_EQ(w.judge.score_options.size(), 10u);
  EXPECT_EQ(fill_template("{prompt}|{response_a}|{x}|{question", {{"prompt", "p"}, {"response_a", "{prompt}"}}),
            "p|{prompt}|{x}|{question");
}

TEST(Constitution, BadFilesGetOneClearError) {
  TempDir d;
  auto bad = [&](const std::function<void(Json&)>& edit, std::initializer_list<std::string> parts) {
    Json j = tiny_constitution();
    edit(j);
    write_json_atomic(d / "c.json", j);
    test::expect_error([&] { load_constitution(d / "c.json"); }, parts);
  };
  bad([](Json& j) { j["principles"][0].erase("critique_request"); }, {"c.json", "principles[0]", "critique_request"});
  bad([](Json& j) { j["principles"][1]["comparison"] = ""; }, {"principles[1] (helpful)", "comparison", "empty"});
  bad([](Json& j) { j["principles"][1]["name"] = "harmless"; }, {"used twice"});
  bad([](Json& j) { j["principles"] = Json::array(); }, {"principles", "non-empty"});
  bad([](Json& j) { j["principles"][0]["critque"] = "x"; }, {"unknown field \"critque\""});
  bad([](Json& j) { j["judge"]["comparison_template"] = "{prompt} {response_a}"; }, {"{response_b}"});
  bad([](Json& j) { j["judge"]["options"] = {" A"}; }, {"options"});
  bad([](Json& j) { j["comparison_examples"][0]["answer"] = "C"; }, {"comparison_examples[0]", "\"A\" or \"B\""});
  bad([](Json& j) { j["principles"][0]["weight"] = -1; }, {"weight"});
  test::write_bytes(d / "broken.json", "{\"principles\": [");
  test::expect_error([&] { load_constitution(d / "broken.json"); }, {"broken.json"});
}

TEST(Constitution, PrincipleDrawsFollowWeightsAndAreDistinct) {
  auto c = parse_constitution(tiny_constitution(), "t");
  std::vector<size_t> pool = {0, 1};
  int helpful = 0;
  for (uint64_t i = 0; i < 4000; ++i) {
    auto d = draw_principles(c, pool, 1, 5, i);
    ASSERT_EQ(d.size(), 1u);
    helpful += d[0] == 1;
    EXPECT_EQ(d, draw_principles(c, pool, 1, 5, i));  // deterministic
    auto both = draw_principles(c, pool, 2, 5, i);
    ASSERT_EQ(both.size(), 2u);
    EXPECT_NE(both[0], both[1]);
  }
  EXPECT_NEAR(helpful / 4000.0, 0.75, 0.03);  // weight 3 against 1
}

TEST(BradleyTerry, RecoversStrengthsFromTheirProbabilities) {
  // Two items: s1 - s2 = logit(p).
  auto s = bradley_terry_fit({{-1, 0.75}, {-1, -1}}, 1e-9);
  EXPECT_NEAR(s[0] - s[1], std::log(3.0), 1e-4);
  EXPECT_NEAR(s[0] + s[1], 0.0, 1e-12);
  // Four items with true strengths: every pairwise probability from them gives them back (centred).
  std::vector<double> t = {1.0, 0.2, -0.4, -0.8};
  std::vector<std::vector<double>> p(4, std::vector<double>(4, -1.0));
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j) p[i][j] = 1.0 / (1.0 + std::exp(-(t[i] - t[j])));
  s = bradley_terry_fit(p, 1e-9);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(s[i], t[i], 1e-3) << i;
  // An item that wins every comparison with certainty stays finite (the ridge) and first.
  s = bradley_terry_fit({{-1, 1.0, 1.0}, {-1, -1, 0.5}, {-1, -1, -1}});
  EXPECT_TRUE(std::isfinite(s[0]));
  EXPECT_GT(s[0], s[1] + 3);
  EXPECT_NEAR(s[1], s[2], 1e-6);
}

// The shared prefix is prefilled once; the option log-probs equal full forward passes of each prompt
// with the option appended, for one-token and several-token options.
TEST(JudgeScoring, PrefixCachedOptionLogprobsEqualFullForwardPasses) {
  TempDir d;
  test::make_tiny_lm(d.path(), "llama", 3);
  auto model = load_model(d.path());
  auto tok = Tokenizer::load(d.path());
  std::vector<std::vector<int64_t>> prompts;
  for (auto t : {"What is 3 plus 4? The answer is", "What is 3 plus 5? Hello world", "What is 3 plus 4? The quick brown fox",
                 "What is 3 plus 9"})
    prompts.push_back(tok->encode(t, true));
  for (auto opts : {std::vector<std::string>{" 7", " 8"}, std::vector<std::string>{" 7.", " the lazy dog", " 12"}}) {
    std::vector<std::vector<int64_t>> o;
    for (auto& s : opts) o.push_back(tok->encode(s, false));
    JudgeStats st;
    auto lp = option_logprobs(*model, prompts, o, /*batch_rows=*/3, /*pad_id=*/0, &st);
    EXPECT_GT(st.prefix_tokens, 2);  // "What is 3 plus" is shared
    torch::NoGradGuard ng;
    for (size_t i = 0; i < prompts.size(); ++i)
      for (size_t k = 0; k < o.size(); ++k) {
        std::vector<int64_t> full = prompts[i];
        full.insert(full.end(), o[k].begin(), o[k].end());
        auto ids = torch::tensor(full).unsqueeze(0);
        auto per = sequence_logprobs(*model, ids);  // (1, T-1)
        double want = per[0].narrow(0, int64_t(prompts[i].size()) - 1, int64_t(o[k].size())).sum().item<double>();
        EXPECT_NEAR(lp[i][k], want, 2e-5) << "prompt " << i << " option " << k;
      }
  }
}

// Direct RLAIF's reward: the expected score over the score options from their probabilities (options of
// several tokens scored as sequences), rescaled from [1, n] to [-1, 1].
TEST(JudgeScoring, RewardIsTheRescaledExpectedScore) {
  TempDir d;
  test::make_tiny_lm(d.path(), "llama", 3, 512);
  JudgeOptions o;
  o.chat_template = "plain";
  JudgeModel m = load_judge(d.path().string(), "", o);
  Json cj = tiny_constitution();
  cj["judge"]["score_options"] = {" 1", " 2", " 3 plus"};  // one of them two tokens
  Constitution c = parse_constitution(cj, "t");
  AiJudge judge(m, c, o);
  std::vector<Json> prompts = {"What is 1 plus 1?", "Hello world"};
  std::vector<std::string> resp = {"2.", "The fox."};
  auto rw = judge.rewards(prompts, resp);
  ASSERT_EQ(rw.size(), 2u);
  std::vector<std::vector<int64_t>> opts;
  for (auto& s : c.judge.score_options) opts.push_back(m.tok->encode(s, false));
  EXPECT_EQ(opts[2].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto ids = m.tok->encode(judge.score_text(prompts[i], resp[i]), false);
    auto lp = option_logprobs(*m.model, {ids}, opts, 4, 0)[0];
    double z = 0, e = 0;
    for (size_t k = 0; k < 3; ++k) z += std::exp(lp[k]);
    for (size_t k = 0; k < 3; ++k) e += std::exp(lp[k]) / z * double(k + 1);
    EXPECT_NEAR(rw[i], 2 * (e - 1) / 2 - 1, 1e-6) << i;
    EXPECT_GE(rw[i], -1.0);
    EXPECT_LE(rw[i], 1.0);
  }
}

void write_jsonl(const fs::path& p, const std::vector<Json>& rows) {
  std::string s;
  for (auto& r : rows) s += r.dump() + "\n";
  test::write_bytes(p, s);
}

TEST(JudgeCli, LabelsPairsAndSamplesWithBothOrders) {
  TempDir d;
  test::make_tiny_lm(d / "m", "llama", 4, 512);
  write_json_atomic(d / "c.json", tiny_constitution());
  write_jsonl(d / "pairs.jsonl", {{{"prompt", "What is 2 plus 2?"}, {"chosen", "4."}, {"rejected", "5."}},
                                  {{"prompt", "What is 1 plus 2?"}, {"response_a", "3."}, {"response_b", "The fox."}},
                                  // TRL's conversational form
                                  {{"prompt", {{{"role", "user"}, {"content", "What is 3 plus 3?"}}}},
                                   {"chosen", {{{"role", "assistant"}, {"content", "6."}}}},
                                   {"rejected", {{{"role", "assistant"}, {"content", "7."}}}}}});
  const std::string bin = test::rlhf_bin() + " --threads 1 judge --model " + (d / "m").string() + " --constitution " +
                          (d / "c.json").string() + " --chat-template plain";
  auto r = test::run_command(bin + " --pairs " + (d / "pairs.jsonl").string() + " --out " + (d / "out.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = read_jsonl(d / "out.jsonl");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[2].value["chosen"] == "6." || out[2].value["chosen"] == "7.") << out[2].value.dump();
  for (auto& rec : out) {
    const Json& j = rec.value;
    double p = j["p_chosen"].get<double>(), pf = j["judge"]["p_first"].get<double>();
    EXPECT_GE(p, 0.5);
    EXPECT_NEAR(pf, (j["judge"]["p_ab"][0].get<double>() + j["judge"]["p_ba"][0].get<double>()) / 2, 1e-12);
    EXPECT_EQ(j["source"], "ai");
  }
  EXPECT_TRUE(out[0].value.contains("agrees_with_input"));
  EXPECT_FALSE(out[1].value.contains("agrees_with_input"));
  // --label-temperature T: the written p_first is sigmoid(logit(p) / T); p_ab / p_ba stay as measured.
  r = test::run_command(bin + " --pairs " + (d / "pairs.jsonl").string() + " --out " + (d / "sharp.jsonl").string() +
                        " --label-temperature 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto sharp = read_jsonl(d / "sharp.jsonl");
  ASSERT_EQ(sharp.size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const Json &a = out[i].value["judge"], &b = sharp[i].value["judge"];
    double p = a["p_first"].get<double>();
    EXPECT_NEAR(b["p_first"].get<double>(), 1.0 / (1.0 + std::exp(-2.0 * std::log(p / (1 - p)))), 1e-9);
    EXPECT_EQ(a["p_ab"], b["p_ab"]);
  }
  Json st = read_json_file(d / "out.jsonl.stats.json");
  EXPECT_EQ(st["comparisons"], 3);
  EXPECT_TRUE(st["position_consistency"].is_number());
  EXPECT_TRUE(st["accuracy_vs_input"].is_number());
  EXPECT_GT(st["prefix_tokens"].get<int64_t>(), 3);  // the system text and the few-shot example
  // K samples: every distinct pair judged, a ranking from the Bradley-Terry fit; identical responses tie.
  write_jsonl(d / "samples.jsonl", {{{"prompt", "What is 2 plus 2?"}, {"responses", {"4.", "5.", "4.", "Hello."}}, {"family", "x"}}});
  r = test::run_command(bin + " --samples " + (d / "samples.jsonl").string() + " --out " + (d / "rank.jsonl").string() +
                        " --principles 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rk = read_jsonl(d / "rank.jsonl");
  ASSERT_EQ(rk.size(), 1u);
  const Json& j = rk[0].value;
  EXPECT_EQ(j["family"], "x");
  EXPECT_EQ(j["comparisons"].size(), 5u);  // 6 pairs, one of them identical
  EXPECT_EQ(j["comparisons"][0].size(), 3u);  // [i, j, P(i better)]
  ASSERT_EQ(j["ranking"].size(), 4u);  // flat, best first; the identical 0 and 2 next to each other
  std::vector<int> order = j["ranking"].get<std::vector<int>>();
  auto at = [&](int x) { return std::find(order.begin(), order.end(), x) - order.begin(); };
  EXPECT_EQ(std::abs(at(0) - at(2)), 1) << j.dump();
  EXPECT_NEAR(j["ai_scores"][0].get<double>(), j["ai_scores"][2].get<double>(), 1e-9);
  // Chain of thought: a rationale per order, each order's probability clamped to [0.4, 0.6]; one order only.
  r = test::run_command(bin + " --pairs " + (d / "pairs.jsonl").string() + " --out " + (d / "cot.jsonl").string() +
                        " --cot --cot-max-new-tokens 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto& rec : read_jsonl(d / "cot.jsonl")) {
    const Json& jj = rec.value["judge"];
    ASSERT_EQ(jj["rationales"].size(), 2u) << jj.dump();
    for (const char* k : {"p_ab", "p_ba"}) {
      EXPECT_GE(jj[k][0].get<double>(), 0.4 - 1e-12) << jj.dump();
      EXPECT_LE(jj[k][0].get<double>(), 0.6 + 1e-12) << jj.dump();
    }
  }
  r = test::run_command(bin + " --pairs " + (d / "pairs.jsonl").string() + " --out " + (d / "one.jsonl").string() + " --one-order");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto& rec : read_jsonl(d / "one.jsonl")) {
    EXPECT_FALSE(rec.value["judge"].contains("p_ba"));
    EXPECT_DOUBLE_EQ(rec.value["judge"]["p_first"].get<double>(), rec.value["judge"]["p_ab"][0].get<double>());
  }
  EXPECT_TRUE(read_json_file(d / "one.jsonl.stats.json")["position_consistency"].is_null());
  Json st2 = read_json_file(d / "rank.jsonl.stats.json");
  EXPECT_EQ(st2["sequences"], 5 * 2 * 2);  // pairs x principles x orders
  // rm reads the rankings.
  r = test::run_command(test::rlhf_bin() + " --threads 1 rm --model " + (d / "m").string() + " --data " +
                        (d / "rank.jsonl").string() + " --out " + (d / "rm").string() + " --max-steps 1 --batch-size 1");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(JudgeCli, BadInputGetsOneClearLine) {
  TempDir d;
  test::make_tiny_lm(d / "m", "llama", 4, 512);
  write_json_atomic(d / "c.json", tiny_constitution());
  test::write_bytes(d / "empty.jsonl", "");
  write_jsonl(d / "one.jsonl", {{{"prompt", "Hi"}, {"responses", {"a"}}}});
  Json bad = tiny_constitution();
  bad["principles"][0].erase("revision_request");
  write_json_atomic(d / "bad.json", bad);
  const std::string base = test::rlhf_bin() + " --threads 1 judge --model " + (d / "m").string() + " --chat-template plain";
  auto r = test::run_command(base + " --constitution " + (d / "c.json").string() + " --pairs " + (d / "empty.jsonl").string() +
                             " --out " + (d / "o.jsonl").string());
  test::expect_cli_error(r, {"empty.jsonl", "empty"}, "empty pairs file");
  r = test::run_command(base + " --constitution " + (d / "bad.json").string() + " --pairs " + (d / "one.jsonl").string() +
                        " --out " + (d / "o.jsonl").string());
  test::expect_cli_error(r, {"bad.json", "principles[0]", "revision_request"}, "principle without a field");
  r = test::run_command(base + " --constitution " + (d / "c.json").string() + " --samples " + (d / "one.jsonl").string() +
                        " --out " + (d / "o.jsonl").string());
  test::expect_cli_error(r, {"one.jsonl:1", "at least two responses"}, "one response");
  r = test::run_command(base + " --constitution " + (d / "c.json").string() + " --out " + (d / "o.jsonl").string());
  test::expect_cli_error(r, {"--pairs", "--samples"}, "no input");
  // --few-shot FILE: examples checked as the constitution's are.
  write_jsonl(d / "shots.jsonl", {{{"prompt", "Q"}, {"response_a", "a"}, {"response_b", "b"}}});
  write_jsonl(d / "two.jsonl", {{{"prompt", "Hi"}, {"chosen", "Hello."}, {"rejected", "Go away."}}});
  r = test::run_command(base + " --constitution " + (d / "c.json").string() + " --pairs " + (d / "two.jsonl").string() +
                        " --few-shot " + (d / "shots.jsonl").string() + " --out " + (d / "o.jsonl").string());
  test::expect_cli_error(r, {"shots.jsonl", "comparison_examples[0]", "answer"}, "few-shot example without an answer");
  write_jsonl(d / "shots.jsonl", {{{"prompt", "Q"}, {"response_a", "a"}, {"response_b", "b"}, {"answer", "B"}}});
  r = test::run_command(base + " --constitution " + (d / "c.json").string() + " --pairs " + (d / "two.jsonl").string() +
                        " --few-shot " + (d / "shots.jsonl").string() + " --out " + (d / "o.jsonl").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A judge whose tokenizer is not the policy's, for direct RLAIF.
  test::make_tiny_lm(d / "p", "llama", 5, 512);
  {
    Json tj = read_json_file(d / "p/tokenizer.json");
    auto& v = tj["model"]["vocab"];
    std::swap(v["e"], v["l"]);  // the same size, other ids
    write_json_atomic(d / "p/tokenizer.json", tj);
  }
  write_jsonl(d / "prompts.jsonl", {{{"prompt", "What is 1 plus 1?"}}});
  r = test::run_command(test::rlhf_bin() + " --threads 1 rloo --policy " + (d / "p").string() + " --reward-judge " +
                        (d / "m").string() + " --constitution " + (d / "c.json").string() + " --judge-chat-template plain --prompts " +
                        (d / "prompts.jsonl").string() + " --out " + (d / "rl").string() + " --iterations 1 --rollout-batch 1 --chat-template plain");
  test::expect_cli_error(r, {"--reward-judge", "tokenizer differs", "--judge-retokenize"}, "judge tokenizer differs");
  r = test::run_command(test::rlhf_bin() + " --threads 1 rloo --policy " + (d / "m").string() + " --reward-judge " +
                        (d / "m").string() + " --prompts " + (d / "prompts.jsonl").string() + " --out " + (d / "rl").string());
  test::expect_cli_error(r, {"--constitution"}, "judge without a constitution");
}

// Direct RLAIF: RLOO whose reward is the judge's expected 1-10 score, rescaled to [-1, 1].
TEST(JudgeCli, DirectRlaifTrainsOnTheJudgesScore) {
  TempDir d;
  test::make_tiny_lm(d / "m", "llama", 4, 512);
  write_json_atomic(d / "c.json", tiny_constitution());
  write_jsonl(d / "prompts.jsonl", {{{"prompt", "What is 1 plus 1?"}}, {{"prompt", "What is 2 plus 3?"}}});
  auto r = test::run_command(test::rlhf_bin() + " --threads 1 rloo --policy " + (d / "m").string() + " --reward-judge " +
                             (d / "m").string() + " --constitution " + (d / "c.json").string() +
                             " --judge-chat-template plain --chat-template plain --chat --prompts " + (d / "prompts.jsonl").string() +
                             " --out " + (d / "rl").string() + " --iterations 2 --rollout-batch 2 --group 2 --max-new-tokens 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = test::read_metrics(d / "rl");
  ASSERT_FALSE(m.empty());
  double s = m.back()["objective/scores"].get<double>();
  EXPECT_GE(s, -1.0);
  EXPECT_LE(s, 1.0);
  EXPECT_NE(r.err.find("direct RLAIF"), std::string::npos) << r.err;
}

TEST(CaiCli, RevisesWritesDataAndRefusesBadInput) {
  TempDir d;
  test::make_tiny_lm(d / "m", "llama", 4, 512);
  write_json_atomic(d / "c.json", tiny_constitution());
  write_jsonl(d / "prompts.jsonl", {{{"prompt", "What is 1 plus 1?"}, {"family", "arithmetic"}},
                                    {{"prompt", Json::array({{{"role", "user"}, {"content", "What is 2 plus 2?"}}})}}});
  const std::string base = test::rlhf_bin() + " --threads 1 cai revise --model " + (d / "m").string() +
                           " --constitution " + (d / "c.json").string() + " --chat-template plain --max-new-tokens 6";
  auto r = test::run_command(base + " --prompts " + (d / "prompts.jsonl").string() + " --out " + (d / "o").string() +
                             " --rounds 2 --keep-all-revisions");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto tr = read_jsonl(d / "o/transcripts.jsonl");
  ASSERT_EQ(tr.size(), 2u);
  EXPECT_EQ(tr[0].value["rounds"].size(), 2u);
  EXPECT_EQ(tr[0].value["family"], "arithmetic");
  for (auto& rd : tr[0].value["rounds"]) EXPECT_TRUE(rd["principle"] == "harmless" || rd["principle"] == "helpful");
  auto sft = read_jsonl(d / "o/sft.jsonl");
  EXPECT_GE(sft.size(), 1u);
  EXPECT_LE(sft.size(), 4u);
  EXPECT_EQ(sft[0].value["messages"].back()["role"], "assistant");
  Json sum = read_json_file(d / "o/summary.json");
  EXPECT_EQ(sum["prompts"], 2);
  EXPECT_GT(sum["revisions_per_second"].get<double>(), 0);
  // Deterministic: the same transcripts again.
  r = test::run_command(base + " --prompts " + (d / "prompts.jsonl").string() + " --out " + (d / "o2").string() + " --rounds 2 --keep-all-revisions");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_bytes(d / "o/transcripts.jsonl"), test::read_bytes(d / "o2/transcripts.jsonl"));
  // Bad input.
  test::write_bytes(d / "empty.jsonl", "");
  r = test::run_command(base + " --prompts " + (d / "empty.jsonl").string() + " --out " + (d / "o3").string());
  test::expect_cli_error(r, {"empty.jsonl", "empty"}, "empty prompts");
  write_jsonl(d / "bad.jsonl", {{{"text", "x"}}});
  r = test::run_command(base + " --prompts " + (d / "bad.jsonl").string() + " --out " + (d / "o3").string());
  test::expect_cli_error(r, {"bad.jsonl:1", "\"prompt\""}, "record without a prompt");
  r = test::run_command(base + " --prompts " + (d / "prompts.jsonl").string() + " --out " + (d / "o3").string() +
                        " --principle kindness");
  test::expect_cli_error(r, {"kindness"}, "unknown principle");
}

}  // namespace
}  // namespace rlhf

namespace rlhf {
namespace {

// GenerateParams::share_prefix (cai revise): the shared prefix prefilled once gives the tokens and
// log-probs of the ordinary left-padded prefill.
TEST(GenerateSharedPrefix, SameTokensAndLogprobsAsAFullPrefill) {
  test::TempDir d;
  test::make_tiny_lm(d.path(), "llama", 6);
  auto model = load_model(d.path());
  auto tok = Tokenizer::load(d.path());
  std::vector<std::vector<int64_t>> prompts;
  for (auto t : {"The quick brown fox jumps over the lazy dog. What is 1 plus 2?",
                 "The quick brown fox jumps over the lazy dog. Hello world, this is",
                 "The quick brown fox jumps over the lazy dog. What is 9 plus 9? The answer is"})
    prompts.push_back(tok->encode(t, true));
  for (double temp : {0.0, 1.0}) {
    GenerateParams p;
    p.max_new_tokens = 8;
    p.n = 2;
    p.sampling.temperature = temp;
    p.seed = 11;
    auto plain = generate(*model, prompts, p);
    p.share_prefix = true;
    p.min_shared_prefix = 1;
    auto shared = generate(*model, prompts, p);
    for (size_t i = 0; i < prompts.size(); ++i)
      for (size_t j = 0; j < 2; ++j) {
        EXPECT_EQ(plain[i][j].ids, shared[i][j].ids) << i << "," << j << " T=" << temp;
        ASSERT_EQ(plain[i][j].model_logprobs.size(), shared[i][j].model_logprobs.size());
        for (size_t k = 0; k < plain[i][j].model_logprobs.size(); ++k)
          EXPECT_NEAR(plain[i][j].model_logprobs[k], shared[i][j].model_logprobs[k], 1e-4);
      }
  }
}

}  // namespace
}  // namespace rlhf
