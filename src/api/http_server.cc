#include "api/http_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/codec.h"
#include "net/listen.h"

namespace attestnet::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string decode_percent(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  bool allow(const std::string& who) {
    if (rate_ <= 0) return true;
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lk(mu_);
    if (buckets_.size() > 100000) buckets_.clear();  // bounded memory under address churn
    auto [it, fresh] = buckets_.try_emplace(who, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!fresh) {
      double dt = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(burst_, b.tokens + dt * rate_);
      b.last = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace

HttpReply json_error(unsigned status, const std::string& reason) {
  nlohmann::json j = {{"error", {{"status", status}, {"reason", reason}}}};
  return {status, j.dump() + "\n", "application/json"};
}

Result<std::string> dump_with_hex(const nlohmann::json& j, const std::string& object,
                                  const std::string& key, std::string_view hex) {
  if (!j.is_object() || !j.contains(object) || !j[object].is_object() || j[object].empty())
    return make_error(Errc::kBadValue, "\"" + object + "\" is not a non-empty member object");
  if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos)
    return make_error(Errc::kBadValue, "the value for \"" + key + "\" is not hex");
  std::string body = j.dump(2);
  // The object's opening line at the top level: a string's newlines and quotes are escaped in
  // the dump, so this text occurs nowhere else.
  const std::string open = "\n  " + nlohmann::json(object).dump() + ": {\n";
  size_t at = body.find(open);
  if (at == std::string::npos)
    return make_error(Errc::kBadValue, "\"" + object + "\" not found in the dump");
  std::string member = "    " + nlohmann::json(key).dump() + ": \"";
  member.append(hex).append("\",\n");
  body.insert(at + open.size(), member);
  return body;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context& io;
  HttpConfig cfg;
  Handler handler;
  std::shared_ptr<HttpStats> stats;
  RateLimiter limiter;
  tcp::acceptor acceptor;
  std::atomic<bool> stopped{false};
  Impl(asio::io_context& i, HttpConfig c, Handler h, std::shared_ptr<HttpStats> s)
      : io(i),
        cfg(std::move(c)),
        handler(std::move(h)),
        stats(std::move(s)),
        limiter(cfg.rate_per_second, cfg.rate_burst),
        acceptor(asio::make_strand(i)) {}
  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, std::shared_ptr<HttpServer::Impl> srv)
      : stream_(std::move(s)), srv_(std::move(srv)) {
    ++srv_->stats->connections;
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "?" : ep.address().to_string();
  }
  ~Session() { --srv_->stats->connections; }

  void read() {
    parser_.emplace();
    parser_->body_limit(srv_->cfg.max_body_bytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::milliseconds(srv_->cfg.idle_timeout_ms));
    http::async_read(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof)
      return close();
    if (ec == http::error::body_limit) {
      ++srv_->stats->too_large;
      return write(json_error(413, "request body exceeds the limit of " +
                                       std::to_string(srv_->cfg.max_body_bytes) + " bytes"),
                   false);
    }
    if (ec) {
      ++srv_->stats->bad_requests;
      return write(json_error(400, "malformed HTTP request: " + ec.message()), false);
    }
    ++srv_->stats->requests;
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    if (!srv_->limiter.allow(remote_)) {
      ++srv_->stats->rate_limited;
      return write(json_error(429, "rate limit: at most " +
                                       std::to_string(static_cast<int>(srv_->cfg.rate_per_second)) +
                                       " requests per second per client; retry later"),
                   keep_alive_);
    }
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string target(req.target());
    auto q = target.find('?');
    r.path = decode_percent(target.substr(0, q));
    if (q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      size_t pos = 0;
      while (pos <= qs.size()) {
        size_t amp = qs.find('&', pos);
        std::string kv = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        if (!kv.empty()) {
          auto eq = kv.find('=');
          r.query[decode_percent(kv.substr(0, eq))] =
              eq == std::string::npos ? "" : decode_percent(kv.substr(eq + 1));
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    r.body = std::move(req.body());
    r.content_type = std::string(req[http::field::content_type]);
    r.remote = remote_;
    auto self = shared_from_this();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    srv_->handler(r, [self, answered](HttpReply rep) {
      if (answered->exchange(true)) return;
      asio::post(self->stream_.get_executor(), [self, rep = std::move(rep)]() mutable {
        self->write(std::move(rep), self->keep_alive_);
      });
    });
  }

  void write(HttpReply rep, bool keep) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(rep.status), 11);
    res->set(http::field::server, "attestnet");
    res->set(http::field::content_type, rep.content_type);
    res->keep_alive(keep);
    res->body() = std::move(rep.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(srv_->cfg.idle_timeout_ms));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
                        if (ec || !keep || self->srv_->stopped) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Impl> srv_;
  std::string remote_;
  bool keep_alive_ = true;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](
                                                   boost::system::error_code ec, tcp::socket s) {
    if (ec) {
      if (!self->stopped && ec != asio::error::operation_aborted) self->accept();
      return;
    }
    if (static_cast<size_t>(self->stats->connections.load()) >= self->cfg.max_connections) {
      ++self->stats->refused_connections;
      boost::system::error_code ignored;
      s.close(ignored);
    } else {
      std::make_shared<Session>(std::move(s), self)->read();
    }
    self->accept();
  });
}

HttpServer::HttpServer(asio::io_context& io, HttpConfig cfg, Handler handler)
    : stats_(std::make_shared<HttpStats>()) {
  impl_ = std::make_shared<Impl>(io, std::move(cfg), std::move(handler), stats_);
}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::start() {
  Impl& m = *impl_;
  ATN_CHECK(net::listen_on(m.acceptor, m.cfg.host, m.cfg.port, "the API"));
  port_ = m.acceptor.local_endpoint().port();
  m.accept();
  return {};
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace attestnet::api
