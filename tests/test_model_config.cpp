// config.json parsing: what each Hugging Face model_type means for the model we build, the round
// trip through to_json(), and every malformed config as an rlhf::Error naming the file and field.
// Runs under AddressSanitizer + UBSan too (rlhf_parser_tests_asan).
#include <gtest/gtest.h>

#include "model/config.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;

ModelConfig parse(const std::string& text) { return ModelConfig::from_json(Json::parse(text), "cfg.json"); }

const char* kLlama = R"({"model_type":"llama","vocab_size":160,"hidden_size":32,"intermediate_size":64,
  "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,
  "rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":false,"eos_token_id":[2,3],"bos_token_id":1})";

TEST(ModelConfig, Gpt2DefaultsAreHuggingFaces) {
  ModelConfig c = parse(R"({"model_type":"gpt2"})");
  EXPECT_EQ(c.arch, Arch::GPT2);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.n_ctx, 1024);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_EQ(c.n_kv_head, 12);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_inner, 3072);
  EXPECT_EQ(c.activation, "gelu_new");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias && c.out_bias && c.mlp_bias);
  EXPECT_DOUBLE_EQ(c.resid_pdrop, 0.1);
  EXPECT_EQ(c.head, Head::LM);
  EXPECT_EQ(c.num_parameters(), 124439808);  // GPT-2 small, as transformers counts it
}

TEST(ModelConfig, Gpt2Fields) {
  ModelConfig c = parse(R"({"model_type":"gpt2","n_embd":48,"n_head":4,"n_layer":3,"n_positions":64,
    "n_inner":null,"activation_function":"gelu","scale_attn_by_inverse_layer_idx":true,"vocab_size":100})");
  EXPECT_EQ(c.n_inner, 4 * 48);
  EXPECT_EQ(c.head_dim, 12);
  EXPECT_EQ(c.activation, "gelu");
  EXPECT_TRUE(c.scale_attn_by_inverse_layer_idx);
  EXPECT_EQ(parse(R"({"model_type":"gpt2","n_inner":80})").n_inner, 80);
}

TEST(ModelConfig, LlamaFamily) {
  ModelConfig c = parse(kLlama);
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias || c.out_bias || c.mlp_bias);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.rope_scaling.type.empty());

  Json j = Json::parse(kLlama);
  j["head_dim"] = 16;  // head_dim != hidden / heads
  EXPECT_EQ(ModelConfig::from_json(j, "x").head_dim, 16);
  j["attention_bias"] = true;
  c = ModelConfig::from_json(j, "x");
  EXPECT_TRUE(c.qkv_bias && c.out_bias);
  EXPECT_FALSE(c.mlp_bias);

  j = Json::parse(kLlama);
  j["model_type"] = "qwen2";
  j["use_sliding_window"] = false;
  j["sliding_window"] = 4096;
  c = ModelConfig::from_json(j, "x");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.out_bias || c.mlp_bias);
  EXPECT_EQ(c.sliding_window, 0);

  j = Json::parse(kLlama);
  j["model_type"] = "mistral";
  j["sliding_window"] = 5;
  c = ModelConfig::from_json(j, "x");
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_FALSE(c.qkv_bias || c.out_bias || c.mlp_bias);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(ModelConfig::from_json(j, "x").sliding_window, 0);
}

TEST(ModelConfig, RopeScaling) {
  Json j = Json::parse(kLlama);
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  ModelConfig c = ModelConfig::from_json(j, "x");
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // the older key
  c = ModelConfig::from_json(j, "x");
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 2.0);
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_TRUE(ModelConfig::from_json(j, "x").rope_scaling.type.empty());
  j["rope_scaling"] = nullptr;
  EXPECT_TRUE(ModelConfig::from_json(j, "x").rope_scaling.type.empty());
}

