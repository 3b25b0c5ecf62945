#include "ledger/model.h"

#include <map>
#include <set>

#include "consensus/messages.h"
#include "core/hash.h"
#include "crypto/merkle.h"

namespace attestnet::ledger {
namespace {

Result<crypto::PublicKey> read_key(Reader& r) {
  ATN_TRY(Bytes b, r.fixed(32));
  crypto::PublicKey k;
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

}  // namespace

Bytes AttestationRecord::encode() const {
  Writer w;
  w.header(kTag, 1).hash(request_id).str(vm_id).str(platform);
  w.u32(static_cast<uint32_t>(measurements.size()));
  for (const auto& m : measurements) w.str(m.name).bytes(as_view(m.digest));
  w.fixed(ByteView(vm_public_key.data(), 32)).fixed(ByteView(vm_signature.data(), 64));
  w.u8(static_cast<uint8_t>(verdict)).str(policy_id).u32(policy_version);
  w.u32(static_cast<uint32_t>(claims.size()));
  for (const auto& c : claims) w.str(c.name).str(c.value);
  w.u32(static_cast<uint32_t>(reasons.size()));
  for (const auto& r : reasons) w.str(r);
  w.u64(timestamp);
  return std::move(w).take();
}

Result<AttestationRecord> AttestationRecord::decode(ByteView in) {
  Reader r(in, 1u << 20);
  AttestationRecord a;
  ATN_CHECK(r.header(kTag, 1, 1, "attestation record"));
  ATN_TRY(a.request_id, r.hash());
  ATN_TRY(a.vm_id, r.str());
  ATN_TRY(a.platform, r.str());
  ATN_TRY(uint32_t n, r.count(8));
  for (uint32_t i = 0; i < n; ++i) {
    Measurement m;
    ATN_TRY(m.name, r.str());
    ATN_TRY(m.digest, r.bytes());
    a.measurements.push_back(std::move(m));
  }
  ATN_TRY(a.vm_public_key, read_key(r));
  ATN_TRY(Bytes sig, r.fixed(64));
  std::copy(sig.begin(), sig.end(), a.vm_signature.begin());
  ATN_TRY(uint8_t verdict, r.u8());
  if (verdict > 3) {
    return make_error(Errc::kBadValue,
                      "verdict " + std::to_string(verdict) +
                          " is not one of none, affirming, warning, contraindicated");
  }
  a.verdict = static_cast<Verdict>(verdict);
  ATN_TRY(a.policy_id, r.str());
  ATN_TRY(a.policy_version, r.u32());
  ATN_TRY(uint32_t m, r.count(8));
  for (uint32_t i = 0; i < m; ++i) {
    Claim c;
    ATN_TRY(c.name, r.str());
    ATN_TRY(c.value, r.str());
    a.claims.push_back(std::move(c));
  }
  ATN_TRY(uint32_t k, r.count(4));
  for (uint32_t i = 0; i < k; ++i) {
    ATN_TRY(std::string reason, r.str());
    a.reasons.push_back(std::move(reason));
  }
  ATN_TRY(a.timestamp, r.u64());
  ATN_CHECK(r.finish());
  return a;
}

Hash32 AttestationRecord::leaf_hash() const {
  return crypto::merkle_leaf_hash(as_view(encode()));
}

void Committee::encode(Writer& w) const {
  w.header(kTag, 1).u64(epoch).u32(static_cast<uint32_t>(members.size()));
  for (const auto& k : members) w.fixed(ByteView(k.data(), k.size()));
  w.u32(static_cast<uint32_t>(excluded.size()));
  for (const auto& [k, until] : excluded) w.fixed(ByteView(k.data(), k.size())).u64(until);
}

Result<Committee> Committee::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "committee"));
  Committee c;
  ATN_TRY(c.epoch, r.u64());
  ATN_TRY(uint32_t n, r.count(32));
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(crypto::PublicKey k, read_key(r));
    c.members.push_back(k);
  }
  ATN_TRY(uint32_t m, r.count(40));
  for (uint32_t i = 0; i < m; ++i) {
    ATN_TRY(crypto::PublicKey k, read_key(r));
    ATN_TRY(uint64_t until, r.u64());
    c.excluded.push_back({k, until});
  }
  return c;
}

Hash32 Committee::hash() const {
  Writer w;
  encode(w);
  return hash_domain("attestnet/committee", as_view(w.data()));
}

Bytes BlockHeader::encode() const {
  Writer w(320);
  w.header(kTag, 1).str(chain_id).u64(height).u64(epoch).u64(view).hash(prev_hash);
  w.u64(log_size).hash(log_root).hash(state_root).hash(committee_hash).hash(next_committee_hash);
  w.u64(block_time).u32(proposer).hash(payload_digest);
  return std::move(w).take();
}

