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
  // Starts the transport and its io thread; false (and no transport) when it cannot listen.
  bool try_start(TransportConfig cfg) {
    t = std::make_unique<Transport>(io, cfg, key, [this](uint32_t from, Channel ch, Bytes b) {
      std::lock_guard lk(got.mu);
      got.frames.emplace_back(from, ch, std::move(b));
      got.cv.notify_all();
    });
    if (!t->start().ok()) {
      t.reset();
      return false;
    }
    work.emplace(io.get_executor());
    thread = std::thread([this] { io.run(); });
    return true;
  }
  void start(TransportConfig cfg) { ASSERT_TRUE(try_start(std::move(cfg))); }
  uint16_t port() const { return t->listen_port(); }
  PeerAddress address(uint32_t id) const { return {id, key.public_key(), "127.0.0.1", port()}; }
  void stop() {
    if (!t) return;
    t->stop();
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
    t.reset();
    io.restart();
  }
  ~Node() { stop(); }
};

// A port nothing listens on (for a peer that never comes up).
uint16_t unused_port() {
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

// Starts A (id 0) and B (id 1) on ports the kernel picks when they bind, so no other process
// can take a port between choosing it and listening on it, then pins each as the other's peer:
// B from its config at start, A through set_peers.
void start_pair(Node& a, Node& b, TransportConfig ca = config(0, 0, {}),
                TransportConfig cb = config(1, 0, {})) {
  a.start(ca);
  ASSERT_TRUE(a.t);
  cb.peers = {a.address(0)};
  b.start(cb);
  ASSERT_TRUE(b.t);
  a.t->set_peers({b.address(1)});
}

}  // namespace

TEST(Transport, PinnedPeersExchangeFramesInOrderAndBulkIsReassembled) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  start_pair(a, b);
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

// The receiver parses frames out of one buffer filled by whatever each read returns: a frame
// larger than a read (here 300 KB, with reads of at most 64 KB and TLS records of 16 KB) is
// assembled across reads, and many small frames that arrive in one read all come out, in order.
TEST(Transport, AFrameLargerThanAReadAndManySmallOnesInOneReadAllArrive) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  start_pair(a, b);
  Bytes big(300000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13 + 1);
  for (uint32_t i = 0; i < 400; ++i) {
    if (i == 200) a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(big));
    a.t->send(
        1, Channel::kConsensus,
        std::make_shared<Bytes>(Bytes{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)}));
  }
  ASSERT_TRUE(b.got.wait_for(401));
  std::lock_guard lk(b.got.mu);
  uint32_t next = 0;
  for (auto& [from, ch, bytes] : b.got.frames) {
    if (bytes.size() == big.size()) {
      EXPECT_EQ(bytes, big);
      EXPECT_EQ(next, 200u) << "the big frame keeps its place in the order";
      continue;
    }
    ASSERT_EQ(bytes.size(), 2u);
    EXPECT_EQ(bytes[0] | (bytes[1] << 8), static_cast<int>(next));
    ++next;
  }
  EXPECT_EQ(next, 400u);
}

TEST(Transport, AnUnpinnedKeyIsRefusedAtTheHandshake) {
  crypto::init();
  Node a("transport-a"), b("transport-b"), mallory("transport-mallory");
  a.start(config(0, 0, {{1, b.key.public_key(), "127.0.0.1", unused_port()}}));
  // Mallory claims to be node 1 to A, but holds another key.
  mallory.start(config(1, 0, {a.address(0)}));
  mallory.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1, 2, 3}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(a.got.wait_for(1, 200));
  EXPECT_GT(a.t->stats().handshake_failures.load() + mallory.t->stats().handshake_failures.load(),
            0u);
}

TEST(Transport, ReconnectsAfterThePeerRestarts) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  start_pair(a, b);
  a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1}));
  ASSERT_TRUE(b.got.wait_for(1));
  // B comes back on the same port; another process may hold it for a moment after the close.
  auto cb = config(1, b.port(), {a.address(0)});
  b.stop();
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = b.try_start(cb);
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << "B could not listen on its port again";
  // Frames sent while B restarts may be lost with the old connection; later ones arrive.
  for (int i = 0; i < 100 && !b.got.wait_for(2, 50); ++i)
    a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes{2}));
  EXPECT_TRUE(b.got.wait_for(2));
}

// A node admitted at runtime is pinned and dialled; a rotated key replaces the old pin.
TEST(Transport, SetPeersAdmitsANewKeyAndRetiresARotatedOne) {
  crypto::init();
  Node a("transport-a"), c("transport-c"), c2("transport-c-rotated");
  a.start(config(0, 0, {}));
  c.start(config(2, 0, {a.address(0)}));
  // C is not pinned at A yet: its frames are refused at the handshake.
  c.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1}));
  EXPECT_FALSE(a.got.wait_for(1, 500));
  a.t->set_peers({c.address(2)});
  // After admission C's (retried) connection is accepted, and A dials C.
  for (int i = 0; i < 100 && !a.got.wait_for(1, 50); ++i)
    c.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{1}));
  ASSERT_TRUE(a.got.wait_for(1));
  {
    std::lock_guard lk(a.got.mu);
    EXPECT_EQ(std::get<0>(a.got.frames.front()), 2u);
  }
  a.t->send(2, Channel::kConsensus, std::make_shared<Bytes>(Bytes{9}));
  ASSERT_TRUE(c.got.wait_for(1));

  // C rotates its key: peer 2 is now C2 at another port. C's connection is closed and its
  // frames no longer arrive; C2's do, and A's frames for peer 2 go to C2.
  c2.start(config(2, 0, {a.address(0)}));
  a.t->set_peers({c2.address(2)});
  for (int i = 0; i < 100 && !c2.got.wait_for(1, 50); ++i)
    a.t->send(2, Channel::kConsensus, std::make_shared<Bytes>(Bytes{7}));
  ASSERT_TRUE(c2.got.wait_for(1));
  size_t before;
  {
    std::lock_guard lk(a.got.mu);
    before = a.got.frames.size();
  }
  for (int i = 0; i < 100 && !a.got.wait_for(before + 1, 50); ++i)
    c2.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{5}));
  ASSERT_TRUE(a.got.wait_for(before + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard lk(a.got.mu);
    before = a.got.frames.size();
  }
  c.t->send(0, Channel::kConsensus, std::make_shared<Bytes>(Bytes{6}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::lock_guard lk(a.got.mu);
  for (size_t i = before; i < a.got.frames.size(); ++i)
    EXPECT_NE(std::get<2>(a.got.frames[i]), (Bytes{6})) << "a retired key's frame arrived";
  // Dropping every peer closes the rest.
  a.t->set_peers({});
  EXPECT_TRUE(a.t->connected_peers().empty());
}

TEST(Transport, OversizeFrameDropsThePeerConnection) {
  crypto::init();
  Node a("transport-a"), b("transport-b");
  auto cb = config(1, 0, {});
  cb.max_frame = 100;
  start_pair(a, b, config(0, 0, {}), cb);
  a.t->send(1, Channel::kConsensus, std::make_shared<Bytes>(Bytes(500)));
  for (int i = 0; i < 200 && b.t->stats().bad_frames.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(b.t->stats().bad_frames.load(), 1u);
  EXPECT_FALSE(b.got.wait_for(1, 100));
}
