// Bounded fuzzing of the parsers that read untrusted files (issue 15): a few hundred seeded
// mutations each of a valid safetensors file, tokenizer.json and JSONL training data (SFT and
// preference records, through the data loaders). Every input must either work or fail with an
// rlhf::Error: no other exception, no crash, no case slower than a few seconds. This file also runs
// under ASan + UBSan (rlhf_parser_tests_asan), where an out-of-bounds read or UB aborts the test.
// Mutations are deterministic (fixed seeds), so a failure reproduces; the case index is printed.
// RLHF_FUZZ_CASES and RLHF_FUZZ_SEED run a longer or another campaign (see fuzz() below).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>

#include "data/preference_data.h"
#include "data/sft_data.h"
#include "io/json.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/hf_tokenizer.h"

namespace rlhf {
namespace {

using test::TempDir;

// ---- the mutator -------------------------------------------------------------------------------

const char* kNumbers[] = {"-1", "0", "1e999", "-1e999", "18446744073709551616", "9223372036854775807",
                          "4294967296", "2147483648", "300.5", "-0", "1e-400", "100000000", "65536", "3"};
const char* kStrings[] = {"", "\\u0000", "\\ud800", "\\\\", "\\\"", "\xc3\x28", "\xf0\x9f\x98\x80", "<|endoftext|>",
                          "F32", "BF16", "I64", "BPE", "ByteLevel", "Sequence", "assistant", "user"};

// One to three random edits of `s`: bit flips, syntax bytes, deletions, insertions, duplicated and
// truncated ranges, numbers and string contents replaced by edge cases.
std::string mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t(0) : size_t(rng() % n); };
  const int ops = 1 + int(rng() % 3);
  for (int k = 0; k < ops; ++k) {
    if (s.empty()) s = "{";
    switch (rng() % 9) {
      case 0: s[pick(s.size())] ^= char(1 << (rng() % 8)); break;
      case 1: {
        static const char syn[] = {'\0', '"', '{', '}', '[', ']', ',', ':', '\\', '\n', '\xff', '\x80', '-', '9', 'e', ' '};
        s[pick(s.size())] = syn[rng() % sizeof syn];
        break;
      }
      case 2: {
        size_t at = pick(s.size()), n = 1 + pick(16);
        s.erase(at, n);
        break;
      }
      case 3: {
        std::string bytes;
        for (size_t n = 1 + pick(8); n > 0; --n) bytes.push_back(char(rng() & 0xff));
        s.insert(pick(s.size() + 1), bytes);
        break;
      }
      case 4: {
        size_t at = pick(s.size()), n = std::min(s.size() - at, 1 + pick(64));
        s.insert(pick(s.size() + 1), s.substr(at, n));
        break;
      }
      case 5: s.resize(pick(s.size() + 1)); break;
      case 6: {  // a number replaced
        size_t at = s.find_first_of("0123456789", pick(s.size()));
        if (at == std::string::npos) break;
        size_t end = s.find_first_not_of("0123456789.eE+-", at);
        s.replace(at, (end == std::string::npos ? s.size() : end) - at, kNumbers[rng() % std::size(kNumbers)]);
        break;
      }
      case 7: {  // a string's contents replaced
        size_t q = s.find('"', pick(s.size()));
        if (q == std::string::npos) break;
        size_t e = s.find('"', q + 1);
        if (e == std::string::npos) break;
        s.replace(q + 1, e - q - 1, kStrings[rng() % std::size(kStrings)]);
        break;
      }
      case 8: {  // a value made very large: long strings and runs of brackets
        size_t at = pick(s.size() + 1);
        s.insert(at, rng() % 2 ? std::string(2000, 'A') : std::string(1 + pick(300), rng() % 2 ? '[' : '{'));
        break;
      }
    }
  }
  return s;
}

// A random value for structured mutations of JSON documents.
Json odd_value(std::mt19937_64& rng) {
  switch (rng() % 12) {
    case 0: return nullptr;
    case 1: return -1;
    case 2: return int64_t(1) << 40;
    case 3: return 1e308;
    case 4: return 300.5;
    case 5: return "";
    case 6: return std::string(3000, 'z');
    case 7: return Json::array();
    case 8: return Json::object();
    case 9: return true;
    case 10: return Json::array({1, 2, 3});
    default: return 100000000;
  }
}

