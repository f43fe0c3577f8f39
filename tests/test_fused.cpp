// The fused CPU kernels (src/model/fused.cpp) against the libtorch ops they replace: token
// log-probabilities with entropy (values and gradients through both), and GELU (tanh), in fp32 and
// bf16, over vocabulary sizes that exercise the vector loops' tails.
#include <gtest/gtest.h>

#include "core/runtime.h"
#include "model/fused.h"
#include "model/layers.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "model/lora.h"

namespace rlhf {
namespace {

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.to(torch::kDouble), y = b.to(torch::kDouble);
  return ((x - y).abs() / (y.abs() + 1e-3)).max().item<double>();
}

TEST(Fused, TokenLogpMatchesLogSoftmax) {
  if (!fused_kernels_available()) GTEST_SKIP() << "no AVX-512: token_logp is the libtorch path itself";
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
    for (int64_t V : {5, 16, 50, 1003})
      for (double scale : {1.0, 1 / 0.7}) {
        torch::manual_seed(V);
        auto base = (torch::randn({3, 7, V}) * 4).to(dtype);
        auto targets = torch::randint(V, {3, 7}, torch::kLong);
        auto w1 = torch::randn({3, 7}), w2 = torch::randn({3, 7});
        auto a = base.clone().requires_grad_(), b = base.clone().requires_grad_();
        auto got = token_logp(a, targets, scale, true);
        auto want = detail::token_logp_reference(b, targets, scale, true);
        const std::string what = std::string(c10::toString(dtype)) + " V " + std::to_string(V);
        EXPECT_LT((got.logp - want.logp).abs().max().item<double>(), 2e-5) << what;
        EXPECT_LT((got.entropy - want.entropy).abs().max().item<double>(), 2e-5) << what;
        ((got.logp * w1).sum() + (got.entropy * w2).sum()).backward();
        ((want.logp * w1).sum() + (want.entropy * w2).sum()).backward();
        ASSERT_EQ(a.grad().scalar_type(), dtype);
        const double tol = dtype == torch::kFloat ? 1e-4 : 2e-2;  // bf16: both round fp32 gradients once
        EXPECT_LT(max_rel(a.grad(), b.grad()), tol) << what;
        // Gradient through the log-probabilities alone, entropy as a detached metric.
        a.mutable_grad() = torch::Tensor();
        b.mutable_grad() = torch::Tensor();
        auto g2 = token_logp(a, targets, scale, true, /*entropy_grad=*/false);
        EXPECT_FALSE(g2.entropy.requires_grad());
        EXPECT_FALSE(detail::token_logp_reference(b, targets, scale, true, false).entropy.requires_grad());
        (g2.logp * w1).sum().backward();
        (detail::token_logp_reference(b, targets, scale, false).logp * w1).sum().backward();
        EXPECT_LT(max_rel(a.grad(), b.grad()), tol) << what;
      }
}

TEST(Fused, TokenLogpEdgeCases) {
  if (!fused_kernels_available()) GTEST_SKIP() << "no AVX-512";
  // Large logits (a peaked distribution) stay finite and exact.
  auto x = torch::randn({4, 300}) * 60;
  auto t = torch::randint(300, {4}, torch::kLong);
  auto got = token_logp(x, t, 1.0, true), want = detail::token_logp_reference(x, t, 1.0, true);
  EXPECT_LT((got.logp - want.logp).abs().max().item<double>(), 1e-4);
  EXPECT_LT((got.entropy - want.entropy).abs().max().item<double>(), 1e-4);
  // A NaN in a row makes that row's results NaN, not a silently finite number.
  x[2][17] = std::numeric_limits<float>::quiet_NaN();
  auto n = token_logp(x, t, 1.0, true);
  EXPECT_TRUE(std::isnan(n.logp[2].item<float>()));
  EXPECT_TRUE(std::isnan(n.entropy[2].item<float>()));
  EXPECT_FALSE(std::isnan(n.logp[1].item<float>()));
  // A target outside the vocabulary is an error.
  t[0] = 300;
  EXPECT_THROW(token_logp(torch::randn({4, 300}), t), std::exception);
}

// The reference is libtorch's GELU in double precision: its fp32 GELU loses the small values of
// negative inputs to cancellation in 1 + tanh (the kernel computes sigmoid(2u), the same function
// without it), and libtorch 1.13's bf16 GELU rounds every intermediate to bf16 (gelu(-3.06) = 0
// instead of -0.0030); the kernel computes in fp32 and rounds once.
TEST(Fused, GeluMatchesTorch) {
  if (!fused_kernels_available()) GTEST_SKIP() << "no AVX-512: gelu_tanh is torch::gelu itself";
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
    for (int64_t n : {1, 15, 16, 33, 100000}) {
      torch::manual_seed(n);
      auto base = (torch::randn({n}) * 3).to(dtype);
      base[0] = n > 1 ? 12.0f : -0.25f;  // saturated and small inputs
      if (n > 2) base[1] = -12.0f;
      auto a = base.clone().requires_grad_(), b = base.to(torch::kDouble).requires_grad_();
      auto ya = gelu_tanh(a), yb = detail::gelu_tanh_reference(b);
      auto g = torch::randn({n}).to(dtype);
      ya.backward(g);
      yb.backward(g.to(torch::kDouble));
      const std::string what = std::string(c10::toString(dtype)) + " n " + std::to_string(n);
      ASSERT_EQ(a.grad().scalar_type(), dtype);
      auto err = [](const torch::Tensor& x, const torch::Tensor& ref) {  // relative to max(1, |ref|)
        return ((x.to(torch::kDouble) - ref.to(torch::kDouble)).abs() / (ref.to(torch::kDouble).abs() + 1)).max().item<double>();
      };
      if (dtype == torch::kFloat) {
        EXPECT_LT(err(ya, yb), 1e-6) << what;
        EXPECT_LT(err(a.grad(), b.grad()), 2e-6) << what;
      } else {  // rounded once: equal to the fp32 result rounded, or one bf16 step from it
        EXPECT_LT(err(ya, yb.to(dtype)), 8e-3) << what;
        EXPECT_LT(err(a.grad(), b.grad().to(dtype)), 8e-3) << what;
        // (below x = -5 even double's 1 + tanh cancels: the kernel's tiny values are the better ones)
        auto moderate = base.to(torch::kFloat).abs() < 5;
        EXPECT_GT((ya == yb.to(dtype)).masked_select(moderate).to(torch::kDouble).mean().item<double>(), 0.999) << what;
      }
    }
}


// Under bf16 autocast a LoRA module multiplies with a kept bf16 copy of its frozen weight: the same
// result as autocast's own cast, made again when the weight changes, and usable for training after
// it was first made inside InferenceMode (generation).
// The fp32 training path of an adapted Linear (LoraDelta in layers.cpp: the rank-r products in
// their fast layouts) gives the values and gradients of x W^T + b + s (x A^T) B^T computed plainly.
TEST(Fused, LoraDeltaMatchesTheComposition) {
  torch::manual_seed(4);
  Linear lin(24, 40, true);
  {
    torch::NoGradGuard ng;
    lin->weight.normal_(0, 0.2);
    lin->bias.normal_(0, 0.2);
  }
  lin->attach_lora(4, 8, 0.0, std::make_shared<LoraSwitch>());
  {
    torch::NoGradGuard ng;
    lin->lora_B->weight.normal_(0, 0.3);  // B starts at 0: make the adapter matter
  }
  lin->weight.set_requires_grad(false);
  lin->bias.set_requires_grad(false);
  for (bool x_grad : {true, false})
    for (auto shape : std::vector<std::vector<int64_t>>{{7, 24}, {2, 5, 24}}) {
      auto x = torch::randn(shape).requires_grad_(x_grad);
      auto out_shape = shape;
      out_shape.back() = 40;
      auto g = torch::randn(out_shape);
      auto A = lin->lora_A->weight, B = lin->lora_B->weight;
      for (auto* p : {&A, &B})
        if (p->grad().defined()) p->mutable_grad() = torch::Tensor();
      auto y = lin->forward(x);
      // The sum's inputs: the frozen product and the adapter op (not the two-Linear composition).
      bool took_op = false;
      for (const auto& e : y.grad_fn()->next_edges())
        if (e.function && e.function->name().find("LoraDelta") != std::string::npos) took_op = true;
      EXPECT_TRUE(took_op) << "the fp32 training path did not run the LoRA op";
      y.backward(g);
      auto gx = x_grad ? x.grad().clone() : torch::Tensor();
      auto gA = A.grad().clone(), gB = B.grad().clone();
      // The reference, on detached copies.
      auto xr = x.detach().clone().requires_grad_(x_grad);
      auto Ar = A.detach().clone().requires_grad_(true), Br = B.detach().clone().requires_grad_(true);
      auto yr = torch::matmul(xr, lin->weight.t()) + lin->bias +
                torch::matmul(torch::matmul(xr, Ar.t()), Br.t()) * lin->lora_scaling;
      yr.backward(g);
      EXPECT_TRUE(torch::allclose(y, yr, 1e-5, 1e-5)) << (y - yr).abs().max().item<double>();
      EXPECT_TRUE(torch::allclose(gA, Ar.grad(), 1e-4, 1e-5)) << (gA - Ar.grad()).abs().max().item<double>();
      EXPECT_TRUE(torch::allclose(gB, Br.grad(), 1e-4, 1e-5)) << (gB - Br.grad()).abs().max().item<double>();
      EXPECT_TRUE(gB.is_contiguous());
      if (x_grad) {
        EXPECT_TRUE(torch::allclose(gx, xr.grad(), 1e-4, 1e-5)) << (gx - xr.grad()).abs().max().item<double>();
      }
    }
}

TEST(Fused, FrozenLoraWeightCastFollowsTheWeight) {
  torch::manual_seed(0);
  Linear lin(24, 40, true);
  torch::nn::init::normal_(lin->weight, 0, 0.2);
  auto sw = std::make_shared<LoraSwitch>();
  lin->attach_lora(4, 8, 0.0, sw);
  EXPECT_TRUE(sw->attached);
  torch::nn::init::normal_(lin->lora_B->weight, 0, 0.2);
  lin->weight.set_requires_grad(false);
  lin->bias.set_requires_grad(false);
  auto x = torch::randn({5, 24});
  auto expect = [&] {
    ComputeScope cs(true);
    auto w = lin->weight.to(torch::kBFloat16);
    return (torch::linear(x, w, lin->bias) + lin->lora_B(lin->lora_A(x)) * lin->lora_scaling).to(torch::kFloat);
  };
  {
    c10::InferenceMode im;
    ComputeScope cs(true);
    EXPECT_TRUE(torch::equal(lin->forward(x).to(torch::kFloat), expect()));
  }
  for (int step = 0; step < 2; ++step) {
    auto xg = x.clone().requires_grad_();
    torch::Tensor y;
    {
      ComputeScope cs(true);
      y = lin->forward(xg);
    }
    EXPECT_TRUE(torch::equal(y.to(torch::kFloat), expect())) << step;
    y.to(torch::kFloat).sum().backward();  // the cached copy made under InferenceMode is saved for backward
    EXPECT_TRUE(xg.grad().defined());
    torch::NoGradGuard ng;
    lin->weight.add_(0.5);  // in place: the version counter moves and the copy is made again
  }
  torch::NoGradGuard ng;
  lin->weight.set_data(torch::randn({40, 24}));  // new storage
  ComputeScope cs(true);
  EXPECT_TRUE(torch::equal(lin->forward(x).to(torch::kFloat), expect()));
}

// The tied output head of a model with adapters takes the same kept copy (the embedding is frozen
// there too), follows changes to it, and gives autocast's logits; merging clears the model's flag.
TEST(Fused, FrozenLoraHeadCastFollowsTheWeight) {
  for (const char* arch : {"gpt2", "llama"}) {
    auto m = make_model(preset_config(arch, "tiny"), 1);
    LoraConfig lc;
    lc.r = 4;
    attach_lora(*m, lc, 2);
    ASSERT_TRUE(m->lora_switch()->attached);
    auto w = m->lm_head_weight();
    ASSERT_FALSE(w.requires_grad());
    auto h = torch::randn({2, 3, m->config().n_embd});
    for (int step = 0; step < 2; ++step) {
      torch::Tensor got, want;
      {
        c10::InferenceMode im;
        ComputeScope cs(true);
        got = m->head(h).to(torch::kFloat);
        want = torch::matmul(h.to(torch::kBFloat16), w.to(torch::kBFloat16).t()).to(torch::kFloat);
      }
      EXPECT_TRUE(torch::allclose(got, want, 1e-2, 1e-2)) << arch << " step " << step;
      torch::NoGradGuard ng;
      w.mul_(-1);  // in place: the next call must see the negated head
    }
    merge_lora(*m);
    EXPECT_FALSE(m->lora_switch()->attached);
  }
}
}  // namespace
}  // namespace rlhf
