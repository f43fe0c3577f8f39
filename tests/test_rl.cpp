// RL fine-tuning: the tensor math against hand-computed values, and PPO / GRPO / RLOO raising a
// programmatic reward on a tiny model with bounded KL, beta controlling the KL reached, exact resume
// after kill -9, and bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <thread>

#include "align/rl.h"
#include "lm_fixture.h"
#include "test_tensor_util.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/reward.h"
#include "train/rl.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

torch::Tensor T(std::vector<double> v, int64_t rows = 1) {
  return torch::tensor(v, torch::kDouble).view({rows, -1});
}

TEST(RlMath, MaskedStatisticsAndWhitening) {
  auto x = T({1, 2, 3, 100});
  auto m = T({1, 1, 1, 0}).to(torch::kBool);
  EXPECT_DOUBLE_EQ(masked_mean(x, m).item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(masked_var(x, m).item<double>(), 1.0);  // unbiased: ((1)^2 + 0 + 1) / 2
  auto w = masked_whiten(x, m);
  EXPECT_NEAR(w[0][0].item<double>(), -1.0 / std::sqrt(1 + 1e-8), 1e-9);
  EXPECT_NEAR(w[0][2].item<double>(), 1.0 / std::sqrt(1 + 1e-8), 1e-9);
  EXPECT_EQ(w[0][3].item<double>(), 0.0);
  auto w2 = masked_whiten(x, m, /*shift_mean=*/false);
  EXPECT_NEAR(w2[0][1].item<double>(), 2.0, 1e-9);
}

TEST(RlMath, KlEstimators) {
  auto logp = T({-1.0, -2.0}), ref = T({-1.5, -1.0});
  auto k1 = kl_estimate(logp, ref, KlEstimator::K1);
  EXPECT_DOUBLE_EQ(k1[0][0].item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(k1[0][1].item<double>(), -1.0);
  auto k3 = kl_estimate(logp, ref, KlEstimator::K3);
  EXPECT_NEAR(k3[0][0].item<double>(), std::exp(-0.5) - 1 + 0.5, 1e-12);
  EXPECT_NEAR(k3[0][1].item<double>(), std::exp(1.0) - 1 - 1.0, 1e-12);
  EXPECT_GE(k3.min().item<double>(), 0.0);
}

TEST(RlMath, GaeWithMasks) {
  // Row 0: three real tokens; row 1: two (the third is padding and must not leak in).
  auto r = T({0, 0, 1, 0.5, 2, 99}, 2), v = T({0.5, 0.4, 0.3, 1.0, 0.2, 99}, 2);
  auto m = T({1, 1, 1, 1, 1, 0}, 2).to(torch::kBool);
  double g = 0.9, l = 0.8;
  auto [adv, ret] = gae(r, v, m, g, l);
  // Row 0 by hand, backwards.
  double d2 = 1 - 0.3, a2 = d2;
  double d1 = 0 + g * 0.3 - 0.4, a1 = d1 + g * l * a2;
  double d0 = 0 + g * 0.4 - 0.5, a0 = d0 + g * l * a1;
  EXPECT_NEAR(adv[0][2].item<double>(), a2, 1e-12);
  EXPECT_NEAR(adv[0][1].item<double>(), a1, 1e-12);
  EXPECT_NEAR(adv[0][0].item<double>(), a0, 1e-12);
  EXPECT_NEAR(ret[0][0].item<double>(), a0 + 0.5, 1e-12);
  // Row 1: the padded position contributes nothing.
  double e1 = 2 - 0.2, e0 = 0.5 + g * 0.2 - 1.0 + g * l * e1;
  EXPECT_NEAR(adv[1][1].item<double>(), e1, 1e-12);
  EXPECT_NEAR(adv[1][0].item<double>(), e0, 1e-12);
  EXPECT_EQ(adv[1][2].item<double>(), 0.0);
}

TEST(RlMath, ClippedPolicyAndValueLosses) {
  auto old = T({0.0, 0.0, 0.0}), logp = T({std::log(1.5), std::log(0.5), std::log(1.1)}), adv = T({1.0, -1.0, 2.0});
  auto m = T({1, 1, 1}).to(torch::kBool);
  auto pl = ppo_policy_loss(logp, old, adv, m, 0.2);
  // token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(0.5, 0.8) = 0.8 (clipped); token 2: max(-2.2, -2.2).
  EXPECT_NEAR(pl.loss.item<double>(), (-1.2 + 0.8 - 2.2) / 3, 1e-9);
  EXPECT_NEAR(pl.clipfrac.item<double>(), 2.0 / 3, 1e-9);
  EXPECT_NEAR(pl.approxkl.item<double>(), 0.5 * (std::pow(std::log(1.5), 2) + std::pow(std::log(0.5), 2) + std::pow(std::log(1.1), 2)) / 3, 1e-9);
  auto v = T({1.0, 0.0}), oldv = T({0.5, 0.0}), ret = T({2.0, 1.0});
  auto vl = ppo_value_loss(v, oldv, ret, T({1, 1}).to(torch::kBool), 0.2);
  // token 0: unclipped (1-2)^2 = 1, clipped (0.7-2)^2 = 1.69 -> 1.69; token 1: 1 and 1.
  EXPECT_NEAR(vl.loss.item<double>(), 0.5 * (1.69 + 1.0) / 2, 1e-9);
  EXPECT_NEAR(vl.clipfrac.item<double>(), 0.5, 1e-9);
}

TEST(RlMath, AdaptiveKlController) {
  AdaptiveKlController c(0.1, 6.0, 100);
  c.update(12.0, 10);  // error clipped at +0.2 -> x (1 + 0.2 * 10 / 100)
  EXPECT_NEAR(c.value, 0.1 * 1.02, 1e-12);
  c.update(3.0, 50);   // error -0.5 clipped to -0.2 -> x (1 - 0.2 * 0.5)
  EXPECT_NEAR(c.value, 0.1 * 1.02 * 0.9, 1e-12);
  c.update(6.6, 100);  // error 0.1 -> x 1.1
  EXPECT_NEAR(c.value, 0.1 * 1.02 * 0.9 * 1.1, 1e-12);
}

TEST(RlMath, GroupBaselines) {
  auto s = torch::tensor({1.0, 2.0, 3.0, 10.0, 10.0, 16.0}, torch::kDouble);
  auto r = rloo_advantages(s, 3);
  EXPECT_NEAR(r[0].item<double>(), 1 - 2.5, 1e-12);
  EXPECT_NEAR(r[2].item<double>(), 3 - 1.5, 1e-12);
  EXPECT_NEAR(r[5].item<double>(), 16 - 10, 1e-12);
  auto g = grpo_advantages(s, 3);
  EXPECT_NEAR(g[0].item<double>(), (1 - 2) / (1 + 1e-4), 1e-9);
  EXPECT_NEAR(g[5].item<double>(), (16 - 12) / (std::sqrt(12.0) + 1e-4), 1e-9);
  auto g2 = grpo_advantages(s, 3, /*scale_by_std=*/false);
  EXPECT_NEAR(g2[3].item<double>(), -2.0, 1e-12);
}

// ---- training on a tiny model ---------------------------------------------------------------------------

// Reward: up to three letters 'o' in the response (a property the policy can learn token-wise, and
// that saturates, so collapsing onto one token earns nothing beyond what the KL leash allows).
std::vector<double> letter_o(const std::vector<std::string>&, const std::vector<std::string>& responses) {
  std::vector<double> s;
  for (auto& r : responses) {
    double n = 0;
    for (char c : r) n += c == 'o';
    s.push_back(std::min(1.0, n / 3.0));
  }
  return s;
}

double mean_of(const std::vector<Json>& rows, const char* key, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += rows[i][key].get<double>();
  return s / double(to - from);
}

class RlTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tiny_lm(tmp / "base", "llama", 3, 64);
    std::ofstream f(tmp / "prompts.jsonl");
    for (int i = 0; i < 16; ++i) f << Json({{"prompt", "What is " + std::to_string(i % 10) + " plus 1?"}}).dump() << "\n";
  }
  RlConfig config(const std::string& algo, const std::string& out, double beta) {
    RlConfig c;
    c.algo = algo;
    c.policy = (tmp / "base").string();
    c.prompts = (tmp / "prompts.jsonl").string();
    c.out = (tmp / out).string();
    c.reward_fn = letter_o;
    c.rollout_batch = 8;
    c.group = 4;
    c.max_new_tokens = 12;
    c.iterations = 40;
    c.kl_coef = beta;
    c.adam.lr = 3e-3;
    c.schedule.type = "constant";
    c.shared_value = true;
    c.ppo_epochs = algo == "ppo" ? 2 : 1;
    c.mini_batches = 2;
    c.sample_every = 0;
    return c;
  }
  TempDir tmp;
};

