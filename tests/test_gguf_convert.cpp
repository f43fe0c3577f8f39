// `rlhf convert --from-gguf`: tiny GGUF models written by the gguf package (tests/ref/gguf_model_fixtures.py:
// llama with permuted Q/K and tied embeddings, qwen2 with biases and an untied head, a Llama-2-style
// SentencePiece vocabulary, gpt2 with transposed Conv1D weights) are converted by the CLI, loaded by
// rlhf, and must give transformers' logits of the dequantised model within 1e-4 and the original
// tokenizer's ids exactly; transformers must load the converted directories too (gguf_check_hf.py).
// Broken files must each be one error line. Fixture directory: $RLHF_GGUF_MODEL_DIR, else the one
// CTest's gguf_models_generate writes (compiled in when the venv existed at configure time).
#include "io/gguf_convert.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "io/json.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "test_tensor_util.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace rlhf {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

const char* model_fixture_dir() {
  const char* d = std::getenv("RLHF_GGUF_MODEL_DIR");
  if (d && *d) return d;
#ifdef RLHF_GGUF_MODEL_DIR
  return RLHF_GGUF_MODEL_DIR;
#else
  return nullptr;
#endif
}

#define REQUIRE_FIXTURES()                                                                         \
  const char* fixture_root = model_fixture_dir();                                                  \
  if (!fixture_root) GTEST_SKIP() << "no venv at configure time and RLHF_GGUF_MODEL_DIR unset"; \
  const fs::path dir(fixture_root);                                                                \
  ASSERT_TRUE(fs::exists(dir / "manifest.json"))                                                   \
      << dir << ": no manifest.json; run tests/ref/gguf_model_fixtures.py --out " << dir

test::RunResult convert(const fs::path& gguf, const fs::path& out, const std::string& extra = "") {
  return test::run_command(test::rlhf_bin() + " convert --from-gguf " + test::shell_quote(gguf.string()) + " --out " +
                           test::shell_quote(out.string()) + " " + extra);
}

// ---- pure parts ----------------------------------------------------------------------------------------

TEST(GgufConvertUnit, UnpermuteInvertsLlamaCppsPermutation) {
  // One head of 4 rows: llama.cpp stores HF rows (0, 1 | 2, 3) interleaved as (0, 2, 1, 3).
  const float one_head[4] = {10, 12, 11, 13};
  float out[4];
  gguf_unpermute_rows(one_head, out, 4, 1, 1);
  EXPECT_EQ(std::vector<float>(out, out + 4), (std::vector<float>{10, 11, 12, 13}));
  // Against a transcription of convert_hf_to_gguf.py's permute: 3 heads of 8 rows, 5 columns.
  const int64_t H = 3, d = 8, rows = H * d, cols = 5;
  std::vector<float> hf(size_t(rows * cols)), stored(hf.size()), back(hf.size());
  for (size_t i = 0; i < hf.size(); ++i) hf[i] = float(i);
  // permute: w.reshape(H, 2, d/2, cols).swapaxes(1, 2): stored row h*d + 2*j + i = hf row h*d + i*(d/2) + j
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < d / 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          stored[size_t((h * d + 2 * j + i) * cols + c)] = hf[size_t((h * d + i * (d / 2) + j) * cols + c)];
  gguf_unpermute_rows(stored.data(), back.data(), rows, cols, H);
  EXPECT_EQ(back, hf);
  EXPECT_THROW(gguf_unpermute_rows(stored.data(), back.data(), 6, 1, 4), Error);  // not whole even heads
}

TEST(GgufConvertUnit, Float32KeysBecomeTheDecimalsTheyWereWrittenFrom) {
  EXPECT_EQ(gguf_float32_decimal(double(1e-5f)), 1e-5);
  EXPECT_EQ(gguf_float32_decimal(double(1e-6f)), 1e-6);
  EXPECT_EQ(gguf_float32_decimal(double(0.1f)), 0.1);
  EXPECT_EQ(gguf_float32_decimal(100000.0), 100000.0);
  EXPECT_EQ(gguf_float32_decimal(double(500000.0f)), 500000.0);
  EXPECT_EQ(gguf_float32_decimal(double(3.14159274f)), 3.1415927);
}

// ---- the fixtures ----------------------------------------------------------------------------------------

class GgufConvertFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufConvertFixture, MatchesReference) {
  REQUIRE_FIXTURES();
  const Json ref = read_json_file(dir / (GetParam() + ".ref.json"));
  TempDir tmp;
  const fs::path out = tmp / "model";
  auto r = convert(dir / ref["file"].get<std::string>(), out);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // config.json: the metadata's values, float32 keys as the decimals they were written from.
  const Json cfg = read_json_file(out / "config.json");
  for (auto& [k, v] : ref["config"].items()) {
    ASSERT_TRUE(cfg.contains(k)) << k;
    if (v.is_number_float()) EXPECT_EQ(cfg[k].get<double>(), v.get<double>()) << k;
    else EXPECT_EQ(cfg[k], v) << k;
  }

