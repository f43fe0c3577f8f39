// rlhf::dropout (counter-based masks, src/model/dropout.cpp): the vectorised and threaded paths
// give the same mask as the element-by-element definition, the mask has the right statistics, the
// backward pass recomputes the forward's mask, and reseeding the generator replays it.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "model/dropout.h"

namespace rlhf {
namespace {

// The seed the next rlhf::dropout call will draw after torch::manual_seed(s).
uint64_t seed_after(uint64_t s) {
  torch::manual_seed(s);
  auto gen = at::globalContext().defaultGenerator(torch::kCPU);
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

// Element by element from the hash: kept elements are x * scale rounded to x's dtype (by torch), the rest 0.
torch::Tensor by_definition(const torch::Tensor& x, uint64_t seed, double p) {
  const auto thr = detail::dropout_threshold(p);
  auto keep = torch::zeros({x.numel()}, torch::kBool);
  auto* k = keep.data_ptr<bool>();
  for (int64_t i = 0; i < x.numel(); ++i) k[i] = detail::dropout_hash(seed, static_cast<uint64_t>(i)) >= thr;
  auto scaled = (x.to(torch::kFloat) * static_cast<float>(1.0 / (1.0 - p))).to(x.scalar_type());
  return torch::where(keep.view(x.sizes()), scaled, torch::zeros_like(x));
}

TEST(Dropout, EveryPathGivesTheDefinedMask) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
    for (int64_t n : {1, 15, 16, 17, 1000, 9 * 4096 + 5}) {
      torch::manual_seed(1);
      auto x = torch::randn({n}).to(dtype);
      x[0] = 0.3f;
      const double p = 0.3;
      const uint64_t seed = seed_after(11);
      auto want = by_definition(x, seed, p);
      for (int threads : {1, 2, 3}) {
        at::set_num_threads(threads);
        torch::manual_seed(11);
        auto y = rlhf::dropout(x, p, true);
        EXPECT_TRUE(torch::equal(y, want)) << n << " elements, " << threads << " threads, " << c10::toString(dtype);
      }
      at::set_num_threads(2);
      for (bool vectorised : {false, true}) {
        auto out = torch::empty_like(x);
        detail::dropout_apply(x, out, seed, detail::dropout_threshold(p), static_cast<float>(1 / (1 - p)), vectorised);
        EXPECT_TRUE(torch::equal(out, want)) << n << " elements, vectorised " << vectorised;
      }
    }
}

TEST(Dropout, MaskStatistics) {
  const int64_t n = 1 << 20;
  auto x = torch::ones({n});
  for (double p : {0.05, 0.1, 0.5}) {
    auto a = rlhf::dropout(x, p, true) != 0, b = rlhf::dropout(x, p, true) != 0;
    const double sigma = std::sqrt(p * (1 - p) / double(n));
    EXPECT_NEAR(a.to(torch::kDouble).mean().item<double>(), 1 - p, 6 * sigma) << p;
    // Two calls draw independent masks; neighbouring elements are independent too.
    EXPECT_NEAR((a & b).to(torch::kDouble).mean().item<double>(), (1 - p) * (1 - p), 6 * sigma) << p;
    auto dropped = ~a;
    auto pairs = dropped.slice(0, 0, n - 1) & dropped.slice(0, 1, n);
    EXPECT_NEAR(pairs.to(torch::kDouble).mean().item<double>(), p * p, 6 * sigma) << p;
  }
  EXPECT_TRUE(torch::equal(rlhf::dropout(x, 0.1, false), x));
  EXPECT_TRUE(torch::equal(rlhf::dropout(x, 0.0, true), x));
}

TEST(Dropout, BackwardRecomputesTheForwardMask) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    torch::manual_seed(3);
    auto x = (torch::randn({3, 70, 33}) + 5).to(dtype).requires_grad_();  // no zeros: y == 0 means dropped
    auto g = torch::randn({3, 70, 33}).to(dtype);
    torch::manual_seed(5);
    auto y = rlhf::dropout(x, 0.2, true);
    y.backward(g);
    auto want = torch::where(y.detach() != 0, (g.to(torch::kFloat) * 1.25f).to(dtype), torch::zeros_like(g));
    EXPECT_TRUE(torch::equal(x.grad(), want)) << c10::toString(dtype);
    // The same seed replays the mask; the next call draws another.
    torch::manual_seed(5);
    EXPECT_TRUE(torch::equal(rlhf::dropout(x, 0.2, true), y));
    EXPECT_FALSE(torch::equal(rlhf::dropout(x, 0.2, true), y));
  }
  // A non-contiguous input gives the mask of its contiguous copy.
  torch::manual_seed(1);
  auto x = torch::randn({40, 30});
  torch::manual_seed(9);
  auto a = rlhf::dropout(x.t(), 0.5, true);
  torch::manual_seed(9);
  EXPECT_TRUE(torch::equal(a, rlhf::dropout(x.t().contiguous(), 0.5, true)));
}

}  // namespace
}  // namespace rlhf
