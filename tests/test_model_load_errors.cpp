// Loading a model directory that is wrong in some way: load_model must throw an rlhf::Error that
// names the file (and the tensor), and the rlhf binary must print exactly one "error: " line and exit
// non-zero, never crash. The directories are a valid tiny model, saved and then broken on purpose.
#include <gtest/gtest.h>

#include <functional>

#include "io/json.h"
#include "model/small_gemm.h"
#include "model/transformer.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;
using test::TempDir;

Json tiny_llama_json() {
  return {{"model_type", "llama"}, {"vocab_size", 50}, {"hidden_size", 16}, {"intermediate_size", 32},
          {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
          {"max_position_embeddings", 32}, {"tie_word_embeddings", false}};
}

// A valid model in `dir`: config.json + model.safetensors.
void write_valid(const std::filesystem::path& dir, const std::string& arch = "llama") {
  Json j = tiny_llama_json();
  if (arch == "gpt2")
    j = {{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 16}, {"n_layer", 1}, {"n_head", 2}, {"n_positions", 32}};
  auto m = make_model(ModelConfig::from_json(j, "test"), 1);
  save_model(*m, dir);
}

void edit_config(const std::filesystem::path& dir, const std::function<void(Json&)>& f) {
  Json j = read_json_file(dir / "config.json");
  f(j);
  write_json_atomic(dir / "config.json", j);
}

// Rewrites model.safetensors through `f` (tensor list in, tensor list out).
void edit_tensors(const std::filesystem::path& dir, const std::function<void(NamedTensors&)>& f) {
  NamedTensors ts;
  {
    SafetensorsFile st(dir / "model.safetensors");
    for (const auto& info : st.tensors()) ts.emplace_back(info.name, st.load(info.name, torch::ScalarType::Undefined));
  }
  f(ts);
  save_safetensors(dir / "model.safetensors", ts);
}

TEST(ModelLoadErrors, ConfigAndFiles) {
  {
    TempDir dir;
    expect_error([&] { load_model(dir / "nope"); }, {(dir / "nope").string(), "not found"}, "no directory");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    std::filesystem::remove(dir / "config.json");
    expect_error([&] { load_model(dir.path()); }, {(dir / "config.json").string()}, "no config.json");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    edit_config(dir.path(), [](Json& j) { j["model_type"] = "falcon"; });
    expect_error([&] { load_model(dir.path()); }, {(dir / "config.json").string(), "falcon"}, "unknown model_type");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    std::filesystem::remove(dir / "model.safetensors");
    expect_error([&] { load_model(dir.path()); }, {dir.path().string(), "model.safetensors"}, "no weights");
  }
}

TEST(ModelLoadErrors, WeightsDisagreeWithConfig) {
  {
    TempDir dir;
    write_valid(dir.path());
    edit_config(dir.path(), [](Json& j) { j["intermediate_size"] = 48; });
    expect_error([&] { load_model(dir.path()); },
                 {dir.path().string(), "model.layers.0.mlp.", "[32, 16]", "[48, 16]", "config.json"}, "mlp width");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    edit_config(dir.path(), [](Json& j) { j["num_key_value_heads"] = 2; });
    expect_error([&] { load_model(dir.path()); }, {"model.layers.0.self_attn.k_proj.weight", "shape"}, "kv heads");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    edit_config(dir.path(), [](Json& j) { j["num_hidden_layers"] = 2; });
    expect_error([&] { load_model(dir.path()); }, {"model.layers.1.", "missing"}, "more layers than stored");
  }
  {
    TempDir dir;
    write_valid(dir.path());
    edit_config(dir.path(), [](Json& j) { j["tie_word_embeddings"] = true; });
    auto m = load_model(dir.path());  // the stored head is then simply unused (a warning)
    EXPECT_TRUE(m->config().tie_word_embeddings);
  }
  {
    TempDir dir;
    write_valid(dir.path());
    edit_tensors(dir.path(), [](NamedTensors& ts) {
      for (auto& [n, t] : ts)
        if (n == "model.norm.weight") t = t.to(torch::kLong);
    });
    expect_error([&] { load_model(dir.path()); }, {"model.norm.weight", "I64", "float"}, "integer weights");
  }
  {
    TempDir dir;
    write_valid(dir.path(), "gpt2");
    edit_tensors(dir.path(), [](NamedTensors& ts) {
      for (auto& [n, t] : ts)
        if (n == "transformer.h.0.attn.c_proj.weight") t = torch::zeros({16, 8});
    });
    expect_error([&] { load_model(dir.path()); }, {"transformer.h.0.attn.c_proj.weight", "[16, 8]", "[16, 16]"},
                 "gpt2 conv1d shape");
  }
}

// ---- the same through the rlhf binary -----------------------------------------------------------------------

test::RunResult logprobs(const std::filesystem::path& dir, const std::string& ids = "1,2,3") {
  return test::run_command(test::shell_quote(test::rlhf_bin()) + " logprobs --model " + test::shell_quote(dir.string()) +
                           " --ids " + ids);
}

TEST(CliModelErrors, OneLineAndNonZeroExit) {
  TempDir root;
  int n = 0;
  // Each case: a broken copy of a valid model, and what the error line must name.
  auto case_dir = [&](const std::function<void(const std::filesystem::path&)>& breaker) {
    auto dir = root / "m";
    dir += std::to_string(n++);  // (not "m" + to_string: GCC 12 warns falsely about that concatenation)
    write_valid(dir);
    breaker(dir);
    return dir;
  };
  const std::string good = test::read_bytes(case_dir([](auto&) {}) / "model.safetensors");
  struct Case {
    std::string what;
    std::function<void(const std::filesystem::path&)> breaker;
    std::vector<std::string> expect;  // relative file names: the directory is prepended
  };
  std::vector<Case> cases = {
      {"cut inside the header", [&](auto& d) { test::write_bytes(d / "model.safetensors", good.substr(0, 40)); },
       {"model.safetensors"}},
      {"cut inside the data", [&](auto& d) { test::write_bytes(d / "model.safetensors", good.substr(0, good.size() - 7)); },
       {"model.safetensors", "truncated"}},
      {"only the length", [&](auto& d) { test::write_bytes(d / "model.safetensors", good.substr(0, 8)); },
       {"model.safetensors"}},
      {"empty file", [&](auto& d) { test::write_bytes(d / "model.safetensors", ""); }, {"model.safetensors"}},
      {"header length past the end",
       [&](auto& d) {
         std::string b = good;
         b[5] = '\x01';  // length += 2^40
         test::write_bytes(d / "model.safetensors", b);
       },
       {"model.safetensors"}},
      {"header not JSON",
       [&](auto& d) {
         std::string b = good;
         b[9] = '#';
         test::write_bytes(d / "model.safetensors", b);
       },
       {"model.safetensors", "JSON"}},
      {"no config.json", [&](auto& d) { std::filesystem::remove(d / "config.json"); }, {"config.json", "not found"}},
      {"config.json not JSON", [&](auto& d) { test::write_bytes(d / "config.json", "{\"model_type\":"); },
       {"config.json", "JSON"}},
      {"config.json number overflow",
       [&](auto& d) { test::write_bytes(d / "config.json", "{\"model_type\":\"llama\",\"rope_theta\":1e999}"); },
       {"config.json"}},
      {"unknown model_type", [&](auto& d) { edit_config(d, [](Json& j) { j["model_type"] = "mamba"; }); },
       {"config.json", "mamba"}},
      {"shape disagrees with config", [&](auto& d) { edit_config(d, [](Json& j) { j["vocab_size"] = 60; }); },
       {"model.embed_tokens.weight", "config.json"}},
      {"no safetensors", [&](auto& d) { std::filesystem::remove(d / "model.safetensors"); }, {"model.safetensors"}},
      {"missing shard",
       [&](auto& d) {
         std::filesystem::rename(d / "model.safetensors", d / "model-00001-of-00002.safetensors");
         test::write_bytes(d / "model.safetensors.index.json",
                           R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
       },
       {"model-00002-of-00002.safetensors"}},
      {"shard outside the directory",
       [&](auto& d) {
         std::filesystem::rename(d / "model.safetensors", d / "s.safetensors");
         test::write_bytes(d / "model.safetensors.index.json", R"({"weight_map":{"a":"../s.safetensors"}})");
       },
       {"model.safetensors.index.json", "../s.safetensors"}},
      {"duplicate tensor across shards",
       [&](auto& d) {
         std::filesystem::rename(d / "model.safetensors", d / "s1.safetensors");
         save_safetensors(d / "s2.safetensors", {{"model.norm.weight", torch::ones({16})}});
         test::write_bytes(d / "model.safetensors.index.json",
                           R"({"weight_map":{"a":"s1.safetensors","model.norm.weight":"s2.safetensors"}})");
       },
       {"s1.safetensors", "s2.safetensors", "model.norm.weight"}},
  };
  for (const auto& c : cases) {
    auto dir = case_dir(c.breaker);
    auto r = logprobs(dir);
    std::vector<std::string> parts;
    test::expect_cli_error(r, {}, c.what);
    for (const auto& e : c.expect) EXPECT_NE(r.err.find(e), std::string::npos) << c.what << ": lacks " << e << ": " << r.err;
    EXPECT_NE(r.err.find(dir.string()), std::string::npos) << c.what << ": does not name the directory: " << r.err;
  }
}

TEST(CliModelErrors, BadArguments) {
  TempDir root;
  write_valid(root.path());
  test::expect_cli_error(logprobs(root.path(), "1,x"), {"--ids", "x"}, "non-integer id");
  test::expect_cli_error(logprobs(root.path(), "1,,2"), {"--ids"}, "empty id");
  test::expect_cli_error(logprobs(root.path(), "3"), {"--ids", "two"}, "one id");
  test::expect_cli_error(logprobs(root.path(), "1,50"), {"--ids", "50", "vocabulary"}, "id out of vocab");
  test::expect_cli_error(logprobs(root.path(), "1,-1"), {"--ids", "-1"}, "negative id");
  test::expect_cli_error(logprobs(root.path(), "1,99999999999999999999"), {"--ids"}, "id overflow");
  auto bin = test::shell_quote(test::rlhf_bin());
  auto out = test::shell_quote((root / "new").string());
  test::expect_cli_error(test::run_command(bin + " init --arch bert --out " + out), {"bert"}, "init --arch");
  test::expect_cli_error(test::run_command(bin + " init --arch llama --save-dtype fp8 --out " + out), {"fp8"},
                         "init --save-dtype");
  EXPECT_FALSE(std::filesystem::exists(root / "new" / "model.safetensors"));
}

}  // namespace
}  // namespace rlhf

