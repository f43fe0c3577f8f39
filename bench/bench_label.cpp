// Benchmark: the labelling server under load. R raters (one keep-alive HTTP client thread each) label
// a task with overlap 2 until it is done, against `rlhf label serve` in its own process on loopback:
// latency of GET /api/next + POST /api/labels (p50, p99), of each alone, and labels per second. Every
// label is committed with synchronous=FULL before its 200, so this includes an fsync per label.
// Target (issue 17): p99 under 50 ms at 50 raters on 2 cores. --think-ms T makes each rater pause T ms
// after a label (people read before they rank); 0 is a saturation test, where latency is queueing.
//
//   bench_label --rlhf build/rlhf [--raters 50] [--items 1000] [--k 4] [--overlap 2] [--ramp-ms 5] [--think-ms 0] [--dir /tmp/x]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <httplib.h>

#include "label/client.h"
#include "label/task.h"

using namespace rlhf;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string rlhf = "build/rlhf", dir;
  int raters = 50, items = 1000, k = 4, overlap = 2;
  double ramp_ms = 5, think_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--rlhf") rlhf = v;
    else if (a == "--raters") raters = std::stoi(v);
    else if (a == "--items") items = std::stoi(v);
    else if (a == "--k") k = std::stoi(v);
    else if (a == "--overlap") overlap = std::stoi(v);
    else if (a == "--dir") dir = v;
    else if (a == "--ramp-ms") ramp_ms = std::stod(v);
    else if (a == "--think-ms") think_ms = std::stod(v);
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  fs::path d = dir.empty() ? fs::temp_directory_path() / ("bench_label_" + std::to_string(::getpid())) : fs::path(dir);
  fs::remove_all(d);
  std::vector<label::Item> its;
  for (int i = 0; i < items; ++i) {
    label::Item it;
    it.prompt = Json::array({{{"role", "user"}, {"content", "Question number " + std::to_string(i) + ": explain it."}}});
    for (int j = 0; j < k; ++j) it.responses.push_back("A response of about a hundred characters, number " + std::to_string(j) +
                                                        ", to question " + std::to_string(i) + ". It goes on a little.");
    its.push_back(it);
  }
  std::vector<std::string> names;
  for (int i = 0; i < raters; ++i) names.push_back("r" + std::to_string(i));
  label::TaskOptions o;
  o.overlap = overlap;
  label::TaskStore::create(d / "task", its, o, names, {});
  Json sec = label::read_secrets(d / "task");
  int port = label::free_loopback_port();
  pid_t pid = fork();
  if (pid == 0) {
    std::string p = std::to_string(port), t = (d / "task").string();
    if (!std::freopen("/dev/null", "w", stdout)) _exit(126);  // the URLs
    execl(rlhf.c_str(), rlhf.c_str(), "-q", "label", "serve", "--task", t.c_str(), "--port", p.c_str(), (char*)nullptr);
    std::fprintf(stderr, "error: cannot run %s: %s\n", rlhf.c_str(), std::strerror(errno));
    _exit(127);
  }
  // Wait until it listens.
  for (int i = 0; i < 100; ++i) {
    httplib::Client c("127.0.0.1", port);
    if (auto r = c.Get("/")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  label::ClientOptions co;
  co.port = port;
  // Raters start ramp_ms apart: Debian's cpp-httplib listens with a backlog of 5 (compiled in), so 50
  // connections in the same instant overflow it and the kernel retries the dropped ones after 1 s.
  co.ramp_ms = ramp_ms;
  co.think_ms = think_ms;
  for (auto& r : sec["raters"]) co.tokens.push_back(r["token"]);
  auto st = label::run_rater_clients(co, [k](const Json&, size_t) {
    Json ranking = Json::array();
    for (int j = k - 1; j >= 0; --j) ranking.push_back(j);
    return Json{{"ranking", ranking}, {"seconds", 10.0}};
  });
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  if (!st.error.empty()) {
    std::fprintf(stderr, "error: %s\n", st.error.c_str());
    return 1;
  }
  Json out = {{"raters", raters}, {"items", items}, {"k", k}, {"overlap", overlap}, {"ramp_ms", ramp_ms}, {"think_ms", think_ms}, {"labels", st.labels}, {"retries", st.retries},
              {"seconds", st.seconds}, {"labels_per_second", double(st.labels) / st.seconds},
              {"next_submit_p50_ms", label::percentile(st.pair_ms, 50)}, {"next_submit_p99_ms", label::percentile(st.pair_ms, 99)},
              {"next_p50_ms", label::percentile(st.next_ms, 50)}, {"next_p99_ms", label::percentile(st.next_ms, 99)},
              {"submit_p50_ms", label::percentile(st.submit_ms, 50)}, {"submit_p99_ms", label::percentile(st.submit_ms, 99)}};
  std::printf("%s\n", out.dump().c_str());
  if (dir.empty()) fs::remove_all(d);
  return 0;
}
