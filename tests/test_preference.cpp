// Preference data, the reward model and DPO on a tiny model: parsing and its errors, tokenisation
// once as a whole, truncation, the ranking form, accuracy rising above chance on preferences from a
// known rule, and the LoRA reference being the base weights.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "core/runtime.h"
#include "data/preference_data.h"
#include "io/jsonl.h"
#include "lm_fixture.h"
#include "model/lora.h"
#include "test_tensor_util.h"
#include "test_util.h"
#include "train/dpo.h"
#include "train/reward.h"
#include "train/sft.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

// The rule: a response that answers is preferred to one that rambles about a fox.
void write_rule_pairs(const fs::path& p, int n, int seed) {
  std::ofstream f(p);
  for (int i = 0; i < n; ++i) {
    int a = (i * 7 + seed) % 10, b = (i * 3 + seed * 5 + i / 10) % 10;
    f << Json({{"prompt", "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?"},
               {"chosen", " The answer is " + std::to_string((a * b + seed) % 19) + "."},
               {"rejected", i % 2 ? " The quick brown fox." : " Hello world, the lazy dog."}})
             .dump()
      << "\n";
  }
}

class PreferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tiny_lm(tmp / "base");
    tok = Tokenizer::load(tmp / "base");
  }
  std::vector<PreferenceExample> parse(const std::string& jsonl, PreferenceDataOptions o = {}) {
    write_text_file(tmp / "p.jsonl", jsonl);
    return load_preference_data(tmp / "p.jsonl", *tok, o);
  }
  TempDir tmp;
  std::shared_ptr<Tokenizer> tok;
};

TEST_F(PreferenceTest, PromptAndResponseAreTokenisedOnceAsAWhole) {
  auto ex = parse(R"({"prompt": "What is 1 plus 2?", "chosen": " The answer is 3.", "rejected": " The answer is 4."})" "\n");
  ASSERT_EQ(ex.size(), 1u);
  for (int k = 0; k < 2; ++k) {
    std::string resp = k == 0 ? " The answer is 3." : " The answer is 4.";
    auto whole = tok->encode("What is 1 plus 2?" + resp, true);
    whole.push_back(tok->eos_id());
    EXPECT_EQ(ex[0].responses[size_t(k)].ids, whole);
    std::vector<int64_t> trained;
    for (size_t t = 0; t < whole.size(); ++t)
      if (ex[0].responses[size_t(k)].loss_mask[t]) trained.push_back(whole[t]);
    EXPECT_EQ(tok->decode(trained, true), resp);
    // Exactly one EOS, at the end; no BOS doubled.
    EXPECT_EQ(std::count(whole.begin(), whole.end(), tok->eos_id()), 1);
  }
  EXPECT_EQ(ex[0].pairs.size(), 1u);
}

TEST_F(PreferenceTest, ImplicitPromptIsTheSharedPrefix) {
  auto a = parse(R"({"chosen": "What is 1 plus 2? The answer is 3.", "rejected": "What is 1 plus 2? The answer is 4."})" "\n");
  auto b = parse(R"({"prompt": "What is 1 plus 2? The answer is ", "chosen": "3.", "rejected": "4."})" "\n");
  EXPECT_EQ(a[0].responses[0].ids, b[0].responses[0].ids);
  EXPECT_EQ(a[0].responses[0].loss_mask, b[0].responses[0].loss_mask);
}

TEST_F(PreferenceTest, RankingsAndSoftLabels) {
  auto ex = parse(R"({"prompt": "Q", "responses": [" a", " b", " c", " d"], "ranking": [2, [0, 3], 1]})" "\n"
                  R"({"prompt": "Q", "responses": [" a", " b"], "ranks": [2, 1]})" "\n"
                  R"({"prompt": "Q", "chosen": " a", "rejected": " b", "margin": 1.5, "p_chosen": 0.8})" "\n");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].responses.size(), 4u);
  EXPECT_EQ(ex[0].pairs.size(), 5u);  // 2>0, 2>3, 2>1, 0>1, 3>1 (0 and 3 tied)
  ASSERT_EQ(ex[1].pairs.size(), 1u);
  EXPECT_EQ(ex[1].pairs[0].better, 1);
  EXPECT_FLOAT_EQ(ex[2].pairs[0].margin, 1.5f);
  EXPECT_FLOAT_EQ(ex[2].pairs[0].p_better, 0.8f);
}

