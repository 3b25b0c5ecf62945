// PBFT replica (OSDI '99 §4; TOCS 2002 §4–§6). See replica.h for the contract.
#include "consensus/replica.h"

#include <algorithm>
#include <cassert>

#include "core/hash.h"

namespace attestnet::consensus {

Hash32 next_state_digest(const Hash32& prev, Seq seq, const Hash32& block_digest) {
  Writer w(72);
  w.hash(prev).u64(seq).hash(block_digest);
  return hash_domain("attestnet/state", as_view(w.data()));
}

Replica::Replica(ReplicaConfig cfg, crypto::SecretKey key, ReplicaHooks hooks)
    : cfg_(std::move(cfg)), key_(std::move(key)), hooks_(std::move(hooks)) {
  assert(cfg_.n() >= 1 && cfg_.self < cfg_.n());
  assert(cfg_.window >= 2 * cfg_.checkpoint_interval);
  assert(cfg_.last_height > cfg_.base_height);
  last_executed_ = stable_ = headers_certified_below_ = cfg_.base_height;
  state_digest_ = stable_digest_ = cfg_.base_state_digest;
  last_block_time_ = cfg_.base_block_time;
  next_seq_ = cfg_.base_height + 1;
}

std::vector<Request> Replica::pending() const {
  std::vector<Request> out;
  std::unordered_set<Hash32, Hash32Hasher> seen;
  for (const Hash32& id : pending_order_) {
    auto it = requests_.find(id);
    if (it != requests_.end() && it->second.req && !it->second.executed && seen.insert(id).second)
      out.push_back(*it->second.req);
  }
  // Requests proposed in this view are no longer in pending_order_.
  for (const auto& [id, st] : requests_) {
    if (st.req && !st.executed && seen.insert(id).second) out.push_back(*st.req);
  }
  return out;
}

void Replica::report_bad_header_vote(ReplicaId from, const HeaderVote& v,
                                     const crypto::Signature& sig) {
  if (replaying_ || from == cfg_.self) return;
  Envelope env;
  env.type = MsgType::kHeaderVote;
  env.sender = from;
  env.epoch = cfg_.epoch;
  env.body = v.encode();
  env.sig = sig;
  ++counters_.misbehaviour_proofs;
  out_.push_back(MisbehaviourAction{MisbehaviourAction::kBadHeaderVote, env, env});
}

void Replica::report_conflict(const Envelope& first, const Envelope& second) {
  ++counters_.dropped_conflicting;
  if (replaying_ || first.sender != second.sender || first.sender == cfg_.self) return;
  ++counters_.misbehaviour_proofs;
  out_.push_back(MisbehaviourAction{MisbehaviourAction::kEquivocation, first, second});
}

std::optional<StableCheckpoint> stable_checkpoint(const PersistRecord& rec) {
  if (rec.kind != PersistRecord::Kind::kStable) return std::nullopt;
  auto rep = StateReply::decode(as_view(rec.bytes));
  if (!rep.ok() || !rep->stable_seq || rep->stable_proof.empty()) return std::nullopt;
  auto c = Checkpoint::decode(as_view(rep->stable_proof[0].body));
  if (!c.ok()) return std::nullopt;
  return StableCheckpoint{*rep->stable_seq, c->state_digest, std::move(rep->stable_proof)};
}

void keep_newest_checkpoint(std::optional<StableCheckpoint>& newest, const PersistRecord& rec,
                            Seq at_most) {
  if (rec.kind != PersistRecord::Kind::kStable || rec.seq > at_most) return;
  if (newest && rec.seq <= newest->seq) return;
  if (auto cp = stable_checkpoint(rec); cp && cp->seq == rec.seq) newest = std::move(cp);
}

std::unique_ptr<Replica> Replica::recover(ReplicaConfig cfg, crypto::SecretKey key,
                                          ReplicaHooks hooks,
                                          const std::vector<PersistRecord>& records) {
  auto r = start_recovery(std::move(cfg), std::move(key), std::move(hooks));
  for (const auto& rec : records) r->replay(rec);
  r->finish_recovery();
  return r;
}

std::unique_ptr<Replica> Replica::start_recovery(ReplicaConfig cfg, crypto::SecretKey key,
                                                 ReplicaHooks hooks) {
  auto r = std::make_unique<Replica>(std::move(cfg), std::move(key), std::move(hooks));
  r->replaying_ = true;
  return r;
}

void Replica::replay(const PersistRecord& rec) {
  assert(replaying_);
  switch (rec.kind) {
    case PersistRecord::Kind::kCommitted: {
      Reader rd(as_view(rec.bytes), kMaxMessageBytes);
      auto cb = CommittedBlock::decode(rd);
      if (!cb.ok()) break;
      auto p = std::make_shared<const CommittedBlock>(std::move(cb).value());
      if (p->block.height == last_executed_ + 1) execute(p);
      break;
    }
    case PersistRecord::Kind::kStable: {
      if (auto cp = stable_checkpoint(rec)) make_stable(cp->seq, cp->digest, cp->proof);
      break;
    }
    case PersistRecord::Kind::kMessage: {
      auto env = Envelope::decode(as_view(rec.bytes));
      // Records of earlier epochs' replicas share the store: only this epoch's count.
      if (env.ok() && env->epoch == cfg_.epoch) handle(*env);
      break;
    }
    case PersistRecord::Kind::kLease: {
      Reader rd(as_view(rec.bytes));
      auto epoch = rd.u64();
      Lease l{rec.view, rec.seq, true};
      if (epoch.ok() && *epoch == cfg_.epoch && lease_recovered_.before(l)) lease_recovered_ = l;
      break;
    }
  }
  out_.clear();  // nothing a replay does is carried out again
}

Status Replica::resume_at(const StableCheckpoint& cp, uint64_t block_time) {
  assert(replaying_);
  if (last_executed_ != cfg_.base_height || stable_ != cfg_.base_height)
    return make_error(Errc::kBadValue, "a replica resumes from a checkpoint before any replay");
  if (!hooks_.load_block)
    return make_error(Errc::kBadValue,
                      "a host that cannot read blocks back (no load_block) replays them all");
  if (cp.seq <= cfg_.base_height || cp.seq >= cfg_.last_height)
    return make_error(Errc::kBadValue, "checkpoint " + std::to_string(cp.seq) +
                                           " is not inside this replica's epoch");
  ATN_CHECK(verify_checkpoint_proof(cp.seq, cp.digest, cp.proof));
  last_executed_ = cp.seq;
  state_digest_ = cp.digest;
  last_block_time_ = std::max(last_block_time_, block_time);
  next_seq_ = std::max(next_seq_, cp.seq + 1);
  make_stable(cp.seq, cp.digest, cp.proof);
  return {};
}

void Replica::finish_recovery() {
  replaying_ = false;  // replay() left no actions behind
  // What the recovered lease covers was perhaps signed in records lost with an unsynced write:
  // refused_after_restart keeps this replica from signing those slots again.
  lease_emitted_ = lease_durable_ = lease_recovered_;
}

// ---------------------------------------------------------------- entry points

Actions Replica::on_request(const Request& req, uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  Hash32 id = req.id();
  auto [it, inserted] = requests_.try_emplace(id);
  RequestState& st = it->second;
  if (!inserted) {
    if (st.executed) {
      // At-most-once: a retransmitted request gets the reply again, never a second execution.
      out_.push_back(ReplyAction{req.client_id, id, st.height, st.view});
    }
    return take_actions();
  }
  if (pending_count_ >= cfg_.max_pending_requests ||
      (hooks_.validate && !hooks_.validate(req).ok())) {
    requests_.erase(it);
    ++counters_.dropped_requests;
    return take_actions();
  }
  st.req = std::make_unique<Request>(req);
  st.arrival_ms = now_;
  ++pending_count_;
  pending_order_.push_back(id);
  if (!vc_deadline_ && active_) arm_request_timer();
  try_propose();
  return take_actions();
}

Actions Replica::on_message(ByteView bytes, uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  auto env = Envelope::decode(bytes);
  if (!env.ok()) {
    ++counters_.dropped_malformed;
    return take_actions();
  }
  if (env->epoch != cfg_.epoch) {
    ++counters_.dropped_other_epoch;
    return take_actions();
  }
  if (env->sender >= cfg_.n()) {
    ++counters_.dropped_non_member;
    return take_actions();
  }
  if (env->sender == cfg_.self) {  // our own message echoed back: we already know it
    return take_actions();
  }
  if (!verify_envelope(*env)) {
    ++counters_.dropped_bad_signature;
    return take_actions();
  }
  handle(*env);
  return take_actions();
}

Actions Replica::on_tick(uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  if (!have_ticked_) {
    have_ticked_ = true;
    last_progress_ms_ = now_;
    if (!active_) {
      // Restarted in the middle of a view change (concord-bft#805): stay in it, rebroadcast.
      if (view_changes_[view_].size() >= cfg_.quorum()) {
        vc_deadline_ = now_ + (cfg_.view_change_timeout_ms << timeout_doublings_);
      }
    }
  }
  if (finished()) vc_deadline_.reset();
  if (vc_deadline_ && now_ >= *vc_deadline_) {
    vc_deadline_.reset();
    // In an active view an expired request timer is a complaint; waiting for a NEW-VIEW, it
    // moves on to the next view (§4.5.2).
    if (active_) {
      complain();
    } else {
      start_view_change(view_ + 1);
    }
  }
  if (now_ >= next_status_ms_) {
    next_status_ms_ = now_ + cfg_.status_interval_ms;
    StatusMsg s{view_, !active_, last_executed_, stable_};
    send(sign(MsgType::kStatus, s.encode()));
    if (!active_ && own_view_change_) send(*own_view_change_);
  }
  try_propose();
  return take_actions();
}

Actions Replica::on_executed(Seq height, const Hash32& header_digest, uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  auto block = ledger_.find(height);
  if (block == ledger_.end() || height <= headers_certified_below_) return take_actions();
  HeaderVotes& hv = header_votes_[height];
  if (hv.own) return take_actions();
  if (!record_signature(MsgType::kHeaderVote, 0, height, header_digest)) return take_actions();
  hv.own = header_digest;
  // Header votes carry no view (0): the commit view differs between replicas (a block prepared
  // in view v commits in v at some and in v+1 at others), the header they vote on does not.
  hv.view = 0;
  HeaderVote v{height, hv.view, header_digest};
  // Not durable: the header follows from the committed block, so a replica that lost its
  // unsynced ledger writes executes the block again into the same header.
  Envelope env = sign(MsgType::kHeaderVote, v.encode());
  send(env, std::nullopt, false);
  for (const auto& [id, vs] : hv.votes) {
    if (vs.first.header_digest != header_digest) report_bad_header_vote(id, vs.first, vs.second);
  }
  hv.votes[cfg_.self] = {v, env.sig};
  check_header_certified(height);
  return take_actions();
}

void Replica::handle_header_vote(const Envelope& env, const HeaderVote& v) {
  // A late vote still counts for participation: it joins the certificate a block will carry.
  if (auto att = to_attach_.find(v.height);
      att != to_attach_.end() && att->second.header_digest == v.header_digest && v.view == 0) {
    att->second.cert.add(env.sender, env.sig);
  }
  if (replaying_ || v.height <= headers_certified_below_ ||
      v.height > last_executed_ + cfg_.window) {
    ++counters_.dropped_out_of_window;
    return;
  }
  HeaderVotes& hv = header_votes_[v.height];
  if (hv.votes.count(env.sender)) return;
  hv.votes[env.sender] = {v, env.sig};
  if (hv.own && v.header_digest != *hv.own) report_bad_header_vote(env.sender, v, env.sig);
  check_header_certified(v.height);
}

void Replica::check_header_certified(Seq height) {
  auto it = header_votes_.find(height);
  if (it == header_votes_.end() || it->second.certified || !it->second.own) return;
  HeaderVotes& hv = it->second;
  crypto::QuorumCertificate cert;
  size_t others = 0;
  for (const auto& [id, vs] : hv.votes) {
    if (vs.first.header_digest == *hv.own && vs.first.view == hv.view) {
      if (cert.sigs.size() < cfg_.quorum()) cert.add(id, vs.second);
    } else {
      ++others;
    }
  }
  if (others >= cfg_.quorum()) ++counters_.execution_divergence;
  if (cert.sigs.size() < cfg_.quorum()) return;
  hv.certified = true;
  ++counters_.headers_certified;
  {
    CertifiedHeader& att = to_attach_[height];
    att.height = height;
    att.header_digest = *hv.own;
    for (const auto& [id, vs] : hv.votes) {
      if (vs.first.header_digest == *hv.own && vs.first.view == hv.view)
        att.cert.add(id, vs.second);
    }
  }
  out_.push_back(HeaderCertifiedAction{height, hv.view, *hv.own, std::move(cert)});
  while (true) {
    auto first = header_votes_.find(headers_certified_below_ + 1);
    if (first == header_votes_.end() || !first->second.certified) break;
    header_votes_.erase(first);
    ++headers_certified_below_;
  }
}

std::shared_ptr<const CommittedBlock> Replica::committed_block(Seq height) const {
  if (auto it = ledger_.find(height); it != ledger_.end()) return it->second;
  if (height > last_executed_ || !hooks_.load_block) return nullptr;
  auto cb = hooks_.load_block(height);
  return cb && cb->block.height == height ? cb : nullptr;
}

// ---------------------------------------------------------------- dispatch

void Replica::handle(const Envelope& env) {
  switch (env.type) {
    case MsgType::kPrePrepare: {
      auto pp = PrePrepare::decode(as_view(env.body));
      if (!pp.ok()) break;
      handle_pre_prepare(env, std::move(pp).value(), false);
      return;
    }
    case MsgType::kPrepare:
    case MsgType::kCommit: {
      auto v = Vote::decode(as_view(env.body));
      if (!v.ok()) break;
      handle_vote(env, *v);
      return;
    }
    case MsgType::kCheckpoint: {
      auto c = Checkpoint::decode(as_view(env.body));
      if (!c.ok()) break;
      handle_checkpoint(env, *c);
      return;
    }
    case MsgType::kViewChange: {
      auto vc = ViewChange::decode(as_view(env.body));
      if (!vc.ok()) break;
      handle_view_change(env, std::move(vc).value());
      return;
    }
    case MsgType::kNewView: {
      auto nv = NewView::decode(as_view(env.body));
      if (!nv.ok()) break;
      handle_new_view(env, *nv);
      return;
    }
    case MsgType::kComplaint: {
      auto c = Complaint::decode(as_view(env.body));
      if (!c.ok()) break;
      handle_complaint(env, *c);
      return;
    }
    case MsgType::kStatus: {
      auto s = StatusMsg::decode(as_view(env.body));
      if (!s.ok()) break;
      handle_status(env, *s);
      return;
    }
    case MsgType::kStateRequest: {
      auto r = StateRequest::decode(as_view(env.body));
      if (!r.ok()) break;
      handle_state_request(env, *r);
      return;
    }
    case MsgType::kStateReply: {
      auto r = StateReply::decode(as_view(env.body));
      if (!r.ok()) break;
      handle_state_reply(env, *r);
      return;
    }
    case MsgType::kHeaderVote: {
      auto v = HeaderVote::decode(as_view(env.body));
      if (!v.ok()) break;
      handle_header_vote(env, *v);
      return;
    }
    case MsgType::kRequest:
      break;
  }
  ++counters_.dropped_malformed;
}

// ---------------------------------------------------------------- §4.2 normal case

void Replica::try_propose() {
  proposal_due_ms_ = 0;
  if (!active_ || !is_primary() || replaying_) return;
  // Never propose at a height that is already decided here: after a restart our pre-prepares
  // below the stable checkpoint are truncated, and a slot must not be signed twice.
  next_seq_ = std::max(next_seq_, std::max(last_executed_, stable_) + 1);
  while (next_seq_ <= high_mark()) {
    if (cfg_.max_inflight_blocks && next_seq_ > last_executed_ + cfg_.max_inflight_blocks) return;
    // Back from a restart as the primary of the view its lease names: it cannot know what it
    // proposed at the slots the lease covers, so it proposes nothing more in this view (the
    // backups' timers move the committee to the next primary).
    if (refused_after_restart(view_, next_seq_)) return;
    // pending_order_ holds proposal candidates in arrival order; ids that were executed or
    // already proposed are skipped lazily, so each id is looked at O(1) times.
    const RequestState* front = nullptr;
    while (!pending_order_.empty() && !(front = pending_request(pending_order_.front()))) {
      pending_order_.pop_front();
    }
    if (pending_order_.empty()) return;
    if (next_seq_ > last_executed_ + 1 && pending_order_.size() < cfg_.pipeline_min_batch) return;
    // The interval holds a batch back only behind a backlogged proposal (one whose requests
    // had waited for the block before it): a request that finds the primary idle goes at once.
    const uint64_t interval_end =
        last_proposal_backlogged_ ? last_proposal_ms_ + cfg_.min_block_interval_ms : 0;
    // The queue's size bounds the candidates: below a full batch, wait for the oldest's timer
    // and the interval.
    if (pending_order_.size() < cfg_.batch_max) {
      if (now_ < front->arrival_ms + cfg_.batch_wait_ms) return;
      if (now_ < interval_end) {
        proposal_due_ms_ = interval_end;
        return;
      }
    }
    std::vector<Hash32> batch;
    uint64_t oldest = UINT64_MAX;
    while (batch.size() < cfg_.batch_max && !pending_order_.empty()) {
      Hash32 id = pending_order_.front();
      pending_order_.pop_front();
      const RequestState* st = pending_request(id);
      if (!st) continue;
      oldest = std::min(oldest, st->arrival_ms);
      batch.push_back(id);
    }
    if (batch.empty()) return;
    if (batch.size() < cfg_.batch_max &&
        (now_ < oldest + cfg_.batch_wait_ms || now_ < interval_end)) {
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) pending_order_.push_front(*it);
      if (now_ < interval_end) proposal_due_ms_ = interval_end;
      return;
    }

    Block b;
    b.height = next_seq_;
    b.view = view_;
    b.block_time = std::max({now_, last_proposed_time_, last_block_time_});
    b.proposer = cfg_.self;
    // A certificate rides along once every member signed it or it is two heights old, so that
    // a member whose vote arrives a little later is still credited.
    for (auto it = to_attach_.upper_bound(attach_floor_);
         it != to_attach_.end() && b.certificates.size() < kMaxCertificatesPerBlock; ++it) {
      if (it->second.cert.sigs.size() < cfg_.n() && it->first + 2 > b.height) break;
      b.certificates.push_back(it->second);
      attach_floor_ = it->first;
    }
    b.requests.reserve(batch.size());
    for (const Hash32& id : batch) {
      b.requests.push_back(*requests_.at(id).req);
      proposed_.insert(id);
    }
    last_proposed_time_ = b.block_time;
    last_proposal_ms_ = now_;
    last_proposal_backlogged_ = now_ > oldest;
    PrePrepare pp{view_, next_seq_, std::move(b)};
    ++next_seq_;
    Hash32 digest = pp.block.digest();
    if (!record_signature(MsgType::kPrePrepare, pp.view, pp.seq, digest)) return;
    Envelope env = sign(MsgType::kPrePrepare, pp.encode());
    Entry& e = log_[pp.seq];
    e.pre_prepare = env;
    e.digest = digest;
    e.request_ids = std::move(batch);
    e.block_time = pp.block.block_time;
    e.block = std::make_shared<Block>(std::move(pp.block));
    persist_message(env, pp.seq, view_);
    send(env, std::nullopt, !leased(view_, pp.seq));
    check_prepared(pp.seq);
  }
}

