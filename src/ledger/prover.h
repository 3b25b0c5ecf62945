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
Result<AttestationResponse> build_response(const ReplicaStore& store, const Genesis& genesis,
                                           const Hash32& request_id,
                                           const crypto::VerifyFn& verify = {},
                                           uint64_t from_epoch = 0);

}  // namespace attestnet::ledger
