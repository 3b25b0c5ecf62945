#include "net/transport.h"

#include <boost/asio/ssl.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "core/codec.h"
#include "net/listen.h"
#include "net/tls.h"

namespace attestnet::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;
constexpr uint8_t kMore = 0x80;

struct OutFrame {
  std::array<uint8_t, 5> header{};
  std::shared_ptr<const Bytes> payload;
  size_t offset = 0, len = 0;
};

OutFrame make_frame(uint8_t channel, std::shared_ptr<const Bytes> p, size_t off, size_t len) {
  OutFrame f;
  uint32_t l = static_cast<uint32_t>(len);
  for (int i = 0; i < 4; ++i) f.header[i] = static_cast<uint8_t>(l >> (8 * i));
  f.header[4] = channel;
  f.payload = std::move(p);
  f.offset = off;
  f.len = len;
  return f;
}

}  // namespace

// One outbound connection: dial, handshake, write frames; on any error close and dial again.
class Outbound : public std::enable_shared_from_this<Outbound> {
 public:
  Outbound(asio::io_context& io, const TransportConfig& cfg, PeerAddress peer,
           std::shared_ptr<asio::ssl::context> ctx, std::shared_ptr<TransportStats> stats)
      : strand_(asio::make_strand(io)),
        cfg_(cfg),
        peer_(std::move(peer)),
        ctx_(std::move(ctx)),
        stats_(std::move(stats)),
        timer_(strand_),
        resolver_(strand_),
        backoff_ms_(cfg.backoff_min_ms) {}

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->dial(); });
  }
  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->stopped_ = true;
      self->timer_.cancel();
      self->close();
      self->stats_->queued_bytes -= static_cast<int64_t>(self->queued_);
      self->queued_ = 0;
      self->high_.clear();
      self->low_.clear();
    });
  }
  void enqueue(Channel ch, std::shared_ptr<const Bytes> p) {
    asio::post(strand_, [self = shared_from_this(), ch, p = std::move(p)]() mutable {
      self->push(ch, std::move(p));
    });
  }
  bool up() const { return up_.load(); }

 private:
  void push(Channel ch, std::shared_ptr<const Bytes> p) {
    if (stopped_) return;
    if (queued_ + p->size() > cfg_.max_queue_bytes) {
      ++stats_->dropped_queue_full;
      return;
    }
    queued_ += p->size();
    stats_->queued_bytes += static_cast<int64_t>(p->size());
    if (ch == Channel::kBulk) {
      size_t n = p->size(), off = 0;
      do {
        size_t len = std::min(cfg_.chunk_bytes, n - off);
        bool last = off + len == n;
        low_.push_back(make_frame(static_cast<uint8_t>(ch) | (last ? 0 : kMore), p, off, len));
        off += len;
      } while (off < n);
    } else {
      size_t len = p->size();
      high_.push_back(make_frame(static_cast<uint8_t>(ch), std::move(p), 0, len));
    }
    write_next();
  }

  void dial() {
    if (stopped_) return;
    resolver_.async_resolve(
        peer_.host, std::to_string(peer_.port),
        [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
          if (ec) return self->retry();
          self->stream_ = std::make_unique<SslStream>(self->strand_, *self->ctx_);
          ++self->gen_;
          asio::async_connect(
              self->stream_->lowest_layer(), r,
              [self](boost::system::error_code ec, const tcp::endpoint&) {
                if (ec) return self->retry();
                auto& sock = self->stream_->lowest_layer();
                // Dialling a local port nobody listens on can connect the socket
                // to itself (TCP simultaneous open), which would hold the port
                // the peer needs to listen on again: close it and retry.
                boost::system::error_code le, re;
                if (sock.local_endpoint(le) == sock.remote_endpoint(re) && !le && !re) {
                  self->close();
                  return self->retry();
                }
                sock.set_option(tcp::no_delay(true));
                self->handshake();
              });
        });
  }
  void handshake() {
    timer_.expires_after(std::chrono::milliseconds(cfg_.handshake_timeout_ms));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->up_) self->close();
    });
    stream_->async_handshake(asio::ssl::stream_base::client,
                             [self = shared_from_this()](boost::system::error_code ec) {
                               self->timer_.cancel();
                               if (ec) {
                                 ++self->stats_->handshake_failures;
                                 return self->retry();
                               }
                               self->up_ = true;
                               self->writing_ = false;  // a write of the old connection is void
                               ++self->stats_->connects;
                               ++self->stats_->outbound_up;
                               self->backoff_ms_ = self->cfg_.backoff_min_ms;
                               self->watch();
                               self->write_next();
                             });
  }
  // The receiver never writes on this connection: a completed read means it closed.
  void watch() {
    stream_->async_read_some(asio::buffer(sink_), [self = shared_from_this(), gen = gen_](
                                                      boost::system::error_code, size_t) {
      if (gen == self->gen_) self->fail();  // not a completion of an older connection
    });
  }
  // One write carries every consensus frame waiting (up to kCoalesceBytes) and then at most one
  // bulk chunk, copied into one buffer: one TLS record stream and one syscall instead of two
  // per frame (header and payload). Consensus frames still go first; a bulk chunk is bounded by
  // chunk_bytes, so it never holds consensus back by more than one chunk.
  static constexpr size_t kCoalesceBytes = 64u << 10;
  struct WriteBatch {
    Bytes buf;
    std::vector<OutFrame> frames;
    void add(OutFrame f) {
      buf.insert(buf.end(), f.header.begin(), f.header.end());
      buf.insert(buf.end(), f.payload->data() + f.offset, f.payload->data() + f.offset + f.len);
      frames.push_back(std::move(f));
    }
  };
  void write_next() {
    if (!up_ || writing_ || stopped_) return;
    if (high_.empty() && low_.empty()) return;
    writing_ = true;
    auto batch = std::make_shared<WriteBatch>();
    while (!high_.empty() &&
           (batch->frames.empty() || batch->buf.size() + 5 + high_.front().len <= kCoalesceBytes)) {
      batch->add(std::move(high_.front()));
      high_.pop_front();
    }
    if (!low_.empty() && batch->buf.size() < kCoalesceBytes) {
      batch->add(std::move(low_.front()));
      low_.pop_front();
    }
    asio::async_write(
        *stream_, asio::buffer(batch->buf),
        [self = shared_from_this(), batch, gen = gen_](boost::system::error_code ec, size_t n) {
          for (const auto& f : batch->frames) self->release(f);
          if (gen != self->gen_) return;  // an older connection's write
          self->writing_ = false;
          // On an error the frames are lost with the connection; consensus retransmits.
          if (ec) return self->fail();
          self->stats_->frames_out += batch->frames.size();
          self->stats_->bytes_out += n;
          self->write_next();
        });
  }
  void release(const OutFrame& f) {
    // A message's bytes count against the queue until its last frame is written.
    if ((f.header[4] & kMore) == 0) {
      size_t total = f.payload->size();
      queued_ -= std::min(queued_, total);
      stats_->queued_bytes -= static_cast<int64_t>(total);
    }
  }
  void fail() {
    if (up_) --stats_->outbound_up;
    up_ = false;
    close();
    retry();
  }
  void retry() {
    if (stopped_) return;
    up_ = false;
    timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_ms_ = std::min(cfg_.backoff_max_ms, backoff_ms_ * 2);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->dial();
    });
  }
  void close() {
    if (stream_) {
      boost::system::error_code ec;
      stream_->lowest_layer().close(ec);
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  TransportConfig cfg_;
  PeerAddress peer_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::shared_ptr<TransportStats> stats_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  std::unique_ptr<SslStream> stream_;
  std::deque<OutFrame> high_, low_;
  size_t queued_ = 0;
  uint64_t backoff_ms_;
  uint64_t gen_ = 0;  // connection generation: completions of a closed connection are ignored
  bool writing_ = false, stopped_ = false;
  std::atomic<bool> up_{false};
  std::array<uint8_t, 16> sink_{};
};

// One inbound connection: handshake (the peer must present a pinned key), then read frames.
class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  using LookupFn = std::function<std::optional<uint32_t>(const crypto::PublicKey&)>;
  Inbound(tcp::socket sock, asio::ssl::context& ctx, const TransportConfig& cfg,
          std::shared_ptr<TransportStats> stats, LookupFn lookup, FrameFn fn,
          std::function<void()> on_close)
      : stream_(std::move(sock), ctx),
        timer_(stream_.get_executor()),
        cfg_(cfg),
        stats_(std::move(stats)),
        lookup_(std::move(lookup)),
        fn_(std::move(fn)),
        on_close_(std::move(on_close)) {}
  ~Inbound() { on_close_(); }

  void start() {
    timer_.expires_after(std::chrono::milliseconds(cfg_.handshake_timeout_ms));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->up_) self->close();
    });
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](boost::system::error_code ec) {
                              self->timer_.cancel();
                              if (ec) {
                                ++self->stats_->handshake_failures;
                                return self->close();
                              }
                              auto k = peer_key(self->stream_.native_handle());
                              auto id = k ? self->lookup_(*k) : std::nullopt;
                              if (!id) {
                                ++self->stats_->handshake_failures;
                                return self->close();
                              }
                              self->key_ = *k;
                              self->from_ = *id;
                              self->up_ = true;
                              ++self->stats_->inbound_up;
                              self->read_header();
                            });
  }
  void close() {
    boost::system::error_code ec;
    stream_.lowest_layer().close(ec);
  }
  // Run on executor() only (the connection's strand): an authenticated connection whose key
  // is no longer this peer's (after a rotation or removal) is closed.
  void close_if_unpinned() {
    if (!up_) return;  // still handshaking: the pin check of the handshake decides
    auto id = lookup_(key_);
    if (!id || *id != from_) close();
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void read_header() {
    asio::async_read(stream_, asio::buffer(header_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) return self->down();
                       uint32_t len = 0;
                       for (int i = 0; i < 4; ++i) len |= uint32_t(self->header_[i]) << (8 * i);
                       uint8_t ch = self->header_[4] & ~kMore;
                       bool more = self->header_[4] & kMore;
                       bool ok = ch >= 1 && ch <= 4 && (!more || ch == 3) &&
                                 len <= self->cfg_.max_frame &&
                                 self->partial_.size() + len <= self->cfg_.max_frame;
                       if (!ok) {  // a peer that breaks framing is dropped; it reconnects
                         ++self->stats_->bad_frames;
                         return self->down();
                       }
                       self->body_.resize(len);
                       self->read_body();
                     });
  }
  void read_body() {
    asio::async_read(stream_, asio::buffer(body_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                       if (ec) return self->down();
                       self->stats_->bytes_in += n + 5;
                       uint8_t ch = self->header_[4] & ~kMore;
                       if (self->header_[4] & kMore) {
                         self->partial_.insert(self->partial_.end(), self->body_.begin(),
                                               self->body_.end());
                       } else {
                         ++self->stats_->frames_in;
                         Bytes payload;
                         if (!self->partial_.empty()) {
                           payload = std::move(self->partial_);
                           self->partial_.clear();
                           payload.insert(payload.end(), self->body_.begin(), self->body_.end());
                         } else {
                           payload = std::move(self->body_);
                         }
                         self->body_.clear();
                         self->fn_(self->from_, static_cast<Channel>(ch), std::move(payload));
                       }
                       self->read_header();
                     });
  }
  void down() {
    if (up_) --stats_->inbound_up;
    up_ = false;
    close();
  }

  SslStream stream_;
  asio::steady_timer timer_;
  const TransportConfig& cfg_;
  std::shared_ptr<TransportStats> stats_;
  LookupFn lookup_;
  FrameFn fn_;
  std::function<void()> on_close_;
  std::array<uint8_t, 5> header_{};
  Bytes body_, partial_;
  crypto::PublicKey key_{};
  uint32_t from_ = 0;
  bool up_ = false;
};

