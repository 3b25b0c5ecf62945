// Registry, reputation, misbehaviour proofs, committee selection (state/trust.h) and the light
// client's walk along epoch hand-overs (ledger/model.h follow_handovers).
#include "state/trust.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/hash.h"

namespace attestnet::state {
namespace {

using consensus::Block;
using consensus::CertifiedHeader;
using consensus::MsgType;
using consensus::Request;

constexpr const char* kChain = "trust-test";

struct Net {
  std::vector<crypto::SecretKey> keys;
  ledger::Genesis genesis;
  std::unique_ptr<TrustState> trust;
  uint64_t height = 0;
  uint64_t client_seq = 0;

  explicit Net(size_t registered, uint32_t seats = 4, uint64_t epoch_length = 16) {
    crypto::init();
    genesis.chain_id = kChain;
    genesis.trust.epoch_length = epoch_length;
    genesis.trust.committee_size = seats;
    genesis.trust.exclusion_epochs = 3;
    for (size_t i = 0; i < registered; ++i) {
      keys.push_back(crypto::SecretKey::from_seed(crypto::test_seed("node-" + std::to_string(i))));
      genesis.members.push_back({"node" + std::to_string(i), keys.back().public_key(), ""});
    }
    trust = std::make_unique<TrustState>(kChain, genesis.trust, genesis.members, genesis.hash());
  }
  const crypto::SecretKey& key_of(const crypto::PublicKey& pk) const {
    for (const auto& k : keys)
      if (k.public_key() == pk) return k;
    throw std::runtime_error("unknown key");
  }
  size_t node_of(const crypto::PublicKey& pk) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i].public_key() == pk) return i;
    return SIZE_MAX;
  }
  std::vector<size_t> committee_nodes() const {
    std::vector<size_t> out;
    for (const auto& m : trust->committee().members) out.push_back(node_of(m));
    std::sort(out.begin(), out.end());
    return out;
  }
  Hash32 header_hash(uint64_t h) const {
    Writer w;
    w.u64(h);
    return hash_domain("test/header", as_view(w.data()));
  }
  // One block: a header certificate for the previous height signed by `signers` (committee
  // indices), the given transactions; then the header is noted and, at an epoch's end, the
  // epoch is closed. Returns the committee after the block.
  void block(const std::vector<uint32_t>& signers, std::vector<Bytes> txs = {}, uint64_t view = 0) {
    Block b;
    b.height = ++height;
    b.view = view;
    b.proposer = 0;
    if (height > 1 && trust->epoch_of(height - 1) == trust->epoch()) {
      CertifiedHeader c;
      c.height = height - 1;
      c.header_digest = header_hash(height - 1);
      for (uint32_t s : signers) c.cert.add(s, crypto::Signature{});
      b.certificates.push_back(c);
    }
    for (auto& t : txs) b.requests.push_back(Request{1, ++client_seq, std::move(t)});
    if (b.requests.empty()) b.requests.push_back(Request{1, ++client_seq, Bytes{0x01, 0x06}});
    last_outcomes = trust->apply_block(b);
    trust->note_header(height, header_hash(height));
    if (trust->is_last_of_epoch(height)) trust->end_epoch();
  }
  void epoch(const std::vector<uint32_t>& signers,
             const std::function<std::vector<Bytes>(uint64_t)>& txs_at = {}) {
    uint64_t e = trust->epoch();
    while (trust->epoch() == e) block(signers, txs_at ? txs_at(height + 1) : std::vector<Bytes>{});
  }
  std::vector<TxOutcome> last_outcomes;
};

Bytes endorse(const Net& n, size_t node, uint64_t height) {
  return Endorsement::make(n.keys[node], kChain, height, n.header_hash(height)).encode();
}