Status Replica::validate_block(const Block& b, Seq seq, const std::vector<Hash32>& request_ids) {
  if (b.height != seq) {
    return make_error(Errc::kBadValue, "block height " + std::to_string(b.height) +
                                           " differs from the pre-prepare's sequence number " +
                                           std::to_string(seq));
  }
  if (b.view != view_) {
    return make_error(Errc::kBadValue, "block names view " + std::to_string(b.view) +
                                           ", the pre-prepare's is " + std::to_string(view_));
  }
  if (b.certificates.size() > kMaxCertificatesPerBlock) {
    return make_error(Errc::kOversize, "block carries too many header certificates");
  }
  std::set<Seq> cert_heights;
  for (const CertifiedHeader& c : b.certificates) {
    if (c.height <= cfg_.base_height || c.height >= seq || !cert_heights.insert(c.height).second) {
      return make_error(Errc::kBadValue, "block carries a header certificate for height " +
                                             std::to_string(c.height) +
                                             ", which is not an earlier height of this epoch "
                                             "(or appears twice)");
    }
    Status st = crypto::verify_quorum(
        c.cert, cfg_.committee, cfg_.quorum(),
        as_view(header_vote_message(cfg_.chain_id, cfg_.epoch, c.height, 0, c.header_digest)),
        [this](const crypto::PublicKey& pk, ByteView m, const crypto::Signature& sg) {
          return verify_sig(pk, m, sg);
        });
    if (!st.ok()) {
      return make_error(st.error().code, "header certificate for height " +
                                             std::to_string(c.height) +
                                             " in the block: " + st.error().reason);
    }
  }
  if (b.proposer != cfg_.primary(view_)) {
    return make_error(Errc::kBadValue, "block names proposer " + std::to_string(b.proposer) +
                                           ", the primary of view " + std::to_string(view_) +
                                           " is " + std::to_string(cfg_.primary(view_)));
  }
  if (b.requests.empty() || b.requests.size() > cfg_.batch_max) {
    return make_error(Errc::kBadValue, "block carries " + std::to_string(b.requests.size()) +
                                           " requests; between 1 and " +
                                           std::to_string(cfg_.batch_max) + " are allowed");
  }
  // Block time: within the skew bound of our clock, and not before any block we know of that
  // precedes it.
  uint64_t lo = now_ > cfg_.max_clock_skew_ms ? now_ - cfg_.max_clock_skew_ms : 0;
  if (b.block_time < lo || b.block_time > now_ + cfg_.max_clock_skew_ms) {
    return make_error(Errc::kBadValue, "block time " + std::to_string(b.block_time) +
                                           " is more than " +
                                           std::to_string(cfg_.max_clock_skew_ms) +
                                           " ms from the local clock " + std::to_string(now_));
  }
  uint64_t floor = last_block_time_;
  for (auto it = log_.begin(); it != log_.end() && it->first < seq; ++it) {
    if (it->second.pre_prepare) floor = std::max(floor, it->second.block_time);
  }
  if (b.block_time < floor) {
    return make_error(Errc::kBadValue, "block time " + std::to_string(b.block_time) +
                                           " goes backwards (previous " + std::to_string(floor) +
                                           ")");
  }
  std::unordered_set<Hash32, Hash32Hasher> ids;
  for (size_t i = 0; i < b.requests.size(); ++i) {
    const Request& q = b.requests[i];
    const Hash32& id = request_ids[i];
    if (!ids.insert(id).second) {
      return make_error(Errc::kBadValue,
                        "request " + short_hex(id) + " appears twice in the block");
    }
    if (requests_.count(id)) continue;  // validated on arrival
    if (hooks_.validate) {
      Status st = hooks_.validate(q);
      if (!st.ok()) {
        return make_error(st.error().code,
                          "request " + short_hex(id) + " fails validation: " + st.error().reason);
      }
    }
  }
  return {};
}