Result<BlockHeader> BlockHeader::decode(ByteView in) {
  Reader r(in, 4096);
  BlockHeader h;
  ATN_CHECK(r.header(kTag, 1, 1, "block header"));
  ATN_TRY(h.chain_id, r.str());
  ATN_TRY(h.height, r.u64());
  ATN_TRY(h.epoch, r.u64());
  ATN_TRY(h.view, r.u64());
  ATN_TRY(h.prev_hash, r.hash());
  ATN_TRY(h.log_size, r.u64());
  ATN_TRY(h.log_root, r.hash());
  ATN_TRY(h.state_root, r.hash());
  ATN_TRY(h.committee_hash, r.hash());
  ATN_TRY(h.next_committee_hash, r.hash());
  ATN_TRY(h.block_time, r.u64());
  ATN_TRY(h.proposer, r.u32());
  ATN_TRY(h.payload_digest, r.hash());
  ATN_CHECK(r.finish());
  return h;
}

Hash32 BlockHeader::hash() const {
  return hash_domain("attestnet/header", as_view(encode()));
}

Bytes certificate_message(const std::string& chain_id, uint64_t epoch, uint64_t view,
                          uint64_t height, const Hash32& header_hash) {
  return consensus::header_vote_message(chain_id, epoch, height, view, header_hash);
}

Bytes HeaderCertificate::encode(size_t committee_size) const {
  Bytes bitmap((committee_size + 7) / 8, 0);
  for (const auto& s : sigs.sigs) {
    if (s.signer < committee_size)
      bitmap[s.signer / 8] |= static_cast<uint8_t>(1u << (s.signer % 8));
  }
  Writer w;
  w.header(kTag, 1).bytes(as_view(bitmap));
  for (const auto& s : sigs.sigs) {
    if (s.signer < committee_size) w.fixed(ByteView(s.sig.data(), 64));
  }
  return std::move(w).take();
}

Result<HeaderCertificate> HeaderCertificate::decode(ByteView in, size_t committee_size) {
  Reader r(in, 1u << 16);
  ATN_CHECK(r.header(kTag, 1, 1, "header certificate"));
  ATN_TRY(Bytes bitmap, r.bytes());
  if (bitmap.size() != (committee_size + 7) / 8) {
    return make_error(Errc::kBadValue, "certificate bitmap has " + std::to_string(bitmap.size()) +
                                           " bytes; a committee of " +
                                           std::to_string(committee_size) + " needs " +
                                           std::to_string((committee_size + 7) / 8));
  }
  HeaderCertificate c;
  for (size_t i = 0; i < bitmap.size() * 8; ++i) {
    if (!(bitmap[i / 8] & (1u << (i % 8)))) continue;
    if (i >= committee_size) {
      return make_error(Errc::kUnknownSigner, "certificate bitmap names member " +
                                                  std::to_string(i) + " of a committee of " +
                                                  std::to_string(committee_size));
    }
    ATN_TRY(Bytes sig, r.fixed(64));
    crypto::Signature s;
    std::copy(sig.begin(), sig.end(), s.begin());
    c.sigs.sigs.push_back(crypto::QuorumSignature{static_cast<uint32_t>(i), s});
  }
  ATN_CHECK(r.finish());
  return c;
}

void sign_header(HeaderCertificate& cert, const BlockHeader& h, const crypto::SecretKey& key,
                 uint32_t index) {
  Bytes msg = certificate_message(h.chain_id, h.epoch, h.view, h.height, h.hash());
  cert.sigs.add(index, key.sign(as_view(msg)));
}

Status verify_header(const BlockHeader& h, const HeaderCertificate& cert, const Committee& c,
                     const crypto::VerifyFn& verify) {
  if (h.epoch != c.epoch) {
    return make_error(Errc::kCommitteeMismatch, "header " + std::to_string(h.height) +
                                                    " is of epoch " + std::to_string(h.epoch) +
                                                    ", the trusted committee is of epoch " +
                                                    std::to_string(c.epoch));
  }
  if (h.committee_hash != c.hash()) {
    return make_error(Errc::kCommitteeMismatch,
                      "header " + std::to_string(h.height) + " names committee " +
                          short_hex(h.committee_hash) + ", the trusted committee of epoch " +
                          std::to_string(c.epoch) + " is " + short_hex(c.hash()));
  }
  Bytes msg = certificate_message(h.chain_id, h.epoch, h.view, h.height, h.hash());
  Status st = crypto::verify_quorum(cert.sigs, c.members, c.threshold(), as_view(msg), verify);
  if (!st.ok()) {
    return make_error(st.error().code, "certificate of header " + std::to_string(h.height) + ": " +
                                           st.error().reason);
  }
  return {};
}

// ---- hand-overs

