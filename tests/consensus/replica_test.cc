// PBFT replica tests, named after the sections of Castro & Liskov (OSDI '99 / TOCS 2002) they
// check, as etcd-io/raft's raft_paper_test.go does. docs/consensus.md maps rules to tests.
#include "consensus/replica.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "harness.h"

namespace attestnet::consensus {
namespace {

using test::Cluster;
using test::Packet;

size_t count_type(const Actions& as, MsgType t) {
  size_t n = 0;
  for (const auto& a : as)
    if (auto* s = std::get_if<SendAction>(&a); s && s->type == t) ++n;
  return n;
}

// ---- §4.2 normal-case operation

TEST(Pbft42NormalCase, CommitsABatchOnEveryReplicaWithACommitCertificate) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  for (size_t r = 0; r < 4; ++r) {
    ASSERT_EQ(c.delivered[r].size(), 1u) << "replica " << r;
    EXPECT_EQ(c.delivered[r][0]->block.requests.size(), 4u);
    EXPECT_EQ(c.replicas[r]->last_executed(), 1u);
  }
  const auto& cb = *c.delivered[1][0];
  Bytes msg = commit_vote_message(c.cfg.chain_id, 0, cb.view, 1, cb.block.digest());
  EXPECT_TRUE(crypto::verify_quorum(cb.cert, c.cfg.committee, 3, as_view(msg)).ok());
  EXPECT_EQ(cb.cert.sigs.size(), 3u);
}

TEST(Pbft42NormalCase, PrimaryWaitsForAFullBatchOrTheBatchTimer) {
  Cluster c(4);
  c.request(Cluster::req(1, 1));
  c.run();
  EXPECT_EQ(c.replicas[1]->last_executed(), 0u) << "one request, batch of 4: wait";
  c.tick(5);
  EXPECT_EQ(c.replicas[1]->last_executed(), 1u) << "the batch timer proposes a partial batch";
}

TEST(Pbft42NormalCase, PipelinesBlocksButNeverBeyondTheHighWatermark) {
  Cluster c(4);
  // Backups never see prepares or commits: nothing commits, the primary fills the window.
  for (uint64_t i = 1; i <= 100; ++i) c.request(Cluster::req(1, i), {0});
  c.run([](const Packet& p) { return p.type != MsgType::kPrePrepare; });
  size_t pre_prepares = count_type(c.actions[0], MsgType::kPrePrepare);
  EXPECT_EQ(pre_prepares, c.cfg.window) << "L = window sequence numbers in flight, no more";
}

TEST(Pbft42NormalCase, BehindABlockInFlightOnlyAFullBatchIsPipelined) {
  Cluster c(4, [](ReplicaConfig& cfg) { cfg.pipeline_min_batch = cfg.batch_max; });
  auto only_pre_prepares = [](const Packet& p) { return p.type != MsgType::kPrePrepare; };
  c.request(Cluster::req(1, 1), {0});
  c.request(Cluster::req(1, 2), {0});
  c.tick(5, only_pre_prepares);  // the batch timer: a partial first block
  EXPECT_EQ(count_type(c.actions[0], MsgType::kPrePrepare), 1u);
  c.request(Cluster::req(1, 3), {0});
  c.request(Cluster::req(1, 4), {0});
  c.tick(20, only_pre_prepares);
  EXPECT_EQ(count_type(c.actions[0], MsgType::kPrePrepare), 1u)
      << "2 waiting behind a block in flight: they gather instead of a second small block";
  c.request(Cluster::req(1, 5), {0});
  c.request(Cluster::req(1, 6), {0});
  c.tick(5, only_pre_prepares);
  EXPECT_EQ(count_type(c.actions[0], MsgType::kPrePrepare), 2u) << "a full batch is pipelined";
}

TEST(Pbft42NormalCase, BehindABackloggedBlockAPartialBatchWaitsForTheMinimumInterval) {
  Cluster c(4, [](ReplicaConfig& cfg) {
    cfg.batch_wait_ms = 0;
    cfg.max_inflight_blocks = 1;
    cfg.min_block_interval_ms = 20;
  });
  c.request(Cluster::req(1, 1));  // proposed at once (t = 1000); in flight until the run
  c.request(Cluster::req(1, 2));
  c.request(Cluster::req(1, 3));
  c.tick(5);  // block 1 executes, and block 2 takes the two that waited for it (t = 1005)
  ASSERT_EQ(c.replicas[1]->last_executed(), 2u);
  EXPECT_EQ(c.delivered[1][1]->block.requests.size(), 2u);
  EXPECT_EQ(c.replicas[0]->proposal_due_ms(), 0u) << "nothing held back";
  c.request(Cluster::req(1, 4));
  c.run();
  EXPECT_EQ(c.replicas[1]->last_executed(), 2u) << "behind a backlogged block: it waits";
  EXPECT_EQ(c.replicas[0]->proposal_due_ms(), 1025u) << "20 ms after block 2's proposal";
  c.tick(15);
  EXPECT_EQ(c.replicas[1]->last_executed(), 2u) << "still within the interval";
  c.tick(5);
  EXPECT_EQ(c.replicas[1]->last_executed(), 3u) << "proposed when the interval ends";
  EXPECT_EQ(c.replicas[0]->proposal_due_ms(), 0u);
  for (uint64_t i = 5; i <= 8; ++i) c.request(Cluster::req(1, i));
  c.run();
  EXPECT_EQ(c.replicas[1]->last_executed(), 4u) << "a full batch never waits";
  c.tick(100);
  c.request(Cluster::req(1, 9));
  c.run();
  EXPECT_EQ(c.replicas[1]->last_executed(), 5u)
      << "the full batch found the primary idle (its requests had not waited): no interval, a "
         "request that finds it idle goes at once";
}

TEST(Pbft42NormalCase, NothingCommitsWithoutAQuorumOfPrepares) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  // Two replicas' messages are lost: only 2 of 4 take part, below 2f+1 = 3.
  c.run([](const Packet& p) { return p.from >= 2 || p.to >= 2; });
  for (size_t r = 0; r < 4; ++r) EXPECT_EQ(c.replicas[r]->last_executed(), 0u);
}

