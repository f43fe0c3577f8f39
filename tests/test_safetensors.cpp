// Safetensors reading and writing: round trips of every dtype, the sharded layout transformers uses,
// and every way a file can be broken. A broken file must be an rlhf::Error naming the file (and the
// tensor where there is one), never a crash or an out-of-bounds read: this file also runs under
// AddressSanitizer + UBSan (rlhf_parser_tests_asan).
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstring>

#include "io/json.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace rlhf {
namespace {

using test::expect_error;
using test::TempDir;

// A safetensors file from a header text and data bytes; the length prefix is the header's size
// unless `len` overrides it.
std::string st_bytes(const std::string& header, const std::string& data, std::optional<uint64_t> len = {}) {
  uint64_t n = len ? *len : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Writes a file with one tensor entry `entry` (a JSON object text) named "w", and `data`.
std::filesystem::path one_tensor(const TempDir& dir, const std::string& entry, const std::string& data,
                                 const std::string& name = "bad.safetensors") {
  auto p = dir / name;
  test::write_bytes(p, st_bytes("{\"w\":" + entry + "}", data));
  return p;
}

// A valid file: "a" F32 [2,3] then "b" BF16 [4].
std::string valid_bytes() {
  std::string header = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                       R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})";
  return st_bytes(header, std::string(32, '\x01'));
}

// ---- valid files -------------------------------------------------------------------------------------------

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir dir;
  NamedTensors ts = {
      {"f64", torch::randn({3}, torch::kDouble)},
      {"f32", torch::randn({2, 3})},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 3, torch::kLong)},
      {"i32", torch::arange(7, torch::kInt)},
      {"i16", torch::arange(4, torch::kShort)},
      {"i8", torch::arange(-4, 4, torch::kChar)},
      {"u8", torch::arange(250, 256).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::arange(12, torch::kFloat).view({3, 4}).t()},  // non-contiguous input
  };
  auto path = dir / "all.safetensors";
  save_safetensors(path, ts, torch::ScalarType::Undefined, {{"note", "hi"}});
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), ts.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "hi");
  for (const auto& [name, t] : ts) {
    const StTensorInfo* info = f.find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->dtype, st_dtype_name(t.scalar_type())) << name;
    EXPECT_EQ(info->shape, t.sizes().vec()) << name;
    auto back = f.load(name, torch::ScalarType::Undefined);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back, t.contiguous())) << name;
  }
  // The layout the format prescribes: header padded to 8 bytes, tensors back to back.
  std::string bytes = test::read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  Json h = Json::parse(bytes.substr(8, n));
  uint64_t total = 0;
  for (const auto& [name, t] : ts) total += uint64_t(t.numel()) * t.element_size();
  EXPECT_EQ(bytes.size(), 8 + n + total);
  EXPECT_TRUE(h.contains("__metadata__"));
}

TEST(Safetensors, SaveConvertsFloatsOnly) {
  TempDir dir;
  auto w = torch::randn({4, 3});
  save_safetensors(dir / "m.safetensors", {{"w", w}, {"ids", torch::arange(3, torch::kLong)}}, torch::kBFloat16);
  SafetensorsFile f(dir / "m.safetensors");
  EXPECT_EQ(f.find("w")->dtype, "BF16");
  EXPECT_EQ(f.find("ids")->dtype, "I64");
  EXPECT_TRUE(torch::equal(f.load("w"), w.to(torch::kBFloat16).to(torch::kFloat)));
  EXPECT_EQ(f.load("w").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f.load("ids", torch::kLong), torch::arange(3, torch::kLong)));
  expect_error([&] { f.load("ids", torch::kFloat); }, {"m.safetensors", "\"ids\"", "I64"}, "int as float");
  expect_error([&] { f.load("nope"); }, {"m.safetensors", "\"nope\""}, "unknown tensor");
}

TEST(Safetensors, ZeroSizedTensorsAndEmptyHeader) {
  TempDir dir;
  auto p = dir / "z.safetensors";
  test::write_bytes(p, st_bytes(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                std::string(4, '\0')));
  SafetensorsFile f(p);
  EXPECT_EQ(f.load("e").numel(), 0);
  EXPECT_EQ(f.load("w").numel(), 1);
  test::write_bytes(p, st_bytes("{}", ""));
  EXPECT_TRUE(SafetensorsFile(p).tensors().empty());
  test::write_bytes(p, st_bytes(R"({"__metadata__":{"format":"pt"}}  )", ""));  // trailing padding spaces
  EXPECT_EQ(SafetensorsFile(p).metadata().at("format"), "pt");
}

// ---- broken files: the container -------------------------------------------------------------------------

