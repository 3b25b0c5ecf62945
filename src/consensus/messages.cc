#include "consensus/messages.h"

#include "core/hash.h"

namespace attestnet::consensus {
namespace {

constexpr uint16_t kSignedTag = 0x0202;

Status finish(const Reader& r) {
  return r.finish();
}

Result<std::vector<Envelope>> decode_envelopes(Reader& r) {
  ATN_TRY(uint32_t n, r.count(2 + 1 + 1 + 4 + 8 + 4 + 64));
  std::vector<Envelope> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(Envelope e, Envelope::decode(r));
    out.push_back(std::move(e));
  }
  return out;
}

void encode_envelopes(Writer& w, const std::vector<Envelope>& es) {
  w.u32(static_cast<uint32_t>(es.size()));
  for (const auto& e : es) e.encode(w);
}

}  // namespace

const char* msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kRequest:
      return "Request";
    case MsgType::kPrePrepare:
      return "PrePrepare";
    case MsgType::kPrepare:
      return "Prepare";
    case MsgType::kCommit:
      return "Commit";
    case MsgType::kCheckpoint:
      return "Checkpoint";
    case MsgType::kViewChange:
      return "ViewChange";
    case MsgType::kNewView:
      return "NewView";
    case MsgType::kStatus:
      return "Status";
    case MsgType::kStateRequest:
      return "StateRequest";
    case MsgType::kStateReply:
      return "StateReply";
    case MsgType::kHeaderVote:
      return "HeaderVote";
    case MsgType::kComplaint:
      return "Complaint";
  }
  return "Unknown";
}

// ---- Request / Block ----

void Request::encode(Writer& w) const {
  w.u64(client_id).u64(client_seq).bytes(as_view(payload));
}

Result<Request> Request::decode(Reader& r) {
  Request q;
  size_t start = r.position();
  ATN_TRY(q.client_id, r.u64());
  ATN_TRY(q.client_seq, r.u64());
  ATN_TRY(q.payload, r.bytes());
  if (q.payload.size() > kMaxRequestPayload) {
    return make_error(Errc::kOversize, "request payload of " + std::to_string(q.payload.size()) +
                                           " bytes exceeds " + std::to_string(kMaxRequestPayload));
  }
  // The encoding is canonical, so the bytes read are the bytes encode() writes.
  q.known_id_ = hash_domain("attestnet/request", r.read_since(start));
  return q;
}

Hash32 Request::compute_id() const {
  Writer w(payload.size() + 24);
  encode(w);
  return hash_domain("attestnet/request", as_view(w.data()));
}

const Hash32& Request::seal() {
  known_id_ = compute_id();
  return *known_id_;
}

void CertifiedHeader::encode(Writer& w) const {
  w.u64(height).hash(header_digest);
  cert.encode(w);
}

Result<CertifiedHeader> CertifiedHeader::decode(Reader& r) {
  CertifiedHeader c;
  ATN_TRY(c.height, r.u64());
  ATN_TRY(c.header_digest, r.hash());
  ATN_TRY(c.cert, crypto::QuorumCertificate::decode(r));
  return c;
}

void Block::encode(Writer& w) const {
  w.header(kTag, 1).u64(height).u64(view).u64(block_time).u32(proposer);
  w.u32(static_cast<uint32_t>(requests.size()));
  for (const auto& q : requests) q.encode(w);
  w.u32(static_cast<uint32_t>(certificates.size()));
  for (const auto& c : certificates) c.encode(w);
}

Result<Block> Block::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "block"));
  Block b;
  ATN_TRY(b.height, r.u64());
  ATN_TRY(b.view, r.u64());
  ATN_TRY(b.block_time, r.u64());
  ATN_TRY(b.proposer, r.u32());
  ATN_TRY(uint32_t n, r.count(8 + 8 + 4));
  if (n > kMaxRequestsPerBlock) {
    return make_error(Errc::kOversize, "block carries " + std::to_string(n) +
                                           " requests, the limit is " +
                                           std::to_string(kMaxRequestsPerBlock));
  }
  b.requests.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(Request q, Request::decode(r));
    b.requests.push_back(std::move(q));
  }
  ATN_TRY(uint32_t m, r.count(8 + 32 + 6));
  if (m > kMaxCertificatesPerBlock) {
    return make_error(Errc::kOversize, "block carries " + std::to_string(m) +
                                           " header certificates, the limit is " +
                                           std::to_string(kMaxCertificatesPerBlock));
  }
  b.certificates.reserve(m);
  for (uint32_t i = 0; i < m; ++i) {
    ATN_TRY(CertifiedHeader c, CertifiedHeader::decode(r));
    b.certificates.push_back(std::move(c));
  }
  return b;
}

