// `rlhf label serve`: the labelling task over HTTP (cpp-httplib). The web app's files are served as
// they are (they hold no data); every /api request needs a token in the Authorization header (no
// cookies, so no cross-site request forgery). Malformed requests get a 4xx JSON error and the server
// keeps serving; bodies are limited in size; a label is answered 200 only once it is on disk.
#pragma once
#include <memory>
#include <string>

#include "label/task.h"

namespace rlhf::label {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0 = any free port
  int threads = 64;                // connections served at once (a keep-alive connection holds one)
  size_t max_body = 1 << 20;       // bytes; larger requests get 413
};

class LabelServer {
 public:
  LabelServer(TaskStore& store, const ServerOptions& opts);
  ~LabelServer();
  // Binds the socket (throws naming the host and port when it cannot); returns the port.
  int bind();
  // Serves until stop() (from another thread or a signal watcher).
  void serve();
  void stop();
  std::string base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether a host name or address only reaches this machine (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

}  // namespace rlhf::label
