// Building an AttestationResponse from a replica's store: the record for a request id, the
// newest certified header, and the record's inclusion proof into that header's log. The result
// is checked with verify_response against the genesis before it is returned.
#pragma once

#include "ledger/response.h"
#include "ledger/store.h"

namespace attestnet::ledger {

// The committee of `epoch` as the store holds it (genesis's for epoch 0).
Result<Committee> committee_of_epoch(const ReplicaStore& store, const Genesis& genesis,
                                     uint64_t epoch);
// The hand-overs of epochs from_epoch .. epoch-1 (kNotFound while a certificate is missing).
Result<std::vector<HandOver>> handovers_to(const ReplicaStore& store, const Genesis& genesis,
                                           uint64_t epoch, uint64_t from_epoch = 0);

// `verify`: as for verify_response (a node passes its memo: one header certificate is checked
// once for all the responses it covers). `from_epoch`: the hand-overs start there, for a relying
// party that pinned that epoch's committee (attestnet verify --checkpoint); kInvalidArgument when
// the newest certified header is older than that epoch.
//
// `basis`, when given, carries what one call found for the next: the newest certified header,
// its certificate and its hand-overs, read and decoded once for all the responses of a block
// (a node answers a block's requests together; with epochs, each response's hand-overs cost two
// reads per epoch). It is used while the store has taken no header and no certificate since it
// was found, for the same from_epoch, and for records that header's log holds; otherwise it is
// found again.
struct ResponseBasis {
  uint64_t newest = 0;        // the store's highest_header() when found; 0: nothing yet
  uint64_t certificates = 0;  // the store's certificates_written() when found
  uint64_t from_epoch = 0;
  BlockHeader header;
  HeaderCertificate certificate;
  std::vector<HandOver> handovers;
};
// A record the caller already holds (its leaf index and encoding, as the node keeps them for
// its waiting clients when it executes their block): not read back from the store.
struct KnownRecord {
  uint64_t leaf = 0;
  Bytes encoded;
};
Result<AttestationResponse> build_response(const ReplicaStore& store, const Genesis& genesis,
                                           const Hash32& request_id,
                                           const crypto::VerifyFn& verify = {},
                                           uint64_t from_epoch = 0, ResponseBasis* basis = nullptr,
                                           const KnownRecord* known = nullptr);

}  // namespace attestnet::ledger
