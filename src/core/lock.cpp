#include "core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"

namespace rlhf {

namespace fs = std::filesystem;

std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out;
  for (char c : raw) out += c == '\0' ? ' ' : (c == '\n' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > 300) out = out.substr(0, 297) + "...";
  return out;
}

namespace {

// "pid 1234 (rlhf sft ...)" from a lock file's contents, or "" when it names nobody yet.
std::string holder_of(int fd) {
  char buf[1024];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, size_t(n));
  size_t nl = s.find('\n');
  std::string pid = s.substr(0, nl), cmd = nl == std::string::npos ? "" : s.substr(nl + 1);
  while (!cmd.empty() && cmd.back() == '\n') cmd.pop_back();
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return "";
  return "pid " + pid + (cmd.empty() ? "" : ": " + cmd);
}

}  // namespace

DirLock::DirLock(const fs::path& dir, const std::string& option) : dir_(dir), file_(dir / kLockFileName) {
  ensure_directory(dir_);
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fd = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    RLHF_CHECK(fd >= 0, dir_.string(), ": cannot create the lock file ", kLockFileName, " (", errno_text(errno),
               "); choose a ", option, " you can write to");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      std::string who = holder_of(fd);
      ::close(fd);
      RLHF_CHECK(e != EWOULDBLOCK, dir_.string(), ": another rlhf process (", who.empty() ? "starting up" : who,
                 ") is writing to this directory; wait for it to finish, or choose another ", option);
      RLHF_FAIL(dir_.string(), ": cannot lock ", file_.string(), " (", errno_text(e), ")");
    }
    // A holder that finishes unlinks the file before it closes it: make sure the locked file is still
    // the one at the path, else lock the new one.
    struct stat a {}, b {};
    if (::fstat(fd, &a) != 0 || ::stat(file_.c_str(), &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
      ::close(fd);
      continue;
    }
    std::string me = std::to_string(::getpid()) + "\n" + own_command_line() + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != ssize_t(me.size())) {
      int e = errno;
      ::close(fd);
      RLHF_FAIL(file_.string(), ": cannot write the lock file (", errno_text(e), ")");
    }
    fd_ = fd;
    remove_stale_temporaries(dir_);
    return;
  }
  RLHF_FAIL(dir_.string(), ": the lock file keeps changing; another process is starting and stopping in this directory");
}

DirLock::~DirLock() {
  if (fd_ < 0) return;
  ::unlink(file_.c_str());
  ::close(fd_);
}

}  // namespace rlhf
