#include "state/trust.h"

#include <algorithm>
#include <cctype>

#include "consensus/replica.h"
#include "core/hash.h"
#include "evidence/binding.h"

namespace attestnet::state {
namespace {

using consensus::Envelope;
using consensus::MsgType;

Result<crypto::PublicKey> read_key(Reader& r) {
  ATN_TRY(Bytes b, r.fixed(32));
  crypto::PublicKey k;
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}
Result<crypto::Signature> read_sig(Reader& r) {
  ATN_TRY(Bytes b, r.fixed(64));
  crypto::Signature s;
  std::copy(b.begin(), b.end(), s.begin());
  return s;
}
void put_key(Writer& w, const crypto::PublicKey& k) {
  w.fixed(ByteView(k.data(), k.size()));
}
void put_sig(Writer& w, const crypto::Signature& s) {
  w.fixed(ByteView(s.data(), s.size()));
}

bool check(const crypto::VerifyFn& verify, const crypto::PublicKey& pk, ByteView msg,
           const crypto::Signature& sig) {
  return verify ? verify(pk, msg, sig) : crypto::verify(pk, msg, sig);
}

// (view, seq, digest) of a pre-prepare or vote envelope.
Result<std::tuple<uint64_t, uint64_t, Hash32>> slot_of(const Envelope& e) {
  if (e.type == MsgType::kPrePrepare) {
    ATN_TRY(consensus::PrePrepare pp, consensus::PrePrepare::decode(as_view(e.body)));
    return std::make_tuple(pp.view, pp.seq, pp.block.digest());
  }
  if (e.type == MsgType::kPrepare || e.type == MsgType::kCommit) {
    ATN_TRY(consensus::Vote v, consensus::Vote::decode(as_view(e.body)));
    return std::make_tuple(v.view, v.seq, v.digest);
  }
  return make_error(Errc::kBadValue, std::string("a ") + consensus::msg_type_name(e.type) +
                                         " cannot prove equivocation (only pre-prepares, "
                                         "prepares and commits)");
}

Hash32 tie_break(const crypto::PublicKey& k, uint64_t epoch) {
  Writer w;
  put_key(w, k);
  w.u64(epoch);
  return hash_domain("attestnet/seat", as_view(w.data()));
}

template <typename T>
void keep_last(std::vector<T>& v, size_t n) {
  if (v.size() > n) v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() - n));
}

}  // namespace

TxKind tx_kind(ByteView p) {
  if (p.size() < 2) return TxKind::kUnknown;
  uint16_t tag = static_cast<uint16_t>(p[0] | (p[1] << 8));
  switch (tag) {
    case 0x0601:
      return TxKind::kAttestation;
    case MisbehaviourProof::kTag:
      return TxKind::kMisbehaviour;
    case Endorsement::kTag:
      return TxKind::kEndorsement;
    case NodeJoin::kTag:
      return TxKind::kJoin;
    case NodeLeave::kTag:
      return TxKind::kLeave;
    case KeyRotation::kTag:
      return TxKind::kRotate;
    default:
      return TxKind::kUnknown;
  }
}

// ---- encodings

Bytes MisbehaviourProof::encode() const {
  Writer w;
  w.header(kTag, 1).u64(epoch).u8(kind);
  first.encode(w);
  second.encode(w);
  return std::move(w).take();
}

Result<MisbehaviourProof> MisbehaviourProof::decode(ByteView in) {
  Reader r(in, consensus::kMaxRequestPayload);
  ATN_CHECK(r.header(kTag, 1, 1, "misbehaviour proof"));
  MisbehaviourProof p;
  ATN_TRY(p.epoch, r.u64());
  ATN_TRY(p.kind, r.u8());
  if (p.kind != kEquivocation && p.kind != kBadHeaderVote) {
    return make_error(Errc::kBadValue, "misbehaviour proof kind " + std::to_string(p.kind) +
                                           " is not 1 (equivocation) or 2 (bad header vote)");
  }
  ATN_TRY(p.first, Envelope::decode(r));
  ATN_TRY(p.second, Envelope::decode(r));
  ATN_CHECK(r.finish());
  return p;
}

Bytes Endorsement::message(const std::string& chain_id, uint64_t height, const Hash32& h) {
  Writer w;
  w.str("attestnet/endorsement").str(chain_id).u64(height).hash(h);
  return std::move(w).take();
}

Endorsement Endorsement::make(const crypto::SecretKey& key, const std::string& chain_id,
                              uint64_t height, const Hash32& header_hash) {
  Endorsement e;
  e.endorser = key.public_key();
  e.height = height;
  e.header_hash = header_hash;
  e.signature = key.sign(as_view(message(chain_id, height, header_hash)));
  return e;
}

Bytes Endorsement::encode() const {
  Writer w;
  w.header(kTag, 1);
  put_key(w, endorser);
  w.u64(height).hash(header_hash);
  put_sig(w, signature);
  return std::move(w).take();
}

