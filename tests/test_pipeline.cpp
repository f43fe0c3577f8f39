// `rlhf pipeline`: a miniature of the demo end to end (world -> pretrain -> SFT -> sample -> rank ->
// reward model -> PPO and DPO -> eval), skipping finished stages on a rerun, resuming after kill -9
// with the same results, and the same pipeline on "user" data (a given base model and rankings file).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "io/jsonl.h"
#include "label/client.h"
#include "label/task.h"
#include "lm_fixture.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::TempDir;

Json mini_demo(const std::string& run_dir) {
  return Json::parse(R"({
    "world": {"seed": 3, "pretrain_docs": 1200, "sft_examples": 16, "train_prompts": 24, "eval_prompts": 12},
    "pretrain": {"text": "${world}/pretrain.jsonl", "vocab_size": 400, "n_layer": 1, "n_embd": 32, "n_head": 2,
                 "seq_len": 32, "n_ctx": 64, "max_steps": 6, "batch_size": 8, "save_steps": 2, "eval_split": 0},
    "sft": {"data": "${world}/sft.jsonl", "max_steps": 3, "batch_size": 4},
    "sample": {"n": 3, "max_new_tokens": 8},
    "rank": {"agreement": 0.8, "heldout": 0.25},
    "reward": {"max_steps": 3, "batch_size": 4},
    "rl": {"algo": "ppo", "iterations": 3, "rollout_batch": 4, "max_new_tokens": 8, "save_steps": 1, "ppo_epochs": 1},
    "dpo": {"max_steps": 2, "batch_size": 4},
    "eval": {"max_new_tokens": 8, "best_of_n": 4, "best_of_n_prompts": 4}
  })")
      .patch(Json::array({{{"op", "add"}, {"path", "/run_dir"}, {"value", run_dir}}}));
}

test::RunResult run_pipeline_cli(const fs::path& config, const std::string& extra = "") {
  return test::run_command(test::rlhf_bin() + " --threads 1 pipeline --config " + test::shell_quote(config.string()) + extra);
}

// What must come out the same from two runs: the evaluation of every policy, and the trained weights.
Json outcome(const fs::path& run) {
  Json r = read_json_file(run / "eval/eval.json");
  Json out = {{"policies", r["policies"]}, {"overoptimization", r["overoptimization"]}};
  for (auto& p : out["policies"]) p.erase("model");  // the run directories differ
  for (auto p : {"base", "sft", "round1/rm", "round1/ppo", "round1/dpo"})
    out["weights"][p] = std::hash<std::string>{}(test::read_bytes(run / p / "model.safetensors"));
  return out;
}

