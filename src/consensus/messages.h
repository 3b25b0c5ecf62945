// PBFT protocol messages (Castro & Liskov, OSDI '99 §4, signature variant) and their canonical
// encodings. Every message travels in a signed Envelope:
//
//   Envelope   := tag 0x0201 v1 | type:u8 | sender:u32 | epoch:u64 | body:bytes | signature[64]
//                 (epoch is also inside the signed message; in the envelope it lets a host route
//                 a message to the replica of its epoch before checking the signature)
//   signed msg := tag 0x0202 v1 | chain_id:bytes | epoch:u64 | type:u8 | body
//
// The signed message binds every vote to (chain, epoch, type, view, seq, digest) — lesson 10 of
// CONSENSUS-TESTING.md. For a Commit the signed message is exactly the "commit vote" over
// (chain_id, epoch, view, height, block_hash), so 2f+1 Commit signatures form the block's
// CommitCertificate with no extra signing round.
//
// Bodies (all integers little endian, see core/codec.h):
//   Request     client_id:u64 client_seq:u64 payload:bytes
//   Block       tag 0x0210 v1 | height:u64 view:u64 block_time:u64 proposer:u32 n:u32 Request*n
//               m:u32 CertifiedHeader*m
//   CertifiedHeader := height:u64 header_digest[32] QuorumCertificate
//               header certificates of earlier heights of the same epoch that the proposer
//               gathered: they put on the ledger, deterministically, who signed what
//               (participation, docs/reputation.md)
//   PrePrepare  view:u64 seq:u64 Block
//   Prepare     view:u64 seq:u64 digest[32]
//   Commit      view:u64 seq:u64 digest[32]
//   Checkpoint  seq:u64 state_digest[32]
//   ViewChange  new_view:u64 stable_seq:u64 stable_digest[32] n:u32 Envelope(Checkpoint)*n
//               m:u32 PreparedCertificate*m
//   PreparedCertificate := Envelope(PrePrepare) k:u32 Envelope(Prepare)*k
//   NewView     view:u64 n:u32 Envelope(ViewChange)*n m:u32 Envelope(PrePrepare)*m
//   Status      view:u64 in_view_change:bool last_executed:u64 stable_seq:u64
//   StateRequest from_seq:u64
//   StateReply  n:u32 CommittedBlock*n  has_proof:bool [stable_seq:u64 n:u32 Envelope*n]
//   CommittedBlock := view:u64 Block CommitCertificate
//   HeaderVote  height:u64 view:u64 (reserved, 0) header_digest[32]
//               signed after executing `height`: the application's digest of the ledger header
//               that block produced. 2f+1 matching votes are the header's certificate.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/codec.h"
#include "crypto/ed25519.h"
#include "crypto/quorum.h"

namespace attestnet::consensus {

using ReplicaId = uint32_t;
using View = uint64_t;
using Seq = uint64_t;
constexpr ReplicaId kNoProposer = 0xffffffffu;

// Hard bounds on what a decoder accepts (TigerBeetle: limits everywhere).
constexpr uint32_t kMaxMessageBytes = 64u << 20;
constexpr uint32_t kMaxRequestsPerBlock = 100000;
constexpr uint32_t kMaxRequestPayload = 1u << 20;

enum class MsgType : uint8_t {
  kRequest = 1,
  kPrePrepare = 2,
  kPrepare = 3,
  kCommit = 4,
  kCheckpoint = 5,
  kViewChange = 6,
  kNewView = 7,
  kStatus = 8,
  kStateRequest = 9,
  kStateReply = 10,
  kHeaderVote = 11,
  kComplaint = 12,
};
constexpr uint8_t kMaxMsgType = 12;
const char* msg_type_name(MsgType t);

struct Request {
  uint64_t client_id = 0;
  uint64_t client_seq = 0;
  Bytes payload;

  // H("attestnet/request", encoding). A decoded request (and one seal()ed) answers from the id
  // it remembered: a node asks a request for its id about seven times between its arrival and
  // its execution, and each was a SHA-256 of the whole request. Whoever changes a field of
  // such a request must call forget_id().
  Hash32 id() const { return known_id_ ? *known_id_ : compute_id(); }
  // Remembers the id now (before the request is shared between threads) and returns it.
  const Hash32& seal();
  void forget_id() { known_id_.reset(); }
  void encode(Writer& w) const;
  static Result<Request> decode(Reader& r);
  bool operator==(const Request& o) const {
    return client_id == o.client_id && client_seq == o.client_seq && payload == o.payload;
  }

  // Set only by decode() and seal(); not part of the request.
  std::optional<Hash32> known_id_{};