TEST(Pbft42NormalCase, DropsMessagesWithBadSignaturesAndCountsThem) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i), {0});
  // Corrupt the primary's pre-prepare signature on its way to replica 1.
  auto pp = c.net.front();
  c.net.clear();
  Bytes bad = *pp.bytes;
  bad.back() ^= 1;
  auto out = c.replicas[1]->on_message(as_view(bad), c.now);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(c.replicas[1]->counters().dropped_bad_signature, 1u);
}

TEST(Pbft42NormalCase, DropsMessagesFromNonMembersAndGarbage) {
  Cluster c(4);
  auto outsider = crypto::SecretKey::from_seed(crypto::test_seed("outsider"));
  Envelope e = sign_envelope(outsider, 9, "unit", 0, MsgType::kPrepare, Vote{0, 1, {}}.encode());
  c.replicas[1]->on_message(as_view(e.encode()), c.now);
  EXPECT_EQ(c.replicas[1]->counters().dropped_non_member, 1u);
  Bytes garbage = {1, 2, 3};
  c.replicas[1]->on_message(as_view(garbage), c.now);
  EXPECT_EQ(c.replicas[1]->counters().dropped_malformed, 1u);
}

TEST(Pbft42NormalCase, DropsVotesForOtherViewsAndOutsideTheWindow) {
  Cluster c(4);
  Envelope old_view =
      sign_envelope(c.keys[2], 2, "unit", 0, MsgType::kPrepare, Vote{0, 100, {}}.encode());
  c.replicas[1]->on_message(as_view(old_view.encode()), c.now);
  EXPECT_EQ(c.replicas[1]->counters().dropped_out_of_window, 1u);
}

TEST(Pbft42NormalCase, ValidationBeforePrepareRejectsAnInvalidBlock) {
  Cluster c(4);
  c.hooks.validate = [](const Request& q) -> Status {
    if (q.client_id == 666) return make_error(Errc::kBadValue, "client 666 is not enrolled");
    return {};
  };
  for (size_t i = 0; i < 4; ++i) c.replicas[i] = c.make(static_cast<ReplicaId>(i));
  // The primary alone (as a Byzantine primary would) proposes a request backups reject.
  Block b{1, 0, c.now, 0, {Cluster::req(666, 1)}, {}};
  Envelope pp =
      sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kPrePrepare, PrePrepare{0, 1, b}.encode());
  auto out = c.replicas[1]->on_message(as_view(pp.encode()), c.now);
  EXPECT_EQ(count_type(out, MsgType::kPrepare), 0u);
  EXPECT_EQ(c.replicas[1]->counters().dropped_invalid_block, 1u);
}

TEST(Pbft42NormalCase, BlockTimeOutsideTheSkewBoundIsRejected) {
  Cluster c(4);
  Block b{1, 0, c.now + c.cfg.max_clock_skew_ms + 1, 0, {Cluster::req(1, 1)}, {}};
  Envelope pp =
      sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kPrePrepare, PrePrepare{0, 1, b}.encode());
  c.replicas[1]->on_message(as_view(pp.encode()), c.now);
  EXPECT_EQ(c.replicas[1]->counters().dropped_invalid_block, 1u);
}

TEST(Pbft42NormalCase, ASecondPrePrepareForTheSameSlotIsIgnored) {
  Cluster c(4);
  Block a{1, 0, c.now, 0, {Cluster::req(1, 1)}, {}};
  Block b{1, 0, c.now, 0, {Cluster::req(1, 2)}, {}};
  auto send = [&](const Block& blk) {
    Envelope pp = sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kPrePrepare,
                                PrePrepare{0, 1, blk}.encode());
    return c.replicas[1]->on_message(as_view(pp.encode()), c.now);
  };
  EXPECT_EQ(count_type(send(a), MsgType::kPrepare), 1u);
  EXPECT_EQ(count_type(send(b), MsgType::kPrepare), 0u) << "a replica prepares one digest per slot";
  EXPECT_EQ(c.replicas[1]->counters().dropped_conflicting, 1u);
}

TEST(Pbft42NormalCase, ExecutesEachRequestAtMostOnce) {
  Cluster c(4);
  Request q = Cluster::req(1, 1);
  c.request(q);
  c.tick(5);
  ASSERT_EQ(c.replicas[2]->last_executed(), 1u);
  // The client retransmits: it gets the reply again, nothing is proposed or executed twice.
  c.actions.assign(4, {});
  c.request(q);
  c.tick(20);
  EXPECT_EQ(c.replicas[2]->last_executed(), 1u);
  EXPECT_EQ(c.replicas[2]->counters().requests_executed, 1u);
  size_t replies = 0;
  for (const auto& a : c.actions[2]) replies += std::holds_alternative<ReplyAction>(a);
  EXPECT_EQ(replies, 1u);
}

