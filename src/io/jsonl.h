// Data files: JSON Lines (one JSON object per line), or one JSON array of objects (a file whose first
// character is '['), either of them gzip-compressed (.jsonl.gz, .json.gz: recognised by content, not
// name). Errors carry "file:line" and the field at fault; with skip_bad_lines, bad records are counted
// and skipped instead (the caller reports the count).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
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

// Bounds on what one record can make us allocate: a 50 MB text field once cost 7 GB to tokenise.
// Process-wide, set from --max-text-chars by the commands that read data.
struct InputLimits {
  int64_t max_text_chars = 1000000;  // characters (code points) in one string field; 0 = no limit
  // Lines longer than this are refused before they are parsed: 16 bytes per allowed character
  // (room for several long fields and JSON escapes), at least 16 MiB.
  int64_t max_line_bytes() const;
};
InputLimits& input_limits();

// Throws (naming `where`, the field and --max-text-chars) if a string in `j` is longer than the limit.
void check_text_lengths(const Json& j, const std::string& where, int64_t max_text_chars = input_limits().max_text_chars);
// The same for one text (`field` names it; "" = the whole line of a text file).
void check_text_length(std::string_view text, const std::string& where, const std::string& field = "",
                       int64_t max_text_chars = input_limits().max_text_chars);

// Reads every record (non-blank line, or array element); each must be a JSON object within input_limits(). `validate` (optional) may throw
// rlhf::Error for a line whose fields are wrong; with skip_bad_lines that line is skipped too.
// *skipped receives the number of skipped lines. An empty file is an error.
std::vector<JsonlRecord> read_jsonl(const std::filesystem::path& path, const JsonlReadOptions& opts = {},
                                    int64_t* skipped = nullptr,
                                    const std::function<void(const JsonlRecord&)>& validate = nullptr);

// Whether `path` is plain JSON Lines (not gzip, not a JSON array), which may be copied byte for byte.
bool is_plain_jsonl(const std::filesystem::path& path);

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
