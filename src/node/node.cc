#include "node/node.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/hash.h"
#include "ledger/audit.h"
#include "ledger/prover.h"
#include "state/store_view.h"

namespace attestnet::node {

namespace asio = boost::asio;
using consensus::Actions;
using consensus::Replica;

namespace {

// Header hashes that count as fresh anchors (docs/protocol: a quote must bind a recent block).
constexpr size_t kAnchorWindow = 1024;
// VM states execution keeps in memory (state::MemoryLedgerView::forget_unused): a VM that
// attests after the others pushed it out is read back from the store's VM index.
constexpr size_t kVmStatesInMemory = size_t{1} << 18;

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Result<std::string> slurp(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(Errc::kIo, std::string("cannot read the ") + what + " " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Result<crypto::SecretKey> load_key(const std::string& path) {
  ATN_TRY(std::string text, slurp(path, "identity key"));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  auto b = from_hex(text);
  if (!b || b->size() != 32)
    return make_error(Errc::kBadValue, path +
                                           " is not an identity key (64 hex digits: an "
                                           "Ed25519 seed, as `attestnet keygen` writes)");
  crypto::Seed seed;
  std::copy(b->begin(), b->end(), seed.begin());
  return crypto::SecretKey::from_seed(seed);
}

namespace {

// A request as the peers' kRequest channel carries it.
std::shared_ptr<const Bytes> request_frame(const consensus::Request& q) {
  Writer w(q.payload.size() + 32);
  q.encode(w);
  return std::make_shared<const Bytes>(std::move(w).take());
}

// Without durability the replica must not speak: stop rather than risk equivocation.
[[noreturn]] void fatal_store(const Status& st) {
  std::fprintf(stderr, "attestnet node: FATAL: cannot persist: %s\n",
               st.error().to_string().c_str());
  std::_Exit(70);
}

// The first reason's rule name ("tpm2.pcr", "freshness", ...), for a bounded metrics label.
std::string reason_label(const std::string& reason) {
  auto end = reason.find_first_of(": ");
  std::string l = reason.substr(0, std::min<size_t>(end, 40));
  for (char& c : l)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return l.empty() ? "unspecified" : l;
}

}  // namespace

void Histogram::observe(double ms) {
  size_t i = 0;
  while (i < kBounds.size() && ms > kBounds[i]) ++i;
  ++buckets[i];
  ++count;
  double s = sum.load();
  while (!sum.compare_exchange_weak(s, s + ms)) {
  }
}

Status pin_to_cpus(const std::vector<uint32_t>& cpus) {
  if (cpus.empty()) return {};
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string list;
  for (uint32_t c : cpus) {
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
    list += (list.empty() ? "" : ",") + std::to_string(c);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return make_error(Errc::kInvalidArgument,
                      "[node] cpus: cannot run on CPU(s) " + list + ": " + std::strerror(errno) +
                          " (this host has " + std::to_string(std::thread::hardware_concurrency()) +
                          " CPUs)");
  }
  return {};
}

Result<std::unique_ptr<Node>> Node::open(const NodeConfig& cfg) {
  crypto::init();
  std::unique_ptr<Node> n(new Node());
  n->cfg_ = cfg;
  n->block_interval_ms_ = cfg.min_block_interval_ms;
  ATN_TRY(n->key_, load_key(cfg.key_file));
  ATN_TRY(std::string gtext, slurp(cfg.genesis_file, "genesis file"));
  nlohmann::json gj;
  try {
    gj = nlohmann::json::parse(gtext);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kBadValue, cfg.genesis_file + " is not JSON: " + e.what());
  }
  auto g = ledger::Genesis::from_json(gj);
  if (!g.ok()) return make_error(g.error().code, cfg.genesis_file + ": " + g.error().reason);
  n->genesis_ = std::move(g).value();
  if (!n->genesis_.admission_policy.empty()) {
    auto ap = policy::parse_policy(n->genesis_.admission_policy);
    if (!ap.ok())
      return make_error(ap.error().code,
                        cfg.genesis_file + ": admission_policy: " + ap.error().reason);
    n->admission_ = std::make_shared<const policy::Policy>(std::move(ap).value());
  }
  Node* np = n.get();
  n->admit_ = [np](const state::NodeJoin& j, uint64_t t) { return np->admit(j, t); };

  if (!cfg.ordering_only) {
    ATN_TRY(std::string ptext, slurp(cfg.policy_file, "policy"));
    auto pol = policy::parse_policy(ptext);
    if (!pol.ok()) return make_error(pol.error().code, cfg.policy_file + ": " + pol.error().reason);
    n->policy_ = std::make_shared<const policy::Policy>(std::move(pol).value());
    n->app_ = std::make_shared<state::AttestationApp>(n->policy_);
  }
  // Verified signatures, shared by the workers (who fill it on arrival), the replica's verify
  // hook, execution (set_verifier) and response building.
  // ~10 s of a 4-node devnet's peak in each generation: what is asked again is asked soon.
  n->sigs_ = std::make_shared<crypto::SignatureMemo>(65536, 8192);
  if (n->app_) n->app_->set_verifier(n->memo_verify());

  n->trust_ = std::make_unique<state::TrustState>(n->genesis_.chain_id, n->genesis_.trust,
                                                  n->genesis_.members, n->genesis_.hash());
  n->committees_[0] = n->genesis_.committee();
  n->bases_[0] = EpochBase{};

  // The store: refuse a damaged one, resume the ledger after its last header, replay the
  // replica's write-ahead records.
  std::filesystem::create_directories(cfg.data_dir);
  auto st = ledger::ReplicaStore::open(cfg.data_dir);
  if (!st.ok()) return make_error(st.error().code, cfg.data_dir + ": " + st.error().reason);
  n->store_ = std::move(st).value();
  n->store_->set_ledger_sync(false);
  if (Status tip = ledger::verify_tip(*n->store_, n->genesis_); !tip.ok())
    return make_error(tip.error().code, cfg.data_dir + " does not verify against " +
                                            cfg.genesis_file + ": " + tip.error().reason);
  Node* self = n.get();
  n->builder_ = std::make_unique<ledger::LedgerBuilder>(
      n->genesis_, [self](const consensus::Request& q, uint64_t t) { return self->execute(q, t); });
  ATN_CHECK(ledger::resume_from_store(*n->store_, *n->builder_));
  // What execution reads of the ledger: the last 1,024 header hashes now, each VM's state from
  // the store when it first attests again (not a scan of every record).
  n->view_ = std::make_unique<state::MemoryLedgerView>(n->genesis_.hash(), kAnchorWindow);
  ATN_CHECK(state::open_view(*n->store_, n->builder_->next_height() - 1, kAnchorWindow, *n->view_,
                             [](const Error& e) {
                               std::fprintf(stderr,
                                            "attestnet node: FATAL: cannot read a VM's state "
                                            "from the store: %s\n",
                                            e.to_string().c_str());
                               std::_Exit(70);
                             }));
  // The trust state, the consensus digest and the committees are a function of the blocks:
  // start from the last snapshot (an epoch's end, or every [node] snapshot_interval blocks;
  // used when it matches its header's state root), and fold the blocks after it.
  uint64_t replay_from = n->restore_snapshot();
  for (uint64_t h = replay_from; h < n->builder_->next_height(); ++h) {
    ATN_TRY(auto cb, n->store_->block(h));
    ATN_TRY(auto hf, n->store_->header(h));
    ATN_TRY(auto hdr, ledger::BlockHeader::decode(as_view(hf.first)));
    std::optional<ledger::Committee> next =
        state::fold_block(*n->trust_, n->chain_, cb.block, n->memo_verify(), n->admit_).next;
    n->trust_->note_header(h, hdr.hash());
    if (next) {
      if (hdr.next_committee_hash != next->hash()) {
        return make_error(Errc::kCommitteeMismatch,
                          cfg.data_dir +
                              ": replaying the ledger names another committee for "
                              "epoch " +
                              std::to_string(next->epoch) + " than header " + std::to_string(h));
      }
      n->committees_[next->epoch] = *next;
      n->bases_[next->epoch] = EpochBase{h, n->chain_.digest, n->chain_.block_time};
    }
  }
  n->refresh_registry();
  ATN_CHECK(n->catch_up_ledger());
  // Who this node is: its key's entry in the registry (genesis, or admitted by a NodeJoin).
  const crypto::PublicKey me = n->key_.public_key();
  const std::string me_hex = to_hex(ByteView(me.data(), 32));
  if (n->self_ == kUnregistered) {
    if (const crypto::PublicKey* now = n->trust_->rotated_to(me))
      return make_error(Errc::kUnknownSigner, "the key in " + cfg.key_file + " (" + me_hex +
                                                  ") was rotated to " +
                                                  to_hex(ByteView(now->data(), 32)) +
                                                  ": configure the new key file and start again");
    if (!cfg.peer_listen)
      return make_error(Errc::kInvalidArgument,
                        "the key in " + cfg.key_file + " (" + me_hex + ") is not registered in " +
                            cfg.genesis_file +
                            " or the ledger: a node that joins later needs [listen] peer in " +
                            cfg.config_path + " (the endpoint its NodeJoin announces)");
    std::fprintf(stderr,
                 "attestnet node: the key %s is not registered yet: following the ledger once "
                 "a node admits it (submit `attestnet join`)\n",
                 me_hex.substr(0, 16).c_str());
  }
  // Prepare leases (consensus/replica.h) stand for records an unsynced send may have lost; after
  // a clean stop (SIGTERM: Node::stop) none was lost, so they are skipped in recovery and a
  // restarted primary goes on proposing instead of waiting out a view change.
  ATN_TRY(bool clean, n->store_->take_clean_stop());
  n->hooks_.verify = n->memo_verify();
  // Blocks below what a replica keeps in memory are served to lagging peers from the store.
  n->hooks_.load_block =
      [self](consensus::Seq h) -> std::shared_ptr<const consensus::CommittedBlock> {
    auto cb = self->store_->block(h);
    if (!cb.ok()) return nullptr;
    return std::make_shared<const consensus::CommittedBlock>(std::move(cb).value());
  };
  n->hooks_.validate = [self](const consensus::Request& q) -> Status {
    {
      std::lock_guard lk(self->vmu_);
      if (self->validated_.erase(q.id())) return {};
    }
    return self->validate_request(q);
  };
  n->cur_epoch_ = n->trust_->epoch();
  const ledger::Committee& cur = n->committees_[n->cur_epoch_];
  {
    std::lock_guard lk(n->smu_);
    n->epoch_ = n->cur_epoch_;
    for (const auto& [e, c] : n->committees_)
      if (e + 2 >= n->cur_epoch_)
        n->committee_keys_[e] = std::make_shared<const std::vector<crypto::PublicKey>>(c.members);
  }
  if (n->index_in(cur)) {
    const EpochBase& b = n->bases_[n->cur_epoch_];
    // The records are read and replayed one at a time: a replica keeps only a window of blocks
    // in memory (load_block above), and so does its recovery.
    auto r = Replica::start_recovery(
        n->replica_config(n->cur_epoch_, cur, b.height, b.digest, b.time), n->key_, n->hooks_);
    // From the newest stable checkpoint the ledger has reached: the blocks below it are on the
    // ledger and in the store, and are neither read nor executed again.
    ATN_TRY(auto replayed,
            ledger::replay_store(*n->store_, *r, n->builder_->next_height() - 1,
                                 [clean](const consensus::PersistRecord& rec) {
                                   return !(clean &&
                                            rec.kind == consensus::PersistRecord::Kind::kLease);
                                 }));
    r->finish_recovery();
    if (replayed.not_resumed)
      std::fprintf(stderr,
                   "attestnet node: not resuming at the newest stable checkpoint (%s): replayed "
                   "every block of the epoch\n",
                   replayed.not_resumed->reason.c_str());
    if (replayed.resumed)
      std::fprintf(stderr,
                   "attestnet node: replica resumed at stable checkpoint %llu (%llu records "
                   "replayed)\n",
                   static_cast<unsigned long long>(replayed.resumed),
                   static_cast<unsigned long long>(replayed.records));
    n->replicas_[n->cur_epoch_] = std::move(r);
  }
  {
    std::lock_guard lk(n->smu_);
    n->tip_height_ = n->builder_->next_height() - 1;
    n->tip_hash_ = n->tip_height_ ? n->builder_->tip_hash() : n->genesis_.hash();
    for (uint64_t h = n->store_->highest_header(); h >= 1; --h)
      if (n->store_->certificate(h).ok()) {
        n->certified_height_ = h;
        break;
      }
  }
  return n;
}

// A committed block the store holds but the ledger does not (a crash between the two synced
// writes): execute it now, exactly as the replica's DeliverAction would have.
Status Node::catch_up_ledger() {
  for (uint64_t h = builder_->next_height(); h <= store_->highest_block(); ++h) {
    ATN_TRY(auto cb, store_->block(h));
    execute_block(std::make_shared<const consensus::CommittedBlock>(std::move(cb)));
  }
  return {};
}

consensus::ReplicaConfig Node::replica_config(uint64_t epoch, const ledger::Committee& c,
                                              uint64_t base_height, const Hash32& base_digest,
                                              uint64_t base_time) const {
  consensus::ReplicaConfig rc;
  rc.chain_id = genesis_.chain_id;
  rc.epoch = epoch;
  rc.committee = c.members;
  rc.self = index_in(c).value_or(0);
  rc.batch_max = cfg_.batch_max;
  rc.batch_wait_ms = cfg_.batch_wait_ms;
  rc.checkpoint_interval = genesis_.checkpoint_interval;
  rc.window = std::max<uint64_t>(64, 4 * rc.checkpoint_interval);
  rc.view_change_timeout_ms = cfg_.view_change_timeout_ms;
  rc.max_inflight_blocks = cfg_.max_inflight_blocks;
  rc.prepare_lease = cfg_.prepare_lease;
  rc.pipeline_min_batch = cfg_.pipeline_min_batch ? cfg_.pipeline_min_batch : cfg_.batch_max;
  rc.min_block_interval_ms = block_interval_ms_.load();
  rc.base_height = base_height;
  rc.base_state_digest = base_digest;
  rc.base_block_time = base_time;
  rc.last_height = trust_->epoch_end(epoch);
  return rc;
}

std::optional<consensus::ReplicaId> Node::index_in(const ledger::Committee& c) const {
  for (uint32_t i = 0; i < c.members.size(); ++i)
    if (c.members[i] == key_.public_key()) return i;
  return std::nullopt;
}

uint64_t Node::restore_snapshot() {
  auto snap = store_->snapshot();
  if (!snap.ok()) return 1;
  auto fail = [&](const std::string& why) -> uint64_t {
    std::fprintf(stderr,
                 "attestnet node: the stored snapshot is not used (%s): replaying every "
                 "block\n",
                 why.c_str());
    return 1;
  };
  Reader r(as_view(*snap), 256u << 20);
  auto hd = r.header(kSnapshotTag, 1, 2, "node snapshot");
  auto h = r.u64();
  auto digest = r.hash();
  auto time = r.u64();
  // Version 2 names the base its epoch's replica starts from (a snapshot inside an epoch);
  // version 1 was written only at an epoch's end, which is the next epoch's base.
  Result<uint64_t> base_h = h;
  Result<Hash32> base_digest = digest;
  Result<uint64_t> base_time = time;
  if (hd.ok() && *hd >= 2) {
    base_h = r.u64();
    base_digest = r.hash();
    base_time = r.u64();
  }
  auto trust = r.bytes_view();
  if (!hd.ok() || !h.ok() || !digest.ok() || !time.ok() || !base_h.ok() || !base_digest.ok() ||
      !base_time.ok() || !trust.ok() || !r.finish().ok())
    return fail("undecodable");
  if (*h >= builder_->next_height()) return fail("newer than the ledger");
  auto hf = store_->header(*h);
  if (!hf.ok()) return fail(hf.error().reason);
  auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
  if (!hdr.ok()) return fail(hdr.error().reason);
  auto t = std::make_unique<state::TrustState>(genesis_.chain_id, genesis_.trust, genesis_.members,
                                               genesis_.hash());
  if (Status st = t->restore(*trust); !st.ok()) return fail(st.error().reason);
  if (state::state_root(*digest, *t) != hdr->state_root)
    return fail("it does not match the state root of header " + std::to_string(*h));
  // Every epoch's committee up to now is in the store (written with the block that named it).
  std::map<uint64_t, ledger::Committee> committees{{0, genesis_.committee()}};
  for (uint64_t e = 1; e <= t->epoch(); ++e) {
    auto c = store_->committee(e);
    if (!c.ok()) return fail(c.error().reason);
    committees[e] = std::move(c).value();
  }
  if (committees[t->epoch()].hash() != t->committee().hash())
    return fail("the stored committee of epoch " + std::to_string(t->epoch()) + " differs");
  trust_ = std::move(t);
  chain_ = state::ChainState{*digest, *time};
  committees_ = std::move(committees);
  bases_[trust_->epoch()] = EpochBase{*base_h, *base_digest, *base_time};
  std::fprintf(stderr,
               "attestnet node: trust state restored from the snapshot at height %llu (epoch "
               "%llu); folding %llu later blocks\n",
               static_cast<unsigned long long>(*h),
               static_cast<unsigned long long>(trust_->epoch()),
               static_cast<unsigned long long>(builder_->next_height() - 1 - *h));
  return *h + 1;
}

Status Node::admit(const state::NodeJoin& j, uint64_t block_time_ms) const {
  if (!admission_)
    return make_error(Errc::kBadValue,
                      "this network admits no nodes (the genesis has no admission_policy)");
  Hash32 b = state::join_binding(genesis_.hash(), j.key);
  policy::AppraisalInput in;
  in.platform = j.platform;
  in.evidence = as_view(j.evidence);
  in.expected_binding = Bytes(b.begin(), b.end());
  in.at_unix = static_cast<int64_t>(block_time_ms / 1000);
  crypto::VerifyFn v = memo_verify();
  in.ed25519 = &v;
  policy::AppraisalResult r = policy::appraise(admission_.get(), in);
  if (r.verdict == policy::Verdict::kAffirming) return {};
  std::string why;
  for (const auto& x : r.reasons) why += (why.empty() ? "" : "; ") + x;
  return make_error(Errc::kBadValue, std::string("the admission policy's verdict is ") +
                                         policy::verdict_name(r.verdict) +
                                         (why.empty() ? "" : ": " + why));
}

std::shared_ptr<const Node::Registry> Node::registry() const {
  std::lock_guard lk(smu_);
  return registry_;
}

void Node::refresh_registry() {
  if (registry_ && registry_->version == trust_->registry_version()) return;
  auto reg = std::make_shared<Registry>();
  reg->version = trust_->registry_version();
  for (uint32_t i = 0; i < trust_->registry_size(); ++i) {
    const state::NodeEntry& e = trust_->at(i);
    reg->peers.push_back({e.key, e.name, e.endpoint, e.active});
    reg->index[e.key] = i;
  }
  auto it = reg->index.find(key_.public_key());
  uint32_t was = self_.load();
  uint32_t now = it == reg->index.end() ? kUnregistered : it->second;
  if (was != now && started_) {
    if (now != kUnregistered) {
      std::fprintf(stderr, "attestnet node: registered as node %u (%s)\n", now,
                   reg->peers[now].name.c_str());
    } else if (const crypto::PublicKey* k = trust_->rotated_to(key_.public_key())) {
      std::fprintf(stderr,
                   "attestnet node: this node's key was rotated to %s: it no longer takes part; "
                   "restart it with the new key\n",
                   to_hex(ByteView(k->data(), 32)).substr(0, 16).c_str());
    }
  }
  self_ = now;
  {
    std::lock_guard lk(smu_);
    registry_ = reg;
  }
  if (transport_) transport_->set_peers(transport_peers(*reg));
}

std::vector<net::PeerAddress> Node::transport_peers(const Registry& reg) const {
  std::vector<net::PeerAddress> out;
  for (uint32_t i = 0; i < reg.peers.size(); ++i) {
    const RegistryPeer& p = reg.peers[i];
    if (p.key == key_.public_key()) continue;
    auto ov = cfg_.peer_overrides.find(p.name);
    auto hp = parse_host_port(ov != cfg_.peer_overrides.end() ? ov->second : p.endpoint);
    if (!hp.ok()) {
      std::fprintf(stderr, "attestnet node: node %u (%s) has no usable endpoint: %s\n", i,
                   p.name.c_str(), hp.error().reason.c_str());
      continue;
    }
    out.push_back({i, p.key, hp->host, hp->port});
  }
  return out;
}

std::optional<uint32_t> Node::next_peer(uint32_t& cursor) const {
  auto reg = registry();
  uint32_t n = static_cast<uint32_t>(reg->peers.size());
  for (uint32_t tries = 0; tries < n; ++tries) {
    cursor = (cursor + 1) % n;
    if (cursor != self_.load()) return cursor;
  }
  return std::nullopt;
}

Status Node::validate_request(const consensus::Request& q) const {
  switch (state::tx_kind(as_view(q.payload))) {
    case state::TxKind::kAttestation:
      return app_ ? app_->validate(q) : Status{};
    case state::TxKind::kUnknown:
      // Ordering only accepts any payload (the bench's); otherwise it must be a transaction.
      if (!app_) return {};
      return make_error(Errc::kBadValue,
                        "the request is neither an attestation request nor a "
                        "trust transaction (unknown tag)");
    default:
      // Stateless checks only (thread-safe): signatures and encodings.
      return trust_->validate(q, memo_verify());
  }
}

std::optional<ledger::AttestationRecord> Node::execute(const consensus::Request& q, uint64_t t) {
  state::TxKind kind = state::tx_kind(as_view(q.payload));
  if (kind != state::TxKind::kAttestation && kind != state::TxKind::kUnknown) {
    return std::nullopt;  // a trust transaction: its effect is the trust state (state_root)
  }
  if (!app_) {  // ordering only: the record says what was ordered, nothing is appraised
    ledger::AttestationRecord r;
    r.request_id = q.id();
    r.timestamp = t;
    r.vm_id = "client-" + std::to_string(q.client_id);
    r.platform = "none";
    return r;
  }
  ledger::AttestationRecord r = app_->execute(q, t, *view_);
  view_->note_record(r);
  if (r.verdict != policy::Verdict::kAffirming) {
    std::lock_guard lk(smu_);
    ++appraisal_failures_[r.reasons.empty() ? "unspecified" : reason_label(r.reasons.front())];
  }
  return r;
}

Node::~Node() {
  stop();
}

crypto::VerifyFn Node::memo_verify() const {
  return sigs_->fn();
}

Status Node::start() {
  net::TransportConfig tc;
  tc.self = self_;
  auto reg = registry();
  HostPort listen;
  if (cfg_.peer_listen) {
    listen = *cfg_.peer_listen;
  } else {
    const RegistryPeer& me = reg->peers.at(self_);
    auto hp = parse_host_port(me.endpoint);
    if (!hp.ok())
      return make_error(Errc::kInvalidArgument,
                        "registered endpoint of " + me.name + ": " + hp.error().reason);
    listen = *hp;
  }
  tc.listen_host = listen.host;
  tc.listen_port = listen.port;
  tc.peers = transport_peers(*reg);
  transport_ = std::make_unique<net::Transport>(
      io_, tc, key_,
      [this](uint32_t from, net::Channel ch, Bytes b) { on_frame(from, ch, std::move(b)); });
  ATN_CHECK(transport_->start());

  api::HttpConfig hc;
  hc.host = cfg_.api_listen.host;
  hc.port = cfg_.api_listen.port;
  hc.max_body_bytes = cfg_.max_body_bytes;
  hc.rate_per_second = cfg_.rate_limit_per_second;
  hc.rate_burst = cfg_.rate_limit_burst;
  http_ = std::make_unique<api::HttpServer>(io_, hc, make_api_handler(*this));
  ATN_CHECK(http_->start());

  workers_ = std::make_unique<asio::thread_pool>(cfg_.workers);
  work_.emplace(io_.get_executor());
  // Named threads: `top -H` and `ps -L` show what each costs.
  for (uint32_t i = 0; i < cfg_.io_threads; ++i)
    io_threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "atn-io");
      io_.run();
    });
  effects_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "atn-effects");
    effects_loop();
  });
  consensus_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "atn-consensus");
    consensus_loop();
  });
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    asio::post(*workers_, [] { pthread_setname_np(pthread_self(), "atn-worker"); });
  started_ = true;
  return {};
}

