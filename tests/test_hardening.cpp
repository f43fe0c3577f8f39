// What a bad-input and fault campaign found (issue 15), as the `rlhf` commands a user runs: one
// writer per output directory, options and outputs checked before the work, no NaN model saved as a
// success, no model overwritten by surprise, stale temporaries cleared, a file-size limit reported,
// resume falling back from a corrupt checkpoint and refusing changed options, a Llama model's
// context respected, and ids the tokenizer lacks never sampled. (Parser-level checks live in
// test_model_config, test_safetensors, test_tokenizer_pipeline, test_jsonl and test_fuzz.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/cpu.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "lm_fixture.h"
#include "test_util.h"

using namespace rlhf;
using namespace rlhf::test;

namespace {

// A pid that certainly ran and is gone now.
pid_t dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return p;
}

// Holds an exclusive flock on dir/.lock (as another rlhf process would) while alive.
struct HeldLock {
  explicit HeldLock(const fs::path& dir) {
    fs::create_directories(dir);
    fd = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
    EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    std::string me = std::to_string(getpid()) + "\nrlhf sft --out " + dir.string() + "\n";
    EXPECT_EQ(::pwrite(fd, me.data(), me.size(), 0), ssize_t(me.size()));
  }
  ~HeldLock() { ::close(fd); }
  int fd = -1;
};

// A failed run that may have warned first: non-zero exit, and its last line is the error naming `parts`.
void expect_failed_with(const RunResult& r, std::initializer_list<std::string> parts, const std::string& what) {
  EXPECT_EQ(r.signal, 0) << what << ": killed by signal " << r.signal;
  EXPECT_NE(r.exit_code, 0) << what << ": exited 0";
  std::string last = r.err.substr(0, r.err.empty() ? 0 : r.err.size() - 1);
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  EXPECT_EQ(last.rfind("error: ", 0), 0u) << what << ": the last line is not the error: " << r.err;
  for (const auto& p : parts) EXPECT_NE(last.find(p), std::string::npos) << what << ": lacks \"" << p << "\": " << r.err;
}

bool any_temporary(const fs::path& dir) {
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp") != std::string::npos) return true;
  return false;
}

class Hardening : public TinySftCli {};

// ---- 1. one writer per output directory --------------------------------------------------------

