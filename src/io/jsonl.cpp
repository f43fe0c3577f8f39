#include "io/jsonl.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>

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

// A data file's bytes through zlib: a gzip file (.jsonl.gz, or any name) is decompressed, any other
// file is read as it is (gzread passes it through).
class Input {
 public:
  explicit Input(const std::filesystem::path& path) : path_(path.string()) {
    gz_ = gzopen(path_.c_str(), "rb");
    RLHF_CHECK(gz_ != nullptr, path_, ": cannot open for reading");
    gzbuffer(gz_, 1 << 17);
  }
  ~Input() { gzclose(gz_); }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  // More bytes into buf[pos..len); false at the end of the file.
  bool fill() {
    if (pos < len) return true;
    int n = gzread(gz_, buf, sizeof buf);
    // A truncated or corrupt stream: gzread returns the data before the damage, then -1, or 0 with
    // the error set (Z_BUF_ERROR for an unexpected end).
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    RLHF_CHECK(n >= 0 && err == Z_OK, path_, ": cannot read: ", err == Z_ERRNO ? std::strerror(errno) : msg,
               " (a corrupt or truncated .gz file?)");
    pos = 0;
    len = size_t(n);
    return len > 0;
  }
  // Whether the file is read as it is (not gzip); known once something was read.
  bool direct() const { return gzdirect(gz_) == 1; }

  char buf[1 << 16];
  size_t pos = 0, len = 0;

 private:
  std::string path_;
  gzFile gz_ = nullptr;
};