void Node::stop() {
  if (!started_ || stopping_.exchange(true)) return;
  if (http_) http_->stop();
  ccv_.notify_all();
  if (consensus_thread_.joinable()) consensus_thread_.join();
  // A replica event running on another thread (post_consensus) finishes and hands its actions
  // to the effects thread; none starts after this (post_consensus checks stopping_ under rmu_).
  { std::lock_guard rl(rmu_); }
  consensus_done_ = true;
  // The effects thread finishes what consensus handed it: everything it persisted is synced.
  ecv_.notify_all();
  if (effects_thread_.joinable()) effects_thread_.join();
  if (workers_) workers_->join();
  if (transport_) transport_->stop();
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  http_.reset();
  transport_.reset();
  replicas_.clear();
  // Every record of every message this node sent is written and synced: a clean stop.
  if (store_ && store_->sync().ok()) (void)store_->mark_clean_stop();
  store_.reset();
}

namespace {
thread_local bool t_in_replica = false;      // this thread holds rmu_ (runs replica events)
thread_local bool t_consensus_loop = false;  // this thread is atn-consensus
}  // namespace

void Node::post_consensus(Event e) {
  // Run to completion on the posting thread when the replica is free: one event at a time
  // still (rmu_), in the order posted (what is queued runs first), and the replica's step
  // never waits on crypto or disk (the envelope was checked by the io thread, persisting is
  // the effects thread's). Handing every event to atn-consensus cost a wake-up per message.
  if (started_ && !stopping_ && !t_in_replica && rmu_.try_lock()) {
    if (stopping_) {
      rmu_.unlock();  // stop() began between the check and the lock: queued, never run
    } else {
      t_in_replica = true;
      std::deque<Event> batch = take_events();
      batch.push_back(std::move(e));
      uint64_t now = wall_ms();
      for (auto& ev : batch) ev(now);
      after_events();
      t_in_replica = false;
      rmu_.unlock();
      return;
    }
  }
  {
    std::lock_guard lk(cmu_);
    cq_.push_back(std::move(e));
    cq_depth_ = cq_.size();
  }
  ccv_.notify_one();
}

