#include "io/jsonl.h"

#include <fstream>

#include "core/error.h"
#include "core/log.h"

namespace rlhf {

std::string JsonlRecord::where() const { return file + ":" + std::to_string(line); }

std::vector<JsonlRecord> read_jsonl(const std::filesystem::path& path, const JsonlReadOptions& opts,
                                    int64_t* skipped,
                                    const std::function<void(const JsonlRecord&)>& validate) {
  std::error_code ec;
  RLHF_CHECK(std::filesystem::exists(path, ec), path.string(), ": file not found; check the path");
  RLHF_CHECK(!std::filesystem::is_directory(path, ec), path.string(), ": is a directory, expected a .jsonl file");
  std::ifstream in(path, std::ios::binary);
  RLHF_CHECK(in.good(), path.string(), ": cannot open for reading");
  std::vector<JsonlRecord> out;
  int64_t bad = 0, lineno = 0;
  std::string line, first_bad;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    JsonlRecord rec;
    rec.file = path.string();
    rec.line = lineno;
    try {
      rec.value = parse_json(line, rec.where());
      RLHF_CHECK(rec.value.is_object(), rec.where(), ": expected a JSON object, got ", json_type_name(rec.value));
      if (validate) validate(rec);
    } catch (const Error& e) {
      if (!opts.skip_bad_lines)
        throw Error(std::string(e.what()) + " (use --skip-bad-lines to skip such lines)", e.file, e.line);
      if (bad == 0) first_bad = e.what();
      ++bad;
      continue;
    }
    out.push_back(std::move(rec));
    if (opts.max_records > 0 && int64_t(out.size()) >= opts.max_records) break;
  }
  if (bad > 0) log_warn(path.string(), ": skipped ", bad, " bad line(s); first: ", first_bad);
  if (skipped) *skipped = bad;
  RLHF_CHECK(!out.empty(), path.string(), ": no usable records", bad ? " (all lines were bad)" : " (the file is empty)");
  return out;
}

}  // namespace rlhf