// rlhf judge's records: "comparisons" [[i, j, P(i better)]] are the pairs (soft labels), not the ranking.
TEST_F(PreferenceTest, JudgeComparisonsAreSoftLabelledPairs) {
  auto ex = parse(R"({"prompt": "Q", "responses": [" a", " b", " c"], "ranking": [0, 1, 2],)"
                  R"( "comparisons": [[0, 1, 0.7], [0, 2, 0.25], [1, 2, 0.5]]})" "\n");
  ASSERT_EQ(ex.size(), 1u);
  ASSERT_EQ(ex[0].pairs.size(), 3u);
  EXPECT_EQ(ex[0].pairs[0].better, 0);
  EXPECT_FLOAT_EQ(ex[0].pairs[0].p_better, 0.7f);
  EXPECT_EQ(ex[0].pairs[1].better, 2);  // p < 0.5: the other one is better
  EXPECT_FLOAT_EQ(ex[0].pairs[1].p_better, 0.75f);
  EXPECT_FLOAT_EQ(ex[0].pairs[2].p_better, 0.5f);
  EXPECT_EQ(ex[0].ranked_pairs, 3);
  test::expect_error([&] { parse(R"({"prompt": "Q", "responses": [" a", " b"], "comparisons": [[0, 5, 0.7]]})" "\n"); },
                     {"p.jsonl:1", "comparison [0, 5]"});
  test::expect_error([&] { parse(R"({"prompt": "Q", "responses": [" a", " b"], "comparisons": [[0, 1, 1.5]]})" "\n"); },
                     {"1.5", "[0, 1]"});
}

TEST_F(PreferenceTest, BadRecordsAreReportedWithFileAndLine) {
  auto bad = [&](const std::string& line, std::initializer_list<std::string> parts) {
    write_text_file(tmp / "bad.jsonl", R"({"prompt": "Q", "chosen": " a", "rejected": " b"})" "\n" + line + "\n");
    expect_error([&] { load_preference_data(tmp / "bad.jsonl", *tok, {}); }, parts, line.c_str());
  };
  bad(R"({"prompt": "Q", "chosen": " same", "rejected": " same"})", {"bad.jsonl:2", "identical"});
  bad(R"({"prompt": "Q", "chosen": "", "rejected": " b"})", {"bad.jsonl:2", "chosen", "empty"});
  bad(R"({"prompt": "Q", "responses": [" a", " b"], "ranking": [0, 5]})", {"bad.jsonl:2", "response 5"});
  bad(R"({"prompt": "Q", "responses": [" a", " b", " c"], "ranking": [0, 1]})", {"bad.jsonl:2", "response 2", "not in"});
  bad(R"({"prompt": "Q", "chosen": " a", "rejected": " b", "p_chosen": 1.5})", {"bad.jsonl:2", "p_chosen", "[0, 1]"});
  bad(R"({"prompt": "Q", "chosen": " a"})", {"bad.jsonl:2", "rejected"});
  bad(R"({"prompt": "Q", "completion": " a", "label": true})", {"bad.jsonl:2", "KTO"});
  bad(R"({"prompt": "Q", "responses": [" a", " b"], "ranking": [[0, 1]]})", {"bad.jsonl:2", "tied"});
  // Identical responses ranked apart are a tie, as chosen == rejected is refused (issue 15): their pair is
  // dropped and counted, and a record left with no pair (every sample the same text) is dropped and counted.
  write_text_file(tmp / "same.jsonl", R"({"prompt": "Q", "responses": [" same", " same"], "ranking": [0, 1]})" "\n");
  expect_error([&] { load_preference_data(tmp / "same.jsonl", *tok, {}); }, {"same.jsonl", "no record implies a preference"},
               "only copies");
  write_text_file(tmp / "dup.jsonl", R"({"prompt": "Q", "responses": [" a", " same", " same"], "ranks": [2, 1, 3]})" "\n"
                                     R"({"prompt": "Q", "responses": [" a", " same", " same"], "ranking": [0, [1, 2]]})" "\n"
                                     R"({"prompt": "Q", "responses": [" x", " x", " x"], "ranking": [2, 0, 1]})" "\n");
  PreferenceDataStats st;
  auto ok = load_preference_data(tmp / "dup.jsonl", *tok, {}, &st);
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_TRUE(ok[2].pairs.empty());  // kept, with no pair: it teaches nothing and moves no other record
  EXPECT_EQ(ok[0].pairs.size(), 2u);  // (1, 0) and (0, 2); (1, 2) dropped
  for (auto& p : ok[0].pairs) EXPECT_FALSE(p.better == 1 && p.worse == 2);
  EXPECT_EQ(ok[0].pair_normalizer(), 3.0);  // the record's loss still averages over its 3 comparisons
  EXPECT_EQ(ok[1].pairs.size(), 2u);
  EXPECT_EQ(st.identical_pairs, 4);  // 1 in the first record, 3 in the last
  EXPECT_EQ(st.all_identical, 1);
  EXPECT_NE(st.describe().find("4 pairs of identical responses dropped"), std::string::npos) << st.describe();
  EXPECT_NE(st.describe().find("1 records with every response the same text"), std::string::npos) << st.describe();
}

