// What a TRL / transformers user types and reads, working as they expect (issue 16): TrainingArguments
// option names (with dashes or underscores) and their meaning, a "did you mean" line for an unknown
// option, --overwrite-output-dir and a finished run that keeps no optimizer state unless asked,
// TensorBoard tags with train/ and eval/ prefixes, DPO's logits/chosen and logits/rejected, and data
// files as JSON arrays or gzip.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <set>

#include "core/runtime.h"
#include "generate/generator.h"
#include "io/jsonl.h"
#include "lm_fixture.h"
#include "test_tensor_util.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "train/sft.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

// (tag, step) of every scalar in a TensorBoard event file: TFRecords of Event protos (wall_time 1,
// step 2, summary 5 { value 1 { tag 1, simple_value 2 } }).
std::vector<std::pair<std::string, int64_t>> tensorboard_scalars(const fs::path& file) {
  std::string d = read_bytes(file);
  std::vector<std::pair<std::string, int64_t>> out;
  auto varint = [](const std::string& s, size_t& i) {
    uint64_t v = 0;
    for (int shift = 0; i < s.size(); shift += 7) {
      uint8_t b = uint8_t(s[i++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  // The fields of one message: (field number, wire type, payload or varint value).
  auto fields = [&](const std::string& m) {
    std::vector<std::tuple<int, int, std::string, uint64_t>> f;
    for (size_t i = 0; i < m.size();) {
      uint64_t key = varint(m, i);
      int field = int(key >> 3), type = int(key & 7);
      if (type == 0) f.emplace_back(field, type, "", varint(m, i));
      else if (type == 1) f.emplace_back(field, type, m.substr(i, 8), 0), i += 8;
      else if (type == 5) f.emplace_back(field, type, m.substr(i, 4), 0), i += 4;
      else if (type == 2) {
        uint64_t n = varint(m, i);
        f.emplace_back(field, type, m.substr(i, n), 0);
        i += n;
      } else break;
    }
    return f;
  };
  for (size_t i = 0; i + 12 <= d.size();) {
    uint64_t len = 0;
    for (int k = 7; k >= 0; --k) len = (len << 8) | uint8_t(d[i + size_t(k)]);
    std::string event = d.substr(i + 12, len);
    i += 12 + len + 4;
    int64_t step = 0;
    for (auto& [f, t, payload, v] : fields(event)) {
      if (f == 2) step = int64_t(v);
      if (f == 5)
        for (auto& [vf, vt, value, vv] : fields(payload))
          if (vf == 1)
            for (auto& [tf, tt, tag, tv] : fields(value))
              if (tf == 1) out.emplace_back(tag, step);
    }
  }
  return out;
}

fs::path event_file(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) return e.path();
  return {};
}

class TrlCompat : public TinySftCli {};

TEST_F(TrlCompat, TrainingArgumentsNamesWorkWithTheirMeaning) {
  auto r = run_command(rlhf_bin() + " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() +
                       " --output_dir " + (tmp / "o").string() +
                       " --learning_rate 1e-3 --per_device_train_batch_size 2 --gradient_accumulation_steps 3"
                       " --num_train_epochs 0.5 --lr_scheduler_type constant_with_warmup --warmup_ratio 0.25"
                       " --max_seq_length 64 --logging_steps 1 --report_to none --save_total_limit 1 --bf16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json c = read_json_file(tmp / "o" / "sft_config.json");
  EXPECT_EQ(c["batch-size"], 6);      // per-device 2 x 3 accumulation steps
  EXPECT_EQ(c["micro-batch-size"], 2);
  EXPECT_EQ(c["lr"], 1e-3);
  EXPECT_EQ(c["max-length"], 64);
  EXPECT_EQ(c["keep-last"], 1);
  EXPECT_EQ(c["_runtime"]["dtype"], "bf16");
  EXPECT_TRUE(event_file(tmp / "o").empty());  // --report_to none
  auto rows = read_metrics(tmp / "o");
  ASSERT_EQ(rows.size(), 2u);  // 24 examples / 6 = 4 steps per epoch, half an epoch
  EXPECT_NEAR(rows[0]["learning_rate"].get<double>(), 1e-3, 1e-12);  // warm-up of 1 step (at its peak), then constant
  EXPECT_NEAR(rows[1]["learning_rate"].get<double>(), 1e-3, 1e-12);
  // The saved options rerun the same run (--config takes them back).
  r = run_command(rlhf_bin() + " -q --bf16 sft --config " + (tmp / "o" / "sft_config.json").string() + " --out " +
                  (tmp / "o2").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_metrics(tmp / "o2")[1]["loss"], rows[1]["loss"]);
  // Both spellings at once are a conflict, said so.
  r = run_command(sft("o3", "--per-device-train-batch-size 2"));
  expect_cli_error(r, {"--batch-size", "--per-device-train-batch-size", "not both"}, "both batch spellings");
}

TEST_F(TrlCompat, AnUnknownOptionGetsADidYouMeanLine) {
  auto r = run_command(sft("o", "--learning-rat 1e-3"));
  expect_cli_error(r, {"--learning-rat is not an option of `rlhf sft`", "did you mean --learning-rate?", "rlhf sft --help"},
                   "typo");
  r = run_command(sft("o", "--fp16"));
  expect_cli_error(r, {"--fp16", "did you mean --bf16?"}, "fp16");
  r = run_command(sft("o", "--num_train_epoch 2"));
  expect_cli_error(r, {"--num-train-epoch ", "did you mean --num-train-epochs?"}, "underscore typo");
  r = run_command(rlhf_bin() + " ppo --polcy x");
  expect_cli_error(r, {"`rlhf ppo`", "did you mean --policy?"}, "ppo typo");
}

TEST_F(TrlCompat, AFinishedRunKeepsNoOptimizerStateAndOverwritingIsAsked) {
  ASSERT_EQ(run_command(sft("o", "--max-steps 2")).exit_code, 0);
  EXPECT_FALSE(fs::exists(tmp / "o" / "checkpoints"));  // no optimizer state unless asked
  EXPECT_TRUE(read_json_file(tmp / "o" / "trainer_state.json")["finished"].get<bool>());
  std::string model = read_bytes(tmp / "o" / "model.safetensors");
  // Again into the same --out: refused, naming the ways on.
  auto r = run_command(sft("o", "--max-steps 2"));
  expect_cli_error(r, {"holds the model of an earlier run", "--resume", "--overwrite-output-dir"}, "second run");
  // --resume of a finished run: nothing to do; with other options: refused.
  r = run_command(sft("o", "--max-steps 2 --resume"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_bytes(tmp / "o" / "model.safetensors"), model);
  r = run_command(sft("o", "--max-steps 3 --resume"));
  expect_cli_error(r, {"finished run with other options", "--max-steps 2 -> 3", "--overwrite-output-dir"}, "resume changed");
  // --overwrite-output-dir: the earlier run's files go, a user's file stays, and it trains afresh.
  write_text_file(tmp / "o" / "notes.txt", "mine");
  r = run_command(sft("o", "--max-steps 3 --overwrite-output-dir --save-final-state"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_metrics(tmp / "o").size(), 3u);
  EXPECT_TRUE(fs::exists(tmp / "o" / "notes.txt"));
  EXPECT_TRUE(fs::exists(tmp / "o" / "checkpoints" / "step-000003" / "optimizer.safetensors"));  // asked for
  // Never the run's own input.
  r = run_command(rlhf_bin() + " -q sft --model " + (tmp / "o").string() + " --data " + (tmp / "data.jsonl").string() +
                  " --out " + (tmp / "o").string() + " --overwrite-output-dir --max-steps 1");
  expect_cli_error(r, {"--model is the --out directory"}, "model is out");
  EXPECT_TRUE(fs::exists(tmp / "o" / "model.safetensors"));
}

TEST_F(TrlCompat, TensorBoardTagsHaveHuggingFacesPrefixes) {
  auto r = run_command(sft("o", "--max-steps 2 --eval-split 0.25"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto file = event_file(tmp / "o");
  ASSERT_FALSE(file.empty());
  std::set<std::string> tags;
  for (auto& [tag, step] : tensorboard_scalars(file)) tags.insert(tag);
  for (const char* t : {"train/loss", "train/learning_rate", "train/grad_norm", "train/mean_token_accuracy", "eval/loss",
                        "eval/perplexity"})
    EXPECT_TRUE(tags.count(t)) << t;
  EXPECT_FALSE(tags.count("loss"));
  EXPECT_FALSE(tags.count("train/eval_loss"));
}

TEST_F(TrlCompat, DpoLogsTheMeanLogitsOfChosenAndRejected) {
  // The metric: the logits' mean over the vocabulary and the completion tokens, as TRL's DPOTrainer
  // logs it; computed from the head's mean row, checked here against the full logits.
  auto model = load_model(tmp / "base");
  model->eval();
  auto tok = Tokenizer::load(tmp / "base");
  std::vector<TokenizedExample> ex(2);
  for (int i = 0; i < 2; ++i) {
    auto ids = tok->encode(i ? "What is 2 plus 2? The answer is 4." : "Hello world, the fox.", true);
    ex[size_t(i)].ids = ids;
    ex[size_t(i)].loss_mask.assign(ids.size(), 0);
    for (size_t t = ids.size() / 2; t < ids.size(); ++t) ex[size_t(i)].loss_mask[t] = 1;
  }
  Batch b = collate({&ex[0], &ex[1]}, 0, device());
  torch::NoGradGuard ng;
  torch::Tensor sums;
  masked_sequence_logps(*model, b, &sums);
  auto logits = model->forward(b.ids, batch_args(b)).narrow(1, 0, b.ids.size(1) - 1);
  auto sel = b.loss_mask.narrow(1, 1, b.ids.size(1) - 1);
  for (int64_t i = 0; i < 2; ++i) {
    double want = logits[i].index({sel[i]}).mean(-1).sum().item<double>();
    EXPECT_NEAR(sums[i].item<double>(), want, 1e-4 * std::max(1.0, std::abs(want)));
  }
  // And in the metrics of a run.
  {
    std::ofstream f(tmp / "pairs.jsonl");
    for (int i = 0; i < 8; ++i)
      f << Json({{"prompt", "What is 1 plus 2?"}, {"chosen", " The answer is 3."}, {"rejected", " The fox."}}).dump() << "\n";
  }
  auto r = run_command(rlhf_bin() + " -q dpo --model " + (tmp / "base").string() + " --data " + (tmp / "pairs.jsonl").string() +
                       " --out " + (tmp / "d").string() + " --max-steps 1 --batch-size 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_metrics(tmp / "d");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0]["logits/chosen"].is_number()) << rows[0].dump();
  EXPECT_TRUE(rows[0]["logits/rejected"].is_number()) << rows[0].dump();
  EXPECT_NE(rows[0]["logits/chosen"], rows[0]["logits/rejected"]);
}

TEST_F(TrlCompat, JsonArrayAndGzipDataFilesTrainLikeJsonl) {
  // The same records as JSON Lines, as one JSON array (json.dump(list)) and gzip-compressed.
  auto recs = read_jsonl(tmp / "data.jsonl");
  Json arr = Json::array();
  for (auto& r : recs) arr.push_back(r.value);
  write_text_file(tmp / "data.json", arr.dump(2));
  {
    std::string text = read_bytes(tmp / "data.jsonl");
    gzFile gz = gzopen((tmp / "data.jsonl.gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, text.data(), unsigned(text.size())), int(text.size()));
    gzclose(gz);
  }
  std::vector<Json> losses;
  for (const char* data : {"data.jsonl", "data.json", "data.jsonl.gz"}) {
    auto r = run_command(rlhf_bin() + " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / data).string() +
                         " --out " + (tmp / (std::string("o_") + data)).string() + " --lr 1e-3 --batch-size 4 --max-steps 2");
    ASSERT_EQ(r.exit_code, 0) << data << ": " << r.err;
    losses.push_back(read_metrics(tmp / (std::string("o_") + data))[1]["loss"]);
  }
  EXPECT_EQ(losses[1], losses[0]);
  EXPECT_EQ(losses[2], losses[0]);
  write_text_file(tmp / "broken.json", "[{\"prompt\": \"a\", \"completion\": \"b\"},\n");
  auto r = run_command(rlhf_bin() + " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / "broken.json").string() +
                       " --out " + (tmp / "ob").string());
  expect_cli_error(r, {"broken.json:2", "the array is not closed with ']'"}, "broken array");
}

TEST_F(TrlCompat, GenerationStopsAtEveryEosAndSaysWhenTheyDisagree) {
  auto gen = [&](const fs::path& model) {
    return run_command(rlhf_bin() + " generate --model " + model.string() +
                       " --prompt 'What is 2 plus' --temperature 0 --max-new-tokens 6 --n 2");
  };
  auto r = gen(tmp / "base");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("the tokenizer's EOS"), std::string::npos) << r.err;  // they agree
  auto first = Json::parse(r.out.substr(0, r.out.find('\n')))["response_ids"][0];
  ASSERT_GE(first.size(), 2u) << r.out;
  const int64_t first_id = first[0];
  // generation_config.json's eos_token_id ends a response as transformers' generate() ends it.
  write_text_file(tmp / "base" / "generation_config.json", Json({{"eos_token_id", Json::array({0, first_id})}}).dump());
  auto cfg = ModelConfig::from_file((tmp / "base" / "config.json").string());
  EXPECT_EQ(cfg.generation_eos_ids, (std::vector<int64_t>{0, first_id}));
  auto tok = Tokenizer::load(tmp / "base");
  EXPECT_EQ(stop_token_ids(*tok, cfg), (std::vector<int64_t>{tok->eos_id(), first_id}));
  r = gen(tmp / "base");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out.substr(0, r.out.find('\n')))["response_ids"][0], Json::array({first_id}));
  // A disagreement with the tokenizer is said once per model, naming both.
  Json c = read_json_file(tmp / "base" / "config.json");
  c["eos_token_id"] = 7;
  write_text_file(tmp / "base" / "config.json", c.dump());
  r = gen(tmp / "base");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t at = r.err.find("the tokenizer's EOS is 0 (" + tok->eos_token() + ") but config.json says eos_token_id 7 (");
  EXPECT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("the tokenizer's EOS", at + 1), std::string::npos) << r.err;
  // A trained model keeps its generation_config.json.
  ASSERT_EQ(run_command(sft("o", "--max-steps 1")).exit_code, 0);
  EXPECT_EQ(read_json_file(tmp / "o" / "generation_config.json")["eos_token_id"], Json::array({0, first_id}));
}

TEST_F(TrlCompat, AChatTemplateJinjaFileIsTheTokenizersTemplate) {
  // transformers >= 4.43 saves the template as chat_template.jinja; with or without tokenizer_config.json.
  const std::string jinja = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
  write_text_file(tmp / "base" / "chat_template.jinja", jinja);
  EXPECT_EQ(Tokenizer::load(tmp / "base")->chat_template(), jinja);
  fs::remove(tmp / "base" / "tokenizer_config.json");
  auto tok = Tokenizer::load(tmp / "base");
  EXPECT_EQ(tok->chat_template(), jinja);
  EXPECT_EQ(ChatTemplate::for_tokenizer(*tok).render({ChatMessage{ChatRole::user, "hi"}}).text, "<user>hi");
}

}  // namespace
