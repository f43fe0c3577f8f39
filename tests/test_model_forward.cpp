// The forward pass as training and generation use it: padding (left and right), the KV cache,
// packed rows, gradients to every parameter, and save/load round trips. Each check compares a
// batched or incremental computation with the plain one-sequence forward of the same tiny model.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>

#include "core/parallel.h"
#include "core/runtime.h"
#include "model/gpt2.h"
#include "model/layers.h"
#include "model/logprobs.h"
#include "model/lora.h"
#include "model/small_gemm.h"
#include "model/transformer.h"
#include "test_tensor_util.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::max_abs_diff;

constexpr double kTol = 2e-5;  // fp32: same math, different batch shapes / kernels

// Tiny configs of every architecture variant the forward code branches on.
ModelConfig tiny(const std::string& kind) {
  Json j;
  if (kind == "gpt2") {
    j = {{"model_type", "gpt2"}, {"vocab_size", 101}, {"n_positions", 48}, {"n_embd", 32}, {"n_layer", 2},
         {"n_head", 4}, {"embd_pdrop", 0.0}, {"attn_pdrop", 0.0}, {"resid_pdrop", 0.0}};
  } else {
    j = {{"model_type", "llama"}, {"vocab_size", 103}, {"hidden_size", 32}, {"intermediate_size", 48},
         {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
         {"max_position_embeddings", 64}, {"tie_word_embeddings", false}};
    if (kind == "qwen2") j["model_type"] = "qwen2";  // q/k/v biases
    if (kind == "mistral") {                         // sliding window shorter than the sequences
      j["model_type"] = "mistral";
      j["sliding_window"] = 3;
    }
    if (kind == "llama3") {
      j["head_dim"] = 16;
      j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
    }
  }
  return ModelConfig::from_json(j, "tiny " + kind);
}

// A model whose every parameter is random (biases and norms too, unlike init_weights), with spreads
// that make attention and log-probs far from uniform, so position or masking mistakes show.
Transformer tiny_model(const std::string& kind, uint64_t seed = 1, std::optional<Head> head = {}) {
  ModelConfig cfg = tiny(kind);
  if (head) cfg.head = *head;
  auto m = make_model(cfg, seed);
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& p : m->named_parameters()) {
    bool norm_w = p.key().find("ln_") != std::string::npos || p.key().find("norm") != std::string::npos;
    if (norm_w && p.key().ends_with(".weight")) p.value().copy_(1 + 0.1 * torch::randn_like(p.value()));
    else p.value().copy_(0.2 * torch::randn_like(p.value()));
  }
  m->eval();
  return m;
}

std::vector<std::vector<int64_t>> sequences(int64_t vocab) {
  torch::manual_seed(7);
  std::vector<std::vector<int64_t>> out;
  for (int64_t len : {9, 5, 2, 7}) {
    auto t = torch::randint(1, vocab, {len}, torch::kLong);
    out.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
  }
  return out;
}

torch::Tensor row(const std::vector<int64_t>& s) { return torch::tensor(s, torch::kLong).unsqueeze(0).to(device()); }

// log p of each transition of `s` alone: (len - 1)
torch::Tensor alone(TransformerImpl& m, const std::vector<int64_t>& s) {
  return sequence_logprobs(m, row(s)).squeeze(0).cpu();
}

const char* kKinds[] = {"gpt2", "llama", "qwen2", "mistral", "llama3"};

class Forward : public ::testing::TestWithParam<std::string> {};

// ---- padding ----------------------------------------------------------------------------------------------------

TEST_P(Forward, PaddingLeftAndRightMatchAlone) {
  auto m = tiny_model(GetParam());
  torch::NoGradGuard ng;
  auto seqs = sequences(m->config().vocab_size);
  const int64_t B = int64_t(seqs.size()), T = 9;
  for (bool left : {true, false}) {
    auto ids = torch::full({B, T}, 0, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) {
      int64_t L = int64_t(seqs[b].size()), start = left ? T - L : 0;
      ids[b].narrow(0, start, L).copy_(torch::tensor(seqs[b], torch::kLong));
      mask[b].narrow(0, start, L).fill_(1);
    }
    ForwardArgs args;
    args.attention_mask = mask.to(device());
    auto lp = sequence_logprobs(*m, ids.to(device()), args).cpu();  // (B, T-1)
    for (int64_t b = 0; b < B; ++b) {
      int64_t L = int64_t(seqs[b].size()), start = left ? T - L : 0;
      auto want = alone(*m, seqs[b]);
      double d = max_abs_diff(lp[b].narrow(0, start, L - 1), want);
      EXPECT_LT(d, kTol) << GetParam() << (left ? " left" : " right") << " padding, row " << b << ": max |diff| " << d;
      EXPECT_FALSE(lp[b].isnan().any().item<bool>()) << "NaN in a padded row";
    }
  }
}

