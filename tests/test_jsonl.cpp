// JSONL reading within bounds (issue 15): a text field longer than --max-text-chars, a line longer
// than the line limit, or JSON nested too deeply is refused with file:line and the field, before it
// can cost memory; --skip-bad-lines skips such lines. Also runs under ASan + UBSan.
#include <gtest/gtest.h>

#include <fstream>

#include "io/json.h"
#include "io/jsonl.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;
using test::TempDir;

// Restores the process-wide limits a test changes.
struct LimitsGuard {
  InputLimits saved = input_limits();
  ~LimitsGuard() { input_limits() = saved; }
};

TEST(JsonlLimits, LongTextFieldIsRefusedNamingTheField) {
  LimitsGuard g;
  TempDir dir;
  input_limits().max_text_chars = 1000;
  auto p = dir / "d.jsonl";
  std::ofstream(p) << Json({{"prompt", "hi"}, {"completion", "ok"}}).dump() << "\n"
                   << Json({{"messages", {{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", std::string(5000, 'x')}}}}}).dump()
                   << "\n";
  expect_error([&] { read_jsonl(p); }, {"d.jsonl:2", "\"messages[1].content\"", "5000 characters", "--max-text-chars 1000"},
               "long field");
  // Characters, not bytes: 1000 three-byte characters pass, 1001 do not.
  std::string euro;
  for (int i = 0; i < 1000; ++i) euro += "\u20ac";
  std::ofstream(p) << Json({{"text", euro}}).dump() << "\n";
  EXPECT_EQ(read_jsonl(p).size(), 1u);
  std::ofstream(p) << Json({{"text", euro + "\u20ac"}}).dump() << "\n";
  expect_error([&] { read_jsonl(p); }, {"d.jsonl:1", "\"text\"", "1001 characters"}, "1001 characters");
  // Skipped and counted with --skip-bad-lines; 0 lifts the limit.
  std::ofstream(p) << Json({{"text", std::string(2000, 'y')}}).dump() << "\n" << Json({{"text", "short"}}).dump() << "\n";
  int64_t skipped = 0;
  EXPECT_EQ(read_jsonl(p, JsonlReadOptions{true, 0}, &skipped).size(), 1u);
  EXPECT_EQ(skipped, 1);
  input_limits().max_text_chars = 0;
  EXPECT_EQ(read_jsonl(p).size(), 2u);
}

TEST(JsonlLimits, OverlongLineIsRefusedWithoutHoldingIt) {
  LimitsGuard g;
  TempDir dir;
  input_limits().max_text_chars = 1000;
  const int64_t cap = input_limits().max_line_bytes();
  EXPECT_EQ(cap, int64_t(16) << 20);  // at least 16 MiB
  auto p = dir / "long.jsonl";
  {
    std::ofstream f(p);
    f << "{\"a\": [";
    for (int64_t n = 0; n < cap / 8 + 10; ++n) f << "\"xxxxx\",";
    f << "\"x\"]}\n" << Json({{"text", "after"}}).dump() << "\n";
  }
  expect_error([&] { read_jsonl(p); }, {"long.jsonl:1", "bytes", "--max-text-chars"}, "long line");
  int64_t skipped = 0;
  auto recs = read_jsonl(p, JsonlReadOptions{true, 0}, &skipped);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].line, 2);
  EXPECT_EQ(recs[0].value["text"], "after");
  EXPECT_EQ(skipped, 1);
  input_limits().max_text_chars = 10000000;
  EXPECT_EQ(input_limits().max_line_bytes(), 160000000);
}

TEST(JsonlLimits, DeepNestingIsRefused) {
  TempDir dir;
  auto p = dir / "deep.jsonl";
  std::ofstream(p) << "{\"a\": " << std::string(1000, '[') << std::string(1000, ']') << "}\n";
  expect_error([&] { read_jsonl(p); }, {"deep.jsonl:1", "nested 1001 levels"}, "deep nesting");
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[", "b": [{"c": "\"]]"}]})"), 3);  // brackets in strings do not count
  expect_error([&] { parse_json(std::string(200, '[') + std::string(200, ']'), "x.json"); }, {"x.json", "nested 200"},
               "deep JSON file");
}

TEST(JsonlLimits, LinesAcrossReadBuffersAndCarriageReturns) {
  TempDir dir;
  auto p = dir / "crlf.jsonl";
  {
    std::ofstream f(p, std::ios::binary);
    for (int i = 0; i < 3000; ++i) f << Json({{"i", i}, {"pad", std::string(size_t(i % 97), 'p')}}).dump() << "\r\n";
    f << Json({{"i", 3000}}).dump();  // no final newline
  }
  auto recs = read_jsonl(p);
  ASSERT_EQ(recs.size(), 3001u);
  for (int i = 0; i <= 3000; ++i) ASSERT_EQ(recs[size_t(i)].value["i"], i);
  EXPECT_EQ(recs.back().line, 3001);
}

}  // namespace
}  // namespace rlhf
