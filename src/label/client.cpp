#include "label/client.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "label/token.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rlhf::label {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// One request, retried while the server cannot be reached (restarting, say) or answers 5xx, until
// the deadline; returns the final response (status 0 = none).
struct Answer {
  int status = 0;
  std::string body;
};

Answer request(httplib::Client& c, const std::string& method, const std::string& path, const std::string& body,
               double give_up, int64_t& retries) {
  auto start = Clock::now();
  for (int attempt = 0;; ++attempt) {
    auto r = method == "GET" ? c.Get(path.c_str()) : c.Post(path.c_str(), body, "application/json");
    if (r && r->status < 500) return {r->status, r->body};
    if (std::chrono::duration<double>(Clock::now() - start).count() > give_up)
      return {r ? r->status : 0, r ? r->body : std::string("no answer: ") + httplib::to_string(r.error())};
    ++retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (1 << std::min(attempt, 4)), 500)));
  }
}

}  // namespace

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

ClientStats run_rater_clients(const ClientOptions& o, const RaterPolicy& policy) {
  ClientStats total;
  std::mutex mu;
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (size_t r = 0; r < o.tokens.size(); ++r) {
    threads.emplace_back([&, r] {
      ClientStats mine;
      if (o.ramp_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(o.ramp_ms * 1000 * double(r))));
      httplib::Client c(o.host, o.port);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_connection_timeout(5, 0);
      c.set_read_timeout(5, 0);  // a request lost with a killed server is sent again (idempotent)
      c.set_default_headers({{"Authorization", "Bearer " + o.tokens[r]}});
      for (int64_t n = 0; o.max_labels_per_rater == 0 || n < o.max_labels_per_rater; ++n) {
        auto tn = Clock::now();
        Answer a = request(c, "GET", "/api/next", "", o.give_up_seconds, mine.retries);
        double next_ms = ms_since(tn);
        if (a.status == 204) break;
        if (a.status != 200) {
          mine.error = "GET /api/next: " + std::to_string(a.status) + " " + a.body.substr(0, 200);
          break;
        }
        Json item = Json::parse(a.body, nullptr, false);
        Json body = policy(item, r);
        body["item_id"] = item["item_id"];
        body["submission_id"] = random_token();
        auto ts = Clock::now();
        Answer s = request(c, "POST", "/api/labels", body.dump(), o.give_up_seconds, mine.retries);
        double submit_ms = ms_since(ts);
        if (s.status != 200) {
          mine.error = "POST /api/labels: " + std::to_string(s.status) + " " + s.body.substr(0, 200);
          break;
        }
        Json ok = Json::parse(s.body, nullptr, false);
        if (ok.is_object() && ok.value("duplicate", false)) ++mine.duplicates;
        ++mine.labels;
        mine.next_ms.push_back(next_ms);
        mine.submit_ms.push_back(submit_ms);
        mine.pair_ms.push_back(next_ms + submit_ms);
        mine.acknowledged.push_back({item["item_id"].get<std::string>(), r, body});
        if (o.think_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(int64_t(o.think_ms * 1000)));
      }
      std::lock_guard<std::mutex> g(mu);
      total.labels += mine.labels;
      total.duplicates += mine.duplicates;
      total.retries += mine.retries;
      for (std::vector<double> ClientStats::*v : {&ClientStats::next_ms, &ClientStats::submit_ms, &ClientStats::pair_ms})
        (total.*v).insert((total.*v).end(), (mine.*v).begin(), (mine.*v).end());
      total.acknowledged.insert(total.acknowledged.end(), mine.acknowledged.begin(), mine.acknowledged.end());
      if (total.error.empty()) total.error = mine.error;
    });
  }
  for (auto& t : threads) t.join();
  total.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return total;
}

}  // namespace rlhf::label