void Replica::handle_pre_prepare(const Envelope& env, PrePrepare pp, bool from_new_view) {
  if (!from_new_view) {
    if (pp.view > view_ || (pp.view == view_ && !active_)) {
      if (future_.size() < cfg_.max_future_messages) future_.push_back(env);
      return;
    }
    if (pp.view < view_) {
      ++counters_.dropped_old_view;
      return;
    }
    if (env.sender != cfg_.primary(pp.view)) {
      ++counters_.dropped_not_primary;
      return;
    }
  }
  if (pp.seq <= stable_ || pp.seq > high_mark()) {
    ++counters_.dropped_out_of_window;
    return;
  }
  Hash32 digest = pp.block.digest();
  Entry& e = log_[pp.seq];
  if (e.pre_prepare) {
    if (e.digest != digest) {  // the primary equivocated (both are of this view and slot)
      if (from_new_view || e.pre_prepare->sender != env.sender) {
        ++counters_.dropped_conflicting;
      } else {
        report_conflict(*e.pre_prepare, env);
      }
    }
    return;
  }
  std::vector<Hash32> ids;
  ids.reserve(pp.block.requests.size());
  for (const Request& q : pp.block.requests) ids.push_back(q.id());
  if (!from_new_view && !replaying_ && env.sender != cfg_.self) {
    Status st = validate_block(pp.block, pp.seq, ids);
    if (!st.ok()) {
      ++counters_.dropped_invalid_block;
      return;
    }
  }
  e.pre_prepare = env;
  e.digest = digest;
  // Only the primary proposes, so only it needs to remember what is in flight.
  if (cfg_.primary(view_) == cfg_.self) {
    for (const Hash32& id : ids) proposed_.insert(id);
  }
  e.request_ids = std::move(ids);
  e.block_time = pp.block.block_time;
  e.block = std::make_shared<Block>(std::move(pp.block));
  if (env.sender == cfg_.self) {
    // Our own pre-prepare (replayed, or from our NEW-VIEW): the next proposal follows it.
    next_seq_ = std::max(next_seq_, pp.seq + 1);
    record_signature(MsgType::kPrePrepare, pp.view, pp.seq, digest);
    last_proposed_time_ = std::max(last_proposed_time_, e.block_time);
  } else if (!from_new_view) {
    persist_message(env, pp.seq, pp.view);
  }
  if (cfg_.primary(view_) != cfg_.self) {
    Vote v{view_, pp.seq, digest};
    if (record_signature(MsgType::kPrepare, view_, pp.seq, digest)) {
      Envelope pe = sign(MsgType::kPrepare, v.encode());
      persist_message(pe, pp.seq, view_);
      send(pe, std::nullopt, !leased(view_, pp.seq));
      e.prepares[cfg_.self] = VoteRecord{digest, pe};
    }
  }
  check_prepared(pp.seq);
}

