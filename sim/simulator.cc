#include "sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <filesystem>

#include <fstream>
#include <nlohmann/json.hpp>
#include "consensus/replica.h"
#include "core/hash.h"

#include "crypto/merkle.h"
#include "crypto/signature_memo.h"
#include "evidence/binding.h"
#include "evidence/sim/sim.h"
#include "ledger/audit.h"
#include "ledger/builder.h"
#include "ledger/store.h"
#include "state/attestation.h"
#include "state/store_view.h"

namespace attestnet::sim {

using consensus::Action;
using consensus::Actions;
using consensus::Envelope;
using consensus::MsgType;
using consensus::ReplicaId;
using consensus::Request;
using consensus::Seq;
using consensus::View;

const char* fault_mode_name(FaultMode m) {
  switch (m) {
    case FaultMode::kNone:
      return "none";
    case FaultMode::kNet:
      return "net";
    case FaultMode::kCrash:
      return "crash";
    case FaultMode::kByzantine:
      return "byzantine";
    case FaultMode::kAll:
      return "all";
  }
  return "?";
}

bool parse_fault_mode(const std::string& s, FaultMode* out) {
  static const std::map<std::string, FaultMode> kModes = {{"none", FaultMode::kNone},
                                                          {"net", FaultMode::kNet},
                                                          {"crash", FaultMode::kCrash},
                                                          {"byzantine", FaultMode::kByzantine},
                                                          {"all", FaultMode::kAll}};
  auto it = kModes.find(s);
  if (it == kModes.end()) return false;
  *out = it->second;
  return true;
}

namespace {

constexpr uint64_t kTickMs = 10;
constexpr uint64_t kClientRetryMs = 500;
constexpr size_t kTraceDepth = 40;
constexpr uint64_t kForgedClient = 0xbadc0ffee;

enum class ByzKind {
  kNone,
  kSilent,
  kEquivocate,
  kConflictingVotes,
  kBadSignature,
  kReplay,
  kInvalidBlock,
  kMixed
};
const char* byz_name(ByzKind k) {
  switch (k) {
    case ByzKind::kNone:
      return "honest";
    case ByzKind::kSilent:
      return "silent";
    case ByzKind::kEquivocate:
      return "equivocating";
    case ByzKind::kConflictingVotes:
      return "conflicting-votes";
    case ByzKind::kBadSignature:
      return "bad-signatures";
    case ByzKind::kReplay:
      return "replay-and-mutate";
    case ByzKind::kInvalidBlock:
      return "invalid-blocks";
    case ByzKind::kMixed:
      return "mixed";
  }
  return "?";
}

struct Event {
  enum Kind { kDeliver, kTick, kRequest, kReply, kClientTick, kCrash, kRestart } kind;
  uint64_t time = 0;
  uint64_t id = 0;
  uint32_t target = 0;
  uint32_t from = 0;
  std::shared_ptr<const Bytes> bytes;
  size_t request_index = 0;  // kRequest: index into all_requests_; kReply: same
  Seq height = 0;
  Event(Kind k, uint64_t t, uint64_t /*id: assigned by push*/, uint32_t tgt, uint32_t frm = 0,
        std::shared_ptr<const Bytes> b = nullptr, size_t idx = 0)
      : kind(k), time(t), target(tgt), from(frm), bytes(std::move(b)), request_index(idx) {}
  bool operator>(const Event& o) const { return time != o.time ? time > o.time : id > o.id; }
};

struct Node {
  crypto::SecretKey key;
  std::unique_ptr<consensus::Replica> replica;
  // In-memory "disk" (no store_dir): its first `synced` records are durable. A crash keeps
  // the synced ones and a random prefix of the rest (a write-ahead log loses a suffix of what
  // was not synced); committed blocks and stable proofs are always kept.
  std::vector<consensus::PersistRecord> disk;
  size_t synced = 0;
  std::vector<consensus::PersistRecord> unsynced_leases;  // reported durable at the next sync
  std::unique_ptr<ledger::ReplicaStore> store;            // the real store (store_dir)
  std::unique_ptr<ledger::LedgerBuilder> builder;         // executes delivered blocks into headers
  std::unique_ptr<state::MemoryLedgerView> view;          // with attest: what execution reads
  std::map<Seq, uint64_t> header_time;  // the ledger's block time per height (without a store)
  bool up = true;
  ByzKind byz = ByzKind::kNone;
  std::vector<std::shared_ptr<const Bytes>> history;  // for replay attacks
  View last_view = 0;
  bool last_changing = false;
  uint64_t last_conflicts = 0;
};

struct ClientState {
  uint64_t id = 0;
  crypto::SecretKey key;
  std::vector<size_t> requests;  // indices into all_requests_
  size_t next = 0;
  std::map<size_t, uint64_t> outstanding;  // request index -> last send time
  std::map<size_t, std::map<Seq, std::set<ReplicaId>>> replies;
  size_t done = 0;
  uint64_t next_issue_ms = 0;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o) : o_(o), rng_(o.seed) {}

  SimResult run();