namespace rlhf {
namespace {

// `rlhf env` reports the allocator set-up the start-up restart chose: raised glibc thresholds by
// default, glibc's own with RLHF_MALLOC=default, and the user's glibc.malloc tunables left alone.
TEST(EnvCli, ReportsTheAllocatorChoice) {
  auto bin = test::shell_quote(test::rlhf_bin());
  // The test binary itself was restarted with these set; a fresh start must decide on its own.
  const std::string clean = "env -u RLHF_REEXEC -u RLHF_BLAS_REEXEC -u GLIBC_TUNABLES ";
  auto malloc_of = [&](const std::string& prefix) {
    auto r = test::run_command(clean + prefix + bin + " env --json --size 64");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out).value("malloc", std::string());
  };
  EXPECT_NE(malloc_of("").find("freed memory kept for reuse"), std::string::npos);
  EXPECT_NE(malloc_of("RLHF_MALLOC=default ").find("glibc defaults"), std::string::npos);
  EXPECT_NE(malloc_of("GLIBC_TUNABLES=glibc.malloc.arena_max=2 ").find("set by the user"), std::string::npos);
}

// `rlhf env` names the libstdc++ the loader picked (the one a crash in std::filesystem points at when
// a compiler outside /usr brought a newer one).
TEST(EnvCli, ReportsTheLoadedCxxRuntime) {
  auto r = test::run_command(test::shell_quote(test::rlhf_bin()) + " env --json --size 64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string lib = Json::parse(r.out).value("libstdcxx", std::string());
  EXPECT_NE(lib.find("libstdc++"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(lib)) << lib;
  // ... and which kernels decoding uses (AVX-512 where the CPU has it, the BLAS otherwise).
  std::string decode = Json::parse(r.out).value("decode_kernels", std::string());
  EXPECT_NE(decode.find(small_gemm_available() ? "AVX-512" : "BLAS"), std::string::npos) << r.out;
}

// RLHF_DEVICE is --device's default (what the CLI tests inherit under RLHF_TEST_DEVICE); the option wins.
TEST(EnvCli, DeviceDefaultsToRlhfDevice) {
  auto bin = test::shell_quote(test::rlhf_bin());
  auto r = test::run_command("RLHF_DEVICE=tpu " + bin + " env --json --size 64");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--device 'tpu' is not known"), std::string::npos) << r.err;
  r = test::run_command("RLHF_DEVICE=tpu " + bin + " --device cpu env --json --size 64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out).value("device", std::string()), "cpu");
}

}  // namespace
}  // namespace rlhf