void Replica::handle_vote(const Envelope& env, const Vote& v) {
  bool is_commit = env.type == MsgType::kCommit;
  if (v.view > view_ || (v.view == view_ && !active_)) {
    if (future_.size() < cfg_.max_future_messages) future_.push_back(env);
    return;
  }
  if (v.view < view_) {
    ++counters_.dropped_old_view;
    return;
  }
  if (v.seq <= stable_ || v.seq > high_mark()) {
    ++counters_.dropped_out_of_window;
    return;
  }
  if (!is_commit && env.sender == cfg_.primary(v.view)) {
    ++counters_.dropped_not_primary;  // the primary's pre-prepare is its prepare
    return;
  }
  Entry& e = log_[v.seq];
  auto& votes = is_commit ? e.commits : e.prepares;
  if (auto it = votes.find(env.sender); it != votes.end()) {
    if (it->second.digest != v.digest) report_conflict(it->second.env, env);
    return;
  }
  votes[env.sender] = VoteRecord{v.digest, env};
  if (env.sender == cfg_.self) {
    record_signature(env.type, v.view, v.seq, v.digest);
  } else if (!is_commit) {
    // A peer's prepare is part of the prepared certificate this replica may have to show in a
    // view change, so it is written (and synced with this replica's commit). A peer's commit
    // is not: nothing after a restart needs it. The committed block is written with its commit
    // certificate when it executes, and a replica that restarts before that gathers the commits
    // again by retransmission or takes the block by state transfer, as after losing an unsynced
    // write. Writing it cost every node three log records per block.
    persist_message(env, v.seq, v.view);
  }
  if (is_commit) {
    check_committed(v.seq);
  } else {
    check_prepared(v.seq);
  }
}

void Replica::check_prepared(Seq seq) {
  auto it = log_.find(seq);
  if (it == log_.end()) return;
  Entry& e = it->second;
  if (e.prepared || !e.pre_prepare) return;
  size_t matching = 0;
  for (const auto& [id, vr] : e.prepares) {
    if (vr.digest == e.digest && id != cfg_.primary(view_)) ++matching;
  }
  if (matching + 1 < cfg_.quorum()) return;  // pre-prepare + 2f prepares
  e.prepared = true;
  StoredPrepared sp;
  sp.view = view_;
  sp.digest = e.digest;
  sp.cert.pre_prepare = *e.pre_prepare;
  for (const auto& [id, vr] : e.prepares) {
    if (vr.digest == e.digest && id != cfg_.primary(view_) &&
        sp.cert.prepares.size() + 1 < cfg_.quorum()) {
      sp.cert.prepares.push_back(vr.env);
    }
  }
  prepared_[seq] = std::move(sp);

  Vote v{view_, seq, e.digest};
  if (record_signature(MsgType::kCommit, view_, seq, e.digest)) {
    Envelope ce = sign(MsgType::kCommit, v.encode());
    persist_message(ce, seq, view_);
    send(ce);
    e.commits[cfg_.self] = VoteRecord{e.digest, ce};
  }
  check_committed(seq);
}

void Replica::check_committed(Seq seq) {
  auto it = log_.find(seq);
  if (it == log_.end()) return;
  Entry& e = it->second;
  if (e.committed || !e.prepared) return;
  size_t matching = 0;
  for (const auto& [id, vr] : e.commits) matching += vr.digest == e.digest;
  if (matching < cfg_.quorum()) return;
  e.committed = true;
  if (seq <= last_executed_) return;
  auto cb = std::make_shared<CommittedBlock>();
  cb->view = view_;
  if (e.request_ids.size() == e.block->requests.size())
    request_ids_[seq] = std::move(e.request_ids);
  // The slot is decided: its block moves into the committed block instead of being copied.
  cb->block = std::move(*e.block);
  e.block.reset();
  for (const auto& [id, vr] : e.commits) {
    if (vr.digest == e.digest && cb->cert.sigs.size() < cfg_.quorum()) cb->cert.add(id, vr.env.sig);
  }
  committed_[seq] = std::move(cb);
  try_execute();
}

void Replica::try_execute() {
  bool progressed = false;
  while (true) {
    auto it = committed_.find(last_executed_ + 1);
    if (it == committed_.end()) break;
    auto cb = it->second;
    committed_.erase(it);
    if (!replaying_)
      out_.push_back(PersistAction{
          PersistRecord{PersistRecord::Kind::kCommitted, cb->block.height, cb->view, [&] {
                          Writer w;
                          cb->encode(w);
                          return std::move(w).take();
                        }()}});
    execute(cb);
    progressed = true;
  }
  while (!committed_.empty() && committed_.begin()->first <= last_executed_) {
    committed_.erase(committed_.begin());
  }
  request_ids_.erase(request_ids_.begin(), request_ids_.upper_bound(last_executed_));
  if (progressed && !replaying_) {
    last_progress_ms_ = now_;
    if (active_) {
      // Progress in an active view restarts the request timer. During a view change the
      // NEW-VIEW timer keeps running: blocks fetched by state transfer are not a new view.
      timeout_doublings_ = 0;
      arm_request_timer();
      try_propose();
    }
  }
}

