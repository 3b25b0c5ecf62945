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
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

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

// j.dump(2) with `"key": "hex"` as the first member of the object j[object]. nlohmann's dump
// escapes a string byte by byte: for an attestation response's hex (2-3 KB) that was ~15 us per
// answer, ~3% of a node's CPU at 3,500 answers/s, and hex needs no escaping. The text is the
// dump of j with that member set whenever `key` sorts before the object's other keys (nlohmann
// orders keys). j[object] must be a non-empty object; `hex` must be hex digits (kBadValue).
Result<std::string> dump_with_hex(const nlohmann::json& j, const std::string& object,
                                  const std::string& key, std::string_view hex);

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