TEST_F(PreferenceTest, TruncationKeepsThePromptStartAndReportsEmptiedResponses) {
  PreferenceDataOptions o;
  o.max_length = 12;
  o.max_prompt_length = 6;
  std::string long_prompt = "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.";
  auto ex = parse(Json({{"prompt", long_prompt}, {"chosen", " The answer is 3."}, {"rejected", " no"}}).dump() + "\n", o);
  auto full = tok->encode(long_prompt, true);
  const auto& c = ex[0].responses[0];
  EXPECT_EQ(int64_t(c.ids.size()), o.max_length);
  EXPECT_EQ(std::vector<int64_t>(c.ids.begin(), c.ids.begin() + 6), std::vector<int64_t>(full.begin(), full.begin() + 6));
  EXPECT_EQ(c.loss_tokens(), o.max_length - 6);
  // A prompt longer than max_length with max_prompt_length = max_length leaves nothing: dropped.
  o.max_prompt_length = 12;
  write_text_file(tmp / "two.jsonl", Json({{"prompt", long_prompt}, {"chosen", " a"}, {"rejected", " b"}}).dump() + "\n" +
                                         Json({{"prompt", "Q"}, {"chosen", " a"}, {"rejected", " b"}}).dump() + "\n");
  PreferenceDataStats st;
  auto kept = load_preference_data(tmp / "two.jsonl", *tok, o, &st);
  EXPECT_EQ(kept.size(), 1u);
  EXPECT_EQ(st.dropped_empty, 1);
}

TEST_F(PreferenceTest, RankingOfFourAveragesItsSixPairsWithOneForwardPerResponse) {
  auto ex = parse(R"({"prompt": "Q", "responses": [" a", " b", " c", " d"], "ranking": [2, 0, 3, 1]})" "\n");
  auto rewards = torch::tensor({0.3, -1.0, 2.0, 0.5}, torch::kDouble);
  auto f = flatten_responses(ex, response_offsets(ex), {0});
  ASSERT_EQ(f.seqs.size(), 4u);  // each response once
  auto loss = reward_record_losses(ex, {0}, f, rewards, 0.0);
  double want = 0;
  int ranks[4] = {1, 3, 0, 2};
  int n = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      if (ranks[i] < ranks[j]) {
        want += std::log1p(std::exp(-(rewards[i].item<double>() - rewards[j].item<double>())));
        ++n;
      }
  ASSERT_EQ(n, 6);
  EXPECT_NEAR(loss.item<double>(), want / 6, 1e-9);
}