Result<Endorsement> Endorsement::decode(ByteView in) {
  Reader r(in);
  ATN_CHECK(r.header(kTag, 1, 1, "endorsement"));
  Endorsement e;
  ATN_TRY(e.endorser, read_key(r));
  ATN_TRY(e.height, r.u64());
  ATN_TRY(e.header_hash, r.hash());
  ATN_TRY(e.signature, read_sig(r));
  ATN_CHECK(r.finish());
  return e;
}

Bytes NodeJoin::body() const {
  Writer w;
  w.header(kTag, 1);
  put_key(w, key);
  w.str(name).str(endpoint).str(platform).bytes(as_view(evidence));
  return std::move(w).take();
}

Bytes NodeJoin::encode() const {
  Writer w;
  w.fixed(as_view(body()));
  put_sig(w, signature);
  return std::move(w).take();
}

Result<NodeJoin> NodeJoin::decode(ByteView in) {
  Reader r(in, consensus::kMaxRequestPayload);
  ATN_CHECK(r.header(kTag, 1, 1, "node join"));
  NodeJoin j;
  ATN_TRY(j.key, read_key(r));
  ATN_TRY(j.name, r.str());
  ATN_TRY(j.endpoint, r.str());
  ATN_TRY(j.platform, r.str());
  ATN_TRY(j.evidence, r.bytes());
  ATN_TRY(j.signature, read_sig(r));
  ATN_CHECK(r.finish());
  return j;
}

NodeJoin NodeJoin::make(const crypto::SecretKey& key, std::string name, std::string endpoint,
                        std::string platform, Bytes evidence) {
  NodeJoin j;
  j.key = key.public_key();
  j.name = std::move(name);
  j.endpoint = std::move(endpoint);
  j.platform = std::move(platform);
  j.evidence = std::move(evidence);
  j.signature = key.sign(as_view(j.body()));
  return j;
}

Hash32 join_binding(const Hash32& genesis_hash, const crypto::PublicKey& key) {
  return evidence::evidence_binding(genesis_hash, key);
}

Bytes NodeLeave::message(const std::string& chain_id, const crypto::PublicKey& k) {
  Writer w;
  w.str("attestnet/leave").str(chain_id).fixed(ByteView(k.data(), 32));
  return std::move(w).take();
}

NodeLeave NodeLeave::make(const crypto::SecretKey& key, const std::string& chain_id) {
  NodeLeave l;
  l.key = key.public_key();
  l.signature = key.sign(as_view(message(chain_id, l.key)));
  return l;
}

Bytes KeyRotation::message(const std::string& chain_id, const crypto::PublicKey& a,
                           const crypto::PublicKey& b) {
  Writer w;
  w.str("attestnet/rotate")
      .str(chain_id)
      .fixed(ByteView(a.data(), 32))
      .fixed(ByteView(b.data(), 32));
  return std::move(w).take();
}

KeyRotation KeyRotation::make(const crypto::SecretKey& old_key, const crypto::PublicKey& new_key,
                              const std::string& chain_id) {
  KeyRotation r;
  r.old_key = old_key.public_key();
  r.new_key = new_key;
  r.signature = old_key.sign(as_view(message(chain_id, r.old_key, new_key)));
  return r;
}

Bytes NodeLeave::encode() const {
  Writer w;
  w.header(kTag, 1);
  put_key(w, key);
  put_sig(w, signature);
  return std::move(w).take();
}

Result<NodeLeave> NodeLeave::decode(ByteView in) {
  Reader r(in);
  ATN_CHECK(r.header(kTag, 1, 1, "node leave"));
  NodeLeave l;
  ATN_TRY(l.key, read_key(r));
  ATN_TRY(l.signature, read_sig(r));
  ATN_CHECK(r.finish());
  return l;
}

Bytes KeyRotation::encode() const {
  Writer w;
  w.header(kTag, 1);
  put_key(w, old_key);
  put_key(w, new_key);
  put_sig(w, signature);
  return std::move(w).take();
}

Result<KeyRotation> KeyRotation::decode(ByteView in) {
  Reader r(in);
  ATN_CHECK(r.header(kTag, 1, 1, "key rotation"));
  KeyRotation k;
  ATN_TRY(k.old_key, read_key(r));
  ATN_TRY(k.new_key, read_key(r));
  ATN_TRY(k.signature, read_sig(r));
  ATN_CHECK(r.finish());
  return k;
}

// ---- TrustState

TrustState::TrustState(std::string chain_id, TrustParams params,
                       std::vector<ledger::GenesisMember> registered, const Hash32& genesis_hash)
    : chain_id_(std::move(chain_id)), params_(params), genesis_hash_(genesis_hash) {
  committee_.epoch = 0;
  for (size_t i = 0; i < registered.size(); ++i) {
    NodeEntry e;
    e.key = registered[i].public_key;
    e.name = registered[i].name;
    e.endpoint = registered[i].endpoint;
    if (params_.committee_size == 0)
      params_.committee_size = static_cast<uint32_t>(registered.size());
    bool seat = i < params_.committee_size;
    // Genesis members start with full reputation; registered outsiders earn theirs.
    e.score_ppm = seat ? kPpm : 0;
    e.index = static_cast<uint32_t>(i);
    if (seat) committee_.members.push_back(e.key);
    order_.push_back(e.key);
    nodes_[e.key] = std::move(e);
  }
}