 private:
  // setup
  void setup();
  std::string store_path(uint32_t i) const {
    return o_.store_dir + "/replica-" + std::to_string(i);
  }
  void plan_faults();
  consensus::ReplicaHooks hooks(uint32_t r);
  // event loop
  void push(Event e) {
    e.id = next_event_id_++;
    queue_.push(std::move(e));
  }
  void step(const Event& e);
  template <typename F>
  Actions timed(F&& f, double* also = nullptr) {
    if (!o_.measure_replica_cpu) return f();
    // A monotonic clock (vDSO, ~20 ns) rather than the thread CPU clock, which is a system
    // call here and would dominate what it measures. The simulator is single-threaded.
    auto a = std::chrono::steady_clock::now();
    Actions out = f();
    double d = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    res_.replica_cpu_seconds += d;
    if (also) *also += d;
    return out;
  }
  void apply(uint32_t r, Actions actions);
  void send_from(uint32_t r, const consensus::SendAction& sa);
  void sync(Node& nd);           // what was written so far becomes durable (leases reported)
  void lose_unsynced(Node& nd);  // at a crash
  void net_send(uint32_t from, uint32_t to, std::shared_ptr<const Bytes> bytes);
  void client_send(ClientState& c, size_t idx);
  void on_reply(const Event& e);
  // checker
  void check_honest_signature(uint32_t r, const Bytes& bytes);
  void check_delivery(uint32_t r, const consensus::DeliverAction& d);
  void check_header_certificate(uint32_t r, const consensus::HeaderCertifiedAction& hc);
  // The simulator's test application: every request becomes a record of platform "sim" whose
  // one measurement is the payload's digest. (Real appraisal is evidence/ and policy/.)
  static std::optional<ledger::AttestationRecord> sim_record(const Request& q, uint64_t time) {
    ledger::AttestationRecord r;
    r.request_id = q.id();
    r.vm_id = "sim-client-" + std::to_string(q.client_id);
    r.platform = "sim";
    Hash32 d = sha256(as_view(q.payload));
    r.measurements = {{"payload", Bytes(d.begin(), d.end())}};
    r.verdict = ledger::Verdict::kAffirming;
    r.policy_id = "sim-test";
    r.policy_version = 1;
    r.timestamp = time;
    return r;
  }
  bool all_done() const;
  void violation(const std::string& inv, const std::string& detail);
  void trace(const std::string& s);
  void narrate(const std::string& s) {
    if (o_.narrate) o_.narrate(s);
  }
  uint64_t rand(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  bool faults_active() const { return now_ < heal_; }
  bool honest(uint32_t r) const { return nodes_[r].byz == ByzKind::kNone; }
  Envelope resign(uint32_t r, MsgType t, Bytes body) {
    return consensus::sign_envelope(nodes_[r].key, r, cfg_.chain_id, cfg_.epoch, t,
                                    std::move(body));
  }

  SimOptions o_;
  std::mt19937_64 rng_;
  consensus::ReplicaConfig cfg_;
  std::vector<Node> nodes_;
  std::vector<ClientState> clients_;
  std::vector<Request> all_requests_;
  std::unordered_map<Hash32, size_t, Hash32Hasher> request_index_;
  std::vector<Hash32> request_ids_;
  std::unordered_set<Hash32, Hash32Hasher> sent_requests_;
  // Verified signatures shared by the simulated replicas (cost, never results).
  std::shared_ptr<crypto::SignatureMemo> cache_ = std::make_shared<crypto::SignatureMemo>();
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t next_event_id_ = 0;
  uint64_t now_ = 0;
  uint64_t heal_ = 0;

  // network faults
  double drop_p_ = 0, dup_p_ = 0, delay_p_ = 0;
  struct Partition {
    uint64_t start, end;
    std::vector<int> side;  // per replica: 0 or 1; one-way if oneway
    bool oneway;
  };
  std::vector<Partition> partitions_;

  // checker state
  std::map<Seq, Hash32> committed_;
  std::map<Seq, std::vector<Hash32>> ids_by_height_;
  std::map<Seq, Hash32> certified_headers_;
  ledger::Genesis genesis_;
  std::optional<uint64_t> drain_until_;
  std::vector<Seq> delivered_height_;
  std::vector<std::unordered_set<Hash32, Hash32Hasher>> delivered_requests_;
  std::vector<std::unordered_set<Hash32, Hash32Hasher>> ledger_ids_;  // records per replica
  std::map<std::tuple<uint32_t, uint8_t, View, Seq>, Hash32> honest_signed_;
  std::deque<std::string> trace_;
  SimResult res_;
  bool failed_ = false;
  // attest mode
  std::shared_ptr<state::AttestationApp> app_;
  crypto::SecretKey sim_platform_ = crypto::SecretKey::from_seed(crypto::test_seed("sim-platform"));
  Bytes approved_kernel_ =
      crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("sim kernel 6.1")));
  std::optional<ledger::AttestationRecord> attest_record(uint32_t node, const Request& q,
                                                         uint64_t time);
  void rebuild_view(uint32_t node);
  void count_record(uint32_t node, const ledger::AttestationRecord& r);
  std::map<uint64_t, std::pair<Hash32, uint32_t>> header_at_;  // first honest header per height
};

std::optional<ledger::AttestationRecord> Simulation::attest_record(uint32_t node, const Request& q,
                                                                   uint64_t time) {
  ledger::AttestationRecord r = app_->execute(q, time, *nodes_[node].view);
  nodes_[node].view->note_record(r);
  count_record(node, r);
  return r;
}

void Simulation::count_record(uint32_t node, const ledger::AttestationRecord& r) {
  // Count once, at the lowest-numbered honest replica.
  for (uint32_t i = 0; i < o_.replicas; ++i) {
    if (!honest(i)) continue;
    if (i != node) return;
    break;
  }
  if (r.verdict == ledger::Verdict::kAffirming) ++res_.records_affirming;
  if (r.verdict == ledger::Verdict::kContraindicated) ++res_.records_contraindicated;
}

// A restarted replica reopens what execution reads over its store: the last header hashes (the
// freshness anchors) at once, and each VM's state from its records when it attests again.
void Simulation::rebuild_view(uint32_t node) {
  Node& nd = nodes_[node];
  nd.view = std::make_unique<state::MemoryLedgerView>(genesis_.hash(), 1024);
  if (!nd.store) return;
  auto fail = [this, node](const Error& e) {
    violation("storage", "replica " + std::to_string(node) + ": " + e.to_string());
  };
  Status st = state::open_view(*nd.store, nd.builder->next_height() - 1, 1024, *nd.view, fail);
  if (!st.ok()) fail(st.error());
}