TEST(Pipeline, MiniDemoRunsThenSkipsEverythingOnRerun) {
  TempDir d;
  write_json_atomic(d / "config.json", mini_demo((d / "run").string()));
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  Json res = read_json_file(d / "run/eval/eval.json");
  std::vector<std::string> names;
  for (auto& p : res["policies"]) names.push_back(p["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"base", "sft", "ppo", "dpo"}));
  for (auto& p : res["policies"]) {
    EXPECT_TRUE(p["gold_mean"].is_number()) << p.dump();
    EXPECT_TRUE(p["reward_mean"].is_number()) << p.dump();
    EXPECT_TRUE(p["axes"]["harmless"].is_number()) << p.dump();
    // Per prompt family, counts that add up to the whole.
    int64_t n = 0;
    EXPECT_FALSE(p["families"].empty()) << p.dump();
    for (auto& [f, v] : p["families"].items()) n += v["n"].get<int64_t>();
    EXPECT_EQ(n, p["n"].get<int64_t>()) << p.dump();
    if (p["name"] == "sft") {
      EXPECT_DOUBLE_EQ(p["kl_mean"].get<double>(), 0.0);
      EXPECT_DOUBLE_EQ(p["win_rate_vs_sft"].get<double>(), 0.5);  // against itself: all ties
    }
  }
  // PPO checkpoints (plus step 0) and best-of-N 1, 2, 4 with the analytic KL.
  EXPECT_EQ(res["overoptimization"]["ppo"].size(), 4u);
  ASSERT_EQ(res["overoptimization"]["best_of_n"].size(), 3u);
  EXPECT_NEAR(res["overoptimization"]["best_of_n"][2]["kl"].get<double>(), std::log(4.0) - 0.75, 1e-9);
  EXPECT_TRUE(res["reward_model"]["heldout_accuracy"].is_number());
  EXPECT_TRUE(res["reward_model"]["rater_agreement"].is_number());
  EXPECT_GE(res["timings"].size(), 10u);
  std::string html = test::read_bytes(d / "run/eval/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_TRUE(fs::exists(d / "run/eval/report.md"));
  EXPECT_NE(r.out.find("win rate"), std::string::npos) << r.out;  // the results table

  // Rerun: every stage is up to date; the results stay.
  Json before = outcome(d / "run");
  auto r2 = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.err.find(": running"), std::string::npos) << r2.err;
  EXPECT_NE(r2.err.find("stage round1/ppo: up to date"), std::string::npos) << r2.err;
  EXPECT_TRUE(outcome(d / "run") == before);

  // A changed setting reruns that stage and those after it, not those before.
  Json cfg = mini_demo((d / "run").string());
  cfg["dpo"]["max_steps"] = 3;
  write_json_atomic(d / "config.json", cfg);
  auto r3 = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  EXPECT_NE(r3.err.find("stage round1/dpo: running"), std::string::npos) << r3.err;
  EXPECT_NE(r3.err.find("stage sft: up to date"), std::string::npos) << r3.err;
  EXPECT_NE(r3.err.find("stage eval: running"), std::string::npos) << r3.err;

  // Dry run: command lines only.
  auto r4 = run_pipeline_cli(d / "config.json", " --dry-run");
  ASSERT_EQ(r4.exit_code, 0) << r4.err;
  EXPECT_NE(r4.out.find("[round1/ppo] rlhf ppo --policy"), std::string::npos) << r4.out;
}

// Constitutional AI and RLAIF (issue 18) in the pipeline: the world's corpus carries feedback text and
// its constitution; "cai" critiques and revises the SFT model's answers and fine-tunes sl-cai on them;
// "rlaif" labels the round's samples with the base model as judge, trains a reward model, PPO and DPO
// on those labels, and PPO on the judge's own score (direct); the report measures the AI labeller
// against the gold order and the simulated raters.
Json with_feedback(Json cfg) {
  cfg["world"]["judge_docs"] = 300;
  cfg["world"]["score_docs"] = 100;
  cfg["world"]["critique_docs"] = 100;
  cfg["pretrain"]["n_ctx"] = 128;
  return cfg;
}

TEST(Pipeline, ConstitutionalAiAndRlaifArmsAreEvaluated) {
  TempDir d;
  Json cfg = with_feedback(mini_demo((d / "run").string()));
  cfg["cai"] = {{"rounds", 1}, {"max_new_tokens", 6}, {"start_rl_from", "sft"}};
  cfg["rlaif"] = {{"direct", true}, {"seed", 2}};
  write_json_atomic(d / "config.json", cfg);
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  EXPECT_TRUE(fs::exists(d / "run/world/constitution.json"));
  EXPECT_TRUE(fs::exists(d / "run/cai/transcripts.jsonl"));
  // data "add" (the default): sl-cai trains on SFT's demonstrations and the revisions.
  EXPECT_EQ(read_jsonl(d / "run/cai/sl_cai_data.jsonl").size(),
            read_jsonl(d / "run/world/sft.jsonl").size() + read_jsonl(d / "run/cai/sft.jsonl").size());
  EXPECT_TRUE(fs::exists(d / "run/round1/rlaif/rankings.jsonl"));
  Json res = read_json_file(d / "run/eval/eval.json");
  std::vector<std::string> names;
  for (auto& p : res["policies"]) {
    names.push_back(p["name"]);
    EXPECT_TRUE(p["gold_mean"].is_number()) << p.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"base", "sft", "ppo", "dpo", "sl-cai", "rlaif-ppo", "rlaif-dpo",
                                             "rlaif-direct-ppo"}));
  const Json& ai = res["ai_feedback"]["rlaif"];
  for (const char* k : {"gold_agreement", "rater_agreement", "position_consistency", "comparisons"})
    EXPECT_TRUE(ai[k].is_number()) << k << ": " << ai.dump();
  EXPECT_NE(test::read_bytes(d / "run/eval/report.md").find("## AI feedback"), std::string::npos);
  // The AI rankings are over the same samples as the simulated raters'.
  EXPECT_EQ(read_jsonl(d / "run/round1/rlaif/rankings.jsonl").size(), read_jsonl(d / "run/round1/rankings.jsonl").size());
  // A rerun has nothing to do.
  auto r2 = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.err.find(": running"), std::string::npos) << r2.err;
  // start_rl_from "sl-cai" (the default): the reward model, RL (with its KL reference) and DPO of both arms
  // start from sl-cai (the command lines of a dry run).
  cfg["cai"].erase("start_rl_from");
  write_json_atomic(d / "config2.json", cfg);
  auto r3 = run_pipeline_cli(d / "config2.json", " --dry-run");
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  const std::string sl = (d / "run/sl-cai").string();
  for (const std::string stage : {"[round1/rm] rlhf rm --model " + sl, "[round1/dpo] rlhf dpo --model " + sl,
                                  "[round1/rlaif_dpo] rlhf dpo --model " + sl})
    EXPECT_NE(r3.out.find(stage), std::string::npos) << stage << "\n" << r3.out;
  EXPECT_NE(r3.out.find("--ref-model " + sl), std::string::npos) << r3.out;
}