 private:
  Hash32 compute_id() const;
};

// A header certificate as a block carries it (see Block).
struct CertifiedHeader {
  Seq height = 0;
  Hash32 header_digest{};
  crypto::QuorumCertificate cert;
  void encode(Writer& w) const;
  static Result<CertifiedHeader> decode(Reader& r);
  bool operator==(const CertifiedHeader&) const = default;
};
constexpr uint32_t kMaxCertificatesPerBlock = 64;

struct Block {
  static constexpr uint16_t kTag = 0x0210;
  Seq height = 0;
  View view = 0;            // the view the block was proposed in (0 for null blocks)
  uint64_t block_time = 0;  // ms since the Unix epoch, chosen by the proposer
  ReplicaId proposer = kNoProposer;
  std::vector<Request> requests;
  std::vector<CertifiedHeader> certificates;

  bool is_null() const { return proposer == kNoProposer && requests.empty(); }
  static Block null_block(Seq height) { return Block{height, 0, 0, kNoProposer, {}, {}}; }
  Hash32 digest() const;  // H("attestnet/block", encoding)
  void encode(Writer& w) const;
  static Result<Block> decode(Reader& r);
  bool operator==(const Block&) const = default;
};

// A signed message as it travels. `body` is the type-specific encoding.
struct Envelope {
  static constexpr uint16_t kTag = 0x0201;
  MsgType type = MsgType::kRequest;
  ReplicaId sender = 0;
  uint64_t epoch = 0;
  Bytes body;
  crypto::Signature sig{};

  Bytes encode() const;
  void encode(Writer& w) const;
  static Result<Envelope> decode(ByteView in);
  static Result<Envelope> decode(Reader& r);
  bool operator==(const Envelope&) const = default;
};

// The bytes a signature covers.
Bytes signing_message(const std::string& chain_id, uint64_t epoch, MsgType type, ByteView body);
Envelope sign_envelope(const crypto::SecretKey& key, ReplicaId sender, const std::string& chain_id,
                       uint64_t epoch, MsgType type, Bytes body);

struct PrePrepare {
  View view = 0;
  Seq seq = 0;
  Block block;
  Bytes encode() const;
  static Result<PrePrepare> decode(ByteView in);
};

struct Vote {  // Prepare and Commit share a body
  View view = 0;
  Seq seq = 0;
  Hash32 digest{};
  Bytes encode() const;
  static Result<Vote> decode(ByteView in);
};

struct Checkpoint {
  Seq seq = 0;
  Hash32 state_digest{};
  Bytes encode() const;
  static Result<Checkpoint> decode(ByteView in);
};

struct PreparedCertificate {
  Envelope pre_prepare;
  std::vector<Envelope> prepares;
  void encode(Writer& w) const;
  static Result<PreparedCertificate> decode(Reader& r);
};

struct ViewChange {
  View new_view = 0;
  Seq stable_seq = 0;
  Hash32 stable_digest{};
  std::vector<Envelope> checkpoint_proof;
  std::vector<PreparedCertificate> prepared;
  Bytes encode() const;
  static Result<ViewChange> decode(ByteView in);
};

struct NewView {
  View view = 0;
  std::vector<Envelope> view_changes;
  std::vector<Envelope> pre_prepares;
  Bytes encode() const;
  static Result<NewView> decode(ByteView in);
};

struct StatusMsg {
  View view = 0;
  bool in_view_change = false;
  Seq last_executed = 0;
  Seq stable_seq = 0;
  Bytes encode() const;
  static Result<StatusMsg> decode(ByteView in);
};

// A replica's request timer expired in `view` (it suspects the primary). It keeps working in the
// view; f+1 complaints for the view start the view change (docs/consensus.md, "Complaints").
struct Complaint {
  View view = 0;
  Bytes encode() const;
  static Result<Complaint> decode(ByteView in);
};

struct StateRequest {
  Seq from_seq = 0;
  Bytes encode() const;
  static Result<StateRequest> decode(ByteView in);
};

// A block as the ledger keeps it: the block, the view it committed in, and 2f+1 Commit
// signatures over the commit vote (the CommitCertificate of DESIGN.md §3).
struct CommittedBlock {
  View view = 0;
  Block block;
  crypto::QuorumCertificate cert;
  void encode(Writer& w) const;
  static Result<CommittedBlock> decode(Reader& r);
  bool operator==(const CommittedBlock&) const = default;
};

struct StateReply {
  std::vector<CommittedBlock> blocks;
  std::optional<Seq> stable_seq;
  std::vector<Envelope> stable_proof;
  Bytes encode() const;
  static Result<StateReply> decode(ByteView in);
};

struct HeaderVote {
  Seq height = 0;
  View view = 0;  // the view the block committed in
  Hash32 header_digest{};
  Bytes encode() const;
  static Result<HeaderVote> decode(ByteView in);
};

// The exact bytes a header certificate's signatures cover, for a light client.
Bytes header_vote_message(const std::string& chain_id, uint64_t epoch, Seq height, View view,
                          const Hash32& header_digest);

// The exact bytes a CommitCertificate's signatures cover, for a light client.
Bytes commit_vote_message(const std::string& chain_id, uint64_t epoch, View view, Seq height,
                          const Hash32& block_digest);

}  // namespace attestnet::consensus