void Replica::execute(const std::shared_ptr<const CommittedBlock>& cb) {
  const Block& b = cb->block;
  assert(b.height == last_executed_ + 1);
  Hash32 digest = b.digest();
  std::vector<Hash32> ids;
  if (auto it = request_ids_.find(b.height); it != request_ids_.end()) {
    ids = std::move(it->second);
    request_ids_.erase(it);
  } else {
    ids.reserve(b.requests.size());
    for (const Request& q : b.requests) ids.push_back(q.id());
  }
  for (size_t i = 0; i < b.requests.size(); ++i) {
    const Request& q = b.requests[i];
    const Hash32& id = ids[i];
    RequestState& st = requests_[id];
    if (st.executed) continue;  // at-most-once
    st.executed = true;
    st.height = b.height;
    st.view = cb->view;
    if (st.req) {
      st.req.reset();
      --pending_count_;
    }
    ++counters_.requests_executed;
    executed_order_.emplace_back(b.height, id);
    if (!proposed_.empty()) proposed_.erase(id);
    if (!replaying_) out_.push_back(ReplyAction{q.client_id, id, b.height, cb->view});
  }
  trim_pending_order();
  for (const CertifiedHeader& c : b.certificates) to_attach_.erase(c.height);
  last_executed_ = b.height;
  last_block_time_ = std::max(last_block_time_, b.block_time);
  state_digest_ = next_state_digest(state_digest_, b.height, digest);
  ledger_[b.height] = cb;
  ++counters_.blocks_executed;
  if (!replaying_) out_.push_back(DeliverAction{cb, state_digest_, last_block_time_});
  if (b.height % cfg_.checkpoint_interval == 0 && b.height > stable_) {
    own_checkpoint_digests_[b.height] = state_digest_;
    Checkpoint c{b.height, state_digest_};
    Envelope env = sign(MsgType::kCheckpoint, c.encode());
    if (!replaying_) {
      persist_message(env, b.height, view_);
      send(env);
    }
    handle_checkpoint(env, c);
  }
}

// ---------------------------------------------------------------- §4.3 checkpoints

Status Replica::verify_checkpoint_proof(Seq seq, const Hash32& digest,
                                        const std::vector<Envelope>& proof) {
  if (seq == cfg_.base_height) {
    if (!proof.empty() || digest != cfg_.base_state_digest) {
      return make_error(Errc::kBadValue,
                        "the epoch's starting checkpoint has no proof and the starting digest");
    }
    return {};
  }
  if (seq < cfg_.base_height) {
    return make_error(Errc::kBadValue, "checkpoint below the start of the epoch");
  }
  std::set<ReplicaId> signers;
  for (const Envelope& env : proof) {
    if (env.type != MsgType::kCheckpoint || env.sender >= cfg_.n()) {
      return make_error(Errc::kBadValue,
                        "checkpoint proof holds a message that is not a member's checkpoint");
    }
    auto c = Checkpoint::decode(as_view(env.body));
    if (!c.ok() || c->seq != seq || c->state_digest != digest) {
      return make_error(Errc::kBadValue, "checkpoint proof holds a checkpoint for another state");
    }
    if (!signers.insert(env.sender).second) {
      return make_error(Errc::kDuplicateSigner, "checkpoint proof repeats a signer");
    }
    if (!verify_envelope(env)) {
      return make_error(Errc::kBadSignature, "checkpoint proof signature does not verify");
    }
  }
  if (signers.size() < cfg_.quorum()) {
    return make_error(Errc::kBelowThreshold, "checkpoint proof has fewer than 2f+1 signers");
  }
  return {};
}

void Replica::handle_checkpoint(const Envelope& env, const Checkpoint& c) {
  if (c.seq <= stable_ || c.seq % cfg_.checkpoint_interval != 0) return;
  auto& slot = checkpoints_[c.seq];
  if (slot.count(env.sender)) return;
  slot[env.sender] = {c.state_digest, env};
  if (env.sender != cfg_.self && !replaying_) persist_message(env, c.seq, view_);
  std::map<Hash32, std::vector<Envelope>> by_digest;
  for (const auto& [id, de] : slot) by_digest[de.first].push_back(de.second);
  for (auto& [digest, envs] : by_digest) {
    if (envs.size() >= cfg_.quorum()) {
      if (last_executed_ >= c.seq) {
        auto own = own_checkpoint_digests_.find(c.seq);
        if (own != own_checkpoint_digests_.end() && own->second == digest) {
          make_stable(c.seq, digest, std::move(envs));
        }
      } else if (!replaying_) {
        request_state(env.sender);  // 2f+1 are ahead of us: catch up
      }
      return;
    }
  }
}

void Replica::make_stable(Seq seq, const Hash32& digest, std::vector<Envelope> proof) {
  if (seq <= stable_) return;
  stable_ = seq;
  stable_digest_ = digest;
  stable_proof_ = std::move(proof);
  ++counters_.checkpoints_stable;
  log_.erase(log_.begin(), log_.upper_bound(seq));
  prepared_.erase(prepared_.begin(), prepared_.upper_bound(seq));
  checkpoints_.erase(checkpoints_.begin(), checkpoints_.upper_bound(seq));
  own_checkpoint_digests_.erase(own_checkpoint_digests_.begin(),
                                own_checkpoint_digests_.upper_bound(seq));
  // Header votes far below the checkpoint that never completed are given up (a replica that
  // fetched those blocks by state transfer must fetch their certificates with them).
  if (seq > cfg_.window) {
    Seq floor = seq - cfg_.window;
    header_votes_.erase(header_votes_.begin(), header_votes_.upper_bound(floor));
    to_attach_.erase(to_attach_.begin(), to_attach_.upper_bound(floor));
    headers_certified_below_ = std::max(headers_certified_below_, floor);
  }
  for (auto it = signed_.begin(); it != signed_.end();) {
    it = std::get<2>(it->first) <= seq ? signed_.erase(it) : std::next(it);
  }
  // Executed blocks far below the checkpoint are served from the host's store, and executed
  // requests far below it are forgotten (ReplicaConfig::executed_request_retention): what the
  // replica holds no longer grows with the ledger.
  if (hooks_.load_block && seq > cfg_.window)
    ledger_.erase(ledger_.begin(), ledger_.upper_bound(seq - cfg_.window));
  if (seq > cfg_.executed_request_retention) {
    Seq floor = seq - cfg_.executed_request_retention;
    while (!executed_order_.empty() && executed_order_.front().first <= floor) {
      auto it = requests_.find(executed_order_.front().second);
      if (it != requests_.end() && it->second.executed && it->second.height <= floor)
        requests_.erase(it);
      executed_order_.pop_front();
    }
  }
  if (!replaying_) {
    StateReply rec;
    rec.stable_seq = seq;
    rec.stable_proof = stable_proof_;
    out_.push_back(
        PersistAction{PersistRecord{PersistRecord::Kind::kStable, seq, view_, rec.encode()}});
    out_.push_back(TruncateAction{seq});
  }
  try_propose();
}

// ---------------------------------------------------------------- §4.4 view changes

void Replica::arm_request_timer() {
  if (pending_count_ == 0 || finished()) {
    vc_deadline_.reset();
    return;
  }
  vc_deadline_ = now_ + (cfg_.view_change_timeout_ms << timeout_doublings_);
}

// A replica whose request timer expires does not leave its view alone: it complains, and keeps
// voting in the view. The view change starts when f+1 replicas complained within two timeouts,
// so at least one correct replica suspects the primary (as f+1 VIEW-CHANGEs pull a replica
// along, TOCS §4.5.2). A replica that was only slow itself (a stalled disk, a paused process)
// stays in the view with the others, where before it sat alone in the next view, not voting,
// until a real view change came. A correct primary's failure still makes every correct backup's
// timer expire: 2f+1 complaints, f+1 of them enough.
void Replica::complain() {
  ++counters_.complaints;
  send(sign(MsgType::kComplaint, Complaint{view_}.encode()), std::nullopt, false);
  // Still no progress one timeout later: complain again (a complaint lasts two timeouts).
  vc_deadline_ = now_ + (cfg_.view_change_timeout_ms << timeout_doublings_);
  note_complaint(cfg_.self);
}