// rank.source "mix": simulated raters label some prompt families and the AI judge the others, as the
// CAI paper's preference model had human helpfulness and AI harmlessness labels.
TEST(Pipeline, MixedHumanAndAiLabels) {
  TempDir d;
  Json cfg = with_feedback(mini_demo((d / "run").string()));
  cfg.erase("rl");
  cfg["eval"].erase("best_of_n");
  cfg["rank"] = {{"source", "mix"}, {"heldout", 0.25},
                 {"parts", {{{"source", "simulated"}, {"agreement", 0.8}, {"where", {{"family", {"arithmetic", "format", "known", "unknown"}}}}},
                            {{"source", "ai"}, {"principle", "harmless"}}}}};
  write_json_atomic(d / "config.json", cfg);
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  int64_t ai = 0, other = 0;
  for (auto& rec : read_jsonl(d / "run/round1/rankings.jsonl")) {
    bool is_ai = rec.value.value("source", "") == "ai";
    ai += is_ai;
    other += !is_ai;
    const std::string fam = rec.value.value("family", "");
    EXPECT_EQ(is_ai, fam == "harmful" || fam == "lookalike") << rec.value.dump();
  }
  EXPECT_GT(ai, 0);
  EXPECT_GT(other, 0);
  Json res = read_json_file(d / "run/eval/eval.json");
  EXPECT_TRUE(res["ai_feedback"]["mix_part1"]["position_consistency"].is_number()) << res["ai_feedback"].dump();
  // A part that selects nothing is refused by name.
  cfg["rank"]["parts"][0]["where"] = {{"family", {"nonexistent"}}};
  write_json_atomic(d / "config2.json", cfg);
  auto r2 = run_pipeline_cli(d / "config2.json");
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_NE(r2.err.find("rank.parts[0] receives no samples"), std::string::npos) << r2.err;
}

// "lora": true in the sft, reward, rl and dpo sections (issue 16): each stage's product is a PEFT
// adapter, the next stages read it (sampling, the reward model and RL from the SFT adapter, the
// evaluation from the RL and DPO adapters), and the pipeline finishes.
TEST(Pipeline, LoraThroughoutTrainsAndEvaluates) {
  TempDir d;
  Json cfg = mini_demo((d / "run").string());
  for (const char* s : {"sft", "reward", "rl", "dpo"}) cfg[s]["lora"] = true;
  cfg["sft"]["lr"] = 1e-3;
  write_json_atomic(d / "config.json", cfg);
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  for (const char* p : {"sft", "round1/rm", "round1/ppo", "round1/dpo"}) {
    EXPECT_TRUE(fs::exists(d / "run" / p / "adapter_model.safetensors")) << p;
    EXPECT_FALSE(fs::exists(d / "run" / p / "model.safetensors")) << p;
  }
  Json res = read_json_file(d / "run/eval/eval.json");
  std::vector<std::string> names;
  for (auto& p : res["policies"]) {
    names.push_back(p["name"]);
    EXPECT_TRUE(p["gold_mean"].is_number()) << p.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"base", "sft", "ppo", "dpo"}));
  EXPECT_EQ(res["overoptimization"]["ppo"].size(), 4u);  // the RL checkpoints are adapters too
}

