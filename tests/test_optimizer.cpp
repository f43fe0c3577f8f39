// rlhf::AdamW's fused CPU update and the gradient norm behind clipping (src/train/optimizer.cpp):
// checked against libtorch's own torch::optim::AdamW (separate tensor operations), against double
// precision, and across the vectorised / portable loops and thread counts.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

namespace rlhf {
namespace {

// Sizes that cover the vector tail, one thread's block and several threads.
const std::vector<int64_t> kSizes = {1, 17, 4096 + 3, 70001};

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> ps;
  for (int64_t n : kSizes) ps.push_back(torch::randn({n}).requires_grad_(true));
  ps.push_back(torch::randn({33, 65}).requires_grad_(true));  // a matrix
  return ps;
}

void set_grads(std::vector<torch::Tensor>& ps, int step) {
  torch::manual_seed(100 + step);
  for (auto& p : ps) p.mutable_grad() = torch::randn(p.sizes()) * (step % 2 ? 1e-3 : 2.0);
}

TEST(Optimizer, FusedAdamWMatchesTorchAdamW) {
  for (double wd : {0.0, 0.1})
    for (double scale : {1.0, 0.37}) {
      auto ours = make_params(1), ref = make_params(1);
      std::vector<std::pair<std::string, torch::Tensor>> named;
      for (size_t i = 0; i < ours.size(); ++i) named.emplace_back(std::to_string(i).append(".weight"), ours[i]);
      AdamWConfig c;
      c.lr = 3e-2;
      c.weight_decay = wd;
      AdamW opt(named, c, /*decay_all=*/true);
      torch::optim::AdamW topt(ref, torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(wd));
      for (int step = 0; step < 6; ++step) {
        const double lr = c.lr * (1.0 - 0.1 * step);  // a schedule: the lr changes between steps
        static_cast<torch::optim::AdamWOptions&>(topt.param_groups()[0].options()).lr(lr);
        set_grads(ours, step);
        set_grads(ref, step);
        for (auto& r : ref) r.mutable_grad().mul_(scale);
        opt.step(lr, scale);
        topt.step();
      }
      for (size_t i = 0; i < ours.size(); ++i) {
        EXPECT_TRUE(torch::allclose(ours[i], ref[i], 1e-5, 1e-6))
            << "param " << i << " wd " << wd << " scale " << scale << ": max diff "
            << (ours[i] - ref[i]).abs().max().item<double>();
        EXPECT_FALSE(torch::equal(ours[i], make_params(1)[i])) << "param " << i << " did not move";
      }
    }
}

TEST(Optimizer, FusedAdamWSameBitsOnEveryPath) {
  detail::AdamwScalars s;
  s.grad_scale = 0.5f;
  s.beta1 = 0.9f;
  s.one_minus_beta1 = 0.1f;
  s.beta2 = 0.999f;
  s.one_minus_beta2 = 0.001f;
  s.bc2_sqrt = 0.0447f;
  s.eps = 1e-8f;
  s.decay = 0.999f;
  s.neg_step_size = -1e-3f;
  for (int64_t n : kSizes) {
    torch::manual_seed(n);
    const auto p0 = torch::randn({n}), g = torch::randn({n}), m0 = torch::randn({n}) * 0.1, v0 = torch::rand({n});
    // Element by element in float, the definition the kernels implement.
    auto pw = p0.clone(), mw = m0.clone(), vw = v0.clone();
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i].item<float>() * s.grad_scale;
      const float mi = s.beta1 * mw[i].item<float>() + s.one_minus_beta1 * gi;
      const float vi = s.beta2 * vw[i].item<float>() + s.one_minus_beta2 * (gi * gi);
      const float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
      mw[i] = mi;
      vw[i] = vi;
      pw[i] = pw[i].item<float>() * s.decay + s.neg_step_size * (mi / denom);
    }
    for (bool vectorised : {false, true})
      for (int threads : {1, 2}) {
        at::set_num_threads(threads);
        auto p = p0.clone(), m = m0.clone(), v = v0.clone();
        detail::adamw_update(p, g, m, v, s, vectorised);
        const bool same = torch::equal(p, pw) && torch::equal(m, mw) && torch::equal(v, vw);
        // The compiler may contract the scalar reference into fused multiply-adds where the target has
        // them by default; the kernels' own loops never do, so compare bits only on x86-64.
#if defined(__x86_64__)
        EXPECT_TRUE(same) << n << " elements, vectorised " << vectorised << ", " << threads << " threads";
#else
        EXPECT_TRUE(torch::allclose(p, pw, 1e-6, 1e-7)) << n << " elements";
#endif
      }
    at::set_num_threads(2);
  }
}

