// Preference losses against hand-computed values and the independent Python reference
// (tests/ref/ref_losses.py): values and gradients of every DPO-family loss, Bradley-Terry with
// margins and soft labels, reward centering, KTO; and the ranking expansion.
#include <gtest/gtest.h>

#include <cmath>

#include "align/losses.h"
#include "data/preference_data.h"
#include "io/json.h"
#include "test_util.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

torch::Tensor vec(const Json& j) { return torch::tensor(j.get<std::vector<double>>(), torch::kDouble); }

const Json& reference() {
  static Json j = [] {
    TempDir tmp;
    auto out = (tmp / "losses.json").string();
    auto r = run_command(std::string(RLHF_REF_PYTHON) + " " + std::string(RLHF_SOURCE_DIR) + "/tests/ref/ref_losses.py --out " + out);
    if (r.exit_code != 0) throw std::runtime_error("tests/ref/ref_losses.py failed: " + r.err);
    return read_json_file(out);
  }();
  return j;
}

void expect_close(const torch::Tensor& got, const Json& want, double tol, const std::string& what) {
  auto w = vec(want);
  ASSERT_EQ(got.numel(), w.numel()) << what;
  double d = (got.to(torch::kDouble) - w).abs().max().item<double>();
  EXPECT_LT(d, tol) << what << ": max abs diff " << d;
}

TEST(Losses, DpoFamilyMatchesReference) {
  const Json& ref = reference();
  const Json& in = ref["inputs"];
  for (const Json& c : ref["dpo"]) {
    double s = c["scale"].get<double>();
    auto pc = (vec(in["pc"]) * s).requires_grad_(), pr = (vec(in["pr"]) * s).requires_grad_();
    auto rc = (vec(in["rc"]) * s).requires_grad_(), rr = (vec(in["rr"]) * s).requires_grad_();
    DpoParams p;
    p.beta = c["beta"].get<double>();
    p.label_smoothing = c["label_smoothing"].get<double>();
    p.simpo_gamma = c["gamma"].get<double>();
    auto kind = parse_dpo_loss(c["kind"].get<std::string>());
    auto loss = dpo_loss(kind, p, pc, pr, rc, rr);
    loss.sum().backward();
    std::string what = c["kind"].get<std::string>() + " beta " + std::to_string(p.beta);
    expect_close(loss.detach(), c["loss"], 1e-10, what + " loss");
    expect_close(pc.grad(), c["grads"][0], 1e-10, what + " d/dpc");
    expect_close(pr.grad(), c["grads"][1], 1e-10, what + " d/dpr");
    if (kind != DpoLoss::Simpo) {
      expect_close(rc.grad(), c["grads"][2], 1e-10, what + " d/drc");
      expect_close(rr.grad(), c["grads"][3], 1e-10, what + " d/drr");
    }
  }
}

