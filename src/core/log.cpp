#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <exception>
#include <vector>

namespace rlhf {

namespace {
thread_local std::vector<std::string> t_activities;
// The innermost activity an exception left (main reads it after the stack has unwound).
thread_local std::string t_failed;
}

Activity::Activity(std::string what) : exceptions_(std::uncaught_exceptions()) {
  t_failed.clear();
  t_activities.push_back(std::move(what));
}
Activity::~Activity() {
  if (std::uncaught_exceptions() > exceptions_ && t_failed.empty()) t_failed = t_activities.back();
  t_activities.pop_back();
}
std::string Activity::current() { return t_activities.empty() ? t_failed : t_activities.back(); }

static LogLevel g_level = LogLevel::Info;
static std::mutex g_log_mutex;

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(LogLevel level, const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  const char* tag = level == LogLevel::Warn ? "warning: " : level == LogLevel::Error ? "error: " : "";
  std::fprintf(stderr, "%s%s\n", tag, msg.c_str());
  std::fflush(stderr);
}

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

std::string format_duration(double s) {
  char buf[64];
  if (s < 0 || !std::isfinite(s)) return "?";
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, double plain_every_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      plain_every_s_(plain_every_s), tty_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_ && log_level() <= LogLevel::Info) std::fprintf(stderr, "\n");
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0) start_done_ = done_;  // resumed runs: rate counts from here
  done_ = done;
  extra_ = extra;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since >= 0.2) || (!tty_ && since >= plain_every_s_)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  if (!extra.empty()) extra_ = extra;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final_line) {
  if (log_level() > LogLevel::Info) return;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? double(done_ - std::max<int64_t>(start_done_, 0)) / el : 0;
  double eta = rate > 0 ? double(total_ - done_) / rate : -1;
  char rate_s[64];
  std::snprintf(rate_s, sizeof rate_s, rate >= 100 ? "%.0f" : "%.2f", rate);
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (tty_) {
    const int width = 24;
    int filled = total_ > 0 ? int(width * double(done_) / double(total_)) : 0;
    std::string bar(size_t(std::clamp(filled, 0, width)), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s %s/s eta %s %s", label_.c_str(), bar.c_str(),
                 (long long)done_, (long long)total_, unit_.c_str(), rate_s,
                 final_line ? format_duration(el).c_str() : format_duration(eta).c_str(),
                 extra_.c_str());
    if (final_line) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "%s %lld/%lld %s (%s %s/s, %s %s) %s\n", label_.c_str(), (long long)done_,
                 (long long)total_, unit_.c_str(), rate_s, unit_.c_str(),
                 final_line ? "took" : "eta", final_line ? format_duration(el).c_str()
                                                      : format_duration(eta).c_str(),
                 extra_.c_str());
  }
  std::fflush(stderr);
}

}  // namespace rlhf