void Simulation::setup() {
  crypto::init();
  uint32_t n = o_.replicas;
  cfg_.chain_id = "attestnet-sim";
  cfg_.batch_max = o_.batch_max;
  cfg_.batch_wait_ms = 2;
  cfg_.min_block_interval_ms = o_.min_block_interval_ms;
  cfg_.checkpoint_interval = 8;
  cfg_.window = 32;
  // Small, so that runs forget executed requests and retransmissions arriving later are
  // committed again (and recorded once: the at-most-once invariant).
  cfg_.executed_request_retention = 16;
  cfg_.view_change_timeout_ms = 400;
  cfg_.max_timeout_doublings = 4;
  cfg_.status_interval_ms = 200;
  cfg_.max_clock_skew_ms = 1000;
  cfg_.state_transfer_batch = 16;
  cfg_.unsafe_quorum = o_.unsafe_quorum;
  nodes_.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    nodes_[i].key =
        crypto::SecretKey::from_seed(crypto::test_seed("sim-replica-" + std::to_string(i)));
    cfg_.committee.push_back(nodes_[i].key.public_key());
  }
  genesis_.chain_id = cfg_.chain_id;
  for (uint32_t i = 0; i < n; ++i) {
    genesis_.members.push_back({"replica-" + std::to_string(i), cfg_.committee[i], "sim"});
  }
  genesis_.checkpoint_interval = cfg_.checkpoint_interval;
  if (o_.attest) {
    nlohmann::json pj = {{"id", "sim-fleet"},
                         {"version", 1},
                         {"sim",
                          {{"platform_keys", {to_hex(ByteView(sim_platform_.public_key()))}},
                           {"measurements", {{"kernel", {to_hex(approved_kernel_)}}}}}}};
    auto pol = policy::parse_policy(pj.dump());
    app_ = std::make_shared<state::AttestationApp>(
        std::make_shared<const policy::Policy>(std::move(pol).value()));
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (o_.attest) {
      nodes_[i].view = std::make_unique<state::MemoryLedgerView>(genesis_.hash(), 1024);
      nodes_[i].builder = std::make_unique<ledger::LedgerBuilder>(
          genesis_,
          [this, i](const Request& q, uint64_t time) { return attest_record(i, q, time); });
    } else {
      nodes_[i].builder = std::make_unique<ledger::LedgerBuilder>(genesis_, sim_record);
    }
  }
  if (!o_.store_dir.empty()) {
    std::filesystem::create_directories(o_.store_dir);
    std::ofstream(o_.store_dir + "/genesis.json") << genesis_.to_json().dump(2) << "\n";
  }
  delivered_height_.assign(n, 0);
  delivered_requests_.assign(n, {});
  ledger_ids_.assign(n, {});

  // Clients and their signed requests. The payload is data || Ed25519 signature by the client.
  clients_.resize(o_.clients);
  for (uint32_t c = 0; c < o_.clients; ++c) {
    clients_[c].id = c + 1;
    clients_[c].key =
        crypto::SecretKey::from_seed(crypto::test_seed("sim-client-" + std::to_string(c)));
  }
  for (uint32_t i = 0; i < o_.requests; ++i) {
    ClientState& c = clients_[i % o_.clients];
    Request q;
    q.client_id = c.id;
    q.client_seq = c.requests.size() + 1;
    Bytes data(o_.payload_bytes);
    for (auto& b : data) b = static_cast<uint8_t>(rng_());
    if (o_.attest) {
      // The client is a VM: its key is the request's ephemeral key, its evidence is bound to
      // (genesis, key); one client in four booted an unapproved kernel.
      uint32_t ci = static_cast<uint32_t>(i % o_.clients);
      Hash32 anchor = genesis_.hash();
      Hash32 b = evidence::evidence_binding(anchor, c.key.public_key());
      Bytes kernel =
          ci % 4 == 3 ? crypto::digest(crypto::HashAlg::kSha256, as_view(data)) : approved_kernel_;
      Bytes ev = evidence::sim::make_sim_evidence(sim_platform_, as_view(b), {{"kernel", kernel}})
                     .encode();
      data = state::AttestationRequest::make(c.key, "vm-" + std::to_string(ci), "sim", ev, anchor)
                 .encode();
    } else if (o_.validate_requests) {
      Writer w;
      w.u64(q.client_id).u64(q.client_seq).bytes(as_view(data));
      crypto::Signature sig = c.key.sign(as_view(w.data()));
      data.insert(data.end(), sig.begin(), sig.end());
    }
    q.payload = std::move(data);
    request_index_[q.id()] = all_requests_.size();
    request_ids_.push_back(q.id());
    c.requests.push_back(all_requests_.size());
    all_requests_.push_back(std::move(q));
  }

  for (uint32_t i = 0; i < n; ++i) {
    auto c = cfg_;
    c.self = i;
    nodes_[i].replica = std::make_unique<consensus::Replica>(c, nodes_[i].key, hooks(i));
    if (!o_.store_dir.empty()) {
      std::string dir = store_path(i);
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      auto st = ledger::ReplicaStore::open(dir);
      if (!st.ok()) {
        violation("storage", st.error().to_string());
        return;
      }
      nodes_[i].store = std::move(st).value();
    }
  }
  plan_faults();
}

consensus::ReplicaHooks Simulation::hooks(uint32_t r) {
  consensus::ReplicaHooks h;
  // What the replica no longer keeps in memory, read back from this node's disk, as the node
  // reads its store: state transfer from below it is served from what was persisted.
  h.load_block = [this, r](Seq height) -> std::shared_ptr<const consensus::CommittedBlock> {
    Node& nd = nodes_[r];
    Result<consensus::CommittedBlock> cb =
        make_error(Errc::kNotFound, "block " + std::to_string(height) + " is not on disk");
    if (nd.store) {
      cb = nd.store->block(height);
    } else {
      for (auto it = nd.disk.rbegin(); it != nd.disk.rend(); ++it) {
        if (it->kind != consensus::PersistRecord::Kind::kCommitted || it->seq != height) continue;
        Reader rd(as_view(it->bytes), consensus::kMaxMessageBytes);
        cb = consensus::CommittedBlock::decode(rd);
        break;
      }
    }
    if (!cb.ok()) return nullptr;
    ++res_.blocks_loaded;
    return std::make_shared<const consensus::CommittedBlock>(std::move(cb).value());
  };
  auto cache = cache_;
  bool use_cache = o_.cache_signatures;
  h.verify = [cache, use_cache](const crypto::PublicKey& pk, ByteView m,
                                const crypto::Signature& s) {
    return use_cache ? cache->verify(pk, m, s) : crypto::verify(pk, m, s);
  };
  if (o_.attest) {
    auto app = app_;
    h.validate = [app](const Request& q) -> Status { return app->validate(q); };
  } else if (o_.validate_requests) {
    std::vector<crypto::PublicKey> keys;
    for (const auto& c : clients_) keys.push_back(c.key.public_key());
    h.validate = [keys, cache, use_cache](const Request& q) -> Status {
      if (q.client_id == 0 || q.client_id > keys.size()) {
        return make_error(Errc::kUnknownSigner,
                          "request from unknown client " + std::to_string(q.client_id));
      }
      if (q.payload.size() < 64)
        return make_error(Errc::kTruncated, "request payload has no signature");
      ByteView data(q.payload.data(), q.payload.size() - 64);
      crypto::Signature sig;
      std::copy(q.payload.end() - 64, q.payload.end(), sig.begin());
      Writer w;
      w.u64(q.client_id).u64(q.client_seq).bytes(data);
      const auto& pk = keys[q.client_id - 1];
      bool ok = use_cache ? cache->verify(pk, as_view(w.data()), sig)
                          : crypto::verify(pk, as_view(w.data()), sig);
      if (!ok) return make_error(Errc::kBadSignature, "client signature does not verify");
      return {};
    };
  } else {
    h.validate = nullptr;
  }
  return h;
}