TEST(Pbft42NormalCase, PersistsEverySignedMessageBeforeSendingIt) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 12; ++i) c.request(Cluster::req(1, i));
  c.tick(30);
  for (size_t r = 0; r < 4; ++r) {
    std::set<Bytes> persisted;
    for (const auto& a : c.actions[r]) {
      if (auto* p = std::get_if<PersistAction>(&a)) persisted.insert(p->record.bytes);
      if (auto* s = std::get_if<SendAction>(&a)) {
        if (s->type == MsgType::kPrePrepare || s->type == MsgType::kPrepare ||
            s->type == MsgType::kCommit || s->type == MsgType::kCheckpoint ||
            s->type == MsgType::kViewChange || s->type == MsgType::kNewView) {
          EXPECT_TRUE(persisted.count(*s->bytes))
              << "replica " << r << " sent a " << msg_type_name(s->type) << " before persisting it";
        }
      }
    }
  }
}

// ---- §4.3 garbage collection

TEST(Pbft43Checkpoints, BecomeStableAtTwoFPlusOneAndCollectTheLog) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 16; ++i) c.request(Cluster::req(1, i));
  c.tick(20);
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(c.replicas[r]->last_executed(), 4u);
    EXPECT_EQ(c.replicas[r]->stable_seq(), 4u) << "K = 4";
  }
  // The state digest the checkpoint certified is the same everywhere.
  EXPECT_EQ(c.replicas[0]->state_digest(), c.replicas[3]->state_digest());
}

TEST(Pbft43Checkpoints, TheWindowMovesWithTheStableCheckpoint) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 80; ++i) c.request(Cluster::req(1, i));
  c.tick(100);
  EXPECT_EQ(c.replicas[1]->last_executed(), 20u) << "more blocks than one window (8) committed";
  EXPECT_GE(c.replicas[1]->stable_seq(), 16u);
}

// ---- §4.4 view changes

TEST(Pbft44ViewChange, ASilentPrimaryIsReplacedAndRequestsCommit) {
  Cluster c(4);
  c.up[0] = false;  // primary of view 0 is down
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.tick(400);
  for (size_t r = 1; r < 4; ++r) {
    EXPECT_EQ(c.replicas[r]->view(), 1u);
    EXPECT_FALSE(c.replicas[r]->in_view_change());
    EXPECT_EQ(c.replicas[r]->last_executed(), 1u);
  }
}

TEST(Pbft44ViewChange, APreparedBlockSurvivesTheViewChange) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  // Everyone prepares, but commits are lost: the block is prepared, not committed.
  c.run([](const Packet& p) { return p.type == MsgType::kCommit; });
  ASSERT_EQ(c.replicas[1]->last_executed(), 0u);
  Hash32 prepared_digest;
  for (const auto& a : c.actions[0])
    if (auto* s = std::get_if<SendAction>(&a); s && s->type == MsgType::kPrePrepare) {
      auto e = Envelope::decode(as_view(*s->bytes));
      prepared_digest = PrePrepare::decode(as_view(e->body))->block.digest();
    }
  c.up[0] = false;
  c.tick(400);
  ASSERT_EQ(c.replicas[1]->view(), 1u);
  ASSERT_GE(c.delivered[1].size(), 1u);
  EXPECT_EQ(c.delivered[1][0]->block.digest(), prepared_digest)
      << "the new primary must re-propose the prepared block at the same height";
  EXPECT_EQ(c.delivered[1][0]->view, 1u);
}

TEST(Pbft44ViewChange, ANewViewWhoseOSetDoesNotFollowFromVIsRejected) {
  Cluster c(4);
  c.up[0] = false;
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  // Collect replica 1's (the new primary's) NEW-VIEW and tamper with O before delivery.
  std::optional<Packet> nv;
  c.tick(400, [&](const Packet& p) {
    if (p.type == MsgType::kNewView && p.to == 2 && !nv) {
      nv = p;
      return true;
    }
    return false;
  });
  ASSERT_TRUE(nv.has_value());
  auto env = Envelope::decode(as_view(*nv->bytes));
  auto body = NewView::decode(as_view(env->body));
  Block forged{1, 1, c.now, 1, {Cluster::req(9, 9)}, {}};
  body->pre_prepares.push_back(sign_envelope(c.keys[1], 1, "unit", 0, MsgType::kPrePrepare,
                                             PrePrepare{1, 99, forged}.encode()));
  Envelope forged_nv = sign_envelope(c.keys[1], 1, "unit", 0, MsgType::kNewView, body->encode());
  ReplicaConfig cfg = c.cfg;
  cfg.self = 3;
  Replica fresh(cfg, c.keys[3], {});
  fresh.on_message(as_view(forged_nv.encode()), c.now);
  EXPECT_EQ(fresh.counters().dropped_invalid_new_view, 1u);
}

