// SFT and the shared training loop: accumulation invariance, exact resume after kill -9, which
// parameters move, loss masking, packing, LoRA merge, NaN handling and bad data.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/runtime.h"
#include "data/sft_data.h"
#include "io/jsonl.h"
#include "lm_fixture.h"
#include "model/logprobs.h"
#include "model/lora.h"
#include "test_tensor_util.h"
#include "test_util.h"
#include "train/sft.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

void write_sft_data(const fs::path& p, int n, uint64_t seed = 0) {
  std::ofstream f(p);
  for (int i = 0; i < n; ++i) {
    int a = int((i * 7 + seed) % 10), b = int((i * 3 + seed * 5) % 10);
    f << Json({{"prompt", "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?"},
               {"completion", " The answer is " + std::to_string(a + b) + "."}})
             .dump()
      << "\n";
  }
}

SftConfig base_config(const fs::path& model, const fs::path& data, const fs::path& out) {
  SftConfig c;
  c.model = model.string();
  c.data = data.string();
  c.train.out = out.string();
  c.train.batch_size = 8;
  c.train.adam.lr = 1e-3;
  c.train.max_grad_norm = 0;
  c.dropout = 0;
  return c;
}

class SftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tiny_lm(tmp / "base");
    write_sft_data(tmp / "data.jsonl", 32);
  }
  TempDir tmp;
};

TEST_F(SftTest, AccumulatedMicroBatchesEqualOneBigBatch) {
  // Examples of different lengths: the loss is normalised over the tokens of the whole batch.
  std::ofstream f(tmp / "mixed.jsonl");
  for (int i = 0; i < 8; ++i)
    f << Json({{"prompt", std::string(size_t(i + 1), 'x') + " What is 1 plus 2?"},
               {"completion", std::string(" The answer is 3.") + std::string(size_t(i % 3), '!')}})
             .dump()
      << "\n";
  f.close();
  auto one = base_config(tmp / "base", tmp / "mixed.jsonl", tmp / "big");
  one.train.max_steps = 1;
  one.train.shuffle = false;
  run_sft(one);
  auto acc = one;
  acc.train.out = (tmp / "acc").string();
  acc.train.micro_batch_size = 1;
  run_sft(acc);
  auto a = read_metrics(tmp / "big"), b = read_metrics(tmp / "acc");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NEAR(a[0]["loss"].get<double>(), b[0]["loss"].get<double>(), 1e-5);
  EXPECT_NEAR(a[0]["grad_norm"].get<double>(), b[0]["grad_norm"].get<double>(), 1e-5);
  SafetensorsReader wa(tmp / "big"), wb(tmp / "acc");
  for (auto& n : wa.names()) EXPECT_LT(max_abs_diff(wa.load(n), wb.load(n)), 1e-5) << n;
}

TEST_F(SftTest, EveryTrainableParameterMovesAndFrozenOnesDoNot) {
  for (bool lora : {false, true}) {
    auto c = base_config(tmp / "base", tmp / "data.jsonl", tmp / (lora ? "lora" : "full"));
    c.train.max_steps = 1;
    c.use_lora = lora;
    c.lora.r = 4;
    c.lora.dropout = 0;
    run_sft(c);
    auto before = load_model(tmp / "base");
    if (!lora) {
      auto after = load_model(tmp / "full");
      auto pa = after->named_parameters(), pb = before->named_parameters();
      for (auto& item : pb) EXPECT_GT(max_abs_diff(item.value(), pa[item.key()]), 0) << item.key() << " did not move";
    } else {
      // LoRA: every adapter moved (B starts at 0), the base weights are what they were.
      SafetensorsFile ad(tmp / "lora" / "adapter_model.safetensors");
      int b_count = 0;
      for (auto& info : ad.tensors())
        if (info.name.find("lora_B") != std::string::npos) {
          EXPECT_GT(ad.load(info.name).abs().max().item<double>(), 0) << info.name;
          ++b_count;
        }
      EXPECT_EQ(b_count, 2 * 7);  // 2 layers x q,k,v,o,gate,up,down
      auto m = load_model(tmp / "base");
      load_lora(*m, tmp / "lora");
      auto pb = before->named_parameters();
      for (auto& item : m->named_parameters()) {
        if (item.key().find("lora_") == std::string::npos) {
          EXPECT_EQ(max_abs_diff(item.value(), pb[item.key()]), 0) << item.key() << " moved";
        }
      }
    }
  }
}