TEST(Losses, DpoHandComputed) {
  // One pair: policy log-ratio 2, reference log-ratio 1 -> logits 1.
  auto t = [](double v) { return torch::tensor({v}, torch::kDouble); };
  DpoParams p;
  p.beta = 0.5;
  EXPECT_NEAR(dpo_loss(DpoLoss::Sigmoid, p, t(-1), t(-3), t(-2), t(-3)).item<double>(), std::log1p(std::exp(-0.5)), 1e-12);
  EXPECT_NEAR(dpo_loss(DpoLoss::Hinge, p, t(-1), t(-3), t(-2), t(-3)).item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(dpo_loss(DpoLoss::Ipo, p, t(-1), t(-3), t(-2), t(-3)).item<double>(), 0.0, 1e-12);  // (1 - 1/(2*0.5))^2
  p.simpo_gamma = 0.25;
  EXPECT_NEAR(dpo_loss(DpoLoss::Simpo, p, t(-1), t(-3), t(0), t(0)).item<double>(), std::log1p(std::exp(-0.75)), 1e-12);
  // Soft labels per pair (a judge's probabilities): -q log s(b x) - (1 - q) log s(-b x); NaN = hard.
  auto two = [](double a, double b) { return torch::tensor({a, b}, torch::kDouble); };
  auto soft = dpo_loss(DpoLoss::Sigmoid, p, two(-1, -1), two(-3, -3), two(-2, -2), two(-3, -3),
                       torch::tensor({0.7f, std::nanf("")}));
  EXPECT_NEAR(soft[0].item<double>(), 0.7 * std::log1p(std::exp(-0.5)) + 0.3 * std::log1p(std::exp(0.5)), 1e-6);
  EXPECT_NEAR(soft[1].item<double>(), std::log1p(std::exp(-0.5)), 1e-6);
}

TEST(Losses, BradleyTerryMatchesReference) {
  const Json& c = reference()["bt"][0];
  const Json& in = reference()["inputs"];
  auto rc = (vec(in["pc"]) / 10).requires_grad_(), rr = (vec(in["pr"]) / 10).requires_grad_();
  std::vector<double> p;
  for (auto& v : c["p_chosen"]) p.push_back(v.is_null() ? NAN : v.get<double>());
  auto loss = bradley_terry_loss(rc, rr, vec(c["margin"]), torch::tensor(p, torch::kDouble));
  loss.sum().backward();
  expect_close(loss.detach(), c["loss"], 1e-10, "bt loss");
  expect_close(rc.grad(), c["grads"][0], 1e-10, "bt d/drc");
  expect_close(rr.grad(), c["grads"][1], 1e-10, "bt d/drr");
  EXPECT_FALSE(torch::isnan(rc.grad()).any().item<bool>());
  // Hand-computed: r_c - r_r = 1, margin 0, hard -> log(1 + e^-1); p = 0.5 -> log 2 + 1/2 ... symmetric: 0.5*(sp(-1)+sp(1)).
  auto one = torch::tensor({1.0}, torch::kDouble), zero = torch::tensor({0.0}, torch::kDouble);
  EXPECT_NEAR(bradley_terry_loss(one, zero).item<double>(), std::log1p(std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(bradley_terry_loss(one, zero, {}, torch::tensor({0.5}, torch::kDouble)).item<double>(),
              0.5 * (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(1.0))), 1e-12);
  EXPECT_NEAR(bradley_terry_loss(one, zero, torch::tensor({1.0}, torch::kDouble)).item<double>(), std::log(2.0), 1e-12);
  const Json& cen = reference()["centering"];
  auto a = (vec(in["pc"]) / 10).requires_grad_(), b = (vec(in["pr"]) / 10).requires_grad_();
  auto cl = reward_centering(a, b, cen["coef"].get<double>());
  cl.sum().backward();
  expect_close(cl.detach(), cen["loss"], 1e-10, "centering");
  expect_close(a.grad(), cen["grads"][0], 1e-10, "centering grad");
}

TEST(Losses, KtoMatchesReference) {
  for (const Json& c : reference()["kto"]) {
    auto lr = vec(c["logratio"]).requires_grad_();
    auto loss = kto_loss(lr, vec(c["label"]), torch::tensor(c["z0"].get<double>(), torch::kDouble), c["beta"].get<double>(),
                         c["wd"].get<double>(), c["wu"].get<double>());
    loss.sum().backward();
    expect_close(loss.detach(), c["loss"], 1e-10, "kto loss");
    expect_close(lr.grad(), c["grads"][0], 1e-10, "kto grad");
  }
}

TEST(Losses, RankingOfFourGivesSixPairs) {
  // ranks: response 2 best, then 0, then 3, then 1.
  auto pairs = pairs_from_ranks({1, 3, 0, 2});
  ASSERT_EQ(pairs.size(), 6u);
  std::set<std::pair<int, int>> got;
  for (auto& p : pairs) got.insert({p.better, p.worse});
  std::set<std::pair<int, int>> want = {{2, 0}, {2, 3}, {2, 1}, {0, 3}, {0, 1}, {3, 1}};
  EXPECT_EQ(got, want);
  // Ties give no pair between the tied responses.
  EXPECT_EQ(pairs_from_ranks({0, 0, 1}).size(), 2u);
}

}  // namespace