void Node::post_effects(std::function<void()> fn) {
  {
    std::lock_guard lk(emu_);
    eq_.push_back(std::move(fn));
    eq_depth_ = eq_.size();
  }
  ecv_.notify_one();
}

void Node::offer_request(const consensus::Request& q, uint64_t now) {
  Replica* rep = current_replica();
  if (rep && !rep->finished()) {
    emit(cur_epoch_, rep->on_request(q, now));
    return;
  }
  // Between epochs (or outside the committee): kept, the last 2,000 not executed yet, for the
  // next replica.
  held_.hold(q);
}

consensus::Replica* Node::current_replica() {
  auto it = replicas_.find(cur_epoch_);
  return it == replicas_.end() ? nullptr : it->second.get();
}

void Node::emit(uint64_t epoch, Actions a) {
  if (!a.empty()) emitted_.emplace_back(epoch, std::move(a));
}

void Node::start_epoch(uint64_t epoch, const ledger::Committee& c, uint64_t base_height,
                       const Hash32& base_digest, uint64_t base_time, uint64_t now) {
  if (epoch <= cur_epoch_ && replicas_.count(epoch)) return;
  std::vector<consensus::Request> carried;
  if (auto prev = replicas_.find(epoch - 1); epoch > 0 && prev != replicas_.end()) {
    carried = prev->second->pending();
    // Every registered node was sent each request when it was submitted, but one that was
    // down or reconnecting then, or whose 2,000 kept requests overflowed, lacks them; should
    // it be the new primary, a request only the staying members hold waits for a view change
    // (and, when epochs are shorter than the timer, for ever: the simulator found it). So the
    // newcomers of the committee are sent what is still pending.
    const auto& before = prev->second->config().committee;
    auto reg = registry();
    std::vector<uint32_t> newcomers;
    for (const auto& k : c.members) {
      if (std::find(before.begin(), before.end(), k) != before.end()) continue;
      auto it = reg->index.find(k);
      if (it != reg->index.end() && it->second != self_) newcomers.push_back(it->second);
    }
    if (transport_ && !newcomers.empty()) {
      for (const auto& q : carried) {
        auto frame = request_frame(q);
        for (uint32_t peer : newcomers) transport_->send(peer, net::Channel::kRequest, frame);
      }
    }
  }
  cur_epoch_ = std::max(cur_epoch_, epoch);
  // Replicas of earlier epochs go, except the one just finished (its last header votes).
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    bool keep = it->first == epoch || (it->first + 1 == epoch && it->second->finished());
    it = keep ? std::next(it) : replicas_.erase(it);
  }
  if (index_in(c) && !replicas_.count(epoch)) {
    replicas_[epoch] = std::make_unique<Replica>(
        replica_config(epoch, c, base_height, base_digest, base_time), key_, hooks_);
    std::fprintf(stderr, "attestnet node: epoch %llu: sitting as member %u of %zu\n",
                 static_cast<unsigned long long>(epoch), *index_in(c), c.members.size());
    Replica& r = *replicas_[epoch];
    for (const auto& q : carried) emit(epoch, r.on_request(q, now));
    for (const auto& q : held_.take()) emit(epoch, r.on_request(q, now));
    if (auto f = future_.find(epoch); f != future_.end()) {
      for (const auto& m : f->second) emit(epoch, r.on_message(as_view(*m), now));
    }
  } else if (!index_in(c)) {
    // Requests broadcast while this node follows are kept until the ledger executes them (the
    // newest 2,000): should it sit next, it has what the others have pending.
    std::fprintf(stderr, "attestnet node: epoch %llu: not in the committee; following\n",
                 static_cast<unsigned long long>(epoch));
  }
  for (auto it = future_.begin(); it != future_.end() && it->first <= epoch;) {
    future_count_ -= it->second.size();
    it = future_.erase(it);
  }
}

void Node::consensus_loop() {
  // Proposals follow events (a request, an execution); the tick only drives timers. A partial
  // batch's timer (batch_wait_ms) needs 1 ms ticks; the others (view change, status: 250 ms and
  // up) are fine at 10 ms, and a tick every 1 ms was 1,000 wake-ups a second per node for
  // nothing: on a 2-core host running four nodes, context switches are the larger cost. A batch
  // held back for min_block_interval_ms is proposed by a tick at the time the replica names.
  const uint64_t tick_ms = cfg_.batch_wait_ms > 0 ? 1 : 10;
  uint64_t next_tick = 0;
  t_consensus_loop = true;
  while (!stopping_) {
    {
      std::unique_lock lk(cmu_);
      uint64_t wait_ms = tick_ms;
      if (uint64_t due = proposal_due_.load()) {
        uint64_t now = wall_ms();
        wait_ms = std::min(wait_ms, due > now ? due - now : 0);
      }
      ccv_.wait_for(lk, std::chrono::milliseconds(wait_ms),
                    [&] { return !cq_.empty() || stopping_ || due_changed_; });
      due_changed_ = false;
    }
    if (stopping_) break;
    // Read before the replica's lock: /proc/stat is I/O, and events wait for that lock.
    const bool interval_changed = sample_host_load(wall_ms());
    std::lock_guard rl(rmu_);  // taken before the queue, so that no event overtakes another
    t_in_replica = true;
    if (interval_changed)
      for (auto& [epoch, r] : replicas_) r->set_min_block_interval_ms(block_interval_ms_);
    std::deque<Event> batch = take_events();
    uint64_t now = wall_ms();
    for (auto& e : batch) e(now);
    uint64_t due = proposal_due_.load();
    if (now >= next_tick || (due && now >= due)) {
      for (auto& [epoch, r] : replicas_) emit(epoch, r->on_tick(now));
      next_tick = now + tick_ms;
    }
    after_events();
    t_in_replica = false;
  }
}