TEST_F(RlTrainTest, EachAlgorithmRaisesTheRewardWithBoundedKl) {
  for (std::string algo : {"ppo", "grpo", "rloo"}) {
    auto c = config(algo, algo, algo == "ppo" ? 0.03 : algo == "rloo" ? 0.05 : 0.1);
    run_rl(c);
    auto rows = read_metrics(c.out);
    ASSERT_EQ(rows.size(), 40u) << algo;
    double before = mean_of(rows, "objective/scores", 0, 5), after = mean_of(rows, "objective/scores", 35, 40);
    EXPECT_GT(after, before + 0.25) << algo << ": score " << before << " -> " << after;
    double kl = mean_of(rows, "objective/kl", 35, 40);
    EXPECT_TRUE(std::isfinite(kl)) << algo;
    // Collapsing onto one token would cost ~12 x log(vocab) = 68 nats; the leash keeps it far below.
    EXPECT_LT(kl, 30.0) << algo << ": KL ran away (" << kl << ")";
    std::printf("%s: score %.3f -> %.3f, kl %.2f\n", algo.c_str(), before, after, kl);
    // The log-probs recorded while sampling equal the teacher-forced ones before the first update.
    EXPECT_NEAR(rows[0]["val/first_ratio"].get<double>(), 1.0, 1e-4) << algo;
  }
}

