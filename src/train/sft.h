// Supervised fine-tuning (and pretraining, which is SFT on raw text): next-token cross-entropy on
// the trained tokens of each example, normalised over all trained tokens of the effective batch.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "data/sft_data.h"
#include "model/lora.h"
#include "train/loop.h"

namespace rlhf {

struct SftConfig {
  std::string model;            // base model directory
  std::string tokenizer;        // "" = the model directory
  std::string data;             // training JSONL
  std::string eval_data;        // held-out JSONL ("" = split eval_split off the training data)
  double eval_split = 0.0;      // fraction of the training data held out when no eval file
  SftDataOptions data_opts;
  bool packing = false;         // pack short examples into full rows (attention stays per example)
  bool use_lora = false;
  LoraConfig lora;
  double dropout = -1;          // model dropout while training (-1 = as in config.json)
  std::string save_dtype = "fp32";  // fp32 | bf16 | fp16 for the saved model
  TrainConfig train;
  Json resolved = Json::object();  // the options as given (saved with the output and checkpoints)
};

void run_sft(const SftConfig& cfg);

// Pretraining a fresh model on raw text: documents (lines of text files, or {"text"} JSONL records)
// are tokenised, joined with EOS and cut into rows of seq_len tokens, all of them trained.
struct PretrainConfig {
  std::vector<std::string> text;   // .txt (one document per line) or .jsonl ({"text": ...}) files
  std::string tokenizer;           // "" = train a byte-level BPE on the text first
  int64_t vocab_size = 8000;       // for the trained tokenizer
  std::string chat_template = "plain";  // written into the trained tokenizer's tokenizer_config.json ("" = none)
  std::string arch = "gpt2";       // gpt2 | llama
  std::string size = "small";      // preset shape (see `rlhf init`)
  int64_t n_layer = 0, n_embd = 0, n_head = 0;  // overrides of the preset (0 = preset)
  int64_t seq_len = 256;
  int64_t n_ctx = 0;               // model context (0 = max(seq_len, preset))
  double eval_split = 0.02;
  std::string save_dtype = "fp32";
  TrainConfig train;
  Json resolved = Json::object();
};

void run_pretrain(const PretrainConfig& cfg);

// Sum of -log p over the trained tokens of a batch, plus hits of the argmax (for accuracy).
struct TokenLoss {
  torch::Tensor nll_sum;  // scalar, differentiable
  int64_t tokens = 0;
  int64_t correct = 0;
};
TokenLoss sft_token_loss(TransformerImpl& model, const Batch& b);
// The same from final hidden states (B, T, C) already computed for batch `b`.
TokenLoss sft_token_loss(TransformerImpl& model, const torch::Tensor& hidden, const Batch& b);
// Per-sequence sums of log p over the loss-masked tokens of a batch, and their counts: (B), (B).
// With `mean_logit_sums`, also (B) sums over those tokens of the logits' mean over the vocabulary
// (TRL's logits/chosen metric), from the head's mean row without forming the logits; no gradient.
std::pair<torch::Tensor, torch::Tensor> masked_sequence_logps(TransformerImpl& model, const Batch& b,
                                                              torch::Tensor* mean_logit_sums = nullptr);
// Mask, positions and segments of a batch as model inputs.
ForwardArgs batch_args(const Batch& b);

torch::ScalarType parse_save_dtype(const std::string& s);
// --max-length, --dropout and the LoRA options of SFT, checked before any work.
void validate_sft_options(const SftDataOptions& data, double dropout, const LoraConfig* lora);

}  // namespace rlhf
