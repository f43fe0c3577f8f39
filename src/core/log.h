// Logging to stderr with levels, and a progress reporter: a bar with rate and ETA on a terminal,
// plain periodic lines otherwise (logs, CI).
#pragma once
#include <chrono>
#include <string>

#include "core/error.h"

namespace rlhf {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Quiet = 4 };
void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& msg);

template <class... A>
void log_info(const A&... a) { if (log_level() <= LogLevel::Info) log_line(LogLevel::Info, detail::cat(a...)); }
template <class... A>
void log_warn(const A&... a) { if (log_level() <= LogLevel::Warn) log_line(LogLevel::Warn, detail::cat(a...)); }
template <class... A>
void log_debug(const A&... a) { if (log_level() <= LogLevel::Debug) log_line(LogLevel::Debug, detail::cat(a...)); }

bool stderr_is_terminal();

// Progress over `total` units (steps, samples, tokens). update() is cheap; it redraws at most a
// few times a second on a terminal, and writes a plain line every `plain_every_s` seconds
// otherwise. `extra` is appended (e.g. "loss 2.31").
class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "it", double plain_every_s = 10.0);
  ~Progress();
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  void draw(bool final_line);
  std::string label_, unit_, extra_;
  int64_t total_, done_ = 0, start_done_ = -1;
  double plain_every_s_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// What this thread is doing right now ("reading data.jsonl", "training"), for the one message that
// cannot name it otherwise: main's out-of-memory line. Scoped; the innermost one wins.
class Activity {
 public:
  explicit Activity(std::string what);
  ~Activity();
  Activity(const Activity&) = delete;
  Activity& operator=(const Activity&) = delete;
  // The innermost activity, or the one an exception unwound most recently; "" when none.
  static std::string current();

 private:
  int exceptions_;
};

// Seconds as "1h02m", "3m05s", "12.3s".
std::string format_duration(double seconds);

}  // namespace rlhf
