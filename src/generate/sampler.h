// Sampling as a chain of small steps over a batch of logits, llama.cpp style: each step rewrites
// the (rows, vocab) float32 logits in place (temperature, top-k, top-p, min-p); a final pick draws
// one token per row from its own counter-based random stream, so a sequence's sample depends only
// on its seed and position, never on which other sequences share the batch.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace rlhf {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = disabled
  float top_p = 1.0f;        // 1.0 = disabled
  float min_p = 0.0f;        // 0 = disabled; drop tokens with p < min_p * p_max
  std::string describe() const;
  // Refuses values that cannot sample (a non-finite temperature, top-p outside (0, 1], ...),
  // naming the option (--temperature, --top-k, --top-p, --min-p).
  void validate() const;
};

class LogitsStep {
 public:
  virtual ~LogitsStep() = default;
  virtual void apply(torch::Tensor& logits) const = 0;  // (R, V) float32, in place
  virtual std::string name() const = 0;
};

class Temperature : public LogitsStep {
 public:
  explicit Temperature(float t) : t_(t) {}
  void apply(torch::Tensor& logits) const override;
  std::string name() const override { return "temperature"; }

 private:
  float t_;
};

class TopK : public LogitsStep {
 public:
  explicit TopK(int64_t k) : k_(k) {}
  void apply(torch::Tensor& logits) const override;
  std::string name() const override { return "top-k"; }

 private:
  int64_t k_;
};

// Keeps the smallest set of most likely tokens whose probabilities sum to at least p.
class TopP : public LogitsStep {
 public:
  explicit TopP(float p) : p_(p) {}
  void apply(torch::Tensor& logits) const override;
  std::string name() const override { return "top-p"; }

 private:
  float p_;
};

class MinP : public LogitsStep {
 public:
  explicit MinP(float p) : p_(p) {}
  void apply(torch::Tensor& logits) const override;
  std::string name() const override { return "min-p"; }

 private:
  float p_;
};

class SamplerChain {
 public:
  explicit SamplerChain(const SamplingParams& params);
  // Applies the steps and picks one token per row. `uniforms` (R) float64 in [0, 1) drive the pick
  // (ignored when greedy). Returns tokens (R) int64 and, in *logprobs, log p(token) under the
  // distribution actually sampled from (0 for greedy).
  torch::Tensor sample(torch::Tensor logits, const torch::Tensor& uniforms, torch::Tensor* logprobs) const;
  bool greedy() const { return greedy_; }

 private:
  std::vector<std::unique_ptr<LogitsStep>> steps_;
  bool greedy_ = false;
};

// A uniform in [0, 1) for (seed, counter), from a counter-based hash (splitmix64): no state to keep.
double counter_uniform(uint64_t seed, uint64_t counter);
// Seed of one sequence derived from a run seed and its coordinates (prompt index, sample index).
uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

}  // namespace rlhf
