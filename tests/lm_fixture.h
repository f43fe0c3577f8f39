// A tiny causal LM with a matching byte-level BPE tokenizer, written to a directory in Hugging Face
// layout: what the trainer tests start from. Built in-process in well under a second.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/transformer.h"
#include "tokenizer/bpe_trainer.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace rlhf::test {

inline void write_text_file(const std::filesystem::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

// Trains a ~320-token tokenizer on a small arithmetic/English corpus and saves it plus a random
// model of `arch` ("gpt2" or "llama") into `dir`.
inline void make_tiny_lm(const std::filesystem::path& dir, const std::string& arch = "llama", uint64_t seed = 1,
                         int64_t n_ctx = 128) {
  std::filesystem::create_directories(dir);
  std::string corpus;
  for (int a = 0; a < 10; ++a)
    for (int b = 0; b < 10; ++b)
      corpus += "What is " + std::to_string(a) + " plus " + std::to_string(b) + "? The answer is " +
                std::to_string(a + b) + ".\n";
  corpus += "The quick brown fox jumps over the lazy dog.\nHello world, this is a tiny corpus.\n";
  write_text_file(dir / "corpus.txt", corpus);
  BpeTrainOptions bo;
  bo.text_files = {dir / "corpus.txt"};
  bo.vocab_size = 320;
  bo.show_progress = false;
  auto trained = train_bpe(bo);
  write_json_atomic(dir / "tokenizer.json", trained.tokenizer_json);
  write_json_atomic(dir / "tokenizer_config.json", trained.config_json);
  auto tok = Tokenizer::load(dir);
  ModelConfig base = preset_config(arch, "tiny");
  Json j = base.to_json();
  j["vocab_size"] = tok->vocab_size();
  j[arch == "gpt2" ? "n_positions" : "max_position_embeddings"] = n_ctx;
  j["eos_token_id"] = tok->eos_id();
  auto model = make_model(ModelConfig::from_json(j, "tiny lm"), seed);
  save_model(*model, dir);
}

// The rows of a training run's metrics.jsonl.
inline std::vector<Json> read_metrics(const std::filesystem::path& out) {
  std::vector<Json> rows;
  std::ifstream in(out / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(Json::parse(line));
  return rows;
}

// `n` arithmetic {"prompt", "completion"} rows of SFT data.
inline void write_sft_data(const std::filesystem::path& p, int n) {
  std::ofstream f(p);
  for (int i = 0; i < n; ++i)
    f << Json({{"prompt", "What is " + std::to_string(i % 10) + " plus " + std::to_string(i % 7) + "?"},
               {"completion", " The answer is " + std::to_string(i % 10 + i % 7) + "."}})
             .dump()
      << "\n";
}

// For CLI tests: a tiny model (tmp/base) and 24 SFT rows (tmp/data.jsonl) in a temporary directory,
// and the `rlhf sft` command line that trains on them into tmp/OUT.
class TinySftCli : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tiny_lm(tmp / "base");
    write_sft_data(tmp / "data.jsonl", 24);
  }
  std::string sft(const std::string& out, const std::string& extra = "") {
    return rlhf_bin() + " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() +
           " --out " + (tmp / out).string() + " --batch-size 4 --lr 1e-3 " + extra;
  }
  TempDir tmp;
};

}  // namespace rlhf::test
