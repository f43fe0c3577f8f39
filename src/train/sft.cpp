#include "train/sft.h"

#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "model/logprobs.h"
#include "core/fs.h"
#include "core/lock.h"
#include "train/checkpoint.h"
#include "io/jsonl.h"
#include "tokenizer/bpe_trainer.h"

#include <fstream>

namespace rlhf {

void validate_sft_options(const SftDataOptions& d, double dropout, const LoraConfig* lora) {
  RLHF_CHECK(d.max_length >= 2, "--max-length ", d.max_length, " must be at least 2 tokens");
  RLHF_CHECK(dropout == -1 || (std::isfinite(dropout) && dropout >= 0 && dropout < 1), "--dropout ", dropout,
             " must be in [0, 1) (or -1 = as in config.json)");
  if (lora) validate_lora_config(*lora);
}

torch::ScalarType parse_save_dtype(const std::string& s) {
  if (s == "fp32") return torch::kFloat;
  if (s == "bf16") return torch::kBFloat16;
  if (s == "fp16") return torch::kHalf;
  RLHF_FAIL("--save-dtype '", s, "' is not known; use fp32, bf16 or fp16");
}

std::pair<torch::Tensor, torch::Tensor> masked_sequence_logps(TransformerImpl& model, const Batch& b,
                                                              torch::Tensor* mean_logit_sums) {
  const int64_t B = b.ids.size(0), T = b.ids.size(1);
  auto h = model.hidden(b.ids, batch_args(b)).narrow(1, 0, T - 1);  // (B, T-1, C)
  auto sel = b.loss_mask.narrow(1, 1, T - 1);                         // (B, T-1)
  auto targets = b.ids.narrow(1, 1, T - 1).masked_select(sel);
  auto hs = h.index({sel});                                           // (N, C)
  auto lp = token_logprobs(model, hs, targets);                       // (N)
  auto rows = torch::arange(B, b.ids.options()).unsqueeze(1).expand({B, T - 1}).masked_select(sel);
  auto sums = torch::zeros({B}, lp.options()).index_add(0, rows, lp);
  if (mean_logit_sums) {
    // mean_v (h W^T)_v = h . mean_v W_v; a LoRA head adds scale * (h A^T) . mean_v B_v.
    torch::NoGradGuard ng;
    auto hf = hs.detach().to(torch::kFloat);
    auto ml = torch::mv(hf, model.lm_head_weight().detach().to(torch::kFloat).mean(0));  // (N)
    if (auto head = model.existing_lm_head_linear(); head && head->has_lora())
      ml += torch::mv(torch::matmul(hf, head->lora_A->weight.t().to(torch::kFloat)),
                      head->lora_B->weight.to(torch::kFloat).mean(0)) * head->lora_scaling;
    *mean_logit_sums = torch::zeros({B}, ml.options()).index_add(0, rows, ml);
  }
  auto counts = sel.sum(1).to(torch::kFloat);
  return {sums, counts};
}

ForwardArgs batch_args(const Batch& b) {
  ForwardArgs a;
  a.attention_mask = b.attention_mask;
  a.segment_ids = b.segment_ids;
  a.position_ids = b.position_ids;
  return a;
}

TokenLoss sft_token_loss(TransformerImpl& model, const Batch& b) {
  return sft_token_loss(model, model.hidden(b.ids, batch_args(b)), b);
}

TokenLoss sft_token_loss(TransformerImpl& model, const torch::Tensor& hidden, const Batch& b) {
  const int64_t T = b.ids.size(1);
  auto h = hidden.narrow(1, 0, T - 1);                      // (B, T-1, C) predicts ids[:, 1:]
  auto sel = b.loss_mask.narrow(1, 1, T - 1);               // (B, T-1)
  auto targets = b.ids.narrow(1, 1, T - 1).masked_select(sel);
  auto hs = h.index({sel});                                 // (N, C)
  torch::Tensor hits;
  auto logp = token_logprobs(model, hs, targets, /*chunk=*/1024, &hits);
  TokenLoss out;
  out.nll_sum = -logp.sum();
  out.tokens = targets.numel();
  out.correct = hits.sum().item<int64_t>();
  return out;
}

namespace {

// The SFT loop over tokenised examples (shared by sft and pretrain).
void train_causal_lm(Transformer model, std::shared_ptr<Tokenizer> tok, std::vector<TokenizedExample> train,
                     std::vector<TokenizedExample> eval, const TrainConfig& tcfg, bool use_lora, LoraConfig lora_cfg,
                     double dropout, const std::string& save_dtype, const std::string& name, Json resolved) {
  // 2. model: dropout, LoRA
  if (dropout >= 0) model->set_dropout(dropout);
  std::optional<LoraConfig> lora;
  if (use_lora) {
    LoraConfig lc = lora_cfg;
    auto adapted = attach_lora(*model, lc, tcfg.seed);
    log_info("LoRA r=", lc.r, " alpha=", lc.alpha, " on ", adapted.size(), " modules");
    lora = lc;
  }
  const int64_t pad = tok->pad_id() >= 0 ? tok->pad_id() : (tok->eos_id() >= 0 ? tok->eos_id() : 0);
  const torch::Device dev = device();

  // 3. the loop
  TrainHooks hooks;
  hooks.weight = [&](int64_t i) { return double(train[size_t(i)].loss_tokens()); };
  hooks.micro_step = [&](const std::vector<int64_t>& idx, double denom, StepMetrics& m) {
    std::vector<const TokenizedExample*> ex;
    for (auto i : idx) ex.push_back(&train[size_t(i)]);
    Batch b = collate(ex, pad, dev);
    TokenLoss tl;
    {
      ComputeScope cs;
      tl = sft_token_loss(*model, b);
    }
    (tl.nll_sum / denom).backward();
    m.add("loss", tl.nll_sum.item<double>(), double(tl.tokens));
    m.add("mean_token_accuracy", double(tl.correct), double(tl.tokens));
    m.add("num_tokens", double(b.tokens), 1);
  };
  if (!eval.empty()) {
    hooks.evaluate = [&]() {
      double nll = 0, n = 0, correct = 0;
      const int64_t mb = tcfg.micro_batch_size > 0 ? tcfg.micro_batch_size : tcfg.batch_size;
      for (size_t i = 0; i < eval.size(); i += size_t(mb)) {
        std::vector<const TokenizedExample*> ex;
        for (size_t k = i; k < std::min(eval.size(), i + size_t(mb)); ++k) ex.push_back(&eval[k]);
        ComputeScope cs;
        auto tl = sft_token_loss(*model, collate(ex, pad, dev));
        nll += tl.nll_sum.item<double>();
        n += double(tl.tokens);
        correct += double(tl.correct);
      }
      double loss = nll / std::max(n, 1.0);
      return Json{{"loss", loss}, {"perplexity", std::exp(loss)}, {"mean_token_accuracy", correct / std::max(n, 1.0)}};
    };
  }
  hooks.save_output = [&](const std::filesystem::path& dir) {
    if (lora) save_lora(*model, *lora, dir);
    else save_model(*model, dir, parse_save_dtype(save_dtype));
    tok->save(dir);
  };
  resolved["_runtime"] = {{"threads", runtime().threads}, {"dtype", runtime().dtype}, {"device", runtime().device}};
  run_training(tcfg, *model, lora, int64_t(train.size()), hooks, name, resolved);
}

}  // namespace

void run_sft(const SftConfig& cfg) {
  RLHF_CHECK(!cfg.model.empty(), "--model is required");
  RLHF_CHECK(!cfg.data.empty(), "--data is required");
  RLHF_CHECK(cfg.eval_split >= 0 && cfg.eval_split < 1, "--eval-split must be in [0, 1)");
  validate_train_config(cfg.train);
  validate_sft_options(cfg.data_opts, cfg.dropout, cfg.use_lora ? &cfg.lora : nullptr);
  parse_save_dtype(cfg.save_dtype);  // now, not after training
  DirLock out_lock(cfg.train.out);
  if (claim_training_output(cfg.train.out, "sft", cfg.resolved, cfg.train.resume, cfg.train.overwrite_output_dir,
                            cfg.train.resume_anyway))
    return;  // finished already
  auto tok = Tokenizer::load(cfg.tokenizer.empty() ? cfg.model : cfg.tokenizer);
  ModelConfig mc = config_of_model_or_adapter(cfg.model);
  RLHF_CHECK(mc.head == Head::LM, cfg.model, ": is a score model; SFT needs a causal LM");
  RLHF_CHECK(tok->vocab_size() <= mc.vocab_size, "the tokenizer has ", tok->vocab_size(),
             " tokens but the model's embedding has ", mc.vocab_size, " rows; pass the matching --tokenizer");
  SftDataOptions dopt = cfg.data_opts;
  std::string cap_note;  // said with the data line below, so that a bad line stays the only output
  dopt.max_length = cap_to_context(dopt.max_length, mc, &cap_note);

  // 1. data: tokenise once, split or read the eval set, optionally pack
  SftDataStats st;
  auto train = load_sft_data(cfg.data, *tok, dopt, &st);
  log_info("train data ", cfg.data, ": ", st.describe(), cap_note.empty() ? "" : "; " + cap_note);
  std::vector<TokenizedExample> eval;
  if (!cfg.eval_data.empty()) {
    SftDataStats es;
    eval = load_sft_data(cfg.eval_data, *tok, dopt, &es);
    log_info("eval data ", cfg.eval_data, ": ", es.describe());
  } else if (cfg.eval_split > 0) {
    eval = split_off_eval(train, cfg.eval_split, cfg.train.seed);
    log_info("held out ", eval.size(), " examples for evaluation");
  }
  if (cfg.packing) {
    size_t before = train.size();
    train = pack_examples(train, dopt.max_length);
    log_info("packed ", before, " examples into ", train.size(), " rows of up to ", dopt.max_length, " tokens");
  }
  auto model = load_model_or_adapter(cfg.model);  // an adapter is merged into its base: SFT continues from both
  merge_lora(*model);
  LoraConfig lc = cfg.lora;
  lc.base_model = cfg.model;
  train_causal_lm(model, tok, std::move(train), std::move(eval), cfg.train, cfg.use_lora, lc, cfg.dropout,
                  cfg.save_dtype, "sft", cfg.resolved);
}

namespace {

// Documents of a pretraining corpus: lines of a text file, or "text" fields of a JSONL / JSON array
// file (.jsonl, .json, either gzipped).
std::vector<std::string> read_documents(const std::string& path) {
  std::vector<std::string> docs;
  if (path.ends_with(".jsonl") || path.ends_with(".jsonl.gz") || path.ends_with(".json") || path.ends_with(".json.gz")) {
    for (auto& r : read_jsonl(path)) {
      auto it = r.value.find("text");
      RLHF_CHECK(it != r.value.end() && it->is_string(), r.where(), ": expected a string field \"text\"");
      docs.push_back(it->get<std::string>());
    }
  } else {
    std::ifstream in(path);
    RLHF_CHECK(in.good(), path, ": cannot open the text file");
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      check_text_length(line, path + ":" + std::to_string(lineno));
      docs.push_back(line);
    }
  }
  RLHF_CHECK(!docs.empty(), path, ": no documents (the file is empty)");
  return docs;
}

}  // namespace

