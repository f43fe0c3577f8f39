// Batched generation with a KV cache: prompts are left-padded and prefilled once, each prompt's n
// samples share that prefill (the cache rows are repeated), then one token per row per step.
// Finished rows leave the batch (the cache is compacted once enough of them are done), so they
// cost nothing. Every sample draws from its own seed: results do not depend on batching.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "model/transformer.h"

namespace rlhf {

class Tokenizer;

// The ids that end a response: the model's config.json eos_token_id(s), generation_config.json's, and
// the tokenizer's EOS (what transformers' generate() and TRL stop at, together). When the tokenizer's
// EOS is not among the model's, it says so once per model, naming both.
std::vector<int64_t> stop_token_ids(const Tokenizer& tok, const ModelConfig& cfg);

struct GenerateParams {
  int64_t max_new_tokens = 128;
  int64_t n = 1;                 // samples per prompt (sharing the prompt's prefill)
  SamplingParams sampling;
  uint64_t seed = 0;             // sample j of prompt i uses derive_seed(seed, prompt_offset + i, j)
  uint64_t prompt_offset = 0;    // index of prompts[0] in the whole run (so chunked runs reproduce)
  int64_t batch_rows = 32;       // max sequences decoded together
  std::vector<int64_t> eos_ids;  // any of these ends a sequence (kept in its ids)
  std::vector<std::string> stop_strings;  // ends a sequence once its text contains one (needs `decode`)
  int64_t pad_id = 0;            // filler for left padding (masked out)
  // Ids >= this are never sampled: a model whose embedding is larger than its tokenizer (rows padded
  // to a multiple of 64) would otherwise emit ids that decode to nothing. 0 = the whole vocabulary.
  // model_logprobs stay those of the raw model over every id.
  int64_t vocab_limit = 0;
  // Token ids -> text, for stop strings and Generation::text (e.g. Tokenizer::decode without specials).
  std::function<std::string(const std::vector<int64_t>&)> decode;
  bool progress = false;         // show a progress bar over prompts
  // Prefill the longest prefix that every prompt of a batch shares once and copy its cache into each
  // row, the rest of each prompt after it (left-padded in between, masked): same results, less prefill
  // when prompts start with the same instructions and few-shot examples (rlhf cai revise).
  bool share_prefix = false;
  int64_t min_shared_prefix = 16;  // shorter shared prefixes are prefilled with the rest
};

struct Generation {
  std::vector<int64_t> ids;            // generated tokens (EOS / the token completing a stop string included)
  std::vector<float> logprobs;         // log p(token) under the sampling distribution (0 when greedy)
  std::vector<float> model_logprobs;   // log p(token) under the raw model (temperature 1, no filtering)
  std::string finish_reason;           // "eos" | "stop" | "length"
  std::string text;                    // decoded response, cut before the stop string (needs `decode`)
  bool finished() const { return finish_reason == "eos" || finish_reason == "stop"; }
};

struct GenerateStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

// result[i][j] = sample j of prompt i. Prompts longer than the model's context are an error
// raised before any work. The model runs in eval mode under no-grad (and bf16 autocast if the
// runtime dtype is bf16).
std::vector<std::vector<Generation>> generate(TransformerImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                              const GenerateParams& params, GenerateStats* stats = nullptr);

}  // namespace rlhf
