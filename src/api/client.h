// A small blocking HTTP/1.1 client (Boost.Beast) for the CLI: the VM agent, devnet status and
// the load generator. One request per call, a deadline for the whole exchange.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <memory>
#include <string>

#include "core/result.h"

namespace attestnet::api {

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string base;  // path prefix, usually empty
};
// http://host:port[/prefix]; https is refused with a reason (not supported yet).
Result<Url> parse_url(const std::string& s);

struct HttpResult {
  unsigned status = 0;
  std::string body;
};
Result<HttpResult> http_call(const Url& url, const std::string& method, const std::string& target,
                             const std::string& body = "",
                             const std::string& content_type = "application/json",
                             uint64_t timeout_ms = 10000);

// A keep-alive connection for many calls to one server (the load generator): reconnects once
// when the server closed it. Not thread-safe: one per client thread.
class HttpSession {
 public:
  explicit HttpSession(Url url);
  ~HttpSession();
  Result<HttpResult> call(const std::string& method, const std::string& target,
                          const std::string& body = "",
                          const std::string& content_type = "application/json",
                          uint64_t timeout_ms = 10000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attestnet::api
