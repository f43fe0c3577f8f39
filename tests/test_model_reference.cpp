// The model layer against an independent reference: tests/ref/ref_models.py (plain PyTorch, float64,
// its own safetensors writer) writes tiny random checkpoints in exact Hugging Face layout and the
// log-probs it expects; we load them with load_model and must agree within 1e-4. The ctest fixture
// `ref_models` runs the script into the build tree before these tests; without it they fail.
#include <gtest/gtest.h>

#include <set>

#include "core/runtime.h"
#include "io/json.h"
#include "model/logprobs.h"
#include "model/transformer.h"
#include "test_tensor_util.h"
#include "test_util.h"

namespace rlhf {
namespace {

constexpr double kTol = 1e-4;

std::filesystem::path ref_dir() {
  if (const char* d = std::getenv("RLHF_REF_DIR"); d && *d) return d;
  return RLHF_REF_DIR;  // set by tests/CMakeLists.txt: <build>/tests/ref_models
}

// The manifest written by ref_models.py; a missing one is a test failure with the command to fix it.
const Json& manifest() {
  static Json m = [] {
    auto p = ref_dir() / "manifest.json";
    if (!std::filesystem::exists(p)) return Json();
    return read_json_file(p);
  }();
  return m;
}

const Json* ref_case(const std::string& name) {
  const Json& m = manifest();
  if (m.is_null()) {
    ADD_FAILURE() << "reference fixtures missing: " << (ref_dir() / "manifest.json").string()
                  << " does not exist. Run the tests through ctest (fixture ref_models), or: " RLHF_REF_PYTHON " "
                  << RLHF_SOURCE_DIR << "/tests/ref/ref_models.py --out " << ref_dir().string();
    return nullptr;
  }
  auto it = m["cases"].find(name);
  if (it == m["cases"].end()) {
    ADD_FAILURE() << "reference case \"" << name << "\" is not in " << (ref_dir() / "manifest.json").string();
    return nullptr;
  }
  return &*it;
}

torch::Tensor ids_tensor(const Json& seq) {
  return torch::tensor(seq.get<std::vector<int64_t>>(), torch::kLong).unsqueeze(0).to(device());
}

torch::Tensor expected_tensor(const Json& v) {
  return torch::tensor(v.get<std::vector<double>>(), torch::kDouble);
}

// Every case ref_models.py writes. Listed here, so that a case the script stops writing fails.
const char* kLmCases[] = {"gpt2",           "gpt2_noprefix",  "gpt2_untied",    "gpt2_bf16",
                          "llama_gqa",      "llama_gqa_bf16", "llama_f16",      "llama_tied",
                          "llama_head_dim", "llama31_rope",   "llama_rope_linear", "llama_sharded",
                          "qwen2",          "mistral_swa"};
const char* kScoreCases[] = {"gpt2_score", "llama_score"};

class RefLm : public ::testing::TestWithParam<std::string> {};

TEST_P(RefLm, LogprobsMatchReference) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto model = load_model(ref_dir() / (*c)["dir"].get<std::string>());
  model->eval();
  torch::NoGradGuard ng;
  ASSERT_EQ(model->config().head, Head::LM);
  const Json& seqs = (*c)["sequences"];
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto lp = sequence_logprobs(*model, ids_tensor(seqs[i])).squeeze(0).cpu();
    auto want = expected_tensor((*c)["logprobs"][i]);
    ASSERT_EQ(lp.numel(), want.numel());
    double d = test::max_abs_diff(lp, want);
    EXPECT_LT(d, kTol) << GetParam() << " sequence " << i << " (" << (*c)["storage"] << "): max |diff| " << d;
  }
}