void Simulation::plan_faults() {
  uint32_t n = o_.replicas;
  size_t f = cfg_.f();
  FaultMode m = o_.faults;
  bool net = m == FaultMode::kNet || m == FaultMode::kAll;
  bool crash = m == FaultMode::kCrash || m == FaultMode::kAll;
  bool byz = m == FaultMode::kByzantine || m == FaultMode::kAll;
  heal_ = (m == FaultMode::kNone) ? 0 : rand(2000, 8000);
  if (o_.byzantine_primary_story) {
    nodes_[0].byz = ByzKind::kEquivocate;
    heal_ = 0;
  }
  if (byz && f > 0) {
    // Up to f Byzantine replicas; half the seeds make the first primary one of them.
    size_t count = rand(1, f);
    std::vector<uint32_t> ids(n);
    for (uint32_t i = 0; i < n; ++i) ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), rng_);
    if (chance(0.5)) {
      auto it = std::find(ids.begin(), ids.end(), 0u);
      std::iter_swap(ids.begin(), it);
    }
    static const ByzKind kKinds[] = {
        ByzKind::kSilent,       ByzKind::kEquivocate, ByzKind::kConflictingVotes,
        ByzKind::kBadSignature, ByzKind::kReplay,     ByzKind::kInvalidBlock,
        ByzKind::kMixed};
    for (size_t i = 0; i < count; ++i) {
      ByzKind k = o_.unsafe_quorum ? ByzKind::kEquivocate : kKinds[rand(0, 6)];
      nodes_[ids[i]].byz = k;
    }
  }
  if (net) {
    drop_p_ = rand(0, 30) / 100.0;
    dup_p_ = rand(0, 10) / 100.0;
    delay_p_ = rand(0, 20) / 100.0;
    uint64_t t = rand(0, 1000);
    while (t < heal_) {
      Partition p;
      p.start = t;
      p.end = std::min(heal_, t + rand(200, 2500));
      p.oneway = chance(0.3);
      p.side.resize(n);
      int kind = static_cast<int>(rand(0, 2));
      if (kind == 0) {  // one node isolated
        uint32_t x = static_cast<uint32_t>(rand(0, n - 1));
        for (uint32_t i = 0; i < n; ++i) p.side[i] = i == x;
      } else {  // random split
        for (uint32_t i = 0; i < n; ++i) p.side[i] = static_cast<int>(rand(0, 1));
      }
      partitions_.push_back(std::move(p));
      t = partitions_.back().end + rand(100, 1500);
    }
  }
  if (crash) {
    uint64_t t = rand(100, 1500);
    while (t + 100 < heal_) {
      std::vector<uint32_t> candidates;
      for (uint32_t i = 0; i < n; ++i)
        if (honest(i)) candidates.push_back(i);
      if (candidates.empty()) break;
      uint32_t r = candidates[rand(0, candidates.size() - 1)];
      uint64_t down = rand(50, 2000);
      uint64_t up = std::min(heal_ - 1, t + down);
      push(Event{Event::kCrash, t, 0, r});
      push(Event{Event::kRestart, up, 0, r});
      t = up + rand(50, 1500);
    }
  }
  res_.heal_time_ms = heal_;
  std::string kinds;
  for (uint32_t i = 0; i < n; ++i) {
    if (nodes_[i].byz != ByzKind::kNone) {
      ++res_.byzantine;
      kinds += (kinds.empty() ? "" : ",") + std::to_string(i) + ":" + byz_name(nodes_[i].byz);
    }
  }
  res_.byzantine_kinds = kinds;
}

SimResult Simulation::run() {
  setup();
  res_.seed = o_.seed;
  for (uint32_t i = 0; i < o_.replicas; ++i) push(Event{Event::kTick, rand(0, kTickMs), 0, i});
  for (uint32_t c = 0; c < o_.clients; ++c) push(Event{Event::kClientTick, rand(0, 20), 0, c});
  uint64_t deadline = heal_ + o_.liveness_bound_ms;
  while (!queue_.empty() && !failed_) {
    Event e = queue_.top();
    queue_.pop();
    now_ = e.time;
    if (now_ > deadline) break;
    step(e);
    if (!failed_ && now_ >= heal_ && all_done()) {
      // With a data directory, let in-flight header votes land so the stored ledger is
      // complete; otherwise stop at once.
      if (o_.store_dir.empty()) break;
      if (!drain_until_) drain_until_ = now_ + 1000;
      if (now_ >= *drain_until_) break;
    }
  }
  res_.end_time_ms = now_;
  for (uint32_t i = 0; i < o_.replicas; ++i) {
    if (!nodes_[i].replica) continue;
    const auto& c = nodes_[i].replica->counters();
    res_.dropped_by_replicas += c.dropped_bad_signature + c.dropped_conflicting +
                                c.dropped_invalid_block + c.dropped_invalid_view_change +
                                c.dropped_invalid_new_view + c.dropped_malformed;
    if (honest(i)) {
      res_.view_changes += c.view_changes;
      res_.max_view = std::max<uint64_t>(res_.max_view, nodes_[i].replica->view());
      if (c.refused_equivocation > 0 && !failed_) {
        violation("no-equivocation", "honest replica " + std::to_string(i) +
                                         " was asked to sign a conflicting message");
      }
    }
  }
  for (const auto& c : clients_) res_.committed_requests += c.done;
  if (!failed_ && !all_done()) {
    std::ostringstream os;
    os << "after healing at " << heal_ << " ms, " << res_.committed_requests << "/"
       << all_requests_.size() << " requests completed by " << now_ << " ms; replicas:";
    for (uint32_t i = 0; i < o_.replicas; ++i) {
      if (!nodes_[i].replica) continue;
      auto& r = *nodes_[i].replica;
      os << " [" << i << (honest(i) ? "" : "*") << " view " << r.view()
         << (r.in_view_change() ? " (changing)" : "") << " exec " << r.last_executed() << " stable "
         << r.stable_seq() << " pending " << r.pending_requests() << "]";
    }
    violation("liveness", os.str());
  }
  return res_;
}