Hash32 Block::digest() const {
  size_t est = 32;
  for (const auto& q : requests) est += q.payload.size() + 24;
  Writer w(est);
  encode(w);
  return hash_domain("attestnet/block", as_view(w.data()));
}

// ---- Envelope ----

void Envelope::encode(Writer& w) const {
  w.header(kTag, 1).u8(static_cast<uint8_t>(type)).u32(sender).u64(epoch).bytes(as_view(body));
  w.fixed(ByteView(sig.data(), sig.size()));
}

Bytes Envelope::encode() const {
  Writer w(body.size() + 80);
  encode(w);
  return std::move(w).take();
}

Result<Envelope> Envelope::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "protocol message"));
  Envelope e;
  ATN_TRY(uint8_t t, r.u8());
  if (t < 1 || t > kMaxMsgType) {
    return make_error(Errc::kBadValue, "unknown protocol message type " + std::to_string(t));
  }
  e.type = static_cast<MsgType>(t);
  ATN_TRY(e.sender, r.u32());
  ATN_TRY(e.epoch, r.u64());
  ATN_TRY(e.body, r.bytes());
  ATN_TRY(Bytes sig, r.fixed(64));
  std::copy(sig.begin(), sig.end(), e.sig.begin());
  return e;
}

Result<Envelope> Envelope::decode(ByteView in) {
  Reader r(in, kMaxMessageBytes);
  ATN_TRY(Envelope e, decode(r));
  ATN_CHECK(finish(r));
  return e;
}

Bytes signing_message(const std::string& chain_id, uint64_t epoch, MsgType type, ByteView body) {
  Writer w(body.size() + chain_id.size() + 24);
  w.header(kSignedTag, 1).str(chain_id).u64(epoch).u8(static_cast<uint8_t>(type)).fixed(body);
  return std::move(w).take();
}

Envelope sign_envelope(const crypto::SecretKey& key, ReplicaId sender, const std::string& chain_id,
                       uint64_t epoch, MsgType type, Bytes body) {
  Envelope e;
  e.type = type;
  e.sender = sender;
  e.epoch = epoch;
  e.body = std::move(body);
  e.sig = key.sign(as_view(signing_message(chain_id, epoch, type, as_view(e.body))));
  return e;
}

Bytes commit_vote_message(const std::string& chain_id, uint64_t epoch, View v, Seq height,
                          const Hash32& block_digest) {
  Vote vote{v, height, block_digest};
  return signing_message(chain_id, epoch, MsgType::kCommit, as_view(vote.encode()));
}

Bytes header_vote_message(const std::string& chain_id, uint64_t epoch, Seq height, View v,
                          const Hash32& header_digest) {
  HeaderVote hv{height, v, header_digest};
  return signing_message(chain_id, epoch, MsgType::kHeaderVote, as_view(hv.encode()));
}

Bytes HeaderVote::encode() const {
  Writer w(48);
  w.u64(height).u64(view).hash(header_digest);
  return std::move(w).take();
}

Result<HeaderVote> HeaderVote::decode(ByteView in) {
  Reader r(in);
  HeaderVote h;
  ATN_TRY(h.height, r.u64());
  ATN_TRY(h.view, r.u64());
  ATN_TRY(h.header_digest, r.hash());
  ATN_CHECK(r.finish());
  return h;
}

// ---- bodies ----

Bytes PrePrepare::encode() const {
  Writer w;
  w.u64(view).u64(seq);
  block.encode(w);
  return std::move(w).take();
}

Result<PrePrepare> PrePrepare::decode(ByteView in) {
  Reader r(in, kMaxMessageBytes);
  PrePrepare p;
  ATN_TRY(p.view, r.u64());
  ATN_TRY(p.seq, r.u64());
  ATN_TRY(p.block, Block::decode(r));
  ATN_CHECK(finish(r));
  return p;
}

Bytes Vote::encode() const {
  Writer w(48);
  w.u64(view).u64(seq).hash(digest);
  return std::move(w).take();
}

Result<Vote> Vote::decode(ByteView in) {
  Reader r(in);
  Vote v;
  ATN_TRY(v.view, r.u64());
  ATN_TRY(v.seq, r.u64());
  ATN_TRY(v.digest, r.hash());
  ATN_CHECK(finish(r));
  return v;
}

Bytes Checkpoint::encode() const {
  Writer w(40);
  w.u64(seq).hash(state_digest);
  return std::move(w).take();
}

Result<Checkpoint> Checkpoint::decode(ByteView in) {
  Reader r(in);
  Checkpoint c;
  ATN_TRY(c.seq, r.u64());
  ATN_TRY(c.state_digest, r.hash());
  ATN_CHECK(finish(r));
  return c;
}