// rank.source "human" with "simulate": the round's samples become a labelling task, served on
// loopback, labelled by the world's simulated raters through the HTTP API, exported, and the rest of
// the pipeline runs unchanged; a rerun reuses the task and its labels.
TEST(Pipeline, HumanRankingThroughTheServerWithSimulatedRaters) {
  TempDir d;
  Json cfg = mini_demo((d / "run").string());
  cfg["rank"] = {{"source", "human"}, {"simulate", true}, {"overlap", 2}, {"raters", {"ann", "bo", "cy"}},
                 {"agreement", 0.8}, {"heldout", 0.25}};
  cfg.erase("rl");
  write_json_atomic(d / "config.json", cfg);
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  EXPECT_NE(r.err.find("http://127.0.0.1:"), std::string::npos) << r.err;
  Json st = read_json_file(d / "run/round1/label_status.json");
  EXPECT_EQ(st["labels"], 48);  // 24 prompts x overlap 2
  EXPECT_EQ(st["complete_items"], 24);
  EXPECT_TRUE(st["agreement"]["pairwise"].is_number());
  auto recs = read_jsonl(d / "run/round1/rankings.jsonl");
  EXPECT_EQ(recs.size(), 48u);  // one record per label (the simulated raters never tie)
  for (auto& rec : recs) {
    EXPECT_TRUE(rec.value["rater"] == "ann" || rec.value["rater"] == "bo" || rec.value["rater"] == "cy");
    EXPECT_EQ(rec.value["gold"].size(), rec.value["responses"].size());  // the world's scores, for the gold ceiling
  }
  Json rs = read_json_file(d / "run/round1/rank_stats.json");
  EXPECT_GT(rs["measured_agreement"].get<double>(), 0.6) << rs.dump();
  Json res = read_json_file(d / "run/eval/eval.json");
  ASSERT_EQ(res["policies"].size(), 3u);  // base, sft, dpo
  EXPECT_TRUE(res["policies"][2]["gold_mean"].is_number());
  EXPECT_TRUE(res["reward_model"]["rater_agreement"].is_number()) << res["reward_model"].dump();
  // The rankings gone: the stage runs again on the same task, whose labels are all there.
  fs::remove(d / "run/round1/rankings.jsonl");
  auto r2 = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.err.find("48 of 48 labels so far"), std::string::npos) << r2.err;
  EXPECT_EQ(read_jsonl(d / "run/round1/rankings.jsonl").size(), recs.size());
}

// rank.source "human" with people (here: HTTP clients the test drives): the pipeline serves the task
// and waits for min_labels; killed with SIGKILL while labels come in and run again, it serves the
// same task with every acknowledged label and goes on once the quota is met.
TEST(Pipeline, HumanRankingWaitsForPeopleAndSurvivesKillNine) {
  TempDir d;
  Json cfg = mini_demo((d / "run").string());
  const int port = label::free_loopback_port();
  cfg["rank"] = {{"source", "human"}, {"raters", {"ann", "bo"}}, {"port", port}, {"min_labels", 6}, {"heldout", 0.25}};
  cfg.erase("rl");
  write_json_atomic(d / "config.json", cfg);
  const std::string cmd = test::rlhf_bin() + " --threads 1 pipeline --config " + (d / "config.json").string();
  auto start = [&](const std::string& log) {
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + log + " 2>&1").c_str(), (char*)nullptr);
      _exit(127);
    }
    setpgid(pid, pid);
    return pid;
  };
  // People label n items each through the API, once the server answers.
  auto label_some = [&](int64_t n) {
    for (int i = 0; i < 600 && !fs::exists(d / "run/round1/label/raters.json"); ++i) usleep(100000);
    Json sec = label::read_secrets(d / "run/round1/label");
    label::ClientOptions co;
    co.port = port;
    co.max_labels_per_rater = n;
    for (auto& r : sec["raters"]) co.tokens.push_back(r["token"]);
    return label::run_rater_clients(co, [](const Json& item, size_t) {
      Json ranking = Json::array();
      for (size_t p = 0; p < item["responses"].size(); ++p) ranking.push_back(p);
      return Json{{"ranking", ranking}};
    });
  };
  pid_t p1 = start((d / "log1").string());
  auto first = label_some(2);  // 4 labels: below the quota, the pipeline keeps waiting
  EXPECT_TRUE(first.error.empty()) << first.error;
  EXPECT_EQ(first.labels, 4);
  usleep(300000);
  int status = 0;
  EXPECT_EQ(waitpid(p1, &status, WNOHANG), 0) << "the pipeline must wait for the quota";
  kill(-p1, SIGKILL);
  waitpid(p1, &status, 0);
  pid_t p2 = start((d / "log2").string());
  auto second = label_some(1);  // 2 more: 6
  EXPECT_TRUE(second.error.empty()) << second.error;
  for (int i = 0; i < 1200 && waitpid(p2, &status, WNOHANG) == 0; ++i) usleep(100000);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_bytes(d / "log2");
  std::string log2 = test::read_bytes(d / "log2");
  EXPECT_NE(log2.find("4 of 6 labels so far"), std::string::npos) << log2;
  EXPECT_EQ(read_jsonl(d / "run/round1/rankings.jsonl").size(), 6u);
  EXPECT_TRUE(fs::exists(d / "run/eval/eval.json"));
}