// Position ids follow the mask: given explicitly they change nothing; spread out they change the
// result (so the test above could fail; a uniform shift would not show with rotary embeddings).
TEST_P(Forward, PositionIdsFollowTheMask) {
  auto m = tiny_model(GetParam());
  torch::NoGradGuard ng;
  auto s = sequences(m->config().vocab_size)[0];
  ForwardArgs args;
  const int64_t L = int64_t(s.size());
  args.position_ids = torch::arange(L, torch::kLong).unsqueeze(0).to(device());
  EXPECT_LT(max_abs_diff(sequence_logprobs(*m, row(s), args).squeeze(0).cpu(), alone(*m, s)), kTol);
  args.position_ids = args.position_ids * 2;
  EXPECT_GT(max_abs_diff(sequence_logprobs(*m, row(s), args).squeeze(0).cpu(), alone(*m, s)), 1e-3)
      << "positions have no effect: the padding tests cannot see position mistakes";
}

// ---- KV cache ----------------------------------------------------------------------------------------------------

// Logits of the whole left-padded batch in one call, against a prefill of the first `prefill`
// columns and then `step` new columns at a time through the cache.
void check_cache(TransformerImpl& m, int64_t prefill, int64_t step, const std::string& what) {
  torch::NoGradGuard ng;
  auto seqs = sequences(m.config().vocab_size);
  const int64_t B = int64_t(seqs.size()), T = 9;
  auto ids = torch::zeros({B, T}, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = int64_t(seqs[b].size());
    ids[b].narrow(0, T - L, L).copy_(torch::tensor(seqs[b], torch::kLong));
    mask[b].narrow(0, T - L, L).fill_(1);
  }
  ids = ids.to(device());
  mask = mask.to(device());
  ForwardArgs full;
  full.attention_mask = mask;
  auto want = m.forward(ids, full).cpu();  // (B, T, V)

  KVCache cache;
  cache.init(m.config(), B, T + 2, torch::kFloat, device());
  std::vector<torch::Tensor> parts;
  for (int64_t t = 0; t < T;) {
    int64_t n = t == 0 ? prefill : std::min(step, T - t);
    ForwardArgs a;
    a.cache = &cache;
    a.attention_mask = mask.narrow(1, t, n);  // the new tokens only
    parts.push_back(m.forward(ids.narrow(1, t, n), a).cpu());
    t += n;
  }
  EXPECT_EQ(cache.len, T);
  auto got = torch::cat(parts, 1);
  // Compare at real positions (padded query rows attend to nothing real and are don't-care).
  auto real = mask.cpu().to(torch::kBool).unsqueeze(-1).expand_as(want);
  double d = max_abs_diff(got.masked_select(real), want.masked_select(real));
  EXPECT_LT(d, kTol) << what << ": cached logits differ from the full forward by " << d;
}

TEST_P(Forward, KvCacheMatchesFullForward) {
  auto m = tiny_model(GetParam());
  check_cache(*m, /*prefill=*/5, /*step=*/1, GetParam() + " prefill 5, then 1 at a time");
  check_cache(*m, /*prefill=*/1, /*step=*/2, GetParam() + " prefill 1, then 2 at a time");
  check_cache(*m, /*prefill=*/9, /*step=*/1, GetParam() + " prefill all");
}

TEST_P(Forward, KvCacheWithoutMask) {
  auto m = tiny_model(GetParam());
  torch::NoGradGuard ng;
  auto s = sequences(m->config().vocab_size)[0];
  auto ids = row(s);
  auto want = m->forward(ids).cpu();
  KVCache cache;
  cache.init(m->config(), 1, int64_t(s.size()), torch::kFloat, device());
  std::vector<torch::Tensor> parts;
  for (int64_t t = 0; t < ids.size(1); ++t) {
    ForwardArgs a;
    a.cache = &cache;
    parts.push_back(m->forward(ids.narrow(1, t, 1), a).cpu());
  }
  EXPECT_LT(max_abs_diff(torch::cat(parts, 1), want), kTol);
  // A full cache refuses more.
  ForwardArgs a;
  a.cache = &cache;
  test::expect_error([&] { m->forward(ids.narrow(1, 0, 1), a); }, {"KV cache"}, "cache overflow");
}