TEST_F(PreferenceTest, RewardModelLearnsTheRule) {
  write_rule_pairs(tmp / "train.jsonl", 96, 1);
  write_rule_pairs(tmp / "eval.jsonl", 24, 7);
  RewardConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "train.jsonl").string();
  c.eval_data = (tmp / "eval.jsonl").string();
  c.train.out = (tmp / "rm").string();
  c.train.epochs = 6;
  c.train.batch_size = 16;
  c.train.adam.lr = 2e-3;
  c.data_opts.add_eos = false;
  run_reward(c);
  auto rows = read_metrics(tmp / "rm");
  double acc = rows.back()["eval_accuracy"].get<double>();
  EXPECT_GT(acc, 0.8) << "held-out reward-model accuracy";
  // Saved in the sequence-classification layout and loadable for scoring.
  Json cfg = read_json_file(tmp / "rm" / "config.json");
  EXPECT_EQ(cfg["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(cfg["num_labels"], 1);
  SafetensorsReader st(tmp / "rm");
  EXPECT_TRUE(st.contains("score.weight"));
  EXPECT_FALSE(st.contains("lm_head.weight"));
  auto r = run_command(rlhf_bin() + " score --reward " + (tmp / "rm").string() + " --data " + (tmp / "eval.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int right = 0, total = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    Json j = Json::parse(line);
    right += j["reward_chosen"].get<double>() > j["reward_rejected"].get<double>();
    ++total;
  }
  EXPECT_EQ(total, 24);
  EXPECT_NEAR(double(right) / total, acc, 1e-9);
}

TEST_F(PreferenceTest, NormalizeOnMakesReferenceResponsesAverageZero) {
  write_rule_pairs(tmp / "train.jsonl", 32, 1);
  write_text_file(tmp / "ref.jsonl", R"({"prompt": "What is 1 plus 2?", "completion": " The answer is 3."})" "\n"
                                     R"({"prompt": "What is 4 plus 2?", "completion": " The answer is 6."})" "\n");
  RewardConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "train.jsonl").string();
  c.train.out = (tmp / "rm").string();
  c.train.max_steps = 2;
  c.data_opts.add_eos = false;
  c.normalize_on = (tmp / "ref.jsonl").string();
  run_reward(c);
  auto r = run_command(rlhf_bin() + " score --reward " + (tmp / "rm").string() + " --data " + (tmp / "ref.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double sum = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) sum += Json::parse(line)["reward"].get<double>();
  EXPECT_NEAR(sum / 2, 0.0, 1e-4);
}

class DpoLossTest : public PreferenceTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(DpoLossTest, RaisesHeldOutAccuracyAndMargin) {
  write_rule_pairs(tmp / "train.jsonl", 96, 1);
  write_rule_pairs(tmp / "eval.jsonl", 24, 7);
  DpoConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "train.jsonl").string();
  c.eval_data = (tmp / "eval.jsonl").string();
  c.train.out = (tmp / "dpo").string();
  c.train.epochs = 2;
  c.train.batch_size = 16;
  c.train.adam.lr = 2e-3;
  c.train.eval_steps = 1;
  c.loss = GetParam();
  if (c.loss == "simpo") c.params.beta = 2.0;
  if (c.loss == "robust") c.params.label_smoothing = 0.1;
  run_dpo(c);
  auto rows = read_metrics(tmp / "dpo");
  double acc0 = rows.front()["eval_rewards/accuracies"].get<double>(), acc1 = rows.back()["eval_rewards/accuracies"].get<double>();
  double m0 = rows.front()["eval_rewards/margins"].get<double>(), m1 = rows.back()["eval_rewards/margins"].get<double>();
  // Before training the policy is the reference: every implicit reward is 0 and the (strict)
  // accuracy 0. After it the held-out pairs are ranked right, with a margin that kept growing.
  EXPECT_GT(acc1, 0.9) << c.loss;
  EXPECT_GE(acc1, acc0) << c.loss;
  EXPECT_GT(m1, m0) << c.loss;
  EXPECT_GT(m1, 0) << c.loss;
  for (auto& r : rows) EXPECT_TRUE(std::isfinite(r["loss"].get<double>()));
}

INSTANTIATE_TEST_SUITE_P(Losses, DpoLossTest, ::testing::Values("sigmoid", "ipo", "hinge", "robust", "simpo"));

TEST_F(PreferenceTest, KtoLearnsFromThumbs) {
  std::ofstream f(tmp / "kto.jsonl");
  for (int i = 0; i < 96; ++i) {
    int a = i % 10, b = (i * 3) % 10;
    bool good = i % 2 == 0;
    f << Json({{"prompt", "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?"},
               {"completion", good ? " The answer is " + std::to_string(a + b) + "." : std::string(" The quick brown fox.")},
               {"label", good}})
             .dump()
      << "\n";
  }
  f.close();
  write_rule_pairs(tmp / "eval.jsonl", 24, 7);  // paired eval: each pair becomes one good and one bad example
  DpoConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "kto.jsonl").string();
  c.eval_data = (tmp / "eval.jsonl").string();
  c.train.out = (tmp / "kto").string();
  c.train.epochs = 4;
  c.train.batch_size = 16;
  c.train.adam.lr = 2e-3;
  c.loss = "kto";
  run_dpo(c);
  auto rows = read_metrics(tmp / "kto");
  EXPECT_GT(rows.back()["eval_rewards/chosen"].get<double>(), rows.back()["eval_rewards/rejected"].get<double>());
}

TEST_F(PreferenceTest, LoraReferenceIsTheBaseWeightsWithAdaptersOff) {
  write_rule_pairs(tmp / "train.jsonl", 16, 1);
  DpoConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "train.jsonl").string();
  c.train.out = (tmp / "dpo").string();
  c.train.max_steps = 2;
  c.train.adam.lr = 1e-2;
  c.use_lora = true;
  c.lora.r = 4;
  run_dpo(c);
  // The cached reference log-probs are the base model's.
  SafetensorsFile cache(tmp / "dpo" / "reference_logps.safetensors");
  auto cached = cache.load("train");
  auto base = load_model(tmp / "base");
  base->eval();
  auto data = load_preference_data(tmp / "train.jsonl", *tok, {});
  auto off = response_offsets(data);
  std::vector<int64_t> all(data.size());
  std::iota(all.begin(), all.end(), 0);
  auto f = flatten_responses(data, off, all);
  torch::NoGradGuard ng;
  auto lp = masked_sequence_logps(*base, collate(f.seqs, 0, device())).first;
  EXPECT_LT(max_abs_diff(lp, cached.index_select(0, torch::tensor(f.ids))), 1e-4);
  // And the trained adapter moved the policy away from it.
  auto policy = load_model_or_adapter(tmp / "dpo");
  policy->eval();
  auto lp2 = masked_sequence_logps(*policy, collate(f.seqs, 0, device())).first;
  EXPECT_GT(max_abs_diff(lp, lp2), 1e-3);
}

