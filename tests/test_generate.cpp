// Generation engine: KV-cache decoding equals recomputing the whole sequence, batching and left
// padding change nothing, seeds reproduce, and the returned log-probs equal a teacher-forced pass.
#include <gtest/gtest.h>

#include "core/runtime.h"
#include "generate/generator.h"
#include "model/logprobs.h"

using namespace rlhf;

namespace {

Transformer tiny(const std::string& arch, int64_t vocab = 97) {
  ModelConfig c = preset_config(arch, "tiny");
  Json j = c.to_json();
  j["vocab_size"] = vocab;
  auto m = make_model(ModelConfig::from_json(j, "test"), 3);
  m->eval();
  return m;
}

std::vector<std::vector<int64_t>> some_prompts() {
  return {{5, 9, 2, 44}, {7}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {60, 61}};
}

// Greedy decoding by re-running the full sequence each step, no cache.
std::vector<int64_t> naive_greedy(TransformerImpl& m, std::vector<int64_t> seq, int64_t n) {
  torch::NoGradGuard ng;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    auto t = torch::tensor(seq, torch::kLong).unsqueeze(0).to(device());
    auto logits = m.forward(t).select(1, -1);
    int64_t next = logits.argmax(-1).item<int64_t>();
    out.push_back(next);
    seq.push_back(next);
  }
  return out;
}

class GenerateArch : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateArch, GreedyWithCacheEqualsRecompute) {
  auto m = tiny(GetParam());
  GenerateParams p;
  p.max_new_tokens = 12;
  p.sampling.temperature = 0;
  auto prompts = some_prompts();
  auto res = generate(*m, prompts, p);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(res[i][0].ids, naive_greedy(*m, prompts[i], 12)) << "prompt " << i;
    EXPECT_EQ(res[i][0].finish_reason, "length");
  }
}

TEST_P(GenerateArch, BatchWithLeftPaddingEqualsEachAlone) {
  auto m = tiny(GetParam());
  GenerateParams p;
  p.max_new_tokens = 10;
  p.n = 3;
  p.seed = 11;
  p.sampling.temperature = 0.9f;
  p.sampling.top_k = 40;
  p.sampling.top_p = 0.95f;
  auto prompts = some_prompts();
  auto batched = generate(*m, prompts, p);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateParams q = p;
    q.prompt_offset = i;
    q.batch_rows = 1;
    auto alone = generate(*m, {prompts[i]}, q);
    for (int64_t j = 0; j < p.n; ++j) {
      EXPECT_EQ(batched[i][size_t(j)].ids, alone[0][size_t(j)].ids) << "prompt " << i << " sample " << j;
      ASSERT_EQ(batched[i][size_t(j)].logprobs.size(), alone[0][size_t(j)].logprobs.size());
      for (size_t t = 0; t < alone[0][size_t(j)].logprobs.size(); ++t)
        EXPECT_NEAR(batched[i][size_t(j)].model_logprobs[t], alone[0][size_t(j)].model_logprobs[t], 1e-4);
    }
  }
}