// Rows dropped (finished sequences) and rows repeated (several samples per prompt) keep the cache right.
TEST_P(Forward, KvCacheSelectAndRepeatRows) {
  auto m = tiny_model(GetParam());
  torch::NoGradGuard ng;
  auto seqs = sequences(m->config().vocab_size);
  auto a = seqs[0], b = seqs[3];  // lengths 9 and 7: use the first 6 of each as prompts
  auto ids = torch::stack({torch::tensor(a, torch::kLong).narrow(0, 0, 6), torch::tensor(b, torch::kLong).narrow(0, 0, 6)})
                 .to(device());
  KVCache cache;
  cache.init(m->config(), 2, 8, torch::kFloat, device());
  ForwardArgs args;
  args.cache = &cache;
  m->forward(ids, args);
  cache.select_rows(torch::tensor({1}, torch::kLong).to(device()));
  cache.repeat_rows(2);
  auto next = torch::tensor({b[6], b[6]}, torch::kLong).view({2, 1}).to(device());
  auto got = m->forward(next, args).cpu();  // (2, 1, V)
  auto want = m->forward(row(std::vector<int64_t>(b.begin(), b.begin() + 7))).cpu().narrow(1, 6, 1);
  EXPECT_LT(max_abs_diff(got[0], want[0]), kTol);
  EXPECT_LT(max_abs_diff(got[1], want[0]), kTol);
}

// ---- packing ----------------------------------------------------------------------------------------------------

// Two packed rows, [s0 s1 pad] and [s2 s3 pad], with segment ids; positions either derived from the
// segments or given explicitly. Every segment must score as if alone.
TEST_P(Forward, PackedRowsMatchSeparateSequences) {
  auto m = tiny_model(GetParam());
  torch::NoGradGuard ng;
  auto seqs = sequences(m->config().vocab_size);
  const int64_t T = 16;
  auto ids = torch::zeros({2, T}, torch::kLong), seg = torch::full({2, T}, -1, torch::kLong);
  auto pos = torch::zeros({2, T}, torch::kLong), mask = torch::zeros({2, T}, torch::kLong);
  std::vector<std::tuple<int64_t, int64_t, size_t>> where;  // row, start, sequence
  for (int64_t r = 0; r < 2; ++r) {
    int64_t at = 0;
    for (size_t k = 0; k < 2; ++k) {
      const auto& s = seqs[2 * r + k];
      int64_t L = int64_t(s.size());
      ids[r].narrow(0, at, L).copy_(torch::tensor(s, torch::kLong));
      seg[r].narrow(0, at, L).fill_(int64_t(k));
      pos[r].narrow(0, at, L).copy_(torch::arange(L, torch::kLong));
      mask[r].narrow(0, at, L).fill_(1);
      where.emplace_back(r, at, 2 * r + k);
      at += L;
    }
  }
  for (int variant = 0; variant < 3; ++variant) {
    ForwardArgs args;
    args.segment_ids = seg.to(device());
    if (variant == 1) args.position_ids = pos.to(device());
    if (variant == 2) args.attention_mask = mask.to(device());  // trailing padding masked as well
    auto lp = sequence_logprobs(*m, ids.to(device()), args).cpu();
    for (auto [r, start, k] : where) {
      int64_t L = int64_t(seqs[k].size());
      double d = max_abs_diff(lp[r].narrow(0, start, L - 1), alone(*m, seqs[k]));
      EXPECT_LT(d, kTol) << GetParam() << " variant " << variant << " row " << r << " segment " << k << ": " << d;
    }
  }
}

TEST(ForwardHelpers, PositionsFromSegments) {
  auto seg = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2, 2}, torch::kLong).unsqueeze(0);
  auto want = torch::tensor({0, 1, 2, 0, 1, 0, 1, 2, 3}, torch::kLong).unsqueeze(0);
  EXPECT_TRUE(torch::equal(positions_from_segments(seg), want));
  auto mask = torch::tensor({0, 0, 1, 1, 1}, torch::kLong).unsqueeze(0);
  EXPECT_TRUE(torch::equal(positions_from_mask(mask), torch::tensor({1, 1, 0, 1, 2}, torch::kLong).unsqueeze(0)));
}