  // Logits of rlhf's model on the converted weights against transformers' on the dequantised ones.
  auto model = load_model(out);
  model->eval();
  torch::NoGradGuard ng;
  double worst = 0;
  for (size_t i = 0; i < ref["prompts"].size(); ++i) {
    auto ids = torch::tensor(ref["prompts"][i].get<std::vector<int64_t>>(), torch::kLong).unsqueeze(0);
    auto logits = model->forward(ids).squeeze(0).cpu();
    std::vector<float> flat;  // (T, V)
    for (auto& row : ref["logits"][i])
      for (auto& x : row) flat.push_back(x.get<float>());
    auto want = torch::tensor(flat).view(logits.sizes());
    worst = std::max(worst, test::max_abs_diff(logits, want));
  }
  EXPECT_LT(worst, 1e-4) << GetParam() << ": max |logit diff| " << worst;
  std::cout << "[ gguf     ] " << GetParam() << ": max |logit diff| vs transformers " << worst << "\n";

  // Token ids of the corpus: the original tokenizer's (HF tokenizers, or SentencePiece itself).
  auto tok = Tokenizer::load(out);
  const Json& tc_want = ref["tokenizer_config"];
  const bool add = tc_want.value("add_bos_token", false);
  int mismatches = 0;
  for (size_t i = 0; i < ref["corpus"].size(); ++i) {
    const std::string text = ref["corpus"][i].get<std::string>();
    auto got = tok->encode(text, /*add_special_tokens=*/add);
    auto want = ref["ids"][i].get<std::vector<int64_t>>();
    if (got != want) ++mismatches;
    EXPECT_EQ(got, want) << GetParam() << ": \"" << text << "\"";
    if (!add) EXPECT_EQ(tok->decode(got), text) << GetParam() << ": decode of \"" << text << "\"";
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(tok->vocab_size(), ref["n_tokens"].get<int64_t>());

  // tokenizer_config.json and generation_config.json: special tokens as the metadata says.
  const Json tc = read_json_file(out / "tokenizer_config.json");
  for (auto& [k, v] : tc_want.items()) EXPECT_EQ(tc.value(k, Json()), v) << GetParam() << ": tokenizer_config " << k;
  const Json gc = read_json_file(out / "generation_config.json");
  if (tc_want.contains("eos_token")) {
    auto eos = tok->token_to_id(tc_want["eos_token"].get<std::string>());
    ASSERT_TRUE(eos);
    EXPECT_EQ(gc["eos_token_id"], *eos);
    EXPECT_EQ(cfg["eos_token_id"], *eos);
  }
}

// transformers reads the converted directory (model, tokenizer, specials, chat templates) and gets
// the same reference numbers.
TEST_P(GgufConvertFixture, TransformersLoadsTheConvertedDirectory) {
#ifndef RLHF_HF_PYTHON
  GTEST_SKIP() << "no venv with transformers at configure time";
#else
  REQUIRE_FIXTURES();
  TempDir tmp;
  const fs::path out = tmp / "model";
  const Json ref = read_json_file(dir / (GetParam() + ".ref.json"));
  auto r = convert(dir / ref["file"].get<std::string>(), out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto check = test::run_command(std::string(RLHF_HF_PYTHON) + " " + RLHF_SOURCE_DIR + "/tests/ref/gguf_check_hf.py --dir " +
                                 test::shell_quote(out.string()) + " --ref " +
                                 test::shell_quote((dir / (GetParam() + ".ref.json")).string()));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("\"ok\": true"), std::string::npos) << check.out;
#endif
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufConvertFixture, ::testing::Values("llama_bpe", "qwen2_bpe", "llama_spm", "gpt2_bpe"));

TEST(GgufConvert, EveryBrokenFileIsOneErrorLineAndWritesNothing) {
  REQUIRE_FIXTURES();
  const Json m = read_json_file(dir / "manifest.json");
  ASSERT_GE(m["bad"].size(), 10u);
  for (const auto& b : m["bad"]) {
    const std::string file = b["file"].get<std::string>();
    TempDir tmp;
    auto r = convert(dir / file, tmp / "out");
    if (b["errors"].is_null()) {
      EXPECT_EQ(r.exit_code, 0) << file << ": " << r.err;
      EXPECT_TRUE(fs::exists(tmp / "out" / "config.json")) << file;
      continue;
    }
    test::expect_cli_error(r, {}, file);
    for (const auto& part : b["errors"])
      EXPECT_NE(r.err.find(part.get<std::string>()), std::string::npos) << file << ": " << r.err << " lacks " << part;
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
      EXPECT_FALSE(fs::exists(tmp / "out" / f)) << file << " left " << f;
  }
  TempDir tmp;
  test::expect_cli_error(convert(tmp / "missing.gguf", tmp / "out"), {"missing.gguf"}, "missing file");
  test::expect_cli_error(convert(dir / "llama_bpe.gguf", tmp / "out", "--save-dtype int8"), {"--save-dtype", "int8"},
                         "bad dtype");
  test::expect_cli_error(test::run_command(test::rlhf_bin() + " convert --from-gguf " +
                                           test::shell_quote((dir / "llama_bpe.gguf").string())),
                         {"--out"}, "no --out");
}

// Seeded mutations of a small valid file's header and metadata: each converts or is one rlhf::Error
// (never another exception, a crash or a hang); the reader's own fuzzing is in test_gguf.cpp.
TEST(GgufConvert, MutatedFilesConvertOrFailWithAnError) {
  REQUIRE_FIXTURES();
  const std::string good = test::read_bytes(dir / "small_ok.gguf");
  size_t header_end = 0;
  {
    GgufFile f(dir / "small_ok.gguf");
    header_end = size_t(f.data_offset());
  }
  std::mt19937_64 rng(16);
  TempDir tmp;
  int converted = 0, refused = 0;
  for (int round = 0; round < 400; ++round) {
    std::string b = good;
    const int n_flips = 1 + int(rng() % 4);
    for (int k = 0; k < n_flips; ++k) {
      const size_t at = 24 + size_t(rng() % (header_end - 24));  // past magic, version and counts
      b[at] = char(rng() % 3 == 0 ? uint8_t(rng()) : uint8_t(b[at]) ^ uint8_t(1u << (rng() % 8)));
    }
    const fs::path p = tmp / "m.gguf", out = tmp / ("out" + std::to_string(round));
    test::write_bytes(p, b);
    try {
      GgufFile f(p);
      fs::create_directories(out);
      GgufConvertOptions opt;
      convert_gguf(f, out, opt);
      ++converted;
    } catch (const Error& e) {
      ++refused;
      EXPECT_NE(std::string(e.what()).find("m.gguf"), std::string::npos) << "round " << round << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "round " << round << ": not an rlhf::Error: " << e.what();
    }
    fs::remove_all(out);
  }
  EXPECT_GT(refused, 100);
  EXPECT_GT(converted, 10);
  std::cout << "[ gguf     ] mutations: " << converted << " converted, " << refused << " refused\n";
}

TEST(GgufConvert, RefusesAnOutputThatHoldsAModelUnlessOverwriting) {
  REQUIRE_FIXTURES();
  TempDir tmp;
  const fs::path out = tmp / "model";
  ASSERT_EQ(convert(dir / "small_ok.gguf", out).exit_code, 0);
  test::expect_cli_error(convert(dir / "gpt2_bpe.gguf", out), {"already holds a model", "--overwrite-output-dir"},
                         "second convert");
  EXPECT_EQ(read_json_file(out / "config.json")["model_type"], "llama");  // untouched
  // A refused overwrite (a broken file) leaves the old model in place.
  test::expect_cli_error(convert(dir / "bad_arch.gguf", out, "--overwrite-output-dir"), {"mamba"}, "broken overwrite");
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  auto r = convert(dir / "gpt2_bpe.gguf", out, "--overwrite-output-dir");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json_file(out / "config.json")["model_type"], "gpt2");
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(GgufConvert, HalfPrecisionOutputsAreTheRoundedFloat32Weights) {
  REQUIRE_FIXTURES();
  TempDir tmp;
  ASSERT_EQ(convert(dir / "qwen2_bpe.gguf", tmp / "f32").exit_code, 0);
  ASSERT_EQ(convert(dir / "qwen2_bpe.gguf", tmp / "bf16", "--save-dtype bf16").exit_code, 0);
  ASSERT_EQ(convert(dir / "qwen2_bpe.gguf", tmp / "f16", "--save-dtype fp16").exit_code, 0);
  SafetensorsFile f32(tmp / "f32" / "model.safetensors");
  for (auto [sub, dt, name] : {std::tuple{"bf16", torch::kBFloat16, "BF16"}, std::tuple{"f16", torch::kHalf, "F16"}}) {
    SafetensorsFile h(tmp / sub / "model.safetensors");
    ASSERT_EQ(h.tensors().size(), f32.tensors().size());
    for (const auto& t : f32.tensors()) {
      const StTensorInfo* o = h.find(t.name);
      ASSERT_TRUE(o) << t.name;
      EXPECT_EQ(o->dtype, name);
      EXPECT_EQ(o->shape, t.shape);
      EXPECT_TRUE(torch::equal(h.load(t.name, dt), f32.load(t.name).to(dt))) << sub << " " << t.name;
    }
    EXPECT_EQ(read_json_file(tmp / sub / "config.json")["torch_dtype"], std::string(sub) == "bf16" ? "bfloat16" : "float16");
  }
}

TEST(GgufConvert, ListPrintsTheMetadataAndTheTensorTable) {
  REQUIRE_FIXTURES();
  auto r = test::run_command(test::rlhf_bin() + " convert --list --from-gguf " +
                             test::shell_quote((dir / "llama_bpe.gguf").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"GGUF v3", "general.architecture = \"llama\"", "llama.block_count = 2", "tokenizer.ggml.tokens = [",
                        "blk.0.attn_q.weight", "Q4_1", "64 x 64", "token_embd.weight", "Q8_0"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

}  // namespace
}  // namespace rlhf
