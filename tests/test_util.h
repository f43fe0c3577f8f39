// Helpers shared by the test files: temporary directories, raw file bytes, running the rlhf binary,
// checking that a call throws rlhf::Error with a message naming what it should. Header-only, free of
// model code and of torch (tensor helpers: test_tensor_util.h), so the sanitizer build of the parser
// tests uses it too and its non-tensor test files compile quickly.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include "core/error.h"

namespace rlhf::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rlhf_test_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `fn`, which must throw rlhf::Error whose message contains every string in `parts`.
// Returns the message ("" when it did not throw as required, after recording a failure).
template <class F>
std::string expect_error(F&& fn, std::initializer_list<std::string> parts, const char* what = "") {
  try {
    fn();
  } catch (const rlhf::Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << what << ": message lacks \"" << p << "\": " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-rlhf exception (" << typeid(e).name() << "): " << e.what();
    return "";
  }
  ADD_FAILURE() << what << ": did not throw";
  return "";
}

// The result of running a shell command line.
struct RunResult {
  int exit_code = -1;  // -1: killed by a signal (see `signal`)
  int signal = 0;
  std::string out, err;
};

inline RunResult run_command(const std::string& cmd) {
  TempDir tmp;
  fs::path out = tmp / "stdout", err = tmp / "stderr";
  std::string line = cmd + " >'" + out.string() + "' 2>'" + err.string() + "'";
  int status = std::system(line.c_str());
  RunResult r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  return r;
}

// The rlhf binary: $RLHF_BIN (ctest sets it), else the one next to the tests in the build tree.
inline std::string rlhf_bin() {
  if (const char* b = std::getenv("RLHF_BIN"); b && *b) return b;
#ifdef RLHF_BINARY_DIR
  return std::string(RLHF_BINARY_DIR) + "/rlhf";
#else
  return "rlhf";
#endif
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Checks the CLI error contract: non-zero exit (not a signal), nothing on stdout, exactly one line on
// stderr starting with "error: " and containing every string in `parts`.
inline void expect_cli_error(const RunResult& r, std::initializer_list<std::string> parts, const std::string& what) {
  EXPECT_EQ(r.signal, 0) << what << ": killed by signal " << r.signal << "; stderr: " << r.err;
  EXPECT_NE(r.exit_code, 0) << what << ": exited 0";
  EXPECT_TRUE(r.out.empty()) << what << ": wrote to stdout: " << r.out;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << what << ": stderr does not start with \"error: \": " << r.err;
  size_t nl = r.err.find('\n');
  EXPECT_TRUE(nl != std::string::npos && nl + 1 == r.err.size()) << what << ": stderr is not exactly one line: " << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << what << ": stderr lacks \"" << p << "\": " << r.err;
}

// Starts `cmd` (a shell command line) in its own process group, waits until `marker` exists (e.g. a
// checkpoint directory), then kill -9s the whole group. Returns false if the marker never appeared
// within `timeout_ms` (the group is killed anyway).
inline bool run_and_kill_when(const std::string& cmd, const fs::path& marker, int timeout_ms = 60000) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), (char*)nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  bool seen = false;
  for (int waited = 0; waited < timeout_ms && !seen; waited += 10) {
    seen = fs::exists(marker);
    if (!seen) usleep(10000);
  }
  kill(-pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return seen;
}

}  // namespace rlhf::test
