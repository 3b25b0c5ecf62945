// Dynamic trust anchors (DESIGN.md §5, docs/reputation.md, docs/trust.md): the node registry,
// reputation, misbehaviour proofs, endorsements and committee selection, as a pure
// deterministic function of committed blocks. Every replica folds the same blocks into the same
// TrustState, so the committee the last block of an epoch names is the same everywhere and its
// header certificate (signed by the outgoing committee) is the hand-over certificate.
//
// Transactions travel as consensus request payloads, told apart from AttestationRequests
// (tag 0x0601) by their tag:
//   MisbehaviourProof  tag 0x0611 v1 | epoch:u64 kind:u8 first:Envelope second:Envelope
//     kind 1 (equivocation): two pre-prepares, prepares or commits by one member of `epoch`
//            for one (view, seq) with different digests
//     kind 2 (bad header vote): `first` is a HeaderVote by a member of `epoch` for a height this
//            ledger executed into a different header; `second` is ignored (encode it empty)
//   Endorsement        tag 0x0612 v1 | endorser[32] height:u64 header_hash[32] signature[64]
//     signed over H-less message "attestnet/endorsement" | chain_id | height | header_hash by a
//     registered node outside the committee, which re-executed the chain up to that header
//   NodeJoin           tag 0x0613 v1 | key[32] name:str endpoint:str platform:str evidence:bytes
//                      signature[64] (over the encoding without it); the evidence's binding is
//                      evidence_binding(H(genesis), key) and the admission policy must affirm it
//   NodeLeave          tag 0x0614 v1 | key[32] signature[64] over
//                      "attestnet/leave" | chain_id | key
//   KeyRotation        tag 0x0615 v1 | old[32] new[32] signature[64] by old over
//                      "attestnet/rotate" | chain_id | old | new
//
// The registry orders nodes by an index that never changes: genesis members 0..n-1 in genesis
// order, then each admitted node in ledger order; a rotation keeps the index. Nodes use it as
// the peer id of their transport. A rotated-away key is retired: it can never join again.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/messages.h"
#include "ledger/response.h"

namespace attestnet::state {

using TrustParams = ledger::TrustParams;

constexpr uint32_t kPpm = 1000000;

enum class TxKind : uint8_t {
  kAttestation,
  kMisbehaviour,
  kEndorsement,
  kJoin,
  kLeave,
  kRotate,
  kUnknown
};
// The transaction kind of a request payload (by its leading tag).
TxKind tx_kind(ByteView payload);

struct MisbehaviourProof {
  static constexpr uint16_t kTag = 0x0611;
  enum Kind : uint8_t { kEquivocation = 1, kBadHeaderVote = 2 };
  uint64_t epoch = 0;
  uint8_t kind = kEquivocation;
  consensus::Envelope first;
  consensus::Envelope second;
  Bytes encode() const;
  static Result<MisbehaviourProof> decode(ByteView in);
};

struct Endorsement {
  static constexpr uint16_t kTag = 0x0612;
  crypto::PublicKey endorser{};
  uint64_t height = 0;
  Hash32 header_hash{};
  crypto::Signature signature{};
  static Bytes message(const std::string& chain_id, uint64_t height, const Hash32& header_hash);
  static Endorsement make(const crypto::SecretKey& key, const std::string& chain_id,
                          uint64_t height, const Hash32& header_hash);
  Bytes encode() const;
  static Result<Endorsement> decode(ByteView in);
};

struct NodeJoin {
  static constexpr uint16_t kTag = 0x0613;
  crypto::PublicKey key{};
  std::string name;
  std::string endpoint;
  std::string platform;
  Bytes evidence;
  crypto::Signature signature{};
  Bytes body() const;  // the signed encoding (without the signature)
  Bytes encode() const;
  static Result<NodeJoin> decode(ByteView in);
  // Signed by `key`; the evidence must carry join_binding(H(genesis), key.public_key()).
  static NodeJoin make(const crypto::SecretKey& key, std::string name, std::string endpoint,
                       std::string platform, Bytes evidence);
};
// What a joining node's evidence must carry in its user data (its nonce).
Hash32 join_binding(const Hash32& genesis_hash, const crypto::PublicKey& key);

struct NodeLeave {
  static constexpr uint16_t kTag = 0x0614;
  crypto::PublicKey key{};
  crypto::Signature signature{};
  Bytes encode() const;
  static Result<NodeLeave> decode(ByteView in);
  static Bytes message(const std::string& chain_id, const crypto::PublicKey& key);
  static NodeLeave make(const crypto::SecretKey& key, const std::string& chain_id);
};

struct KeyRotation {
  static constexpr uint16_t kTag = 0x0615;
  crypto::PublicKey old_key{};
  crypto::PublicKey new_key{};
  crypto::Signature signature{};
  Bytes encode() const;
  static Result<KeyRotation> decode(ByteView in);
  static Bytes message(const std::string& chain_id, const crypto::PublicKey& old_key,
                       const crypto::PublicKey& new_key);
  static KeyRotation make(const crypto::SecretKey& old_key, const crypto::PublicKey& new_key,
                          const std::string& chain_id);
};

struct NodeEntry {
  crypto::PublicKey key{};
  uint32_t index = 0;  // registry index (the node's peer id), kept across rotations
  std::string name;
  std::string endpoint;
  uint64_t joined_height = 0;
  bool active = true;           // false once it left
  uint32_t score_ppm = 0;       // reputation
  uint64_t excluded_until = 0;  // not eligible for epochs < this
  uint32_t slashes = 0;
  uint64_t last_endorsed = 0;  // endorsements count only for heights above this (each once)
  std::vector<std::pair<uint64_t, uint32_t>> history;  // (epoch, score after it), last 64
  std::vector<uint64_t> terms;                         // epochs it sat in, last 64
};

// What happened to one transaction at execution (for logs, metrics and the API).
struct TxOutcome {
  bool accepted = false;
  std::string reason;   // why it was refused, or what it did
  Hash32 request_id{};  // the consensus request that carried it
};

class TrustState {
 public:
  // `registered`: every node known at genesis (the first committee_size form epoch 0's
  // committee). `genesis_hash` is what NodeJoin evidence binds.
  TrustState(std::string chain_id, TrustParams params,
             std::vector<ledger::GenesisMember> registered, const Hash32& genesis_hash);

