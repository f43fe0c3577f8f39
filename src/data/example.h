// A tokenized training example and a batch of them. loss_mask[t] = 1 means the model is trained
// to predict ids[t] from ids[0..t-1] (so loss_mask[0] is always 0). Packed rows hold several
// examples; segment ids keep attention inside each and positions restart at 0 for each.
#pragma once
#include <algorithm>

#include "core/error.h"
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace rlhf {

struct TokenizedExample {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;
  std::vector<int64_t> segments;   // packed rows only: 1, 1, 2, 2, 2, ... (empty when not packed)
  std::vector<int64_t> positions;  // packed rows only: 0, 1, 0, 1, 2, ...
  int64_t source_line = 0;         // line in the JSONL file (the first one for packed rows)
  int64_t loss_tokens() const;
};

struct Batch {
  torch::Tensor ids;             // (B, T) int64, right-padded
  torch::Tensor attention_mask;  // (B, T) int64, 1 = token
  torch::Tensor loss_mask;       // (B, T) bool
  torch::Tensor segment_ids;     // (B, T) packed batches only, else undefined
  torch::Tensor position_ids;    // (B, T) packed batches only, else undefined
  int64_t loss_tokens = 0;
  int64_t tokens = 0;            // real (non-pad) tokens
};

// Right-pads `examples` to their longest (rounded up to a multiple of `pad_to_multiple`).
Batch collate(const std::vector<const TokenizedExample*>& examples, int64_t pad_id, torch::Device device,
              int64_t pad_to_multiple = 1);

// Packs examples into rows of at most max_length tokens, best-fit decreasing: longest first, each
// into the fullest row that still has room. Deterministic for a given input order.
std::vector<TokenizedExample> pack_examples(const std::vector<TokenizedExample>& examples, int64_t max_length);

// Indices 0..n-1 in the order of epoch `epoch` for `seed` (a fresh permutation per epoch).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);

// Moves a random `fraction` of `train` (at least one example, never all) into the returned held-out
// set; the same seed always holds out the same examples.
template <class T>
std::vector<T> split_off_eval(std::vector<T>& train, double fraction, uint64_t seed) {
  auto order = epoch_order(int64_t(train.size()), seed ^ 0x5eedull, 0);
  int64_t n_eval = std::max<int64_t>(1, int64_t(double(train.size()) * fraction));
  RLHF_CHECK(n_eval < int64_t(train.size()), "--eval-split leaves no training data");
  std::vector<T> tr, eval;
  for (size_t i = 0; i < order.size(); ++i) (int64_t(i) < n_eval ? eval : tr).push_back(std::move(train[size_t(order[i])]));
  train = std::move(tr);
  return eval;
}

}  // namespace rlhf
