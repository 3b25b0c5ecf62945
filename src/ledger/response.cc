#include "ledger/response.h"

#include <nlohmann/json.hpp>

#include <set>

#include "core/hash.h"
#include "crypto/merkle.h"

namespace attestnet::ledger {
namespace {

using json = nlohmann::json;

std::string hex32(const Hash32& h) {
  return to_hex(h);
}

Result<Hash32> parse_hash(const json& j, const char* what) {
  if (!j.is_string())
    return make_error(Errc::kBadValue, std::string(what) + " must be a hex string");
  auto b = from_hex(j.get<std::string>());
  if (!b || b->size() != 32) {
    return make_error(Errc::kBadValue, std::string(what) + " must be 64 hex digits");
  }
  Hash32 h;
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

Result<Bytes> parse_hex(const json& j, const char* what) {
  if (!j.is_string())
    return make_error(Errc::kBadValue, std::string(what) + " must be a hex string");
  auto b = from_hex(j.get<std::string>());
  if (!b) return make_error(Errc::kBadValue, std::string(what) + " is not valid hex");
  return *b;
}

template <typename T>
Result<T> field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) {
    return make_error(Errc::kBadValue, std::string("missing field \"") + name + "\"");
  }
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    return make_error(Errc::kBadValue, std::string("field \"") + name + "\" has the wrong type");
  }
}

}  // namespace

Committee Genesis::committee() const {
  Committee c;
  c.epoch = 0;
  for (size_t i = 0; i < members.size() && i < seats(); ++i)
    c.members.push_back(members[i].public_key);
  return c;
}

Bytes Genesis::encode() const {
  Writer w;
  w.header(kTag, 1).str(chain_id).u64(genesis_time).u32(static_cast<uint32_t>(members.size()));
  for (const auto& m : members) {
    w.str(m.name).fixed(ByteView(m.public_key.data(), 32)).str(m.endpoint);
  }
  const TrustParams& t = trust;
  w.u64(checkpoint_interval).u64(t.epoch_length).u32(static_cast<uint32_t>(seats()));
  w.u32(t.max_churn);
  w.u32(t.exclusion_epochs).u32(t.decay_ppm).u32(t.min_score_ppm).u32(t.outsider_weight_ppm);
  w.u32(t.endorsements_per_epoch).u32(t.swap_margin_ppm).u32(t.view_change_penalty_ppm);
  w.str(admission_policy);
  return std::move(w).take();
}

Hash32 Genesis::hash() const {
  return hash_domain("attestnet/genesis", as_view(encode()));
}

json Genesis::to_json() const {
  json j;
  j["chain_id"] = chain_id;
  j["genesis_time"] = genesis_time;
  j["members"] = json::array();
  for (const auto& m : members) {
    j["members"].push_back({{"name", m.name},
                            {"public_key", to_hex(ByteView(m.public_key.data(), 32))},
                            {"endpoint", m.endpoint}});
  }
  j["params"] = {{"checkpoint_interval", checkpoint_interval},
                 {"epoch_length", trust.epoch_length},
                 {"committee_size", trust.committee_size},
                 {"max_churn", trust.max_churn},
                 {"exclusion_epochs", trust.exclusion_epochs},
                 {"decay_ppm", trust.decay_ppm},
                 {"min_score_ppm", trust.min_score_ppm},
                 {"outsider_weight_ppm", trust.outsider_weight_ppm},
                 {"endorsements_per_epoch", trust.endorsements_per_epoch},
                 {"swap_margin_ppm", trust.swap_margin_ppm},
                 {"view_change_penalty_ppm", trust.view_change_penalty_ppm}};
  if (!admission_policy.empty()) j["admission_policy"] = json::parse(admission_policy);
  j["hash"] = hex32(hash());
  return j;
}

