// A small blocking HTTP/1.1 client (Boost.Beast) for the CLI: the VM agent, devnet status and
// the load generator. One request per call, a deadline for the whole exchange.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

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

}  // namespace attestnet::api