TEST(Pbft44ViewChange, FPlusOneViewChangesPullALaggingReplicaAlong) {
  Cluster c(4);
  // Replicas 2 and 3 time out; replica 1 has no pending request and no timer of its own.
  c.up[0] = false;
  c.request(Cluster::req(1, 1), {2, 3});
  c.tick(150);
  EXPECT_GE(c.replicas[1]->view(), 1u) << "f+1 VIEW-CHANGEs for view 1 make replica 1 join";
  EXPECT_GE(c.replicas[1]->counters().view_changes, 1u);
  EXPECT_EQ(c.replicas[1]->pending_requests(), 0u) << "replica 1 had no timer of its own";
}

TEST(Pbft44ViewChange, AReplicaWhoseTimerAloneExpiresComplainsAndKeepsVoting) {
  Cluster c(4);
  // Only replica 3 holds this request, and the primary never orders it: replica 3's timer
  // alone expires. One complaint is below f+1: nobody changes view, replica 3 included.
  c.request(Cluster::req(7, 1), {3});
  c.tick(300);
  EXPECT_GE(c.replicas[3]->counters().complaints, 2u) << "it complains again every timeout";
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(c.replicas[r]->view(), 0u) << "replica " << r;
    EXPECT_FALSE(c.replicas[r]->in_view_change()) << "replica " << r;
  }
  // It still votes: with replica 2 silent, blocks commit only because replica 3 takes part.
  c.up[2] = false;
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i), {0, 1, 3});
  c.tick(20);
  EXPECT_EQ(c.replicas[0]->last_executed(), 1u);
  EXPECT_EQ(c.replicas[3]->last_executed(), 1u);
}

TEST(Pbft44ViewChange, FPlusOneComplaintsStartTheViewChangeEverywhere) {
  Cluster c(4);
  // Replicas 2 and 3 hold a request the primary never orders: two complaints (f+1) move all
  // four to view 1, replica 1 (no timer of its own) too, and the new primary orders it.
  c.request(Cluster::req(7, 1), {2, 3});
  c.tick(400);
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_GE(c.replicas[r]->view(), 1u) << "replica " << r;
    EXPECT_FALSE(c.replicas[r]->in_view_change()) << "replica " << r;
  }
  EXPECT_EQ(c.replicas[1]->counters().complaints, 0u);
  EXPECT_GE(c.replicas[1]->last_executed(), 1u) << "the new primary took the request";
}

// ---- state transfer (TOCS §6.2) and recovery

TEST(PbftStateTransfer, ALaggingReplicaCatchesUpAndVerifiesWhatItGets) {
  Cluster c(4);
  c.up[3] = false;
  for (uint64_t i = 1; i <= 40; ++i) c.request(Cluster::req(1, i));
  c.tick(100);
  ASSERT_EQ(c.replicas[0]->last_executed(), 10u);
  EXPECT_EQ(c.replicas[3]->last_executed(), 0u);
  c.up[3] = true;
  c.tick(300);
  EXPECT_EQ(c.replicas[3]->last_executed(), 10u);
  EXPECT_EQ(c.replicas[3]->state_digest(), c.replicas[0]->state_digest());
  EXPECT_GT(c.replicas[3]->counters().state_transfer_blocks, 0u);
}

TEST(PbftStateTransfer, AForgedCommitCertificateIsRejected) {
  Cluster c(4);
  ReplicaConfig cfg = c.cfg;
  cfg.self = 3;
  Replica lagging(cfg, c.keys[3], {});
  CommittedBlock cb;
  cb.view = 0;
  cb.block = Block{1, 0, c.now, 0, {Cluster::req(5, 5)}, {}};
  Bytes msg = commit_vote_message("unit", 0, 0, 1, cb.block.digest());
  cb.cert.add(0, c.keys[0].sign(as_view(msg)));
  cb.cert.add(1, c.keys[1].sign(as_view(msg)));  // only 2 < 2f+1
  StateReply rep;
  rep.blocks.push_back(cb);
  Envelope e = sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kStateReply, rep.encode());
  lagging.on_message(as_view(e.encode()), c.now);
  EXPECT_EQ(lagging.last_executed(), 0u);
  EXPECT_EQ(lagging.counters().dropped_invalid_state, 1u);
}

// ---- what a replica holds in memory does not grow with the ledger

// Replicas whose executed blocks below the window are read back from their own records (the
// node reads its store), counting the reads.
void give_load_block(Cluster& c) {
  c.blocks_from_disk = true;
  for (size_t i = 0; i < c.replicas.size(); ++i) c.replicas[i] = c.make(static_cast<ReplicaId>(i));
}

TEST(PbftMemory, OldBlocksAreServedFromTheRecordsAndALaggingReplicaStillCatchesUp) {
  Cluster c(4);
  give_load_block(c);
  c.up[3] = false;
  for (uint64_t i = 1; i <= 200; ++i) c.request(Cluster::req(1, i), {0, 1, 2});
  c.tick(400);
  ASSERT_EQ(c.replicas[0]->last_executed(), 50u);
  ASSERT_GE(c.replicas[0]->stable_seq(), 48u);
  // The window (8) below the checkpoint, and what is above it: not all 50.
  EXPECT_LE(c.replicas[0]->blocks_in_memory(), 2 * c.cfg.window);
  ASSERT_EQ(c.replicas[3]->last_executed(), 0u);
  c.up[3] = true;
  c.tick(1000);
  EXPECT_EQ(c.replicas[3]->last_executed(), 50u);
  EXPECT_EQ(c.replicas[3]->state_digest(), c.replicas[0]->state_digest());
  EXPECT_GT(c.block_loads, 0u) << "heights 1..40 were served from the records";
  EXPECT_EQ(c.replicas[3]->counters().dropped_invalid_state, 0u);
}