TEST(Pipeline, KillNineInTheMiddleResumesToTheSameResults) {
  TempDir d;
  write_json_atomic(d / "a.json", mini_demo((d / "a").string()));
  write_json_atomic(d / "b.json", mini_demo((d / "b").string()));
  auto ra = run_pipeline_cli(d / "a.json");
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  // Run b and kill -9 its whole process group once PPO has written its first checkpoint.
  bool killed = test::run_and_kill_when(test::rlhf_bin() + " --threads 1 pipeline --config " + (d / "b.json").string(),
                                        d / "b/round1/ppo/checkpoints/step-000001");
  ASSERT_TRUE(killed);
  EXPECT_FALSE(fs::exists(d / "b/eval/eval.json"));
  auto rb = run_pipeline_cli(d / "b.json");
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_NE(rb.err.find("stage sft: up to date"), std::string::npos) << rb.err;
  EXPECT_NE(rb.err.find("stage round1/ppo: resuming"), std::string::npos) << rb.err;
  Json a = outcome(d / "a"), b = outcome(d / "b");
  EXPECT_TRUE(a == b) << a.dump() << "\n" << b.dump();
}

TEST(Pipeline, UserModelAndRankingsFile) {
  // No demo world: a given base model, SFT data, a rankings file (as people would label), GRPO + DPO,
  // evaluation by the learned reward.
  TempDir d;
  test::make_tiny_lm(d / "base", "llama", 5, 96);
  {
    JsonlWriter sft(d / "sft.jsonl");
    for (int i = 0; i < 8; ++i)
      sft.write({{"messages", Json::array({{{"role", "user"}, {"content", "What is " + std::to_string(i) + " plus 1?"}},
                                           {{"role", "assistant"}, {"content", "The answer is " + std::to_string(i + 1) + "."}}})}});
    sft.commit();
    JsonlWriter rk(d / "rankings.jsonl"), pr(d / "prompts.jsonl");
    for (int i = 0; i < 12; ++i) {
      std::string q = "What is " + std::to_string(i % 10) + " plus 2?";
      rk.write({{"prompt", Json::array({{{"role", "user"}, {"content", q}}})},
                {"responses", {"The answer is " + std::to_string(i % 10 + 2) + ".", "No.", "The answer is 0."}},
                {"ranking", {0, 2, 1}}});
      pr.write({{"prompt", q}});
    }
    rk.commit();
    pr.commit();
  }
  Json cfg = {{"run_dir", (d / "run").string()},
              {"chat_template", "plain"},
              {"base_model", (d / "base").string()},
              {"sft", {{"data", (d / "sft.jsonl").string()}, {"max_steps", 2}, {"batch_size", 4}}},
              {"prompts", (d / "prompts.jsonl").string()},
              {"eval_prompts", (d / "prompts.jsonl").string()},
              {"rank", {{"source", "file"}, {"file", (d / "rankings.jsonl").string()}, {"heldout", 0.25}}},
              {"reward", {{"max_steps", 2}, {"batch_size", 4}}},
              {"rl", {{"algo", "grpo"}, {"iterations", 2}, {"rollout_batch", 2}, {"group", 2}, {"max_new_tokens", 6}, {"save_steps", 1}}},
              {"dpo", {{"max_steps", 2}, {"batch_size", 4}}},
              {"eval", {{"max_new_tokens", 6}, {"best_of_n", 2}, {"best_of_n_prompts", 2}}}};
  write_json_atomic(d / "config.json", cfg);
  auto r = run_pipeline_cli(d / "config.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json res = read_json_file(d / "run/eval/eval.json");
  ASSERT_EQ(res["policies"].size(), 4u);  // base, sft, grpo, dpo
  EXPECT_EQ(res["policies"][2]["name"], "grpo");
  EXPECT_TRUE(res["policies"][2]["gold_mean"].is_null() || !res["policies"][2].contains("gold_mean"));
  EXPECT_TRUE(res["policies"][2]["win_rate_vs_sft"].is_number());
  EXPECT_EQ(res["policies"][2]["win_rate_judge"], "learned reward");

  // DPO and no RL (issue 16): the reward model still trains on the rankings, as the evaluation's judge.
  Json dpo_only = cfg;
  dpo_only.erase("rl");
  dpo_only.erase("base_model");
  dpo_only.erase("sft");
  dpo_only["sft_model"] = (d / "run/sft").string();
  dpo_only["run_dir"] = (d / "run_dpo").string();
  {  // the rankings as one JSON array this time: the rank stage copies them as JSON Lines
    Json all = Json::array();
    for (auto& rec : read_jsonl(d / "rankings.jsonl")) all.push_back(rec.value);
    write_json_atomic(d / "rankings.json", all);
  }
  dpo_only["rank"]["file"] = (d / "rankings.json").string();
  write_json_atomic(d / "dpo_only.json", dpo_only);
  r = run_pipeline_cli(d / "dpo_only.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(d / "run_dpo/round1/rm/config.json"));
  EXPECT_EQ(read_jsonl(d / "run_dpo/round1/rankings.jsonl").size(), 12u);
  EXPECT_TRUE(is_plain_jsonl(d / "run_dpo/round1/rankings.jsonl"));
  res = read_json_file(d / "run_dpo/eval/eval.json");
  ASSERT_EQ(res["policies"].size(), 2u);  // sft, dpo
  EXPECT_EQ(res["policies"][1]["name"], "dpo");
  EXPECT_TRUE(res["policies"][1]["win_rate_vs_sft"].is_number()) << res["policies"][1].dump();
  EXPECT_TRUE(res["policies"][1]["reward_mean"].is_number()) << res["policies"][1].dump();
  // ... or eval.reward names the judge, and none is trained.
  dpo_only["run_dir"] = (d / "run_dpo2").string();
  dpo_only["eval"]["reward"] = (d / "run/round1/rm").string();
  write_json_atomic(d / "dpo_judge.json", dpo_only);
  r = run_pipeline_cli(d / "dpo_judge.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(d / "run_dpo2/round1/rm"));
  res = read_json_file(d / "run_dpo2/eval/eval.json");
  EXPECT_TRUE(res["policies"][1]["win_rate_vs_sft"].is_number()) << res["policies"][1].dump();
  dpo_only["run_dir"] = (d / "run_dpo3").string();
  dpo_only["eval"]["reward"] = (d / "nowhere").string();
  write_json_atomic(d / "dpo_bad_judge.json", dpo_only);
  test::expect_cli_error(run_pipeline_cli(d / "dpo_bad_judge.json"), {"dpo_bad_judge.json", "eval.reward", "nowhere",
                                                                       "not a reward model directory"}, "bad judge");

  // Config errors are one clear line.
  write_json_atomic(d / "bad.json", Json{{"run_dir", (d / "run2").string()}, {"sft_model", (d / "base").string()},
                                         {"rank", {{"source", "simulated"}}}, {"dpo", Json::object()}});
  test::expect_cli_error(run_pipeline_cli(d / "bad.json"), {"bad.json", "simulated", "world"}, "simulated without world");
  write_json_atomic(d / "typo.json", Json{{"run_dir", "x"}, {"sfft", Json::object()}});
  test::expect_cli_error(run_pipeline_cli(d / "typo.json"), {"typo.json", "unknown key \"sfft\""}, "typo");
}

}  // namespace
}  // namespace rlhf

namespace rlhf {
namespace {

TEST(GenerateCli, ChatRendersThePromptAsAUserTurn) {
  test::TempDir d;
  test::make_tiny_lm(d / "m", "llama", 2, 96);
  const std::string gen = test::rlhf_bin() + " -q --threads 1 generate --model " + (d / "m").string() +
                          " --temperature 0 --max-new-tokens 4 ";
  auto chat = test::run_command(gen + "--chat --chat-template plain --prompt 'What is 2 plus 3?'");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  // The same text rendered by hand, with the template's BOS written out.
  auto plain = test::run_command(gen + "--no-special-tokens --prompt \"$(printf '<|endoftext|>User: What is 2 plus 3?\\nAssistant:')\"");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  Json a = Json::parse(chat.out), b = Json::parse(plain.out);
  EXPECT_EQ(a["prompt"], "What is 2 plus 3?");
  EXPECT_EQ(a["prompt_ids"], b["prompt_ids"]);
  EXPECT_EQ(a["response_ids"], b["response_ids"]);
  // Without --chat the prompt is raw text: different ids.
  auto raw = test::run_command(gen + "--prompt 'What is 2 plus 3?'");
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(Json::parse(raw.out)["prompt_ids"], a["prompt_ids"]);
}

}  // namespace
}  // namespace rlhf