// ---- gradients ----------------------------------------------------------------------------------------------------

void check_every_grad(TransformerImpl& m, const std::string& what) {
  auto seqs = sequences(m.config().vocab_size);
  m.train();
  m.zero_grad();
  torch::Tensor loss;
  if (m.config().head == Head::Score) loss = m.forward(row(seqs[0])).pow(2).mean();
  else loss = -sequence_logprobs(m, row(seqs[0])).mean();
  loss.backward();
  int n = 0;
  for (const auto& p : m.named_parameters()) {
    ++n;
    ASSERT_TRUE(p.value().grad().defined()) << what << ": no gradient reaches " << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << what << ": zero gradient for " << p.key();
    EXPECT_FALSE(p.value().grad().isnan().any().item<bool>()) << what << ": NaN gradient for " << p.key();
  }
  EXPECT_GT(n, 10);
  m.eval();
}

TEST_P(Forward, GradientsReachEveryParameter) {
  auto m = tiny_model(GetParam());
  check_every_grad(*m, GetParam());
  auto rm = tiny_model(GetParam(), 2, Head::Score);
  check_every_grad(*rm, GetParam() + " score head");
}

// Gradient checkpointing recomputes each block in backward: the loss and every gradient must equal
// the plain backward's, with dropout on (the recompute must draw the same masks), with a padded
// batch, under LoRA (frozen embeddings: the blocks' input needs no gradient, the adapters do), and
// under bf16 autocast (the recompute runs after the autocast scope has closed).
TEST_P(Forward, GradientCheckpointingGivesTheSameGradients) {
  auto seqs = sequences(tiny(GetParam()).vocab_size);
  auto batch = torch::full({2, 9}, 0, torch::kLong);
  auto mask = torch::zeros({2, 9}, torch::kLong);
  batch[0].copy_(torch::tensor(seqs[0], torch::kLong));
  mask[0].fill_(1);
  batch[1].narrow(0, 2, 7).copy_(torch::tensor(seqs[3], torch::kLong));  // left-padded by 2
  mask[1].narrow(0, 2, 7).fill_(1);
  batch = batch.to(device());
  mask = mask.to(device());
  for (const std::string mode : {"full", "lora", "bf16"}) {
    auto run = [&](bool ckpt) {
      auto m = tiny_model(GetParam());
      if (mode == "lora") {
        LoraConfig lc;
        lc.r = 4;
        lc.dropout = 0.1;
        attach_lora(*m, lc, 3);
      } else {
        for (auto& p : m->parameters()) p.set_requires_grad(true);
      }
      m->set_dropout(0.1);
      m->set_gradient_checkpointing(ckpt);
      m->train();
      torch::manual_seed(123);
      torch::Tensor loss;
      {
        ComputeScope cs(mode == "bf16");
        ForwardArgs a;
        a.attention_mask = mask;
        auto lp = sequence_logprobs(*m, batch, a);
        loss = -(lp * mask.narrow(1, 1, 8).to(lp.scalar_type())).sum();
      }
      loss.backward();
      std::map<std::string, torch::Tensor> grads;
      for (const auto& p : m->named_parameters())
        if (p.value().requires_grad()) grads[p.key()] = p.value().grad().cpu().clone();
      return std::make_pair(loss.item<double>(), grads);
    };
    auto [l0, g0] = run(false);
    auto [l1, g1] = run(true);
    const std::string what = GetParam() + " " + mode;
    EXPECT_NEAR(l0, l1, 1e-5 * std::max(1.0, std::abs(l0))) << what;
    ASSERT_EQ(g0.size(), g1.size()) << what;
    EXPECT_GT(g0.size(), 3u) << what;
    for (const auto& [name, g] : g0) {
      ASSERT_TRUE(g1.at(name).defined()) << what << ": no gradient for " << name << " with checkpointing";
      EXPECT_LT(max_abs_diff(g1.at(name), g), 1e-5 * std::max(1.0, g.abs().max().item<double>()))
          << what << ": " << name;
    }
  }
}