// Two prepares by committee member `index` for one slot with different digests.
Bytes equivocation(const Net& n, uint32_t index, uint64_t epoch, uint64_t seq) {
  const auto& key = n.key_of(n.trust->committee().members[index]);
  MisbehaviourProof p;
  p.epoch = epoch;
  p.kind = MisbehaviourProof::kEquivocation;
  p.first = consensus::sign_envelope(key, index, kChain, epoch, MsgType::kPrepare,
                                     consensus::Vote{0, seq, Hash32{1}}.encode());
  p.second = consensus::sign_envelope(key, index, kChain, epoch, MsgType::kPrepare,
                                      consensus::Vote{0, seq, Hash32{2}}.encode());
  return p.encode();
}

size_t changed(const std::vector<size_t>& a, const std::vector<size_t>& b) {
  size_t c = 0;
  for (size_t x : b) c += std::find(a.begin(), a.end(), x) == a.end();
  return c;
}

TEST(Trust, GenesisSeatsTheFirstNodesAndEpochsFollowTheGenesisLength) {
  Net n(7);
  EXPECT_EQ(n.committee_nodes(), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(n.trust->epoch_of(16), 0u);
  EXPECT_EQ(n.trust->epoch_of(17), 1u);
  EXPECT_TRUE(n.trust->is_last_of_epoch(32));
  n.epoch({0, 1, 2, 3});
  EXPECT_EQ(n.trust->epoch(), 1u);
  EXPECT_EQ(n.committee_nodes(), (std::vector<size_t>{0, 1, 2, 3}));  // nobody earned a seat
}

TEST(Trust, ASilentMemberLosesItsSeatToAnEndorserWithinBoundedEpochs) {
  Net n(7);
  size_t silent = 3;
  std::vector<size_t> prev = n.committee_nodes();
  int epochs = 0;
  while (std::find(prev.begin(), prev.end(), silent) != prev.end() && epochs < 10) {
    std::vector<uint32_t> signers;
    for (uint32_t i = 0; i < n.trust->committee().members.size(); ++i) {
      if (n.node_of(n.trust->committee().members[i]) != silent) signers.push_back(i);
    }
    // Node 4 endorses every fourth height; 5 and 6 stay idle.
    n.epoch(signers, [&](uint64_t h) {
      return h % 4 == 0 ? std::vector<Bytes>{endorse(n, 4, h - 1)} : std::vector<Bytes>{};
    });
    std::vector<size_t> now = n.committee_nodes();
    EXPECT_LE(changed(prev, now), n.genesis.trust.max_churn) << "epoch " << n.trust->epoch();
    prev = now;
    ++epochs;
  }
  EXPECT_LE(epochs, 4) << "a silent member must lose its seat within a few epochs";
  EXPECT_EQ(prev, (std::vector<size_t>{0, 1, 2, 4}));
  const NodeEntry& e = n.trust->nodes().at(n.keys[silent].public_key());
  EXPECT_LT(e.score_ppm, n.genesis.trust.min_score_ppm + 400000u);
  EXPECT_FALSE(e.terms.empty());
}

TEST(Trust, AnEquivocationProofSlashesTheMemberAndExcludesItForMEpochs) {
  Net n(7);
  // Node 5 endorses throughout, so a seat has a taker.
  auto endorse5 = [&](uint64_t h) {
    return h % 4 == 0 ? std::vector<Bytes>{endorse(n, 5, h - 1)} : std::vector<Bytes>{};
  };
  n.epoch({0, 1, 2, 3}, endorse5);
  uint32_t idx = 0;
  for (uint32_t i = 0; i < 4; ++i)
    if (n.node_of(n.trust->committee().members[i]) == 2) idx = i;
  n.block({0, 1, 2, 3}, {equivocation(n, idx, n.trust->epoch(), 7)});
  ASSERT_EQ(n.last_outcomes.size(), 1u);
  EXPECT_TRUE(n.last_outcomes[0].accepted) << n.last_outcomes[0].reason;
  // The same proof again is refused: one offence is slashed once.
  n.block({0, 1, 2, 3}, {equivocation(n, idx, n.trust->epoch(), 7)});
  EXPECT_FALSE(n.last_outcomes[0].accepted);
  uint64_t proven_in = n.trust->epoch();
  n.epoch({0, 1, 2, 3}, endorse5);
  const NodeEntry& e = n.trust->nodes().at(n.keys[2].public_key());
  EXPECT_EQ(e.score_ppm, 0u);
  EXPECT_EQ(e.excluded_until, proven_in + 1 + n.genesis.trust.exclusion_epochs);
  for (uint64_t k = 0; k < n.genesis.trust.exclusion_epochs; ++k) {
    auto c = n.committee_nodes();
    EXPECT_EQ(std::count(c.begin(), c.end(), 2u), 0) << "epoch " << n.trust->epoch();
    bool listed = false;
    for (const auto& [key, until] : n.trust->committee().excluded)
      listed |= key == n.keys[2].public_key() && until > n.trust->epoch();
    EXPECT_TRUE(listed || n.trust->epoch() >= e.excluded_until);
    n.epoch({0, 1, 2, 3}, endorse5);
  }
  auto seated = n.committee_nodes();
  EXPECT_EQ(std::count(seated.begin(), seated.end(), 5u), 1) << "the endorser took the seat";
}

TEST(Trust, ProofsThatProveNothingAreRefusedWithAReason) {
  Net n(4);
  const auto& key1 = n.key_of(n.trust->committee().members[1]);
  MisbehaviourProof same;
  same.epoch = 0;
  same.first = consensus::sign_envelope(key1, 1, kChain, 0, MsgType::kPrepare,
                                        consensus::Vote{0, 3, Hash32{1}}.encode());
  same.second = same.first;
  MisbehaviourProof slots = same;
  slots.second = consensus::sign_envelope(key1, 1, kChain, 0, MsgType::kPrepare,
                                          consensus::Vote{0, 4, Hash32{2}}.encode());
  MisbehaviourProof forged = same;  // signed by member 2's key but names member 1
  forged.second =
      consensus::sign_envelope(n.key_of(n.trust->committee().members[2]), 1, kChain, 0,
                               MsgType::kPrepare, consensus::Vote{0, 3, Hash32{2}}.encode());
  MisbehaviourProof old = same;
  old.epoch = 9;
  n.block({0, 1, 2}, {same.encode(), slots.encode(), forged.encode(), old.encode()});
  ASSERT_EQ(n.last_outcomes.size(), 4u);
  for (const auto& o : n.last_outcomes) EXPECT_FALSE(o.accepted);
  EXPECT_NE(n.last_outcomes[0].reason.find("agree"), std::string::npos);
  EXPECT_NE(n.last_outcomes[1].reason.find("different slots"), std::string::npos);
  EXPECT_NE(n.last_outcomes[2].reason.find("not signed"), std::string::npos);
  EXPECT_NE(n.last_outcomes[3].reason.find("not recent"), std::string::npos);
  for (const auto& [k, e] : n.trust->nodes()) EXPECT_EQ(e.slashes, 0u);
}

TEST(Trust, AHeaderVoteForAnotherHeaderIsProvenMisbehaviour) {
  Net n(4);
  n.block({0, 1, 2, 3});
  n.block({0, 1, 2, 3});
  const auto& key3 = n.key_of(n.trust->committee().members[3]);
  MisbehaviourProof p;
  p.epoch = 0;
  p.kind = MisbehaviourProof::kBadHeaderVote;
  p.first = consensus::sign_envelope(key3, 3, kChain, 0, MsgType::kHeaderVote,
                                     consensus::HeaderVote{2, 0, Hash32{7}}.encode());
  p.second = p.first;
  MisbehaviourProof honest = p;
  honest.first = consensus::sign_envelope(key3, 3, kChain, 0, MsgType::kHeaderVote,
                                          consensus::HeaderVote{2, 0, n.header_hash(2)}.encode());
  n.block({0, 1, 2}, {honest.encode(), p.encode()});
  EXPECT_FALSE(n.last_outcomes[0].accepted);
  EXPECT_TRUE(n.last_outcomes[1].accepted) << n.last_outcomes[1].reason;
  EXPECT_EQ(n.trust->nodes().at(key3.public_key()).slashes, 1u);
}

TEST(Trust, EndorsementsCountOnlyForTheLedgersHeadersAndAFalseOneIsSlashed) {
  Net n(5);
  n.block({0, 1, 2, 3});
  Endorsement bad = Endorsement::make(n.keys[4], kChain, 1, Hash32{9});
  n.block({0, 1, 2, 3}, {endorse(n, 4, 1), endorse(n, 0, 1), bad.encode()});
  EXPECT_TRUE(n.last_outcomes[0].accepted);
  EXPECT_FALSE(n.last_outcomes[1].accepted);  // members do not endorse
  EXPECT_NE(n.last_outcomes[2].reason.find("slashed"), std::string::npos);
  EXPECT_EQ(n.trust->nodes().at(n.keys[4].public_key()).slashes, 1u);
}

TEST(Trust, AnEndorsementCountsOnceAndEndorsementsMoveForward) {
  Net n(5);
  n.block({0, 1, 2, 3});
  n.block({0, 1, 2, 3});
  n.block({0, 1, 2, 3}, {endorse(n, 4, 2), endorse(n, 4, 2), endorse(n, 4, 1)});
  EXPECT_TRUE(n.last_outcomes[0].accepted);
  EXPECT_FALSE(n.last_outcomes[1].accepted);  // the same height again (a re-proposed request)
  EXPECT_FALSE(n.last_outcomes[2].accepted);  // an older height
  EXPECT_NE(n.last_outcomes[2].reason.find("move forward"), std::string::npos);
}

TEST(Trust, JoinLeaveAndRotateChangeTheRegistry) {
  Net n(4);
  auto newcomer = crypto::SecretKey::from_seed(crypto::test_seed("newcomer"));
  NodeJoin j = NodeJoin::make(newcomer, "newcomer", "127.0.0.1:9", "sim", {});
  uint64_t admitted_at = 0;
  auto admit_all = [&](const NodeJoin&, uint64_t t) -> Status {
    admitted_at = t;
    return {};
  };
  Block b;
  b.height = ++n.height;
  b.block_time = 1234;
  b.requests.push_back(Request{1, 1, j.encode()});
  uint64_t v0 = n.trust->registry_version();
  auto out = n.trust->apply_block(b, {}, admit_all);
  ASSERT_TRUE(out[0].accepted) << out[0].reason;
  EXPECT_EQ(admitted_at, 1234u);  // the admission policy judges dates at the block time
  EXPECT_EQ(n.trust->nodes().size(), 5u);
  EXPECT_GT(n.trust->registry_version(), v0);
  // The newcomer takes the next registry index, after the genesis members.
  ASSERT_EQ(n.trust->registry_size(), 5u);
  EXPECT_EQ(n.trust->index_of(newcomer.public_key()), 4u);
  EXPECT_EQ(n.trust->at(4).name, "newcomer");
  EXPECT_TRUE(n.trust->validate(b.requests[0]).ok());
  // Joining twice is refused.
  out = n.trust->apply_block(b, {}, admit_all);
  EXPECT_NE(out[0].reason.find("already registered"), std::string::npos) << out[0].reason;
  // A name already in the registry is refused (names select peer endpoint overrides).
  auto twin = crypto::SecretKey::from_seed(crypto::test_seed("twin"));
  b.requests = {Request{1, 11, NodeJoin::make(twin, "node0", "127.0.0.1:11", "sim", {}).encode()}};
  out = n.trust->apply_block(b, {}, admit_all);
  EXPECT_NE(out[0].reason.find("taken by registered node 0"), std::string::npos) << out[0].reason;
  b.requests = {
      Request{1, 12, NodeJoin::make(twin, "evil\nname", "127.0.0.1:11", "sim", {}).encode()}};
  out = n.trust->apply_block(b, {}, admit_all);
  EXPECT_NE(out[0].reason.find("letters, digits"), std::string::npos) << out[0].reason;
  // Refused without an admission policy, and when the evidence is refused.
  auto other = crypto::SecretKey::from_seed(crypto::test_seed("other"));
  NodeJoin j2 = NodeJoin::make(other, "other", "127.0.0.1:10", "sim", {});
  b.requests = {Request{1, 2, j2.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_NE(out[0].reason.find("admits no nodes"), std::string::npos) << out[0].reason;
  out = n.trust->apply_block(b, {}, [](const NodeJoin&, uint64_t) -> Status {
    return make_error(Errc::kBadValue, "kernel not approved");
  });
  EXPECT_NE(out[0].reason.find("kernel not approved"), std::string::npos);
  // A forged join (signed by another key) fails validation.
  j2.signature = newcomer.sign(as_view(j2.body()));
  EXPECT_FALSE(n.trust->validate(Request{1, 3, j2.encode()}).ok());

  auto fresh = crypto::SecretKey::from_seed(crypto::test_seed("fresh"));
  // A rotation signed for another chain does not verify here.
  KeyRotation foreign = KeyRotation::make(newcomer, fresh.public_key(), "another-chain");
  b.requests = {Request{1, 4, foreign.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_FALSE(out[0].accepted);
  KeyRotation r = KeyRotation::make(newcomer, fresh.public_key(), kChain);
  b.requests = {Request{1, 5, r.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_TRUE(out[0].accepted) << out[0].reason;
  EXPECT_TRUE(n.trust->nodes().count(fresh.public_key()));
  EXPECT_FALSE(n.trust->nodes().count(newcomer.public_key()));
  // The index stays; the old key is retired and names its successor.
  EXPECT_EQ(n.trust->index_of(fresh.public_key()), 4u);
  EXPECT_EQ(n.trust->at(4).key, fresh.public_key());
  ASSERT_NE(n.trust->rotated_to(newcomer.public_key()), nullptr);
  EXPECT_EQ(*n.trust->rotated_to(newcomer.public_key()), fresh.public_key());
  // A retired key cannot come back, by a join or by rotating to it.
  b.requests = {Request{1, 6, j.encode()}};
  out = n.trust->apply_block(b, {}, admit_all);
  EXPECT_NE(out[0].reason.find("retired"), std::string::npos) << out[0].reason;
  KeyRotation back = KeyRotation::make(fresh, newcomer.public_key(), kChain);
  b.requests = {Request{1, 7, back.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_NE(out[0].reason.find("retired"), std::string::npos) << out[0].reason;
  // A sitting member may not rotate during its term.
  auto member_rot = KeyRotation::make(n.keys[0], other.public_key(), kChain);
  b.requests = {Request{1, 8, member_rot.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_NE(out[0].reason.find("after its term"), std::string::npos) << out[0].reason;

  NodeLeave l = NodeLeave::make(fresh, kChain);
  b.requests = {Request{1, 9, l.encode()}};
  out = n.trust->apply_block(b);
  EXPECT_TRUE(out[0].accepted) << out[0].reason;
  EXPECT_FALSE(n.trust->nodes().at(fresh.public_key()).active);
}

// A node restarts from the snapshot of the last epoch end instead of folding every block.
// `b` continues from `a`'s snapshot, which must restore the same state. Returns the snapshot.
Bytes restore_from(const Net& a, Net& b) {
  Bytes snap = a.trust->snapshot();
  EXPECT_TRUE(b.trust->restore(as_view(snap)).ok());
  b.height = a.height;
  b.client_seq = a.client_seq;
  EXPECT_EQ(b.trust->hash(), a.trust->hash());
  EXPECT_EQ(b.trust->snapshot(), snap);
  return snap;
}

TEST(Trust, ASnapshotAtAnEpochEndContinuesLikeTheFullReplay) {
  Net a(8), b(8);
  auto txs = [&](Net& n, uint64_t h) {
    std::vector<Bytes> t;
    if (h % 4 == 0) t.push_back(endorse(n, 5, h - 1));
    if (h == 20) t.push_back(equivocation(n, 1, n.trust->epoch(), 3));
    if (h == 21)
      t.push_back(NodeJoin::make(crypto::SecretKey::from_seed(crypto::test_seed("j")), "joiner",
                                 "127.0.0.1:1", "sim", {})
                      .encode());
    return t;
  };
  for (int e = 0; e < 3; ++e) a.epoch({0, 2, 3}, [&](uint64_t h) { return txs(a, h); });
  Bytes snap = restore_from(a, b);
  EXPECT_EQ(b.trust->committee().hash(), a.trust->committee().hash());
  // The same blocks after it give the same state at every height (history, proofs already
  // counted, recent headers for endorsements all came along).
  for (int i = 0; i < 40; ++i) {
    uint64_t h = a.height + 1;
    std::vector<Bytes> t;
    if (h % 4 == 0) t.push_back(endorse(a, 6, h - 1));
    if (i == 3) t.push_back(endorse(a, 5, a.height - 20));  // a height from the epoch before
    a.block({0, 1, 2}, t);
    b.block({0, 1, 2}, t);
    ASSERT_EQ(a.trust->hash(), b.trust->hash()) << "height " << h;
    ASSERT_EQ(a.last_outcomes.size(), b.last_outcomes.size());
    for (size_t k = 0; k < a.last_outcomes.size(); ++k)
      EXPECT_EQ(a.last_outcomes[k].reason, b.last_outcomes[k].reason);
  }
  // Damaged snapshots are refused, never half-applied.
  Hash32 before = b.trust->hash();
  Bytes cut(snap.begin(), snap.begin() + static_cast<long>(snap.size() / 2));
  EXPECT_FALSE(b.trust->restore(as_view(cut)).ok());
  EXPECT_EQ(b.trust->hash(), before);
}

TEST(Trust, ASnapshotInsideAnEpochContinuesLikeTheFullReplay) {
  // Taken mid-epoch, after endorsements, a view change, certificates and a slash: the epoch's
  // facts so far must come along, or its end scores and selects differently.
  Net a(8), b(8);
  for (int e = 0; e < 2; ++e) a.epoch({0, 1, 2, 3});
  for (int i = 0; i < 9; ++i) {
    uint64_t h = a.height + 1;
    std::vector<Bytes> t;
    if (h % 2 == 0) t.push_back(endorse(a, 5, h - 1));
    if (i == 4) t.push_back(equivocation(a, 2, a.trust->epoch(), 7));
    a.block({0, 1, 3}, t, i >= 6 ? 3 : 0);  // views 0..2 left behind from block 7 on
  }
  restore_from(a, b);
  uint64_t epoch = a.trust->epoch();
  while (a.trust->epoch() < epoch + 2) {
    uint64_t h = a.height + 1;
    std::vector<Bytes> t;
    if (h % 3 == 0) t.push_back(endorse(a, 6, h - 1));
    a.block({0, 1, 3}, t, 3);
    b.block({0, 1, 3}, t, 3);
    ASSERT_EQ(a.trust->hash(), b.trust->hash()) << "height " << h;
    ASSERT_EQ(a.trust->committee().hash(), b.trust->committee().hash()) << "height " << h;
    ASSERT_EQ(a.last_outcomes.size(), b.last_outcomes.size());
    for (size_t k = 0; k < a.last_outcomes.size(); ++k)
      EXPECT_EQ(a.last_outcomes[k].reason, b.last_outcomes[k].reason);
  }
  for (const auto& [key, e] : a.trust->nodes())
    EXPECT_EQ(e.score_ppm, b.trust->nodes().at(key).score_ppm) << e.name;
}

TEST(Trust, WithoutEpochsOnlyRecentHeightsAreKept) {
  // A fixed committee never ends an epoch, so nothing else would ever drop a height.
  Net n(5, 4, 0);
  const uint64_t w = TrustState::kRecentWithoutEpochs;
  for (uint64_t i = 0; i < w + 300; ++i) n.block({0, 1, 2, 3});
  EXPECT_LE(n.trust->heights_in_memory(), 2 * w);
  EXPECT_GE(n.trust->heights_in_memory(), 2 * w - 2);
  uint64_t oldest_kept = n.height - w + 1;
  n.block({0, 1, 2, 3}, {endorse(n, 4, oldest_kept - 1), endorse(n, 4, n.height)});
  EXPECT_FALSE(n.last_outcomes[0].accepted);
  EXPECT_NE(n.last_outcomes[0].reason.find("not a recent executed height"), std::string::npos);
  EXPECT_TRUE(n.last_outcomes[1].accepted) << n.last_outcomes[1].reason;
  // With epochs the bound is the epoch's: the last two epochs' heights.
  Net e(5, 4, 16);
  for (int i = 0; i < 160; ++i) e.block({0, 1, 2, 3});
  EXPECT_LE(e.trust->heights_in_memory(), 2 * 16 + 16);
}

TEST(Trust, TwoReplicasFoldingTheSameBlocksAgree) {
  Net a(7), b(7);
  for (int i = 0; i < 40; ++i) {
    std::vector<Bytes> txs;
    if (i % 3 == 0) txs.push_back(endorse(a, 5, a.height));
    a.block({0, 1, 3}, txs, static_cast<uint64_t>(i / 10));
    b.block({0, 1, 3}, txs, static_cast<uint64_t>(i / 10));
    ASSERT_EQ(a.trust->hash(), b.trust->hash()) << "height " << a.height;
  }
  EXPECT_EQ(a.trust->committee().hash(), b.trust->committee().hash());
}

// ---- hand-overs and the light client

struct Chain {
  Net net{7, 4, 16};
  std::vector<ledger::HandOver> handovers;
  std::vector<ledger::Committee> committees;  // by epoch

  // Runs `epochs` epochs; at each end builds the hand-over header certified by the outgoing
  // committee (its first three members).
  explicit Chain(int epochs) {
    committees.push_back(net.trust->committee());
    for (int e = 0; e < epochs; ++e) {
      ledger::Committee cur = net.trust->committee();
      net.epoch({0, 1, 2}, [&](uint64_t h) {
        return h % 4 == 0 ? std::vector<Bytes>{endorse(net, 6, h - 1)} : std::vector<Bytes>{};
      });
      handovers.push_back(make(cur, net.trust->committee(), {0, 1, 2}));
      committees.push_back(net.trust->committee());
    }
  }
  ledger::HandOver make(const ledger::Committee& cur, const ledger::Committee& next,
                        const std::vector<uint32_t>& signers, uint64_t height = 0) const {
    ledger::HandOver ho;
    ho.header.chain_id = kChain;
    ho.header.epoch = cur.epoch;
    ho.header.height = height ? height : (cur.epoch + 1) * 16;
    ho.header.committee_hash = cur.hash();
    ho.header.next_committee_hash = next.hash();
    ho.signers = cur.members.size();
    ho.next = next;
    for (uint32_t s : signers) {
      const auto& k = net.key_of(cur.members[s]);
      ledger::sign_header(ho.cert, ho.header, k, s);
    }
    return ho;
  }
  Result<ledger::Committee> follow(const std::vector<ledger::HandOver>& c, uint64_t to) const {
    return ledger::follow_handovers(kChain, 16, committees[0], c, to);
  }
};

TEST(HandOver, TheLightClientFollowsTheChainFromGenesisOrAPinnedCheckpoint) {
  Chain c(4);
  auto last = c.follow(c.handovers, 4);
  ASSERT_TRUE(last.ok()) << last.error().reason;
  EXPECT_EQ(last->hash(), c.committees[4].hash());
  auto pinned = ledger::follow_handovers(kChain, 16, c.committees[2], c.handovers, 4);
  ASSERT_TRUE(pinned.ok()) << pinned.error().reason;
  EXPECT_EQ(pinned->hash(), c.committees[4].hash());
  // The committee changed along the way (node 6 endorsed its way in), so this is a real walk.
  EXPECT_NE(c.committees[0].members, c.committees[4].members);
}

// What GET /v1/checkpoint serves and `attestnet checkpoint` checks: a committee and the
// hand-overs proving it from genesis.
TEST(HandOver, ACheckpointProofIsCheckedFromGenesis) {
  Chain c(3);
  const ledger::Genesis& g = c.net.genesis;
  auto proof = ledger::checkpoint_proof_to_json(kChain, c.committees[3], c.handovers);
  auto ok = ledger::checkpoint_from_proof(nlohmann::json::parse(proof.dump()), g);
  ASSERT_TRUE(ok.ok()) << ok.error().reason;
  EXPECT_EQ(ok->hash(), c.committees[3].hash());
  // A node that serves another committee than its hand-overs lead to is caught.
  ledger::Committee other = c.committees[2];
  other.epoch = 3;
  auto lie = ledger::checkpoint_proof_to_json(kChain, other, c.handovers);
  auto r = ledger::checkpoint_from_proof(lie, g);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCommitteeMismatch);
  // Missing hand-overs, and a forged one, are refused.
  auto shortp = ledger::checkpoint_proof_to_json(kChain, c.committees[3],
                                                 {c.handovers.begin(), c.handovers.begin() + 2});
  EXPECT_FALSE(ledger::checkpoint_from_proof(shortp, g).ok());
  auto forged = c.handovers;
  forged[1] = c.make(c.committees[1], c.committees[2], {0, 1}, 32);  // below threshold
  EXPECT_FALSE(ledger::checkpoint_from_proof(
                   ledger::checkpoint_proof_to_json(kChain, c.committees[3], forged), g)
                   .ok());
  // Another chain's checkpoint.
  auto foreign = proof;
  foreign["chain_id"] = "another";
  EXPECT_EQ(ledger::checkpoint_from_proof(foreign, g).error().code, Errc::kWrongChain);
}

TEST(HandOver, ForgedHandOversAreRefused) {
  Chain c(3);
  auto expect_refused = [&](std::vector<ledger::HandOver> chain, const std::string& why) {
    auto r = c.follow(chain, 3);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_NE(r.error().reason.find(why), std::string::npos) << why << " / " << r.error().reason;
  };
  // Signed by a committee that was not current: epoch 1's hand-over certified by epoch 0's keys
  // arranged as if they were epoch 1's.
  {
    auto chain = c.handovers;
    ledger::Committee impostor = c.committees[0];
    impostor.epoch = 1;
    chain[1] = c.make(impostor, c.committees[2], {0, 1, 2}, 32);
    expect_refused(chain, "names committee");
  }
  // Below threshold.
  {
    auto chain = c.handovers;
    chain[1] = c.make(c.committees[1], c.committees[2], {0, 1}, 32);
    expect_refused(chain, "3 required");
  }
  // Skipping an epoch.
  {
    auto chain = c.handovers;
    chain.erase(chain.begin() + 1);
    expect_refused(chain, "skips");
  }
  // Not at the epoch's end.
  {
    auto chain = c.handovers;
    chain[0] = c.make(c.committees[0], c.committees[1], {0, 1, 2}, 15);
    expect_refused(chain, "not the last block");
  }
  // Naming a slashed node: the next committee excludes a key and a later one seats it early.
  {
    auto chain = c.handovers;
    ledger::Committee next1 = c.committees[1];
    crypto::PublicKey offender = c.committees[0].members[3];
    next1.excluded.push_back({offender, 10});
    chain[0] = c.make(c.committees[0], next1, {0, 1, 2});
    ledger::Committee next2 = c.committees[2];
    next2.members[0] = offender;
    chain[1] = c.make(next1, next2, {0, 1, 2});
    expect_refused(chain, "excluded for proven misbehaviour");
  }
  // A next committee that is not what the certified header names.
  {
    auto chain = c.handovers;
    chain[2].next.members[0] = c.committees[0].members[0] == chain[2].next.members[0]
                                   ? c.committees[0].members[1]
                                   : c.committees[0].members[0];
    expect_refused(chain, "the certified header names");
  }
  // Too short.
  {
    auto chain = c.handovers;
    chain.pop_back();
    expect_refused(chain, "epoch 3 is needed");
  }
}

}  // namespace
}  // namespace attestnet::state