// One record's text at a time, each at most `max_bytes` long: a longer one is skipped to its end (its
// bytes are never held) and reported as too long. JSON Lines: a record per line. A file whose first
// character is '[' is one JSON array of records (what `json.dump(list_of_dicts)` writes), split
// element by element without parsing the whole file.
class RecordReader {
 public:
  RecordReader(Input& in, int64_t max_bytes, std::string where) : in_(in), max_(max_bytes), where_(std::move(where)) {
    // Skip a UTF-8 byte order mark and leading white space to see which form the file has.
    while (in_.fill()) {
      unsigned char c = static_cast<unsigned char>(in_.buf[in_.pos]);
      if (c == '\n') ++line_;
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++in_.pos;
        continue;
      }
      if (!bom_checked_ && c == 0xEF && in_.len - in_.pos >= 3 && std::memcmp(in_.buf + in_.pos, "\xEF\xBB\xBF", 3) == 0) {
        in_.pos += 3;
        bom_checked_ = true;
        continue;
      }
      if (c == '[') {
        array_ = true;
        ++in_.pos;
      }
      break;
    }
    bom_checked_ = true;
  }
  bool is_array() const { return array_; }

  // false at the end; *line is where the record starts (1-based).
  bool next(std::string& text, int64_t* line, int64_t* length, bool* too_long) {
    text.clear();
    *too_long = false;
    *length = 0;
    return array_ ? next_element(text, line, length, too_long) : next_line(text, line, length, too_long);
  }

 private:
  void append(std::string& text, const char* p, size_t n, int64_t* length, bool* too_long) {
    *length += int64_t(n);
    if (!*too_long && *length > max_) {
      *too_long = true;
      text.clear();
      text.shrink_to_fit();
    }
    if (!*too_long) text.append(p, n);
  }

  bool next_line(std::string& text, int64_t* line, int64_t* length, bool* too_long) {
    bool any = false;
    *line = line_ + 1;
    while (in_.fill()) {
      any = true;
      const char* start = in_.buf + in_.pos;
      const char* nl = static_cast<const char*>(std::memchr(start, '\n', in_.len - in_.pos));
      size_t n = nl ? size_t(nl - start) : in_.len - in_.pos;
      append(text, start, n, length, too_long);
      in_.pos += n;
      if (nl) {
        ++in_.pos;
        ++line_;
        break;
      }
    }
    return any;
  }

  [[noreturn]] void bad(const std::string& what) const {
    RLHF_FAIL(where_, ":", line_ + 1, ": ", what, " (the file starts with '[', so it is read as one JSON array of records)");
  }

  // The next element of the top-level array, found by tracking strings and nesting.
  bool next_element(std::string& text, int64_t* line, int64_t* length, bool* too_long) {
    if (done_) return false;
    // White space, then a record, or the ']' that closes the array.
    for (;;) {
      if (!in_.fill()) bad("the array is not closed with ']'");
      char c = in_.buf[in_.pos];
      if (c == '\n') ++line_;
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++in_.pos;
        continue;
      }
      if (c == ']') {
        if (after_comma_) bad("a ',' is followed by ']'");
        ++in_.pos;
        finish();
        return false;
      }
      if (c == ',') bad("expected a record, got ','");
      break;
    }
    *line = line_ + 1;
    int depth = 0;
    bool in_string = false, escape = false;
    for (;;) {
      if (!in_.fill()) bad("the array is not closed with ']'");
      size_t i = in_.pos;
      bool end = false;
      for (; i < in_.len; ++i) {
        char c = in_.buf[i];
        if (c == '\n') ++line_;
        if (in_string) {
          if (escape) escape = false;
          else if (c == '\\') escape = true;
          else if (c == '"') in_string = false;
        } else if (c == '"') {
          in_string = true;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (depth == 0) {  // the array's own ']'
            end = true;
            break;
          }
          --depth;
        } else if (c == ',' && depth == 0) {
          end = true;
          break;
        }
      }
      append(text, in_.buf + in_.pos, i - in_.pos, length, too_long);
      in_.pos = i;
      if (!end) continue;
      if (in_.buf[in_.pos] == ',') {
        ++in_.pos;
        after_comma_ = true;
      } else {
        ++in_.pos;  // ']'
        finish();
      }
      while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
        text.pop_back();
      return true;
    }
  }

  // After the closing ']' only white space may follow.
  void finish() {
    done_ = true;
    while (in_.fill()) {
      char c = in_.buf[in_.pos];
      if (c == '\n') ++line_;
      else if (c != ' ' && c != '\t' && c != '\r') bad("text after the array's closing ']'");
      ++in_.pos;
    }
  }

  Input& in_;
  int64_t max_;
  std::string where_;
  int64_t line_ = 0;  // newlines before the current position: line_ + 1 is the current line
  bool array_ = false, done_ = false, after_comma_ = false, bom_checked_ = false;
};

}  // namespace

bool is_plain_jsonl(const std::filesystem::path& path) {
  Input in(path);
  RecordReader reader(in, 0, path.string());  // looks at the first bytes only
  return in.direct() && !reader.is_array();
}

std::vector<JsonlRecord> read_jsonl(const std::filesystem::path& path, const JsonlReadOptions& opts,
                                    int64_t* skipped,
                                    const std::function<void(const JsonlRecord&)>& validate) {
  std::error_code ec;
  RLHF_CHECK(std::filesystem::exists(path, ec), path.string(), ": file not found; check the path");
  RLHF_CHECK(!std::filesystem::is_directory(path, ec), path.string(), ": is a directory, expected a .jsonl file");
  Input in(path);
  std::vector<JsonlRecord> out;
  int64_t bad = 0, lineno = 0, length = 0;
  std::string line, first_bad;
  const InputLimits& limits = input_limits();
  const int64_t max_line = limits.max_line_bytes();
  Activity act("reading " + path.string());
  RecordReader reader(in, max_line, path.string());
  bool too_long = false;
  while (reader.next(line, &lineno, &length, &too_long)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!too_long && line.find_first_not_of(" \t") == std::string::npos) continue;
    JsonlRecord rec;
    rec.file = path.string();
    rec.line = lineno;
    try {
      RLHF_CHECK(!too_long, rec.where(), reader.is_array() ? ": the record has " : ": the line has ", length,
                 " bytes, more than the ", max_line,
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