struct Transport::Impl : std::enable_shared_from_this<Transport::Impl> {
  asio::io_context& io;
  TransportConfig cfg;
  crypto::SecretKey key;
  FrameFn fn;
  std::shared_ptr<TransportStats> stats;
  std::shared_ptr<asio::ssl::context> server_ctx;
  // The peer set (set_peers replaces it): pinned keys, and one outbound connection per peer.
  mutable std::mutex peers_mu;
  std::map<crypto::PublicKey, uint32_t> ids;
  std::map<uint32_t, PeerAddress> addrs;
  std::map<uint32_t, std::shared_ptr<Outbound>> out;
  bool running = false;
  tcp::acceptor acceptor;
  std::atomic<size_t> inbound{0};
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<Inbound>> sessions;
  std::atomic<bool> stopped{false};

  Impl(asio::io_context& i, TransportConfig c, crypto::SecretKey k, FrameFn f,
       std::shared_ptr<TransportStats> s)
      : io(i),
        cfg(std::move(c)),
        key(std::move(k)),
        fn(std::move(f)),
        stats(std::move(s)),
        acceptor(asio::make_strand(i)) {}

  std::optional<uint32_t> lookup(const crypto::PublicKey& k) const {
    std::lock_guard lk(peers_mu);
    auto it = ids.find(k);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  std::shared_ptr<Outbound> outbound(uint32_t id) const {
    std::lock_guard lk(peers_mu);
    auto it = out.find(id);
    return it == out.end() ? nullptr : it->second;
  }
  std::vector<std::pair<uint32_t, std::shared_ptr<Outbound>>> outbounds() const {
    std::lock_guard lk(peers_mu);
    return {out.begin(), out.end()};
  }
  Status make_outbound(const PeerAddress& p) {  // peers_mu held
    crypto::PublicKey want = p.key;
    auto client =
        make_tls_context(key, false, [want](const crypto::PublicKey& k) { return k == want; });
    if (!client.ok()) return client.error();
    auto o = std::make_shared<Outbound>(io, cfg, p, std::move(client).value(), stats);
    out[p.id] = o;
    addrs[p.id] = p;
    if (running) o->start();
    return {};
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](
                                                     boost::system::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec != asio::error::operation_aborted && !self->stopped) self->accept();
        return;
      }
      if (self->inbound.load() >= self->cfg.max_inbound) {
        ++self->stats->refused_connections;
        boost::system::error_code ignored;
        s.close(ignored);
      } else {
        ++self->inbound;
        s.set_option(tcp::no_delay(true));
        std::weak_ptr<Impl> weak = self;
        auto lookup = [weak](const crypto::PublicKey& k) -> std::optional<uint32_t> {
          auto impl = weak.lock();
          return impl ? impl->lookup(k) : std::nullopt;
        };
        auto sess =
            std::make_shared<Inbound>(std::move(s), *self->server_ctx, self->cfg, self->stats,
                                      lookup, self->fn, [self] { --self->inbound; });
        {
          std::lock_guard lk(self->sessions_mu);
          std::erase_if(self->sessions, [](const auto& w) { return w.expired(); });
          self->sessions.push_back(sess);
        }
        sess->start();
      }
      self->accept();
    });
  }
};

