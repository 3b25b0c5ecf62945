#include "api/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace attestnet::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<Url> parse_url(const std::string& s) {
  std::string rest;
  if (s.rfind("http://", 0) == 0) {
    rest = s.substr(7);
  } else if (s.rfind("https://", 0) == 0) {
    return make_error(Errc::kUnsupported,
                      "https:// is not supported by this client yet: put the node's API behind "
                      "127.0.0.1 or a TLS-terminating proxy and use http://");
  } else {
    rest = s;
  }
  Url u;
  auto slash = rest.find('/');
  std::string hp = rest.substr(0, slash);
  if (slash != std::string::npos) u.base = rest.substr(slash);
  while (!u.base.empty() && u.base.back() == '/') u.base.pop_back();
  auto colon = hp.rfind(':');
  u.host = hp.substr(0, colon);
  if (colon != std::string::npos) {
    try {
      unsigned long p = std::stoul(hp.substr(colon + 1));
      if (p == 0 || p > 65535) throw std::out_of_range("port");
      u.port = static_cast<uint16_t>(p);
    } catch (const std::exception&) {
      return make_error(Errc::kInvalidArgument, "\"" + s + "\": bad port");
    }
  }
  if (u.host.empty()) return make_error(Errc::kInvalidArgument, "\"" + s + "\": no host");
  return u;
}

Result<HttpResult> http_call(const Url& url, const std::string& method, const std::string& target,
                             const std::string& body, const std::string& content_type,
                             uint64_t timeout_ms) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  http::request<http::string_body> req{http::string_to_verb(method), url.base + target, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "attestnet");
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
  }
  http::response<http::string_body> res;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  beast::flat_buffer buf;
  beast::error_code err;
  std::string where = "connect";
  resolver.async_resolve(url.host, std::to_string(url.port), [&](beast::error_code ec, auto r) {
    if (ec) return void(err = ec);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    stream.async_connect(r, [&](beast::error_code ec, auto) {
      if (ec) return void(err = ec);
      where = "send";
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec) return void(err = ec);
        where = "receive";
        http::async_read(stream, buf, parser, [&](beast::error_code ec, size_t) {
          if (ec) err = ec;
        });
      });
    });
  });
  io.run_for(std::chrono::milliseconds(timeout_ms + 1000));
  std::string addr = url.host + ":" + std::to_string(url.port);
  if (!io.stopped())
    return make_error(Errc::kUnavailable, "no answer from " + addr + " within " +
                                              std::to_string(timeout_ms) + " ms (" + where + ")");
  if (err)
    return make_error(Errc::kUnavailable, "HTTP " + where + " to " + addr + ": " + err.message());
  res = parser.release();
  return HttpResult{static_cast<unsigned>(res.result_int()), std::move(res.body())};
}

struct HttpSession::Impl {
  Url url;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buf;

  Result<HttpResult> once(const std::string& method, const std::string& target,
                          const std::string& body, const std::string& content_type,
                          uint64_t timeout_ms) {
    io.restart();
    beast::error_code err;
    std::string where = "connect";
    http::request<http::string_body> req{http::string_to_verb(method), url.base + target, 11};
    req.set(http::field::host, url.host);
    req.keep_alive(true);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    bool done = false;
    auto exchange = [&] {
      where = "send";
      stream->expires_after(std::chrono::milliseconds(timeout_ms));
      http::async_write(*stream, req, [&](beast::error_code ec, size_t) {
        if (ec) return void(err = ec);
        where = "receive";
        http::async_read(*stream, buf, parser, [&](beast::error_code ec, size_t) {
          if (ec) err = ec;
          done = !ec;
        });
      });
    };
    if (!stream) {
      stream.emplace(io);
      tcp::resolver resolver(io);
      boost::system::error_code ec;
      auto eps = resolver.resolve(url.host, std::to_string(url.port), ec);
      if (ec) return make_error(Errc::kUnavailable, "cannot resolve " + url.host);
      stream->expires_after(std::chrono::milliseconds(timeout_ms));
      stream->async_connect(eps, [&](beast::error_code ec, auto) {
        if (ec) return void(err = ec);
        exchange();
      });
    } else {
      exchange();
    }
    io.run_for(std::chrono::milliseconds(timeout_ms + 1000));
    if (!done) {
      stream.reset();
      buf.clear();
      return make_error(Errc::kUnavailable, "HTTP " + where + " to " + url.host + ":" +
                                                std::to_string(url.port) + ": " +
                                                (err ? err.message() : std::string("timeout")));
    }
    auto res = parser.release();
    if (!res.keep_alive()) stream.reset();
    return HttpResult{static_cast<unsigned>(res.result_int()), std::move(res.body())};
  }
};

HttpSession::HttpSession(Url url) : impl_(std::make_unique<Impl>()) {
  impl_->url = std::move(url);
}
HttpSession::~HttpSession() = default;

Result<HttpResult> HttpSession::call(const std::string& method, const std::string& target,
                                     const std::string& body, const std::string& content_type,
                                     uint64_t timeout_ms) {
  bool reused = impl_->stream.has_value();
  auto r = impl_->once(method, target, body, content_type, timeout_ms);
  // A kept-alive connection the server closed meanwhile: one fresh attempt.
  if (!r.ok() && reused) r = impl_->once(method, target, body, content_type, timeout_ms);
  return r;
}

}  // namespace attestnet::api