void Replica::handle_complaint(const Envelope& env, const Complaint& c) {
  // A complaint about another view is not counted: about an older one it is stale, and a
  // replica in a newer view sends VIEW-CHANGEs, which the rules below already count.
  if (c.view != view_ || !active_ || finished()) return;
  note_complaint(env.sender);
}

void Replica::note_complaint(ReplicaId from) {
  if (complaints_view_ != view_) {
    complaints_.clear();
    complaints_view_ = view_;
  }
  complaints_[from] = now_;
  uint64_t lasts = 2 * (cfg_.view_change_timeout_ms << timeout_doublings_);
  std::erase_if(complaints_, [&](const auto& kv) { return kv.second + lasts <= now_; });
  if (complaints_.size() >= cfg_.f() + 1) start_view_change(view_ + 1);
}

void Replica::start_view_change(View v) {
  if (v <= view_ || finished()) return;
  ++counters_.view_changes;
  if (!active_ && timeout_doublings_ < cfg_.max_timeout_doublings) ++timeout_doublings_;
  view_ = v;
  active_ = false;
  vc_deadline_.reset();
  log_.clear();
  proposed_.clear();
  new_view_env_.reset();
  requeue_pending();

  ViewChange vc;
  vc.new_view = v;
  vc.stable_seq = stable_;
  vc.stable_digest = stable_digest_;
  vc.checkpoint_proof = stable_proof_;
  for (const auto& [seq, sp] : prepared_) {
    if (seq > stable_) vc.prepared.push_back(sp.cert);
  }
  Envelope env = sign(MsgType::kViewChange, vc.encode());
  own_view_change_ = env;
  remember_own_view_change(v, env);
  if (!replaying_) {
    persist_message(env, 0, v);
    send(env);
  }
  view_changes_[v][cfg_.self] = ValidViewChange{env, std::move(vc)};
  // Forget view-change traffic for views we have left behind.
  view_changes_.erase(view_changes_.begin(), view_changes_.lower_bound(v));
  if (!replaying_ && view_changes_[v].size() >= cfg_.quorum()) {
    vc_deadline_ = now_ + (cfg_.view_change_timeout_ms << timeout_doublings_);
  }
  check_new_view_quorum();
}

Status Replica::verify_prepared_certificate(const PreparedCertificate& pc, Seq low, Seq high,
                                            View below_view, Hash32* digest_out,
                                            PrePrepare* pp_out) {
  if (pc.pre_prepare.type != MsgType::kPrePrepare) {
    return make_error(Errc::kBadValue, "prepared certificate does not start with a pre-prepare");
  }
  auto pp = PrePrepare::decode(as_view(pc.pre_prepare.body));
  if (!pp.ok()) return pp.error();
  if (pp->view >= below_view) {
    return make_error(Errc::kBadValue, "prepared certificate from view " +
                                           std::to_string(pp->view) +
                                           " is not older than the view change");
  }
  if (pp->seq <= low || pp->seq > high) {
    return make_error(Errc::kBadValue, "prepared certificate for seq " + std::to_string(pp->seq) +
                                           " is outside the watermarks");
  }
  if (pc.pre_prepare.sender != cfg_.primary(pp->view) || pp->block.height != pp->seq) {
    return make_error(Errc::kBadValue,
                      "prepared certificate's pre-prepare is not from the primary");
  }
  if (!verify_envelope(pc.pre_prepare)) {
    return make_error(Errc::kBadSignature, "prepared certificate's pre-prepare signature fails");
  }
  Hash32 digest = pp->block.digest();
  std::set<ReplicaId> signers;
  for (const Envelope& e : pc.prepares) {
    auto v = Vote::decode(as_view(e.body));
    if (e.type != MsgType::kPrepare || !v.ok() || v->view != pp->view || v->seq != pp->seq ||
        v->digest != digest || e.sender >= cfg_.n() || e.sender == cfg_.primary(pp->view)) {
      return make_error(Errc::kBadValue, "prepared certificate holds a prepare for another slot");
    }
    if (!signers.insert(e.sender).second) {
      return make_error(Errc::kDuplicateSigner, "prepared certificate repeats a signer");
    }
    if (!verify_envelope(e)) {
      return make_error(Errc::kBadSignature, "prepared certificate's prepare signature fails");
    }
  }
  if (signers.size() + 1 < cfg_.quorum()) {
    return make_error(Errc::kBelowThreshold, "prepared certificate has fewer than 2f prepares");
  }
  *digest_out = digest;
  *pp_out = std::move(pp).value();
  return {};
}

Status Replica::verify_view_change(const ViewChange& vc) {
  ATN_CHECK(verify_checkpoint_proof(vc.stable_seq, vc.stable_digest, vc.checkpoint_proof));
  std::set<Seq> seqs;
  for (const auto& pc : vc.prepared) {
    Hash32 d;
    PrePrepare pp;
    ATN_CHECK(verify_prepared_certificate(pc, vc.stable_seq, vc.stable_seq + cfg_.window,
                                          vc.new_view, &d, &pp));
    if (!seqs.insert(pp.seq).second) {
      return make_error(Errc::kBadValue, "view change carries two certificates for one seq");
    }
  }
  return {};
}

void Replica::handle_view_change(const Envelope& env, ViewChange vc) {
  if (vc.new_view < view_ || (vc.new_view == view_ && active_)) {
    ++counters_.dropped_old_view;
    return;
  }
  auto& slot = view_changes_[vc.new_view];
  if (slot.count(env.sender)) return;
  if (!replaying_ && env.sender != cfg_.self) {
    Status st = verify_view_change(vc);
    if (!st.ok()) {
      ++counters_.dropped_invalid_view_change;
      return;
    }
  }
  if (env.sender == cfg_.self) {
    // Replaying our own VIEW-CHANGE: we were (and are again) in a view change to new_view.
    if (vc.new_view > view_ || active_) {
      view_ = vc.new_view;
      active_ = false;
      log_.clear();
      proposed_.clear();
      own_view_change_ = env;
    }
    remember_own_view_change(vc.new_view, env);
    slot[env.sender] = ValidViewChange{env, std::move(vc)};
    return;
  }
  if (!replaying_) persist_message(env, 0, vc.new_view);
  slot[env.sender] = ValidViewChange{env, std::move(vc)};

  // TOCS §4.5.2: f+1 replicas asking for views above ours mean at least one correct replica
  // timed out; join the smallest such view without waiting for our own timer.
  if (!replaying_) {
    std::map<ReplicaId, View> lowest;
    for (auto it = view_changes_.upper_bound(view_); it != view_changes_.end(); ++it) {
      for (const auto& [id, _] : it->second) {
        if (!lowest.count(id)) lowest[id] = it->first;
      }
    }
    if (lowest.size() >= cfg_.f() + 1) {
      std::vector<View> views;
      for (const auto& [id, v] : lowest) views.push_back(v);
      std::sort(views.begin(), views.end());
      View target = views[views.size() - (cfg_.f() + 1)];
      // The smallest view that f+1 replicas all ask for (or above).
      if (target > view_) start_view_change(target);
    }
  }
  if (!active_ && vc_deadline_ == std::nullopt && view_changes_[view_].size() >= cfg_.quorum()) {
    // 2f+1 VIEW-CHANGEs for our view: now wait at most the timeout for the NEW-VIEW.
    vc_deadline_ = now_ + (cfg_.view_change_timeout_ms << timeout_doublings_);
  }
  check_new_view_quorum();
}