TEST(SafetensorsErrors, TruncatedAtEveryByte) {
  TempDir dir;
  const std::string good = valid_bytes();
  auto p = dir / "cut.safetensors";
  test::write_bytes(p, good);
  EXPECT_NO_THROW(SafetensorsFile{p});
  // Every proper prefix: inside the length prefix, inside the header, inside each tensor's data.
  for (size_t cut = 0; cut < good.size(); ++cut) {
    test::write_bytes(p, good.substr(0, cut));
    expect_error([&] { SafetensorsFile f(p); }, {p.string()}, ("cut at " + std::to_string(cut)).c_str());
  }
  test::write_bytes(p, good.substr(0, good.size() - 3));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "\"b\"", "truncated"}, "cut inside data");
  test::write_bytes(p, good.substr(0, 5));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "truncated"}, "cut inside length");
}

TEST(SafetensorsErrors, HeaderLength) {
  TempDir dir;
  auto p = dir / "len.safetensors";
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  test::write_bytes(p, st_bytes(header, "abcd", header.size() + 5));  // longer than the file
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "past the end"}, "length > file");
  test::write_bytes(p, st_bytes(header, "abcd", ~uint64_t(0)));
  expect_error([&] { SafetensorsFile f(p); }, {p.string()}, "length 2^64-1");
  test::write_bytes(p, st_bytes(header, "abcd", uint64_t(1) << 63));
  expect_error([&] { SafetensorsFile f(p); }, {p.string()}, "length 2^63");
  test::write_bytes(p, st_bytes(header, "abcd", 0));
  expect_error([&] { SafetensorsFile f(p); }, {p.string()}, "length 0");
  test::write_bytes(p, st_bytes(header, "abcd", header.size() - 1));  // cuts the JSON short
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "JSON"}, "length too small");
}

TEST(SafetensorsErrors, HeaderNotJsonOrNotObject) {
  TempDir dir;
  auto p = dir / "h.safetensors";
  const std::pair<const char*, const char*> cases[] = {
      {"{\"a\": ", "unterminated"},
      {"{abc}", "not JSON"},
      {"[1, 2, 3]", "array"},
      {"\"text\"", "string"},
      {"12345678", "number"},
      {"  {}", "leading space"},
      {"{\"a\":1e999}", "number overflow"},          // nlohmann throws out_of_range, not parse_error
      {"{\"a\":\"\xff\xfe\"}", "invalid UTF-8"},
      {"{\"a\":1}", "entry not an object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "missing brace"},
  };
  for (auto [header, what] : cases) {
    test::write_bytes(p, st_bytes(header, "abcd"));
    expect_error([&] { SafetensorsFile f(p); }, {p.string()}, what);
  }
  // Deep nesting must not blow the stack (parse and destruction).
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  test::write_bytes(p, st_bytes(deep, ""));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "\"a\""}, "deep nesting");
}

TEST(SafetensorsErrors, Metadata) {
  TempDir dir;
  auto p = dir / "m.safetensors";
  test::write_bytes(p, st_bytes(R"({"__metadata__":{"format":1}})", ""));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "format"}, "metadata value not a string");
  test::write_bytes(p, st_bytes(R"({"__metadata__":[1]})", ""));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "__metadata__"}, "metadata not an object");
}

TEST(SafetensorsErrors, NotARegularFileOrMissing) {
  TempDir dir;
  expect_error([&] { SafetensorsFile f(dir / "none.safetensors"); }, {"none.safetensors", "cannot open"}, "missing");
  std::filesystem::create_directory(dir / "d.safetensors");
  expect_error([&] { SafetensorsFile f(dir / "d.safetensors"); }, {"d.safetensors", "regular file"}, "directory");
}

// ---- broken files: one tensor entry ---------------------------------------------------------------------------

TEST(SafetensorsErrors, TensorEntries) {
  TempDir dir;
  const std::string four(4, '\0'), eight(8, '\0');
  struct Case {
    const char* entry;
    std::string data;
    const char* expect;  // a word the message must contain
  } cases[] = {
      {R"({"shape":[1],"data_offsets":[0,4]})", four, "dtype"},
      {R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})", four, "dtype"},
      {R"({"dtype":"F32","data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":1,"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[1]})", four, "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", four, "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":{"a":0}})", four, "data_offsets"},
      {R"({"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]})", four, "F8_E4M3"},
      {R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", four, "f32"},
      {R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":["1"],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[null],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[1e3],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]})", four, "overflow"},
      {R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]})", four, "shape"},
      {R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]})", four, "overflows"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,8]})", four, "truncated"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})", four, "truncated"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", four, "begin > end"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", four, "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})", four, "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})", four, "data_offsets"},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", four, "need 8"},
      {R"({"dtype":"BF16","shape":[1],"data_offsets":[0,4]})", four, "need 2"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})", eight, "hole"},     // bytes 0..4 unused
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})", eight, "not described"},  // trailing bytes
  };
  for (const auto& c : cases) {
    auto p = one_tensor(dir, c.entry, c.data);
    expect_error([&] { SafetensorsFile f(p); }, {p.string(), c.expect}, c.entry);
  }
  // The tensor is named wherever the problem is in its own entry.
  for (const auto& c : cases) {
    if (std::string(c.expect) == "hole" || std::string(c.expect) == "not described") continue;
    auto p = one_tensor(dir, c.entry, c.data);
    expect_error([&] { SafetensorsFile f(p); }, {"tensor \"w\""}, c.entry);
  }
}