Result<Genesis> Genesis::from_json(const json& j) {
  Genesis g;
  ATN_TRY(g.chain_id, field<std::string>(j, "chain_id"));
  if (g.chain_id.empty()) return make_error(Errc::kBadValue, "chain_id is empty");
  ATN_TRY(g.genesis_time, field<uint64_t>(j, "genesis_time"));
  ATN_TRY(json members, field<json>(j, "members"));
  if (!members.is_array()) return make_error(Errc::kBadValue, "\"members\" must be an array");
  std::set<crypto::PublicKey> seen;
  for (const auto& m : members) {
    GenesisMember gm;
    ATN_TRY(gm.name, field<std::string>(m, "name"));
    ATN_TRY(json pk, field<json>(m, "public_key"));
    ATN_TRY(Bytes key, parse_hex(pk, "public_key"));
    if (key.size() != 32) {
      return make_error(Errc::kBadValue, "member \"" + gm.name + "\": public_key must be 32 bytes");
    }
    std::copy(key.begin(), key.end(), gm.public_key.begin());
    if (!seen.insert(gm.public_key).second) {
      return make_error(Errc::kDuplicateSigner, "member \"" + gm.name + "\" repeats another's key");
    }
    ATN_TRY(gm.endpoint, field<std::string>(m, "endpoint"));
    g.members.push_back(std::move(gm));
  }
  if (j.contains("params")) {
    const json& p = j["params"];
    if (p.contains("checkpoint_interval")) {
      ATN_TRY(g.checkpoint_interval, field<uint64_t>(p, "checkpoint_interval"));
    }
    if (p.contains("epoch_length")) {
      ATN_TRY(g.trust.epoch_length, field<uint64_t>(p, "epoch_length"));
    }
    auto u32 = [&](const char* name, uint32_t* out) -> Status {
      if (p.contains(name)) {
        ATN_TRY(*out, field<uint32_t>(p, name));
      }
      return {};
    };
    TrustParams& t = g.trust;
    ATN_CHECK(u32("committee_size", &t.committee_size));
    ATN_CHECK(u32("max_churn", &t.max_churn));
    ATN_CHECK(u32("exclusion_epochs", &t.exclusion_epochs));
    ATN_CHECK(u32("decay_ppm", &t.decay_ppm));
    ATN_CHECK(u32("min_score_ppm", &t.min_score_ppm));
    ATN_CHECK(u32("outsider_weight_ppm", &t.outsider_weight_ppm));
    ATN_CHECK(u32("endorsements_per_epoch", &t.endorsements_per_epoch));
    ATN_CHECK(u32("swap_margin_ppm", &t.swap_margin_ppm));
    ATN_CHECK(u32("view_change_penalty_ppm", &t.view_change_penalty_ppm));
  }
  if (j.contains("admission_policy")) {
    const json& ap = j["admission_policy"];
    if (!ap.is_object())
      return make_error(Errc::kBadValue,
                        "\"admission_policy\" must be a policy object (docs/evidence.md)");
    g.admission_policy = ap.dump();  // keys sorted: canonical
  }
  const TrustParams& t = g.trust;
  size_t seats = g.seats();
  if (seats < 4 || (seats - 1) % 3 != 0 || seats > g.members.size()) {
    return make_error(Errc::kBadValue,
                      "the committee has " + std::to_string(seats) + " seats among " +
                          std::to_string(g.members.size()) +
                          " registered nodes; it must be 3f+1 with f >= 1 (4, 7, 10, ...) and "
                          "no more than the nodes registered");
  }
  if (t.max_churn > (seats - 1) / 3) {
    return make_error(Errc::kBadValue, "max_churn " + std::to_string(t.max_churn) +
                                           " exceeds f = " + std::to_string((seats - 1) / 3) +
                                           ": consecutive committees would not share a quorum");
  }
  if (t.decay_ppm > 1000000 || t.min_score_ppm > 1000000 || t.outsider_weight_ppm > 1000000) {
    return make_error(Errc::kBadValue,
                      "decay_ppm, min_score_ppm and outsider_weight_ppm are "
                      "parts per million (at most 1000000)");
  }
  if (t.epoch_length != 0 && t.epoch_length % g.checkpoint_interval != 0) {
    return make_error(Errc::kBadValue,
                      "epoch_length must be a multiple of checkpoint_interval (an epoch ends on "
                      "a checkpoint)");
  }
  if (j.contains("hash")) {
    ATN_TRY(Hash32 claimed, parse_hash(j["hash"], "hash"));
    if (claimed != g.hash()) {
      return make_error(Errc::kRecordMismatch, "genesis \"hash\" is " + hex32(claimed) +
                                                   " but the contents hash to " + hex32(g.hash()));
    }
  }
  return g;
}

