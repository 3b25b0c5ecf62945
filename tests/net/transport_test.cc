// The peer transport over real TLS sockets on 127.0.0.1: pinned keys, frames in order,
// chunked bulk payloads, a peer with an unknown key refused, reconnect after a restart.
#include "net/transport.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

using namespace attestnet;
using namespace attestnet::net;
namespace asio = boost::asio;

namespace {

struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::tuple<uint32_t, Channel, Bytes>> frames;
  bool wait_for(size_t n, int ms = 10000) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return frames.size() >= n; });
  }
};

struct Node {
  crypto::SecretKey key;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::unique_ptr<Transport> t;
  Received got;
  explicit Node(const std::string& label)
      : key(crypto::SecretKey::from_seed(crypto::test_seed(label))) {}
  void start(TransportConfig cfg) {
    t = std::make_unique<Transport>(io, cfg, key, [this](uint32_t from, Channel ch, Bytes b) {
      std::lock_guard lk(got.mu);
      got.frames.emplace_back(from, ch, std::move(b));
      got.cv.notify_all();
    });
    ASSERT_TRUE(t->start().ok());
    work.emplace(io.get_executor());
    thread = std::thread([this] { io.run(); });
  }
  void stop() {
    if (!t) return;
    t->stop();
    work.reset();
    io.stop();
    thread.join();
    t.reset();
    io.restart();
  }
  ~Node() { stop(); }
};

uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

TransportConfig config(uint32_t self, uint16_t port, std::vector<PeerAddress> peers) {
  TransportConfig c;
  c.self = self;
  c.listen_port = port;
  c.peers = std::move(peers);
  c.chunk_bytes = 1000;
  return c;
}

}  // namespace

TEST(Transport, PinnedPeersExchangeFramesInOrderAndBulkIsReassembled) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  uint16_t pa = free_port(), pb = free_port();
  a.start(config(0, pa, {{1, b.key.public_key(), "127.0.0.1", pb}}));
  b.start(config(1, pb, {{0, a.key.public_key(), "127.0.0.1", pa}}));
  Bytes big(25000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  a.t->send(1, Channel::kBulk, std::make_shared<Bytes>(big));
  for (uint8_t i = 0; i < 50; ++i)
    a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes{i, i, i}));
  ASSERT_TRUE(b.got.wait_for(51));
  std::lock_guard lk(b.got.mu);
  uint8_t next = 0;
  bool bulk_seen = false;
  for (auto& [from, ch, bytes] : b.got.frames) {
    EXPECT_EQ(from, 0u);
    if (ch == Channel::kBulk) {
      EXPECT_EQ(bytes, big);
      bulk_seen = true;
    } else {
      EXPECT_EQ(bytes, (Bytes{next, next, next}));  // consensus frames keep their order
      ++next;
    }
  }
  EXPECT_TRUE(bulk_seen);
  EXPECT_EQ(next, 50);
}

TEST(Transport, AnUnpinnedKeyIsRefusedAtTheHandshake) {
  crypto::init();
  Node a("transport-a"), b("transport-b"), mallory("transport-mallory");
  uint16_t pa = free_port(), pb = free_port(), pm = free_port();
  a.start(config(0, pa, {{1, b.key.public_key(), "127.0.0.1", pb}}));
  // Mallory claims to be node 1 to A, but holds another key.
  mallory.start(config(1, pm, {{0, a.key.public_key(), "127.0.0.1", pa}}));
  mallory.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1, 2, 3}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(a.got.wait_for(1, 200));
  EXPECT_GT(a.t->stats().handshake_failures.load() + mallory.t->stats().handshake_failures.load(),
            0u);
}

TEST(Transport, ReconnectsAfterThePeerRestarts) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  uint16_t pa = free_port(), pb = free_port();
  auto ca = config(0, pa, {{1, b.key.public_key(), "127.0.0.1", pb}});
  auto cb = config(1, pb, {{0, a.key.public_key(), "127.0.0.1", pa}});
  a.start(ca);
  b.start(cb);
  a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1}));
  ASSERT_TRUE(b.got.wait_for(1));
  b.stop();
  b.start(cb);
  // Frames sent while B restarts may be lost with the old connection; later ones arrive.
  for (int i = 0; i < 100 && !b.got.wait_for(2, 50); ++i)
    a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes{2}));
  EXPECT_TRUE(b.got.wait_for(2));
}

TEST(Transport, OversizeFrameDropsThePeerConnection) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  uint16_t pa = free_port(), pb = free_port();
  auto ca = config(0, pa, {{1, b.key.public_key(), "127.0.0.1", pb}});
  auto cb = config(1, pb, {{0, a.key.public_key(), "127.0.0.1", pa}});
  cb.max_frame = 100;
  a.start(ca);
  b.start(cb);
  a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes(500)));
  for (int i = 0; i < 200 && b.t->stats().bad_frames.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(b.t->stats().bad_frames.load(), 1u);
  EXPECT_FALSE(b.got.wait_for(1, 100));
}