// dense() takes the small-gemm kernel for 1-128 rows without autograd (and gemv where that kernel
// is unavailable): it must give what torch::linear gives, for 2-D and 3-D inputs, with and without
// bias, with input widths that are and are not a multiple of the kernel's 16 lanes, on both sides of
// the row limit and with output counts that do not fill the kernel's 4-row tiles.
TEST(ForwardHelpers, DenseEqualsLinear) {
  torch::manual_seed(5);
  for (int64_t in : {16, 37})
    for (int64_t out : {7, 9000})
      for (int64_t rows : {1, 2, 4, 5, 7, 12, 33, 128, 129}) {
        auto w = torch::randn({out, in}), b = torch::randn({out}), x = torch::randn({rows, in});
        for (bool grad : {false, true})
          for (bool with_bias : {false, true}) {
            torch::AutoGradMode mode(grad);
            auto bias = with_bias ? b : torch::Tensor();
            auto want = torch::linear(x, w, bias);
            auto got = dense(x, w, bias);
            ASSERT_EQ(got.sizes(), want.sizes());
            EXPECT_LT(max_abs_diff(got, want), 1e-4) << in << " -> " << out << ", " << rows << " rows, grad " << grad;
            EXPECT_LT(max_abs_diff(dense(x.view({1, rows, in}), w, bias), want.view({1, rows, out})), 1e-4);
          }
      }
  // A strided input (a column slice) is made contiguous first.
  torch::NoGradGuard ng;
  auto w = torch::randn({40, 16}), x = torch::randn({6, 32}).narrow(1, 8, 16);
  EXPECT_LT(max_abs_diff(dense(x, w), torch::linear(x, w)), 1e-4);
}