  const TrustParams& params() const { return params_; }
  uint64_t epoch() const { return epoch_; }
  const ledger::Committee& committee() const { return committee_; }
  // The committee of an earlier epoch (kept for the last exclusion_epochs + 2), or null.
  const ledger::Committee* committee_of(uint64_t epoch) const;
  const std::map<crypto::PublicKey, NodeEntry>& nodes() const { return nodes_; }
  // The registry by index (see the top of this file).
  size_t registry_size() const { return order_.size(); }
  const NodeEntry& at(uint32_t index) const { return nodes_.at(order_.at(index)); }
  std::optional<uint32_t> index_of(const crypto::PublicKey& key) const;
  // The key a retired key was rotated to, or null.
  const crypto::PublicKey* rotated_to(const crypto::PublicKey& old_key) const;
  // Incremented by every join, leave and rotation (nodes re-read their peers when it moves).
  uint64_t registry_version() const { return registry_version_; }
  bool is_last_of_epoch(uint64_t height) const;
  uint64_t epoch_of(uint64_t height) const;
  uint64_t epoch_end(uint64_t epoch) const;  // last height of `epoch` (UINT64_MAX without epochs)

  // Checks that need no ledger state (decoding, signatures), as a replica's validate hook.
  Status validate(const consensus::Request& q, const crypto::VerifyFn& verify = {}) const;

  // Executes the trust side of a committed block, in order: its header certificates
  // (participation), the view it was proposed in (responsiveness), and its trust transactions.
  // Attestation requests are ignored here. `admit` appraises a NodeJoin's evidence (the node
  // passes the policy engine, judging certificate dates at the block time in ms); without it
  // joins are refused.
  using AdmitFn = std::function<Status(const NodeJoin&, uint64_t block_time_ms)>;
  std::vector<TxOutcome> apply_block(const consensus::Block& b, const crypto::VerifyFn& verify = {},
                                     const AdmitFn& admit = {});
  // The header this ledger built at `height` (after apply_block and building the header).
  // Endorsements and bad-header-vote proofs are judged against these.
  void note_header(uint64_t height, const Hash32& header_hash);
  // Without epochs (epoch_length 0) no epoch end ever clears the heights kept for endorsements,
  // proofs and certificate counting: only the last kRecentWithoutEpochs heights are kept (and
  // count as recent), so that the state does not grow with the ledger.
  static constexpr uint64_t kRecentWithoutEpochs = 8192;
  size_t heights_in_memory() const;
  // At the last block of an epoch (after apply_block): scores the epoch, selects the next
  // committee and enters the next epoch. Returns the new committee.
  const ledger::Committee& end_epoch();