// All sequences of a case as one right-padded batch give the same numbers.
TEST_P(RefLm, BatchedMatchesReference) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto model = load_model(ref_dir() / (*c)["dir"].get<std::string>());
  model->eval();
  torch::NoGradGuard ng;
  const Json& seqs = (*c)["sequences"];
  int64_t B = int64_t(seqs.size()), T = 0;
  for (auto& s : seqs) T = std::max<int64_t>(T, int64_t(s.size()));
  auto ids = torch::zeros({B, T}, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    auto s = seqs[b].get<std::vector<int64_t>>();
    ids[b].narrow(0, 0, int64_t(s.size())).copy_(torch::tensor(s, torch::kLong));
    mask[b].narrow(0, 0, int64_t(s.size())).fill_(1);
  }
  ForwardArgs args;
  args.attention_mask = mask.to(device());
  auto lp = sequence_logprobs(*model, ids.to(device()), args).cpu();
  for (int64_t b = 0; b < B; ++b) {
    auto want = expected_tensor((*c)["logprobs"][b]);
    double d = test::max_abs_diff(lp[b].narrow(0, 0, want.numel()), want);
    EXPECT_LT(d, kTol) << GetParam() << " row " << b << ": max |diff| " << d;
  }
}

// Every tensor in the file is used (or is a buffer we deliberately skip, like GPT-2's attn.bias).
TEST_P(RefLm, EveryTensorIsUsed) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto dir = ref_dir() / (*c)["dir"].get<std::string>();
  auto model = make_model(ModelConfig::from_file((dir / "config.json").string()));
  SafetensorsReader st(dir);
  auto unused = load_weights(*model, st);
  EXPECT_TRUE(unused.empty()) << GetParam() << ": unused tensor " << (unused.empty() ? "" : unused[0]);
}

// A model we load and save again is the same checkpoint: the same tensor names (the canonical
// "transformer." prefix for GPT-2, tied heads omitted, old buffers dropped), shapes (Conv1D stays
// (in, out)), dtype and bytes.
TEST_P(RefLm, SaveWritesTheSameHfLayout) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto dir = ref_dir() / (*c)["dir"].get<std::string>();
  auto model = load_model(dir);
  std::string storage = (*c)["storage"];
  auto dtype = storage == "BF16" ? torch::kBFloat16 : storage == "F16" ? torch::kHalf : torch::kFloat;
  test::TempDir out;
  save_model(*model, out.path(), dtype);
  SafetensorsReader orig(dir), saved(out.path());
  std::set<std::string> want;
  for (const auto& n : orig.names()) {
    if (n.ends_with(".attn.bias") || n.ends_with(".attn.masked_bias")) continue;
    bool gpt2_short = model->config().arch == Arch::GPT2 && n.rfind("transformer.", 0) != 0 && n != "lm_head.weight" &&
                      n.rfind("score.", 0) != 0;
    want.insert(gpt2_short ? "transformer." + n : n);
  }
  auto got_names = saved.names();
  EXPECT_EQ(std::set<std::string>(got_names.begin(), got_names.end()), want) << GetParam();
  for (const auto& n : got_names) {
    std::string src = orig.contains(n) ? n : n.substr(std::string("transformer.").size());
    ASSERT_TRUE(orig.contains(src)) << n;
    EXPECT_EQ(saved.info(n).shape, orig.info(src).shape) << n;
    EXPECT_EQ(saved.info(n).dtype, orig.info(src).dtype) << n;
    EXPECT_TRUE(torch::equal(saved.load(n, torch::ScalarType::Undefined), orig.load(src, torch::ScalarType::Undefined)))
        << GetParam() << ": tensor " << n << " differs after load + save";
  }
  // config.json keeps the fields transformers needs to rebuild the same model.
  ModelConfig a = ModelConfig::from_file((dir / "config.json").string());
  ModelConfig b = ModelConfig::from_file((out.path() / "config.json").string());
  EXPECT_EQ(b.num_parameters(), a.num_parameters());
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.sliding_window, a.sliding_window);
  EXPECT_EQ(b.rope_scaling.type, a.rope_scaling.type);
  EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
}

std::vector<std::string> lm_cases() { return {std::begin(kLmCases), std::end(kLmCases)}; }
INSTANTIATE_TEST_SUITE_P(Ref, RefLm, ::testing::ValuesIn(lm_cases()),
                         [](const auto& info) { return info.param; });

// ---- score (reward-model) heads ------------------------------------------------------------------------------

class RefScore : public ::testing::TestWithParam<std::string> {};

