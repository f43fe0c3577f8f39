#include "label/server.h"

#include <httplib.h>

#include <atomic>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "label/assets.h"

namespace rlhf::label {

namespace {

const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const char* content_type(const std::string& name) {
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".html") == 0) return "text/html; charset=utf-8";
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".css") == 0) return "text/css; charset=utf-8";
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".js") == 0) return "text/javascript; charset=utf-8";
  return "application/octet-stream";
}

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& msg) { send_json(res, status, {{"error", msg}}); }

// The request body as JSON: 400 for anything that is not one JSON object of reasonable depth.
Json body_json(const httplib::Request& req) {
  if (req.body.empty()) throw ApiError(400, "the request has no body; send a JSON object");
  if (json_nesting_depth(req.body) > 16) throw ApiError(400, "the JSON body is nested too deeply");
  Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "the body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object, got " + json_type_name(j));
  return j;
}

}  // namespace

bool is_loopback_host(const std::string& h) {
  return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
}

struct LabelServer::Impl {
  TaskStore& store;
  ServerOptions o;
  httplib::Server svr;
  int port = 0;
  std::map<std::string, const Asset*> files;  // URL path -> file

  Impl(TaskStore& s, const ServerOptions& opts) : store(s), o(opts) {
    for (const Asset& a : assets()) files["/" + std::string(a.name)] = &a;
    if (files.count("/index.html")) files["/"] = files["/index.html"];
    if (files.count("/admin.html")) files["/admin"] = files["/admin.html"];
    routes();
  }

  // The token of `Authorization: Bearer <token>` -> who it belongs to; 401 otherwise.
  Who authenticate(const httplib::Request& req) {
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (h.empty()) throw ApiError(401, "no token: send the header \"Authorization: Bearer <your token>\"");
    if (h.rfind(prefix, 0) != 0) throw ApiError(401, "the Authorization header must be \"Bearer <token>\"");
    auto who = store.authenticate(h.substr(prefix.size()));
    if (!who) throw ApiError(401, "unknown or revoked token");
    return *who;
  }

  Who admin(const httplib::Request& req) {
    Who w = authenticate(req);
    if (!w.admin) throw ApiError(403, "this needs the admin token");
    return w;
  }