TEST_P(GenerateArch, LogprobsEqualTeacherForcedRecompute) {
  auto m = tiny(GetParam());
  GenerateParams p;
  p.max_new_tokens = 16;
  p.n = 2;
  p.seed = 5;
  p.sampling.temperature = 0.7f;
  auto prompts = some_prompts();
  auto res = generate(*m, prompts, p);
  torch::NoGradGuard ng;
  for (size_t i = 0; i < prompts.size(); ++i)
    for (auto& g : res[i]) {
      std::vector<int64_t> seq = prompts[i];
      seq.insert(seq.end(), g.ids.begin(), g.ids.end());
      auto lp = sequence_logprobs(*m, torch::tensor(seq, torch::kLong).unsqueeze(0).to(device())).squeeze(0);
      auto logits = m->forward(torch::tensor(seq, torch::kLong).unsqueeze(0).to(device())).squeeze(0);
      for (size_t t = 0; t < g.ids.size(); ++t) {
        int64_t pos = int64_t(prompts[i].size() + t) - 1;
        EXPECT_NEAR(g.model_logprobs[t], lp[pos].item<float>(), 1e-4);
        // Sampling distribution: temperature-scaled softmax.
        float s = torch::log_softmax(logits[pos] / 0.7, -1)[g.ids[t]].item<float>();
        EXPECT_NEAR(g.logprobs[t], s, 1e-4);
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Archs, GenerateArch, ::testing::Values("gpt2", "llama"));

TEST(Generate, SameSeedSameSamplesDifferentSeedDifferent) {
  auto m = tiny("llama");
  GenerateParams p;
  p.max_new_tokens = 20;
  p.n = 4;
  p.seed = 1;
  auto a = generate(*m, some_prompts(), p);
  auto b = generate(*m, some_prompts(), p);
  p.seed = 2;
  auto c = generate(*m, some_prompts(), p);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) {
      EXPECT_EQ(a[i][j].ids, b[i][j].ids);
      differ += a[i][j].ids != c[i][j].ids;
    }
  EXPECT_GT(differ, 10);
  // Samples of one prompt differ from each other.
  EXPECT_NE(a[0][0].ids, a[0][1].ids);
}

TEST(Generate, StopsOnEosAndKeepsIt) {
  auto m = tiny("gpt2");
  GenerateParams p;
  p.max_new_tokens = 30;
  p.sampling.temperature = 0;
  auto free_run = generate(*m, {{3, 4, 5}}, p)[0][0];
  ASSERT_GE(free_run.ids.size(), 5u);
  p.eos_ids = {free_run.ids[4]};
  auto stopped = generate(*m, {{3, 4, 5}}, p)[0][0];
  // Stops at the first occurrence of that token.
  size_t first = size_t(std::find(free_run.ids.begin(), free_run.ids.end(), free_run.ids[4]) - free_run.ids.begin());
  EXPECT_EQ(stopped.ids.size(), first + 1);
  EXPECT_EQ(stopped.finish_reason, "eos");
  EXPECT_TRUE(stopped.finished());
}

TEST(Generate, StopStringsCutTheText) {
  auto m = tiny("gpt2");
  GenerateParams p;
  p.max_new_tokens = 30;
  p.sampling.temperature = 0;
  // A toy decoder: token i -> one letter.
  p.decode = [](const std::vector<int64_t>& ids) {
    std::string s;
    for (auto id : ids) s.push_back(char('a' + id % 26));
    return s;
  };
  auto free_run = generate(*m, {{3, 4, 5}}, p)[0][0];
  ASSERT_GE(free_run.text.size(), 6u);
  std::string stop = free_run.text.substr(3, 2);
  p.stop_strings = {stop};
  auto res = generate(*m, {{3, 4, 5}}, p)[0][0];
  EXPECT_EQ(res.finish_reason, "stop");
  size_t at = free_run.text.find(stop);
  EXPECT_EQ(res.text, free_run.text.substr(0, at));
  EXPECT_EQ(res.ids.size(), at + stop.size());
}

TEST(Generate, FinishedRowsLeaveTheBatch) {
  // Many rows finishing at different times exercises compaction; results equal one-by-one runs.
  auto m = tiny("llama");
  GenerateParams p;
  p.max_new_tokens = 25;
  p.n = 8;
  p.seed = 9;
  p.sampling.temperature = 1.5f;
  p.eos_ids = {1, 2, 3, 4, 5, 6, 7, 8};
  auto all = generate(*m, {{10, 11, 12}}, p);
  size_t lengths_seen = 0;
  std::set<size_t> lens;
  for (int64_t j = 0; j < p.n; ++j) {
    GenerateParams q = p;
    q.batch_rows = 1;
    auto one = generate(*m, {{10, 11, 12}}, q);
    EXPECT_EQ(all[0][size_t(j)].ids, one[0][size_t(j)].ids);
    lens.insert(all[0][size_t(j)].ids.size());
  }
  lengths_seen = lens.size();
  EXPECT_GT(lengths_seen, 2u);
}

TEST(Generate, PromptLongerThanContextIsAnError) {
  auto m = tiny("gpt2");
  GenerateParams p;
  std::vector<int64_t> long_prompt(size_t(m->config().n_ctx), 1);
  EXPECT_THROW(generate(*m, {long_prompt}, p), rlhf::Error);
  EXPECT_THROW(generate(*m, {{}}, p), rlhf::Error);
  EXPECT_THROW(generate(*m, {{1, 2, 1000}}, p), rlhf::Error);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  auto logits = torch::log(torch::tensor({0.5f, 0.3f, 0.15f, 0.05f})).unsqueeze(0);
  TopP(0.8f).apply(logits);
  EXPECT_FALSE(std::isinf(logits[0][0].item<float>()));
  EXPECT_FALSE(std::isinf(logits[0][1].item<float>()));
  EXPECT_TRUE(std::isinf(logits[0][2].item<float>()));
  EXPECT_TRUE(std::isinf(logits[0][3].item<float>()));
  auto l2 = torch::log(torch::tensor({0.5f, 0.3f, 0.15f, 0.05f})).unsqueeze(0);
  TopP(0.81f).apply(l2);
  EXPECT_FALSE(std::isinf(l2[0][2].item<float>()));
}

TEST(Sampler, TopKAndMinP) {
  auto logits = torch::tensor({1.0f, 3.0f, 2.0f, 0.0f}).unsqueeze(0);
  TopK(2).apply(logits);
  EXPECT_TRUE(std::isinf(logits[0][0].item<float>()));
  EXPECT_FALSE(std::isinf(logits[0][2].item<float>()));
  auto l2 = torch::log(torch::tensor({0.6f, 0.3f, 0.1f})).unsqueeze(0);
  MinP(0.4f).apply(l2);  // threshold 0.24
  EXPECT_FALSE(std::isinf(l2[0][1].item<float>()));
  EXPECT_TRUE(std::isinf(l2[0][2].item<float>()));
}

TEST(Sampler, InverseCdfFollowsTheDistribution) {
  // 4000 draws from [0.5, 0.3, 0.2] land in proportion.
  SamplingParams sp;
  SamplerChain chain(sp);
  const int n = 4000;
  auto logits = torch::log(torch::tensor({0.5f, 0.3f, 0.2f})).unsqueeze(0).repeat({n, 1});
  std::vector<double> u(n);
  for (int i = 0; i < n; ++i) u[size_t(i)] = counter_uniform(42, uint64_t(i));
  auto tokens = chain.sample(logits, torch::tensor(u, torch::kDouble), nullptr);
  auto counts = torch::bincount(tokens, {}, 3).to(torch::kDouble) / n;
  EXPECT_NEAR(counts[0].item<double>(), 0.5, 0.03);
  EXPECT_NEAR(counts[1].item<double>(), 0.3, 0.03);
  EXPECT_NEAR(counts[2].item<double>(), 0.2, 0.03);
}

}  // namespace