void PreparedCertificate::encode(Writer& w) const {
  pre_prepare.encode(w);
  encode_envelopes(w, prepares);
}

Result<PreparedCertificate> PreparedCertificate::decode(Reader& r) {
  PreparedCertificate pc;
  ATN_TRY(pc.pre_prepare, Envelope::decode(r));
  ATN_TRY(pc.prepares, decode_envelopes(r));
  return pc;
}

Bytes ViewChange::encode() const {
  Writer w;
  w.u64(new_view).u64(stable_seq).hash(stable_digest);
  encode_envelopes(w, checkpoint_proof);
  w.u32(static_cast<uint32_t>(prepared.size()));
  for (const auto& pc : prepared) pc.encode(w);
  return std::move(w).take();
}

Result<ViewChange> ViewChange::decode(ByteView in) {
  Reader r(in, kMaxMessageBytes);
  ViewChange vc;
  ATN_TRY(vc.new_view, r.u64());
  ATN_TRY(vc.stable_seq, r.u64());
  ATN_TRY(vc.stable_digest, r.hash());
  ATN_TRY(vc.checkpoint_proof, decode_envelopes(r));
  ATN_TRY(uint32_t m, r.count(80));
  for (uint32_t i = 0; i < m; ++i) {
    ATN_TRY(PreparedCertificate pc, PreparedCertificate::decode(r));
    vc.prepared.push_back(std::move(pc));
  }
  ATN_CHECK(finish(r));
  return vc;
}

Bytes NewView::encode() const {
  Writer w;
  w.u64(view);
  encode_envelopes(w, view_changes);
  encode_envelopes(w, pre_prepares);
  return std::move(w).take();
}

Result<NewView> NewView::decode(ByteView in) {
  Reader r(in, kMaxMessageBytes);
  NewView nv;
  ATN_TRY(nv.view, r.u64());
  ATN_TRY(nv.view_changes, decode_envelopes(r));
  ATN_TRY(nv.pre_prepares, decode_envelopes(r));
  ATN_CHECK(finish(r));
  return nv;
}

Bytes StatusMsg::encode() const {
  Writer w(32);
  w.u64(view).boolean(in_view_change).u64(last_executed).u64(stable_seq);
  return std::move(w).take();
}

Result<StatusMsg> StatusMsg::decode(ByteView in) {
  Reader r(in);
  StatusMsg s;
  ATN_TRY(s.view, r.u64());
  ATN_TRY(s.in_view_change, r.boolean());
  ATN_TRY(s.last_executed, r.u64());
  ATN_TRY(s.stable_seq, r.u64());
  ATN_CHECK(finish(r));
  return s;
}

Bytes Complaint::encode() const {
  Writer w(8);
  w.u64(view);
  return std::move(w).take();
}

Result<Complaint> Complaint::decode(ByteView in) {
  Reader r(in);
  Complaint c;
  ATN_TRY(c.view, r.u64());
  ATN_CHECK(finish(r));
  return c;
}

Bytes StateRequest::encode() const {
  Writer w(8);
  w.u64(from_seq);
  return std::move(w).take();
}

Result<StateRequest> StateRequest::decode(ByteView in) {
  Reader r(in);
  StateRequest s;
  ATN_TRY(s.from_seq, r.u64());
  ATN_CHECK(finish(r));
  return s;
}

void CommittedBlock::encode(Writer& w) const {
  w.u64(view);
  block.encode(w);
  cert.encode(w);
}

Result<CommittedBlock> CommittedBlock::decode(Reader& r) {
  CommittedBlock c;
  ATN_TRY(c.view, r.u64());
  ATN_TRY(c.block, Block::decode(r));
  ATN_TRY(c.cert, crypto::QuorumCertificate::decode(r));
  return c;
}

Bytes StateReply::encode() const {
  Writer w;
  w.u32(static_cast<uint32_t>(blocks.size()));
  for (const auto& b : blocks) b.encode(w);
  w.boolean(stable_seq.has_value());
  if (stable_seq) {
    w.u64(*stable_seq);
    encode_envelopes(w, stable_proof);
  }
  return std::move(w).take();
}

Result<StateReply> StateReply::decode(ByteView in) {
  Reader r(in, kMaxMessageBytes);
  StateReply s;
  ATN_TRY(uint32_t n, r.count(8 + 23 + 7));
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(CommittedBlock b, CommittedBlock::decode(r));
    s.blocks.push_back(std::move(b));
  }
  ATN_TRY(bool has, r.boolean());
  if (has) {
    ATN_TRY(Seq seq, r.u64());
    s.stable_seq = seq;
    ATN_TRY(s.stable_proof, decode_envelopes(r));
  }
  ATN_CHECK(finish(r));
  return s;
}

}  // namespace attestnet::consensus
