// JSONL reading within bounds (issue 15): a text field longer than --max-text-chars, a line longer
// than the line limit, or JSON nested too deeply is refused with file:line and the field, before it
// can cost memory; --skip-bad-lines skips such lines. Also runs under ASan + UBSan.
#include <gtest/gtest.h>

#include <zlib.h>

#include <fstream>

#include "io/json.h"
#include "io/jsonl.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;
using test::TempDir;
using test::read_bytes;
using test::write_bytes;

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

// JSON arrays of records (issue 16: "expected a JSON object, got array" before), read element by
// element with each element's first line as its line.
TEST(JsonlFormats, AJsonArrayFileIsReadRecordByRecord) {
  LimitsGuard g;
  TempDir dir;
  auto p = dir / "d.json";
  // Pretty-printed, with brackets, commas, quotes and escapes inside strings and nested values.
  std::ofstream(p, std::ios::binary) << "\xEF\xBB\xBF\n[\n  {\"prompt\": \"a ] b, c\", \"completion\": \"q\\\"]\\\\\"},\n"
                                        "  {\"messages\": [{\"role\": \"user\", \"content\": \"[x], {y}\"}],\n   \"n\": [1, [2]]}\r\n,"
                                        "{\"k\": {}}\n]\n\n";
  auto recs = read_jsonl(p);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].value["prompt"], "a ] b, c");
  EXPECT_EQ(recs[0].value["completion"], "q\"]\\");
  EXPECT_EQ(recs[1].value["messages"][0]["content"], "[x], {y}");
  EXPECT_EQ(recs[1].value["n"][1][0], 2);
  EXPECT_EQ(recs[0].line, 3);
  EXPECT_EQ(recs[1].line, 4);
  EXPECT_EQ(recs[2].line, 6);
  // Errors name the element's line; bad elements are skipped with --skip-bad-lines.
  std::ofstream(p) << "[{\"a\": 1},\n 5,\n {\"b\": 2}]";
  expect_error([&] { read_jsonl(p); }, {"d.json:2", "expected a JSON object, got integer"}, "number element");
  int64_t skipped = 0;
  EXPECT_EQ(read_jsonl(p, JsonlReadOptions{true, 0}, &skipped).size(), 2u);
  EXPECT_EQ(skipped, 1);
  // A broken array is one line naming where, whatever --skip-bad-lines says.
  for (auto [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"[{\"a\": 1},\n{\"b\": 2}", "d.json:2: the array is not closed"},
           {"[{\"a\": 1},]", "a ',' is followed by ']'"},
           {"[{\"a\": 1},, {\"b\": 1}]", "expected a record, got ','"},
           {"[{\"a\": 1}]\n{\"b\": 2}", "d.json:2: text after the array's closing ']'"},
           {"[{\"a\": \"x]\"", "the array is not closed"},
           {"[]", "no usable records"}}) {
    std::ofstream(p) << text;
    expect_error([&] { read_jsonl(p, JsonlReadOptions{true, 0}); }, {"d.json", want}, text.c_str());
  }
  // The record limit holds per element, without holding the element.
  input_limits().max_text_chars = 1000;
  {
    std::ofstream f(p);
    f << "[{\"a\": \"" << std::string(size_t(input_limits().max_line_bytes()) + 10, 'x') << "\"}, {\"b\": 1}]";
  }
  expect_error([&] { read_jsonl(p); }, {"d.json:1", "the record has", "bytes"}, "long element");
}

// gzip-compressed JSONL and JSON arrays, recognised by content; a truncated one is one line.
TEST(JsonlFormats, GzipFilesAreDecompressed) {
  TempDir dir;
  auto write_gz = [](const fs::path& p, const std::string& text) {
    gzFile f = gzopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, text.data(), unsigned(text.size())), int(text.size()));
    gzclose(f);
  };
  std::string jsonl;
  for (int i = 0; i < 5000; ++i) jsonl += Json({{"i", i}, {"t", std::string(size_t(i % 50), 'z')}}).dump() + "\n";
  write_gz(dir / "d.jsonl.gz", jsonl);
  auto recs = read_jsonl(dir / "d.jsonl.gz");
  ASSERT_EQ(recs.size(), 5000u);
  EXPECT_EQ(recs[4999].value["i"], 4999);
  EXPECT_EQ(recs[4999].line, 5000);
  write_gz(dir / "a.json.gz", "[{\"i\": 0}, {\"i\": 1}]");
  EXPECT_EQ(read_jsonl(dir / "a.json.gz").size(), 2u);
  // Only plain JSON Lines may be copied byte for byte (the pipeline's rankings files).
  EXPECT_FALSE(is_plain_jsonl(dir / "d.jsonl.gz"));
  EXPECT_FALSE(is_plain_jsonl(dir / "a.json.gz"));
  write_bytes(dir / "p.jsonl", "\n  {\"a\": [1]}\n");
  EXPECT_TRUE(is_plain_jsonl(dir / "p.jsonl"));
  write_bytes(dir / "arr.json", "\xEF\xBB\xBF \n[{\"a\": 1}]");
  EXPECT_FALSE(is_plain_jsonl(dir / "arr.json"));
  // Truncated: the records before the cut are not silently taken as the whole file.
  std::string bytes = read_bytes(dir / "d.jsonl.gz");
  write_bytes(dir / "cut.jsonl.gz", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { read_jsonl(dir / "cut.jsonl.gz"); }, {"cut.jsonl.gz", "cannot read", "truncated .gz"}, "cut gz");
  bytes[bytes.size() / 2] ^= 0x55;
  write_bytes(dir / "bad.jsonl.gz", bytes);
  expect_error([&] { read_jsonl(dir / "bad.jsonl.gz"); }, {"bad.jsonl.gz", "cannot read"}, "corrupt gz");
}

}  // namespace
}  // namespace rlhf