  // The canonical encoding of the whole trust state, and its hash (in each header's state root).
  Bytes encode() const;
  Hash32 hash() const;

  // Everything needed to continue from here, taken after a block's note_header (and, at an
  // epoch's last block, end_epoch): a node stores one at every epoch end and every
  // snapshot_interval blocks, and at open folds only the blocks after it. Version 2 carries the
  // epoch's facts so far, so that a snapshot inside an epoch restores the same hash().
  // restore() is called on a TrustState constructed from the same genesis; the caller checks
  // hash() against the header's state root before trusting it.
  Bytes snapshot() const;
  Status restore(ByteView snapshot);

 private:
  struct EpochFacts {
    uint64_t certs_recorded = 0;
    std::set<uint64_t> cert_heights;
    std::map<uint32_t, uint64_t> signed_by;     // member index -> certificates signed
    std::map<uint32_t, uint64_t> view_changes;  // member index -> views it failed as primary
    std::map<crypto::PublicKey, std::set<uint64_t>> endorsed;  // outsider -> heights
    std::set<crypto::PublicKey> slashed;
  };
  TxOutcome apply_misbehaviour(const MisbehaviourProof& p, const crypto::VerifyFn& verify);
  TxOutcome apply_endorsement(const Endorsement& e, const crypto::VerifyFn& verify);
  TxOutcome apply_join(const NodeJoin& j, const consensus::Block& b, const crypto::VerifyFn& verify,
                       const AdmitFn& admit);
  TxOutcome apply_leave(const NodeLeave& l, const crypto::VerifyFn& verify);
  TxOutcome apply_rotate(const KeyRotation& r, const crypto::VerifyFn& verify);
  void slash(const crypto::PublicKey& key);
  ledger::Committee select_next() const;
  std::optional<uint32_t> member_index(const crypto::PublicKey& k) const;

  std::string chain_id_;
  TrustParams params_;
  Hash32 genesis_hash_;
  uint64_t epoch_ = 0;
  ledger::Committee committee_;
  std::map<uint64_t, ledger::Committee> past_;  // recent committees by epoch
  std::map<crypto::PublicKey, NodeEntry> nodes_;
  std::vector<crypto::PublicKey> order_;                    // index -> current key
  std::map<crypto::PublicKey, crypto::PublicKey> retired_;  // rotated-away key -> its successor
  uint64_t registry_version_ = 0;
  EpochFacts facts_;
  uint64_t last_view_ = 0;  // view of the last non-null block of this epoch
  // Recent heights: this and the previous epoch, or the last kRecentWithoutEpochs.
  std::map<uint64_t, Hash32> headers_;
  std::set<std::pair<crypto::PublicKey, uint64_t>> proven_;  // (offender, epoch) already proven
};

// What every host does alike when it executes a committed block, besides building the ledger
// header: the block's trust facts and transactions, the epoch end, the consensus state digest and
// effective block time, and the header's state root H("attestnet/state-root", digest | trust).
struct ChainState {
  Hash32 digest{};          // consensus::next_state_digest chained over every block
  uint64_t block_time = 0;  // the block times' running maximum
};
struct FoldedBlock {
  std::vector<TxOutcome> outcomes;
  std::optional<ledger::Committee> next;  // the next epoch's committee, at an epoch's last block
  Hash32 state_root{};
};
// The header's state root: H("attestnet/state-root", consensus digest | trust state hash).
Hash32 state_root(const Hash32& digest, const TrustState& trust);
FoldedBlock fold_block(TrustState& trust, ChainState& chain, const consensus::Block& b,
                       const crypto::VerifyFn& verify = {}, const TrustState::AdmitFn& admit = {});

}  // namespace attestnet::state