// Replaces (or removes) one node of `j`, found by a random walk from the root.
void mutate_json(Json& j, std::mt19937_64& rng) {
  Json* node = &j;
  for (int depth = 0; depth < 8; ++depth) {
    if (!(node->is_object() || node->is_array()) || node->empty() || rng() % 4 == 0) break;
    size_t i = size_t(rng() % node->size());
    if (node->is_array()) {
      node = &(*node)[i];
    } else {
      auto it = node->begin();
      std::advance(it, long(i));
      if (rng() % 6 == 0) {  // drop this member
        node->erase(it);
        return;
      }
      node = &it.value();
    }
  }
  *node = odd_value(rng);
}

// Runs `body` on each of `n` inputs; anything but success or rlhf::Error fails the test.
void fuzz(int n, uint64_t seed, const std::string& base, const std::function<std::string(std::mt19937_64&)>& make,
          const std::function<void(const std::string&)>& body, const char* what) {
  try {
    body(base);  // the unmutated input works, or the mutations start from nothing
  } catch (const std::exception& e) {
    FAIL() << what << ": the base input fails: " << e.what();
  }
  // A longer campaign outside CI: RLHF_FUZZ_CASES=20000 RLHF_FUZZ_SEED=7 rlhf_parser_tests_asan --gtest_filter=Fuzz.*
  if (const char* c = std::getenv("RLHF_FUZZ_CASES")) n = std::max(1, std::atoi(c));
  if (const char* s = std::getenv("RLHF_FUZZ_SEED")) seed += uint64_t(std::atoll(s)) * 1000003u;
  std::mt19937_64 rng(seed);
  int accepted = 0, refused = 0;
  for (int i = 0; i < n; ++i) {
    std::string input = make(rng);
    auto t0 = std::chrono::steady_clock::now();
    try {
      body(input);
      ++accepted;
    } catch (const rlhf::Error&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << " case " << i << ": " << typeid(e).name() << ": " << e.what();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(s, 10.0) << what << " case " << i << " took " << s << " s";
  }
  std::printf("fuzz %s: %d inputs, %d accepted, %d refused with an rlhf::Error\n", what, n, accepted, refused);
  // The mutations must reach both outcomes, or the fuzzer tests nothing.
  EXPECT_GT(refused, n / 10) << what;
  EXPECT_GT(accepted, 0) << what;
}

// ---- safetensors ---------------------------------------------------------------------------------

TEST(Fuzz, Safetensors) {
  TempDir dir;
  auto base = dir / "base.safetensors";
  save_safetensors(base, {{"a.weight", torch::randn({4, 3})}, {"b", torch::arange(6, torch::kLong)},
                          {"c", torch::ones({2, 2}).to(torch::kBFloat16)}},
                   torch::ScalarType::Undefined, {{"note", "fuzz"}});
  const std::string bytes = test::read_bytes(base);
  const size_t header_end = 8 + size_t(uint8_t(bytes[0])) + 256 * size_t(uint8_t(bytes[1]));
  auto p = dir / "m.safetensors";
  fuzz(
      400, 15, bytes,
      [&](std::mt19937_64& rng) {
        if (rng() % 3 == 0) return mutate(bytes, rng);
        // Most edits go to the length prefix and the JSON header, where the parser's decisions are.
        std::string s = bytes;
        std::string h = mutate(s.substr(8, header_end - 8), rng);
        uint64_t n = rng() % 8 == 0 ? rng() : h.size();
        std::string len(8, '\0');
        for (int i = 0; i < 8; ++i) len[size_t(i)] = char((n >> (8 * i)) & 0xff);
        return len + h + s.substr(std::min(header_end, s.size()));
      },
      [&](const std::string& in) {
        test::write_bytes(p, in);
        SafetensorsFile f(p);
        for (const auto& t : f.tensors()) f.load(t.name, torch::ScalarType::Undefined);
      },
      "safetensors");
}

// ---- tokenizer.json ------------------------------------------------------------------------------

Json small_tokenizer() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_utf8()[b]] = b;
  Json merges = Json::array({"h e", "l l", "he ll", "hell o", "\u0120 w", "o r"});
  int next = 256;
  for (const char* t : {"he", "ll", "hell", "hello", "\u0120w", "or"}) vocab[t] = next++;
  return {{"version", "1.0"},
          {"added_tokens", {{{"id", 300}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false}},
                            {{"id", 301}, {"content", "<|bos|>"}, {"special", true}, {"normalized", false}},
                            {{"id", 302}, {"content", "<|im_start|>"}, {"special", true}, {"normalized", false}},
                            {{"id", 303}, {"content", "<|im_end|>"}, {"special", true}, {"normalized", false}}}},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "TemplateProcessing"},
                              {"single", {{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
                                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                              {"special_tokens", {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {301}}, {"tokens", {"<|bos|>"}}}}}}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(Fuzz, TokenizerJson) {
  const Json base = small_tokenizer();
  const std::string text = base.dump();
  fuzz(
      300, 16, text,
      [&](std::mt19937_64& rng) {
        if (rng() % 2) return mutate(text, rng);
        Json j = base;
        for (int k = 1 + int(rng() % 2); k > 0; --k) mutate_json(j, rng);
        return j.dump();
      },
      [&](const std::string& in) {
        HfTokenizer tok(in, "fuzz/tokenizer.json", nullptr);
        auto ids = tok.encode("hello world <|endoftext|> \xc3\xa9t\xc3\xa9 12", true);
        tok.decode(ids, true);
        auto s = tok.stream_decoder();
        for (auto id : ids) s.push(id);
        s.finish();
      },
      "tokenizer.json");
}

