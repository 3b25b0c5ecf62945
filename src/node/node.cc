#include "node/node.h"

#include <pthread.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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

Result<std::unique_ptr<Node>> Node::open(const NodeConfig& cfg) {
  crypto::init();
  std::unique_ptr<Node> n(new Node());
  n->cfg_ = cfg;
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
  if (n->genesis_.seats() != n->genesis_.members.size() || n->genesis_.trust.epoch_length != 0) {
    return make_error(Errc::kBadValue,
                      cfg.genesis_file +
                          " asks for epochs or for registered nodes outside the "
                          "committee (params epoch_length, committee_size): this "
                          "node runs the genesis committee for ever; committee "
                          "rotation runs in the simulator (attestnet sim --epochs) "
                          "and is not yet wired into the node (docs/trust.md)");
  }
  const auto& members = n->genesis_.members;
  auto me = std::find_if(members.begin(), members.end(),
                         [&](const auto& m) { return m.public_key == n->key_.public_key(); });
  if (me == members.end())
    return make_error(Errc::kUnknownSigner, "the key in " + cfg.key_file + " (public key " +
                                                to_hex(ByteView(n->key_.public_key().data(), 32)) +
                                                ") is not a member of the genesis committee in " +
                                                cfg.genesis_file);
  n->self_ = static_cast<consensus::ReplicaId>(me - members.begin());

  if (!cfg.ordering_only) {
    ATN_TRY(std::string ptext, slurp(cfg.policy_file, "policy"));
    auto pol = policy::parse_policy(ptext);
    if (!pol.ok()) return make_error(pol.error().code, cfg.policy_file + ": " + pol.error().reason);
    n->policy_ = std::make_shared<const policy::Policy>(std::move(pol).value());
    n->app_ = std::make_shared<state::AttestationApp>(n->policy_);
  }
  // Verified signatures, shared by the workers (who fill it on arrival), the replica's verify
  // hook, execution (set_verifier) and response building.
  n->sigs_ = std::make_shared<crypto::SignatureMemo>(200000, 20000);
  if (n->app_) n->app_->set_verifier(n->memo_verify());

  auto& rc = n->rcfg_;
  rc.chain_id = n->genesis_.chain_id;
  for (const auto& m : members) rc.committee.push_back(m.public_key);
  rc.self = n->self_;
  rc.batch_max = cfg.batch_max;
  rc.batch_wait_ms = cfg.batch_wait_ms;
  rc.checkpoint_interval = n->genesis_.checkpoint_interval;
  rc.window = std::max<uint64_t>(64, 4 * rc.checkpoint_interval);
  rc.view_change_timeout_ms = cfg.view_change_timeout_ms;
  rc.max_inflight_blocks = cfg.max_inflight_blocks;

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
  n->view_ = std::make_unique<state::MemoryLedgerView>(n->genesis_.hash(), 1024);
  ATN_CHECK(state::rebuild_view(*n->store_, n->builder_->next_height() - 1, *n->view_));
  ATN_CHECK(n->catch_up_ledger());
  ATN_TRY(auto records, n->store_->load());
  consensus::ReplicaHooks hooks;
  hooks.verify = n->memo_verify();
  hooks.validate = [self](const consensus::Request& q) -> Status {
    {
      std::lock_guard lk(self->vmu_);
      if (self->validated_.erase(q.id())) return {};
    }
    if (!self->app_) return {};
    return self->app_->validate(q);
  };
  n->replica_ = Replica::recover(rc, n->key_, hooks, records);
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
    Hash32 prev_state{};
    uint64_t prev_time = 0;
    if (h > 1) {
      ATN_TRY(auto hf, store_->header(h - 1));
      ATN_TRY(auto prev, ledger::BlockHeader::decode(as_view(hf.first)));
      prev_state = prev.state_root;
      prev_time = prev.block_time;
    }
    Hash32 state = consensus::next_state_digest(prev_state, h, cb.block.digest());
    ledger::BuiltBlock built = builder_->apply(cb, state, std::max(prev_time, cb.block.block_time));
    view_->note_header(built.header.hash());
    ATN_CHECK(ledger::persist_built_block(*store_, *builder_, built));
  }
  return {};
}