TEST(Optimizer, GradNormIsExactAndThreadIndependent) {
  torch::manual_seed(3);
  auto a = torch::randn({70001}).requires_grad_(true), b = torch::randn({5, 7}).requires_grad_(true),
       none = torch::randn({3}).requires_grad_(true);
  a.mutable_grad() = torch::randn({70001}) * 1e3;
  b.mutable_grad() = torch::randn({5, 7}) * 1e-4;
  const double want = std::sqrt((a.grad().to(torch::kDouble).pow(2).sum() + b.grad().to(torch::kDouble).pow(2).sum())
                                    .item<double>());
  std::vector<double> got;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    got.push_back(grad_norm({a, b, none}));
  }
  at::set_num_threads(2);
  EXPECT_NEAR(got[0], want, want * 1e-13);
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(got[0], got[2]);
  for (bool vectorised : {false, true})
    EXPECT_NEAR(detail::sum_squares(a.grad(), vectorised), a.grad().to(torch::kDouble).pow(2).sum().item<double>(),
                1e-9 * want * want);
  // A non-contiguous gradient takes the general path and gives the same norm.
  auto t = torch::randn({4, 6}).requires_grad_(true);
  t.mutable_grad() = torch::randn({6, 4}).t();
  EXPECT_NEAR(grad_norm({t}), t.grad().to(torch::kDouble).norm().item<double>(), 1e-12);
  EXPECT_EQ(grad_norm({none}), 0.0);
  a.mutable_grad()[5] = std::nan("");
  EXPECT_TRUE(std::isnan(grad_norm({a, b})));
}

TEST(Optimizer, ClipScaleAsTorchClipGradNorm) {
  EXPECT_DOUBLE_EQ(clip_scale(4.0, 1.0), 1.0 / (4.0 + 1e-6));
  EXPECT_EQ(clip_scale(0.5, 1.0), 1.0);  // below the bound: unchanged
  EXPECT_EQ(clip_scale(4.0, 0.0), 1.0);  // clipping off
  EXPECT_EQ(clip_scale(std::nan(""), 1.0), 1.0);
  EXPECT_EQ(clip_scale(INFINITY, 1.0), 1.0);
}

TEST(Optimizer, NonContiguousParameterTakesTheGeneralPath) {
  // The same update for a parameter stored transposed (no fused pass) and its contiguous copy.
  torch::manual_seed(9);
  auto base = torch::randn({6, 5});
  auto tp = base.t().detach().requires_grad_(true);  // non-contiguous leaf view
  auto cp = base.t().contiguous().requires_grad_(true);
  AdamWConfig c;
  c.lr = 1e-2;
  c.weight_decay = 0.05;
  AdamW a({{"w", tp}}, c, true), b({{"w", cp}}, c, true);
  for (int step = 0; step < 3; ++step) {
    auto g = torch::randn({5, 6});
    tp.mutable_grad() = g.clone();
    cp.mutable_grad() = g.clone();
    a.step(c.lr, 0.8);
    b.step(c.lr, 0.8);
  }
  EXPECT_TRUE(torch::allclose(tp, cp, 1e-5, 1e-7)) << (tp - cp).abs().max().item<double>();
}

}  // namespace
}  // namespace rlhf