Replica::NewViewPlan Replica::plan_new_view(const std::vector<ValidViewChange>& vcs) const {
  NewViewPlan plan;
  for (const auto& v : vcs) {
    if (v.vc.stable_seq > plan.min_s || (plan.min_proof.empty() && v.vc.stable_seq == plan.min_s)) {
      plan.min_s = v.vc.stable_seq;
      plan.min_digest = v.vc.stable_digest;
      plan.min_proof = v.vc.checkpoint_proof;
      plan.min_holder = v.env.sender;
    }
  }
  // For each seq above min_s: the prepared certificate with the highest view, else null.
  std::map<Seq, std::pair<View, Block>> best;
  for (const auto& v : vcs) {
    for (const auto& pc : v.vc.prepared) {
      auto pp = PrePrepare::decode(as_view(pc.pre_prepare.body));
      if (!pp.ok() || pp->seq <= plan.min_s) continue;
      auto it = best.find(pp->seq);
      if (it == best.end() || it->second.first < pp->view) {
        best[pp->seq] = {pp->view, pp->block};
      }
    }
  }
  Seq max_s = best.empty() ? plan.min_s : best.rbegin()->first;
  for (Seq s = plan.min_s + 1; s <= max_s; ++s) {
    auto it = best.find(s);
    plan.blocks.push_back(it != best.end() ? it->second.second : Block::null_block(s));
  }
  return plan;
}

void Replica::check_new_view_quorum() {
  if (active_ || cfg_.primary(view_) != cfg_.self || replaying_) return;
  auto it = view_changes_.find(view_);
  if (it == view_changes_.end() || it->second.size() < cfg_.quorum()) return;
  // V: our own VIEW-CHANGE and the lowest-numbered others, up to 2f+1.
  std::vector<ValidViewChange> vcs;
  if (it->second.count(cfg_.self)) vcs.push_back(it->second.at(cfg_.self));
  for (const auto& [id, v] : it->second) {
    if (vcs.size() >= cfg_.quorum()) break;
    if (id != cfg_.self) vcs.push_back(v);
  }
  NewViewPlan plan = plan_new_view(vcs);
  NewView nv;
  nv.view = view_;
  for (const auto& v : vcs) nv.view_changes.push_back(v.env);
  for (const Block& b : plan.blocks) {
    PrePrepare pp{view_, b.height, b};
    Hash32 d = b.digest();
    if (!record_signature(MsgType::kPrePrepare, view_, b.height, d)) return;
    nv.pre_prepares.push_back(sign(MsgType::kPrePrepare, pp.encode()));
  }
  Envelope env = sign(MsgType::kNewView, nv.encode());
  persist_message(env, 0, view_);
  send(env);
  enter_view(view_, env, nv.pre_prepares, plan);
}

void Replica::handle_new_view(const Envelope& env, const NewView& nv) {
  if (nv.view < view_ || (nv.view == view_ && active_)) {
    ++counters_.dropped_old_view;
    return;
  }
  if (env.sender != cfg_.primary(nv.view)) {
    ++counters_.dropped_not_primary;
    return;
  }
  std::vector<ValidViewChange> vcs;
  std::set<ReplicaId> senders;
  for (const Envelope& ve : nv.view_changes) {
    auto vc = ViewChange::decode(as_view(ve.body));
    if (ve.type != MsgType::kViewChange || !vc.ok() || vc->new_view != nv.view ||
        ve.sender >= cfg_.n() || !senders.insert(ve.sender).second) {
      ++counters_.dropped_invalid_new_view;
      return;
    }
    if (!replaying_ && (!verify_envelope(ve) || !verify_view_change(*vc).ok())) {
      ++counters_.dropped_invalid_new_view;
      return;
    }
    vcs.push_back(ValidViewChange{ve, std::move(vc).value()});
  }
  if (vcs.size() < cfg_.quorum()) {
    ++counters_.dropped_invalid_new_view;
    return;
  }
  NewViewPlan plan = plan_new_view(vcs);
  if (nv.pre_prepares.size() != plan.blocks.size()) {
    ++counters_.dropped_invalid_new_view;
    return;
  }
  for (size_t i = 0; i < plan.blocks.size(); ++i) {
    const Envelope& pe = nv.pre_prepares[i];
    auto pp = PrePrepare::decode(as_view(pe.body));
    if (pe.type != MsgType::kPrePrepare || pe.sender != env.sender || !pp.ok() ||
        pp->view != nv.view || pp->seq != plan.blocks[i].height || !(pp->block == plan.blocks[i]) ||
        (!replaying_ && !verify_envelope(pe))) {
      ++counters_.dropped_invalid_new_view;
      return;
    }
  }
  if (!replaying_ && env.sender != cfg_.self) persist_message(env, 0, nv.view);
  if (nv.view > view_ || active_) {
    view_ = nv.view;  // a valid NEW-VIEW is self-certifying: follow it from any older view
    active_ = false;
    ++counters_.view_changes;
  }
  enter_view(nv.view, env, nv.pre_prepares, plan);
}

void Replica::enter_view(View v, const Envelope& nv_env, const std::vector<Envelope>& pre_prepares,
                         const NewViewPlan& plan) {
  // Stay inactive until the O set is in the log and next_seq_ is set: nothing may propose
  // (make_stable calls try_propose) with a sequence number from an older view.
  view_ = v;
  active_ = false;
  new_view_env_ = nv_env;
  own_view_change_.reset();
  log_.clear();
  proposed_.clear();
  attach_floor_ = 0;
  requeue_pending();
  view_changes_.erase(view_changes_.begin(), view_changes_.upper_bound(v));
  vc_deadline_.reset();

  if (plan.min_s > stable_) {
    if (last_executed_ >= plan.min_s) {
      make_stable(plan.min_s, plan.min_digest, plan.min_proof);
    } else {
      // The new view starts above what we executed: adopt the proven checkpoint as our low
      // watermark and fetch the blocks from the replica that proved it.
      make_stable(plan.min_s, plan.min_digest, plan.min_proof);
      if (!replaying_) request_state(plan.min_holder);
    }
  }
  Seq max_s = plan.blocks.empty() ? plan.min_s : plan.blocks.back().height;
  for (const Envelope& pe : pre_prepares) {
    auto pp = PrePrepare::decode(as_view(pe.body));
    if (pp.ok()) handle_pre_prepare(pe, std::move(pp).value(), true);
  }
  if (cfg_.primary(v) == cfg_.self) {
    next_seq_ = std::max({max_s, plan.min_s, last_executed_}) + 1;
  }
  active_ = true;
  if (!replaying_) {
    arm_request_timer();
    // Replay messages that arrived for this view before we entered it.
    std::deque<Envelope> later;
    std::deque<Envelope> now_msgs;
    for (auto& e : future_) {
      Result<Vote> vt = Vote::decode(as_view(e.body));
      View mv = 0;
      if (e.type == MsgType::kPrePrepare) {
        auto p = PrePrepare::decode(as_view(e.body));
        if (!p.ok()) continue;
        mv = p->view;
      } else if (vt.ok()) {
        mv = vt->view;
      } else {
        continue;
      }
      if (mv == v)
        now_msgs.push_back(std::move(e));
      else if (mv > v)
        later.push_back(std::move(e));
    }
    future_ = std::move(later);
    for (const auto& e : now_msgs) handle(e);
    try_propose();
  }
}

// ---------------------------------------------------------------- status & state transfer

void Replica::handle_status(const Envelope& env, const StatusMsg& s) {
  if (replaying_) return;
  // Retransmission on demand (concord-bft#704, fabric#1917): a peer behind our view gets the
  // NEW-VIEW that started it; a peer collecting VIEW-CHANGEs gets ours.
  if (active_ && new_view_env_ && (s.view < view_ || (s.view == view_ && s.in_view_change))) {
    send(*new_view_env_, env.sender);
  }
  if (!active_ && own_view_change_ && s.view <= view_) send(*own_view_change_, env.sender);
  // A peer still collecting VIEW-CHANGEs for a view we have left gets the one we sent for it:
  // it stays a true statement (we never became active in that view), and without it a peer
  // can wait forever for a quorum that our moving on took away.
  if (s.in_view_change && s.view < view_) {
    auto it = own_view_changes_.find(s.view);
    if (it != own_view_changes_.end()) send(it->second, env.sender);
  }
  if (s.last_executed > last_executed_ && now_ >= last_progress_ms_ + cfg_.status_interval_ms) {
    request_state(env.sender);
  }
}