void Simulation::step(const Event& e) {
  switch (e.kind) {
    case Event::kTick: {
      push(Event{Event::kTick, now_ + kTickMs, 0, e.target});
      Node& nd = nodes_[e.target];
      if (!nd.up) return;
      apply(e.target, timed([&] { return nd.replica->on_tick(now_); }));
      return;
    }
    case Event::kDeliver: {
      Node& nd = nodes_[e.target];
      if (!nd.up) return;
      ++res_.messages;
      {
        // Envelope layout: tag:u16 version:u8 type:u8 ... (messages.h)
        const Bytes& b = *e.bytes;
        std::string what = b.size() > 3 && b[3] >= 1 && b[3] <= consensus::kMaxMsgType
                               ? consensus::msg_type_name(static_cast<MsgType>(b[3]))
                               : "garbage";
        trace(std::to_string(now_) + "ms " + std::to_string(e.from) + "->" +
              std::to_string(e.target) + " " + what);
      }
      if (nd.byz == ByzKind::kReplay && nd.history.size() < 512) nd.history.push_back(e.bytes);
      apply(e.target, timed([&] { return nd.replica->on_message(as_view(*e.bytes), now_); }));
      return;
    }
    case Event::kRequest: {
      Node& nd = nodes_[e.target];
      if (!nd.up) return;
      apply(e.target,
            timed([&] { return nd.replica->on_request(all_requests_[e.request_index], now_); },
                  &res_.replica_request_seconds));
      return;
    }
    case Event::kReply:
      on_reply(e);
      return;
    case Event::kClientTick: {
      ClientState& c = clients_[e.target];
      push(Event{Event::kClientTick, now_ + 50, 0, e.target});
      // Requests are spread over the fault period so that faults hit a busy cluster; the gap
      // between issues averages heal / (requests per client).
      while (c.outstanding.size() < o_.client_window && c.next < c.requests.size() &&
             now_ >= c.next_issue_ms) {
        size_t idx = c.requests[c.next++];
        client_send(c, idx);
        if (heal_ > 0)
          c.next_issue_ms = now_ + rand(0, 2 * heal_ / std::max<size_t>(1, c.requests.size()));
      }
      for (auto& [idx, sent] : c.outstanding) {
        if (now_ >= sent + kClientRetryMs) client_send(c, idx);
      }
      return;
    }
    case Event::kCrash: {
      Node& nd = nodes_[e.target];
      if (!nd.up) return;
      trace(std::to_string(now_) + "ms CRASH replica " + std::to_string(e.target));
      nd.up = false;
      nd.replica.reset();
      nd.store.reset();  // closes the database, as the process dying would
      lose_unsynced(nd);
      ++res_.crashes;
      return;
    }
    case Event::kRestart: {
      Node& nd = nodes_[e.target];
      if (nd.up) return;
      trace(std::to_string(now_) + "ms RESTART replica " + std::to_string(e.target) + " from " +
            std::to_string(nd.disk.size()) + " records");
      auto c = cfg_;
      c.self = e.target;
      if (!o_.store_dir.empty()) {
        auto st = ledger::ReplicaStore::open(store_path(e.target));
        if (!st.ok()) {
          violation("storage", "replica " + std::to_string(e.target) +
                                   " cannot reopen its store: " + st.error().to_string());
          return;
        }
        nd.store = std::move(st).value();
        // Refuse a damaged store (exact height and reason) instead of serving it.
        Status tip = ledger::verify_tip(*nd.store, genesis_);
        if (!tip.ok()) {
          violation("storage", "replica " + std::to_string(e.target) +
                                   " reopened a damaged store: " + tip.error().to_string());
          return;
        }
        // The ledger resumes after the last header it stored.
        Status resumed = ledger::resume_from_store(*nd.store, *nd.builder);
        if (!resumed.ok()) {
          violation("storage",
                    "replica " + std::to_string(e.target) + ": " + resumed.error().to_string());
          return;
        }
        if (o_.attest) rebuild_view(e.target);
      }
      // As the node: from the newest stable checkpoint the ledger reached, replaying only the
      // records above it (the committed blocks below it are neither read nor executed again).
      auto fail = [&](const std::string& what, const Error& err) {
        violation("storage",
                  "replica " + std::to_string(e.target) + ": " + what + ": " + err.to_string());
      };
      nd.replica = consensus::Replica::start_recovery(c, nd.key, hooks(e.target));
      Seq ledger_height = nd.builder->next_height() - 1;
      if (nd.store) {
        auto replayed = ledger::replay_store(*nd.store, *nd.replica, ledger_height);
        if (!replayed.ok()) return fail("cannot read its consensus log", replayed.error());
        if (replayed->not_resumed)
          return fail("cannot resume at its own stable checkpoint", *replayed->not_resumed);
        if (replayed->resumed) ++res_.resumed_at_checkpoint;
      } else {
        std::optional<consensus::StableCheckpoint> cp;
        for (const auto& rec : nd.disk) consensus::keep_newest_checkpoint(cp, rec, ledger_height);
        if (cp && cp->seq > nd.replica->last_executed()) {
          Status st = nd.replica->resume_at(*cp, nd.header_time[cp->seq]);
          if (!st.ok())
            return fail("cannot resume at its own stable checkpoint " + std::to_string(cp->seq),
                        st.error());
          ++res_.resumed_at_checkpoint;
        }
        for (const auto& rec : nd.disk) nd.replica->replay(rec);
      }
      nd.replica->finish_recovery();
      nd.up = true;
      if (nd.replica->last_executed() != delivered_height_[e.target]) {
        violation("durability", "replica " + std::to_string(e.target) + " recovered to height " +
                                    std::to_string(nd.replica->last_executed()) +
                                    " but had delivered " +
                                    std::to_string(delivered_height_[e.target]));
      }
      return;
    }
  }
}

void Simulation::client_send(ClientState& c, size_t idx) {
  if (!c.outstanding.count(idx)) sent_requests_.insert(request_ids_[idx]);
  c.outstanding[idx] = now_;
  for (uint32_t r = 0; r < o_.replicas; ++r) {
    if (faults_active() && chance(drop_p_)) continue;
    push(Event{Event::kRequest, now_ + rand(1, 5), 0, r, 0, nullptr, idx});
  }
}

