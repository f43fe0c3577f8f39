// Benchmark: single-thread encoding speed (MB of UTF-8 per second) of a tokenizer on a text file,
// one encode() per line as a data pipeline calls it. bench/bench_tokenizer.py is the Hugging Face
// twin; bench/run_tokenizer.sh runs both on the same text and prints the ratio.
//
//   bench_tokenizer TOKENIZER TEXT_FILE [--repeat N]     prints one JSON line
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/fs.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

using namespace rlhf;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer TOKENIZER TEXT_FILE [--repeat N]\n");
    return 2;
  }
  int repeat = 3;
  for (int i = 3; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--repeat") repeat = std::stoi(argv[i + 1]);
  auto tok = Tokenizer::load(argv[1]);
  std::string text = read_file(argv[2], "benchmark text");
  std::vector<std::string_view> lines;
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find('\n', b);
    e = e == std::string::npos ? text.size() : e + 1;
    lines.push_back(std::string_view(text).substr(b, e - b));
    b = e;
  }
  double best = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeat; ++r) {  // the first pass also warms the BPE cache, as in HF
    auto t0 = std::chrono::steady_clock::now();
    tokens = 0;
    for (std::string_view line : lines) tokens += tok->encode(line).size();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  Json out = {{"impl", "rlhf"},     {"tokenizer", argv[1]}, {"bytes", text.size()},
              {"tokens", tokens},   {"seconds", best},      {"mb_per_s", double(text.size()) / best / 1e6}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