Bytes AttestationResponse::encode(size_t committee_size) const {
  Writer w;
  w.header(kTag, 1).bytes(as_view(record.encode())).hash(record_hash).u64(leaf_index);
  w.bytes(as_view(header.encode()));
  w.u32(static_cast<uint32_t>(inclusion_proof.size()));
  for (const auto& h : inclusion_proof) w.hash(h);
  size_t n = handovers.empty() ? committee_size : handovers.back().next.members.size();
  w.bytes(as_view(certificate.encode(n)));
  w.u32(static_cast<uint32_t>(handovers.size()));
  for (const auto& ho : handovers) ho.encode(w);
  return std::move(w).take();
}

Result<AttestationResponse> AttestationResponse::decode(ByteView in, size_t committee_size) {
  Reader r(in, 64u << 20);
  AttestationResponse a;
  ATN_CHECK(r.header(kTag, 1, 1, "attestation response"));
  ATN_TRY(ByteView rec, r.bytes_view());
  ATN_TRY(a.record, AttestationRecord::decode(rec));
  ATN_TRY(a.record_hash, r.hash());
  ATN_TRY(a.leaf_index, r.u64());
  ATN_TRY(ByteView hdr, r.bytes_view());
  ATN_TRY(a.header, BlockHeader::decode(hdr));
  ATN_TRY(uint32_t k, r.count(32));
  if (k > 64)
    return make_error(Errc::kOversize, "inclusion proof of " + std::to_string(k) + " hashes");
  for (uint32_t i = 0; i < k; ++i) {
    ATN_TRY(Hash32 h, r.hash());
    a.inclusion_proof.push_back(h);
  }
  ATN_TRY(ByteView cert, r.bytes_view());
  ATN_TRY(uint32_t h, r.count(64));
  for (uint32_t i = 0; i < h; ++i) {
    ATN_TRY(HandOver ho, HandOver::decode(r));
    a.handovers.push_back(std::move(ho));
  }
  size_t n = a.handovers.empty() ? committee_size : a.handovers.back().next.members.size();
  ATN_TRY(a.certificate, HeaderCertificate::decode(cert, n));
  ATN_CHECK(r.finish());
  return a;
}

json AttestationResponse::to_json_without_binary() const {
  json j;
  j["format"] = "attestnet-response/1";
  j["vm_id"] = record.vm_id;
  j["platform"] = record.platform;
  j["verdict"] = verdict_name(record.verdict);
  j["height"] = header.height;
  j["block_time"] = header.block_time;
  return j;
}

json AttestationResponse::to_json(size_t committee_size) const {
  json j = to_json_without_binary();
  // The authoritative content is the canonical binary form; the fields above are for people.
  j["binary"] = to_hex(as_view(encode(committee_size)));
  return j;
}

Result<AttestationResponse> AttestationResponse::from_json(const json& j, size_t committee_size) {
  ATN_TRY(std::string format, field<std::string>(j, "format"));
  if (format != "attestnet-response/1") {
    return make_error(Errc::kBadVersion,
                      "response format \"" + format + "\" is not attestnet-response/1");
  }
  ATN_TRY(json bin, field<json>(j, "binary"));
  ATN_TRY(Bytes b, parse_hex(bin, "binary"));
  return decode(as_view(b), committee_size);
}

