#include "core/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace rlhf {

std::string errno_text(int e) {
  if (e == EFBIG) return "file too large: the file-size limit (ulimit -f) was reached; raise the limit or write elsewhere";
  if (e == ENOSPC) return "no space left on device; free some disk space and run again";
  if (e == EDQUOT) return "disk quota exceeded; free some space and run again";
  if (e == EACCES || e == EPERM) return "permission denied; choose a directory you can write to";
  if (e == EROFS) return "read-only file system; choose another output directory";
  return std::strerror(e);
}

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  tmp_ = path_;
  tmp_ += ".tmp." + std::to_string(getpid());
  if (path_.has_parent_path()) ensure_directory(path_.parent_path());
  f_ = std::fopen(tmp_.c_str(), "wb");
  RLHF_CHECK(f_ != nullptr, path_.string(), ": cannot create (", errno_text(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t n) {
  RLHF_CHECK(f_ != nullptr, path_.string(), ": write after commit");
  if (n == 0) return;
  size_t w = std::fwrite(data, 1, n, f_);
  RLHF_CHECK(w == n, path_.string(), ": write failed (", errno_text(errno), ")");
}

void AtomicFile::commit() {
  RLHF_CHECK(f_ != nullptr, path_.string(), ": committed twice");
  int e = 0;
  if (std::fflush(f_) != 0) e = errno;
  if (!e && fsync(fileno(f_)) != 0) e = errno;
  if (std::fclose(f_) != 0 && !e) e = errno;
  f_ = nullptr;
  if (e) {
    std::error_code ec;
    fs::remove(tmp_, ec);
    RLHF_FAIL(path_.string(), ": write failed (", errno_text(e), ")");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    e = errno;
    std::error_code ec;
    fs::remove(tmp_, ec);
    RLHF_FAIL(path_.string(), ": cannot rename the finished temporary file (", errno_text(e), ")");
  }
}

void write_file_atomic(const fs::path& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

std::string read_file(const fs::path& path, std::string_view what) {
  std::error_code ec;
  RLHF_CHECK(fs::exists(path, ec), path.string(), ": ", what, " not found; check the path");
  RLHF_CHECK(!fs::is_directory(path, ec), path.string(), ": ", what, " is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  RLHF_CHECK(in.good(), path.string(), ": cannot open ", what, " (", errno_text(errno), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_directory(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  fs::path old = dst;
  old += ".old";
  fs::remove_all(old, ec);
  if (fs::exists(dst, ec)) {
    fs::rename(dst, old, ec);
    RLHF_CHECK(!ec, dst.string(), ": cannot move the previous version aside (", ec.message(), ")");
  }
  fs::rename(src, dst, ec);
  RLHF_CHECK(!ec, dst.string(), ": cannot rename ", src.string(), " into place (", ec.message(), ")");
  fs::remove_all(old, ec);
}

void ensure_directory(const fs::path& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  fs::create_directories(dir, ec);
  RLHF_CHECK(!ec, dir.string(), ": cannot create directory (", ec.message(), ")");
}

std::string file_fingerprint(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return "";
  if (size > (uint64_t(4) << 30)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    return std::to_string(size) + ":mtime" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  uint64_t h = 1469598103934665603ull;
  std::vector<unsigned char> buf(1 << 16);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
    for (size_t i = 0; i < n; ++i) h = (h ^ buf[i]) * 1099511628211ull;
  std::fclose(f);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
  return std::to_string(size) + ":" + hex;
}

namespace {

// The pid of an AtomicFile temporary ("model.safetensors.tmp.1234"), or -1.
pid_t temporary_pid(const std::string& name) {
  size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return -1;
  std::string digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return pid_t(std::stol(digits));
}

bool process_gone(pid_t pid) { return pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH; }

// Another process holds `dir`/.lock right now.
bool locked_by_another(const fs::path& dir) {
  int fd = ::open((dir / ".lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

void clean(const fs::path& dir, int depth, int64_t& n) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    entries.push_back(*it);
  const bool in_checkpoints = dir.filename() == "checkpoints";
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string();
    const bool is_dir = e.is_directory(ec) && !e.is_symlink(ec);
    if (!is_dir) {
      if (process_gone(temporary_pid(name)) && fs::remove(e.path(), ec)) ++n;
      continue;
    }
    if (in_checkpoints && name.starts_with("step-") && name.ends_with(".tmp")) {
      if (fs::remove_all(e.path(), ec) > 0) ++n;
      continue;
    }
    if (in_checkpoints && name.starts_with("step-") && name.ends_with(".old")) {
      fs::path done = e.path().parent_path() / name.substr(0, name.size() - 4);
      if (!fs::exists(done, ec)) fs::rename(e.path(), done, ec);  // killed between the two renames
      else fs::remove_all(e.path(), ec);
      ++n;
      continue;
    }
    if (depth < 4 && !locked_by_another(e.path())) clean(e.path(), depth + 1, n);
  }
}

}  // namespace

int64_t remove_stale_temporaries(const fs::path& dir) {
  int64_t n = 0;
  clean(dir, 0, n);
  if (n > 0) log_info(dir.string(), ": cleared ", n, " temporary file(s) left by an interrupted run");
  return n;
}

int64_t remove_stale_temporaries_of(const fs::path& file) {
  fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const std::string prefix = file.filename().string() + ".tmp.";
  std::error_code ec;
  int64_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with(prefix) && process_gone(temporary_pid(name)) && fs::remove(it->path(), ec)) ++n;
  }
  if (n > 0) log_info(file.string(), ": removed ", n, " temporary file(s) left by an interrupted run");
  return n;
}

}  // namespace rlhf