TEST(PbftMemory, WithoutAWayToReadBlocksBackEveryExecutedBlockIsKept) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 80; ++i) c.request(Cluster::req(1, i));
  c.tick(200);
  ASSERT_EQ(c.replicas[0]->last_executed(), 20u);
  EXPECT_EQ(c.replicas[0]->blocks_in_memory(), 20u);
}

TEST(PbftMemory, ExecutedRequestsAreForgottenBeyondTheRetentionAndThenCountAsNew) {
  Cluster c(4, [](ReplicaConfig& cfg) { cfg.executed_request_retention = 8; });
  Request first = Cluster::req(1, 1);
  c.request(first);
  for (uint64_t i = 2; i <= 120; ++i) c.request(Cluster::req(1, i));
  c.tick(300);
  ASSERT_EQ(c.replicas[2]->last_executed(), 30u);
  ASSERT_GE(c.replicas[2]->stable_seq(), 28u);
  // Requests of blocks at most 8 below the checkpoint (and above it), not all 120.
  EXPECT_LE(c.replicas[2]->requests_in_memory(), 4u * (8 + 2 + 4));
  // A copy of the first request now is proposed and executed again; the ledger, which keeps
  // every request id it recorded, records it once (LedgerBuilder).
  c.request(first);
  c.tick(20);
  EXPECT_EQ(c.replicas[2]->last_executed(), 31u);
  EXPECT_EQ(c.replicas[2]->counters().requests_executed, 121u);
}

// Only the primary takes proposal candidates; a backup once kept every request id it was sent
// in its arrival-order list until a view change, 32 bytes each (session 25).
TEST(PbftMemory, ABackupsProposalCandidatesStayWithinTheRequestsPending) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 2000; ++i) c.request(Cluster::req(1, i));
  c.tick(2000);
  ASSERT_EQ(c.replicas[2]->counters().requests_executed, 2000u);
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(c.replicas[r]->pending_requests(), 0u) << "replica " << r;
    EXPECT_EQ(c.replicas[r]->pending_order_size(), 0u) << "replica " << r;
  }
  // A request that no block carries holds the ones behind it at the front; those are dropped
  // once they are many, and it stays, still first in line.
  Request stuck = Cluster::req(2, 1);
  c.request(stuck, {2});
  for (uint64_t i = 1; i <= 3000; ++i) c.request(Cluster::req(1, 10000 + i), {0, 1, 2, 3});
  c.tick(2000);
  EXPECT_EQ(c.replicas[2]->pending_requests(), 1u);
  EXPECT_LE(c.replicas[2]->pending_order_size(), 4u * 1 + 1024 + c.cfg.batch_max);
  EXPECT_GE(c.replicas[2]->pending_order_size(), 1u);
}

TEST(PbftRecovery, ARestartedReplicaResumesFromItsRecordsWithoutEquivocating) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 12; ++i) c.request(Cluster::req(1, i));
  c.tick(30);
  Seq before = c.replicas[2]->last_executed();
  Hash32 digest = c.replicas[2]->state_digest();
  c.restart(2);
  EXPECT_EQ(c.replicas[2]->last_executed(), before);
  EXPECT_EQ(c.replicas[2]->state_digest(), digest);
  for (uint64_t i = 13; i <= 20; ++i) c.request(Cluster::req(1, i));
  c.tick(30);
  EXPECT_EQ(c.replicas[2]->last_executed(), c.replicas[0]->last_executed());
  EXPECT_EQ(c.replicas[2]->counters().refused_equivocation, 0u);
}

// Ten blocks of four requests, with blocks read back from the records: stable at 8.
void ten_blocks(Cluster& c) {
  give_load_block(c);
  for (uint64_t i = 1; i <= 40; ++i) c.request(Cluster::req(1, i));
  c.tick(100);
}

TEST(PbftRecovery, ARestartedReplicaResumesFromItsStableCheckpoint) {
  Cluster c(4);
  ten_blocks(c);
  ASSERT_EQ(c.replicas[2]->last_executed(), 10u);
  ASSERT_EQ(c.replicas[2]->stable_seq(), 8u);
  Hash32 digest = c.replicas[2]->state_digest();
  Seq at = c.restart_from_checkpoint(2);
  EXPECT_EQ(at, 8u);
  // Only the blocks above the checkpoint were executed again, into the same state.
  EXPECT_EQ(c.replicas[2]->counters().blocks_executed, 2u);
  EXPECT_EQ(c.replicas[2]->last_executed(), 10u);
  EXPECT_EQ(c.replicas[2]->state_digest(), digest);
  EXPECT_EQ(c.replicas[2]->stable_seq(), 8u);
  // It takes part as before: the others go on with it, and it proposes when its view comes.
  for (uint64_t i = 41; i <= 80; ++i) c.request(Cluster::req(1, i));
  c.tick(100);
  EXPECT_EQ(c.replicas[2]->last_executed(), 20u);
  EXPECT_EQ(c.replicas[2]->state_digest(), c.replicas[0]->state_digest());
  EXPECT_EQ(c.replicas[2]->counters().refused_equivocation, 0u);
  // A lagging replica catches up from it: what it holds below the checkpoint it proves with
  // the proof it resumed with.
  c.up[3] = false;
  for (uint64_t i = 81; i <= 120; ++i) c.request(Cluster::req(1, i), {0, 1, 2});
  c.tick(100);
  c.restart_from_checkpoint(2);
  c.up[3] = true;
  c.replicas[3] = c.make(3);
  c.delivered[3].clear();
  c.disks[3].clear();
  for (uint64_t i = 121; i <= 124; ++i) c.request(Cluster::req(1, i));
  c.tick(1000, [](const Packet& p) { return p.from != 2 && p.to == 3; });  // only from 2
  EXPECT_EQ(c.replicas[3]->last_executed(), c.replicas[0]->last_executed());
  EXPECT_EQ(c.replicas[3]->state_digest(), c.replicas[0]->state_digest());
  EXPECT_EQ(c.replicas[3]->counters().dropped_invalid_state, 0u);
}