void Simulation::on_reply(const Event& e) {
  const Request& q = all_requests_[e.request_index];
  ClientState& c = clients_[q.client_id - 1];
  if (!c.outstanding.count(e.request_index)) return;
  auto& by_height = c.replies[e.request_index];
  by_height[e.height].insert(e.from);
  if (by_height[e.height].size() >= cfg_.f() + 1) {  // f+1 matching replies
    c.outstanding.erase(e.request_index);
    c.replies.erase(e.request_index);
    ++c.done;
  }
}

void Simulation::apply(uint32_t r, Actions actions) {
  Node& nd = nodes_[r];
  std::vector<std::pair<Seq, Hash32>> executed;
  for (auto& a : actions) {
    if (failed_) return;
    if (auto* p = std::get_if<consensus::PersistAction>(&a)) {
      if (p->record.kind == consensus::PersistRecord::Kind::kLease)
        nd.unsynced_leases.push_back(p->record);
      if (nd.store) {
        Status st = nd.store->append(p->record);
        if (!st.ok()) violation("storage", st.error().to_string());
      } else {
        nd.disk.push_back(std::move(p->record));
      }
    } else if (auto* t = std::get_if<consensus::TruncateAction>(&a)) {
      if (nd.store) {
        Status st = nd.store->truncate(t->stable_seq);
        if (!st.ok()) violation("storage", st.error().to_string());
      } else {
        // As the node's store: slot messages and leases at or below the checkpoint.
        std::vector<consensus::PersistRecord> kept;
        size_t synced = 0;
        for (size_t i = 0; i < nd.disk.size(); ++i) {
          const auto& rec = nd.disk[i];
          bool slot_bound = rec.kind == consensus::PersistRecord::Kind::kMessage ||
                            rec.kind == consensus::PersistRecord::Kind::kLease;
          if (slot_bound && rec.seq != 0 && rec.seq <= t->stable_seq) continue;
          if (i < nd.synced) ++synced;
          kept.push_back(std::move(nd.disk[i]));
        }
        nd.disk = std::move(kept);
        nd.synced = synced;
      }
    } else if (auto* s = std::get_if<consensus::SendAction>(&a)) {
      if (s->durable) sync(nd);  // persist before send, as the node does
      send_from(r, *s);
    } else if (auto* d = std::get_if<consensus::DeliverAction>(&a)) {
      if (honest(r)) check_delivery(r, *d);
      // Execute the block into the ledger; replicas then certify the header it produced.
      ledger::BuiltBlock built = nd.builder->apply(*d->block, d->state_digest, d->block_time);
      nd.header_time[built.header.height] = built.header.block_time;
      if (nd.view) nd.view->note_header(built.header.hash());
      if (honest(r)) {
        // Execution is deterministic: every honest replica builds the same header per height.
        auto [it, first] = header_at_.try_emplace(built.header.height, built.header.hash(), r);
        if (!first && it->second.first != built.header.hash())
          violation("ledger-agreement",
                    "replicas " + std::to_string(it->second.second) + " and " + std::to_string(r) +
                        " built different headers at height " +
                        std::to_string(built.header.height) + " from the same block");
        for (const auto& rec : built.records)
          if (!ledger_ids_[r].insert(rec.request_id).second)
            violation("at-most-once", "replica " + std::to_string(r) + " recorded request " +
                                          short_hex(rec.request_id) + " twice on its ledger");
      }
      if (nd.store) {
        Status st = ledger::persist_built_block(*nd.store, *nd.builder, built);
        if (!st.ok()) violation("storage", st.error().to_string());
      }
      executed.emplace_back(built.header.height, built.header.hash());
    } else if (auto* hc = std::get_if<consensus::HeaderCertifiedAction>(&a)) {
      sync(nd);  // the node answers its clients after a sync
      if (honest(r)) check_header_certificate(r, *hc);
      if (nd.store) {
        Status st = nd.store->put_certificate(hc->height, hc->view, hc->cert);
        if (!st.ok()) violation("storage", st.error().to_string());
      }
    } else if (auto* rp = std::get_if<consensus::ReplyAction>(&a)) {
      sync(nd);
      auto it = request_index_.find(rp->request_id);
      if (it == request_index_.end()) continue;
      if (faults_active() && chance(drop_p_)) continue;
      Event e{Event::kReply, now_ + rand(1, 5), 0, 0, r, nullptr, it->second};
      e.height = rp->height;
      if (nd.byz != ByzKind::kNone) e.height += 1000000;  // a lying replica's reply
      push(e);
    }
  }
  for (const auto& [h, digest] : executed) {
    if (failed_ || !nd.replica) break;
    apply(r, timed([&] { return nd.replica->on_executed(h, digest, now_); }));
  }
  if (honest(r) && nd.replica) {
    auto& rep = *nd.replica;
    if (rep.view() != nd.last_view || rep.in_view_change() != nd.last_changing) {
      nd.last_changing = rep.in_view_change();
      trace(std::to_string(now_) + "ms replica " + std::to_string(r) + " -> view " +
            std::to_string(rep.view()) + (rep.in_view_change() ? " (changing)" : " (active)"));
      if (!rep.in_view_change()) {
        narrate("replica " + std::to_string(r) + " entered view " + std::to_string(rep.view()) +
                " (primary: replica " + std::to_string(cfg_.primary(rep.view())) + ")");
      } else {
        narrate("replica " + std::to_string(r) +
                " timed out or saw f+1 view changes: asks for view " + std::to_string(rep.view()));
      }
      nd.last_view = rep.view();
    }
    if (rep.counters().dropped_conflicting > nd.last_conflicts) {
      narrate("replica " + std::to_string(r) +
              " received two different signed messages for one slot and kept only the first");
      nd.last_conflicts = rep.counters().dropped_conflicting;
    }
  }
}

void Simulation::sync(Node& nd) {
  nd.synced = nd.disk.size();
  for (const auto& l : nd.unsynced_leases)
    if (nd.replica) nd.replica->on_lease_durable(l.view, l.seq);
  nd.unsynced_leases.clear();
}

