// One writer per output directory: an exclusive flock on "<dir>/.lock", held for the whole run and
// released by the kernel when the process ends (kill -9 included). The file names the holder (pid
// and command line), so a second writer is refused with a line that says who is writing. Taking the
// lock also clears what interrupted runs left behind in the directory (remove_stale_temporaries).
#pragma once
#include <filesystem>
#include <string>

namespace rlhf {

class DirLock {
 public:
  // Creates `dir` if needed and locks it; `option` names the flag that chose it ("--out",
  // "--run-dir") for the message that refuses a second writer.
  explicit DirLock(const std::filesystem::path& dir, const std::string& option = "--out");
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_, file_;
  int fd_ = -1;
};

// The name of the lock file inside a locked directory.
inline constexpr const char* kLockFileName = ".lock";

// This process's command line ("rlhf sft --model m ..."), as the lock file records it.
std::string own_command_line();

}  // namespace rlhf