TEST(PbftRecovery, AForgedOrForeignCheckpointIsNotResumedFrom) {
  Cluster c(4);
  ten_blocks(c);
  std::optional<StableCheckpoint> cp;
  for (const auto& rec : c.disks[1]) keep_newest_checkpoint(cp, rec, 10);
  ASSERT_TRUE(cp);
  ASSERT_EQ(cp->seq, 8u);
  ReplicaConfig rc = c.cfg;
  rc.self = 1;
  StableCheckpoint forged = *cp;
  forged.digest[0] ^= 1;
  auto r = Replica::start_recovery(rc, c.keys[1], c.hooks_of(1));
  Status st = r->resume_at(forged, 0);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().reason.find("another state"), std::string::npos) << st.error().reason;
  StableCheckpoint short_proof = *cp;
  short_proof.proof.resize(2);
  EXPECT_EQ(r->resume_at(short_proof, 0).error().code, Errc::kBelowThreshold);
  rc.base_height = 8;  // a later epoch's replica: 8 is where it starts, not inside it
  auto later = Replica::start_recovery(rc, c.keys[1], c.hooks_of(1));
  EXPECT_FALSE(later->resume_at(*cp, 0).ok());
  // A host that cannot read blocks back keeps every block in memory: it replays them all.
  rc.base_height = 0;
  auto forgetful = Replica::start_recovery(rc, c.keys[1], c.hooks);
  EXPECT_FALSE(forgetful->resume_at(*cp, 0).ok());
  // Unchanged by the refusals: a full replay still recovers it.
  for (const auto& rec : c.disks[1]) r->replay(rec);
  r->finish_recovery();
  EXPECT_EQ(r->last_executed(), 10u);
  EXPECT_EQ(r->state_digest(), c.replicas[1]->state_digest());
  // Only the newest checkpoint at or below the ledger's height is a resume point.
  std::optional<StableCheckpoint> below;
  for (const auto& rec : c.disks[1]) keep_newest_checkpoint(below, rec, 7);
  ASSERT_TRUE(below);
  EXPECT_EQ(below->seq, 4u);
}

TEST(PbftRecovery, ARestartedPrimaryDoesNotReuseASequenceNumber) {
  // Classic persistence (no leases): the restarted primary goes on proposing in its view.
  Cluster c(4, [](ReplicaConfig& cfg) { cfg.prepare_lease = 0; });
  // The primary proposes, but nobody hears it; it crashes and comes back.
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i), {0});
  c.net.clear();
  c.restart(0);
  for (uint64_t i = 5; i <= 8; ++i) c.request(Cluster::req(1, i), {0});
  std::vector<Seq> seqs;
  for (const auto& p : c.net)
    if (p.type == MsgType::kPrePrepare && p.to == 1) {
      auto e = Envelope::decode(as_view(*p.bytes));
      seqs.push_back(PrePrepare::decode(as_view(e->body))->seq);
    }
  ASSERT_FALSE(seqs.empty());
  for (Seq s : seqs) EXPECT_GE(s, 2u) << "seq 1 was signed before the crash";
}

// ---- prepare leases (replica.h): pre-prepares and prepares leave before their records are
// synced once a durable lease covers them; a restart that lost records never signs those
// slots again.

// The sends of type `t` that replica `r` made for slot `seq`, in order.
std::vector<const SendAction*> sends_for(const Cluster& c, ReplicaId r, MsgType t, Seq seq) {
  std::vector<const SendAction*> out;
  for (const auto& a : c.actions[r]) {
    auto* s = std::get_if<SendAction>(&a);
    if (!s || s->type != t) continue;
    auto e = Envelope::decode(as_view(*s->bytes));
    Seq at = t == MsgType::kPrePrepare ? PrePrepare::decode(as_view(e->body))->seq
                                       : Vote::decode(as_view(e->body))->seq;
    if (at == seq) out.push_back(s);
  }
  return out;
}

TEST(PbftLease, PreparesLeaveUnsyncedOnceALeaseCoveringThemIsDurable) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  auto first = sends_for(c, 1, MsgType::kPrepare, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0]->durable) << "no durable lease yet: the prepare waits for the sync";
  ASSERT_FALSE(c.disks[1].empty());
  bool leased = std::any_of(c.disks[1].begin(), c.disks[1].end(), [](const PersistRecord& r) {
    return r.kind == PersistRecord::Kind::kLease && r.view == 0 && r.seq >= 1;
  });
  EXPECT_TRUE(leased);
  for (uint64_t i = 5; i <= 8; ++i) c.request(Cluster::req(1, i));
  c.run();
  for (ReplicaId r = 1; r < 4; ++r) {
    auto second = sends_for(c, r, MsgType::kPrepare, 2);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_FALSE(second[0]->durable) << "replica " << r << ": its lease is durable";
    auto commit = sends_for(c, r, MsgType::kCommit, 2);
    ASSERT_EQ(commit.size(), 1u);
    EXPECT_TRUE(commit[0]->durable) << "a commit always waits for the sync";
    EXPECT_EQ(c.replicas[r]->last_executed(), 2u);
  }
  auto pp = sends_for(c, 0, MsgType::kPrePrepare, 2);
  ASSERT_EQ(pp.size(), 1u);
  EXPECT_FALSE(pp[0]->durable);
}

