#include "io/jsonl.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <memory>

#include "core/error.h"
#include "core/log.h"

namespace rlhf {

std::string JsonlRecord::where() const { return file + ":" + std::to_string(line); }

InputLimits& input_limits() {
  static InputLimits limits;
  return limits;
}

int64_t InputLimits::max_line_bytes() const {
  if (max_text_chars <= 0) return std::numeric_limits<int64_t>::max();
  return std::max<int64_t>(int64_t(16) << 20, max_text_chars > (int64_t(1) << 58) ? int64_t(1) << 62 : 16 * max_text_chars);
}

void check_text_length(std::string_view s, const std::string& where, const std::string& field, int64_t max_chars) {
  if (max_chars <= 0 || int64_t(s.size()) <= max_chars) return;  // bytes >= characters
  int64_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  RLHF_CHECK(chars <= max_chars, where, ": ", field.empty() ? std::string("the text") : "field \"" + field + "\"", " has ",
             chars, " characters, more than --max-text-chars ", max_chars, "; shorten it, or raise --max-text-chars");
}

void check_text_lengths(const Json& j, const std::string& where, int64_t max_chars) {
  if (max_chars <= 0) return;
  std::vector<std::pair<const Json*, std::string>> todo = {{&j, ""}};  // explicit stack: no recursion
  while (!todo.empty()) {
    auto [v, path] = todo.back();
    todo.pop_back();
    if (v->is_string()) {
      check_text_length(v->get_ref<const std::string&>(), where, path, max_chars);
    } else if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it)
        todo.emplace_back(&it.value(), path.empty() ? it.key() : path + "." + it.key());
    } else if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i) todo.emplace_back(&(*v)[i], path + "[" + std::to_string(i) + "]");
    }
  }
}

namespace {

// Lines of a file, each at most `max_bytes` long: a longer line is skipped to its end (its bytes are
// never held) and reported as too long.
class LineReader {
 public:
  LineReader(std::ifstream& in, int64_t max_bytes) : in_(in), max_(max_bytes) {}
  // false at the end of the file; *too_long when the line was longer than the limit.
  bool next(std::string& line, int64_t* length, bool* too_long) {
    line.clear();
    *too_long = false;
    *length = 0;
    bool any = false;
    for (;;) {
      if (pos_ == len_) {
        in_.read(buf_, sizeof buf_);
        len_ = size_t(in_.gcount());
        pos_ = 0;
        if (len_ == 0) return any;
      }
      any = true;
      const char* start = buf_ + pos_;
      const char* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
      size_t n = nl ? size_t(nl - start) : len_ - pos_;
      *length += int64_t(n);
      if (!*too_long && *length > max_) {
        *too_long = true;
        line.clear();
        line.shrink_to_fit();
      }
      if (!*too_long) line.append(start, n);
      pos_ += n;
      if (nl) {
        ++pos_;
        return true;
      }
    }
  }

 private:
  std::ifstream& in_;
  int64_t max_;
  char buf_[1 << 16];
  size_t pos_ = 0, len_ = 0;
};

}  // namespace

std::vector<JsonlRecord> read_jsonl(const std::filesystem::path& path, const JsonlReadOptions& opts,
                                    int64_t* skipped,
                                    const std::function<void(const JsonlRecord&)>& validate) {
  std::error_code ec;
  RLHF_CHECK(std::filesystem::exists(path, ec), path.string(), ": file not found; check the path");
  RLHF_CHECK(!std::filesystem::is_directory(path, ec), path.string(), ": is a directory, expected a .jsonl file");
  std::ifstream in(path, std::ios::binary);
  RLHF_CHECK(in.good(), path.string(), ": cannot open for reading");
  std::vector<JsonlRecord> out;
  int64_t bad = 0, lineno = 0, length = 0;
  std::string line, first_bad;
  const InputLimits& limits = input_limits();
  const int64_t max_line = limits.max_line_bytes();
  auto reader = std::make_unique<LineReader>(in, max_line);
  bool too_long = false;
  Activity act("reading " + path.string());
  while (reader->next(line, &length, &too_long)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!too_long && line.find_first_not_of(" \t") == std::string::npos) continue;
    JsonlRecord rec;
    rec.file = path.string();
    rec.line = lineno;
    try {
      RLHF_CHECK(!too_long, rec.where(), ": the line has ", length, " bytes, more than the ", max_line,
                 " a record may have (16 bytes per --max-text-chars character); shorten it, or raise --max-text-chars");
      rec.value = parse_json(line, rec.where());
      RLHF_CHECK(rec.value.is_object(), rec.where(), ": expected a JSON object, got ", json_type_name(rec.value));
      check_text_lengths(rec.value, rec.where(), limits.max_text_chars);
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