TEST_F(PreferenceTest, ALoraRewardAdapterBringsItsHeadOrIsRefused) {
  write_rule_pairs(tmp / "train.jsonl", 16, 1);
  RewardConfig c;
  c.model = (tmp / "base").string();
  c.data = (tmp / "train.jsonl").string();
  c.train.out = (tmp / "rm").string();
  c.train.max_steps = 2;
  c.train.adam.lr = 1e-2;
  c.use_lora = true;
  c.lora.r = 4;
  run_reward(c);
  // Loaded twice, the same scores: the head is the adapter's, not one drawn for the base.
  auto data = load_preference_data(tmp / "train.jsonl", *tok, {});
  auto off = response_offsets(data);
  std::vector<int64_t> all(data.size());
  std::iota(all.begin(), all.end(), 0);
  auto f = flatten_responses(data, off, all);
  auto a = load_reward_model((tmp / "rm").string()), b = load_reward_model((tmp / "rm").string());
  torch::NoGradGuard ng;
  auto batch = collate(f.seqs, a.pad_id, device());
  EXPECT_EQ(max_abs_diff(a.score(batch), b.score(batch)), 0.0);
  // An adapter without the score head is refused, naming it.
  NamedTensors kept;
  {
    SafetensorsReader st(tmp / "rm", "adapter_model");
    for (auto& n : st.names())
      if (n.find("score") == std::string::npos) kept.emplace_back(n, st.load(n));
  }
  ASSERT_FALSE(kept.empty());
  save_safetensors(tmp / "rm" / "adapter_model.safetensors", kept);
  test::expect_error([&] { load_reward_model((tmp / "rm").string()); }, {"rm", "no score head", "modules_to_save"});
}

TEST_F(PreferenceTest, CliErrorsAreOneLine) {
  write_text_file(tmp / "bad.jsonl", R"({"prompt": "Q", "chosen": " a", "rejected": " a"})" "\n");
  auto r = run_command(rlhf_bin() + " dpo --model " + (tmp / "base").string() + " --data " + (tmp / "bad.jsonl").string() +
                       " --out " + (tmp / "o").string());
  expect_cli_error(r, {"bad.jsonl:1", "identical"}, "dpo identical pair");
  r = run_command(rlhf_bin() + " rm --model " + (tmp / "base").string() + " --data " + (tmp / "missing.jsonl").string() +
                  " --out " + (tmp / "o").string());
  expect_cli_error(r, {"missing.jsonl"}, "rm missing data");
}

}  // namespace
