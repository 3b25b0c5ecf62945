#include "ledger/prover.h"

#include "crypto/merkle.h"

namespace attestnet::ledger {

Result<Committee> committee_of_epoch(const ReplicaStore& store, const Genesis& genesis,
                                     uint64_t epoch) {
  if (epoch == 0) return genesis.committee();
  return store.committee(epoch);
}

Result<std::vector<HandOver>> handovers_to(const ReplicaStore& store, const Genesis& genesis,
                                           uint64_t epoch, uint64_t from_epoch) {
  std::vector<HandOver> out;
  uint64_t e_len = genesis.trust.epoch_length;
  for (uint64_t e = from_epoch; e < epoch; ++e) {
    uint64_t h = (e + 1) * e_len;
    HandOver ho;
    ATN_TRY(Committee cur, committee_of_epoch(store, genesis, e));
    ATN_TRY(ho.next, committee_of_epoch(store, genesis, e + 1));
    ATN_TRY(auto hf, store.header(h));
    ATN_TRY(ho.header, BlockHeader::decode(as_view(hf.first)));
    auto cert = store.certificate(h);
    if (!cert.ok()) {
      return make_error(Errc::kNotFound, "the hand-over certificate of epoch " + std::to_string(e) +
                                             " (header " + std::to_string(h) + ") is not here yet");
    }
    ho.cert.sigs = cert->second;
    ho.signers = cur.members.size();
    out.push_back(std::move(ho));
  }
  return out;
}

Result<AttestationResponse> build_response(const ReplicaStore& store, const Genesis& genesis,
                                           const Hash32& request_id, const crypto::VerifyFn& verify,
                                           uint64_t from_epoch, ResponseBasis* basis,
                                           const KnownRecord* known) {
  KnownRecord stored;
  if (!known) {
    ATN_TRY(auto found, store.record_by_request(request_id));
    stored = {found.first, std::move(found.second)};
    known = &stored;
  }
  AttestationResponse resp;
  resp.leaf_index = known->leaf;
  ATN_TRY(resp.record, AttestationRecord::decode(as_view(known->encoded)));
  if (resp.record.request_id != request_id)
    return make_error(Errc::kBadValue, "the record given for request " + to_hex(request_id) +
                                           " is another request's");
  resp.record_hash = crypto::merkle_leaf_hash(as_view(known->encoded));
  // Never hand out a response a relying party would reject.
  auto checked = [&]() -> Result<AttestationResponse> {
    std::optional<Committee> start;
    if (from_epoch > 0) {
      ATN_TRY(Committee c, committee_of_epoch(store, genesis, from_epoch));
      start = std::move(c);
    }
    auto ok = verify_response(resp, genesis, verify, start ? &*start : nullptr);
    if (!ok.ok()) {
      return make_error(ok.error().code,
                        "the stored ledger does not yield a valid response: " + ok.error().reason);
    }
    return resp;
  };
  const uint64_t newest = store.highest_header(), certificates = store.certificates_written();
  if (basis && newest > 0 && basis->newest == newest && basis->certificates == certificates &&
      basis->from_epoch == from_epoch && basis->header.log_size > resp.leaf_index) {
    resp.header = basis->header;
    resp.certificate = basis->certificate;
    resp.handovers = basis->handovers;
    ATN_TRY(resp.inclusion_proof, store.inclusion_proof(resp.leaf_index, resp.header.log_size));
    return checked();
  }
  // The newest header with a certificate whose log contains the record: a record has an
  // inclusion proof into any later header.
  for (uint64_t h = newest; h >= 1; --h) {
    auto cert = store.certificate(h);
    if (!cert.ok()) continue;
    ATN_TRY(auto hf, store.header(h));
    ATN_TRY(resp.header, BlockHeader::decode(as_view(hf.first)));
    if (resp.header.log_size <= resp.leaf_index) break;
    resp.certificate.sigs = cert->second;
    ATN_TRY(resp.inclusion_proof, store.inclusion_proof(resp.leaf_index, resp.header.log_size));
    if (resp.header.epoch < from_epoch)
      return make_error(Errc::kInvalidArgument,
                        "the newest certified header holding the record is of epoch " +
                            std::to_string(resp.header.epoch) + ", before from_epoch " +
                            std::to_string(from_epoch));
    auto chain = handovers_to(store, genesis, resp.header.epoch, from_epoch);
    if (!chain.ok()) {
      if (chain.error().code == Errc::kNotFound) continue;  // an older certified header may do
      return chain.error();
    }
    resp.handovers = std::move(chain).value();
    ATN_TRY(AttestationResponse out, checked());
    if (basis)
      *basis = {newest, certificates, from_epoch, out.header, out.certificate, out.handovers};
    return out;
  }
  return make_error(Errc::kNotFound, "no certified header contains record " +
                                         std::to_string(resp.leaf_index) + " yet");
}

}  // namespace attestnet::ledger