// parallel_chunks (the OpenMP loop the kernels above run on) hands out every index exactly once, in
// at most one chunk per thread, for more and fewer items than threads.
TEST(ForwardHelpers, ParallelChunksCoverTheRangeOnce) {
  EXPECT_TRUE(parallel_chunks_available());
  for (int threads : {1, 2, 3, 8})
    for (int64_t n : {0, 1, 2, 5, 64}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> chunks{0};
      parallel_chunks(n, threads, [&](int64_t b, int64_t e) {
        ++chunks;
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[size_t(i)].load(), 1) << n << " items, " << threads << " threads";
      EXPECT_LE(chunks.load(), std::max(1, threads)) << n << " items";
    }
}

// The small-gemm kernels and their portable fallbacks against a double-precision reference, with row
// strides larger than the rows, every tile remainder (rows mod 6, outputs mod 4, width mod 16) and a
// sub-range of outputs.
TEST(ForwardHelpers, SmallGemmKernels) {
  torch::manual_seed(11);
  auto opt = torch::TensorOptions().dtype(torch::kFloat);
  for (int64_t M : {1, 5, 6, 13})
    for (int64_t K : {3, 16, 45, 64})
      for (int64_t N : {1, 6, 17}) {
        auto x = torch::randn({M, K + 3}, opt), w = torch::randn({N, K + 5}, opt), bias = torch::randn({N}, opt);
        auto xd = x.narrow(1, 0, K).to(torch::kDouble), wd = w.narrow(1, 0, K).to(torch::kDouble);
        auto want = torch::linear(xd, wd, bias.to(torch::kDouble));
        for (auto* nt : {&small_gemm_nt, &detail::gemm_nt_portable}) {
          auto y = torch::full({M, N + 2}, 7.0f, opt);
          nt(x.data_ptr<float>(), K + 3, M, w.data_ptr<float>(), K + 5, K, bias.data_ptr<float>(), y.data_ptr<float>(),
             N + 2, 0, N);
          const char* which = nt == &small_gemm_nt ? "nt kernel " : "nt portable ";
          EXPECT_LT(max_abs_diff(y.narrow(1, 0, N).to(torch::kDouble), want), 1e-4) << which << M << "x" << K << "x" << N;
          EXPECT_TRUE(torch::equal(y.narrow(1, N, 2), torch::full({M, 2}, 7.0f, opt))) << which << "wrote past the outputs";
        }
        if (N >= 6) {  // only outputs [2, 5) of a fresh buffer
          auto part = torch::zeros({M, N}, opt);
          small_gemm_nt(x.data_ptr<float>(), K + 3, M, w.data_ptr<float>(), K + 5, K, nullptr, part.data_ptr<float>(), N,
                        2, 5);
          auto nob = torch::linear(xd, wd).to(torch::kFloat);
          EXPECT_LT(max_abs_diff(part.narrow(1, 2, 3), nob.narrow(1, 2, 3)), 1e-4);
          EXPECT_EQ(part.narrow(1, 0, 2).abs().sum().item<float>(), 0.0f);
          EXPECT_EQ(part.narrow(1, 5, N - 5).abs().sum().item<float>(), 0.0f);
        }
      }
  for (int64_t M : {1, 3, 4, 9})
    for (int64_t S : {1, 7, 40})
      for (int64_t N : {8, 16, 64, 128, 144}) {  // 8 and 144: the portable loop; the rest: the AVX-512 kernel
        auto p = torch::rand({M, S + 2}, opt), v = torch::randn({S, N + 4}, opt);
        auto want = torch::matmul(p.narrow(1, 0, S).to(torch::kDouble), v.narrow(1, 0, N).to(torch::kDouble));
        for (auto* nn : {&small_gemm_nn, &detail::gemm_nn_portable}) {
          auto y = torch::empty({M, N + 1}, opt);
          nn(p.data_ptr<float>(), S + 2, M, S, v.data_ptr<float>(), N + 4, N, y.data_ptr<float>(), N + 1);
          EXPECT_LT(max_abs_diff(y.narrow(1, 0, N).to(torch::kDouble), want), 1e-4)
              << (nn == &small_gemm_nn ? "nn kernel " : "nn portable ") << M << "x" << S << "x" << N;
        }
      }
}

// Without autograd a decode step's attention (a few query positions) runs its own CPU loops
// (attention_few_queries_cpu); with autograd it runs the batched matmuls. Both must agree, with grouped heads, a key-padding bias
// (left padding) and a key/value cache view whose rows are longer than the used length.
TEST(ForwardHelpers, FewQueryAttentionEqualsMatmulPath) {
  torch::manual_seed(3);
  const int64_t B = 3, Hkv = 2, G = 3, S = 11, cap = 16;
  for (int64_t D : {8, 64})
    for (int64_t T : {1, 2, 8}) {
      auto q = torch::randn({B, Hkv * G, T, D});
      auto kc = torch::randn({B, Hkv, cap, D}), vc = torch::randn({B, Hkv, cap, D});
      auto k = kc.narrow(2, 0, S), v = vc.narrow(2, 0, S);  // as cache_append returns them
      auto key_mask = torch::ones({B, S}, torch::kLong);
      key_mask[0].narrow(0, 0, 4).zero_();  // row 0 left-padded by 4
      auto bias = attention_bias(T, S, key_mask, {}, 0, torch::kCPU);
      const double scale = 1.0 / std::sqrt(double(D));
      torch::Tensor want, got;
      {
        torch::AutoGradMode on(true);
        want = attention(q, k, v, bias, scale, 0.0, false);
      }
      torch::NoGradGuard ng;
      got = attention_few_queries_cpu(q, k, v, bias, scale);  // the kernel path itself
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT(max_abs_diff(got, want), 1e-5) << "D " << D << ", T " << T;
      // and attention()'s dispatch without autograd (the kernel path where the CPU has AVX-512)
      EXPECT_LT(max_abs_diff(attention(q, k, v, bias, scale, 0.0, false), want), 1e-5) << "D " << D << ", T " << T;
    }
}

// ---- save / load ----------------------------------------------------------------------------------------------------

void expect_same_params(TransformerImpl& a, TransformerImpl& b, const std::string& what, torch::ScalarType rounded) {
  auto pb = b.named_parameters();
  ASSERT_EQ(a.named_parameters().size(), pb.size()) << what;
  for (const auto& p : a.named_parameters()) {
    auto* q = pb.find(p.key());
    ASSERT_NE(q, nullptr) << what << ": " << p.key() << " missing after reload";
    auto want = rounded == torch::kFloat ? p.value() : p.value().to(rounded).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(q->cpu(), want.cpu())) << what << ": " << p.key() << " differs, max |diff| "
                                                    << max_abs_diff(*q, want);
  }
}

