// Genesis (the trust anchor) and the AttestationResponse a VM receives, with the light client
// that checks it offline: no network, only the genesis file.
//
//   Genesis            JSON for people (docs/ledger.md); canonical binary, tag 0x0307 v1:
//                      chain_id:str genesis_time:u64 n:u32 { name:str key[32] endpoint:str }*n
//                      checkpoint_interval:u64 epoch_length:u64
//                      hash = H("attestnet/genesis", encoding)
//   AttestationResponse tag 0x0306 v1:
//                      record:bytes record_hash[32] leaf_index:u64 header:bytes
//                      k:u32 proof[32]*k certificate:bytes
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "ledger/model.h"

namespace attestnet::ledger {

struct GenesisMember {
  std::string name;
  crypto::PublicKey public_key{};
  std::string endpoint;
  bool operator==(const GenesisMember&) const = default;
};

struct Genesis {
  static constexpr uint16_t kTag = 0x0307;
  std::string chain_id;
  uint64_t genesis_time = 0;
  std::vector<GenesisMember> members;
  uint64_t checkpoint_interval = 16;
  uint64_t epoch_length = 1000;

  Committee committee() const;  // the committee of epoch 0
  Bytes encode() const;
  Hash32 hash() const;
  nlohmann::json to_json() const;
  // Rejects missing fields, bad hex, duplicate keys, and committees that are not 3f+1 >= 4.
  static Result<Genesis> from_json(const nlohmann::json& j);
  bool operator==(const Genesis&) const = default;
};

struct AttestationResponse {
  static constexpr uint16_t kTag = 0x0306;
  AttestationRecord record;
  Hash32 record_hash{};
  uint64_t leaf_index = 0;
  BlockHeader header;
  std::vector<Hash32> inclusion_proof;
  HeaderCertificate certificate;

  Bytes encode(size_t committee_size) const;
  static Result<AttestationResponse> decode(ByteView in, size_t committee_size);
  nlohmann::json to_json(size_t committee_size) const;
  static Result<AttestationResponse> from_json(const nlohmann::json& j, size_t committee_size);
};

// The light client. Returns the verified record, or the first failure with its own code:
//   kWrongChain          the response is for another chain than the genesis
//   kCommitteeMismatch   the header names a committee the genesis does not lead to
//   kBelowThreshold / kUnknownSigner / kDuplicateSigner / kBadSignature   the certificate
//   kRecordMismatch      the record does not hash to the leaf the response proves
//   kProofMismatch / kBadValue   the inclusion proof does not lead to the header's log root
// Epoch hand-over chains (issue 5) are not implemented yet: a header from an epoch after 0 is
// refused with kCommitteeMismatch saying so.
// `verify` (optional) replaces crypto::verify for the certificate (a node's memo).
Result<AttestationRecord> verify_response(const AttestationResponse& resp, const Genesis& genesis,
                                          const crypto::VerifyFn& verify = {});

}  // namespace attestnet::ledger