void Simulation::lose_unsynced(Node& nd) {
  nd.unsynced_leases.clear();
  if (nd.store || nd.synced >= nd.disk.size()) return;
  size_t cut = rand(nd.synced, nd.disk.size());
  size_t lost = 0;
  std::vector<consensus::PersistRecord> kept(std::make_move_iterator(nd.disk.begin()),
                                             std::make_move_iterator(nd.disk.begin() + cut));
  for (size_t i = cut; i < nd.disk.size(); ++i) {
    auto k = nd.disk[i].kind;
    if (k == consensus::PersistRecord::Kind::kCommitted ||
        k == consensus::PersistRecord::Kind::kStable) {
      kept.push_back(std::move(nd.disk[i]));
    } else {
      ++lost;
    }
  }
  nd.disk = std::move(kept);
  nd.synced = nd.disk.size();
  res_.unsynced_records_lost += lost;
}

void Simulation::send_from(uint32_t r, const consensus::SendAction& sa) {
  std::vector<uint32_t> targets;
  if (sa.to) {
    targets.push_back(*sa.to);
  } else {
    for (uint32_t i = 0; i < o_.replicas; ++i)
      if (i != r) targets.push_back(i);
  }
  Node& nd = nodes_[r];
  if (nd.byz == ByzKind::kNone) {
    check_honest_signature(r, *sa.bytes);
    for (uint32_t t : targets) net_send(r, t, sa.bytes);
    return;
  }
  ByzKind k = nd.byz;
  if (k == ByzKind::kMixed) {
    static const ByzKind kAll[] = {ByzKind::kSilent,           ByzKind::kEquivocate,
                                   ByzKind::kConflictingVotes, ByzKind::kBadSignature,
                                   ByzKind::kReplay,           ByzKind::kInvalidBlock};
    k = kAll[rand(0, 5)];
  }
  auto env = Envelope::decode(as_view(*sa.bytes));
  auto mk = [](Envelope e) { return std::make_shared<const Bytes>(e.encode()); };
  switch (k) {
    case ByzKind::kSilent:
      return;
    case ByzKind::kBadSignature:
      for (uint32_t t : targets) {
        Bytes b = *sa.bytes;
        if (chance(0.7)) b[b.size() - 1 - rand(0, 63)] ^= static_cast<uint8_t>(1u << rand(0, 7));
        net_send(r, t, std::make_shared<const Bytes>(std::move(b)));
      }
      return;
    case ByzKind::kEquivocate:
      if (env.ok() && env->type == MsgType::kPrePrepare) {
        // Two different pre-prepares for one (view, seq), each half of the replicas getting one,
        // backed by this replica's prepare and commit for the version that half saw.
        auto pp = consensus::PrePrepare::decode(as_view(env->body));
        if (!pp.ok()) return;
        consensus::PrePrepare alt = *pp;
        alt.block.block_time += 1;
        if (alt.block.requests.size() > 1) alt.block.requests.pop_back();
        std::shuffle(targets.begin(), targets.end(), rng_);
        size_t half = std::max<size_t>(1, targets.size() / 2);
        if (o_.byzantine_primary_story) {
          std::sort(targets.begin(), targets.end());
          narrate("replica " + std::to_string(r) + " (Byzantine primary) signs " +
                  std::to_string(targets.size()) + " different blocks for view " +
                  std::to_string(pp->view) + " height " + std::to_string(pp->seq) +
                  ", one per replica");
        }
        for (size_t i = 0; i < targets.size(); ++i) {
          consensus::PrePrepare story = *pp;
          story.block.block_time += i;  // the demo: every replica gets its own version
          const consensus::PrePrepare& mine =
              o_.byzantine_primary_story ? story : (i < half ? alt : *pp);
          consensus::Vote v{mine.view, mine.seq, mine.block.digest()};
          net_send(r, targets[i], mk(resign(r, MsgType::kPrePrepare, mine.encode())));
          net_send(r, targets[i], mk(resign(r, MsgType::kPrepare, v.encode())));
          net_send(r, targets[i], mk(resign(r, MsgType::kCommit, v.encode())));
        }
        return;
      }
      [[fallthrough]];
    case ByzKind::kConflictingVotes:
      if (env.ok() && env->type == MsgType::kHeaderVote) {
        auto v = consensus::HeaderVote::decode(as_view(env->body));
        if (!v.ok()) return;
        for (auto& b : v->header_digest) b = static_cast<uint8_t>(rng_());  // a lying execution
        auto bytes = mk(resign(r, env->type, v->encode()));
        for (uint32_t t : targets) net_send(r, t, bytes);
        return;
      }
      if (env.ok() && (env->type == MsgType::kPrepare || env->type == MsgType::kCommit)) {
        auto v = consensus::Vote::decode(as_view(env->body));
        if (!v.ok()) return;
        for (uint32_t t : targets) {
          consensus::Vote w = *v;
          if (chance(0.5)) {
            for (auto& b : w.digest) b = static_cast<uint8_t>(rng_());
          }
          net_send(r, t, mk(resign(r, env->type, w.encode())));
        }
        return;
      }
      break;
    case ByzKind::kInvalidBlock:
      if (env.ok() && env->type == MsgType::kPrePrepare) {
        auto pp = consensus::PrePrepare::decode(as_view(env->body));
        if (!pp.ok()) return;
        Request forged;
        forged.client_id = kForgedClient;
        forged.client_seq = rand(1, 1000000);
        forged.payload = Bytes(80, 0x41);
        pp->block.requests.push_back(forged);
        auto b = mk(resign(r, MsgType::kPrePrepare, pp->encode()));
        for (uint32_t t : targets) net_send(r, t, b);
        return;
      }
      break;
    case ByzKind::kReplay: {
      for (uint32_t t : targets) net_send(r, t, sa.bytes);
      if (!nd.history.empty() && chance(0.3)) {
        auto old = nd.history[rand(0, nd.history.size() - 1)];
        net_send(r, targets[rand(0, targets.size() - 1)], old);
      }
      if (env.ok() && (env->type == MsgType::kPrepare || env->type == MsgType::kCommit) &&
          chance(0.3)) {
        // ByzzFuzz-style small-scope mutation: view or seq off by one, re-signed.
        auto v = consensus::Vote::decode(as_view(env->body));
        if (v.ok()) {
          if (chance(0.5))
            v->view += chance(0.5) ? 1 : (v->view > 0 ? -1 : 1);
          else
            v->seq += chance(0.5) ? 1 : (v->seq > 1 ? -1 : 1);
          net_send(r, targets[rand(0, targets.size() - 1)], mk(resign(r, env->type, v->encode())));
        }
      }
      return;
    }
    default:
      break;
  }
  for (uint32_t t : targets) net_send(r, t, sa.bytes);
}