// Four times a second, the host's CPU load over the last quarter second (smoothed over about
// half a second) sets the primary's block interval between min_block_interval_ms and
// busy_block_interval_ms; true when it changed (the caller hands it to the replicas). Measured
// on a 2-core host running four nodes at a fixed 1,000/s (docs/performance.md, session 24):
// 20 ms against 12 took 8-19% less node CPU per request.
bool Node::sample_host_load(uint64_t now) {
  if (cfg_.busy_block_interval_ms <= cfg_.min_block_interval_ms || now < next_load_sample_)
    return false;
  next_load_sample_ = now + 250;
  auto t = read_cpu_times();
  if (!t) return false;
  if (cpu_last_) host_busy_ = 0.5 * host_busy_ + 0.5 * busy_fraction(*cpu_last_, *t);
  cpu_last_ = t;
  uint64_t ms =
      block_interval_for(host_busy_, cfg_.min_block_interval_ms, cfg_.busy_block_interval_ms);
  return block_interval_ms_.exchange(ms) != ms;
}

std::deque<Node::Event> Node::take_events() {
  std::deque<Event> batch;
  std::lock_guard lk(cmu_);
  batch.swap(cq_);
  cq_depth_ = 0;
  return batch;
}

// After a batch of events (rmu_ held): the replica's figures for /v1/status and /metrics, and
// its actions on their way (header votes to the transport, the rest to the effects thread).
void Node::after_events() {
  // A batch held back for min_block_interval_ms: the consensus thread's wait ends then. Run
  // there, this is read by its next wait; run inline on another thread, it wakes that wait.
  uint64_t due = 0;
  for (auto& [epoch, r] : replicas_) {
    if (uint64_t d = r->proposal_due_ms(); d && (!due || d < due)) due = d;
  }
  if (proposal_due_.exchange(due) != due && due && !t_consensus_loop) {
    {
      std::lock_guard lk(cmu_);
      due_changed_ = true;
    }
    ccv_.notify_one();
  }
  if (Replica* r = current_replica()) {
    log_view(*r);
    std::lock_guard lk(smu_);
    counters_ = r->counters();
    view_no_ = r->view();
    in_view_change_ = r->in_view_change();
    pending_ = r->pending_requests();
  } else {
    std::lock_guard lk(smu_);
    pending_ = held_.size();  // following: what it holds for a later seat
  }
  for (auto& [epoch, a] : emitted_) send_unsynced(epoch, a);
  // A list that held only such sends (a header vote) leaves nothing to the effects thread: no
  // wake-up for it.
  std::erase_if(emitted_, [](const auto& e) { return e.second.empty(); });
  if (!emitted_.empty()) {
    // Consecutive batches of one epoch are carried out as one (group commit).
    std::vector<std::pair<uint64_t, Actions>> out;
    for (auto& [epoch, a] : emitted_) {
      if (!out.empty() && out.back().first == epoch) {
        out.back().second.insert(out.back().second.end(), std::make_move_iterator(a.begin()),
                                 std::make_move_iterator(a.end()));
      } else {
        out.emplace_back(epoch, std::move(a));
      }
    }
    emitted_.clear();
    post_effects([this, o = std::make_shared<decltype(out)>(std::move(out))]() mutable {
      for (auto& [epoch, a] : *o) carry_out(epoch, std::move(a));
    });
  }
}

// A message that needs no synced write before it (header votes; pre-prepares and prepares
// under a durable lease, consensus/replica.h) leaves from here rather than queueing on the
// effects thread behind writes that do: on the 4-node bench that queue held a header vote
// ~1.5 ms per block, on the path to every client's answer. Its records stay in `actions`, and
// the effects thread writes them in order: the slot's commit, a durable send, syncs them.
void Node::send_unsynced(uint64_t epoch, Actions& actions) {
  std::shared_ptr<const std::vector<crypto::PublicKey>> seats;
  {
    std::lock_guard lk(smu_);
    if (auto c = committee_keys_.find(epoch); c != committee_keys_.end()) seats = c->second;
  }
  if (!seats || !transport_) return;  // carry_out sends them
  auto reg = registry();
  std::erase_if(actions, [&](consensus::Action& a) {
    auto* s = std::get_if<consensus::SendAction>(&a);
    if (!s || s->durable) return false;  // a StateReply is durable: it goes on the bulk channel
    if (s->type == consensus::MsgType::kHeaderVote) {
      // Its signature comes back in the header's certificate (the responses this node builds,
      // the blocks that carry it): valid by construction, it costs no verification there.
      if (auto env = consensus::Envelope::decode(as_view(*s->bytes)); env.ok())
        sigs_->note_own(key_.public_key(),
                        as_view(consensus::signing_message(genesis_.chain_id, env->epoch, env->type,
                                                           as_view(env->body))),
                        env->sig);
    }
    send_to_seats(*seats, *reg, *s, net::Channel::kConsensus);
    return true;
  });
}

// Replica ids are seats of the epoch's committee; the transport's peers are registry indices.
void Node::send_to_seats(const std::vector<crypto::PublicKey>& seats, const Registry& reg,
                         const consensus::SendAction& s, net::Channel ch) {
  auto send = [&](uint32_t seat) {
    if (seat >= seats.size()) return;
    auto it = reg.index.find(seats[seat]);
    if (it != reg.index.end() && it->second != self_) transport_->send(it->second, ch, s.bytes);
  };
  if (s.to) {
    send(*s.to);
  } else {
    for (uint32_t m = 0; m < seats.size(); ++m) send(m);
  }
}

// A line when the current replica starts a view change and when it enters the new view: the
// moments an operator looks for after a member went down (the primary of view v is member
// v mod n of the epoch's committee).
void Node::log_view(const Replica& r) {
  auto now = std::make_tuple(cur_epoch_, r.view(), r.in_view_change());
  if (now == logged_view_) return;
  bool first_of_epoch = std::get<0>(logged_view_) != cur_epoch_;
  logged_view_ = now;
  if (first_of_epoch && r.view() == 0 && !r.in_view_change()) return;
  std::fprintf(stderr, "attestnet node: epoch %llu: %s view %llu (primary: member %llu of %zu)\n",
               static_cast<unsigned long long>(cur_epoch_),
               r.in_view_change() ? "view change to" : "entered",
               static_cast<unsigned long long>(r.view()),
               static_cast<unsigned long long>(r.view() % r.config().n()), r.config().n());
}

void Node::effects_loop() {
  uint64_t next_housekeeping = 0;
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock lk(emu_);
      ecv_.wait_for(lk, std::chrono::milliseconds(50), [&] { return !eq_.empty() || stopping_; });
      // Stop only once consensus has stopped and everything it handed over is carried out.
      if (eq_.empty() && consensus_done_) break;
      if (!eq_.empty()) {
        fn = std::move(eq_.front());
        eq_.pop_front();
        eq_depth_ = eq_.size();
      }
    }
    if (fn) fn();
    uint64_t now = steady_ms();
    if (!stopping_ && now >= next_housekeeping) {
      next_housekeeping = now + 50;
      housekeeping(now);
    }
  }
}

