// One attestnet node: a PBFT replica (consensus/), its RocksDB store and ledger (ledger/), the
// attestation application (state/), the peer transport (net/) and the HTTP API (api/).
//
// Threads (DESIGN.md §2: the protocol thread never waits on crypto or disk):
//   io (2)       peer TLS connections and HTTP sessions (Asio); a peer envelope's signature is
//                checked on the io thread that read it, before the protocol thread sees it
//   workers (1+) validate (and pre-check the signatures of) forwarded requests;
//                results land in a signature cache the replica consults
//   consensus    drives the Replica: one event at a time (rmu_), plus a tick every 10 ms (1 ms
//                with batch_wait_ms > 0); hands the Actions, in order, to the effects thread.
//                An event posted while the replica is free runs at once on the posting thread
//                (same lock, same order; docs/consensus.md), saving a wake-up per message
//   effects      carries the Actions out IN ORDER: persist (synced), then send; executes delivered
//                blocks into the ledger (appraisal), stores header certificates, answers waiters
// Order is what makes "persist before send" hold: one thread, one queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "api/http_server.h"
#include "consensus/held_requests.h"
#include "consensus/replica.h"
#include "crypto/signature_memo.h"
#include "ledger/builder.h"
#include "ledger/prover.h"
#include "ledger/response.h"
#include "ledger/store.h"
#include "net/transport.h"
#include "node/config.h"
#include "node/host_load.h"
#include "state/attestation.h"
#include "state/trust.h"

namespace attestnet::node {

struct Histogram {
  static constexpr std::array<double, 13> kBounds{1,   2,   5,    10,   20,   50,   100,
                                                  200, 500, 1000, 2000, 5000, 10000};
  std::array<std::atomic<uint64_t>, 14> buckets{};
  std::atomic<uint64_t> count{0};
  std::atomic<double> sum{0};
  void observe(double ms);
};

// Runs the calling thread, and every thread it starts from now on, only on `cpus` (nothing when
// empty). `attestnet node` calls it before the node opens its store and starts its threads.
Status pin_to_cpus(const std::vector<uint32_t>& cpus);

class Node {
 public:
  static Result<std::unique_ptr<Node>> open(const NodeConfig& cfg);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Binds the peer and API ports and starts every thread.
  Status start();
  // Stops accepting, drains the effects queue (everything acknowledged is already durable),
  // joins the threads and closes the store.
  void stop();
  uint16_t api_port() const { return http_ ? http_->port() : 0; }
  uint16_t peer_port() const { return transport_ ? transport_->listen_port() : 0; }

  // --- what the API calls (thread-safe) ---
  // Decodes and checks an AttestationRequest, orders it (forwarding it to every peer) and
  // returns its request id; an error is the client's fault (400) or overload (503).
  Result<Hash32> submit(Bytes attestation_request);
  // Ed25519 verification through the node's memo of verified signatures.
  crypto::VerifyFn memo_verify() const;
  // Calls `done` (on the effects thread) with the response once the request's record is under
  // a certified header, or with kNotFound at `deadline_ms` (steady clock) if it is not.
  // `from_epoch`: hand-overs from that epoch on (a client that pinned its committee).
  void await_response(const Hash32& id, uint64_t deadline_ms, uint64_t from_epoch,
                      std::function<void(Result<ledger::AttestationResponse>)> done);
  // The committee of `epoch` (default: the newest this node stored) with the hand-overs that
  // prove it from genesis, as ledger::checkpoint_proof_to_json (effects thread).
  void checkpoint(std::optional<uint64_t> epoch, std::function<void(Result<nlohmann::json>)> done);
  // Runs `fn` on the effects thread, the store's only writer (consistent reads).
  void read_store(std::function<void(const ledger::ReplicaStore&)> fn);
  nlohmann::json status() const;
  std::string metrics() const;
  const ledger::Genesis& genesis() const { return genesis_; }
  // A trust transaction (NodeJoin, NodeLeave, KeyRotation, Endorsement, MisbehaviourProof),
  // checked and ordered like an attestation request; its outcome is known once executed.
  Result<Hash32> submit_transaction(Bytes payload);
  struct TxResult {
    bool accepted = false;
    std::string reason;
    uint64_t height = 0;
  };
  // Calls `done` (effects thread) with the outcome once the transaction is executed, or with
  // kNotFound at `deadline_ms` (steady clock). Outcomes are kept for the last 10,000.
  void await_transaction(const Hash32& id, uint64_t deadline_ms,
                         std::function<void(Result<TxResult>)> done);
  // The hash of the newest executed header (genesis before the first block) and its height.
  std::pair<Hash32, uint64_t> freshness() const;
  // This node's registry index (its peer id), or kUnregistered while it waits for admission.
  static constexpr uint32_t kUnregistered = UINT32_MAX;
  uint32_t self() const { return self_.load(); }
  // Runs `fn` on the effects thread with the trust state (registry, reputation, committees).
  void read_trust(
      std::function<void(const state::TrustState&, const std::map<uint64_t, ledger::Committee>&)>
          fn);