Transport::Transport(asio::io_context& io, TransportConfig cfg, crypto::SecretKey key, FrameFn fn)
    : stats_(std::make_shared<TransportStats>()) {
  impl_ = std::make_shared<Impl>(io, std::move(cfg), std::move(key), std::move(fn), stats_);
}

Transport::~Transport() {
  stop();
}

Status Transport::start() {
  Impl& m = *impl_;
  Impl* mp = impl_.get();
  auto server = make_tls_context(
      m.key, true, [mp](const crypto::PublicKey& k) { return mp->lookup(k).has_value(); });
  if (!server.ok()) return server.error();
  m.server_ctx = std::move(server).value();
  {
    std::lock_guard lk(m.peers_mu);
    for (const auto& p : m.cfg.peers) {
      m.ids[p.key] = p.id;
      ATN_CHECK(m.make_outbound(p));
    }
  }
  ATN_CHECK(listen_on(m.acceptor, m.cfg.listen_host, m.cfg.listen_port, "peers"));
  port_ = m.acceptor.local_endpoint().port();
  m.accept();
  std::lock_guard lk(m.peers_mu);
  m.running = true;
  for (auto& [id, o] : m.out) o->start();
  return {};
}

void Transport::set_peers(std::vector<PeerAddress> peers) {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<Outbound>> stopped;
  {
    std::lock_guard lk(m.peers_mu);
    if (m.stopped) return;
    std::map<uint32_t, PeerAddress> want;
    for (auto& p : peers) want[p.id] = std::move(p);
    for (auto it = m.addrs.begin(); it != m.addrs.end();) {
      auto w = want.find(it->first);
      bool same = w != want.end() && w->second.key == it->second.key &&
                  w->second.host == it->second.host && w->second.port == it->second.port;
      if (same) {
        ++it;
        continue;
      }
      stopped.push_back(m.out[it->first]);
      m.out.erase(it->first);
      it = m.addrs.erase(it);
    }
    m.ids.clear();
    for (const auto& [id, p] : want) {
      m.ids[p.key] = id;
      if (!m.addrs.count(id)) (void)m.make_outbound(p);
    }
  }
  for (auto& o : stopped) o->stop();
  // Inbound connections authenticated as a key that is no longer this peer's are closed.
  std::lock_guard lk(m.sessions_mu);
  for (auto& w : m.sessions)
    if (auto s = w.lock()) asio::post(s->executor(), [s] { s->close_if_unpinned(); });
}

void Transport::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  for (auto& [id, o] : impl_->outbounds()) o->stop();
  std::lock_guard lk(impl_->sessions_mu);
  for (auto& w : impl_->sessions)
    if (auto s = w.lock()) asio::post(s->executor(), [s] { s->close(); });
}

void Transport::send(uint32_t to, Channel ch, std::shared_ptr<const Bytes> payload) {
  if (auto o = impl_->outbound(to)) o->enqueue(ch, std::move(payload));
}

void Transport::broadcast(Channel ch, const std::shared_ptr<const Bytes>& payload) {
  for (auto& [id, o] : impl_->outbounds()) o->enqueue(ch, payload);
}

std::vector<uint32_t> Transport::connected_peers() const {
  std::vector<uint32_t> v;
  for (const auto& [id, o] : impl_->outbounds())
    if (o->up()) v.push_back(id);
  return v;
}

}  // namespace attestnet::net