// Waiters past their deadline are answered (202 / 404), missed header certificates are asked
// for once a second, and buffered writes go to the OS; under load as well as when idle.
void Node::housekeeping(uint64_t now) {
  for (auto it = tx_waiters_.begin(); it != tx_waiters_.end();) {
    std::erase_if(it->second, [&](TxWaiter& w) {
      if (w.deadline_ms > now) return false;
      w.done(make_error(Errc::kNotFound, "not executed before the deadline"));
      return true;
    });
    it = it->second.empty() ? tx_waiters_.erase(it) : std::next(it);
  }
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    std::erase_if(it->second, [&](Waiter& w) {
      if (w.deadline_ms > now) return false;
      w.done(make_error(Errc::kNotFound, "not committed before the deadline"));
      return true;
    });
    if (it->second.empty()) {
      ready_.erase(it->first);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  if (now >= next_cert_sync_ms_) {
    next_cert_sync_ms_ = now + 1000;
    request_missing_certificates();
  }
  // What the last writes left in RocksDB's buffer (the tip's header certificate, written after
  // the block's synced records) goes to the OS at least every 50 ms: an auditor that opens the
  // store while the node runs sees it, and a kill -9 keeps it. Under load a block's synced
  // write usually did this already; at most one write(2) per tick.
  if (Status st = store_->flush_buffered(); !st.ok()) fatal_store(st);
  // Blocks: a node outside the committee relies on notices; anyone that executed nothing for
  // two seconds (a missed notice, or a restart after the committee moved on) asks a peer.
  bool sitting = index_in(committees_[trust_->epoch()]).has_value();
  if (now >= next_block_fetch_ms_ && (now > last_exec_ms_ + (sitting ? 2000 : 500))) {
    next_block_fetch_ms_ = now + 250;
    request_blocks();
  }
}

namespace {
constexpr uint8_t kCertRequest = 1, kCertReply = 2, kBlockRequest = 3, kBlocks = 4;
constexpr uint32_t kMaxCertsPerMessage = 256;
constexpr uint32_t kMaxBlocksPerMessage = 32;

Bytes encode_blocks(const std::vector<std::shared_ptr<const consensus::CommittedBlock>>& bs) {
  Writer w;
  w.u8(kBlocks).u32(static_cast<uint32_t>(bs.size()));
  for (const auto& b : bs) b->encode(w);
  return std::move(w).take();
}

using FoundCert = std::tuple<uint64_t, consensus::View, crypto::QuorumCertificate>;
Bytes encode_certs(const std::vector<FoundCert>& found) {
  Writer w;
  w.u8(kCertReply).u32(static_cast<uint32_t>(found.size()));
  for (const auto& [h, v, c] : found) {
    w.u64(h).u64(v);
    c.encode(w);
  }
  return std::move(w).take();
}
}  // namespace

void Node::request_missing_certificates() {
  uint64_t tip = builder_->next_height() - 1;
  // The newest 4 are left to the header votes and the members' pushes, unless nothing was
  // executed for a second: then no later block comes to make the fetch reach them, and a
  // client waiting here for one of them would wait for its deadline (as every client of the
  // epochs devnet test once did, for 20-40 s, after a primary's kill).
  uint64_t margin = steady_ms() > last_exec_ms_ + 1000 ? 0 : 4;
  if (tip < 1 + margin) return;
  std::vector<uint64_t> missing;
  for (uint64_t h = cert_scan_from_; h + margin <= tip && missing.size() < kMaxCertsPerMessage;
       ++h) {
    if (store_->certificate(h).ok()) {
      if (missing.empty()) cert_scan_from_ = h + 1;
      continue;
    }
    missing.push_back(h);
  }
  if (missing.empty()) return;
  // Ask one peer per round, round robin: a silent or lying peer costs a round, not progress.
  auto peer = next_peer(cert_sync_peer_);
  if (!peer) return;
  Writer w(8 * missing.size() + 8);
  w.u8(kCertRequest).u32(static_cast<uint32_t>(missing.size()));
  for (uint64_t h : missing) w.u64(h);
  transport_->send(*peer, net::Channel::kLedger, std::make_shared<Bytes>(std::move(w).take()));
}

void Node::on_ledger_frame(uint32_t from, const Bytes& payload) {
  Reader r(as_view(payload), consensus::kMaxMessageBytes);
  auto kind = r.u8();
  auto n = r.u32();
  if (!kind.ok() || !n.ok() || *n > kMaxCertsPerMessage) {
    ++dropped_frames_;
    return;
  }
  if (*kind == kBlockRequest) {
    auto h = r.u64();
    if (!h.ok()) return;
    std::vector<std::shared_ptr<const consensus::CommittedBlock>> out;
    uint64_t tip = builder_->next_height() - 1;
    for (uint64_t x = *h; x <= tip && out.size() < kMaxBlocksPerMessage; ++x) {
      auto cb = store_->block(x);
      if (!cb.ok()) break;
      out.push_back(std::make_shared<const consensus::CommittedBlock>(std::move(cb).value()));
    }
    if (!out.empty())
      transport_->send(from, net::Channel::kLedger, std::make_shared<Bytes>(encode_blocks(out)));
    return;
  }
  if (*kind == kBlocks) {
    if (*n > kMaxBlocksPerMessage) {
      ++dropped_frames_;
      return;
    }
    for (uint32_t i = 0; i < *n; ++i) {
      auto cb = consensus::CommittedBlock::decode(r);
      if (!cb.ok()) {
        ++dropped_frames_;
        return;
      }
      uint64_t h = cb->block.height;
      if (h >= builder_->next_height() && h < builder_->next_height() + 4096 && !received_.count(h))
        received_[h] = std::make_shared<const consensus::CommittedBlock>(std::move(cb).value());
    }
    uint64_t before = builder_->next_height();
    drain_received();
    // A full reply to a fetch: more may follow, ask for them now (catching up a long chain).
    if (*n == kMaxBlocksPerMessage && builder_->next_height() >= before + kMaxBlocksPerMessage)
      request_blocks();
    return;
  }
  if (*kind == kCertRequest) {
    std::vector<FoundCert> found;
    for (uint32_t i = 0; i < *n; ++i) {
      auto h = r.u64();
      if (!h.ok()) break;
      if (auto c = store_->certificate(*h); c.ok()) found.emplace_back(*h, c->first, c->second);
    }
    if (found.empty()) return;
    transport_->send(from, net::Channel::kLedger, std::make_shared<Bytes>(encode_certs(found)));
    return;
  }
  if (*kind != kCertReply) {
    ++dropped_frames_;
    return;
  }
  bool any = false;
  for (uint32_t i = 0; i < *n; ++i) {
    auto h = r.u64();
    auto v = r.u64();
    if (!h.ok() || !v.ok()) break;
    auto qc = crypto::QuorumCertificate::decode(r);
    if (!qc.ok()) break;
    if (store_->certificate(*h).ok()) continue;
    auto hf = store_->header(*h);
    if (!hf.ok()) continue;
    auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
    if (!hdr.ok()) continue;
    ledger::HeaderCertificate cert{*qc};
    auto committee = committees_.find(hdr->epoch);
    // Only a certificate 2f+1 members of its epoch signed over OUR header is kept.
    if (committee == committees_.end() ||
        !ledger::verify_header(*hdr, cert, committee->second, memo_verify()).ok()) {
      ++dropped_frames_;
      continue;
    }
    if (!store_->put_certificate(*h, *v, *qc).ok()) continue;
    ++certificates_fetched_;
    any = true;
    std::lock_guard lk(smu_);
    certified_height_ = std::max(certified_height_, *h);
  }
  if (any) answer_ready(UINT64_MAX);
}

void Node::carry_out(uint64_t epoch, Actions actions) {
  const ledger::Committee* committee = nullptr;
  if (auto c = committees_.find(epoch); c != committees_.end()) committee = &c->second;
  auto reg = registry();
  // Group commit. Persist before send: no consensus message but a header vote leaves this node
  // before every record written so far is durable. So the first action that needs durability
  // (such a send) writes the persist records of the whole list up to the next
  // truncation in one synced batch (writing a record earlier than the replica asked is always
  // safe: it only promises what the replica already decided), and records that nothing waits
  // for yet (received votes, committed blocks before they are executed) are written without a
  // sync: the next synced write makes them durable too.
  std::vector<const consensus::PersistRecord*> pending;
  size_t scanned = 0;  // the persists of actions[0, scanned) are written or in `pending`
  auto write = [&](bool sync) {
    if (pending.empty()) {
      if (sync) make_durable();
      return;
    }
    if (Status st = store_->append_all(pending, sync); !st.ok()) fatal_store(st);
    note_written(epoch, pending);
    if (sync) leases_synced();
    persisted_batches_ += 1;
    persisted_records_ += pending.size();
    if (sync) ++synced_writes_;
    pending.clear();
  };
  auto durable = [&] {  // this list's records up to the next truncation, and all before: synced
    for (; scanned < actions.size(); ++scanned) {
      if (std::holds_alternative<consensus::TruncateAction>(actions[scanned])) break;
      if (auto* p = std::get_if<consensus::PersistAction>(&actions[scanned]))
        pending.push_back(&p->record);
    }
    write(true);
  };
  for (size_t i = 0; i < actions.size(); ++i) {
    auto& a = actions[i];
    if (auto* p = std::get_if<consensus::PersistAction>(&a)) {
      if (i >= scanned) {
        pending.push_back(&p->record);
        scanned = i + 1;
      }
      continue;
    }
    scanned = std::max(scanned, i + 1);
    if (auto* t = std::get_if<consensus::TruncateAction>(&a)) {
      write(false);  // the records before it, then the truncation (neither needs a sync)
      (void)store_->truncate(t->stable_seq);
    } else if (auto* s = std::get_if<consensus::SendAction>(&a)) {
      // A send the replica marked not durable (a header vote, or a pre-prepare or prepare under
      // a durable lease: consensus/replica.h) promises nothing a crash could make this node
      // break, so it goes out without a sync (normally send_unsynced already sent it), and the
      // next durable send makes the records ahead of it durable.
      if (!s->durable) {
        write(false);
      } else {
        durable();
      }
      net::Channel ch = s->type == consensus::MsgType::kStateReply ? net::Channel::kBulk
                                                                   : net::Channel::kConsensus;
      if (committee) send_to_seats(committee->members, *reg, *s, ch);
    } else if (auto* d = std::get_if<consensus::DeliverAction>(&a)) {
      write(false);  // the committed block's record before its ledger block, in log order
      last_exec_ms_ = steady_ms();
      if (auto e = execute_block(d->block)) {
        // The replica resumes after a restart with the ledger header's block time (resume_at).
        if (d->state_digest != chain_.digest || d->block_time != chain_.block_time) {
          std::fprintf(stderr,
                       "attestnet node: state digest or block time at %llu differs from the "
                       "replica's\n",
                       static_cast<unsigned long long>(e->first));
        }
        notify_executed(epoch, e->first, e->second);
      } else if (auto e = executed_already(*d->block)) {
        // Fetched from a peer while this replica was behind (a view change longer than the
        // fetch's 2 s): the replica still signs the header. Without its vote, a committee with
        // one member down could not certify that header, and its clients were never answered.
        notify_executed(epoch, e->first, e->second);
      }
    } else if (auto* hc = std::get_if<consensus::HeaderCertifiedAction>(&a)) {
      // Clients are answered here, without a sync of this node's own writes: the block was
      // committed on 2f+1 commits, and each member synced the block's prepared certificate
      // before it sent its commit, so f+1 correct members hold it on disk and any view change
      // carries it; execution is deterministic, so a node that lost unsynced writes executes
      // it again into the same record and header. That is the quorum's durability, as etcd
      // answers once a majority logged an entry (docs/operations.md, "What survives what").
      write(false);
      certified(*hc);
    } else if (auto* mb = std::get_if<consensus::MisbehaviourAction>(&a)) {
      if (!committee || mb->first.sender >= committee->members.size()) continue;
      auto key = std::make_tuple(committee->members[mb->first.sender], epoch,
                                 static_cast<uint8_t>(mb->kind));
      if (!reported_.insert(key).second) continue;
      state::MisbehaviourProof proof;
      proof.epoch = epoch;
      proof.kind = mb->kind;
      proof.first = mb->first;
      proof.second = mb->second;
      std::fprintf(stderr, "attestnet node: reporting member %u of epoch %llu (%s)\n",
                   mb->first.sender, static_cast<unsigned long long>(epoch),
                   mb->kind == consensus::MisbehaviourAction::kEquivocation ? "equivocation"
                                                                            : "bad header vote");
      submit_internal(proof.encode());
    }
  }
  write(false);
}

// The replica signs a block's header once the node executed it; it is told at once, not after
// the rest of the action list (which may hold a synced write of the next block's messages).
void Node::notify_executed(uint64_t epoch, consensus::Seq height, const Hash32& digest) {
  post_consensus([this, epoch, height, digest](uint64_t now) {
    if (auto r = replicas_.find(epoch); r != replicas_.end())
      emit(epoch, r->second->on_executed(height, digest, now));
  });
}

std::optional<std::pair<consensus::Seq, Hash32>> Node::execute_block(
    const std::shared_ptr<const consensus::CommittedBlock>& cbp) {
  const consensus::CommittedBlock& cb = *cbp;
  uint64_t h = cb.block.height;
  if (h != builder_->next_height()) return std::nullopt;
  uint64_t epoch = trust_->epoch_of(h);
  state::FoldedBlock folded = state::fold_block(*trust_, chain_, cb.block, memo_verify(), admit_);
  for (const auto& o : folded.outcomes) {
    if (o.reason != "endorsement counted" && o.reason != "unknown transaction tag")
      std::fprintf(stderr, "attestnet node: block %llu: %s%s\n", static_cast<unsigned long long>(h),
                   o.accepted ? "" : "refused: ", o.reason.c_str());
    if (app_ || o.reason != "unknown transaction tag") note_outcome(o, h);
  }
  if (!registry_ || trust_->registry_version() != registry_->version) refresh_registry();
  const std::optional<ledger::Committee>& next = folded.next;
  ledger::BuiltBlock built =
      builder_->apply(cb, folded.state_root, chain_.block_time, next ? &*next : nullptr);
  Hash32 hh = built.header.hash();
  trust_->note_header(h, hh);
  view_->note_header(hh);
  std::vector<Bytes> encoded;  // the records as written: answers to waiting clients reuse them
  Status st = ledger::persist_built_block(*store_, *builder_, built, &encoded);
  if (st.ok() && next) st = store_->put_committee(*next);
  // At an epoch's end, and every [node] snapshot_interval blocks: the trust state as of this
  // block, so that a restart folds only the blocks after it (checked against this header's
  // state root when it is read back), and the base its epoch's replica starts from.
  if (st.ok() && (next || (h % cfg_.snapshot_interval == 0 && bases_.count(epoch)))) {
    EpochBase base = next ? EpochBase{h, chain_.digest, chain_.block_time} : bases_[epoch];
    Writer w;
    w.header(kSnapshotTag, 2).u64(h).hash(chain_.digest).u64(chain_.block_time);
    w.u64(base.height).hash(base.digest).u64(base.time);
    w.bytes(as_view(trust_->snapshot()));
    st = store_->put_snapshot(as_view(w.data()));
  }
  if (!st.ok()) {
    std::fprintf(stderr, "attestnet node: FATAL: cannot store block %llu: %s\n",
                 static_cast<unsigned long long>(h), st.error().to_string().c_str());
    std::_Exit(70);
  }
  view_->forget_unused(kVmStatesInMemory);  // this block's records are stored
  uint64_t now = steady_ms();
  last_exec_ms_ = now;
  {
    std::lock_guard lk(smu_);
    tip_hash_ = hh;
    tip_height_ = h;
    for (const auto& r : built.records) {
      auto it = submitted_at_.find(r.request_id);
      if (it != submitted_at_.end()) {
        commit_latency_.observe(static_cast<double>(now - it->second));
        submitted_at_.erase(it);
      }
    }
    if (next) {
      epoch_ = next->epoch;
      committee_keys_[next->epoch] =
          std::make_shared<const std::vector<crypto::PublicKey>>(next->members);
      while (committee_keys_.size() > 3) committee_keys_.erase(committee_keys_.begin());
    }
  }
  ++blocks_committed_;
  requests_committed_ += built.records.size();
  const uint64_t first_leaf = built.header.log_size - built.records.size();
  for (size_t i = 0; i < built.records.size(); ++i) {
    const auto& r = built.records[i];
    if (waiters_.count(r.request_id))
      ready_[r.request_id] = Ready{h, ledger::KnownRecord{first_leaf + i, std::move(encoded[i])}};
  }
  const ledger::Committee& ran = committees_[epoch];
  if (started_ && !index_in(ran) && !cb.block.requests.empty()) {
    // Outside the committee that ran this block: what it executed is no longer held for the
    // replica this node may start later (consensus/held_requests.h).
    std::vector<Hash32> ids;
    ids.reserve(cb.block.requests.size());
    for (const auto& q : cb.block.requests) ids.push_back(q.id());
    post_consensus([this, ids = std::move(ids)](uint64_t) {
      for (const auto& id : ids) held_.executed(id);
    });
  }
  if (next) {
    committees_[next->epoch] = *next;
    bases_[next->epoch] = EpochBase{h, chain_.digest, chain_.block_time};
    if (started_) {
      post_consensus([this, c = *next, h, d = chain_.digest, t = chain_.block_time](
                         uint64_t now_ms) { start_epoch(c.epoch, c, h, d, t, now_ms); });
    }
  }
  if (started_ && transport_) {
    // Members tell the registered nodes outside the committee (they follow the ledger).
    tell_followers(ran, [&] { return std::make_shared<Bytes>(encode_blocks({cbp})); });
    // Outside the committee: endorse what this node re-executed, a few times an epoch.
    uint64_t every = std::max<uint64_t>(1, genesis_.trust.epoch_length / 4);
    if (genesis_.trust.epoch_length && self_ != kUnregistered &&
        !index_in(committees_[trust_->epoch()]) && h % every == 0) {
      submit_internal(state::Endorsement::make(key_, genesis_.chain_id, h, hh).encode());
    }
  }
  return std::make_pair(h, hh);
}

std::optional<std::pair<consensus::Seq, Hash32>> Node::executed_already(
    const consensus::CommittedBlock& cb) const {
  uint64_t h = cb.block.height;
  if (h == 0 || h >= builder_->next_height()) return std::nullopt;
  auto hf = store_->header(h);
  if (!hf.ok()) return std::nullopt;
  auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
  if (!hdr.ok()) return std::nullopt;
  if (hdr->payload_digest != cb.block.digest()) {
    // Two committed blocks for one height: the ledger keeps the first; nothing is signed.
    std::fprintf(stderr,
                 "attestnet node: the replica committed another block at %llu than the "
                 "ledger holds; not signing its header\n",
                 static_cast<unsigned long long>(h));
    return std::nullopt;
  }
  return std::make_pair(h, hdr->hash());
}

void Node::drain_received() {
  while (true) {
    auto it = received_.find(builder_->next_height());
    if (it == received_.end()) break;
    auto cb = it->second;
    received_.erase(it);
    uint64_t h = cb->block.height;
    uint64_t e = trust_->epoch_of(h);
    const ledger::Committee& c = committees_[e];
    Status st = crypto::verify_quorum(cb->cert, c.members, c.threshold(),
                                      as_view(consensus::commit_vote_message(
                                          genesis_.chain_id, e, cb->view, h, cb->block.digest())),
                                      memo_verify());
    if (e != trust_->epoch() || !st.ok()) {
      ++dropped_frames_;
      continue;
    }
    // Durable like a replica's committed block, then executed.
    Writer w;
    cb->encode(w);
    consensus::PersistRecord rec{consensus::PersistRecord::Kind::kCommitted, h, cb->view,
                                 std::move(w).take()};
    const consensus::PersistRecord* one = &rec;
    if (!store_->append_all(std::span(&one, 1)).ok()) return;
    leases_synced();
    execute_block(cb);
  }
  received_.erase(received_.begin(), received_.upper_bound(builder_->next_height() - 1));
}

// A node that has not executed anything for a while (outside the committee, or back from a
// crash while the committee moved on) asks one peer at a time for the blocks after its tip.
void Node::request_blocks() {
  auto peer = next_peer(fetch_peer_);
  if (!peer) return;
  Writer w;
  w.u8(kBlockRequest).u32(1).u64(builder_->next_height());
  transport_->send(*peer, net::Channel::kLedger, std::make_shared<Bytes>(std::move(w).take()));
}

void Node::submit_internal(Bytes payload) {
  consensus::Request q;
  // Internal transactions are named by the node's key (its index may not be known yet).
  q.client_id = 0xa77e570000000000ull;
  for (int i = 0; i < 4; ++i) q.client_id |= uint64_t(key_.public_key()[i]) << (8 * i);
  q.client_seq = ++internal_seq_;
  q.payload = std::move(payload);
  if (transport_) transport_->broadcast(net::Channel::kRequest, request_frame(q));
  post_consensus([this, q = std::move(q)](uint64_t now) {
    Replica* r = current_replica();
    if (r && !r->finished()) emit(cur_epoch_, r->on_request(q, now));
  });
}

void Node::tell_followers(const ledger::Committee& ran,
                          const std::function<std::shared_ptr<Bytes>()>& frame) {
  if (!started_ || !transport_ || !index_in(ran)) return;
  std::set<crypto::PublicKey> seated(ran.members.begin(), ran.members.end());
  auto reg = registry();
  std::shared_ptr<Bytes> bytes;
  for (uint32_t i = 0; i < reg->peers.size(); ++i) {
    if (i == self_ || seated.count(reg->peers[i].key)) continue;
    if (!bytes) bytes = frame();
    transport_->send(i, net::Channel::kLedger, bytes);
  }
}

void Node::certified(const consensus::HeaderCertifiedAction& hc) {
  Status st = store_->put_certificate(hc.height, hc.view, hc.cert);
  if (!st.ok()) {
    std::fprintf(stderr, "attestnet node: cannot store the certificate of %llu: %s\n",
                 static_cast<unsigned long long>(hc.height), st.error().to_string().c_str());
    return;
  }
  // The followers' clients are answered once their node has the certificate. A later block
  // carries it, but not to a follower's store, and the epoch's last blocks and a block with
  // none after it have no later block: without this, a follower had only its fetch (once a
  // second, one peer at a time, 4 blocks below its tip) and its clients waited for seconds.
  if (auto c = committees_.find(trust_->epoch_of(hc.height)); c != committees_.end()) {
    tell_followers(c->second, [&] {
      return std::make_shared<Bytes>(encode_certs({FoundCert{hc.height, hc.view, hc.cert}}));
    });
  }
  {
    std::lock_guard lk(smu_);
    certified_height_ = std::max(certified_height_, hc.height);
  }
  answer_ready(hc.height);
}

void Node::make_durable() {
  if (!store_->dirty()) return;
  if (Status st = store_->sync(); !st.ok()) fatal_store(st);
  ++synced_writes_;
  leases_synced();
}

void Node::note_written(uint64_t epoch, std::span<const consensus::PersistRecord* const> recs) {
  for (const auto* r : recs)
    if (r->kind == consensus::PersistRecord::Kind::kLease) unsynced_leases_.emplace_back(epoch, *r);
}

void Node::leases_synced() {
  if (unsynced_leases_.empty()) return;
  post_consensus([this, leases = std::move(unsynced_leases_)](uint64_t) {
    for (const auto& [epoch, rec] : leases)
      if (auto r = replicas_.find(epoch); r != replicas_.end())
        r->second->on_lease_durable(rec.view, rec.seq);
  });
  unsynced_leases_.clear();
}

void Node::answer_ready(uint64_t certified_height) {
  // The requests of a block share their header, certificate and hand-overs: found once.
  ledger::ResponseBasis basis;
  const crypto::VerifyFn verify = memo_verify();
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->second.height > certified_height) {
      ++it;
      continue;
    }
    const ledger::KnownRecord* known = it->second.record ? &*it->second.record : nullptr;
    auto resp = ledger::build_response(*store_, genesis_, it->first, verify, 0, &basis, known);
    if (!resp.ok() && resp.error().code == Errc::kNotFound) {
      ++it;
      continue;
    }
    auto w = waiters_.find(it->first);
    if (w != waiters_.end()) {
      for (auto& x : w->second)
        x.done(x.from_epoch == 0 ? resp
                                 : ledger::build_response(*store_, genesis_, it->first, verify,
                                                          x.from_epoch, nullptr, known));
      waiters_.erase(w);
    }
    it = ready_.erase(it);
  }
}