 private:
  Node() = default;
  // Runs on the consensus thread; it feeds replicas and emit()s what they return.
  using Event = std::function<void(uint64_t now_ms)>;
  void post_consensus(Event e);
  void post_effects(std::function<void()> fn);
  void consensus_loop();
  void effects_loop();
  // Consensus thread: the replica of the current epoch (null when this node does not sit).
  consensus::Replica* current_replica();
  // A request for the current replica, or kept for the next one this node starts.
  void offer_request(const consensus::Request& q, uint64_t now);
  void emit(uint64_t epoch, consensus::Actions a);
  void start_epoch(uint64_t epoch, const ledger::Committee& c, uint64_t base_height,
                   const Hash32& base_digest, uint64_t base_time, uint64_t now);
  consensus::ReplicaConfig replica_config(uint64_t epoch, const ledger::Committee& c,
                                          uint64_t base_height, const Hash32& base_digest,
                                          uint64_t base_time) const;
  std::optional<consensus::ReplicaId> index_in(const ledger::Committee& c) const;
  // Effects thread: carries out one replica's actions (its epoch maps member indices to peers).
  void carry_out(uint64_t epoch, consensus::Actions actions);
  void notify_executed(uint64_t epoch, consensus::Seq height, const Hash32& digest);
  // Consensus thread: sends the messages that need no synced write first (SendAction::durable
  // false: header votes, pre-prepares and prepares under a durable lease) and takes them out of
  // `actions`; the rest, with every record, go to the effects thread.
  void send_unsynced(uint64_t epoch, consensus::Actions& actions);
  std::deque<Event> take_events();  // what cq_ holds, emptied
  void after_events();
  void on_frame(uint32_t from, net::Channel ch, Bytes payload);
  // Forwarded requests wait in rq_ for the workers: up to cfg_.workers drains run at once,
  // each taking what is queued (a batch) and handing the valid ones to the protocol thread as
  // one event, so a burst costs a few wake-ups, not two per request.
  void drain_requests();
  Status validate_request(const consensus::Request& q) const;
  // Orders a transaction this node makes itself (endorsements, misbehaviour proofs).
  void submit_internal(Bytes payload);
  // Executes the next committed block into the trust state and the ledger (from the replica,
  // from a peer's notice or fetch, or at open). Returns the height and header digest.
  std::optional<std::pair<consensus::Seq, Hash32>> execute_block(
      const std::shared_ptr<const consensus::CommittedBlock>& cb);
  void drain_received();
  void log_view(const consensus::Replica& r);
  // (height, header hash) when the ledger already holds this block (fetched, then delivered by
  // the replica), for the replica's header vote.
  std::optional<std::pair<consensus::Seq, Hash32>> executed_already(
      const consensus::CommittedBlock& cb) const;
  void request_blocks();
  void certified(const consensus::HeaderCertifiedAction& hc);
  // A member of `ran` sends frame() (made once) to the registered nodes outside it.
  void tell_followers(const ledger::Committee& ran,
                      const std::function<std::shared_ptr<Bytes>()>& frame);
  void answer_ready(uint64_t certified_height);
  // Effects thread: syncs the store if a write since the last sync was not synced (a durable
  // send with no record of its own still waits for the records before it).
  void make_durable();
  // Effects thread: the prepare leases written since the last sync; after a sync each is
  // reported to its epoch's replica (Replica::on_lease_durable).
  void note_written(uint64_t epoch, std::span<const consensus::PersistRecord* const> recs);
  void leases_synced();
  std::vector<std::pair<uint64_t, consensus::PersistRecord>> unsynced_leases_;
  void housekeeping(uint64_t now_ms);
  Status catch_up_ledger();
  // Header certificates a replica missed (blocks it got by state transfer, or votes that came
  // while it was down) are fetched from peers and checked against its own headers.
  void request_missing_certificates();
  void on_ledger_frame(uint32_t from, const Bytes& payload);
  std::optional<ledger::AttestationRecord> execute(const consensus::Request& q, uint64_t time);

