#include "data/example.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"

namespace rlhf {

int64_t TokenizedExample::loss_tokens() const {
  int64_t n = 0;
  for (auto m : loss_mask) n += m;
  return n;
}

Batch collate(const std::vector<const TokenizedExample*>& examples, int64_t pad_id, torch::Device device,
              int64_t pad_to_multiple) {
  RLHF_CHECK(!examples.empty(), "collate: empty batch");
  const int64_t B = int64_t(examples.size());
  int64_t T = 0;
  bool packed = !examples[0]->segments.empty();
  for (auto* e : examples) {
    T = std::max<int64_t>(T, int64_t(e->ids.size()));
    RLHF_CHECK(packed == !e->segments.empty(), "collate: packed and unpacked examples mixed in one batch");
  }
  if (pad_to_multiple > 1) T = (T + pad_to_multiple - 1) / pad_to_multiple * pad_to_multiple;
  std::vector<int64_t> ids(size_t(B * T), pad_id), mask(size_t(B * T), 0), seg, pos;
  std::vector<uint8_t> loss(size_t(B * T), 0);
  if (packed) {
    seg.assign(size_t(B * T), 0);
    pos.assign(size_t(B * T), 0);
  }
  Batch b;
  for (int64_t i = 0; i < B; ++i) {
    const TokenizedExample& e = *examples[size_t(i)];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      size_t k = size_t(i * T) + t;
      ids[k] = e.ids[t];
      mask[k] = 1;
      loss[k] = t == 0 ? 0 : e.loss_mask[t];
      if (packed) {
        seg[k] = e.segments[t];
        pos[k] = e.positions[t];
      }
    }
    b.loss_tokens += e.loss_tokens() - (e.loss_mask.empty() ? 0 : e.loss_mask[0]);
    b.tokens += int64_t(e.ids.size());
  }
  auto lopt = torch::TensorOptions().dtype(torch::kLong);
  b.ids = torch::tensor(ids, lopt).view({B, T}).to(device);
  b.attention_mask = torch::tensor(mask, lopt).view({B, T}).to(device);
  b.loss_mask = torch::from_blob(loss.data(), {B, T}, torch::kUInt8).to(torch::kBool).to(device);
  if (packed) {
    b.segment_ids = torch::tensor(seg, lopt).view({B, T}).to(device);
    b.position_ids = torch::tensor(pos, lopt).view({B, T}).to(device);
  }
  return b;
}

std::vector<TokenizedExample> pack_examples(const std::vector<TokenizedExample>& examples, int64_t max_length) {
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].ids.size() > examples[b].ids.size(); });
  std::vector<std::vector<size_t>> rows;
  std::multiset<std::pair<int64_t, size_t>> space;  // (free tokens, row)
  for (size_t idx : order) {
    int64_t len = int64_t(examples[idx].ids.size());
    RLHF_CHECK(len <= max_length, "pack: example longer than max_length (truncate first)");
    auto it = space.lower_bound({len, 0});  // the row with the least room that still fits
    if (it == space.end()) {
      rows.push_back({idx});
      space.insert({max_length - len, rows.size() - 1});
    } else {
      auto [free, row] = *it;
      space.erase(it);
      rows[row].push_back(idx);
      space.insert({free - len, row});
    }
  }
  std::vector<TokenizedExample> out;
  for (auto& r : rows) {
    TokenizedExample p;
    p.source_line = examples[r[0]].source_line;
    int64_t seg = 0;
    for (size_t idx : r) {
      const auto& e = examples[idx];
      ++seg;
      for (size_t t = 0; t < e.ids.size(); ++t) {
        p.ids.push_back(e.ids[t]);
        p.loss_mask.push_back(t == 0 ? 0 : e.loss_mask[t]);
        p.segments.push_back(seg);
        p.positions.push_back(int64_t(t));
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (!shuffle) return idx;
  // Fisher-Yates with a fixed generator: the same order on every platform and library version.
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + uint64_t(epoch) + 1);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(rng() % uint64_t(i + 1));
    std::swap(idx[size_t(i)], idx[size_t(j)]);
  }
  return idx;
}

}  // namespace rlhf