void Node::on_frame(uint32_t from, net::Channel ch, Bytes payload) {
  if (stopping_) return;
  auto data = std::make_shared<Bytes>(std::move(payload));
  if (ch == net::Channel::kLedger) {
    post_effects([this, data, from] { on_ledger_frame(from, *data); });
    return;
  }
  if (ch == net::Channel::kRequest) {
    {
      std::lock_guard lk(rqmu_);
      rq_.push_back(std::move(data));
      if (rq_drains_ >= cfg_.workers) return;  // a running drain will take it
      ++rq_drains_;
    }
    asio::post(*workers_, [this] { drain_requests(); });
    return;
  }
  // Consensus and bulk: check the envelope's signature here, on the io thread that read it (one
  // Ed25519 verification, ~50 us; a hop to a worker cost two thread wake-ups per message, and on
  // a 2-core host context switches, not crypto, were the larger cost); the replica's verify hook
  // then finds it in the cache. Anything malformed is left for the replica to count and drop.
  {
    auto env = consensus::Envelope::decode(as_view(*data));
    uint64_t epoch = env.ok() ? env->epoch : 0;
    if (env.ok()) {
      std::shared_ptr<const std::vector<crypto::PublicKey>> seats;
      std::shared_ptr<const Registry> reg;
      {
        std::lock_guard lk(smu_);
        if (auto c = committee_keys_.find(epoch); c != committee_keys_.end()) seats = c->second;
        reg = registry_;
      }
      if (seats) {
        const auto& members = *seats;
        // A member may only speak for itself, on its own connection.
        if (env->sender >= members.size() || from >= reg->peers.size() ||
            members[env->sender] != reg->peers[from].key) {
          ++dropped_frames_;
          return;
        }
        Bytes msg =
            consensus::signing_message(genesis_.chain_id, epoch, env->type, as_view(env->body));
        if (!sigs_->verify(members[env->sender], as_view(msg), env->sig)) {
          ++dropped_frames_;
          return;
        }
      }
    }
    post_consensus([this, data, epoch](uint64_t now) {
      if (auto r = replicas_.find(epoch); r != replicas_.end()) {
        emit(epoch, r->second->on_message(as_view(*data), now));
      } else if (epoch > cur_epoch_ || (epoch == cur_epoch_ && !current_replica())) {
        // An epoch this node has not started yet (it is still executing the previous one's
        // last block): kept, bounded, for the replica it will start.
        if (future_count_ < 20000) {
          future_[epoch].push_back(data);
          ++future_count_;
        }
      }
    });
  }
}