  // Runs a handler; its ApiError becomes the 4xx answer, anything else a 500 (logged) and the server goes on.
  template <class F>
  httplib::Server::Handler api(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e.status, e.what());
      } catch (const std::exception& e) {
        log_warn("label server: ", req.method, " ", req.path, ": ", e.what());
        send_error(res, 500, std::string("server error: ") + e.what());
      }
    };
  }

  void routes() {
    svr.Get("/api/task", api([this](const httplib::Request& q, httplib::Response& r) {
      send_json(r, 200, store.task_info(authenticate(q)));
    }));
    svr.Get("/api/next", api([this](const httplib::Request& q, httplib::Response& r) {
      auto j = store.next(authenticate(q));
      if (j) send_json(r, 200, *j);
      else r.status = 204;
    }));
    svr.Get(R"(/api/items/([^/]+))", api([this](const httplib::Request& q, httplib::Response& r) {
      send_json(r, 200, store.item(authenticate(q), q.matches[1]));
    }));
    svr.Get("/api/history", api([this](const httplib::Request& q, httplib::Response& r) {
      send_json(r, 200, store.history(authenticate(q)));
    }));
    svr.Get("/api/progress", api([this](const httplib::Request& q, httplib::Response& r) {
      send_json(r, 200, store.progress(authenticate(q)));
    }));
    svr.Post("/api/labels", api([this](const httplib::Request& q, httplib::Response& r) {
      Who w = authenticate(q);
      send_json(r, 200, store.submit(w, body_json(q)));
    }));
    svr.Post("/api/skip", api([this](const httplib::Request& q, httplib::Response& r) {
      Who w = authenticate(q);
      send_json(r, 200, store.skip(w, body_json(q)));
    }));
    svr.Post("/api/draft", api([this](const httplib::Request& q, httplib::Response& r) {
      Who w = authenticate(q);
      send_json(r, 200, store.save_draft(w, body_json(q)));
    }));
    svr.Get("/api/admin/status", api([this](const httplib::Request& q, httplib::Response& r) {
      admin(q);
      send_json(r, 200, store.status());
    }));
    svr.Get("/api/admin/raters", api([this](const httplib::Request& q, httplib::Response& r) {
      admin(q);
      send_json(r, 200, {{"raters", store.raters()}});
    }));
    // The app: exact paths only (nothing is read from disk, so no path can reach a file).
    svr.Get(R"(/[A-Za-z0-9_.\-]*)", [this](const httplib::Request& q, httplib::Response& r) {
      auto it = files.find(q.path);
      if (it == files.end()) return send_error(r, 404, "no such page: " + q.path.substr(0, 80));
      r.set_content(it->second->data, it->second->size, content_type(it->second->name));
      r.set_header("Cache-Control", "no-cache");
    });
    // Whatever matched no route, or failed before a handler (a body over the limit: 413), gets a JSON error.
    svr.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return;
      const char* what = r.status == 413 ? "the request body is too large (at most 1 MiB)"
                         : r.status == 404 ? "no such endpoint"
                         : r.status == 400 ? "malformed request"
                                           : "request refused";
      send_error(r, r.status, std::string(what) + ": " + q.method + " " + q.path.substr(0, 80));
    });
    svr.set_exception_handler([](const httplib::Request& q, httplib::Response& r, std::exception_ptr) {
      send_error(r, 500, "server error");
    });
    svr.set_post_routing_handler([](const httplib::Request& q, httplib::Response& r) {
      r.set_header("Content-Security-Policy", kCsp);
      r.set_header("X-Content-Type-Options", "nosniff");
      r.set_header("X-Frame-Options", "DENY");
      r.set_header("Referrer-Policy", "no-referrer");
      if (q.path.rfind("/api/", 0) == 0) r.set_header("Cache-Control", "no-store");
    });
    svr.set_payload_max_length(o.max_body);
    svr.set_read_timeout(10, 0);
    svr.set_write_timeout(10, 0);
    svr.set_keep_alive_timeout(10);
    svr.set_tcp_nodelay(true);  // small JSON answers: no Nagle wait for the peer's delayed ACK (40 ms)
    svr.set_keep_alive_max_count(100000);
    const int n = o.threads;
    svr.new_task_queue = [n] { return new httplib::ThreadPool(size_t(n)); };
  }
};

LabelServer::LabelServer(TaskStore& store, const ServerOptions& opts) : impl_(std::make_unique<Impl>(store, opts)) {
  RLHF_CHECK(opts.port >= 0 && opts.port <= 65535, "--port ", opts.port, " is not a TCP port (0-65535)");
  RLHF_CHECK(opts.threads >= 2 && opts.threads <= 1024, "--threads-http ", opts.threads, " must be from 2 to 1024");
}

LabelServer::~LabelServer() { stop(); }

int LabelServer::bind() {
  auto& I = *impl_;
  if (I.o.port == 0) {
    I.port = I.svr.bind_to_any_port(I.o.host);
    RLHF_CHECK(I.port > 0, "cannot listen on ", I.o.host, ": is it an address of this machine?");
  } else {
    RLHF_CHECK(I.svr.bind_to_port(I.o.host, I.o.port), "cannot listen on ", I.o.host, ":", I.o.port,
               " (in use by another program, or not an address of this machine); choose another --port");
    I.port = I.o.port;
  }
  return I.port;
}

void LabelServer::serve() { impl_->svr.listen_after_bind(); }

void LabelServer::stop() {
  if (impl_->svr.is_running()) impl_->svr.stop();
}

std::string LabelServer::base_url() const {
  const std::string& h = impl_->o.host;
  std::string host = h == "0.0.0.0" || h.empty() ? "127.0.0.1" : h.find(':') != std::string::npos && h[0] != '[' ? "[" + h + "]" : h;
  return "http://" + host + ":" + std::to_string(impl_->port);
}

}  // namespace rlhf::label