void Simulation::net_send(uint32_t from, uint32_t to, std::shared_ptr<const Bytes> bytes) {
  uint64_t delay = rand(1, 5);
  if (faults_active()) {
    for (const auto& p : partitions_) {
      if (now_ >= p.start && now_ < p.end && p.side[from] != p.side[to]) {
        if (!p.oneway || p.side[from] == 1) return;
      }
    }
    if (chance(drop_p_)) return;
    if (chance(delay_p_)) delay += rand(10, 300);  // reordering
    if (chance(dup_p_))
      push(Event{Event::kDeliver, now_ + delay + rand(0, 50), 0, to, from, bytes});
  }
  push(Event{Event::kDeliver, now_ + delay, 0, to, from, std::move(bytes)});
}

void Simulation::check_honest_signature(uint32_t r, const Bytes& bytes) {
  auto env = Envelope::decode(as_view(bytes));
  if (!env.ok()) return;
  Hash32 digest;
  View v;
  Seq s;
  if (env->type == MsgType::kPrePrepare) {
    auto pp = consensus::PrePrepare::decode(as_view(env->body));
    if (!pp.ok()) return;
    v = pp->view;
    s = pp->seq;
    digest = pp->block.digest();
  } else if (env->type == MsgType::kPrepare || env->type == MsgType::kCommit) {
    auto vt = consensus::Vote::decode(as_view(env->body));
    if (!vt.ok()) return;
    v = vt->view;
    s = vt->seq;
    digest = vt->digest;
  } else {
    return;
  }
  auto key = std::make_tuple(r, static_cast<uint8_t>(env->type), v, s);
  auto [it, inserted] = honest_signed_.emplace(key, digest);
  if (!inserted && it->second != digest) {
    violation("no-equivocation", "honest replica " + std::to_string(r) + " signed two different " +
                                     consensus::msg_type_name(env->type) + "s for view " +
                                     std::to_string(v) + " seq " + std::to_string(s) + ": " +
                                     short_hex(it->second) + " and " + short_hex(digest));
  }
}

void Simulation::check_delivery(uint32_t r, const consensus::DeliverAction& d) {
  const auto& cb = *d.block;
  Seq h = cb.block.height;
  Hash32 digest = cb.block.digest();
  if (h != delivered_height_[r] + 1) {
    violation("continuity", "replica " + std::to_string(r) + " delivered height " +
                                std::to_string(h) + " after " +
                                std::to_string(delivered_height_[r]));
    return;
  }
  delivered_height_[r] = h;
  auto [it, inserted] = committed_.emplace(h, digest);
  if (!inserted && it->second != digest) {
    violation("agreement", "height " + std::to_string(h) + ": replica " + std::to_string(r) +
                               " delivered block " + short_hex(digest) +
                               ", another honest replica " + "delivered " + short_hex(it->second));
    return;
  }
  if (inserted) {
    res_.blocks = std::max(res_.blocks, h);
    narrate("height " + std::to_string(h) + " committed in view " + std::to_string(cb.view) +
            (cb.block.is_null()
                 ? " (null block filling a gap left by the view change)"
                 : " with " + std::to_string(cb.block.requests.size()) + " request(s)") +
            ", certified by " + std::to_string(cb.cert.sigs.size()) + " commit signatures");
  }
  Bytes msg = consensus::commit_vote_message(cfg_.chain_id, cfg_.epoch, cb.view, h, digest);
  Status st = crypto::verify_quorum(
      cb.cert, cfg_.committee, cfg_.quorum(), as_view(msg),
      [this](const crypto::PublicKey& pk, ByteView m, const crypto::Signature& s) {
        return o_.cache_signatures ? cache_->verify(pk, m, s) : crypto::verify(pk, m, s);
      });
  if (!st.ok()) {
    violation("certificate", "height " + std::to_string(h) + " delivered by replica " +
                                 std::to_string(r) +
                                 " has an invalid commit certificate: " + st.error().to_string());
    return;
  }
  auto& ids = ids_by_height_[h];
  if (ids.empty()) {
    for (const Request& q : cb.block.requests) ids.push_back(q.id());
  }
  for (const Hash32& id : ids) {
    if (!sent_requests_.count(id)) {
      violation("validity", "replica " + std::to_string(r) + " delivered request " + short_hex(id) +
                                " at height " + std::to_string(h) + " that no client sent");
      return;
    }
    delivered_requests_[r].insert(id);
  }
}

void Simulation::check_header_certificate(uint32_t r, const consensus::HeaderCertifiedAction& hc) {
  ++res_.headers_certified;
  auto [it, inserted] = certified_headers_.emplace(hc.height, hc.header_digest);
  if (!inserted && it->second != hc.header_digest) {
    violation("header-agreement", "height " + std::to_string(hc.height) + ": replica " +
                                      std::to_string(r) + " certified header " +
                                      short_hex(hc.header_digest) + ", another certified " +
                                      short_hex(it->second));
    return;
  }
  Bytes msg = consensus::header_vote_message(cfg_.chain_id, cfg_.epoch, hc.height, hc.view,
                                             hc.header_digest);
  Status st = crypto::verify_quorum(hc.cert, cfg_.committee, cfg_.quorum(), as_view(msg));
  if (!st.ok()) {
    violation("certificate", "header certificate for height " + std::to_string(hc.height) +
                                 " at replica " + std::to_string(r) + ": " +
                                 st.error().to_string());
  }
}

bool Simulation::all_done() const {
  for (const auto& c : clients_)
    if (c.done < c.requests.size()) return false;
  for (uint32_t i = 0; i < o_.replicas; ++i) {
    if (!honest(i)) continue;
    if (!nodes_[i].up) return false;
    if (delivered_requests_[i].size() < all_requests_.size()) return false;
  }
  return true;
}

void Simulation::violation(const std::string& inv, const std::string& detail) {
  if (failed_) return;
  failed_ = true;
  res_.ok = false;
  res_.invariant = inv;
  res_.detail = detail;
  res_.last_events.assign(trace_.begin(), trace_.end());
}

void Simulation::trace(const std::string& s) {
  if (o_.trace) std::fprintf(stderr, "%s\n", s.c_str());
  trace_.push_back(s);
  if (trace_.size() > kTraceDepth) trace_.pop_front();
}

}  // namespace

SimResult run_simulation(const SimOptions& opts) {
  Simulation s(opts);
  return s.run();
}

}  // namespace attestnet::sim
