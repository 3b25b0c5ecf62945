// Peer transport on Boost.Asio: mutual TLS 1.3 pinned to the Ed25519 keys of the registry
// (net/tls.h), length-prefixed frames with a size limit, reconnect with exponential backoff, and
// bounded per-peer send queues.
//
// Connections are one-way: node A sends to B on the connection A dialled, and receives from B on
// the connection B dialled. No duplicate-connection tie-breaking is needed, and a peer's identity
// on an inbound connection is the key its certificate proved.
//
//   frame := length:u32 LE | channel:u8 | payload[length]
//   channel 1 consensus (envelopes), 2 requests (client requests forwarded to peers),
//           3 bulk (state transfer), 4 ledger (header certificates between nodes);
//           bit 0x80 on a bulk frame: "more chunks follow"
//
// No head-of-line blocking: bulk payloads are cut into chunks (256 KiB) queued behind a separate,
// lower-priority queue, so a consensus frame waits for at most one chunk. A full queue drops the
// new frame and counts it (PBFT's status/retransmission recovers lost messages); it never blocks
// the caller.
//
// The peer set can change while running (set_peers): nodes admitted to the registry are pinned
// and dialled, a rotated key replaces the old pin (its connections are closed), and nodes no
// longer listed are dropped.
//
// Thread-safe: send() and set_peers() may be called from any thread; FrameFn is called on an
// io_context thread.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <atomic>
#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "crypto/ed25519.h"

namespace attestnet::net {

enum class Channel : uint8_t { kConsensus = 1, kRequest = 2, kBulk = 3, kLedger = 4 };

struct PeerAddress {
  uint32_t id = 0;
  crypto::PublicKey key{};
  std::string host;
  uint16_t port = 0;
};

struct TransportConfig {
  uint32_t self = 0;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  std::vector<PeerAddress> peers;  // every registered node but self (set_peers changes it)
  uint32_t max_frame = (64u << 20) + 4096;
  size_t max_queue_bytes = 64u << 20;  // per peer, both queues together
  size_t chunk_bytes = 256u << 10;
  uint64_t backoff_min_ms = 50;
  uint64_t backoff_max_ms = 3000;
  uint64_t handshake_timeout_ms = 5000;
  size_t max_inbound = 64;  // concurrent inbound connections (beyond: closed at once)
};

struct TransportStats {
  std::atomic<uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0};
  std::atomic<uint64_t> dropped_queue_full{0};   // frames refused by a full send queue
  std::atomic<uint64_t> bad_frames{0};           // oversize or unknown channel: peer dropped
  std::atomic<uint64_t> handshake_failures{0};   // TLS failed or the key is not pinned
  std::atomic<uint64_t> refused_connections{0};  // over max_inbound
  std::atomic<uint64_t> connects{0};             // outbound handshakes completed
  std::atomic<int64_t> outbound_up{0}, inbound_up{0};
  std::atomic<int64_t> queued_bytes{0};
};

using FrameFn = std::function<void(uint32_t from, Channel ch, Bytes payload)>;

class Transport {
 public:
  Transport(boost::asio::io_context& io, TransportConfig cfg, crypto::SecretKey key, FrameFn fn);
  ~Transport();
  // Binds the listener and starts dialling peers.
  Status start();
  void stop();
  // Queue a frame to one peer (dropped and counted when the queue is full).
  void send(uint32_t to, Channel ch, std::shared_ptr<const Bytes> payload);
  void broadcast(Channel ch, const std::shared_ptr<const Bytes>& payload);
  // Replaces the peer set: new peers are pinned and dialled; a peer whose key or address
  // changed is dialled again (and its inbound connections closed); peers not listed are
  // dropped. Unchanged peers keep their connections and queues.
  void set_peers(std::vector<PeerAddress> peers);
  const TransportStats& stats() const { return *stats_; }
  uint16_t listen_port() const { return port_; }
  // Peers whose outbound connection is up (for status).
  std::vector<uint32_t> connected_peers() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::shared_ptr<TransportStats> stats_;
  uint16_t port_ = 0;
};

}  // namespace attestnet::net