TEST(PbftLease, ABackupThatLostItsUnsyncedPrepareSignsNoOtherDigestForThatSlot) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  // Slot 2: only backup 1 hears the pre-prepare; its prepare leaves unsynced, then it loses
  // power.
  for (uint64_t i = 5; i <= 8; ++i) c.request(Cluster::req(1, i), {0});
  c.run([](const Packet& p) { return !(p.from == 0 && p.to == 1); });
  auto sent = sends_for(c, 1, MsgType::kPrepare, 2);
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_FALSE(sent[0]->durable);
  c.up[1] = false;
  c.restart(1, /*lose_unsynced=*/true);
  c.actions[1].clear();
  // A pre-prepare for the same slot with another block (an equivocating primary): signing a
  // prepare for it would be a second digest for (view 0, seq 2).
  Block b{2, 0, c.now, 0, {Cluster::req(9, 9)}, {}};
  Envelope other =
      sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kPrePrepare, PrePrepare{0, 2, b}.encode());
  c.absorb(1, c.replicas[1]->on_message(as_view(other.encode()), c.now));
  EXPECT_TRUE(sends_for(c, 1, MsgType::kPrepare, 2).empty());
  EXPECT_EQ(c.replicas[1]->counters().refused_after_restart, 1u);
  EXPECT_EQ(c.replicas[1]->counters().refused_equivocation, 0u);
}

TEST(PbftLease, ARestartedPrimaryProposesNothingItsLeaseCoversAndTheCommitteeMovesOn) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  c.up[0] = false;
  c.restart(0);
  c.actions[0].clear();
  for (uint64_t i = 5; i <= 8; ++i) c.request(Cluster::req(1, i));
  c.run();
  EXPECT_TRUE(sends_for(c, 0, MsgType::kPrePrepare, 2).empty())
      << "it cannot know what it proposed at slots its lease covers";
  c.tick(1000);
  for (ReplicaId r = 0; r < 4; ++r) {
    EXPECT_GE(c.replicas[r]->view(), 1u) << "replica " << r;
    EXPECT_EQ(c.replicas[r]->last_executed(), 2u) << "replica " << r;
  }
}

// ---- header certificates (the ledger's certificate, signed after execution)

TEST(PbftHeaderCertificate, TwoFPlusOneMatchingExecutionsCertifyTheHeader) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  Hash32 digest{7};
  for (ReplicaId r = 0; r < 4; ++r) c.absorb(r, c.replicas[r]->on_executed(1, digest, c.now));
  c.run();
  for (size_t r = 0; r < 4; ++r) {
    ASSERT_EQ(c.certified[r].size(), 1u) << "replica " << r;
    const auto& hc = c.certified[r][0];
    EXPECT_EQ(hc.header_digest, digest);
    Bytes msg = header_vote_message("unit", 0, 1, hc.view, digest);
    EXPECT_TRUE(crypto::verify_quorum(hc.cert, c.cfg.committee, 3, as_view(msg)).ok());
  }
}

TEST(PbftHeaderCertificate, AReplicaWhoseExecutionDivergesNoticesAndOthersStillCertify) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  for (ReplicaId r = 0; r < 4; ++r) {
    c.absorb(r, c.replicas[r]->on_executed(1, r == 3 ? Hash32{9} : Hash32{7}, c.now));
  }
  c.run();
  for (size_t r = 0; r < 3; ++r) EXPECT_EQ(c.certified[r].size(), 1u);
  EXPECT_TRUE(c.certified[3].empty());
  EXPECT_EQ(c.replicas[3]->counters().execution_divergence, 1u);
}

TEST(PbftHeaderCertificate, AReplicaNeverSignsTwoDigestsForOneHeight) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  c.absorb(1, c.replicas[1]->on_executed(1, Hash32{7}, c.now));
  auto second = c.replicas[1]->on_executed(1, Hash32{8}, c.now);
  EXPECT_TRUE(second.empty());
}

// ---- epochs (docs/trust.md): a replica runs heights base_height+1 .. last_height

size_t count_kind(const Actions& as, bool (*pred)(const Action&)) {
  return static_cast<size_t>(std::count_if(as.begin(), as.end(), pred));
}

