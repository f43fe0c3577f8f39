#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace rlhf {

static std::string errno_text(int e) {
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

}  // namespace rlhf