void Node::drain_requests() {
  // A drain takes at most kTake frames at a time, so that with several workers a long queue is
  // validated in parallel (each drain its share), and a short one in one batch.
  constexpr size_t kTake = 64;
  for (;;) {
    std::vector<std::shared_ptr<Bytes>> frames;
    {
      std::lock_guard lk(rqmu_);
      if (rq_.empty() || stopping_) {
        --rq_drains_;
        return;
      }
      size_t take = std::min(rq_.size(), kTake);  // from the front: arrival order
      frames.assign(std::make_move_iterator(rq_.begin()),
                    std::make_move_iterator(rq_.begin() + static_cast<long>(take)));
      rq_.erase(rq_.begin(), rq_.begin() + static_cast<long>(take));
    }
    std::vector<consensus::Request> valid;
    valid.reserve(frames.size());
    for (const auto& data : frames) {
      Reader r(as_view(*data));
      auto q = consensus::Request::decode(r);
      if (!q.ok() || r.remaining() != 0 || !validate_request(*q).ok()) {
        ++dropped_frames_;
        continue;
      }
      valid.push_back(std::move(q).value());
    }
    if (valid.empty()) continue;
    forwarded_in_ += valid.size();
    {
      std::lock_guard lk(vmu_);
      if (validated_.size() > 500000) validated_.clear();  // a bound; offer_validated empties it
      for (const auto& q : valid) validated_.insert(q.id());
    }
    post_consensus([this, v = std::move(valid)](uint64_t now) { offer_validated(v, now); });
  }
}

Result<Hash32> Node::submit(Bytes payload) {
  consensus::Request q;
  q.payload = std::move(payload);
  if (q.payload.size() > consensus::kMaxRequestPayload)
    return make_error(
        Errc::kOversize,
        "the request is larger than " + std::to_string(consensus::kMaxRequestPayload) + " bytes");
  ATN_CHECK(validate_request(q));
  {
    std::lock_guard lk(smu_);
    if (pending_ > 50000 || cq_depth_ > 100000)
      return make_error(Errc::kUnavailable, "the node is overloaded (" + std::to_string(pending_) +
                                                " requests pending): retry later");
  }
  Hash32 id = q.seal();
  {
    std::lock_guard lk(vmu_);
    validated_.insert(id);
  }
  {
    std::lock_guard lk(smu_);
    if (submitted_at_.size() < 1000000) submitted_at_.emplace(id, steady_ms());
  }
  ++submitted_;
  transport_->broadcast(net::Channel::kRequest, request_frame(q));
  post_consensus([this, q = std::move(q)](uint64_t now) { offer_validated({&q, 1}, now); });
  return id;
}

// On the protocol thread. The replica's validate hook finds each id in validated_ and skips the
// validation done already (and takes it out); the ids it did not ask about go out here.
void Node::offer_validated(std::span<const consensus::Request> qs, uint64_t now) {
  for (const auto& q : qs) offer_request(q, now);
  std::lock_guard lk(vmu_);
  for (const auto& q : qs) validated_.erase(q.id());
}

Result<Hash32> Node::submit_transaction(Bytes payload) {
  state::TxKind k = state::tx_kind(as_view(payload));
  if (k == state::TxKind::kAttestation)
    return make_error(Errc::kBadValue,
                      "an attestation request goes to POST /v1/attestations, not here");
  if (k == state::TxKind::kUnknown)
    return make_error(Errc::kBadValue,
                      "not a trust transaction (NodeJoin 0x0613, NodeLeave 0x0614, KeyRotation "
                      "0x0615, Endorsement 0x0612, MisbehaviourProof 0x0611): unknown tag");
  return submit(std::move(payload));
}

void Node::note_outcome(const state::TxOutcome& o, uint64_t height) {
  TxResult r{o.accepted, o.reason, height};
  if (auto w = tx_waiters_.find(o.request_id); w != tx_waiters_.end()) {
    for (auto& x : w->second) x.done(r);  // committed by a quorum: no local sync (carry_out)
    tx_waiters_.erase(w);
  }
  if (tx_outcomes_.emplace(o.request_id, std::move(r)).second) {
    tx_order_.push_back(o.request_id);
    if (tx_order_.size() > 10000) {
      tx_outcomes_.erase(tx_order_.front());
      tx_order_.pop_front();
    }
  }
}

void Node::await_transaction(const Hash32& id, uint64_t deadline_ms,
                             std::function<void(Result<TxResult>)> done) {
  post_effects([this, id, deadline_ms, done = std::move(done)]() mutable {
    if (auto it = tx_outcomes_.find(id); it != tx_outcomes_.end()) {
      return done(it->second);
    }
    if (deadline_ms <= steady_ms())
      return done(make_error(Errc::kNotFound, "not executed (yet) by this node"));
    tx_waiters_[id].push_back({deadline_ms, std::move(done)});
  });
}

void Node::await_response(const Hash32& id, uint64_t deadline_ms, uint64_t from_epoch,
                          std::function<void(Result<ledger::AttestationResponse>)> done) {
  post_effects([this, id, deadline_ms, from_epoch, done = std::move(done)]() mutable {
    auto resp = ledger::build_response(*store_, genesis_, id, memo_verify(), from_epoch);
    if (resp.ok() || resp.error().code != Errc::kNotFound || deadline_ms <= steady_ms()) {
      done(std::move(resp));
      return;
    }
    waiters_[id].push_back({deadline_ms, from_epoch, std::move(done)});
    if (store_->record_by_request(id).ok()) ready_[id] = Ready{};
  });
}

void Node::checkpoint(std::optional<uint64_t> epoch,
                      std::function<void(Result<nlohmann::json>)> done) {
  post_effects([this, epoch, done = std::move(done)] {
    // Default: the newest epoch whose hand-over chain is complete in this store.
    uint64_t e = epoch.value_or(committees_.empty() ? 0 : committees_.rbegin()->first);
    auto c = committees_.find(e);
    if (c == committees_.end())
      return done(make_error(Errc::kNotFound, "this node knows no committee of epoch " +
                                                  std::to_string(e) + " (current epoch " +
                                                  std::to_string(trust_->epoch()) + ")"));
    auto chain = ledger::handovers_to(*store_, genesis_, e);
    if (!chain.ok() && !epoch && e > 0) {
      // The newest hand-over's certificate may not be stored yet: offer the epoch before.
      --e;
      c = committees_.find(e);
      chain = ledger::handovers_to(*store_, genesis_, e);
    }
    if (!chain.ok())
      return done(make_error(chain.error().code, "the hand-overs to epoch " + std::to_string(e) +
                                                     ": " + chain.error().reason));
    done(ledger::checkpoint_proof_to_json(genesis_.chain_id, c->second, *chain));
  });
}

void Node::read_trust(
    std::function<void(const state::TrustState&, const std::map<uint64_t, ledger::Committee>&)>
        fn) {
  post_effects([this, fn = std::move(fn)] { fn(*trust_, committees_); });
}

void Node::read_store(std::function<void(const ledger::ReplicaStore&)> fn) {
  post_effects([this, fn = std::move(fn)] { fn(*store_); });
}

std::pair<Hash32, uint64_t> Node::freshness() const {
  std::lock_guard lk(smu_);
  return {tip_hash_, tip_height_};
}