TEST_P(RefScore, ScoresMatchReference) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto model = load_model(ref_dir() / (*c)["dir"].get<std::string>());
  ASSERT_EQ(model->config().head, Head::Score);
  ASSERT_EQ(model->config().num_labels, (*c)["num_labels"].get<int64_t>());
  model->eval();
  torch::NoGradGuard ng;
  const Json& seqs = (*c)["sequences"];
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto scores = model->forward(ids_tensor(seqs[i])).squeeze(0).cpu();  // (T, num_labels)
    std::vector<double> flat;
    for (auto& row : (*c)["scores"][i])
      for (auto& v : row) flat.push_back(v.get<double>());
    ASSERT_EQ(int64_t(flat.size()), scores.numel());
    auto want = torch::tensor(flat, torch::kDouble).view(scores.sizes());
    double d = test::max_abs_diff(scores, want);
    EXPECT_LT(d, kTol) << GetParam() << " sequence " << i << ": max |diff| " << d;
  }
}

std::vector<std::string> score_cases() { return {std::begin(kScoreCases), std::end(kScoreCases)}; }
INSTANTIATE_TEST_SUITE_P(Ref, RefScore, ::testing::ValuesIn(score_cases()),
                         [](const auto& info) { return info.param; });

// An LM checkpoint loaded as a reward model keeps the body and gets a fresh one-label score head.
TEST(RefScoreHead, LmCheckpointAsRewardModel) {
  const Json* c = ref_case("llama_gqa");
  ASSERT_NE(c, nullptr);
  auto dir = ref_dir() / (*c)["dir"].get<std::string>();
  auto lm = load_model(dir);
  auto rm = load_model(dir, Head::Score, /*seed=*/3);
  EXPECT_EQ(rm->config().head, Head::Score);
  EXPECT_EQ(rm->config().num_labels, 1);
  torch::NoGradGuard ng;
  auto ids = ids_tensor((*c)["sequences"][0]);
  EXPECT_EQ(test::max_abs_diff(lm->hidden(ids), rm->hidden(ids)), 0.0);
  EXPECT_EQ(rm->forward(ids).size(-1), 1);
}

// ---- the rlhf binary, end to end ------------------------------------------------------------------------------

class RefCli : public ::testing::TestWithParam<std::string> {};

TEST_P(RefCli, LogprobsCommandMatchesReference) {
  const Json* c = ref_case(GetParam());
  ASSERT_NE(c, nullptr);
  auto seq = (*c)["sequences"][0].get<std::vector<int64_t>>();
  std::string ids;
  for (size_t i = 0; i < seq.size(); ++i) ids += (i ? "," : "") + std::to_string(seq[i]);
  auto dir = ref_dir() / (*c)["dir"].get<std::string>();
  auto r = test::run_command(test::shell_quote(test::rlhf_bin()) + " logprobs --model " +
                             test::shell_quote(dir.string()) + " --ids " + ids);
  ASSERT_EQ(r.exit_code, 0) << "rlhf logprobs failed (" << test::rlhf_bin() << "): " << r.err;
  Json out;
  ASSERT_NO_THROW(out = Json::parse(r.out)) << "stdout is not one JSON document: " << r.out;
  EXPECT_EQ(out["ids"].get<std::vector<int64_t>>(), seq);
  auto got = torch::tensor(out["logprobs"].get<std::vector<double>>(), torch::kDouble);
  auto want = expected_tensor((*c)["logprobs"][0]);
  ASSERT_EQ(got.numel(), want.numel());
  double d = test::max_abs_diff(got, want);
  EXPECT_LT(d, kTol) << GetParam() << ": max |diff| " << d;
}

INSTANTIATE_TEST_SUITE_P(Ref, RefCli,
                         ::testing::Values("gpt2", "gpt2_noprefix", "gpt2_bf16", "llama_gqa", "llama_gqa_bf16",
                                           "llama_sharded", "llama31_rope", "qwen2", "mistral_swa"),
                         [](const auto& info) { return info.param; });

TEST(RefCliErrors, ScoreModelIsRefused) {
  const Json* c = ref_case("gpt2_score");
  ASSERT_NE(c, nullptr);
  auto dir = ref_dir() / (*c)["dir"].get<std::string>();
  auto r = test::run_command(test::shell_quote(test::rlhf_bin()) + " logprobs --model " +
                             test::shell_quote(dir.string()) + " --ids 1,2,3");
  test::expect_cli_error(r, {dir.string(), "score"}, "logprobs on a score model");
}

}  // namespace
}  // namespace rlhf
