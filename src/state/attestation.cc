#include "state/attestation.h"

#include <algorithm>

#include "core/hash.h"
#include "evidence/binding.h"
#include "evidence/sim/sim.h"

namespace attestnet::state {

void AttestationRequest::body(Writer& w) const {
  w.header(kTag, 1).str(vm_id).str(platform).bytes(as_view(evidence));
  w.hash(freshness_anchor).fixed(ByteView(vm_public_key.data(), vm_public_key.size()));
}

Hash32 AttestationRequest::request_id() const {
  Writer w(evidence.size() + 256);
  body(w);
  return hash_domain("attestnet/attestation-request", as_view(w.data()));
}

Hash32 AttestationRequest::binding() const {
  return evidence::evidence_binding(freshness_anchor, vm_public_key);
}

Bytes AttestationRequest::encode() const {
  Writer w(evidence.size() + 256);
  body(w);
  w.fixed(ByteView(vm_signature.data(), vm_signature.size()));
  return std::move(w).take();
}

Result<AttestationRequest> AttestationRequest::decode(ByteView in) {
  Reader r(in, 16u << 20);
  ATN_CHECK(r.header(kTag, 1, 1, "AttestationRequest"));
  AttestationRequest q;
  ATN_TRY(q.vm_id, r.str());
  ATN_TRY(q.platform, r.str());
  ATN_TRY(q.evidence, r.bytes());
  ATN_TRY(q.freshness_anchor, r.hash());
  ATN_TRY(Bytes pk, r.fixed(32));
  std::copy(pk.begin(), pk.end(), q.vm_public_key.begin());
  ATN_TRY(Bytes sig, r.fixed(64));
  std::copy(sig.begin(), sig.end(), q.vm_signature.begin());
  ATN_CHECK(r.finish());
  if (q.vm_id.empty() || q.vm_id.size() > 256)
    return make_error(Errc::kBadValue, "vm_id must be 1..256 bytes");
  return q;
}

Status AttestationRequest::verify_signature(const crypto::VerifyFn* verify) const {
  Hash32 id = request_id();
  bool ok = verify ? (*verify)(vm_public_key, as_view(id), vm_signature)
                   : crypto::verify(vm_public_key, as_view(id), vm_signature);
  if (!ok)
    return make_error(Errc::kBadSignature,
                      "the request's VM signature does not verify with its ephemeral key");
  return {};
}

AttestationRequest AttestationRequest::make(const crypto::SecretKey& vm_key, std::string vm_id,
                                            std::string platform, Bytes evidence,
                                            const Hash32& anchor) {
  AttestationRequest q;
  q.vm_id = std::move(vm_id);
  q.platform = std::move(platform);
  q.evidence = std::move(evidence);
  q.freshness_anchor = anchor;
  q.vm_public_key = vm_key.public_key();
  Hash32 id = q.request_id();
  q.vm_signature = vm_key.sign(as_view(id));
  return q;
}

// --- MemoryLedgerView ---

MemoryLedgerView::MemoryLedgerView(const Hash32& genesis_hash, size_t window)
    : genesis_(genesis_hash), window_(window) {}

bool MemoryLedgerView::is_recent_anchor(const Hash32& anchor) const {
  // Genesis stays an anchor until the chain is longer than the window.
  if (anchor == genesis_ && recent_.size() < window_) return true;
  return recent_set_.count(anchor) > 0;
}

policy::VmState MemoryLedgerView::vm_state(const std::string& vm_id) const {
  if (!load_) {
    auto it = vms_.find(vm_id);
    return it == vms_.end() ? policy::VmState{} : it->second;
  }
  return entry(vm_id);
}

policy::VmState& MemoryLedgerView::entry(const std::string& vm_id) const {
  auto it = vms_.find(vm_id);
  if (it != vms_.end()) return it->second;
  if (auto old = older_vms_.extract(vm_id)) return vms_.insert(std::move(old)).position->second;
  policy::VmState st = load_ ? load_(vm_id) : policy::VmState{};
  return vms_.emplace(vm_id, std::move(st)).first->second;
}

void MemoryLedgerView::forget_unused(size_t keep) {
  if (!load_ || vms_.size() < std::max<size_t>(keep / 2, 1)) return;
  older_vms_ = std::move(vms_);
  vms_.clear();
}

void MemoryLedgerView::note_header(const Hash32& h) {
  recent_.push_back(h);
  recent_set_.insert(h);
  while (recent_.size() > window_) {
    recent_set_.erase(recent_set_.find(recent_.front()));
    recent_.pop_front();
  }
}

void MemoryLedgerView::fold_record(policy::VmState& st, const ledger::AttestationRecord& r) {
  if (r.verdict == policy::Verdict::kContraindicated) return;
  for (const auto& c : r.claims) {
    try {
      if (c.name == "tpm2.clock") st.last_clock = std::stoull(c.value);
      if (c.name == "tpm2.reset_count")
        st.last_reset_count = static_cast<uint32_t>(std::stoul(c.value));
    } catch (...) {
    }
  }
}

void MemoryLedgerView::note_record(const ledger::AttestationRecord& r) {
  if (r.verdict == policy::Verdict::kContraindicated) return;
  fold_record(entry(r.vm_id), r);
}

// --- AttestationApp ---

AttestationApp::AttestationApp(std::shared_ptr<const policy::Policy> policy)
    : policy_(std::move(policy)) {}

Status AttestationApp::validate(const consensus::Request& q) const {
  ATN_TRY(AttestationRequest r, AttestationRequest::decode(as_view(q.payload)));
  const crypto::VerifyFn* v = verify_ ? &verify_ : nullptr;
  ATN_CHECK(r.verify_signature(v));
  policy::AppraisalInput in;
  in.platform = r.platform;
  in.evidence = as_view(r.evidence);
  in.ak_cache = &ak_cache_;
  in.ed25519 = v;
  policy::prewarm(in);
  return {};
}

ledger::AttestationRecord AttestationApp::execute(const consensus::Request& q,
                                                  uint64_t block_time_ms,
                                                  const LedgerView& view) const {
  ledger::AttestationRecord rec;
  rec.request_id = q.id();
  rec.timestamp = block_time_ms;
  if (policy_) {
    rec.policy_id = policy_->id;
    rec.policy_version = policy_->version;
  }
  auto req = AttestationRequest::decode(as_view(q.payload));
  if (!req.ok()) {
    rec.vm_id = "client-" + std::to_string(q.client_id);
    rec.verdict = policy::Verdict::kContraindicated;
    rec.reasons = {"request: " + req.error().reason};
    return rec;
  }
  rec.vm_id = req->vm_id;
  rec.platform = req->platform;
  rec.vm_public_key = req->vm_public_key;
  rec.vm_signature = req->vm_signature;
  const crypto::VerifyFn* v = verify_ ? &verify_ : nullptr;
  if (auto st = req->verify_signature(v); !st.ok()) {
    rec.verdict = policy::Verdict::kContraindicated;
    rec.reasons = {"request: " + st.error().reason};
    return rec;
  }
  policy::VmState vm = view.vm_state(req->vm_id);
  Hash32 b = req->binding();
  policy::AppraisalInput in;
  in.platform = req->platform;
  in.evidence = as_view(req->evidence);
  in.expected_binding = Bytes(b.begin(), b.end());
  in.vm = &vm;
  in.at_unix = static_cast<int64_t>(block_time_ms / 1000);
  in.ak_cache = &ak_cache_;
  in.chain_cache = &chain_cache_;
  in.ed25519 = v;
  policy::AppraisalResult a = policy::appraise(policy_.get(), in);
  if (!view.is_recent_anchor(req->freshness_anchor)) {
    a.verdict = policy::Verdict::kContraindicated;
    a.reasons.insert(a.reasons.begin(),
                     "freshness: the anchor " + to_hex(req->freshness_anchor) +
                         " is not a recent block of this chain: the evidence may be old");
  }
  rec.verdict = a.verdict;
  for (auto& m : a.measurements) rec.measurements.push_back({m.name, std::move(m.digest)});
  for (auto& c : a.claims) rec.claims.push_back({c.name, std::move(c.value)});
  for (const auto& [k, v] : a.trust_vector)
    rec.claims.push_back({"ar4si." + k, policy::verdict_name(v)});
  rec.reasons = std::move(a.reasons);
  return rec;
}

}  // namespace attestnet::state