TEST_P(Forward, SaveLoadRoundTrip) {
  auto m = tiny_model(GetParam());
  for (auto dt : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    test::TempDir dir;
    save_model(*m, dir.path(), dt);
    auto back = load_model(dir.path());
    // F32 is bit-identical; BF16 / F16 are exactly the rounded values.
    expect_same_params(*m, *back, GetParam() + " " + c10::toString(dt), dt);
    Json cfg = read_json_file(dir / "config.json");
    EXPECT_EQ(cfg["torch_dtype"], dt == torch::kFloat ? "float32" : dt == torch::kBFloat16 ? "bfloat16" : "float16");
    SafetensorsFile f(dir / "model.safetensors");
    EXPECT_EQ(f.metadata().at("format"), "pt");  // transformers refuses safetensors without it
    for (const auto& info : f.tensors()) EXPECT_EQ(info.dtype, st_dtype_name(dt)) << info.name;
  }
  // The score head round-trips too.
  auto rm = tiny_model(GetParam(), 3, Head::Score);
  test::TempDir dir;
  save_model(*rm, dir.path());
  auto back = load_model(dir.path());
  EXPECT_EQ(back->config().head, Head::Score);
  expect_same_params(*rm, *back, GetParam() + " score", torch::kFloat);
}

// Loading fills every tensor from the checkpoint without drawing random numbers first (nothing is
// taken from the global generator); a head the checkpoint lacks is drawn as init_weights draws it.
TEST_P(Forward, LoadDrawsOnlyANewHead) {
  auto m = tiny_model(GetParam());
  test::TempDir dir;
  save_model(*m, dir.path());
  torch::manual_seed(21);
  const auto want_next = torch::rand({4});
  torch::manual_seed(21);
  auto back = load_model(dir.path());
  EXPECT_TRUE(torch::equal(torch::rand({4}), want_next)) << "loading drew from the global generator";
  expect_same_params(*m, *back, GetParam(), torch::kFloat);

  auto rm = load_model(dir.path(), Head::Score, /*seed=*/5);
  auto w = rm->named_parameters()["score.weight"];
  EXPECT_TRUE(torch::isfinite(w).all().item<bool>());
  EXPECT_NEAR(w.std().item<double>(), rm->config().initializer_range, 0.5 * rm->config().initializer_range);
  EXPECT_TRUE(torch::equal(w, load_model(dir.path(), Head::Score, 5)->named_parameters()["score.weight"]));
  EXPECT_FALSE(torch::equal(w, load_model(dir.path(), Head::Score, 6)->named_parameters()["score.weight"]));
  // The body comes from the checkpoint.
  auto body = rm->named_parameters();
  for (auto& item : back->named_parameters())
    if (item.key().rfind("lm_head.", 0) != 0)
      EXPECT_TRUE(torch::equal(item.value(), body[item.key()])) << item.key();
}

TEST_P(Forward, ShardedSaveReloads) {
  auto m = tiny_model(GetParam());
  test::TempDir dir;
  save_model(*m, dir.path());
  save_safetensors_dir(dir.path(), hf_state_dict(*m), torch::kFloat, "model", /*max_shard_bytes=*/16 * 1024);
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  ASSERT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  Json index = read_json_file(dir / "model.safetensors.index.json");
  std::set<std::string> shards;
  for (auto& [k, v] : index["weight_map"].items()) shards.insert(v.get<std::string>());
  EXPECT_GT(shards.size(), 2u);
  auto back = load_model(dir.path());
  expect_same_params(*m, *back, GetParam() + " sharded", torch::kFloat);
}

// GPT-2 keeps Conv1D (in, out) layout on disk and omits the tied head.
TEST(ForwardLayout, Gpt2OnDisk) {
  auto m = tiny_model("gpt2");
  test::TempDir dir;
  save_model(*m, dir.path());
  SafetensorsFile f(dir / "model.safetensors");
  EXPECT_EQ(f.find("transformer.h.0.attn.c_attn.weight")->shape, (std::vector<int64_t>{32, 96}));
  EXPECT_EQ(f.find("transformer.h.0.mlp.c_fc.weight")->shape, (std::vector<int64_t>{32, 128}));
  EXPECT_EQ(f.find("transformer.h.0.mlp.c_proj.weight")->shape, (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(f.find("lm_head.weight"), nullptr);
  auto* g = dynamic_cast<Gpt2Impl*>(m.get());
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(torch::equal(f.load("transformer.h.1.attn.c_proj.weight"), g->blocks[1]->attn_c_proj->weight.t().cpu()));
}

std::vector<std::string> kinds() { return {std::begin(kKinds), std::end(kKinds)}; }
INSTANTIATE_TEST_SUITE_P(Tiny, Forward, ::testing::ValuesIn(kinds()), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace rlhf