Result<AttestationRecord> verify_response(const AttestationResponse& resp, const Genesis& genesis,
                                          const crypto::VerifyFn& verify,
                                          const Committee* checkpoint) {
  const BlockHeader& h = resp.header;
  if (h.chain_id != genesis.chain_id) {
    return make_error(Errc::kWrongChain, "the response is from chain \"" + h.chain_id +
                                             "\", the genesis is for \"" + genesis.chain_id + "\"");
  }
  ATN_TRY(Committee committee, follow_handovers(genesis.chain_id, genesis.trust.epoch_length,
                                                checkpoint ? *checkpoint : genesis.committee(),
                                                resp.handovers, h.epoch, verify));
  ATN_CHECK(verify_header(h, resp.certificate, committee, verify));
  Hash32 leaf = resp.record.leaf_hash();
  if (leaf != resp.record_hash) {
    return make_error(Errc::kRecordMismatch, "the record hashes to " + hex32(leaf) +
                                                 ", the response proves leaf " +
                                                 hex32(resp.record_hash));
  }
  std::vector<Bytes> proof;
  for (const auto& p : resp.inclusion_proof) proof.emplace_back(p.begin(), p.end());
  Status st = crypto::verify_inclusion(as_view(resp.record_hash), resp.leaf_index, h.log_size,
                                       proof, as_view(h.log_root));
  if (!st.ok()) {
    return make_error(st.error().code, "record " + std::to_string(resp.leaf_index) +
                                           " is not in the log of block " +
                                           std::to_string(h.height) + ": " + st.error().reason);
  }
  return resp.record;
}

json checkpoint_to_json(const std::string& chain_id, const Committee& c) {
  Writer w;
  c.encode(w);
  json j;
  j["format"] = "attestnet-checkpoint/1";
  j["chain_id"] = chain_id;
  j["epoch"] = c.epoch;
  j["committee_hash"] = hex32(c.hash());
  json members = json::array();
  for (const auto& m : c.members) members.push_back(to_hex(ByteView(m.data(), m.size())));
  j["members"] = members;
  j["committee"] = to_hex(as_view(w.data()));
  return j;
}

Result<Committee> checkpoint_from_json(const json& j, const std::string& chain_id) {
  ATN_TRY(std::string format, field<std::string>(j, "format"));
  if (format != "attestnet-checkpoint/1") {
    return make_error(Errc::kBadVersion,
                      "checkpoint format \"" + format + "\" is not attestnet-checkpoint/1");
  }
  ATN_TRY(std::string chain, field<std::string>(j, "chain_id"));
  if (chain != chain_id) {
    return make_error(Errc::kWrongChain, "the checkpoint is for chain \"" + chain +
                                             "\", the genesis is for \"" + chain_id + "\"");
  }
  ATN_TRY(json hex, field<json>(j, "committee"));
  ATN_TRY(Bytes b, parse_hex(hex, "committee"));
  Reader r(as_view(b));
  ATN_TRY(Committee c, Committee::decode(r));
  ATN_CHECK(r.finish());
  return c;
}

json checkpoint_proof_to_json(const std::string& chain_id, const Committee& c,
                              const std::vector<HandOver>& chain) {
  json j = checkpoint_to_json(chain_id, c);
  Writer w;
  w.u32(static_cast<uint32_t>(chain.size()));
  for (const auto& h : chain) h.encode(w);
  j["handovers"] = to_hex(as_view(w.data()));
  return j;
}

Result<Committee> checkpoint_from_proof(const json& j, const Genesis& genesis,
                                        const crypto::VerifyFn& verify) {
  ATN_TRY(Committee claimed, checkpoint_from_json(j, genesis.chain_id));
  ATN_TRY(json hex, field<json>(j, "handovers"));
  ATN_TRY(Bytes b, parse_hex(hex, "handovers"));
  Reader r(as_view(b), 256u << 20);
  ATN_TRY(uint32_t n, r.count(64));
  if (n != claimed.epoch)
    return make_error(Errc::kBadValue, "a checkpoint of epoch " + std::to_string(claimed.epoch) +
                                           " needs " + std::to_string(claimed.epoch) +
                                           " hand-overs from genesis; the proof has " +
                                           std::to_string(n));
  std::vector<HandOver> chain;
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(HandOver h, HandOver::decode(r));
    chain.push_back(std::move(h));
  }
  ATN_CHECK(r.finish());
  ATN_TRY(Committee proven, follow_handovers(genesis.chain_id, genesis.trust.epoch_length,
                                             genesis.committee(), chain, claimed.epoch, verify));
  if (proven.hash() != claimed.hash())
    return make_error(Errc::kCommitteeMismatch,
                      "the hand-overs from genesis lead to another committee for epoch " +
                          std::to_string(claimed.epoch) + " than the checkpoint names");
  return proven;
}

}  // namespace attestnet::ledger