void Replica::request_state(ReplicaId from) {
  if (replaying_ || from == cfg_.self) return;
  if (last_state_request_ms_ != 0 && now_ < last_state_request_ms_ + cfg_.status_interval_ms / 2) {
    return;
  }
  last_state_request_ms_ = now_ == 0 ? 1 : now_;
  StateRequest r{last_executed_ + 1};
  send(sign(MsgType::kStateRequest, r.encode()), from);
}

void Replica::handle_state_request(const Envelope& env, const StateRequest& r) {
  if (replaying_) return;
  StateReply rep;
  for (Seq s = r.from_seq; s <= last_executed_ && rep.blocks.size() < cfg_.state_transfer_batch;
       ++s) {
    auto cb = committed_block(s);
    if (!cb) break;
    if (!ledger_.count(s)) ++counters_.state_blocks_loaded;
    rep.blocks.push_back(*cb);
  }
  if (stable_ > 0) {
    rep.stable_seq = stable_;
    rep.stable_proof = stable_proof_;
  }
  if (rep.blocks.empty() && !rep.stable_seq) return;
  send(sign(MsgType::kStateReply, rep.encode()), env.sender);
}

void Replica::handle_state_reply(const Envelope& env, const StateReply& r) {
  if (replaying_) return;
  bool got = false;
  for (const CommittedBlock& cb : r.blocks) {
    Seq h = cb.block.height;
    if (h <= last_executed_ || committed_.count(h)) continue;
    // Verify, never trust: 2f+1 commit signatures over this exact block (bft-smart#62: count
    // matching values, not messages).
    Bytes msg = commit_vote_message(cfg_.chain_id, cfg_.epoch, cb.view, h, cb.block.digest());
    Status st =
        crypto::verify_quorum(cb.cert, cfg_.committee, cfg_.quorum(), as_view(msg), hooks_.verify);
    if (!st.ok()) {
      ++counters_.dropped_invalid_state;
      break;
    }
    committed_[h] = std::make_shared<const CommittedBlock>(cb);
    ++counters_.state_transfer_blocks;
    got = true;
  }
  if (got) {
    try_execute();
    // More to fetch: ask again right away.
    if (r.blocks.size() >= cfg_.state_transfer_batch) {
      last_state_request_ms_ = 0;
      request_state(env.sender);
    }
  }
  if (r.stable_seq && *r.stable_seq > stable_ && *r.stable_seq <= last_executed_) {
    Hash32 digest{};
    if (!r.stable_proof.empty()) {
      auto c = Checkpoint::decode(as_view(r.stable_proof[0].body));
      if (c.ok()) digest = c->state_digest;
    }
    if (verify_checkpoint_proof(*r.stable_seq, digest, r.stable_proof).ok()) {
      make_stable(*r.stable_seq, digest, r.stable_proof);
    } else {
      ++counters_.dropped_invalid_state;
    }
  }
}

// Only a primary takes ids from pending_order_ (try_propose), so at a backup every request it
// was ever sent stayed there, 32 bytes each, until a view change (session 25 found a backup's
// heap growing by ~40 bytes per request at the ordering-only peak, the primary's not). After
// each block the executed ids at its front go, and when what is left is mostly executed or
// already proposed (a request held pending at the front keeps the ones behind it), the deque
// is rebuilt with the pending ones in their order: its length stays within a constant factor
// of the pending requests, at O(1) amortized per request.
void Replica::trim_pending_order() {
  while (!pending_order_.empty() && !pending_request(pending_order_.front()))
    pending_order_.pop_front();
  if (pending_order_.size() <= 4 * pending_count_ + 1024) return;
  std::deque<Hash32> kept;
  for (const Hash32& id : pending_order_)
    if (pending_request(id)) kept.push_back(id);
  pending_order_ = std::move(kept);
}

const Replica::RequestState* Replica::pending_request(const Hash32& id) const {
  auto it = requests_.find(id);
  if (it == requests_.end() || !it->second.req || proposed_.count(id)) return nullptr;
  return &it->second;
}

void Replica::requeue_pending() {
  // A new view forgets what was proposed in the old one: every pending request is a candidate
  // again, oldest first.
  std::vector<std::pair<uint64_t, Hash32>> order;
  order.reserve(pending_count_);
  for (const auto& [id, st] : requests_) {
    if (st.req) order.emplace_back(st.arrival_ms, id);
  }
  std::sort(order.begin(), order.end());
  pending_order_.clear();
  for (const auto& [t, id] : order) pending_order_.push_back(id);
}

void Replica::remember_own_view_change(View v, const Envelope& env) {
  own_view_changes_[v] = env;
  while (own_view_changes_.size() > kOwnViewChangesKept)
    own_view_changes_.erase(own_view_changes_.begin());
}

// ---------------------------------------------------------------- output helpers

Envelope Replica::sign(MsgType type, Bytes body) {
  return sign_envelope(key_, cfg_.self, cfg_.chain_id, cfg_.epoch, type, std::move(body));
}

bool Replica::record_signature(MsgType type, View v, Seq seq, const Hash32& digest) {
  auto key = std::make_tuple(static_cast<uint8_t>(type), v, seq);
  auto it = signed_.find(key);
  if (it != signed_.end()) {
    if (it->second != digest) {
      // Safety rule: never sign two different digests for one slot, even after a restart.
      ++counters_.refused_equivocation;
      return false;
    }
    return true;
  }
  if (!replaying_ && (type == MsgType::kPrePrepare || type == MsgType::kPrepare) &&
      refused_after_restart(v, seq)) {
    ++counters_.refused_after_restart;
    return false;
  }
  signed_[key] = digest;
  return true;
}

bool Replica::refused_after_restart(View v, Seq seq) const {
  const Lease& l = lease_recovered_;
  return l.any && (v < l.view || (v == l.view && seq <= l.upto));
}

bool Replica::leased(View v, Seq seq) {
  if (cfg_.prepare_lease == 0 || replaying_) return false;
  Seq ahead = cfg_.prepare_lease;
  bool covered = lease_durable_.covers(v, seq);
  // Renewed while half of it is left, so that the slots after this one find it durable (the
  // record is synced with this slot's commit at the latest).
  if (!lease_emitted_.covers(v, seq + ahead / 2)) {
    Lease l{v, seq + ahead, true};
    Writer w(8);
    w.u64(cfg_.epoch);
    out_.push_back(
        PersistAction{PersistRecord{PersistRecord::Kind::kLease, l.upto, v, std::move(w).take()}});
    lease_emitted_ = l;
  }
  return covered;
}

void Replica::on_lease_durable(View v, Seq upto) {
  Lease l{v, upto, true};
  if (lease_durable_.before(l)) lease_durable_ = l;
}

void Replica::persist_message(const Envelope& env, Seq seq, View v) {
  if (replaying_) return;
  out_.push_back(PersistAction{PersistRecord{PersistRecord::Kind::kMessage, seq, v, env.encode()}});
}

void Replica::send(const Envelope& env, std::optional<ReplicaId> to, bool durable) {
  if (replaying_) return;
  out_.push_back(SendAction{to, env.type, std::make_shared<const Bytes>(env.encode()), durable});
}

bool Replica::verify_sig(const crypto::PublicKey& pk, ByteView msg, const crypto::Signature& sig) {
  return hooks_.verify ? hooks_.verify(pk, msg, sig) : crypto::verify(pk, msg, sig);
}

bool Replica::verify_envelope(const Envelope& env) {
  if (env.sender >= cfg_.n()) return false;
  Bytes msg = signing_message(cfg_.chain_id, cfg_.epoch, env.type, as_view(env.body));
  return verify_sig(cfg_.committee[env.sender], as_view(msg), env.sig);
}

Actions Replica::take_actions() {
  Actions a;
  a.swap(out_);
  return a;
}

}  // namespace attestnet::consensus