TEST(ModelConfig, ScoreHead) {
  ModelConfig c = parse(R"({"model_type":"llama","architectures":["LlamaForSequenceClassification"],
    "id2label":{"0":"LABEL_0"},"hidden_size":32,"num_attention_heads":4,"intermediate_size":64,"num_hidden_layers":1})");
  EXPECT_EQ(c.head, Head::Score);
  EXPECT_EQ(c.num_labels, 1);
  c = parse(R"({"model_type":"gpt2","architectures":["GPT2ForSequenceClassification"],
    "id2label":{"0":"a","1":"b","2":"c"}})");
  EXPECT_EQ(c.head, Head::Score);
  EXPECT_EQ(c.num_labels, 3);
  // Two labels is transformers' default, and save_pretrained then writes neither num_labels nor id2label.
  c = parse(R"({"model_type":"gpt2","architectures":["GPT2ForSequenceClassification"]})");
  EXPECT_EQ(c.num_labels, 2);
  EXPECT_EQ(parse(R"({"model_type":"gpt2","architectures":["GPT2LMHeadModel"]})").head, Head::LM);
}

TEST(ModelConfig, ToJsonRoundTrip) {
  for (const char* text : {kLlama, R"({"model_type":"gpt2","n_embd":32,"n_head":4,"n_layer":2,"vocab_size":99})"}) {
    Json j = Json::parse(text);
    j["custom_field"] = "kept";
    ModelConfig a = ModelConfig::from_json(j, "a");
    a.rope_scaling = a.arch == Arch::Llama ? RopeScaling{"llama3", 8.0, 1.0, 4.0, 64} : RopeScaling{};
    Json out = a.to_json();
    EXPECT_EQ(out["custom_field"], "kept");
    ModelConfig b = ModelConfig::from_json(out, "b");
    EXPECT_EQ(b.model_type, a.model_type);
    EXPECT_EQ(b.vocab_size, a.vocab_size);
    EXPECT_EQ(b.n_embd, a.n_embd);
    EXPECT_EQ(b.n_layer, a.n_layer);
    EXPECT_EQ(b.n_head, a.n_head);
    EXPECT_EQ(b.n_kv_head, a.n_kv_head);
    EXPECT_EQ(b.head_dim, a.head_dim);
    EXPECT_EQ(b.n_inner, a.n_inner);
    EXPECT_EQ(b.n_ctx, a.n_ctx);
    EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
    EXPECT_EQ(b.eos_token_ids, a.eos_token_ids);
    EXPECT_EQ(b.rope_scaling.type, a.rope_scaling.type);
    EXPECT_EQ(b.num_parameters(), a.num_parameters());
    // Score heads write what transformers reads back.
    a.head = Head::Score;
    Json s = a.to_json();
    EXPECT_NE(s["architectures"][0].get<std::string>().find("ForSequenceClassification"), std::string::npos);
    EXPECT_EQ(ModelConfig::from_json(s, "s").head, Head::Score);
  }
}

TEST(ModelConfig, Presets) {
  EXPECT_EQ(preset_config("llama", "tiny").n_kv_head, 2);
  EXPECT_EQ(preset_config("gpt2", "124m").num_parameters(), 124439808);
  expect_error([] { preset_config("llama", "huge"); }, {"huge"}, "unknown size");
  expect_error([] { preset_config("bert", "tiny"); }, {"bert"}, "unknown arch");
}

// ---- malformed configs ----------------------------------------------------------------------------------------

// A config.json text and what its error must name (besides the file).
struct ConfigCase {
  const char* json;
  std::vector<std::string> expect;
};

template <size_t N>
void expect_refused(const ConfigCase (&cases)[N]) {
  for (const auto& c : cases) {
    Json j = Json::parse(c.json);
    try {
      ModelConfig::from_json(j, "dir/config.json");
      ADD_FAILURE() << c.json << ": accepted";
    } catch (const rlhf::Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("dir/config.json"), std::string::npos) << c.json << ": " << msg;
      for (const auto& part : c.expect) EXPECT_NE(msg.find(part), std::string::npos) << c.json << ": " << msg;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.json << ": non-rlhf exception: " << e.what();
    }
  }
}