nlohmann::json Node::status() const {
  nlohmann::json j;
  std::lock_guard lk(smu_);
  uint32_t me = self_.load();
  bool registered = me != kUnregistered && me < registry_->peers.size();
  j["node"] = registered ? registry_->peers[me].name : "unregistered";
  j["registered"] = registered;
  if (registered) j["replica"] = me;
  j["public_key"] = to_hex(ByteView(key_.public_key().data(), 32));
  j["chain_id"] = genesis_.chain_id;
  j["genesis_hash"] = to_hex(genesis_.hash());
  j["height"] = tip_height_;
  j["certified_height"] = certified_height_;
  j["tip"] = to_hex(tip_hash_);
  j["view"] = view_no_;
  j["epoch"] = epoch_;
  auto ck = committee_keys_.find(epoch_);
  std::vector<crypto::PublicKey> seats;
  if (ck != committee_keys_.end()) seats = *ck->second;
  auto name_of = [&](const crypto::PublicKey& k) {
    auto it = registry_->index.find(k);
    return it == registry_->index.end() ? std::string("?") : registry_->peers[it->second].name;
  };
  j["primary"] = seats.empty() ? "" : name_of(seats[view_no_ % seats.size()]);
  j["sitting"] = std::find(seats.begin(), seats.end(), key_.public_key()) != seats.end();
  j["in_view_change"] = in_view_change_;
  j["pending_requests"] = pending_;
  j["policy"] = policy_ ? policy_->id + " v" + std::to_string(policy_->version) : "ordering-only";
  nlohmann::json peers = nlohmann::json::array();
  if (transport_)
    for (uint32_t p : transport_->connected_peers())
      if (p < registry_->peers.size()) peers.push_back(registry_->peers[p].name);
  j["peers_connected"] = peers;
  j["committee"] = nlohmann::json::array();
  for (const auto& k : seats) j["committee"].push_back(name_of(k));
  return j;
}

std::string Node::metrics() const {
  std::ostringstream o;
  // 15 significant digits: counters print exactly up to 10^15 (the default 6 printed
  // 1234567 as 1.23457e+06, so a counter past a million moved in steps).
  o << std::setprecision(15);
  auto line = [&](const char* name, const char* type, const char* help, double v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << v << "\n";
  };
  consensus::ReplicaCounters c;
  std::map<std::string, uint64_t> failures;
  uint64_t height, certified;
  size_t pending;
  {
    std::lock_guard lk(smu_);
    c = counters_;
    pending = pending_;
    failures = appraisal_failures_;
    height = tip_height_;
    certified = certified_height_;
  }
  line("attestnet_blocks_committed_total", "counter", "Blocks executed into the ledger.",
       double(blocks_committed_));
  line("attestnet_requests_forwarded_in_total", "counter",
       "Requests peers forwarded to this node that validated.", double(forwarded_in_));
  line("attestnet_requests_committed_total", "counter", "Attestation records on the ledger.",
       double(requests_committed_));
  line("attestnet_requests_submitted_total", "counter", "Requests accepted by this node's API.",
       double(submitted_));
  line("attestnet_persist_batches_total", "counter",
       "Write batches of consensus records (group commits).", double(persisted_batches_));
  line("attestnet_signature_verifications_total", "counter",
       "Ed25519 verifications this node carried out (requests, evidence, peer messages, "
       "certificates).",
       double(sigs_->verifications()));
  line("attestnet_signature_memo_hits_total", "counter",
       "Signature checks answered by the memo of earlier verifications, without one.",
       double(sigs_->hits()));
  line("attestnet_store_syncs_total", "counter",
       "Synced writes of the store's write-ahead log (before a consensus message is sent).",
       double(synced_writes_));
  line("attestnet_persist_records_total", "counter", "Consensus records persisted.",
       double(persisted_records_));
  line("attestnet_certificates_fetched_total", "counter",
       "Header certificates fetched from peers (missed while down or after state transfer).",
       double(certificates_fetched_));
  line("attestnet_ledger_height", "gauge", "Height of the newest executed block.", double(height));
  line("attestnet_certified_height", "gauge", "Height of the newest certified header.",
       double(certified));
  line("attestnet_view_changes_total", "counter", "View changes this replica took part in.",
       double(c.view_changes));
  line("attestnet_view_change_complaints_total", "counter",
       "Times this replica's request timer expired in an active view (a Complaint sent; f+1 "
       "complaints start a view change).",
       double(c.complaints));
  line("attestnet_state_transfer_blocks_total", "counter", "Blocks received by state transfer.",
       double(c.state_transfer_blocks));
  line("attestnet_state_transfer_blocks_loaded_total", "counter",
       "Blocks sent to lagging peers from the store (older than the replica keeps in memory).",
       double(c.state_blocks_loaded));
  line("attestnet_consensus_refused_after_restart_total", "counter",
       "Pre-prepares and prepares not signed after a restart because the recovered prepare lease "
       "covered their slot (after kill -9 of a primary: the view changes).",
       double(c.refused_after_restart));
  line("attestnet_consensus_misbehaviour_proofs_total", "counter",
       "Conflicting signed messages of one member for one slot, reported to the ledger.",
       double(c.misbehaviour_proofs));
  line("attestnet_consensus_refused_equivocation_total", "counter",
       "Second digests this replica refused to sign for a slot: must stay 0 (alert).",
       double(c.refused_equivocation));
  line("attestnet_execution_divergence_total", "counter",
       "Headers a quorum certified with another digest than this node executed: must stay 0 "
       "(alert: this node's state differs from the committee's).",
       double(c.execution_divergence));
  line("attestnet_consensus_queue_depth", "gauge", "Events waiting for the protocol thread.",
       double(cq_depth_));
  line("attestnet_effects_queue_depth", "gauge", "Action batches waiting to be carried out.",
       double(eq_depth_));
  line("attestnet_pending_requests", "gauge", "Requests known but not yet committed.",
       double(pending));
  line("attestnet_block_interval_ms", "gauge",
       "The primary's block interval behind a backlogged block, as the host's CPU load sets it "
       "(consensus.min_block_interval_ms to busy_block_interval_ms).",
       double(block_interval_ms_));
  if (transport_) {
    const auto& t = transport_->stats();
    line("attestnet_peer_connections", "gauge", "Outbound peer connections up.",
         double(t.outbound_up));
    line("attestnet_peer_inbound_connections", "gauge", "Inbound peer connections up.",
         double(t.inbound_up));
    line("attestnet_peer_send_queue_bytes", "gauge", "Bytes queued to peers.",
         double(t.queued_bytes));
    line("attestnet_peer_frames_dropped_queue_full_total", "counter",
         "Frames refused by a full peer send queue.", double(t.dropped_queue_full));
    line("attestnet_peer_bad_frames_total", "counter", "Peer connections dropped for bad framing.",
         double(t.bad_frames));
    line("attestnet_peer_handshake_failures_total", "counter",
         "TLS handshakes failed or unpinned keys.", double(t.handshake_failures));
  }
  line("attestnet_peer_messages_dropped_total", "counter",
       "Peer messages dropped: bad signature, malformed, or invalid forwarded request.",
       double(dropped_frames_ + c.dropped_malformed + c.dropped_bad_signature +
              c.dropped_non_member));
  if (http_) {
    const auto& h = http_->stats();
    line("attestnet_http_requests_total", "counter", "HTTP requests parsed.", double(h.requests));
    line("attestnet_http_rate_limited_total", "counter", "HTTP requests refused with 429.",
         double(h.rate_limited));
    line("attestnet_http_too_large_total", "counter", "HTTP bodies over the limit (413).",
         double(h.too_large));
    line("attestnet_http_connections", "gauge", "Open HTTP connections.", double(h.connections));
  }
  // The process, under Prometheus' process_* names: with attestnet_requests_committed_total
  // they give CPU, page faults and context switches per committed request in production, the
  // figures scripts/bench-ab reports for a devnet (docs/operations.md).
  if (rusage ru{}; getrusage(RUSAGE_SELF, &ru) == 0) {
    auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    line("process_cpu_seconds_total", "counter", "User and system CPU time of all threads.",
         secs(ru.ru_utime) + secs(ru.ru_stime));
    line("process_minor_page_faults_total", "counter",
         "Page faults served without I/O (first touch of new memory).", double(ru.ru_minflt));
    line("process_major_page_faults_total", "counter", "Page faults that read from disk.",
         double(ru.ru_majflt));
    line("process_voluntary_context_switches_total", "counter",
         "Context switches of all threads that waited (I/O, locks, queues).", double(ru.ru_nvcsw));
    line("process_involuntary_context_switches_total", "counter",
         "Context switches of all threads that were preempted.", double(ru.ru_nivcsw));
  }
  if (std::ifstream statm("/proc/self/statm"); statm) {
    uint64_t size_pages = 0, resident_pages = 0;
    if (statm >> size_pages >> resident_pages)
      line("process_resident_memory_bytes", "gauge", "Resident memory.",
           double(resident_pages) * double(sysconf(_SC_PAGESIZE)));
  }
  // The heap as the allocator sees it (tcmalloc's, which attestnet links; absent under another
  // malloc): resident memory that grows while the allocated bytes do not is the allocator's
  // free lists, not a leak.
  using NumericProperty = int (*)(const char*, size_t*);
  static const auto tcmalloc_property =
      reinterpret_cast<NumericProperty>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
  if (size_t v = 0; tcmalloc_property && tcmalloc_property("generic.current_allocated_bytes", &v))
    line("process_heap_allocated_bytes", "gauge", "Bytes the program holds from the allocator.",
         double(v));
  if (size_t v = 0; tcmalloc_property && tcmalloc_property("generic.heap_size", &v))
    line("process_heap_size_bytes", "gauge", "Bytes the allocator holds from the system.",
         double(v));
  {
    ledger::ReplicaStore::MemoryUse m = store_->memory_use();
    line("attestnet_store_memtable_bytes", "gauge", "RocksDB memtables (at most 64 MiB in all).",
         double(m.memtables));
    line("attestnet_store_table_readers_bytes", "gauge",
         "RocksDB index and filter blocks of the table files, held outside the block cache.",
         double(m.table_readers));
    line("attestnet_store_block_cache_bytes", "gauge", "RocksDB block cache.",
         double(m.block_cache));
  }
  o << "# HELP attestnet_commit_latency_ms Submit-to-commit latency at this node.\n"
    << "# TYPE attestnet_commit_latency_ms histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cum += commit_latency_.buckets[i];
    o << "attestnet_commit_latency_ms_bucket{le=\"" << Histogram::kBounds[i] << "\"} " << cum
      << "\n";
  }
  cum += commit_latency_.buckets.back();
  o << "attestnet_commit_latency_ms_bucket{le=\"+Inf\"} " << cum << "\n"
    << "attestnet_commit_latency_ms_sum " << commit_latency_.sum.load() << "\n"
    << "attestnet_commit_latency_ms_count " << commit_latency_.count.load() << "\n";
  o << "# HELP attestnet_appraisal_failures_total Records not affirming, by first failed rule.\n"
    << "# TYPE attestnet_appraisal_failures_total counter\n";
  for (const auto& [k, v] : failures)
    o << "attestnet_appraisal_failures_total{reason=\"" << k << "\"} " << v << "\n";
  return o.str();
}

}  // namespace attestnet::node