std::optional<uint32_t> TrustState::index_of(const crypto::PublicKey& key) const {
  auto it = nodes_.find(key);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.index;
}

const crypto::PublicKey* TrustState::rotated_to(const crypto::PublicKey& old_key) const {
  auto it = retired_.find(old_key);
  if (it == retired_.end()) return nullptr;
  // Follow a chain of rotations to the key in use now.
  const crypto::PublicKey* k = &it->second;
  for (auto next = retired_.find(*k); next != retired_.end(); next = retired_.find(*k))
    k = &next->second;
  return k;
}

const ledger::Committee* TrustState::committee_of(uint64_t epoch) const {
  if (epoch == epoch_) return &committee_;
  auto it = past_.find(epoch);
  return it == past_.end() ? nullptr : &it->second;
}

uint64_t TrustState::epoch_of(uint64_t height) const {
  if (params_.epoch_length == 0 || height == 0) return 0;
  return (height - 1) / params_.epoch_length;
}

uint64_t TrustState::epoch_end(uint64_t epoch) const {
  if (params_.epoch_length == 0) return UINT64_MAX;
  return (epoch + 1) * params_.epoch_length;
}

bool TrustState::is_last_of_epoch(uint64_t height) const {
  return params_.epoch_length != 0 && height != 0 && height % params_.epoch_length == 0;
}

std::optional<uint32_t> TrustState::member_index(const crypto::PublicKey& k) const {
  for (uint32_t i = 0; i < committee_.members.size(); ++i) {
    if (committee_.members[i] == k) return i;
  }
  return std::nullopt;
}

Status TrustState::validate(const consensus::Request& q, const crypto::VerifyFn& verify) const {
  ByteView p = as_view(q.payload);
  switch (tx_kind(p)) {
    case TxKind::kMisbehaviour: {
      ATN_TRY(MisbehaviourProof m, MisbehaviourProof::decode(p));
      (void)m;  // judged at execution, against the committee of its epoch
      return {};
    }
    case TxKind::kEndorsement: {
      ATN_TRY(Endorsement e, Endorsement::decode(p));
      if (!check(verify, e.endorser,
                 as_view(Endorsement::message(chain_id_, e.height, e.header_hash)), e.signature)) {
        return make_error(Errc::kBadSignature,
                          "endorsement signature does not verify with the endorser's key");
      }
      return {};
    }
    case TxKind::kJoin: {
      ATN_TRY(NodeJoin j, NodeJoin::decode(p));
      if (!check(verify, j.key, as_view(j.body()), j.signature)) {
        return make_error(Errc::kBadSignature, "node join is not signed by the key it registers");
      }
      return {};
    }
    case TxKind::kLeave: {
      ATN_TRY(NodeLeave l, NodeLeave::decode(p));
      if (!check(verify, l.key, as_view(NodeLeave::message(chain_id_, l.key)), l.signature)) {
        return make_error(Errc::kBadSignature, "node leave is not signed by the leaving key");
      }
      return {};
    }
    case TxKind::kRotate: {
      ATN_TRY(KeyRotation k, KeyRotation::decode(p));
      if (!check(verify, k.old_key, as_view(KeyRotation::message(chain_id_, k.old_key, k.new_key)),
                 k.signature)) {
        return make_error(Errc::kBadSignature, "key rotation is not signed by the old key");
      }
      return {};
    }
    case TxKind::kAttestation:
      return make_error(Errc::kBadValue, "an attestation request is not a trust transaction");
    case TxKind::kUnknown:
      break;
  }
  return make_error(Errc::kBadValue, "request payload has an unknown transaction tag");
}