TEST(ModelConfigErrors, NameTheFileAndField) {
  const ConfigCase cases[] = {
      {R"({"model_type":"bert"})", {"bert", "gpt2, llama, mistral, qwen2"}},
      {R"({"model_type":"gpt_neox"})", {"gpt_neox"}},
      {R"({"vocab_size":10})", {"model_type"}},
      {R"({"model_type":""})", {"model_type"}},
      {R"({"model_type":7})", {"model_type"}},
      {R"([1,2])", {"object"}},
      {R"({"model_type":"gpt2","n_embd":"768"})", {"n_embd", "wrong type"}},
      {R"({"model_type":"gpt2","n_embd":0})", {"n_embd", "positive"}},
      {R"({"model_type":"gpt2","n_layer":-2})", {"n_layer", "positive"}},
      {R"({"model_type":"gpt2","n_embd":50,"n_head":4})", {"n_head"}},
      {R"({"model_type":"gpt2","n_inner":-1})", {"n_inner"}},
      {R"({"model_type":"gpt2","activation_function":"swiglu"})", {"swiglu"}},
      {R"({"model_type":"gpt2","reorder_and_upcast_attn":true})", {"reorder_and_upcast_attn"}},
      {R"({"model_type":"gpt2","architectures":"GPT2LMHeadModel"})", {"architectures"}},
      {R"({"model_type":"llama","num_attention_heads":6,"num_key_value_heads":4})", {"num_key_value_heads"}},
      {R"({"model_type":"llama","hidden_size":30,"num_attention_heads":4})", {"head_dim"}},
      {R"({"model_type":"llama","head_dim":7})", {"head_dim"}},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"dynamic","factor":2.0}})", {"dynamic"}},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":2.0}})", {"yarn"}},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"linear","factor":0}})", {"factor"}},
      {R"({"model_type":"llama","rope_scaling":"linear"})", {"rope_scaling"}},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":4}})",
       {"high_freq_factor"}},
      {R"({"model_type":"llama","hidden_act":"tanh"})", {"tanh"}},
      {R"({"model_type":"llama","rms_norm_eps":"small"})", {"rms_norm_eps"}},
      {R"({"model_type":"llama","eos_token_id":"2"})", {"eos_token_id"}},
      {R"({"model_type":"llama","eos_token_id":[2,"x"]})", {"eos_token_id"}},
      {R"({"model_type":"mistral","sliding_window":"4"})", {"sliding_window"}},
  };
  expect_refused(cases);
}