  NodeConfig cfg_;
  ledger::Genesis genesis_;
  crypto::SecretKey key_;
  std::atomic<uint32_t> self_{kUnregistered};
  // The node-admission policy of the genesis (null: the network admits no nodes).
  std::shared_ptr<const policy::Policy> admission_;
  state::TrustState::AdmitFn admit_;
  Status admit(const state::NodeJoin& j, uint64_t block_time_ms) const;
  // Open: the trust state, chain state and committees from the stored snapshot when it checks
  // out against its header; returns the first height still to fold (1 without one).
  uint64_t restore_snapshot();
  static constexpr uint16_t kSnapshotTag = 0x0622;
  std::shared_ptr<const policy::Policy> policy_;
  std::shared_ptr<state::AttestationApp> app_;
  std::unique_ptr<ledger::ReplicaStore> store_;
  std::unique_ptr<ledger::LedgerBuilder> builder_;
  std::unique_ptr<state::MemoryLedgerView> view_;
  std::shared_ptr<crypto::SignatureMemo> sigs_;

  // The registry as the workers, the API and status read it: replaced (never changed in
  // place) by the effects thread after a join, leave or rotation; guarded by smu_.
  struct RegistryPeer {
    crypto::PublicKey key{};
    std::string name, endpoint;
    bool active = true;
  };
  struct Registry {
    std::vector<RegistryPeer> peers;  // by registry index
    std::map<crypto::PublicKey, uint32_t> index;
    uint64_t version = 0;
  };
  std::shared_ptr<const Registry> registry_;
  std::shared_ptr<const Registry> registry() const;
  // Sends to the seat `s.to`, or to every seat but this node's (seats: an epoch's members).
  void send_to_seats(const std::vector<crypto::PublicKey>& seats, const Registry& reg,
                     const consensus::SendAction& s, net::Channel ch);
  // Effects thread (and open): re-reads the registry from the trust state; updates self_ and
  // the transport's peers.
  void refresh_registry();
  std::vector<net::PeerAddress> transport_peers(const Registry& reg) const;
  // Round robin over the registry, skipping self (block and certificate fetches).
  std::optional<uint32_t> next_peer(uint32_t& cursor) const;
  // Effects thread: the trust state, the consensus digest and block time at the ledger's tip,
  // every epoch's committee, and the base (height, digest, time) each epoch started from.
  std::unique_ptr<state::TrustState> trust_;
  state::ChainState chain_;
  std::map<uint64_t, ledger::Committee> committees_;
  struct EpochBase {
    uint64_t height = 0;
    Hash32 digest{};
    uint64_t time = 0;
  };
  std::map<uint64_t, EpochBase> bases_;
  std::map<uint64_t, std::shared_ptr<const consensus::CommittedBlock>> received_;
  uint64_t last_exec_ms_ = 0, next_block_fetch_ms_ = 0;
  uint32_t fetch_peer_ = 0;
  uint64_t internal_seq_ = 0;
  std::set<std::tuple<crypto::PublicKey, uint64_t, uint8_t>> reported_;
  // Consensus thread: one replica per epoch this node sits in (the current one, and the
  // previous while it gathers its last header votes), messages and requests for an epoch it
  // has not started yet.
  std::map<uint64_t, std::unique_ptr<consensus::Replica>> replicas_;
  uint64_t cur_epoch_ = 0;
  std::map<uint64_t, std::deque<std::shared_ptr<Bytes>>> future_;
  size_t future_count_ = 0;
  // Requests kept while no replica of this node takes them (consensus/held_requests.h).
  consensus::HeldRequests held_{2000};
  std::vector<std::pair<uint64_t, consensus::Actions>> emitted_;
  consensus::ReplicaHooks hooks_;

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<api::HttpServer> http_;

