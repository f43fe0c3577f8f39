#include "generate/sampler.h"

#include <cmath>

#include <limits>
#include <sstream>

#include "core/error.h"

namespace rlhf {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

double counter_uniform(uint64_t seed, uint64_t counter) {
  uint64_t h = splitmix64(splitmix64(seed) ^ (counter * 0xd1b54a32d192ed03ull));
  return double(h >> 11) * (1.0 / 9007199254740992.0);  // 53 random bits
}

uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b + 0x632be59bd9b4e019ull));
}

std::string SamplingParams::describe() const {
  std::ostringstream s;
  if (temperature == 0) return "greedy";
  s << "temperature " << temperature;
  if (top_k > 0) s << ", top-k " << top_k;
  if (top_p < 1) s << ", top-p " << top_p;
  if (min_p > 0) s << ", min-p " << min_p;
  return s.str();
}

void Temperature::apply(torch::Tensor& logits) const { logits.div_(t_); }

void TopK::apply(torch::Tensor& logits) const {
  if (k_ >= logits.size(-1)) return;
  auto kth = std::get<0>(logits.topk(k_, -1)).narrow(-1, k_ - 1, 1);  // (R, 1)
  logits.masked_fill_(logits < kth, kNegInf);
}

void TopP::apply(torch::Tensor& logits) const {
  const int64_t V = logits.size(-1);
  auto probs = torch::softmax(logits, -1);
  // Usually the nucleus lies within the few hundred most likely tokens: sort only those, and fall
  // back to a full sort for rows where it does not.
  int64_t k = std::min<int64_t>(V, 512);
  auto [top_p, top_i] = probs.topk(k, -1);  // descending
  if (k < V && (top_p.sum(-1) < p_).any().item<bool>()) {
    std::tie(top_p, top_i) = probs.sort(-1, /*descending=*/true);
  }
  // Token j (in descending order) is kept iff the mass before it is < p; the top token always is.
  auto before = top_p.cumsum(-1) - top_p;
  auto keep_sorted = before < p_;
  keep_sorted.select(-1, 0).fill_(true);
  auto keep = torch::zeros_like(logits, torch::kBool).scatter_(-1, top_i, keep_sorted);
  logits.masked_fill_(keep.logical_not(), kNegInf);
}

void MinP::apply(torch::Tensor& logits) const {
  auto probs = torch::softmax(logits, -1);
  auto threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * p_;
  logits.masked_fill_(probs < threshold, kNegInf);
}

void SamplingParams::validate() const {
  RLHF_CHECK(std::isfinite(temperature) && temperature >= 0, "--temperature must be a finite number >= 0 (0 = greedy), got ",
             temperature);
  RLHF_CHECK(top_k >= 0, "--top-k must be >= 0 (0 = disabled), got ", top_k);
  RLHF_CHECK(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1] (1 = disabled), got ", top_p);
  RLHF_CHECK(min_p >= 0 && min_p < 1, "--min-p must be in [0, 1) (0 = disabled), got ", min_p);
}

SamplerChain::SamplerChain(const SamplingParams& p) {
  p.validate();
  greedy_ = p.temperature == 0;
  if (greedy_) return;
  if (p.temperature != 1.0f) steps_.push_back(std::make_unique<Temperature>(p.temperature));
  if (p.top_k > 0) steps_.push_back(std::make_unique<TopK>(p.top_k));
  if (p.top_p < 1.0f) steps_.push_back(std::make_unique<TopP>(p.top_p));
  if (p.min_p > 0.0f) steps_.push_back(std::make_unique<MinP>(p.min_p));
}

torch::Tensor SamplerChain::sample(torch::Tensor logits, const torch::Tensor& uniforms, torch::Tensor* logprobs) const {
  if (greedy_) {
    if (logprobs) *logprobs = torch::zeros({logits.size(0)}, logits.options().dtype(torch::kFloat));
    return logits.argmax(-1);
  }
  for (const auto& s : steps_) s->apply(logits);
  auto logp = torch::log_softmax(logits, -1);  // (R, V)
  // Inverse CDF: the first token whose cumulative probability exceeds u.
  auto cdf = logp.exp().to(torch::kDouble).cumsum(-1);
  auto u = (uniforms.to(cdf.device()) * cdf.select(-1, -1)).unsqueeze(-1);
  auto tokens = torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true).squeeze(-1);
  tokens = tokens.clamp_max(logits.size(-1) - 1);
  // Never land on a removed token (possible only through floating-point edge cases at a boundary).
  auto bad = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).isinf();
  if (bad.any().item<bool>()) tokens = torch::where(bad, logp.argmax(-1), tokens);
  if (logprobs) *logprobs = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return tokens;
}

}  // namespace rlhf
