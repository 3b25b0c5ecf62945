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
  for (const auto& m : members) c.members.push_back(m.public_key);
  return c;
}

Bytes Genesis::encode() const {
  Writer w;
  w.header(kTag, 1).str(chain_id).u64(genesis_time).u32(static_cast<uint32_t>(members.size()));
  for (const auto& m : members) {
    w.str(m.name).fixed(ByteView(m.public_key.data(), 32)).str(m.endpoint);
  }
  w.u64(checkpoint_interval).u64(epoch_length);
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
  j["params"] = {{"checkpoint_interval", checkpoint_interval}, {"epoch_length", epoch_length}};
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
  if (g.members.size() < 4 || (g.members.size() - 1) % 3 != 0) {
    return make_error(Errc::kBadValue, "the committee has " + std::to_string(g.members.size()) +
                                           " members; it must be 3f+1 with f >= 1 (4, 7, 10, ...)");
  }
  if (j.contains("params")) {
    const json& p = j["params"];
    if (p.contains("checkpoint_interval")) {
      ATN_TRY(g.checkpoint_interval, field<uint64_t>(p, "checkpoint_interval"));
    }
    if (p.contains("epoch_length")) {
      ATN_TRY(g.epoch_length, field<uint64_t>(p, "epoch_length"));
    }
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
  w.bytes(as_view(certificate.encode(committee_size)));
  return std::move(w).take();
}

Result<AttestationResponse> AttestationResponse::decode(ByteView in, size_t committee_size) {
  Reader r(in, 1u << 20);
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
  ATN_TRY(a.certificate, HeaderCertificate::decode(cert, committee_size));
  ATN_CHECK(r.finish());
  return a;
}

json AttestationResponse::to_json(size_t committee_size) const {
  json j;
  j["format"] = "attestnet-response/1";
  j["vm_id"] = record.vm_id;
  j["platform"] = record.platform;
  j["verdict"] = verdict_name(record.verdict);
  j["height"] = header.height;
  j["block_time"] = header.block_time;
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
                                          const crypto::VerifyFn& verify) {
  const BlockHeader& h = resp.header;
  if (h.chain_id != genesis.chain_id) {
    return make_error(Errc::kWrongChain, "the response is from chain \"" + h.chain_id +
                                             "\", the genesis is for \"" + genesis.chain_id + "\"");
  }
  if (h.epoch != 0) {
    return make_error(Errc::kCommitteeMismatch,
                      "the response was signed in epoch " + std::to_string(h.epoch) +
                          "; following epoch hand-overs from genesis is not implemented yet");
  }
  ATN_CHECK(verify_header(h, resp.certificate, genesis.committee(), verify));
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

}  // namespace attestnet::ledger
