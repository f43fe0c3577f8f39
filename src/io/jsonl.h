// JSONL datasets: one JSON object per line. Errors carry "file:line" and the field at fault;
// with skip_bad_lines, bad lines are counted and skipped instead (the caller reports the count).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "io/json.h"

namespace rlhf {

struct JsonlRecord {
  Json value;
  int64_t line = 0;         // 1-based line number
  std::string where() const;  // "file:line"
  std::string file;
};

struct JsonlReadOptions {
  bool skip_bad_lines = false;  // report and skip lines that fail to parse or validate
  int64_t max_records = 0;      // 0 = all
};

// Reads every non-blank line; each must be a JSON object. `validate` (optional) may throw
// rlhf::Error for a line whose fields are wrong; with skip_bad_lines that line is skipped too.
// *skipped receives the number of skipped lines. An empty file is an error.
std::vector<JsonlRecord> read_jsonl(const std::filesystem::path& path, const JsonlReadOptions& opts = {},
                                    int64_t* skipped = nullptr,
                                    const std::function<void(const JsonlRecord&)>& validate = nullptr);

// Appends JSON objects one per line to a temporary file; commit() renames it into place.
class JsonlWriter {
 public:
  explicit JsonlWriter(const std::filesystem::path& path) : file_(path) {}
  void write(const Json& j) { file_.write(j.dump() + "\n"); }
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
};

}  // namespace rlhf
