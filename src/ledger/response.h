// Genesis (the trust anchor) and the AttestationResponse a VM receives, with the light client
// that checks it offline: no network, only the genesis file.
//
//   Genesis            JSON for people (docs/ledger.md); canonical binary, tag 0x0307 v1:
//                      chain_id:str genesis_time:u64 n:u32 { name:str key[32] endpoint:str }*n
//                      checkpoint_interval:u64 epoch_length:u64 committee_size:u32
//                      max_churn:u32 exclusion_epochs:u32 decay_ppm:u32 min_score_ppm:u32
//                      outsider_weight_ppm:u32 endorsements_per_epoch:u32 swap_margin_ppm:u32
//                      view_change_penalty_ppm:u32 admission_policy:str
//                      admission_policy is the canonical JSON of the node-admission policy (the
//                      policy format of docs/evidence.md) a NodeJoin's evidence must satisfy;
//                      empty: the network admits no nodes after genesis
//                      members are the registered nodes; the first committee_size of them
//                      form epoch 0's committee (docs/trust.md)
//                      hash = H("attestnet/genesis", encoding)
//   AttestationResponse tag 0x0306 v1:
//                      record:bytes record_hash[32] leaf_index:u64 header:bytes
//                      k:u32 proof[32]*k certificate:bytes h:u32 HandOver*h
//                      (the certificate's bitmap is sized for the header's committee: the last
//                      hand-over's next committee, or the genesis committee without any)
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

// The trust model's parameters (docs/reputation.md explains each; state/trust.h uses them).
struct TrustParams {
  uint64_t epoch_length = 0;              // E blocks per epoch; 0: the genesis committee forever
  uint32_t committee_size = 0;            // N seats (3f+1); 0: every registered node
  uint32_t max_churn = 1;                 // seats that may change hands per epoch by choice (<= f)
  uint32_t exclusion_epochs = 8;          // M: epochs a proven offender may not sit
  uint32_t decay_ppm = 500000;            // weight of the previous score in the moving average
  uint32_t min_score_ppm = 200000;        // eligible for a seat at or above
  uint32_t outsider_weight_ppm = 900000;  // best epoch score for endorsing (members reach 1e6)
  uint32_t endorsements_per_epoch = 4;    // endorsements of distinct heights for full credit
  uint32_t swap_margin_ppm = 50000;  // a candidate replaces a sitting member only this far ahead
  uint32_t view_change_penalty_ppm = 250000;  // per view a member failed as primary
  bool operator==(const TrustParams&) const = default;
};

struct Genesis {
  static constexpr uint16_t kTag = 0x0307;
  std::string chain_id;
  uint64_t genesis_time = 0;
  std::vector<GenesisMember> members;  // registered nodes; the first committee_size sit first
  uint64_t checkpoint_interval = 16;
  TrustParams trust;
  std::string admission_policy;  // canonical JSON; empty: no admission after genesis

  Committee committee() const;  // the committee of epoch 0
  size_t seats() const { return trust.committee_size ? trust.committee_size : members.size(); }
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
  std::vector<HandOver> handovers;  // epochs 0 .. header.epoch-1 (or from a checkpoint)

  // committee_size: the genesis committee's (used when there are no hand-overs).
  Bytes encode(size_t committee_size) const;
  static Result<AttestationResponse> decode(ByteView in, size_t committee_size);
  nlohmann::json to_json(size_t committee_size) const;
  // to_json without its "binary" member (whose value is to_hex(encode(committee_size))).
  nlohmann::json to_json_without_binary() const;
  static Result<AttestationResponse> from_json(const nlohmann::json& j, size_t committee_size);
};

// The light client. Returns the verified record, or the first failure with its own code:
//   kWrongChain          the response is for another chain than the genesis
//   kCommitteeMismatch   the header names a committee the genesis does not lead to
//   kBelowThreshold / kUnknownSigner / kDuplicateSigner / kBadSignature   the certificate
//   kRecordMismatch      the record does not hash to the leaf the response proves
//   kProofMismatch / kBadValue   the inclusion proof does not lead to the header's log root
// The header's committee is found by following the response's hand-overs (follow_handovers)
// from the genesis committee, or from `checkpoint` when the relying party pinned one.
// `verify` (optional) replaces crypto::verify for the certificate (a node's memo).
Result<AttestationRecord> verify_response(const AttestationResponse& resp, const Genesis& genesis,
                                          const crypto::VerifyFn& verify = {},
                                          const Committee* checkpoint = nullptr);

// A pinned checkpoint (attestnet verify --checkpoint): a committee the relying party trusts,
// JSON {"format":"attestnet-checkpoint/1","chain_id","epoch","committee":hex}.
nlohmann::json checkpoint_to_json(const std::string& chain_id, const Committee& c);
Result<Committee> checkpoint_from_json(const nlohmann::json& j, const std::string& chain_id);

// A checkpoint with its proof (GET /v1/checkpoint): the checkpoint JSON above plus
// "handovers": hex of u32 count | HandOver*, the hand-overs of epochs 0 .. epoch-1. A relying
// party checks it ONCE from genesis (checkpoint_from_proof) and then pins the committee, instead
// of trusting the node that served it.
nlohmann::json checkpoint_proof_to_json(const std::string& chain_id, const Committee& c,
                                        const std::vector<HandOver>& chain);
// Follows the hand-overs from the genesis committee; returns the committee they lead to, which
// must be the one the checkpoint names (kCommitteeMismatch otherwise).
Result<Committee> checkpoint_from_proof(const nlohmann::json& j, const Genesis& genesis,
                                        const crypto::VerifyFn& verify = {});

}  // namespace attestnet::ledger