std::vector<TxOutcome> TrustState::apply_block(const consensus::Block& b,
                                               const crypto::VerifyFn& verify,
                                               const AdmitFn& admit) {
  // Participation: header certificates of this epoch, each height counted once.
  for (const consensus::CertifiedHeader& c : b.certificates) {
    if (epoch_of(c.height) != epoch_ || c.height >= b.height) continue;
    // Without epochs: a height no longer kept (note_header) would be counted twice.
    if (!params_.epoch_length && c.height + kRecentWithoutEpochs < b.height) continue;
    if (!facts_.cert_heights.insert(c.height).second) continue;
    ++facts_.certs_recorded;
    for (const auto& s : c.cert.sigs) {
      if (s.signer < committee_.members.size()) ++facts_.signed_by[s.signer];
    }
  }
  // Responsiveness: every view this epoch left behind was a primary's failure to make progress.
  if (!b.is_null() && b.view > last_view_) {
    uint64_t n = committee_.members.size();
    uint64_t from = std::max(last_view_, b.view > 4 * n ? b.view - 4 * n : 0);
    for (uint64_t v = from; v < b.view && n; ++v)
      ++facts_.view_changes[static_cast<uint32_t>(v % n)];
    last_view_ = b.view;
  }
  std::vector<TxOutcome> out;
  for (const consensus::Request& q : b.requests) {
    ByteView p = as_view(q.payload);
    TxKind kind = tx_kind(p);
    if (kind == TxKind::kAttestation) continue;
    TxOutcome o;
    auto refuse = [&](const Error& e) { o = TxOutcome{false, e.reason}; };
    switch (kind) {
      case TxKind::kMisbehaviour: {
        auto m = MisbehaviourProof::decode(p);
        if (m.ok())
          o = apply_misbehaviour(*m, verify);
        else
          refuse(m.error());
        break;
      }
      case TxKind::kEndorsement: {
        auto e = Endorsement::decode(p);
        if (e.ok())
          o = apply_endorsement(*e, verify);
        else
          refuse(e.error());
        break;
      }
      case TxKind::kJoin: {
        auto j = NodeJoin::decode(p);
        if (j.ok())
          o = apply_join(*j, b, verify, admit);
        else
          refuse(j.error());
        break;
      }
      case TxKind::kLeave: {
        auto l = NodeLeave::decode(p);
        if (l.ok())
          o = apply_leave(*l, verify);
        else
          refuse(l.error());
        break;
      }
      case TxKind::kRotate: {
        auto k = KeyRotation::decode(p);
        if (k.ok())
          o = apply_rotate(*k, verify);
        else
          refuse(k.error());
        break;
      }
      default:
        o = TxOutcome{false, "unknown transaction tag"};
    }
    o.request_id = q.id();
    out.push_back(std::move(o));
  }
  return out;
}

void TrustState::note_header(uint64_t height, const Hash32& header_hash) {
  headers_[height] = header_hash;
  if (params_.epoch_length || height <= kRecentWithoutEpochs) return;
  uint64_t keep_from = height - kRecentWithoutEpochs + 1;
  headers_.erase(headers_.begin(), headers_.lower_bound(keep_from));
  auto& certs = facts_.cert_heights;
  certs.erase(certs.begin(), certs.lower_bound(keep_from));
  for (auto& [who, heights] : facts_.endorsed)
    heights.erase(heights.begin(), heights.lower_bound(keep_from));
}

size_t TrustState::heights_in_memory() const {
  size_t n = headers_.size() + facts_.cert_heights.size();
  for (const auto& [who, heights] : facts_.endorsed) n += heights.size();
  return n;
}

void TrustState::slash(const crypto::PublicKey& key) {
  auto it = nodes_.find(key);
  if (it == nodes_.end()) return;
  it->second.score_ppm = 0;
  it->second.excluded_until = epoch_ + 1 + params_.exclusion_epochs;
  ++it->second.slashes;
  facts_.slashed.insert(key);
}

TxOutcome TrustState::apply_misbehaviour(const MisbehaviourProof& p,
                                         const crypto::VerifyFn& verify) {
  const ledger::Committee* c = committee_of(p.epoch);
  if (!c) {
    return {false, "misbehaviour proof for epoch " + std::to_string(p.epoch) +
                       ", whose committee is not recent (current epoch " + std::to_string(epoch_) +
                       ")"};
  }
  const Envelope& a = p.first;
  if (a.sender >= c->members.size()) {
    return {false, "misbehaviour proof names member " + std::to_string(a.sender) +
                       ", beyond the committee of epoch " + std::to_string(p.epoch)};
  }
  const crypto::PublicKey& offender = c->members[a.sender];
  auto sig_ok = [&](const Envelope& e) {
    return check(verify, offender,
                 as_view(consensus::signing_message(chain_id_, p.epoch, e.type, as_view(e.body))),
                 e.sig);
  };
  if (p.kind == MisbehaviourProof::kEquivocation) {
    const Envelope& b = p.second;
    if (b.sender != a.sender || b.type != a.type) {
      return {false, "the two messages of an equivocation proof must have one sender and type"};
    }
    auto sa = slot_of(a);
    auto sb = slot_of(b);
    if (!sa.ok()) return {false, sa.error().reason};
    if (!sb.ok()) return {false, sb.error().reason};
    auto [va, qa, da] = *sa;
    auto [vb, qb, db] = *sb;
    if (va != vb || qa != qb) {
      return {false, "the two messages are for different slots (view " + std::to_string(va) +
                         " seq " + std::to_string(qa) + " and view " + std::to_string(vb) +
                         " seq " + std::to_string(qb) + "): not an equivocation"};
    }
    if (da == db) return {false, "the two messages agree: not an equivocation"};
    if (!sig_ok(a) || !sig_ok(b)) {
      return {false, "a message of the equivocation proof is not signed by member " +
                         std::to_string(a.sender) + " of epoch " + std::to_string(p.epoch)};
    }
  } else {
    if (a.type != MsgType::kHeaderVote) {
      return {false, "a bad-header-vote proof must carry a header vote"};
    }
    auto hv = consensus::HeaderVote::decode(as_view(a.body));
    if (!hv.ok()) return {false, "header vote: " + hv.error().reason};
    if (epoch_of(hv->height) != p.epoch) {
      return {false, "the header vote's height is not in epoch " + std::to_string(p.epoch)};
    }
    auto ours = headers_.find(hv->height);
    if (ours == headers_.end()) {
      return {false, "height " + std::to_string(hv->height) +
                         " is not a recent executed height of this ledger"};
    }
    if (ours->second == hv->header_digest) {
      return {false, "the header vote matches the ledger's header: no misbehaviour"};
    }
    if (!sig_ok(a)) {
      return {false, "the header vote is not signed by member " + std::to_string(a.sender) +
                         " of epoch " + std::to_string(p.epoch)};
    }
  }
  if (!proven_.insert({offender, p.epoch}).second) {
    return {false, "this member's misbehaviour in epoch " + std::to_string(p.epoch) +
                       " is already proven"};
  }
  slash(offender);
  return {true, "slashed " + to_hex(ByteView(offender.data(), 8)) + " (" +
                    (p.kind == 1 ? "equivocation" : "bad header vote") + " in epoch " +
                    std::to_string(p.epoch) + ")"};
}