TEST_F(SftTest, LossFallsOnASmallDataset) {
  auto c = base_config(tmp / "base", tmp / "data.jsonl", tmp / "out");
  c.train.epochs = 6;
  c.train.adam.lr = 3e-3;
  run_sft(c);
  auto rows = read_metrics(tmp / "out");
  ASSERT_GE(rows.size(), 20u);
  for (const char* k : {"loss", "grad_norm", "learning_rate", "num_tokens", "mean_token_accuracy", "tokens_per_second", "step_time"})
    EXPECT_TRUE(rows.back().contains(k)) << "metrics.jsonl lacks " << k;
  EXPECT_GT(rows.back()["step_time"].get<double>(), 0.0);
  double first = rows.front()["loss"].get<double>(), last = rows.back()["loss"].get<double>();
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

TEST_F(SftTest, PromptTokensGetNoLossAndNoGradient) {
  auto tok = Tokenizer::load(tmp / "base");
  auto model = load_model(tmp / "base");
  SftDataOptions o;
  auto ex = tokenize_sft_record(Json{{"prompt", "What is 2 plus 3?"}, {"completion", " The answer is 5."}}, "x", *tok, o);
  Batch b = collate({&ex}, 0, device());
  auto h = model->hidden(b.ids, batch_args(b)).detach().requires_grad_(true);
  auto tl = sft_token_loss(*model, h, b);
  tl.nll_sum.backward();
  auto g = h.grad().squeeze(0).abs().sum(-1);  // (T): gradient reaching each position's final state
  const int64_t T = b.ids.size(1);
  int64_t trained = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    bool target_trained = ex.loss_mask[size_t(t + 1)] != 0;
    trained += target_trained;
    if (target_trained) EXPECT_GT(g[t].item<double>(), 0) << "position " << t;
    else EXPECT_EQ(g[t].item<double>(), 0) << "prompt position " << t << " got gradient";
  }
  EXPECT_EQ(trained, tl.tokens);
  // The completion text (+ EOS) is exactly what is trained.
  std::vector<int64_t> trained_ids;
  for (size_t t = 0; t < ex.ids.size(); ++t)
    if (ex.loss_mask[t]) trained_ids.push_back(ex.ids[t]);
  EXPECT_EQ(tok->decode(trained_ids, true), " The answer is 5.");
  EXPECT_EQ(trained_ids.back(), tok->eos_id());
}

TEST_F(SftTest, PackedRowsGiveThePerExampleLossOfUnpackedOnes) {
  auto tok = Tokenizer::load(tmp / "base");
  auto model = load_model(tmp / "base");
  model->eval();
  SftDataStats st;
  auto ex = load_sft_data(tmp / "data.jsonl", *tok, SftDataOptions{}, &st);
  ex.resize(6);
  auto packed = pack_examples(ex, 64);
  ASSERT_LT(packed.size(), ex.size());
  double separate = 0;
  torch::NoGradGuard ng;
  for (auto& e : ex) separate += sft_token_loss(*model, collate({&e}, 0, device())).nll_sum.item<double>();
  std::vector<const TokenizedExample*> rows;
  for (auto& p : packed) rows.push_back(&p);
  double together = sft_token_loss(*model, collate(rows, 0, device())).nll_sum.item<double>();
  EXPECT_NEAR(separate, together, 1e-3 * std::abs(separate) / 100 + 1e-4);
}