TEST(PbftEpochs, AReplicaStartsFromItsBaseAndStopsAtTheEpochsLastHeight) {
  Cluster c(4, [](ReplicaConfig& cfg) {
    cfg.epoch = 3;
    cfg.base_height = 16;
    cfg.base_state_digest = Hash32{5};
    cfg.base_block_time = 900;
    cfg.last_height = 20;
    cfg.batch_max = 1;
  });
  for (uint64_t i = 1; i <= 8; ++i) c.request(Cluster::req(1, i));
  c.tick(50);
  for (size_t r = 0; r < 4; ++r) {
    ASSERT_EQ(c.delivered[r].size(), 4u) << "replica " << r;
    EXPECT_EQ(c.delivered[r].front()->block.height, 17u);
    EXPECT_EQ(c.delivered[r].back()->block.height, 20u);
    EXPECT_TRUE(c.replicas[r]->finished());
    // What did not fit is handed to the next epoch's replica, not dropped.
    EXPECT_EQ(c.replicas[r]->pending().size(), 4u);
  }
  // Finished: no view change however long the leftover requests wait.
  c.tick(2000);
  for (size_t r = 0; r < 4; ++r) EXPECT_EQ(c.replicas[r]->counters().view_changes, 0u);
  // The commit certificate is over this epoch's messages.
  const auto& cb = c.delivered[0].front();
  Bytes msg = commit_vote_message("unit", 3, cb->view, 17, cb->block.digest());
  EXPECT_TRUE(crypto::verify_quorum(cb->cert, c.cfg.committee, 3, as_view(msg)).ok());
}

TEST(PbftEpochs, MessagesOfAnotherEpochAreDroppedAndCounted) {
  Cluster c(4, [](ReplicaConfig& cfg) { cfg.epoch = 2; });
  Envelope pp =
      sign_envelope(c.keys[0], 0, "unit", 1, MsgType::kPrePrepare,
                    PrePrepare{0, 1, Block{1, 0, c.now, 0, {Cluster::req(1, 1)}, {}}}.encode());
  c.replicas[1]->on_message(as_view(pp.encode()), c.now);
  EXPECT_EQ(c.replicas[1]->counters().dropped_other_epoch, 1u);
}

TEST(PbftEpochs, ConflictingVotesFromOneMemberBecomeAMisbehaviourProof) {
  Cluster c(4);
  Envelope a =
      sign_envelope(c.keys[2], 2, "unit", 0, MsgType::kPrepare, Vote{0, 1, Hash32{1}}.encode());
  Envelope b =
      sign_envelope(c.keys[2], 2, "unit", 0, MsgType::kPrepare, Vote{0, 1, Hash32{2}}.encode());
  c.replicas[1]->on_message(as_view(a.encode()), c.now);
  Actions out = c.replicas[1]->on_message(as_view(b.encode()), c.now);
  ASSERT_EQ(count_kind(
                out, [](const Action& x) { return std::holds_alternative<MisbehaviourAction>(x); }),
            1u);
  const auto& m =
      std::get<MisbehaviourAction>(*std::find_if(out.begin(), out.end(), [](const Action& x) {
        return std::holds_alternative<MisbehaviourAction>(x);
      }));
  EXPECT_EQ(m.kind, MisbehaviourAction::kEquivocation);
  EXPECT_EQ(m.first, a);
  EXPECT_EQ(m.second, b);
}

TEST(PbftEpochs, AHeaderVoteForAnotherDigestIsReported) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  c.run();
  c.absorb(3, c.replicas[3]->on_executed(1, Hash32{9}, c.now));
  c.absorb(0, c.replicas[0]->on_executed(1, Hash32{7}, c.now));
  c.run();
  size_t reports = 0;
  for (const auto& x : c.actions[0]) {
    if (auto* m = std::get_if<MisbehaviourAction>(&x)) {
      EXPECT_EQ(m->kind, MisbehaviourAction::kBadHeaderVote);
      EXPECT_EQ(m->first.sender, 3u);
      ++reports;
    }
  }
  EXPECT_EQ(reports, 1u);
}

TEST(PbftEpochs, BlocksCarryHeaderCertificatesAndAForgedOneIsRejected) {
  Cluster c(4, [](ReplicaConfig& cfg) { cfg.batch_max = 1; });
  c.request(Cluster::req(1, 1));
  c.run();
  for (ReplicaId r = 0; r < 4; ++r) c.absorb(r, c.replicas[r]->on_executed(1, Hash32{7}, c.now));
  c.run();
  for (uint64_t i = 2; i <= 4; ++i) {
    c.request(Cluster::req(1, i));
    c.run();
  }
  bool carried = false;
  for (const auto& cb : c.delivered[1]) {
    for (const auto& ch : cb->block.certificates) {
      carried |= ch.height == 1 && ch.header_digest == Hash32{7} && ch.cert.sigs.size() == 4;
    }
  }
  EXPECT_TRUE(carried) << "the primary attaches the complete certificate of height 1";
  // A primary that attaches a certificate its committee did not sign: backups refuse the block.
  Block b{5, 0, c.now, 0, {Cluster::req(1, 9)}, {}};
  CertifiedHeader forged;
  forged.height = 2;
  forged.header_digest = Hash32{3};
  for (uint32_t i = 0; i < 3; ++i) forged.cert.add(i, c.keys[0].sign(as_view(Bytes{1})));
  b.certificates.push_back(forged);
  Envelope pp =
      sign_envelope(c.keys[0], 0, "unit", 0, MsgType::kPrePrepare, PrePrepare{0, 5, b}.encode());
  uint64_t before = c.replicas[2]->counters().dropped_invalid_block;
  c.replicas[2]->on_message(as_view(pp.encode()), c.now);
  EXPECT_EQ(c.replicas[2]->counters().dropped_invalid_block, before + 1);
}

}  // namespace
}  // namespace attestnet::consensus
