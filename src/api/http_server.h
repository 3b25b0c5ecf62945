// HTTP/1.1 server on Boost.Beast for the node's JSON API (docs/api.md): keep-alive, a body-size
// limit, an idle timeout, a cap on concurrent connections, and a token-bucket rate limit per
// client address. Every refusal is JSON: {"error": {"status": N, "reason": "..."}}.
//
// Routing is the caller's Handler; it may answer later (long polls) by keeping the Reply.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <atomic>
#include <boost/asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"

namespace attestnet::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::map<std::string, std::string> query;
  std::string body;
  std::string content_type;
  std::string remote;  // client address
};

struct HttpReply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};
HttpReply json_error(unsigned status, const std::string& reason);

// Answer exactly once, from any thread.
using Reply = std::function<void(HttpReply)>;
using Handler = std::function<void(const HttpRequest&, Reply)>;

struct HttpConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  size_t max_body_bytes = 1 << 20;
  size_t max_connections = 1024;
  uint64_t idle_timeout_ms = 30000;
  double rate_per_second = 0;  // per client address; 0 = unlimited
  double rate_burst = 100;
};

struct HttpStats {
  std::atomic<uint64_t> requests{0}, rate_limited{0}, too_large{0}, bad_requests{0},
      refused_connections{0};
  std::atomic<int64_t> connections{0};
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpConfig cfg, Handler handler);
  ~HttpServer();
  Status start();
  void stop();
  uint16_t port() const { return port_; }
  const HttpStats& stats() const { return *stats_; }

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::shared_ptr<HttpStats> stats_;
  uint16_t port_ = 0;
};

}  // namespace attestnet::api