std::optional<ledger::AttestationRecord> Node::execute(const consensus::Request& q, uint64_t t) {
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
  const auto& me = genesis_.members[self_];
  HostPort listen;
  if (cfg_.peer_listen) {
    listen = *cfg_.peer_listen;
  } else {
    auto hp = parse_host_port(me.endpoint);
    if (!hp.ok())
      return make_error(Errc::kInvalidArgument,
                        "genesis endpoint of " + me.name + ": " + hp.error().reason);
    listen = *hp;
  }
  tc.listen_host = listen.host;
  tc.listen_port = listen.port;
  for (size_t i = 0; i < genesis_.members.size(); ++i) {
    if (i == self_) continue;
    const auto& m = genesis_.members[i];
    auto ov = cfg_.peer_overrides.find(m.name);
    auto hp = parse_host_port(ov != cfg_.peer_overrides.end() ? ov->second : m.endpoint);
    if (!hp.ok())
      return make_error(Errc::kInvalidArgument, "endpoint of " + m.name + ": " + hp.error().reason);
    tc.peers.push_back({static_cast<uint32_t>(i), m.public_key, hp->host, hp->port});
  }
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
  for (int i = 0; i < 2; ++i)
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
  replica_.reset();
  store_.reset();
}

void Node::post_consensus(Event e) {
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

void Node::consensus_loop() {
  uint64_t next_tick = 0;
  while (!stopping_) {
    std::deque<Event> batch;
    {
      std::unique_lock lk(cmu_);
      ccv_.wait_for(lk, std::chrono::milliseconds(1), [&] { return !cq_.empty() || stopping_; });
      batch.swap(cq_);
      cq_depth_ = 0;
    }
    if (stopping_) break;
    Actions all;
    uint64_t now = wall_ms();
    for (auto& e : batch) {
      Actions a = e(*replica_, now);
      all.insert(all.end(), std::make_move_iterator(a.begin()), std::make_move_iterator(a.end()));
    }
    if (now >= next_tick) {
      Actions a = replica_->on_tick(now);
      all.insert(all.end(), std::make_move_iterator(a.begin()), std::make_move_iterator(a.end()));
      next_tick = now + 1;  // batch_wait_ms and the timers are in ms: tick at that grain
    }
    {
      std::lock_guard lk(smu_);
      counters_ = replica_->counters();
      view_no_ = replica_->view();
      in_view_change_ = replica_->in_view_change();
      pending_ = replica_->pending_requests();
    }
    if (!all.empty())
      post_effects([this, a = std::make_shared<Actions>(std::move(all))]() mutable {
        carry_out(std::move(*a));
      });
  }
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

// Waiters past their deadline are answered (202 / 404), and missed header certificates are
// asked for once a second; under load as well as when idle.
void Node::housekeeping(uint64_t now) {
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
}

namespace {
constexpr uint8_t kCertRequest = 1, kCertReply = 2;
constexpr uint32_t kMaxCertsPerMessage = 256;
}  // namespace

void Node::request_missing_certificates() {
  uint64_t tip = builder_->next_height() - 1;
  if (tip < 4) return;
  std::vector<uint64_t> missing;
  for (uint64_t h = cert_scan_from_; h + 4 <= tip && missing.size() < kMaxCertsPerMessage; ++h) {
    if (store_->certificate(h).ok()) {
      if (missing.empty()) cert_scan_from_ = h + 1;
      continue;
    }
    missing.push_back(h);
  }
  if (missing.empty() || genesis_.members.size() < 2) return;
  Writer w(8 * missing.size() + 8);
  w.u8(kCertRequest).u32(static_cast<uint32_t>(missing.size()));
  for (uint64_t h : missing) w.u64(h);
  // Ask one peer per round, round robin: a silent or lying peer costs a round, not progress.
  cert_sync_peer_ = (cert_sync_peer_ + 1) % static_cast<uint32_t>(genesis_.members.size());
  if (cert_sync_peer_ == self_)
    cert_sync_peer_ = (cert_sync_peer_ + 1) % static_cast<uint32_t>(genesis_.members.size());
  transport_->send(cert_sync_peer_, net::Channel::kLedger,
                   std::make_shared<Bytes>(std::move(w).take()));
}

void Node::on_ledger_frame(uint32_t from, const Bytes& payload) {
  Reader r(as_view(payload));
  auto kind = r.u8();
  auto n = r.u32();
  if (!kind.ok() || !n.ok() || *n > kMaxCertsPerMessage) {
    ++dropped_frames_;
    return;
  }
  if (*kind == kCertRequest) {
    Writer w;
    std::vector<std::tuple<uint64_t, consensus::View, crypto::QuorumCertificate>> found;
    for (uint32_t i = 0; i < *n; ++i) {
      auto h = r.u64();
      if (!h.ok()) break;
      if (auto c = store_->certificate(*h); c.ok()) found.emplace_back(*h, c->first, c->second);
    }
    if (found.empty()) return;
    w.u8(kCertReply).u32(static_cast<uint32_t>(found.size()));
    for (auto& [h, v, c] : found) {
      w.u64(h).u64(v);
      c.encode(w);
    }
    transport_->send(from, net::Channel::kLedger, std::make_shared<Bytes>(std::move(w).take()));
    return;
  }
  if (*kind != kCertReply) {
    ++dropped_frames_;
    return;
  }
  ledger::Committee committee = genesis_.committee();
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
    // Only a certificate 2f+1 members signed over OUR header at this height is kept.
    if (!ledger::verify_header(*hdr, cert, committee, memo_verify()).ok()) {
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

void Node::carry_out(Actions actions) {
  std::vector<std::pair<consensus::Seq, Hash32>> executed;
  // Group commit: consecutive persists become one synced batch, written before the first
  // action after them (persist before send still holds: nothing is sent before its record).
  std::vector<const consensus::PersistRecord*> pending;
  auto flush = [&] {
    if (pending.empty()) return;
    Status st = store_->append_all(pending);
    if (!st.ok()) {
      // Without durability the replica must not speak: stop rather than risk equivocation.
      std::fprintf(stderr, "attestnet node: FATAL: cannot persist: %s\n",
                   st.error().to_string().c_str());
      std::_Exit(70);
    }
    persisted_batches_ += 1;
    persisted_records_ += pending.size();
    pending.clear();
  };
  for (auto& a : actions) {
    if (auto* p = std::get_if<consensus::PersistAction>(&a)) {
      pending.push_back(&p->record);
      continue;
    }
    flush();
    if (auto* t = std::get_if<consensus::TruncateAction>(&a)) {
      (void)store_->truncate(t->stable_seq);
    } else if (auto* s = std::get_if<consensus::SendAction>(&a)) {
      net::Channel ch = s->type == consensus::MsgType::kStateReply ? net::Channel::kBulk
                                                                   : net::Channel::kConsensus;
      if (s->to)
        transport_->send(*s->to, ch, s->bytes);
      else
        transport_->broadcast(ch, s->bytes);
    } else if (auto* d = std::get_if<consensus::DeliverAction>(&a)) {
      if (auto e = deliver(*d)) executed.push_back(*e);
    } else if (auto* hc = std::get_if<consensus::HeaderCertifiedAction>(&a)) {
      certified(*hc);
    }
  }
  flush();
  for (const auto& [h, digest] : executed) {
    post_consensus([h = h, digest = digest](Replica& r, uint64_t now) {
      return r.on_executed(h, digest, now);
    });
  }
}

std::optional<std::pair<consensus::Seq, Hash32>> Node::deliver(const consensus::DeliverAction& d) {
  if (d.block->block.height != builder_->next_height()) return std::nullopt;
  ledger::BuiltBlock built = builder_->apply(*d.block, d.state_digest, d.block_time);
  view_->note_header(built.header.hash());
  Status st = ledger::persist_built_block(*store_, *builder_, built);
  if (!st.ok()) {
    std::fprintf(stderr, "attestnet node: FATAL: cannot store block %llu: %s\n",
                 static_cast<unsigned long long>(built.header.height),
                 st.error().to_string().c_str());
    std::_Exit(70);
  }
  uint64_t now = steady_ms();
  {
    std::lock_guard lk(smu_);
    tip_hash_ = built.header.hash();
    tip_height_ = built.header.height;
    for (const auto& r : built.records) {
      auto it = submitted_at_.find(r.request_id);
      if (it != submitted_at_.end()) {
        commit_latency_.observe(static_cast<double>(now - it->second));
        submitted_at_.erase(it);
      }
    }
  }
  ++blocks_committed_;
  requests_committed_ += built.records.size();
  for (const auto& r : built.records)
    if (waiters_.count(r.request_id)) ready_[r.request_id] = built.header.height;
  return std::make_pair(built.header.height, built.header.hash());
}

void Node::certified(const consensus::HeaderCertifiedAction& hc) {
  Status st = store_->put_certificate(hc.height, hc.view, hc.cert);
  if (!st.ok()) {
    std::fprintf(stderr, "attestnet node: cannot store the certificate of %llu: %s\n",
                 static_cast<unsigned long long>(hc.height), st.error().to_string().c_str());
    return;
  }
  {
    std::lock_guard lk(smu_);
    certified_height_ = std::max(certified_height_, hc.height);
  }
  answer_ready(hc.height);
}

void Node::answer_ready(uint64_t certified_height) {
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->second > certified_height) {
      ++it;
      continue;
    }
    auto resp = ledger::build_response(*store_, genesis_, it->first, memo_verify());
    if (!resp.ok() && resp.error().code == Errc::kNotFound) {
      ++it;
      continue;
    }
    auto w = waiters_.find(it->first);
    if (w != waiters_.end()) {
      for (auto& x : w->second) x.done(resp);
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
    asio::post(*workers_, [this, data] {
      Reader r(as_view(*data));
      auto q = consensus::Request::decode(r);
      if (!q.ok() || r.remaining() != 0 || (app_ && !app_->validate(*q).ok())) {
        ++dropped_frames_;
        return;
      }
      ++forwarded_in_;
      {
        std::lock_guard lk(vmu_);
        if (validated_.size() > 500000) validated_.clear();
        validated_.insert(q->id());
      }
      post_consensus([q = std::move(q).value()](Replica& rep, uint64_t now) {
        return rep.on_request(q, now);
      });
    });
    return;
  }
  // Consensus and bulk: check the envelope's signature on a worker; the replica's verify hook
  // then finds it in the cache. Anything malformed is left for the replica to count and drop.
  asio::post(*workers_, [this, data, from] {
    auto env = consensus::Envelope::decode(as_view(*data));
    if (env.ok() && env->sender == from && env->sender < rcfg_.committee.size()) {
      Bytes msg =
          consensus::signing_message(rcfg_.chain_id, rcfg_.epoch, env->type, as_view(env->body));
      if (!sigs_->verify(rcfg_.committee[env->sender], as_view(msg), env->sig)) {
        ++dropped_frames_;
        return;
      }
    } else if (env.ok() && env->sender != from) {
      ++dropped_frames_;  // a member may only speak for itself on its own connection
      return;
    }
    post_consensus(
        [data](Replica& rep, uint64_t now) { return rep.on_message(as_view(*data), now); });
  });
}

Result<Hash32> Node::submit(Bytes payload) {
  consensus::Request q;
  q.payload = std::move(payload);
  if (q.payload.size() > consensus::kMaxRequestPayload)
    return make_error(
        Errc::kOversize,
        "the request is larger than " + std::to_string(consensus::kMaxRequestPayload) + " bytes");
  if (app_) {
    ATN_CHECK(app_->validate(q));
  }
  {
    std::lock_guard lk(smu_);
    if (pending_ > 50000 || cq_depth_ > 100000)
      return make_error(Errc::kUnavailable, "the node is overloaded (" + std::to_string(pending_) +
                                                " requests pending): retry later");
  }
  Hash32 id = q.id();
  {
    std::lock_guard lk(vmu_);
    validated_.insert(id);
  }
  {
    std::lock_guard lk(smu_);
    if (submitted_at_.size() < 1000000) submitted_at_.emplace(id, steady_ms());
  }
  ++submitted_;
  Writer w(q.payload.size() + 32);
  q.encode(w);
  transport_->broadcast(net::Channel::kRequest, std::make_shared<Bytes>(std::move(w).take()));
  post_consensus([q = std::move(q)](Replica& rep, uint64_t now) { return rep.on_request(q, now); });
  return id;
}

void Node::await_response(const Hash32& id, uint64_t deadline_ms,
                          std::function<void(Result<ledger::AttestationResponse>)> done) {
  post_effects([this, id, deadline_ms, done = std::move(done)]() mutable {
    auto resp = ledger::build_response(*store_, genesis_, id, memo_verify());
    if (resp.ok() || resp.error().code != Errc::kNotFound || deadline_ms <= steady_ms()) {
      done(std::move(resp));
      return;
    }
    waiters_[id].push_back({deadline_ms, std::move(done)});
    if (store_->record_by_request(id).ok()) ready_[id] = 0;
  });
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
  j["node"] = genesis_.members[self_].name;
  j["replica"] = self_;
  j["chain_id"] = genesis_.chain_id;
  j["genesis_hash"] = to_hex(genesis_.hash());
  j["height"] = tip_height_;
  j["certified_height"] = certified_height_;
  j["tip"] = to_hex(tip_hash_);
  j["view"] = view_no_;
  j["primary"] = genesis_.members[rcfg_.primary(view_no_)].name;
  j["in_view_change"] = in_view_change_;
  j["pending_requests"] = pending_;
  j["epoch"] = 0;
  j["policy"] = policy_ ? policy_->id + " v" + std::to_string(policy_->version) : "ordering-only";
  nlohmann::json peers = nlohmann::json::array();
  if (transport_)
    for (uint32_t p : transport_->connected_peers()) peers.push_back(genesis_.members[p].name);
  j["peers_connected"] = peers;
  j["committee"] = nlohmann::json::array();
  for (const auto& m : genesis_.members) j["committee"].push_back(m.name);
  return j;
}

std::string Node::metrics() const {
  std::ostringstream o;
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
  line("attestnet_requests_forwarded_in_total", "counter",
       "Requests peers forwarded to this node that validated.", double(forwarded_in_));
  line("attestnet_requests_committed_total", "counter", "Attestation records on the ledger.",
       double(requests_committed_));
  line("attestnet_requests_submitted_total", "counter", "Requests accepted by this node's API.",
       double(submitted_));
  line("attestnet_persist_batches_total", "counter", "Synced write batches (group commits).",
       double(persisted_batches_));
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
  line("attestnet_state_transfer_blocks_total", "counter", "Blocks received by state transfer.",
       double(c.state_transfer_blocks));
  line("attestnet_consensus_queue_depth", "gauge", "Events waiting for the protocol thread.",
       double(cq_depth_));
  line("attestnet_effects_queue_depth", "gauge", "Action batches waiting to be carried out.",
       double(eq_depth_));
  line("attestnet_pending_requests", "gauge", "Requests known but not yet committed.",
       double(pending));
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