TxOutcome TrustState::apply_endorsement(const Endorsement& e, const crypto::VerifyFn& verify) {
  auto it = nodes_.find(e.endorser);
  if (it == nodes_.end() || !it->second.active) {
    return {false, "the endorser is not an active registered node"};
  }
  if (member_index(e.endorser)) {
    return {false, "committee members earn reputation by signing, not by endorsing"};
  }
  auto ours = headers_.find(e.height);
  if (ours == headers_.end() || epoch_of(e.height) + 1 < epoch_) {
    return {false, "height " + std::to_string(e.height) + " is not a recent executed height"};
  }
  if (!check(verify, e.endorser, as_view(Endorsement::message(chain_id_, e.height, e.header_hash)),
             e.signature)) {
    return {false, "endorsement signature does not verify with the endorser's key"};
  }
  if (ours->second != e.header_hash) {
    // A signed statement that a false header is the ledger's: proven misbehaviour.
    if (proven_.insert({e.endorser, epoch_}).second) slash(e.endorser);
    return {true, "the endorsement contradicts the ledger's header: the endorser is slashed"};
  }
  if (e.height <= it->second.last_endorsed) {
    return {false, "this node already endorsed height " + std::to_string(it->second.last_endorsed) +
                       " (endorsements move forward)"};
  }
  it->second.last_endorsed = e.height;
  facts_.endorsed[e.endorser].insert(e.height);
  return {true, "endorsement counted"};
}

