// Reward-model checkpoints written by transformers itself (GPT2ForSequenceClassification,
// LlamaForSequenceClassification, save_pretrained(safe_serialization=True)) load with load_model as a
// score head and give transformers' scores. tests/hf/check_transformers.py writes them and the scores
// into $RLHF_HF_DIR; ctest runs this as the `hf_score_models` test (label hf) after that script.
#include <gtest/gtest.h>

#include "core/runtime.h"
#include "io/json.h"
#include "model/transformer.h"
#include "test_tensor_util.h"
#include "test_util.h"

namespace rlhf {
namespace {

TEST(HfScoreModels, MatchTransformers) {
  const char* dir_env = std::getenv("RLHF_HF_DIR");
  if (!dir_env || !*dir_env) GTEST_SKIP() << "RLHF_HF_DIR is not set; run: ctest -L hf";
  std::filesystem::path dir = dir_env;
  auto manifest_path = dir / "score_manifest.json";
  ASSERT_TRUE(std::filesystem::exists(manifest_path))
      << manifest_path.string() << " missing: tests/hf/check_transformers.py did not run or failed";
  Json m = read_json_file(manifest_path);
  ASSERT_GE(m["cases"].size(), 2u);
  for (auto& [name, c] : m["cases"].items()) {
    auto model = load_model(dir / c["dir"].get<std::string>());
    ASSERT_EQ(model->config().head, Head::Score) << name;
    model->eval();
    torch::NoGradGuard ng;
    const int64_t labels = c["num_labels"].get<int64_t>();
    ASSERT_EQ(model->config().num_labels, labels) << name;
    for (size_t i = 0; i < c["sequences"].size(); ++i) {
      auto ids = torch::tensor(c["sequences"][i].get<std::vector<int64_t>>(), torch::kLong).unsqueeze(0).to(device());
      auto got = model->forward(ids).squeeze(0).cpu();  // (T, labels)
      std::vector<double> flat;
      for (auto& r : c["scores"][i])
        for (auto& v : r) flat.push_back(v.get<double>());
      ASSERT_EQ(int64_t(flat.size()), got.numel()) << name;
      double d = test::max_abs_diff(got, torch::tensor(flat, torch::kDouble).view(got.sizes()));
      EXPECT_LT(d, 1e-4) << name << " sequence " << i << ": max |diff| " << d;
    }
  }
}

}  // namespace
}  // namespace rlhf