TEST_F(Hardening, ASecondWriterIsRefusedNamingTheHolder) {
  const std::string me = "pid " + std::to_string(getpid());
  {
    HeldLock held(tmp / "out");
    auto r = run_command(sft("out", "--max-steps 1"));
    expect_cli_error(r, {(tmp / "out").string(), "another rlhf process", me, "choose another --out"}, "sft");
    EXPECT_FALSE(fs::exists(tmp / "out" / "model.safetensors"));
    HeldLock held_init(tmp / "m");
    r = run_command(rlhf_bin() + " init --arch llama --size tiny --out " + (tmp / "m").string());
    expect_cli_error(r, {"another rlhf process", me}, "init");
    HeldLock held_run(tmp / "run");  // the pipeline's run directory
    r = run_command("timeout 120 " + rlhf_bin() + " demo --run-dir " + (tmp / "run").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("another rlhf process (" + me), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--run-dir"), std::string::npos) << r.err;
  }
  // Released (the kernel drops a dead holder's lock too): the run goes ahead.
  auto r = run_command(sft("out", "--max-steps 1"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp / "out" / ".lock"));  // removed by a run that ends
}

TEST_F(Hardening, TwoConcurrentRunsTheSecondIsRefused) {
  // The campaign's case: two `rlhf sft --out D` started moments apart.
  const fs::path out = tmp / "d";
  pid_t first = fork();
  if (first == 0) {
    setpgid(0, 0);
    std::string cmd = "exec " + sft("d", "--max-steps 100000 --batch-size 2") + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  bool locked = false;
  for (int i = 0; i < 6000 && !locked; ++i) {
    locked = fs::exists(out / ".lock");
    if (!locked) usleep(10000);
  }
  ASSERT_TRUE(locked) << "the first run never locked " << out;
  auto r = run_command(sft("d", "--max-steps 2"));
  expect_cli_error(r, {out.string(), "another rlhf process", "pid "}, "second writer");
  kill(-first, SIGKILL);
  waitpid(first, nullptr, 0);
  // kill -9 leaves the lock file behind, but not the lock: a new run may go ahead.
  r = run_command(sft("d", "--max-steps 1"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  int lines = 0;
  std::ifstream m(out / "metrics.jsonl");
  for (std::string l; std::getline(m, l);) lines += !l.empty();
  EXPECT_EQ(lines, 1);  // one run's metrics, not two runs' mixed
}

// ---- 2. sizes checked before memory is taken ------------------------------------------------------

TEST_F(Hardening, AnOverlongTextFieldIsRefusedByFileLineAndField) {
  std::ofstream(tmp / "long.jsonl") << Json({{"prompt", "hi"}, {"completion", std::string(1000, 'x')}}).dump() << "\n";
  auto r = run_command(rlhf_bin() + " -q sft --model " + (tmp / "base").string() + " --data " + (tmp / "long.jsonl").string() +
                       " --out " + (tmp / "o").string() + " --max-text-chars 100");
  expect_cli_error(r, {"long.jsonl:1", "\"completion\"", "1000 characters", "--max-text-chars 100"}, "small limit");
  // The default limit (a million characters) holds for every data-reading command.
  std::ofstream(tmp / "huge.jsonl") << Json({{"prompt", std::string(2000000, 'y')}}).dump() << "\n";
  r = run_command(rlhf_bin() + " generate --model " + (tmp / "base").string() + " --prompts " + (tmp / "huge.jsonl").string());
  expect_cli_error(r, {"huge.jsonl:1", "\"prompt\"", "--max-text-chars 1000000"}, "default limit");
}

// ---- 3. a NaN model is never a success ------------------------------------------------------------------

TEST_F(Hardening, OptionsThatCanOnlyDivergeAreRefusedFirst) {
  // The data file does not exist: the option must be the error, before any work.
  const std::string start = rlhf_bin() + " sft --model " + (tmp / "base").string() + " --data " +
                            (tmp / "missing.jsonl").string() + " --out " + (tmp / "o").string();
  struct Case {
    std::string args, expect;
  } cases[] = {{"--lr inf", "--lr"},          {"--lr nan", "--lr"},         {"--lr -1e-3", "--lr"},
               {"--max-steps -1", "--max-steps"}, {"--warmup-ratio 1.5", "--warmup-ratio"},
               {"--max-grad-norm -1", "--max-grad-norm"}, {"--adam-beta2 1", "--adam-beta2"},
               {"--save-dtype int4", "--save-dtype"}, {"--lr-schedule cosinus", "--lr-schedule"},
               {"--lora --lora-r 0", "--lora-r"}, {"--dropout 1.5", "--dropout"}};
  for (const auto& c : cases) {
    auto r = run_command(start + " " + c.args);
    expect_cli_error(r, {c.expect}, c.args);
    EXPECT_FALSE(fs::exists(tmp / "o")) << c.args << ": the output directory was created";
  }
  auto r = run_command(rlhf_bin() + " ppo --policy " + (tmp / "base").string() + " --reward " + (tmp / "nope").string() +
                       " --prompts " + (tmp / "missing.jsonl").string() + " --out " + (tmp / "p").string() + " --lr inf");
  expect_cli_error(r, {"--lr"}, "ppo --lr inf");
  r = run_command(rlhf_bin() + " dpo --model " + (tmp / "base").string() + " --data " + (tmp / "missing.jsonl").string() +
                  " --out " + (tmp / "p").string() + " --beta inf");
  expect_cli_error(r, {"--beta"}, "dpo --beta inf");
  // More threads than cores: a warning, and the run goes ahead.
  const std::string too_many = std::to_string(usable_cores() + 1);
  r = run_command(rlhf_bin() + " --threads " + too_many + " init --arch llama --size tiny --out " + (tmp / "t").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --threads " + too_many + " is more than the"), std::string::npos) << r.err;
}

TEST_F(Hardening, ADivergedRunSavesNoModel) {
  // 1e39 is a finite double but no float: the first update makes the weights infinite.
  auto r = run_command(sft("o", "--max-steps 3 --lr 1e39"));
  expect_failed_with(r, {"NaN/Inf"}, "lr 1e39");
  EXPECT_FALSE(fs::exists(tmp / "o" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp / "o" / "checkpoints" / "step-000003"));
}

TEST_F(Hardening, ConfigsAndWeightsThatGiveNaNAreRefused) {
  auto variant = [&](const std::string& name, const Json& patch) {
    fs::copy(tmp / "base", tmp / name, fs::copy_options::recursive);
    Json c = read_json_file(tmp / name / "config.json");
    c.update(patch);
    write_json_atomic(tmp / name / "config.json", c);
    return run_command(rlhf_bin() + " generate --model " + (tmp / name).string() + " --prompt hi --max-new-tokens 4");
  };
  expect_cli_error(variant("eps", {{"rms_norm_eps", -1}}), {"eps/config.json", "rms_norm_eps"}, "negative eps");
  expect_cli_error(variant("theta", {{"rope_theta", 0}}), {"theta/config.json", "rope_theta"}, "rope_theta 0");
  expect_cli_error(variant("half", {{"vocab_size", 300.5}}), {"half/config.json", "vocab_size", "integer"}, "vocab 300.5");
  expect_cli_error(variant("huge", {{"vocab_size", 1000000000000}}), {"huge/config.json", "vocab_size"}, "vocab 1e12");
  // NaN in the weights: one line naming the file and the tensor.
  fs::copy(tmp / "base", tmp / "nan", fs::copy_options::recursive);
  NamedTensors ts;
  SafetensorsFile f(tmp / "base" / "model.safetensors");
  for (const auto& info : f.tensors()) ts.emplace_back(info.name, f.load(info.name));
  ts[1].second.view(-1)[3] = std::numeric_limits<float>::quiet_NaN();
  save_safetensors(tmp / "nan" / "model.safetensors.new", ts);
  fs::rename(tmp / "nan" / "model.safetensors.new", tmp / "nan" / "model.safetensors");
  auto r = run_command(rlhf_bin() + " logprobs --model " + (tmp / "nan").string() + " --ids 1,2,3");
  expect_cli_error(r, {"nan/model.safetensors", "\"" + ts[1].first + "\"", "NaN/Inf"}, "NaN weights");
}

// ---- 4. nothing existing is overwritten by surprise ---------------------------------------------------------

TEST_F(Hardening, InitAndMergeDoNotReplaceAModelUnlessAsked) {
  ASSERT_EQ(run_command(sft("lora", "--max-steps 1 --lora")).exit_code, 0);
  ASSERT_EQ(run_command(rlhf_bin() + " -q init --arch gpt2 --size tiny --out " + (tmp / "other").string()).exit_code, 0);
  const std::string merge = rlhf_bin() + " merge --model " + (tmp / "base").string() + " --adapter " + (tmp / "lora").string() +
                            " --out " + (tmp / "other").string();
  expect_cli_error(run_command(merge), {(tmp / "other").string(), "already holds a model"}, "merge over a model");
  auto r = run_command(merge + " --overwrite-output-dir -q");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json_file(tmp / "other" / "config.json")["model_type"], "llama");
  r = run_command(rlhf_bin() + " init --arch llama --size tiny --out " + (tmp / "base").string());
  expect_cli_error(r, {(tmp / "base").string(), "already holds a model", "--overwrite-output-dir"}, "init over a model");
  EXPECT_TRUE(fs::exists(tmp / "base" / "tokenizer.json"));
  r = run_command(rlhf_bin() + " -q init --arch llama --size tiny --out " + (tmp / "base").string() + " --overwrite-output-dir");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "base" / "tokenizer.json"));  // nothing of the old model left beside the new one
  EXPECT_EQ(read_json_file(tmp / "base" / "config.json")["vocab_size"], 32000);
  r = run_command(rlhf_bin() + " -q init --arch gpt2 --size tiny --out " + (tmp / "fresh").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---- 5. options and outputs checked before the work -----------------------------------------------------------

TEST_F(Hardening, GenerateChecksItsOutputBeforeGenerating) {
  write_text_file(tmp / "afile", "x");
  // Without -q: the one line on stderr must be the error, so nothing (loading, generating) came first.
  auto r = run_command(rlhf_bin() + " generate --model " + (tmp / "base").string() + " --prompt hi --max-new-tokens 4 --out " +
                       (tmp / "afile" / "out.jsonl").string());
  expect_cli_error(r, {"afile"}, "unwritable --out");
  r = run_command(rlhf_bin() + " generate --model " + (tmp / "base").string() + " --prompt hi --max-new-tokens 4 --top-p 0");
  expect_cli_error(r, {"--top-p"}, "top-p 0");
}

// ---- 6. interrupted writes clean up and explain -------------------------------------------------------------------

TEST_F(Hardening, StaleTemporariesOfDeadRunsAreRemoved) {
  const fs::path out = tmp / "o";
  fs::create_directories(out / "checkpoints" / "step-000002.tmp");
  const std::string dead = std::to_string(dead_pid()), live = std::to_string(getpid());
  for (const std::string& f : {"model.safetensors.tmp." + dead, "sft_config.json.tmp." + dead, "notes.txt.tmp." + live})
    write_text_file(out / f, "partial");
  write_text_file(out / "checkpoints" / "step-000002.tmp" / "optimizer.safetensors", "partial");
  write_text_file(out / "mine.txt", "a user's file");
  auto r = run_command(sft("o", "--max-steps 1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / ("model.safetensors.tmp." + dead)));
  EXPECT_FALSE(fs::exists(out / ("sft_config.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(out / "checkpoints" / "step-000002.tmp"));
  EXPECT_TRUE(fs::exists(out / ("notes.txt.tmp." + live)));  // its writer still runs
  EXPECT_TRUE(fs::exists(out / "mine.txt"));
  // A file output: the temporaries beside it.
  write_text_file(tmp / ("gen.jsonl.tmp." + dead), "partial");
  r = run_command(rlhf_bin() + " -q generate --model " + (tmp / "base").string() + " --prompt hi --max-new-tokens 2 --out " +
                  (tmp / "gen.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(tmp / ("gen.jsonl.tmp." + dead)));
  EXPECT_TRUE(fs::exists(tmp / "gen.jsonl"));
}

TEST_F(Hardening, AFileSizeLimitGivesOneLineAndNoPartialFile) {
  // ulimit -f counts 1024-byte blocks: 64 KiB, far below a small GPT-2's weights.
  auto r = run_command("ulimit -f 64; exec " + rlhf_bin() + " init --arch gpt2 --size small --out " + (tmp / "u").string());
  expect_cli_error(r, {"model.safetensors", "write failed", "file-size limit"}, "ulimit -f");
  EXPECT_FALSE(any_temporary(tmp / "u"));
  EXPECT_FALSE(fs::exists(tmp / "u" / "model.safetensors"));
}

// ---- 7. resume is safe ----------------------------------------------------------------------------------------------

TEST_F(Hardening, ACorruptNewestCheckpointFallsBackToThePreviousOne) {
  const std::string opts = "--max-steps 4 --save-steps 2 --keep-last 3";
  ASSERT_EQ(run_command(sft("full", opts)).exit_code, 0);
  ASSERT_EQ(run_command(sft("cut", opts)).exit_code, 0);
  const fs::path newest = tmp / "cut" / "checkpoints" / "step-000004";
  ASSERT_TRUE(fs::exists(newest));
  std::string bytes = read_bytes(newest / "model.safetensors");
  write_bytes(newest / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  fs::remove(tmp / "cut" / "model.safetensors");
  auto r = run_command(sft("cut", opts + " --resume"));  // -q keeps the warnings
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("step-000004 is unreadable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step-000002"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "cut" / "checkpoints" / "step-000004.corrupt"));  // kept for a look, out of the way
  // Steps 3 and 4 again from step 2 give the uninterrupted run's model, bit for bit.
  SafetensorsFile a(tmp / "full" / "model.safetensors"), b(tmp / "cut" / "model.safetensors");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) EXPECT_TRUE(torch::equal(a.load(t.name), b.load(t.name))) << t.name;
  // Every checkpoint unreadable: an error, never a silent fresh start.
  for (auto& e : fs::directory_iterator(tmp / "full" / "checkpoints"))
    write_bytes(e.path() / "trainer_state.json", "{\"step\": ");
  r = run_command(sft("full", opts + " --resume"));
  expect_failed_with(r, {"no readable checkpoint", "to start over"}, "all corrupt");
}

TEST_F(Hardening, ResumingWithChangedOptionsOrDataIsRefusedUnlessAsked) {
  const std::string opts = "--max-steps 4 --save-steps 2";
  ASSERT_EQ(run_command(sft("o", opts)).exit_code, 0);
  auto r = run_command(sft("o", opts + " --resume --lr 0.01"));
  expect_cli_error(r, {"--lr 0.001 -> 0.01", "--resume-anyway"}, "changed lr");
  r = run_command(sft("o", opts + " --resume --batch-size 8"));
  expect_cli_error(r, {"--batch-size 4 -> 8"}, "changed batch size");
  r = run_command(sft("o", opts + " --resume --logging-steps 3 --keep-last 5"));  // no effect on the weights
  EXPECT_EQ(r.exit_code, 0) << r.err;
  write_sft_data(tmp / "data.jsonl", 25);  // same path, other contents
  r = run_command(sft("o", opts + " --resume"));
  expect_cli_error(r, {"data.jsonl changed since the checkpoint"}, "changed data");
  r = run_command(rlhf_bin() + " sft --model " + (tmp / "base").string() + " --data " + (tmp / "data.jsonl").string() +
                  " --out " + (tmp / "o").string() + " --batch-size 4 --lr 1e-3 " + opts + " --resume --resume-anyway");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --resume-anyway"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("data.jsonl changed"), std::string::npos) << r.err;
}

// ---- 8. smaller silent acceptances -------------------------------------------------------------------------------------

TEST_F(Hardening, LlamaRowsAreCappedAtTheModelsPositions) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  std::ofstream(tmp / "long.jsonl") << Json({{"text", text}}).dump() << "\n";
  auto r = run_command(rlhf_bin() + " sft --model " + (tmp / "base").string() + " --data " + (tmp / "long.jsonl").string() +
                       " --out " + (tmp / "o").string() + " --max-length 1024 --max-steps 1 --batch-size 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--max-length 1024 capped at the model's context of 128 positions"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 truncated"), std::string::npos) << r.err;
  auto rows = read_metrics(tmp / "o");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["num_tokens"].get<int64_t>(), 128);
}

TEST_F(Hardening, GenerationNeverSamplesIdsTheTokenizerLacks) {
  // A model whose embedding has 64 rows more than its tokenizer (as pretrain pads it), with the head
  // made to prefer exactly those rows.
  auto tok = Tokenizer::load(tmp / "base");
  Json c = read_json_file(tmp / "base" / "config.json");
  c["vocab_size"] = tok->vocab_size() + 64;
  auto model = make_model(ModelConfig::from_json(c, "padded"), 3);
  {
    torch::NoGradGuard ng;
    auto w = model->lm_head_weight();
    w.narrow(0, tok->vocab_size(), 64).copy_(w.narrow(0, 0, 64) * 1000);
  }
  save_model(*model, tmp / "padded");
  tok->save(tmp / "padded");
  auto r = run_command(rlhf_bin() + " -q generate --model " + (tmp / "padded").string() +
                       " --prompt 'What is 1 plus 2?' --temperature 0 --max-new-tokens 8 --n 1 --out " +
                       (tmp / "g.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto recs = read_jsonl(tmp / "g.jsonl");
  ASSERT_EQ(recs.size(), 1u);
  auto ids = recs[0].value["response_ids"][0];
  ASSERT_FALSE(ids.empty());
  for (auto& id : ids) EXPECT_LT(id.get<int64_t>(), tok->vocab_size());
}

TEST_F(Hardening, EvalRefusesAFamilyThatIsNotText) {
  write_text_file(tmp / "prompts.jsonl", "{\"prompt\": \"What is 1 plus 2?\", \"family\": \"sums\"}\n"
                                         "{\"prompt\": \"What is 2 plus 2?\", \"family\": 3}\n");
  auto r = run_command(rlhf_bin() + " -q eval --policy sft=" + (tmp / "base").string() + " --prompts " +
                       (tmp / "prompts.jsonl").string() + " --chat-template plain --max-new-tokens 2 --best-of-n 0 --out " + (tmp / "e").string());
  expect_cli_error(r, {"prompts.jsonl:2", "\"family\" must be text"}, "eval family");
}

}  // namespace
