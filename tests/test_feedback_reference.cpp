// `rlhf judge` and `rlhf cai revise` (src/feedback/) against an independent Python reference:
// tests/ref/feedback_fixtures.py builds a tiny random Llama with a byte-level BPE and a ChatML template in
// transformers, writes a constitution, pairs and prompts, and computes with transformers what the CLI must
// give: the judge's option probabilities in both orders (chat mode with single- and multi-token options,
// and --no-chat) within 1e-5, and the greedy SL-CAI transcripts (answer, critiques, revisions) exactly.
// Fixture directory: $RLHF_FEEDBACK_FIXTURE_DIR, else the one CTest's feedback_fixtures_generate writes
// (compiled in when the venv existed at configure time); without either, or without its expected.json,
// the tests skip.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace rlhf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

const char* feedback_fixture_dir() {
  const char* d = std::getenv("RLHF_FEEDBACK_FIXTURE_DIR");
  if (d && *d) return d;
#ifdef RLHF_FEEDBACK_FIXTURE_DIR
  return RLHF_FEEDBACK_FIXTURE_DIR;
#else
  return nullptr;
#endif
}

#define REQUIRE_FEEDBACK_FIXTURES()                                                                          \
  const char* fixture_root = feedback_fixture_dir();                                                         \
  if (!fixture_root) GTEST_SKIP() << "RLHF_FEEDBACK_FIXTURE_DIR not defined (no project venv at configure time)"; \
  const fs::path dir(fixture_root);                                                                          \
  if (!fs::exists(dir / "expected.json"))                                                                    \
    GTEST_SKIP() << dir << ": no expected.json; run tests/ref/feedback_fixtures.py --out " << dir;          \
  const json expected = json::parse(test::read_bytes(dir / "expected.json"))

std::vector<json> read_jsonl_file(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string cli_args(const json& args) {
  std::string s;
  for (auto& a : args) s += " " + test::shell_quote(a.get<std::string>());
  return s;
}

// The principle --principle names (the value after it in the run's arguments).
std::string principle_of(const json& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--principle") return args[i + 1].get<std::string>();
  return "";
}

TEST(FeedbackReference, JudgeProbabilitiesMatchTransformers) {
  REQUIRE_FEEDBACK_FIXTURES();
  const fs::path model = dir / expected.at("model").get<std::string>();
  const auto& runs = expected.at("judge_runs");
  ASSERT_GE(runs.size(), 3u);
  TempDir tmp;
  for (const auto& run : runs) {
    const std::string name = run.at("name").get<std::string>();
    SCOPED_TRACE("judge run " + name);
    const fs::path pairs = dir / run.at("pairs").get<std::string>(), out = tmp / (name + ".jsonl");
    const std::string cmd = test::rlhf_bin() + " judge --model " + test::shell_quote(model.string()) +
                            " --constitution " + test::shell_quote((dir / run.at("constitution").get<std::string>()).string()) +
                            " --pairs " + test::shell_quote(pairs.string()) + " --out " + test::shell_quote(out.string()) +
                            cli_args(run.at("args"));
    auto r = test::run_command(cmd);
    ASSERT_EQ(r.exit_code, 0) << cmd << "\nstderr: " << r.err;
    const auto lines = read_jsonl_file(out), inputs = read_jsonl_file(pairs);
    const auto& want = run.at("expected");
    ASSERT_EQ(lines.size(), want.size()) << out;
    ASSERT_EQ(inputs.size(), want.size()) << pairs;
    const std::string principle = principle_of(run.at("args"));
    for (size_t i = 0; i < want.size(); ++i) {
      SCOPED_TRACE("pair " + std::to_string(i + 1));
      const json& j = lines[i].at("judge");
      ASSERT_EQ(j.at("p_ab").size(), 1u);
      ASSERT_EQ(j.at("p_ba").size(), 1u);
      EXPECT_NEAR(j.at("p_ab")[0].get<double>(), want[i].at("p_ab").get<double>(), 1e-5);
      EXPECT_NEAR(j.at("p_ba")[0].get<double>(), want[i].at("p_ba").get<double>(), 1e-5);
      const double p_first = want[i].at("p_first").get<double>();
      EXPECT_NEAR(j.at("p_first").get<double>(), p_first, 1e-5);
      EXPECT_EQ(j.at("principles"), json::array({principle}));
      EXPECT_EQ(lines[i].at("prompt"), inputs[i].at("prompt"));  // output lines are in input order
      // chosen / rejected are the judge's pick: the input's order when p_first >= 0.5
      if (std::fabs(p_first - 0.5) > 1e-4) {
        const bool first = p_first >= 0.5;
        EXPECT_EQ(lines[i].at("chosen"), inputs[i].at(first ? "chosen" : "rejected"));
        EXPECT_EQ(lines[i].at("rejected"), inputs[i].at(first ? "rejected" : "chosen"));
        EXPECT_EQ(lines[i].at("agrees_with_input").get<bool>(), first);
      }
    }
  }
}

TEST(FeedbackReference, ReviseTranscriptsMatchTransformersGreedy) {
  REQUIRE_FEEDBACK_FIXTURES();
  const fs::path model = dir / expected.at("model").get<std::string>();
  const json& rv = expected.at("revise");
  TempDir tmp;
  const fs::path out = tmp / "revise";
  const std::string cmd = test::rlhf_bin() + " cai revise --model " + test::shell_quote(model.string()) +
                          " --constitution " + test::shell_quote((dir / rv.at("constitution").get<std::string>()).string()) +
                          " --prompts " + test::shell_quote((dir / rv.at("prompts").get<std::string>()).string()) +
                          " --out " + test::shell_quote(out.string()) + cli_args(rv.at("args"));
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\nstderr: " << r.err;
  const auto lines = read_jsonl_file(out / "transcripts.jsonl");
  const auto& want = rv.at("expected");
  ASSERT_EQ(lines.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i + 1));
    EXPECT_EQ(lines[i].at("original").get<std::string>(), want[i].at("original").get<std::string>());
    const auto& got_rounds = lines[i].at("rounds");
    const auto& want_rounds = want[i].at("rounds");
    ASSERT_EQ(got_rounds.size(), want_rounds.size());
    for (size_t k = 0; k < want_rounds.size(); ++k) {
      SCOPED_TRACE("round " + std::to_string(k + 1));
      EXPECT_EQ(got_rounds[k].at("principle").get<std::string>(), want_rounds[k].at("principle").get<std::string>());
      EXPECT_EQ(got_rounds[k].at("critique").get<std::string>(), want_rounds[k].at("critique").get<std::string>());
      EXPECT_EQ(got_rounds[k].at("revision").get<std::string>(), want_rounds[k].at("revision").get<std::string>());
    }
    EXPECT_EQ(lines[i].at("final").get<std::string>(), want[i].at("final").get<std::string>());
  }
}

}  // namespace
}  // namespace rlhf