  std::mutex cmu_;
  std::mutex rmu_;  // held while replica events run (atn-consensus, or inline: post_consensus)
  std::condition_variable ccv_;
  std::deque<Event> cq_;
  // The earliest time a replica holds a batch back to (Replica::proposal_due_ms; 0: none), set
  // after every batch of events; due_changed_ (under cmu_) wakes atn-consensus to wait for it
  // when events ran inline on another thread.
  std::atomic<uint64_t> proposal_due_{0};
  // The primary's block interval as the host's load sets it (sample_host_load, on atn-consensus
  // only, as are the three fields after it).
  bool sample_host_load(uint64_t now);
  std::atomic<uint64_t> block_interval_ms_{0};
  std::optional<CpuTimes> cpu_last_;
  double host_busy_ = 0;  // smoothed busy fraction of the host's CPUs
  uint64_t next_load_sample_ = 0;
  bool due_changed_ = false;
  std::thread consensus_thread_;
  std::mutex emu_;
  std::condition_variable ecv_;
  std::deque<std::function<void()>> eq_;
  std::thread effects_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> consensus_done_{false};
  std::atomic<bool> started_{false};  // read by io threads posting events (post_consensus)

  // Requests the workers or the API validated, for the replica's validate hook, from their
  // validation until they are handed to the replica (offer_validated). One the replica already
  // knew (its copy from a pre-prepare came first, or it was executed) never asks: such ids once
  // stayed here until 500,000 had gathered.
  std::mutex vmu_;
  std::unordered_set<Hash32, Hash32Hasher> validated_;
  void offer_validated(std::span<const consensus::Request> qs, uint64_t now);
  std::mutex rqmu_;
  std::deque<std::shared_ptr<Bytes>> rq_;  // forwarded request frames not yet validated
  uint32_t rq_drains_ = 0;                 // drains running or posted (<= cfg_.workers)

  // Effects thread: outcomes of executed trust transactions (the last 10,000) and waiters.
  std::unordered_map<Hash32, TxResult, Hash32Hasher> tx_outcomes_;
  std::deque<Hash32> tx_order_;
  struct TxWaiter {
    uint64_t deadline_ms;
    std::function<void(Result<TxResult>)> done;
  };
  std::unordered_map<Hash32, std::vector<TxWaiter>, Hash32Hasher> tx_waiters_;
  void note_outcome(const state::TxOutcome& o, uint64_t height);

  // Effects-thread state: waiters for responses.
  struct Waiter {
    uint64_t deadline_ms;
    uint64_t from_epoch;
    std::function<void(Result<ledger::AttestationResponse>)> done;
  };
  std::unordered_map<Hash32, std::vector<Waiter>, Hash32Hasher> waiters_;
  // Recorded requests with waiters, by the height of their block: answered once a header at or
  // above it is certified (0: height unknown, tried at every certificate). A record this node
  // executed while the client waited is kept with it, so that its answer reads nothing back.
  struct Ready {
    uint64_t height = 0;
    std::optional<ledger::KnownRecord> record;
  };
  std::unordered_map<Hash32, Ready, Hash32Hasher> ready_;
  uint64_t cert_scan_from_ = 1;  // lower heights all have certificates
  uint64_t next_cert_sync_ms_ = 0;
  uint32_t cert_sync_peer_ = 0;

  // Snapshots for status and metrics (written by the consensus / effects threads).
  mutable std::mutex smu_;
  // Recent epochs' seats for the workers' signature checks (shared, never copied per message).
  std::map<uint64_t, std::shared_ptr<const std::vector<crypto::PublicKey>>> committee_keys_;
  uint64_t epoch_ = 0;
  Hash32 tip_hash_{};
  uint64_t tip_height_ = 0, certified_height_ = 0;
  consensus::ReplicaCounters counters_{};
  consensus::View view_no_ = 0;
  std::tuple<uint64_t, consensus::View, bool> logged_view_{};  // consensus thread: log_view()
  bool in_view_change_ = false;
  size_t pending_ = 0;
  std::map<std::string, uint64_t> appraisal_failures_;
  std::unordered_map<Hash32, uint64_t, Hash32Hasher> submitted_at_;  // id -> steady ms
  std::atomic<size_t> cq_depth_{0}, eq_depth_{0};
  std::atomic<uint64_t> blocks_committed_{0}, requests_committed_{0}, submitted_{0},
      forwarded_in_{0}, dropped_frames_{0}, persisted_batches_{0}, persisted_records_{0},
      synced_writes_{0}, certificates_fetched_{0};
  Histogram commit_latency_;
};

// The HTTP routes of docs/api.md over a node (node/routes.cc).
api::Handler make_api_handler(Node& node);

}  // namespace attestnet::node
