// Raters as HTTP clients of the labelling server, making the same requests the web app makes
// (GET /api/next, POST /api/labels with a submission_id, retried on a network failure until a
// deadline). The pipeline's `"simulate": true` labels through it with the demo world's simulated
// raters, and the load benchmark and tests drive the server with it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/json.h"

namespace rlhf::label {

// What a rater answers for an item as served (`/api/next`'s JSON): the body of POST /api/labels
// without "submission_id" (added by the client). `rater` is the index of the rater.
using RaterPolicy = std::function<Json(const Json& item, size_t rater)>;

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> tokens;   // one client thread per token
  double give_up_seconds = 60;       // a request failing (server down) this long ends the run with an error
  int64_t max_labels_per_rater = 0;  // 0 = until the server has nothing left (204)
  double think_ms = 0;               // pause after each label (a person reading the next item); 0 = flat out
  double ramp_ms = 0;                // rater i starts i * ramp_ms after the first (people do not connect in one instant)
};

struct Acknowledged {
  std::string item_id;
  size_t rater = 0;  // index into ClientOptions::tokens
  Json body;         // what was sent
};

struct ClientStats {
  int64_t labels = 0, duplicates = 0, retries = 0;
  std::vector<double> next_ms, submit_ms, pair_ms;  // latency of next, of submit, of the two together
  double seconds = 0;
  std::vector<Acknowledged> acknowledged;           // every label answered 200
  std::string error;                                // the first request that failed for good ("" = none)
};

// Runs the raters until the server has nothing left for any of them (or each reached its limit).
ClientStats run_rater_clients(const ClientOptions& o, const RaterPolicy& policy);

// A TCP port free on 127.0.0.1 right now (bound to port 0 and closed), for a server started next.
int free_loopback_port();

// p-th percentile (0..100) of `v`, nearest rank; NaN for an empty vector.
double percentile(std::vector<double> v, double p);

}  // namespace rlhf::label