// Values that parse but would give a NaN model or ask for terabytes (issue 15): refused, naming the field.
TEST(ModelConfigErrors, ValuesThatWouldBreakTheModel) {
  const ConfigCase cases[] = {
      {R"({"model_type":"llama","vocab_size":300.5})", {"vocab_size", "integer", "300.5"}},
      {R"({"model_type":"llama","vocab_size":1000000000000})", {"vocab_size", "1000000000000", "corrupt"}},
      {R"({"model_type":"llama","vocab_size":1e12})", {"vocab_size"}},
      {R"({"model_type":"llama","vocab_size":18446744073709551615})", {"vocab_size"}},
      {R"({"model_type":"gpt2","n_layer":100000})", {"n_layer", "100000"}},
      {R"({"model_type":"llama","hidden_size":1e9,"num_attention_heads":1})", {"hidden_size"}},
      {R"({"model_type":"llama","max_position_embeddings":4.5})", {"max_position_embeddings", "integer"}},
      {R"({"model_type":"llama","rms_norm_eps":-1})", {"rms_norm_eps", "> 0"}},
      {R"({"model_type":"llama","rms_norm_eps":0})", {"rms_norm_eps", "> 0"}},
      {R"({"model_type":"gpt2","layer_norm_epsilon":-1e-5})", {"layer_norm_epsilon"}},
      {R"({"model_type":"llama","rope_theta":0})", {"rope_theta", "> 0"}},
      {R"({"model_type":"llama","rope_theta":-10000})", {"rope_theta"}},
      {R"({"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":-1}})", {"low_freq_factor"}},
      {R"({"model_type":"gpt2","attn_pdrop":1.5})", {"attn_pdrop"}},
      {R"({"model_type":"gpt2","initializer_range":-0.02})", {"initializer_range"}},
      {R"({"model_type":"llama","eos_token_id":-3})", {"eos_token_id"}},
      {R"({"model_type":"llama","num_labels":2.5})", {"num_labels"}},
      {R"({"model_type":"mistral","sliding_window":-4})", {"sliding_window"}},
  };
  expect_refused(cases);
  // Integral floats and -1 ids (old Llama configs) stay accepted.
  auto ok = ModelConfig::from_json(Json::parse(R"({"model_type":"llama","vocab_size":320.0,"pad_token_id":-1})"), "c");
  EXPECT_EQ(ok.vocab_size, 320);
  EXPECT_EQ(ok.pad_token_id, -1);
  // Special ids past the vocabulary (transformers' tiny test configs) are dropped with a warning, not
  // used: generation could never stop at such an EOS.
  auto odd = ModelConfig::from_json(
      Json::parse(R"({"model_type":"gpt2","vocab_size":128,"eos_token_id":[50256,3],"bos_token_id":50256})"), "c");
  EXPECT_EQ(odd.eos_token_ids, std::vector<int64_t>{3});
  EXPECT_EQ(odd.bos_token_id, -1);
  EXPECT_EQ(odd.to_json()["bos_token_id"], 50256);  // the file's values survive a round trip
}

// The parameter bytes are computed from config.json before anything is allocated; too many for the
// memory there is names the fields that make them.
TEST(ModelConfigErrors, ModelLargerThanMemoryNamesTheFields) {
  auto big_vocab = ModelConfig::from_json(
      Json::parse(R"({"model_type":"llama","vocab_size":16777216,"hidden_size":8192,"num_hidden_layers":2,)"
                  R"("num_attention_heads":64,"intermediate_size":1024})"),
      "m/config.json");
  expect_error([&] { big_vocab.check_fits_in_memory(uint64_t(64) << 30); },
               {"m/config.json", "vocab_size 16777216", "hidden_size 8192", "GB"}, "huge embedding");
  auto deep = ModelConfig::from_json(
      Json::parse(R"({"model_type":"gpt2","vocab_size":100,"n_embd":8192,"n_layer":1000,"n_head":64})"), "g/config.json");
  expect_error([&] { deep.check_fits_in_memory(uint64_t(64) << 30); }, {"g/config.json", "n_layer 1000", "n_embd 8192"},
               "many layers");
  auto small = preset_config("llama", "tiny");
  small.check_fits_in_memory(uint64_t(1) << 30);  // a tiny model fits in 1 GB
  EXPECT_THROW(small.check_fits_in_memory(1000), rlhf::Error);
}

TEST(ModelConfigErrors, Files) {
  test::TempDir dir;
  auto p = (dir / "config.json").string();
  expect_error([&] { ModelConfig::from_file(p); }, {p, "not found"}, "missing config.json");
  test::write_bytes(p, "{\"model_type\": \"llama\",");
  expect_error([&] { ModelConfig::from_file(p); }, {p, "invalid JSON"}, "truncated JSON");
  test::write_bytes(p, "{\"model_type\": \"llama\", \"rope_theta\": 1e999}");
  expect_error([&] { ModelConfig::from_file(p); }, {p}, "number overflow");
  test::write_bytes(p, "");
  expect_error([&] { ModelConfig::from_file(p); }, {p}, "empty file");
  test::write_bytes(p, "{\"model_type\": \"t5\"}");
  expect_error([&] { ModelConfig::from_file(p); }, {p, "t5"}, "unknown model_type");
  std::filesystem::remove(p);
  std::filesystem::create_directory(p);
  expect_error([&] { ModelConfig::from_file(p); }, {p, "directory"}, "config.json is a directory");
}

}  // namespace
}  // namespace rlhf