void run_pretrain(const PretrainConfig& cfg) {
  RLHF_CHECK(!cfg.text.empty(), "--text is required");
  RLHF_CHECK(cfg.seq_len >= 8, "--seq-len must be at least 8");
  RLHF_CHECK(cfg.eval_split >= 0 && cfg.eval_split < 1, "--eval-split must be in [0, 1)");
  RLHF_CHECK(cfg.n_ctx == 0 || cfg.n_ctx >= cfg.seq_len, "--n-ctx ", cfg.n_ctx, " is shorter than --seq-len ", cfg.seq_len);
  validate_train_config(cfg.train);
  parse_save_dtype(cfg.save_dtype);
  DirLock out_lock(cfg.train.out);
  if (claim_training_output(cfg.train.out, "pretrain", cfg.resolved, cfg.train.resume, cfg.train.overwrite_output_dir,
                            cfg.train.resume_anyway))
    return;  // finished already
  // 1. tokenizer: given, or trained on the corpus
  std::shared_ptr<Tokenizer> tok;
  if (!cfg.tokenizer.empty()) {
    tok = Tokenizer::load(cfg.tokenizer);
  } else {
    BpeTrainOptions bo;
    for (auto& t : cfg.text) bo.text_files.push_back(t);
    bo.vocab_size = cfg.vocab_size;
    auto trained = train_bpe(bo);
    auto dir = std::filesystem::path(cfg.train.out);
    ensure_directory(dir);
    write_json_atomic(dir / "tokenizer.json", trained.tokenizer_json);
    Json tc = trained.config_json;
    if (!cfg.chat_template.empty()) {
      // The template later stages find by themselves (SFT, sampling, reward model, RL, DPO).
      auto tpl = ChatTemplate::named(cfg.chat_template, tc.value("bos_token", ""), tc.value("eos_token", ""));
      tc["chat_template"] = tpl.jinja();
    }
    write_json_atomic(dir / "tokenizer_config.json", tc);
    tok = Tokenizer::load(dir);
  }
  RLHF_CHECK(tok->eos_id() >= 0, "the tokenizer has no EOS token to separate documents; set eos_token in tokenizer_config.json");

  // 2. data: documents -> one stream with EOS between -> rows of seq_len
  std::vector<int64_t> stream;
  int64_t n_docs = 0;
  for (auto& f : cfg.text)
    for (auto& d : read_documents(f)) {
      auto ids = tok->encode(d, /*add_special_tokens=*/true);
      stream.insert(stream.end(), ids.begin(), ids.end());
      stream.push_back(tok->eos_id());
      ++n_docs;
    }
  std::vector<TokenizedExample> rows;
  for (size_t i = 0; i + size_t(cfg.seq_len) <= stream.size(); i += size_t(cfg.seq_len)) {
    TokenizedExample e;
    e.ids.assign(stream.begin() + long(i), stream.begin() + long(i) + cfg.seq_len);
    e.loss_mask.assign(size_t(cfg.seq_len), 1);
    e.loss_mask[0] = 0;
    rows.push_back(std::move(e));
  }
  RLHF_CHECK(rows.size() >= 2, "the corpus has ", stream.size(), " tokens, fewer than two rows of --seq-len ", cfg.seq_len);
  std::vector<TokenizedExample> train, eval;
  auto order = epoch_order(int64_t(rows.size()), cfg.train.seed ^ 0x5eedull, 0);
  int64_t n_eval = cfg.eval_split > 0 ? std::max<int64_t>(1, int64_t(double(rows.size()) * cfg.eval_split)) : 0;
  for (size_t i = 0; i < order.size(); ++i) (int64_t(i) < n_eval ? eval : train).push_back(rows[size_t(order[i])]);
  log_info("pretrain data: ", n_docs, " documents, ", stream.size(), " tokens -> ", train.size(), " training rows and ",
           eval.size(), " eval rows of ", cfg.seq_len, " tokens");

  // 3. a fresh model sized for this tokenizer
  Json j = preset_config(cfg.arch, cfg.size).to_json();
  bool gpt2 = cfg.arch == "gpt2";
  int64_t vocab = (tok->vocab_size() + 63) / 64 * 64;
  j["vocab_size"] = vocab;
  int64_t ctx = cfg.n_ctx > 0 ? cfg.n_ctx : std::max<int64_t>(cfg.seq_len, j[gpt2 ? "n_positions" : "max_position_embeddings"].get<int64_t>());
  j[gpt2 ? "n_positions" : "max_position_embeddings"] = ctx;
  if (cfg.n_layer > 0) j[gpt2 ? "n_layer" : "num_hidden_layers"] = cfg.n_layer;
  if (cfg.n_head > 0) {
    j[gpt2 ? "n_head" : "num_attention_heads"] = cfg.n_head;
    if (!gpt2) j["num_key_value_heads"] = cfg.n_head;
  }
  if (cfg.n_embd > 0) {
    j[gpt2 ? "n_embd" : "hidden_size"] = cfg.n_embd;
    if (gpt2) j["n_inner"] = nullptr;
    else j["intermediate_size"] = ((cfg.n_embd * 8 / 3) + 63) / 64 * 64;
  }
  if (!gpt2) j.erase("head_dim");
  j["eos_token_id"] = tok->eos_id();
  if (tok->bos_id() >= 0) j["bos_token_id"] = tok->bos_id();
  if (tok->pad_id() >= 0) j["pad_token_id"] = tok->pad_id();
  auto model = make_model(ModelConfig::from_json(j, "pretrain options"), cfg.train.seed);
  log_info("model: ", model->config().describe());
  train_causal_lm(model, tok, std::move(train), std::move(eval), cfg.train, false, LoraConfig{}, -1, cfg.save_dtype,
                  "pretrain", cfg.resolved);
}

}  // namespace rlhf
