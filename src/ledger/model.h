// The ledger's data model (DESIGN.md §3): attestation records, block headers, the certificate
// that signs a header, the committee and the genesis trust anchor. Pure values with canonical
// encodings (core/codec.h); hashes are domain-separated SHA-256.
//
//   AttestationRecord  tag 0x0301 v1
//     request_id[32] vm_id:str platform:str
//     n:u32 { name:str digest:bytes }*n              measurements by component
//     vm_public_key[32] vm_signature[64]
//     verdict:u8 policy_id:str policy_version:u32
//     m:u32 { name:str value:str }*m                  claims
//     k:u32 { reason:str }*k                          a reason for every failed rule
//     timestamp:u64                                   block time, ms since the Unix epoch
//   leaf hash = RFC 9162 leaf hash of the encoding; all records since genesis form ONE log.
//
//   BlockHeader        tag 0x0302 v1
//     chain_id:str height:u64 epoch:u64 view:u64 prev_hash[32]
//     log_size:u64 log_root[32] state_root[32] committee_hash[32] next_committee_hash[32]
//     block_time:u64 proposer:u32 payload_digest[32]
//     (view is reserved and 0: a block may commit in different views at different replicas)
//   hash = H("attestnet/header", encoding)
//
//   Certificate message  exactly what replicas sign in a HeaderVote (consensus/messages.h):
//                        0x0202 v1 | chain_id:str | epoch:u64 | type 11 | height:u64 |
//                        view:u64 | header_hash[32]
//   HeaderCertificate    tag 0x0304 v1 | bitmap:bytes (ceil(n/8), bit i = member i signed) |
//                        signature[64] per set bit, in member order
//   The message is fixed per block so a threshold signature can later replace the bitmap and
//   signatures without changing what is signed.
#pragma once

#include <string>
#include <vector>

#include "core/codec.h"
#include "crypto/ed25519.h"
#include "crypto/quorum.h"
#include "policy/policy.h"

namespace attestnet::ledger {

// The record's verdict is the appraisal's (AR4SI tiers, policy/policy.h).
using Verdict = policy::Verdict;
using policy::verdict_name;

struct Measurement {
  std::string name;
  Bytes digest;
  bool operator==(const Measurement&) const = default;
};
struct Claim {
  std::string name;
  std::string value;
  bool operator==(const Claim&) const = default;
};

struct AttestationRecord {
  static constexpr uint16_t kTag = 0x0301;
  Hash32 request_id{};
  std::string vm_id;
  std::string platform;
  std::vector<Measurement> measurements;
  crypto::PublicKey vm_public_key{};
  crypto::Signature vm_signature{};
  Verdict verdict = Verdict::kNone;
  std::string policy_id;
  uint32_t policy_version = 0;
  std::vector<Claim> claims;
  std::vector<std::string> reasons;
  uint64_t timestamp = 0;

  Bytes encode() const;
  static Result<AttestationRecord> decode(ByteView in);
  Hash32 leaf_hash() const;
  bool operator==(const AttestationRecord&) const = default;
};

struct Committee {
  static constexpr uint16_t kTag = 0x0305;
  uint64_t epoch = 0;
  std::vector<crypto::PublicKey> members;
  // Nodes with a proven misbehaviour and the first epoch they may sit again: a hand-over that
  // seats one of them before then is forged (state/trust.h).
  std::vector<std::pair<crypto::PublicKey, uint64_t>> excluded;
  size_t f() const { return members.empty() ? 0 : (members.size() - 1) / 3; }
  size_t threshold() const { return 2 * f() + 1; }
  // tag v1 epoch n keys m {key until}*m; hash = H("attestnet/committee", encoding)
  void encode(Writer& w) const;
  static Result<Committee> decode(Reader& r);
  Hash32 hash() const;
  bool operator==(const Committee&) const = default;
};

struct BlockHeader {
  static constexpr uint16_t kTag = 0x0302;
  std::string chain_id;
  uint64_t height = 0;
  uint64_t epoch = 0;
  uint64_t view = 0;  // reserved, always 0: the commit view is not the same at every replica
  Hash32 prev_hash{};
  uint64_t log_size = 0;
  Hash32 log_root{};
  Hash32 state_root{};
  Hash32 committee_hash{};
  Hash32 next_committee_hash{};
  uint64_t block_time = 0;
  uint32_t proposer = 0;
  Hash32 payload_digest{};  // the consensus block (its requests) this header executes

  Bytes encode() const;
  static Result<BlockHeader> decode(ByteView in);
  Hash32 hash() const;
  bool operator==(const BlockHeader&) const = default;
};

Bytes certificate_message(const std::string& chain_id, uint64_t epoch, uint64_t view,
                          uint64_t height, const Hash32& header_hash);

struct HeaderCertificate {
  static constexpr uint16_t kTag = 0x0304;
  crypto::QuorumCertificate sigs;  // signer indices + signatures; encoded as a bitmap

  Bytes encode(size_t committee_size) const;
  static Result<HeaderCertificate> decode(ByteView in, size_t committee_size);
};

// Signs the header's certificate message as committee member `index`.
void sign_header(HeaderCertificate& cert, const BlockHeader& h, const crypto::SecretKey& key,
                 uint32_t index);
Status verify_header(const BlockHeader& h, const HeaderCertificate& cert, const Committee& c,
                     const crypto::VerifyFn& verify = {});

// The hand-over certificate of an epoch (DESIGN.md §5): the header of epoch e's last block,
// certified by committee e, and committee e+1, whose hash that header names. A light client
// that trusts committee e learns committee e+1 from it.
//   HandOver  tag 0x0308 v1 | header:bytes signers:u32 (the size of committee e)
//             certificate:bytes Committee(e+1)
struct HandOver {
  static constexpr uint16_t kTag = 0x0308;
  BlockHeader header;
  size_t signers = 0;
  HeaderCertificate cert;
  Committee next;
  void encode(Writer& w) const;
  static Result<HandOver> decode(Reader& r);
};

// Walks `chain` from `start` (genesis's committee, or a checkpoint the relying party pinned) to
// the committee of `to_epoch`. Hand-overs before start's epoch are skipped. Refuses, with the
// epoch concerned: a skipped epoch, a header not at the epoch's end, a certificate not by the
// current committee or below its threshold, a next committee other than the header names or not
// 3f+1, and a committee that seats a node excluded for proven misbehaviour.
Result<Committee> follow_handovers(const std::string& chain_id, uint64_t epoch_length,
                                   const Committee& start, const std::vector<HandOver>& chain,
                                   uint64_t to_epoch, const crypto::VerifyFn& verify = {});

}  // namespace attestnet::ledger