// ---- JSONL data through the SFT and preference loaders --------------------------------------------

TEST(Fuzz, JsonlData) {
  TempDir dir;
  Json tc = {{"bos_token", "<|bos|>"}, {"eos_token", "<|endoftext|>"}};
  tc["chat_template"] = ChatTemplate::named("chatml", "<|bos|>", "<|endoftext|>").jinja();
  HfTokenizer tok(small_tokenizer(), "fuzz/tokenizer.json", tc);
  const std::string sft =
      Json({{"prompt", "hello"}, {"completion", " world"}}).dump() + "\n" + Json({{"text", "hello hello"}}).dump() + "\n" +
      Json({{"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hello"}},
                          {{"role", "assistant"}, {"content", "world"}}}}}).dump() + "\n";
  const std::string pref =
      Json({{"prompt", "hello"}, {"chosen", " world"}, {"rejected", " or"}, {"margin", 1.5}}).dump() + "\n" +
      Json({{"prompt", "he"}, {"responses", {" a", " b", " c"}}, {"ranking", {2, {0, 1}}}}).dump() + "\n" +
      Json({{"prompt", {{{"role", "user"}, {"content", "hi"}}}}, {"chosen", {{{"role", "assistant"}, {"content", "yes"}}}},
            {"rejected", {{{"role", "assistant"}, {"content", "no"}}}}, {"p_chosen", 0.7}}).dump() + "\n" +
      Json({{"prompt", "x"}, {"responses", {" a", " b"}}, {"ranks", {1, 2}}}).dump() + "\n";
  auto p = dir / "d.jsonl";
  // Mutations of a whole file, or one record's field replaced by an odd value.
  auto make = [](const std::string& base) {
    return [&base](std::mt19937_64& rng) {
      if (rng() % 2) return mutate(base, rng);
      std::string out;
      size_t start = 0, line = 0, target = size_t(rng() % 3);
      while (start < base.size()) {
        size_t nl = base.find('\n', start);
        std::string l = base.substr(start, nl - start);
        if (line++ == target) {
          Json j = Json::parse(l);
          mutate_json(j, rng);
          l = j.dump();
        }
        out += l + "\n";
        start = nl + 1;
      }
      return out;
    };
  };
  fuzz(
      250, 17, sft, make(sft),
      [&](const std::string& in) {
        test::write_bytes(p, in);
        SftDataOptions o;
        o.max_length = 16;
        o.skip_bad_lines = in.size() % 2;  // half the files go on past their bad lines
        load_sft_data(p, tok, o);
      },
      "sft jsonl");
  fuzz(
      250, 18, pref, make(pref),
      [&](const std::string& in) {
        test::write_bytes(p, in);
        PreferenceDataOptions o;
        o.max_length = 24;
        o.max_prompt_length = 8;
        o.allow_unpaired = true;
        o.skip_bad_lines = in.size() % 2;
        load_preference_data(p, tok, o);
      },
      "preference jsonl");
}

}  // namespace
}  // namespace rlhf