TEST(SafetensorsErrors, OverlapsAndHoles) {
  TempDir dir;
  auto p = dir / "o.safetensors";
  const std::pair<const char*, const char*> cases[] = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlaps"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       "hole"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       "overlaps"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
       "overlaps"},
      // JSON with a repeated name keeps one entry; the other's bytes are then a hole.
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "hole"},
  };
  for (auto [header, what] : cases) {
    test::write_bytes(p, st_bytes(header, std::string(12, '\0')));
    expect_error([&] { SafetensorsFile f(p); }, {p.string(), what}, header);
  }
}

// A failed open must not leak its descriptor or mapping (the constructor throws, so no destructor runs).
int count_open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

TEST(SafetensorsErrors, NonFiniteTensorsAreNamed) {
  auto t = torch::ones({3, 2});
  require_finite(t, "f.safetensors", "w", "fix");  // finite: fine
  t[1][0] = std::numeric_limits<float>::quiet_NaN();
  t[2][1] = std::numeric_limits<float>::infinity();
  expect_error([&] { require_finite(t, "f.safetensors", "w", "the fix"); },
               {"f.safetensors", "\"w\"", "2 NaN/Inf values", "the fix"}, "NaN and Inf");
  expect_error([&] { require_finite_to_save({{"a", torch::ones({2})}, {"b", t}}, "out/dir"); },
               {"out/dir", "\"b\"", "refusing to write"}, "save guard");
  require_finite(torch::full({2}, 7, torch::kLong), "f", "ids", "");  // integers are never checked
}

TEST(SafetensorsErrors, FailedOpenLeaksNothing) {
  TempDir dir;
  auto p = dir / "bad.safetensors";
  test::write_bytes(p, valid_bytes().substr(0, 30));
  const int before = count_open_fds();
  for (int i = 0; i < 50; ++i) EXPECT_THROW(SafetensorsFile{p}, rlhf::Error);
  EXPECT_EQ(count_open_fds(), before);
}

// ---- directories and shards -----------------------------------------------------------------------------------

NamedTensors some_tensors() {
  NamedTensors ts;
  for (int i = 0; i < 6; ++i) ts.emplace_back("layer." + std::to_string(i) + ".weight", torch::full({4, 4}, float(i)));
  return ts;
}

TEST(SafetensorsReader, SingleFileDirectoryAndShards) {
  TempDir dir;
  auto ts = some_tensors();
  save_safetensors_dir(dir.path(), ts, torch::kFloat);
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  SafetensorsReader one(dir.path());
  EXPECT_EQ(one.names().size(), ts.size());
  SafetensorsReader file(dir / "model.safetensors");
  EXPECT_TRUE(torch::equal(file.load("layer.3.weight"), ts[3].second));

  // 64 bytes a tensor, at most 130 a shard -> 3 shards of 2, named as transformers names them.
  save_safetensors_dir(dir.path(), ts, torch::kFloat, "model", 130);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  for (const char* s : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(dir / s)) << s;
  Json index = read_json_file(dir / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), 6u * 64u);
  EXPECT_EQ(index["weight_map"]["layer.5.weight"], "model-00003-of-00003.safetensors");
  SafetensorsReader sharded(dir.path());
  ASSERT_EQ(sharded.names().size(), ts.size());
  for (const auto& [n, t] : ts) EXPECT_TRUE(torch::equal(sharded.load(n), t)) << n;
  EXPECT_EQ(sharded.info("layer.0.weight").shape, (std::vector<int64_t>{4, 4}));
  expect_error([&] { sharded.load("missing"); }, {dir.path().string(), "\"missing\""}, "missing tensor");

  // Saving small again replaces the index by a single file.
  save_safetensors_dir(dir.path(), ts, torch::kFloat);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  EXPECT_EQ(SafetensorsReader(dir.path()).names().size(), ts.size());
}