// With LoRA the rollout (eval mode) and the update (train mode) see the same adapters: no dropout
// in RL by default, so the first mini-batch's ratio is 1 in every iteration, also once the adapters
// have moved; an explicit --lora-dropout still applies (and then the ratio drifts from 1).
TEST_F(RlTrainTest, LoraKeepsTheFirstRatioAtOne) {
  // Four PPO iterations with LoRA at a learning rate that moves the adapters; the first mini-batch's
  // ratio in each iteration.
  auto first_ratios = [&](const std::string& out, std::optional<double> dropout) {
    auto c = config("ppo", out, 0.05);
    c.iterations = 4;
    c.use_lora = true;
    c.lora.r = 4;
    c.lora.alpha = 8;
    c.adam.lr = 3e-2;
    EXPECT_EQ(c.lora.dropout, 0.0) << "RL's default LoRA dropout";
    if (dropout) c.lora.dropout = *dropout;
    run_rl(c);
    std::vector<double> r;
    for (const auto& row : read_metrics(c.out)) r.push_back(row["val/first_ratio"].get<double>());
    return r;
  };
  auto plain = first_ratios("lora", std::nullopt);
  ASSERT_EQ(plain.size(), 4u);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_NEAR(plain[i], 1.0, 1e-5) << "iteration " << i + 1;
  double drift = 0;
  for (double r : first_ratios("lora_dropout", 0.5)) drift = std::max(drift, std::abs(r - 1.0));
  EXPECT_GT(drift, 1e-4) << "dropout 0.5 on moved adapters should change the update's log-probs";
}

// Gradient checkpointing of the policy (and its value head) changes memory, not the updates: three
// PPO iterations with and without it log the same scores, KL and losses.
TEST_F(RlTrainTest, GradientCheckpointingGivesTheSameIterations) {
  auto plain = config("ppo", "plain", 0.05), ckpt = config("ppo", "ckpt", 0.05);
  plain.iterations = ckpt.iterations = 3;
  ckpt.gradient_checkpointing = true;
  run_rl(plain);
  run_rl(ckpt);
  auto a = read_metrics(plain.out), b = read_metrics(ckpt.out);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* key : {"objective/scores", "objective/kl", "loss/policy_avg", "loss/value_avg"})
      EXPECT_NEAR(a[i][key].get<double>(), b[i][key].get<double>(), 1e-4 * std::max(1.0, std::abs(a[i][key].get<double>())))
          << key << ", iteration " << i + 1;
}

TEST_F(RlTrainTest, LargerBetaKeepsThePolicyCloser) {
  auto lo = config("rloo", "lo", 0.02), hi = config("rloo", "hi", 0.5);
  run_rl(lo);
  run_rl(hi);
  double kl_lo = mean_of(read_metrics(lo.out), "objective/kl", 30, 40), kl_hi = mean_of(read_metrics(hi.out), "objective/kl", 30, 40);
  EXPECT_LT(kl_hi, kl_lo) << "beta 1.0 reached KL " << kl_hi << ", beta 0.01 reached " << kl_lo;
}

