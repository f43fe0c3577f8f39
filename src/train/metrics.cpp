#include "train/metrics.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"

namespace rlhf {

uint32_t crc32c(const void* data, size_t n) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  uint32_t crc = 0xffffffffu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

namespace {

uint32_t masked_crc(const void* data, size_t n) {
  uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// Protocol-buffer wire format, just what Event / Summary need.
void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(char(v));
}
void put_fixed64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}
void put_fixed32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& s, int field, const std::string& b) {
  put_varint(s, uint64_t(field) << 3 | 2);
  put_varint(s, b.size());
  s += b;
}
std::string event_header(double wall, int64_t step) {
  std::string e;
  uint64_t w;
  std::memcpy(&w, &wall, 8);
  put_varint(e, 1 << 3 | 1);  // wall_time: double
  put_fixed64(e, w);
  put_varint(e, 2 << 3 | 0);  // step: int64
  put_varint(e, uint64_t(step));
  return e;
}
double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  ensure_directory(dir);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  std::ostringstream name;
  name << "events.out.tfevents." << int64_t(now_s()) << "." << host << "." << getpid();
  f_ = std::fopen((dir / name.str()).c_str(), "wb");
  RLHF_CHECK(f_, (dir / name.str()).string(), ": cannot create the TensorBoard event file");
  std::string e = event_header(now_s(), 0);
  put_bytes(e, 3, "brain.Event:2");  // file_version
  write_event(e);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_event(const std::string& event) {
  std::string rec;
  uint64_t len = event.size();
  std::string lenb;
  put_fixed64(lenb, len);
  rec += lenb;
  put_fixed32(rec, masked_crc(lenb.data(), 8));
  rec += event;
  put_fixed32(rec, masked_crc(event.data(), event.size()));
  std::fwrite(rec.data(), 1, rec.size(), f_);
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  put_bytes(v, 1, tag);  // Summary.Value.tag
  float f = float(value);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  put_varint(v, 2 << 3 | 5);  // simple_value: float
  put_fixed32(v, bits);
  std::string summary;
  put_bytes(summary, 1, v);  // Summary.value
  std::string e = event_header(now_s(), step);
  put_bytes(e, 5, summary);  // Event.summary
  write_event(e);
}

void TensorBoardWriter::flush() {
  int e = std::fflush(f_) == 0 && !std::ferror(f_) ? 0 : errno;
  RLHF_CHECK(e == 0, "TensorBoard event file: write failed (", errno_text(e), "); pass --report-to none to do without it");
}

std::string tensorboard_tag(const std::string& name) {
  if (name.rfind("eval_", 0) == 0) return "eval/" + name.substr(5);
  return "train/" + name;
}

MetricsLog::MetricsLog(const std::filesystem::path& dir, int64_t resume_step, bool tensorboard) : path_(dir / "metrics.jsonl") {
  ensure_directory(dir);
  std::string kept;
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) break;  // a line cut by a crash ends the usable part
      if (j.value("step", int64_t(-1)) <= resume_step) kept += line + "\n";
    }
  }
  write_file_atomic(path_, kept);
  if (tensorboard) tb_ = std::make_unique<TensorBoardWriter>(dir);
}

void MetricsLog::log(int64_t step, const Json& values) {
  Json j = {{"step", step}};
  for (auto it = values.begin(); it != values.end(); ++it) j[it.key()] = it.value();
  std::FILE* f = std::fopen(path_.c_str(), "ab");
  RLHF_CHECK(f, path_.string(), ": cannot append metrics");
  std::string line = j.dump() + "\n";
  bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
  ok = (std::fclose(f) == 0) && ok;
  RLHF_CHECK(ok, path_.string(), ": write failed (disk full?)");
  if (!tb_) return;
  for (auto it = values.begin(); it != values.end(); ++it)
    if (it.value().is_number()) tb_->scalar(tensorboard_tag(it.key()), it.value().get<double>(), step);
  tb_->flush();
}

}  // namespace rlhf