// Writes an index whose weight_map is `wm` (a JSON object text) next to two valid shards a/b.
void write_index(const TempDir& dir, const std::string& wm) {
  save_safetensors(dir / "a.safetensors", {{"x", torch::ones({2})}});
  save_safetensors(dir / "b.safetensors", {{"y", torch::ones({2})}});
  test::write_bytes(dir / "model.safetensors.index.json", "{\"metadata\":{},\"weight_map\":" + wm + "}");
}

TEST(SafetensorsReaderErrors, Shards) {
  {
    TempDir dir;
    write_index(dir, R"({"x":"a.safetensors","y":"b.safetensors"})");
    SafetensorsReader ok(dir.path());
    EXPECT_EQ(ok.names().size(), 2u);
  }
  {
    TempDir dir;
    write_index(dir, R"({"x":"a.safetensors","y":"c.safetensors"})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {(dir / "c.safetensors").string()}, "missing shard");
  }
  {
    TempDir dir;
    write_index(dir, R"({"x":"a.safetensors","y":"../b.safetensors"})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "../b.safetensors"},
                 "shard outside the directory");
  }
  {
    TempDir dir;
    write_index(dir, R"({"x":"/etc/passwd"})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "/etc/passwd"},
                 "absolute shard path");
  }
  {
    TempDir dir;
    write_index(dir, R"({"x":"..","y":"b.safetensors"})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json"}, "shard ..");
  }
  {
    TempDir dir;  // the same tensor in two shards
    save_safetensors(dir / "a.safetensors", {{"x", torch::ones({2})}});
    save_safetensors(dir / "b.safetensors", {{"x", torch::zeros({2})}});
    test::write_bytes(dir / "model.safetensors.index.json",
                      R"({"weight_map":{"x":"a.safetensors","z":"b.safetensors"}})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"a.safetensors", "b.safetensors", "\"x\""},
                 "duplicate across shards");
  }
  {
    TempDir dir;
    write_index(dir, R"({"x":3})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "\"x\""},
                 "weight_map value not a string");
  }
  {
    TempDir dir;
    write_index(dir, R"([1,2])");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "weight_map"},
                 "weight_map not an object");
  }
  {
    TempDir dir;
    test::write_bytes(dir / "model.safetensors.index.json", "{\"weight_map\": {");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json"}, "index not JSON");
  }
  {
    TempDir dir;
    test::write_bytes(dir / "model.safetensors.index.json", "[]");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "weight_map"},
                 "index not an object");
  }
  {
    TempDir dir;  // the index lists a tensor that no shard holds
    write_index(dir, R"({"x":"a.safetensors","y":"b.safetensors","z":"b.safetensors"})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "\"z\"", "does not hold"},
                 "listed tensor missing");
  }
  {
    TempDir dir;  // a shard holds a tensor the index leaves out
    write_index(dir, R"({"x":"a.safetensors"})");
    save_safetensors(dir / "a.safetensors", {{"x", torch::ones({2})}, {"w", torch::ones({2})}});
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"model.safetensors.index.json", "\"w\"", "does not list"},
                 "unlisted tensor");
  }
  {
    TempDir dir;  // the index puts a tensor in the wrong shard
    save_safetensors(dir / "a.safetensors", {{"x", torch::ones({2})}});
    save_safetensors(dir / "b.safetensors", {{"y", torch::ones({2})}, {"x2", torch::ones({2})}});
    test::write_bytes(dir / "model.safetensors.index.json",
                      R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors","x2":"a.safetensors"}})");
    expect_error([&] { SafetensorsReader r(dir.path()); }, {"\"x2\"", "a.safetensors", "b.safetensors"}, "wrong shard");
  }
  {
    TempDir dir;  // a shard that is itself broken is named
    write_index(dir, R"({"x":"a.safetensors","y":"b.safetensors"})");
    test::write_bytes(dir / "b.safetensors", valid_bytes().substr(0, 20));
    expect_error([&] { SafetensorsReader r(dir.path()); }, {(dir / "b.safetensors").string()}, "broken shard");
  }
}

TEST(SafetensorsReaderErrors, MissingFiles) {
  TempDir dir;
  expect_error([&] { SafetensorsReader r(dir.path()); }, {dir.path().string(), "model.safetensors"}, "empty dir");
  test::write_bytes(dir / "pytorch_model.bin", "x");
  expect_error([&] { SafetensorsReader r(dir.path()); }, {dir.path().string(), "safe_serialization"},
               "only a .bin");
  expect_error([&] { SafetensorsReader r(dir / "nope"); }, {(dir / "nope").string()}, "no such directory");
}

}  // namespace
}  // namespace rlhf