TEST_F(SftTest, KillNineThenResumeIsBitIdentical) {
  auto bin = rlhf_bin();
  std::string common = " sft --model " + (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() +
                       " --batch-size 4 --max-steps 24 --save-steps 3 --lr 1e-3 --dropout 0.1 --threads 1 -q";
  auto full = run_command(bin + common + " --out " + (tmp / "full").string());
  ASSERT_EQ(full.exit_code, 0) << full.err;
  // Start the same run, kill -9 it once it has written a checkpoint, resume to the end.
  std::string out = (tmp / "killed").string();
  bool killed = run_and_kill_when(bin + common + " --out " + out, fs::path(out) / "checkpoints" / "step-000006");
  ASSERT_TRUE(killed) << "the run never wrote a checkpoint";
  ASSERT_FALSE(fs::exists(fs::path(out) / "model.safetensors")) << "the run finished before it was killed";
  auto resumed = run_command(bin + common + " --out " + out + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(read_bytes(tmp / "full" / "model.safetensors") == read_bytes(fs::path(out) / "model.safetensors"))
      << "final weights differ";
  auto a = read_metrics(tmp / "full"), b = read_metrics(out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i + 1;
}

// --gradient-checkpointing changes memory, not results: the same run (dropout on) with and without
// it gives the same losses, gradient norms and final weights, full and LoRA.
TEST_F(SftTest, GradientCheckpointingTrainsTheSameModel) {
  for (std::string lora : {"", " --lora"}) {
    std::string common = " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() +
                         " --batch-size 4 --max-steps 4 --lr 1e-3 --dropout 0.1 --threads 1" + lora;
    auto plain = run_command(rlhf_bin() + common + " --out " + (tmp / "plain").string());
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    auto ckpt = run_command(rlhf_bin() + common + " --gradient-checkpointing --out " + (tmp / "ckpt").string());
    ASSERT_EQ(ckpt.exit_code, 0) << ckpt.err;
    auto a = read_metrics(tmp / "plain"), b = read_metrics(tmp / "ckpt");
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << lora << " step " << i + 1;
      EXPECT_NEAR(a[i]["grad_norm"].get<double>(), b[i]["grad_norm"].get<double>(), 1e-4) << lora << " step " << i + 1;
    }
    const std::string file = lora.empty() ? "model.safetensors" : "adapter_model.safetensors";
    SafetensorsReader wa(tmp / "plain" / file), wb(tmp / "ckpt" / file);
    ASSERT_EQ(wa.names().size(), wb.names().size());
    // Adam divides by the gradient's running RMS, so last-bit differences in small gradients (the
    // recomputed blocks accumulate in another order) move weights by up to ~1e-5 after 4 steps of 1e-3.
    for (auto& n : wa.names()) EXPECT_LT(max_abs_diff(wa.load(n), wb.load(n)), 1e-4) << lora << " " << n;
    EXPECT_EQ(read_json_file(tmp / "ckpt" / "sft_config.json").value("gradient-checkpointing", false), true);
    fs::remove_all(tmp / "plain");
    fs::remove_all(tmp / "ckpt");
  }
}

TEST_F(SftTest, MergedLoraGivesTheLogitsOfBasePlusAdapter) {
  auto c = base_config(tmp / "base", tmp / "data.jsonl", tmp / "lora");
  c.train.max_steps = 3;
  c.use_lora = true;
  c.lora.r = 4;
  run_sft(c);
  auto with_adapter = load_model(tmp / "base");
  load_lora(*with_adapter, tmp / "lora");
  auto merged = load_model(tmp / "base");
  load_lora(*merged, tmp / "lora");
  merge_lora(*merged);
  with_adapter->eval();
  merged->eval();
  torch::NoGradGuard ng;
  auto ids = torch::randint(300, {2, 20}, torch::kLong).to(device());
  EXPECT_LT(max_abs_diff(with_adapter->forward(ids), merged->forward(ids)), 1e-5);
  // Adapters off = the base model exactly.
  auto base = load_model(tmp / "base");
  base->eval();
  {
    AdaptersDisabled off(*with_adapter);
    EXPECT_EQ(max_abs_diff(with_adapter->forward(ids), base->forward(ids)), 0);
  }
  EXPECT_GT(max_abs_diff(with_adapter->forward(ids), base->forward(ids)), 1e-4);
  // And through the CLI.
  auto r = run_command(rlhf_bin() + " -q merge --model " + (tmp / "base").string() + " --adapter " +
                       (tmp / "lora").string() + " --out " + (tmp / "merged").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto from_cli = load_model(tmp / "merged");
  from_cli->eval();
  EXPECT_LT(max_abs_diff(from_cli->forward(ids), merged->forward(ids)), 1e-5);
  // Commands that read a model take the adapter directory as it is (issue 16): the base and its
  // tokenizer come from base_model_name_or_path, and the log-probs are the merged model's.
  fs::remove(tmp / "lora" / "tokenizer.json");  // a PEFT adapter as other tools write it: no tokenizer
  fs::remove(tmp / "lora" / "tokenizer_config.json");
  auto lp = [&](const fs::path& m) {
    auto r = run_command(rlhf_bin() + " -q logprobs --model " + m.string() + " --ids 1,5,9,20,33");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? Json::parse(r.out)["logprobs"] : Json();
  };
  Json a = lp(tmp / "lora"), b = lp(tmp / "merged");
  ASSERT_EQ(a.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(a[i].get<double>(), b[i].get<double>(), 1e-5);
  r = run_command(rlhf_bin() + " -q generate --model " + (tmp / "lora").string() +
                  " --prompt 'What is 1 plus 2?' --temperature 0 --max-new-tokens 4");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto g = run_command(rlhf_bin() + " -q generate --model " + (tmp / "merged").string() +
                       " --prompt 'What is 1 plus 2?' --temperature 0 --max-new-tokens 4");
  EXPECT_EQ(Json::parse(r.out)["response_ids"], Json::parse(g.out)["response_ids"]);
}

// PEFT lets an adapter target "lm_head" also when the head is tied to the embedding (SmolLM2, GPT-2);
// issue 16: such an adapter attaches, saves, loads and merges, and merging unties the head instead of
// changing the embedding.
TEST_F(SftTest, LoraOnATiedHeadAttachesSavesLoadsAndMergesByUntying) {
  for (const std::string arch : {"llama", "gpt2"}) {
    SCOPED_TRACE(arch);
    Json c = preset_config(arch, "tiny").to_json();
    c["tie_word_embeddings"] = true;
    c["vocab_size"] = 320;
    auto cfg = ModelConfig::from_json(c, "tied");
    auto model = make_model(cfg, 5);
    LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = 0;
    lc.target_modules = {arch == "gpt2" ? "c_attn" : "q_proj", "lm_head"};
    auto adapted = attach_lora(*model, lc, 9);
    EXPECT_NE(std::find(adapted.begin(), adapted.end(), "lm_head"), adapted.end());
    torch::Tensor emb = model->lm_head_weight().detach().clone();
    {
      torch::NoGradGuard ng;
      for (auto& item : model->named_parameters(true))
        if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.5);
    }
    model->eval();
    torch::NoGradGuard ng;
    auto ids = torch::randint(320, {2, 9}, torch::kLong).to(device());
    auto h = model->hidden(ids);
    auto lin = model->lm_head_linear();
    auto want = torch::matmul(h, emb.t()) + torch::matmul(torch::matmul(h, lin->lora_A->weight.t()), lin->lora_B->weight.t()) * 2.0;
    auto got = model->forward(ids);
    EXPECT_LT(max_abs_diff(got, want), 1e-4);
    {
      AdaptersDisabled off(*model);
      EXPECT_LT(max_abs_diff(model->forward(ids), torch::matmul(model->hidden(ids), emb.t())), 1e-4);
    }
    // Saved and loaded as PEFT names it (base_model.model.lm_head.lora_A.weight).
    save_model(*model, tmp / (arch + "_base"));
    save_lora(*model, lc, tmp / (arch + "_lora"));
    SafetensorsFile f(tmp / (arch + "_lora") / "adapter_model.safetensors");
    EXPECT_TRUE(f.find("base_model.model.lm_head.lora_A.weight"));
    EXPECT_TRUE(f.find("base_model.model.lm_head.lora_B.weight"));
    auto again = load_model(tmp / (arch + "_base"));
    load_lora(*again, tmp / (arch + "_lora"));
    again->eval();
    EXPECT_LT(max_abs_diff(again->forward(ids), got), 1e-4);
    // Merged: the head unties; the embedding is what it was.
    merge_lora(*again);
    EXPECT_FALSE(again->config().tie_word_embeddings);
    EXPECT_LT(max_abs_diff(again->forward(ids), got), 1e-4);
    auto embedding = arch == "gpt2" ? again->named_parameters()["transformer.wte.weight"]
                                    : again->named_parameters()["model.embed_tokens.weight"];
    EXPECT_EQ(max_abs_diff(embedding, emb), 0);
    save_model(*again, tmp / (arch + "_merged"));
    auto merged = load_model(tmp / (arch + "_merged"));
    merged->eval();
    EXPECT_FALSE(merged->config().tie_word_embeddings);
    EXPECT_LT(max_abs_diff(merged->forward(ids), got), 1e-4);
  }
}

TEST_F(SftTest, NanLossSkipsStepsThenStops) {
  // A learning rate no float can hold: the first update makes the weights infinite, every later loss
  // is NaN. (A model file with infinite weights is refused at load, see Hardening.*.)
  auto c = base_config(tmp / "base", tmp / "data.jsonl", tmp / "out");
  c.train.adam.lr = 1e39;
  c.train.max_steps = 10;
  c.train.max_bad_steps = 3;
  expect_error([&] { run_sft(c); }, {"3 consecutive steps", "NaN", "no checkpoint"});
  EXPECT_FALSE(fs::exists(tmp / "out" / "model.safetensors"));
}

TEST_F(SftTest, BadDataIsReportedWithFileAndLine) {
  auto tok = Tokenizer::load(tmp / "base");
  auto check = [&](const std::string& content, std::initializer_list<std::string> parts) {
    write_text_file(tmp / "bad.jsonl", content);
    expect_error([&] { load_sft_data(tmp / "bad.jsonl", *tok, SftDataOptions{}); }, parts, content.c_str());
  };
  check("{\"prompt\": \"a\", \"completion\": \"b\"}\n{not json}\n", {"bad.jsonl:2", "invalid JSON"});
  check("{\"prompt\": \"a\"}\n", {"bad.jsonl:1", "no \"completion\""});
  check("{\"prompt\": \"a\", \"completion\": 5}\n", {"bad.jsonl:1", "\"completion\"", "string"});
  check("{\"foo\": 1}\n", {"bad.jsonl:1", "\"text\""});
  check("", {"bad.jsonl", "empty"});
  check("[1, 2]\n", {"bad.jsonl:1", "object"});
  // --skip-bad-lines: the good lines are kept and the bad ones counted.
  write_text_file(tmp / "mixed.jsonl", "{\"text\": \"hello world\"}\n{oops\n{\"text\": \"more\"}\n");
  SftDataOptions skip;
  skip.skip_bad_lines = true;
  SftDataStats st;
  auto ex = load_sft_data(tmp / "mixed.jsonl", *tok, skip, &st);
  EXPECT_EQ(ex.size(), 2u);
  EXPECT_EQ(st.bad_lines, 1);
  // Examples longer than max length are truncated (counted); ones left with nothing to train are dropped.
  SftDataOptions shortlen;
  shortlen.max_length = 6;
  write_text_file(tmp / "long.jsonl",
                  "{\"prompt\": \"What is 1 plus 2? What is 1 plus 2? What is 1 plus 2?\", \"completion\": \" 3\"}\n"
                  "{\"text\": \"The quick brown fox jumps over the lazy dog.\"}\n");
  auto ex2 = load_sft_data(tmp / "long.jsonl", *tok, shortlen, &st);
  EXPECT_EQ(ex2.size(), 1u);
  EXPECT_EQ(st.dropped_no_loss, 1);
  EXPECT_EQ(st.truncated, 2);
  write_text_file(tmp / "allmasked.jsonl",
                  "{\"prompt\": \"What is 1 plus 2? What is 1 plus 2? What is 1 plus 2?\", \"completion\": \" 3\"}\n");
  expect_error([&] { load_sft_data(tmp / "allmasked.jsonl", *tok, shortlen); }, {"allmasked.jsonl", "--max-length"});
}

// Unpaired preference data (TRL's KTO format) given to SFT: the undesirable completions are not
// trained on (issue 16), they are skipped and counted; a file of only those is refused.
TEST_F(SftTest, UndesirableCompletionsAreSkippedNotTrained) {
  auto tok = Tokenizer::load(tmp / "base");
  write_text_file(tmp / "kto.jsonl", R"({"prompt": "What is 1 plus 2?", "completion": " The answer is 3.", "label": true})" "\n"
                                     R"({"prompt": "What is 1 plus 2?", "completion": " The quick brown fox.", "label": false})" "\n"
                                     R"({"prompt": "What is 2 plus 2?", "completion": " The answer is 4."})" "\n");
  SftDataStats st;
  auto ex = load_sft_data(tmp / "kto.jsonl", *tok, SftDataOptions{}, &st);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].source_line, 1);
  EXPECT_EQ(ex[1].source_line, 3);
  EXPECT_EQ(st.undesirable, 1);
  EXPECT_NE(st.describe().find("1 with \"label\": false skipped"), std::string::npos) << st.describe();
  write_text_file(tmp / "bad.jsonl", R"({"prompt": "Q", "completion": " no", "label": false})" "\n");
  expect_error([&] { load_sft_data(tmp / "bad.jsonl", *tok, SftDataOptions{}); }, {"bad.jsonl", "label", "kto"});
  write_text_file(tmp / "bad.jsonl", R"({"prompt": "Q", "completion": " no", "label": "no"})" "\n");
  expect_error([&] { load_sft_data(tmp / "bad.jsonl", *tok, SftDataOptions{}); }, {"bad.jsonl:1", "\"label\""});
  // rm does not read them, so its help does not offer them.
  auto r = run_command(rlhf_bin() + " rm --help");
  EXPECT_EQ(r.out.find("label"), std::string::npos) << r.out;
  EXPECT_NE(run_command(rlhf_bin() + " dpo --help").out.find("\"label\":true|false"), std::string::npos);
}

TEST_F(SftTest, CliBadInputIsOneLine) {
  write_text_file(tmp / "bad.jsonl", "{\"prompt\": 1}\n");
  auto r = run_command(rlhf_bin() + " sft --model " + (tmp / "base").string() + " --data " + (tmp / "bad.jsonl").string() +
                       " --out " + (tmp / "o").string());
  expect_cli_error(r, {"bad.jsonl:1"}, "bad sft data");
  r = run_command(rlhf_bin() + " sft --model " + (tmp / "nope").string() + " --data " + (tmp / "data.jsonl").string() +
                  " --out " + (tmp / "o").string());
  expect_cli_error(r, {"nope"}, "missing model");
}

TEST_F(SftTest, ConfigFileSetsOptionsAndCommandLineWins) {
  write_text_file(tmp / "cfg.json", Json({{"max-steps", 2}, {"batch-size", 4}, {"lr", 0.5}, {"lora", true}}).dump());
  auto r = run_command(rlhf_bin() + " -q sft --config " + (tmp / "cfg.json").string() + " --model " +
                       (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() + " --out " +
                       (tmp / "o").string() + " --lr 0.001");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json saved = read_json_file(tmp / "o" / "sft_config.json");
  EXPECT_EQ(saved["max-steps"], 2);
  EXPECT_EQ(saved["batch-size"], 4);
  EXPECT_DOUBLE_EQ(saved["lr"].get<double>(), 0.001);
  EXPECT_EQ(saved["lora"], true);
  EXPECT_TRUE(fs::exists(tmp / "o" / "adapter_model.safetensors"));
  EXPECT_EQ(read_metrics(tmp / "o").size(), 2u);
  // The saved config reproduces the run.
  auto r2 = run_command(rlhf_bin() + " -q sft --config " + (tmp / "o" / "sft_config.json").string() + " --out " +
                        (tmp / "o2").string());
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_TRUE(read_bytes(tmp / "o" / "adapter_model.safetensors") == read_bytes(tmp / "o2" / "adapter_model.safetensors"));
}

}  // namespace