void HandOver::encode(Writer& w) const {
  w.header(kTag, 1).bytes(as_view(header.encode())).u32(static_cast<uint32_t>(signers));
  w.bytes(as_view(cert.encode(signers)));
  next.encode(w);
}

Result<HandOver> HandOver::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "epoch hand-over"));
  HandOver h;
  ATN_TRY(ByteView hdr, r.bytes_view());
  ATN_TRY(h.header, BlockHeader::decode(hdr));
  ATN_TRY(uint32_t n, r.u32());
  if (n == 0 || n > 1024) {
    return make_error(Errc::kBadValue, "hand-over names a committee of " + std::to_string(n));
  }
  h.signers = n;
  ATN_TRY(ByteView cert, r.bytes_view());
  ATN_TRY(h.cert, HeaderCertificate::decode(cert, n));
  ATN_TRY(h.next, Committee::decode(r));
  return h;
}

Result<Committee> follow_handovers(const std::string& chain_id, uint64_t epoch_length,
                                   const Committee& start, const std::vector<HandOver>& chain,
                                   uint64_t to_epoch, const crypto::VerifyFn& verify) {
  if (start.epoch > to_epoch) {
    return make_error(Errc::kCommitteeMismatch,
                      "the trusted committee is of epoch " + std::to_string(start.epoch) +
                          ", after the epoch " + std::to_string(to_epoch) + " to verify");
  }
  Committee cur = start;
  std::map<crypto::PublicKey, uint64_t> excluded(cur.excluded.begin(), cur.excluded.end());
  for (const HandOver& ho : chain) {
    const BlockHeader& h = ho.header;
    if (h.epoch < cur.epoch) continue;  // before the pinned checkpoint
    if (cur.epoch == to_epoch) break;
    std::string where = "hand-over of epoch " + std::to_string(h.epoch) + ": ";
    if (h.epoch != cur.epoch) {
      return make_error(Errc::kCommitteeMismatch, "the hand-over chain skips from epoch " +
                                                      std::to_string(cur.epoch) + " to " +
                                                      std::to_string(h.epoch));
    }
    if (h.chain_id != chain_id) {
      return make_error(Errc::kWrongChain, where + "the header is of chain \"" + h.chain_id + "\"");
    }
    if (epoch_length != 0 && h.height != (cur.epoch + 1) * epoch_length) {
      return make_error(Errc::kCommitteeMismatch,
                        where + "height " + std::to_string(h.height) +
                            " is not the last block of the epoch (" +
                            std::to_string((cur.epoch + 1) * epoch_length) + ")");
    }
    if (ho.signers != cur.members.size()) {
      return make_error(Errc::kCommitteeMismatch, where + "the certificate is for a committee of " +
                                                      std::to_string(ho.signers) + ", epoch " +
                                                      std::to_string(cur.epoch) + "'s has " +
                                                      std::to_string(cur.members.size()));
    }
    Status st = verify_header(h, ho.cert, cur, verify);
    if (!st.ok()) return make_error(st.error().code, where + st.error().reason);
    const Committee& next = ho.next;
    if (next.epoch != cur.epoch + 1) {
      return make_error(Errc::kCommitteeMismatch,
                        where + "the next committee is of epoch " + std::to_string(next.epoch));
    }
    if (h.next_committee_hash != next.hash()) {
      return make_error(Errc::kCommitteeMismatch,
                        where + "the next committee hashes to " + short_hex(next.hash()) +
                            ", the certified header names " + short_hex(h.next_committee_hash));
    }
    if (next.members.size() < 1 || (next.members.size() - 1) % 3 != 0) {
      return make_error(Errc::kCommitteeMismatch, where + "the next committee has " +
                                                      std::to_string(next.members.size()) +
                                                      " members, not 3f+1");
    }
    for (const auto& [k, until] : next.excluded) excluded[k] = std::max(excluded[k], until);
    std::set<crypto::PublicKey> distinct;
    for (const auto& m : next.members) {
      if (!distinct.insert(m).second) {
        return make_error(Errc::kDuplicateSigner, where + "the next committee repeats a member");
      }
      auto ex = excluded.find(m);
      if (ex != excluded.end() && ex->second > next.epoch) {
        return make_error(Errc::kCommitteeMismatch,
                          where + "the next committee seats " + to_hex(ByteView(m.data(), 8)) +
                              ", which is excluded for proven misbehaviour until epoch " +
                              std::to_string(ex->second));
      }
    }
    cur = next;
  }
  if (cur.epoch != to_epoch) {
    return make_error(Errc::kCommitteeMismatch, "the hand-over chain reaches epoch " +
                                                    std::to_string(cur.epoch) + "; epoch " +
                                                    std::to_string(to_epoch) + " is needed");
  }
  return cur;
}

}  // namespace attestnet::ledger