TEST_F(RlTrainTest, PpoWithACriticFromTheRewardModelResumesExactlyAfterKillNine) {
  // A tiny reward model (prefers answers to fox stories) to start the critic from.
  {
    std::ofstream f(tmp / "pairs.jsonl");
    for (int i = 0; i < 32; ++i)
      f << Json({{"prompt", "What is 1 plus 2?"}, {"chosen", " The answer is 3."}, {"rejected", " The quick brown fox."}}).dump()
        << "\n";
  }
  RewardConfig rc;
  rc.model = (tmp / "base").string();
  rc.data = (tmp / "pairs.jsonl").string();
  rc.train.out = (tmp / "rm").string();
  rc.train.max_steps = 4;
  rc.train.adam.lr = 1e-3;
  run_reward(rc);
  auto bin = rlhf_bin();
  std::string common = " ppo --policy " + (tmp / "base").string() + " --reward " + (tmp / "rm").string() + " --prompts " +
                       (tmp / "prompts.jsonl").string() + " --iterations 12 --rollout-batch 4 --max-new-tokens 8 " +
                       "--save-steps 2 --lr 1e-3 --threads 1 -q";
  auto full = run_command(bin + common + " --out " + (tmp / "full").string());
  ASSERT_EQ(full.exit_code, 0) << full.err;
  std::string out = (tmp / "killed").string();
  bool killed = run_and_kill_when(bin + common + " --out " + out, fs::path(out) / "checkpoints" / "step-000004");
  ASSERT_TRUE(killed) << "the run never wrote a checkpoint";
  ASSERT_FALSE(fs::exists(fs::path(out) / "model.safetensors")) << "finished before the kill";
  // The newest checkpoint's critic is cut short as a crash of the disk might leave it: --resume falls
  // back to the checkpoint before it and still ends where the uninterrupted run ended (issue 15).
  CheckpointManager ck(out, 2);
  auto all = ck.complete();
  ASSERT_GE(all.size(), 2u);
  write_bytes(all[0] / "value" / "model.safetensors", read_bytes(all[0] / "value" / "model.safetensors").substr(0, 100));
  auto resumed = run_command(bin + common + " --out " + out + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("falling back"), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.err.find(all[1].filename().string()), std::string::npos) << resumed.err;
  auto a = read_metrics(tmp / "full"), b = read_metrics(out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* k : {"objective/scores", "objective/kl", "loss/policy_avg", "loss/value_avg", "policy/approxkl_avg"})
      EXPECT_EQ(a[i][k], b[i][k]) << k << " at iteration " << i + 1;
  EXPECT_TRUE(read_bytes(tmp / "full" / "model.safetensors") == read_bytes(fs::path(out) / "model.safetensors"));
  EXPECT_TRUE(read_bytes(tmp / "full" / "value" / "model.safetensors") == read_bytes(fs::path(out) / "value" / "model.safetensors"));
}

// --ref-model: the KL is measured against that model, not against the starting policy. Before the
// first update the policy is the starting model, so the k1 KL against itself is 0 (up to rounding), and
// against another model (same tokenizer, other weights) clearly not; a reference with another
// vocabulary is refused.
TEST_F(RlTrainTest, RefModelIsTheKlReference) {
  make_tiny_lm(tmp / "other", "llama", 7, 64);
  auto first_kl = [&](const std::string& out, const std::string& ref) {
    auto c = config("rloo", out, 0.05);
    c.iterations = 1;
    c.ref_model = ref;
    run_rl(c);
    return read_metrics(c.out).at(0)["objective/kl"].get<double>();
  };
  EXPECT_NEAR(first_kl("self", ""), 0.0, 1e-4);  // sampled vs teacher-forced log-probs: rounding only
  EXPECT_NEAR(first_kl("self_explicit", (tmp / "base").string()), 0.0, 1e-4);
  double other = first_kl("other_ref", (tmp / "other").string());
  EXPECT_GT(other, 0.1) << "the KL to a differently initialised reference should be clearly above 0";

  // A model of another architecture with the same vocabulary is a valid reference; one whose
  // vocabulary differs is refused with a message that says so.
  make_tiny_lm(tmp / "gpt2", "gpt2", 1, 64);
  EXPECT_GT(first_kl("gpt2_ref", (tmp / "gpt2").string()), 0.1);
  {
    ModelConfig big = preset_config("llama", "tiny");
    Json j = big.to_json();
    j["vocab_size"] = 400;
    save_model(*make_model(ModelConfig::from_json(j, "wide vocab"), 3), tmp / "wide");
  }
  try {
    first_kl("bad_ref", (tmp / "wide").string());
    ADD_FAILURE() << "a reference with another vocabulary was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
}

TEST_F(RlTrainTest, BadInput) {
  auto c = config("grpo", "bad", 0.05);
  write_text_file(tmp / "empty.jsonl", "");
  c.prompts = (tmp / "empty.jsonl").string();
  expect_error([&] { run_rl(c); }, {"empty.jsonl", "empty"});
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "The quick brown fox jumps over the lazy dog. ";
  write_text_file(tmp / "long.jsonl", Json({{"prompt", long_text}}).dump() + "\n");
  c.prompts = (tmp / "long.jsonl").string();
  expect_error([&] { run_rl(c); }, {"long.jsonl:1", "context"});
  c = config("grpo", "bad", 0.05);
  c.group = 1;
  expect_error([&] { run_rl(c); }, {"group"});
}

}  // namespace