TxOutcome TrustState::apply_join(const NodeJoin& j, const consensus::Block& b,
                                 const crypto::VerifyFn& verify, const AdmitFn& admit) {
  if (nodes_.count(j.key)) return {false, "the key is already registered"};
  if (retired_.count(j.key)) return {false, "the key was retired by a key rotation"};
  bool plain = std::all_of(j.name.begin(), j.name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (j.name.empty() || j.name.size() > 64 || !plain)
    return {false, "a node's name must be 1 to 64 letters, digits, '-', '_' or '.'"};
  for (const auto& [k, e] : nodes_)
    if (e.name == j.name)
      return {false,
              "the name " + j.name + " is taken by registered node " + std::to_string(e.index)};
  if (!check(verify, j.key, as_view(j.body()), j.signature)) {
    return {false, "node join is not signed by the key it registers"};
  }
  if (!admit) return {false, "this network admits no nodes (no admission policy)"};
  if (Status st = admit(j, b.block_time); !st.ok()) {
    return {false, "the node's own evidence is refused: " + st.error().reason};
  }
  NodeEntry e;
  e.key = j.key;
  e.index = static_cast<uint32_t>(order_.size());
  e.name = j.name;
  e.endpoint = j.endpoint;
  e.joined_height = b.height;
  order_.push_back(j.key);
  nodes_[j.key] = std::move(e);
  ++registry_version_;
  return {true, "registered " + j.name + " as node " + std::to_string(order_.size() - 1)};
}

TxOutcome TrustState::apply_leave(const NodeLeave& l, const crypto::VerifyFn& verify) {
  auto it = nodes_.find(l.key);
  if (retired_.count(l.key)) return {false, "the key was retired by a rotation"};
  if (it == nodes_.end() || !it->second.active) return {false, "not an active registered node"};
  if (!check(verify, l.key, as_view(NodeLeave::message(chain_id_, l.key)), l.signature)) {
    return {false, "node leave is not signed by the leaving key"};
  }
  it->second.active = false;
  ++registry_version_;
  return {true, "left (a sitting member serves until the end of the epoch)"};
}

TxOutcome TrustState::apply_rotate(const KeyRotation& r, const crypto::VerifyFn& verify) {
  auto it = nodes_.find(r.old_key);
  if (retired_.count(r.old_key)) return {false, "the old key was retired by an earlier rotation"};
  if (it == nodes_.end() || !it->second.active) return {false, "the old key is not registered"};
  if (nodes_.count(r.new_key)) return {false, "the new key is already registered"};
  if (member_index(r.old_key)) {
    return {false,
            "a sitting member rotates its key after its term (the committee's keys are "
            "fixed for the epoch)"};
  }
  if (!check(verify, r.old_key, as_view(KeyRotation::message(chain_id_, r.old_key, r.new_key)),
             r.signature)) {
    return {false, "key rotation is not signed by the old key"};
  }
  if (retired_.count(r.new_key)) return {false, "the new key was retired by an earlier rotation"};
  NodeEntry e = std::move(it->second);
  nodes_.erase(it);
  e.key = r.new_key;
  order_[e.index] = r.new_key;
  std::string name = e.name;
  nodes_[r.new_key] = std::move(e);
  retired_[r.old_key] = r.new_key;
  ++registry_version_;
  return {true, "rotated the key of " + name};
}

ledger::Committee TrustState::select_next() const {
  const uint64_t next_epoch = epoch_ + 1;
  auto eligible = [&](const NodeEntry& e) {
    return e.active && e.excluded_until <= next_epoch && e.score_ppm >= params_.min_score_ppm;
  };
  // Higher score first; ties by a hash of key and epoch (no fixed order favours anyone).
  auto better = [&](const crypto::PublicKey& a, const crypto::PublicKey& b) {
    uint32_t sa = nodes_.at(a).score_ppm, sb = nodes_.at(b).score_ppm;
    if (sa != sb) return sa > sb;
    return tie_break(a, next_epoch) < tie_break(b, next_epoch);
  };
  std::vector<crypto::PublicKey> seated, must_go, candidates;
  for (const auto& k : committee_.members) {
    auto it = nodes_.find(k);
    if (it != nodes_.end() && eligible(it->second)) {
      seated.push_back(k);
    } else {
      must_go.push_back(k);
    }
  }
  for (const auto& [k, e] : nodes_) {
    if (eligible(e) && std::find(committee_.members.begin(), committee_.members.end(), k) ==
                           committee_.members.end()) {
      candidates.push_back(k);
    }
  }
  std::sort(candidates.begin(), candidates.end(), better);
  size_t next_candidate = 0;
  uint32_t churn = 0;
  // Members that may not sit leave whatever the churn bound; their seats go to the best
  // candidates, then empty seats are filled.
  while (seated.size() < params_.committee_size && next_candidate < candidates.size()) {
    seated.push_back(candidates[next_candidate++]);
    ++churn;
  }
  // Voluntary swaps, bounded: a candidate clearly ahead of the weakest member takes its seat.
  while (churn < params_.max_churn && next_candidate < candidates.size() && !seated.empty()) {
    auto worst = std::min_element(seated.begin(), seated.end(),
                                  [&](const auto& a, const auto& b) { return better(b, a); });
    const crypto::PublicKey& c = candidates[next_candidate];
    if (nodes_.at(c).score_ppm <= nodes_.at(*worst).score_ppm + params_.swap_margin_ppm) break;
    *worst = c;
    ++next_candidate;
    ++churn;
  }
  // Too few eligible nodes: low-scored (not slashed, not departed) members keep their seats.
  if (seated.size() < 4) {
    std::sort(must_go.begin(), must_go.end(), better);
    for (const auto& k : must_go) {
      auto it = nodes_.find(k);
      if (seated.size() >= 4) break;
      if (it != nodes_.end() && it->second.active && it->second.excluded_until <= next_epoch)
        seated.push_back(k);
    }
  }
  // PBFT's quorum of 2f+1 is safe for n = 3f+1: drop the weakest beyond the largest 3f+1.
  std::sort(seated.begin(), seated.end(), better);
  if (seated.size() >= 4) seated.resize(((seated.size() - 1) / 3) * 3 + 1);
  std::sort(seated.begin(), seated.end(), [&](const auto& a, const auto& b) {
    return tie_break(a, next_epoch) < tie_break(b, next_epoch);
  });
  ledger::Committee next;
  next.epoch = next_epoch;
  next.members = std::move(seated);
  for (const auto& [k, e] : nodes_) {
    if (e.excluded_until > next_epoch) next.excluded.push_back({k, e.excluded_until});
  }
  return next;
}

const ledger::Committee& TrustState::end_epoch() {
  for (auto& [k, e] : nodes_) {
    uint64_t s = 0;
    auto idx = member_index(k);
    if (facts_.slashed.count(k) || e.excluded_until > epoch_ || !e.active) {
      s = 0;
    } else if (idx) {
      if (facts_.certs_recorded == 0) {
        s = e.score_ppm;  // nothing recorded this epoch: no evidence either way
      } else {
        auto sb = facts_.signed_by.find(*idx);
        uint64_t signed_count = sb == facts_.signed_by.end() ? 0 : sb->second;
        s = signed_count * kPpm / facts_.certs_recorded;
      }
      auto vc = facts_.view_changes.find(*idx);
      uint64_t penalty = vc == facts_.view_changes.end()
                             ? 0
                             : vc->second * static_cast<uint64_t>(params_.view_change_penalty_ppm);
      s = s > penalty ? s - penalty : 0;
    } else {
      auto en = facts_.endorsed.find(k);
      uint64_t count = en == facts_.endorsed.end() ? 0 : en->second.size();
      uint64_t target = std::max<uint64_t>(1, params_.endorsements_per_epoch);
      s = static_cast<uint64_t>(params_.outsider_weight_ppm) * std::min(count, target) / target;
    }
    if (facts_.slashed.count(k)) {
      e.score_ppm = 0;
    } else {
      e.score_ppm = static_cast<uint32_t>((static_cast<uint64_t>(params_.decay_ppm) * e.score_ppm +
                                           (kPpm - params_.decay_ppm) * s) /
                                          kPpm);
    }
    e.history.push_back({epoch_, e.score_ppm});
    keep_last(e.history, 64);
    if (idx) {
      e.terms.push_back(epoch_);
      keep_last(e.terms, 64);
    }
  }
  ledger::Committee next = select_next();
  past_[epoch_] = committee_;
  while (past_.size() > params_.exclusion_epochs + 2) past_.erase(past_.begin());
  committee_ = std::move(next);
  ++epoch_;
  facts_ = EpochFacts{};
  last_view_ = 0;
  if (params_.epoch_length && epoch_ >= 2) {
    headers_.erase(headers_.begin(), headers_.upper_bound(epoch_end(epoch_ - 2)));
  }
  return committee_;
}

Bytes TrustState::encode() const {
  Writer w;
  w.header(0x0620, 1).u64(epoch_).hash(committee_.hash());
  w.u32(static_cast<uint32_t>(nodes_.size()));
  for (const auto& [k, e] : nodes_) {
    put_key(w, k);
    w.u32(e.index).str(e.name).str(e.endpoint).u64(e.joined_height).u8(e.active ? 1 : 0);
    w.u32(e.score_ppm).u64(e.excluded_until).u32(e.slashes).u64(e.last_endorsed);
  }
  w.u64(facts_.certs_recorded).u32(static_cast<uint32_t>(facts_.slashed.size()));
  w.u32(static_cast<uint32_t>(retired_.size()));
  for (const auto& [old_key, new_key] : retired_) {
    put_key(w, old_key);
    put_key(w, new_key);
  }
  return std::move(w).take();
}

Bytes TrustState::snapshot() const {
  Writer w;
  w.header(0x0621, 2).u64(epoch_).u64(registry_version_);
  committee_.encode(w);
  w.u32(static_cast<uint32_t>(past_.size()));
  for (const auto& [e, c] : past_) c.encode(w);
  w.u32(static_cast<uint32_t>(order_.size()));
  for (const auto& k : order_) {
    const NodeEntry& e = nodes_.at(k);
    put_key(w, k);
    w.str(e.name).str(e.endpoint).u64(e.joined_height).u8(e.active ? 1 : 0);
    w.u32(e.score_ppm).u64(e.excluded_until).u32(e.slashes).u64(e.last_endorsed);
    w.u32(static_cast<uint32_t>(e.history.size()));
    for (const auto& [ep, sc] : e.history) w.u64(ep).u32(sc);
    w.u32(static_cast<uint32_t>(e.terms.size()));
    for (uint64_t t : e.terms) w.u64(t);
  }
  w.u32(static_cast<uint32_t>(retired_.size()));
  for (const auto& [a, b] : retired_) {
    put_key(w, a);
    put_key(w, b);
  }
  w.u32(static_cast<uint32_t>(headers_.size()));
  for (const auto& [h, hh] : headers_) w.u64(h).hash(hh);
  w.u32(static_cast<uint32_t>(proven_.size()));
  for (const auto& [k, e] : proven_) {
    put_key(w, k);
    w.u64(e);
  }
  // Version 2: what the epoch so far has left (a snapshot inside an epoch; at an epoch's end
  // these are empty).
  w.u64(facts_.certs_recorded).u64(last_view_);
  w.u32(static_cast<uint32_t>(facts_.cert_heights.size()));
  for (uint64_t h : facts_.cert_heights) w.u64(h);
  w.u32(static_cast<uint32_t>(facts_.signed_by.size()));
  for (const auto& [m, n] : facts_.signed_by) w.u32(m).u64(n);
  w.u32(static_cast<uint32_t>(facts_.view_changes.size()));
  for (const auto& [m, n] : facts_.view_changes) w.u32(m).u64(n);
  w.u32(static_cast<uint32_t>(facts_.endorsed.size()));
  for (const auto& [k, heights] : facts_.endorsed) {
    put_key(w, k);
    w.u32(static_cast<uint32_t>(heights.size()));
    for (uint64_t h : heights) w.u64(h);
  }
  w.u32(static_cast<uint32_t>(facts_.slashed.size()));
  for (const auto& k : facts_.slashed) put_key(w, k);
  return std::move(w).take();
}

Status TrustState::restore(ByteView snap) {
  Reader r(snap, 256u << 20);
  ATN_TRY(uint8_t version, r.header(0x0621, 1, 2, "trust snapshot"));
  TrustState t = *this;  // parameters, chain id and genesis hash stay
  t.nodes_.clear();
  t.order_.clear();
  t.past_.clear();
  t.retired_.clear();
  t.headers_.clear();
  t.proven_.clear();
  t.facts_ = EpochFacts{};
  t.last_view_ = 0;
  ATN_TRY(t.epoch_, r.u64());
  ATN_TRY(t.registry_version_, r.u64());
  ATN_TRY(t.committee_, ledger::Committee::decode(r));
  ATN_TRY(uint32_t np, r.count(8));
  for (uint32_t i = 0; i < np; ++i) {
    ATN_TRY(ledger::Committee c, ledger::Committee::decode(r));
    t.past_[c.epoch] = std::move(c);
  }
  ATN_TRY(uint32_t nn, r.count(40));
  for (uint32_t i = 0; i < nn; ++i) {
    NodeEntry e;
    ATN_TRY(e.key, read_key(r));
    e.index = i;
    ATN_TRY(e.name, r.str());
    ATN_TRY(e.endpoint, r.str());
    ATN_TRY(e.joined_height, r.u64());
    ATN_TRY(uint8_t active, r.u8());
    e.active = active != 0;
    ATN_TRY(e.score_ppm, r.u32());
    ATN_TRY(e.excluded_until, r.u64());
    ATN_TRY(e.slashes, r.u32());
    ATN_TRY(e.last_endorsed, r.u64());
    ATN_TRY(uint32_t nh, r.count(12));
    for (uint32_t j = 0; j < nh; ++j) {
      ATN_TRY(uint64_t ep, r.u64());
      ATN_TRY(uint32_t sc, r.u32());
      e.history.emplace_back(ep, sc);
    }
    ATN_TRY(uint32_t nt, r.count(8));
    for (uint32_t j = 0; j < nt; ++j) {
      ATN_TRY(uint64_t ep, r.u64());
      e.terms.push_back(ep);
    }
    t.order_.push_back(e.key);
    if (!t.nodes_.emplace(e.key, std::move(e)).second)
      return make_error(Errc::kBadValue, "trust snapshot lists a key twice");
  }
  ATN_TRY(uint32_t nr, r.count(64));
  for (uint32_t i = 0; i < nr; ++i) {
    ATN_TRY(crypto::PublicKey a, read_key(r));
    ATN_TRY(crypto::PublicKey b, read_key(r));
    t.retired_[a] = b;
  }
  ATN_TRY(uint32_t nhd, r.count(40));
  for (uint32_t i = 0; i < nhd; ++i) {
    ATN_TRY(uint64_t h, r.u64());
    ATN_TRY(Hash32 hh, r.hash());
    t.headers_[h] = hh;
  }
  ATN_TRY(uint32_t npr, r.count(40));
  for (uint32_t i = 0; i < npr; ++i) {
    ATN_TRY(crypto::PublicKey k, read_key(r));
    ATN_TRY(uint64_t e, r.u64());
    t.proven_.insert({k, e});
  }
  if (version >= 2) {
    ATN_TRY(t.facts_.certs_recorded, r.u64());
    ATN_TRY(t.last_view_, r.u64());
    ATN_TRY(uint32_t nc, r.count(8));
    for (uint32_t i = 0; i < nc; ++i) {
      ATN_TRY(uint64_t h, r.u64());
      t.facts_.cert_heights.insert(h);
    }
    for (auto* counts : {&t.facts_.signed_by, &t.facts_.view_changes}) {
      ATN_TRY(uint32_t n, r.count(12));
      for (uint32_t i = 0; i < n; ++i) {
        ATN_TRY(uint32_t m, r.u32());
        ATN_TRY(uint64_t c, r.u64());
        (*counts)[m] = c;
      }
    }
    ATN_TRY(uint32_t ne, r.count(36));
    for (uint32_t i = 0; i < ne; ++i) {
      ATN_TRY(crypto::PublicKey k, read_key(r));
      ATN_TRY(uint32_t nh, r.count(8));
      auto& heights = t.facts_.endorsed[k];
      for (uint32_t j = 0; j < nh; ++j) {
        ATN_TRY(uint64_t h, r.u64());
        heights.insert(h);
      }
    }
    ATN_TRY(uint32_t ns, r.count(32));
    for (uint32_t i = 0; i < ns; ++i) {
      ATN_TRY(crypto::PublicKey k, read_key(r));
      t.facts_.slashed.insert(k);
    }
  }
  ATN_CHECK(r.finish());
  *this = std::move(t);
  return {};
}

Hash32 TrustState::hash() const {
  return hash_domain("attestnet/trust-state", as_view(encode()));
}

FoldedBlock fold_block(TrustState& trust, ChainState& chain, const consensus::Block& b,
                       const crypto::VerifyFn& verify, const TrustState::AdmitFn& admit) {
  FoldedBlock out;
  out.outcomes = trust.apply_block(b, verify, admit);
  if (trust.is_last_of_epoch(b.height)) out.next = trust.end_epoch();
  chain.digest = consensus::next_state_digest(chain.digest, b.height, b.digest());
  chain.block_time = std::max(chain.block_time, b.block_time);
  out.state_root = state_root(chain.digest, trust);
  return out;
}

Hash32 state_root(const Hash32& digest, const TrustState& trust) {
  Writer w;
  w.hash(digest).hash(trust.hash());
  return hash_domain("attestnet/state-root", as_view(w.data()));
}

}  // namespace attestnet::state
