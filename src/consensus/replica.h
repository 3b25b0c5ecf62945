// PBFT replica: Castro & Liskov, "Practical Byzantine Fault Tolerance" (OSDI '99) and
// "PBFT and Proactive Recovery" (TOCS 2002), signature variant, as a pure deterministic state
// machine in the style of etcd-io/raft: no sockets, threads, clock reads or disk. Every entry
// point takes the current time as an argument and returns the Actions the host must carry out,
// IN ORDER: a Persist always precedes the Send of anything it records ("persist before send"),
// so a replica restarted from its persisted records never signs two conflicting messages.
//
// Sections implemented (docs/consensus.md maps them to tests):
//   §4.2 normal case: pre-prepare, prepare, commit; batching; pipelining inside watermarks
//   §4.3 garbage collection: checkpoints every K blocks, stable at 2f+1
//   §4.4 view changes: VIEW-CHANGE with checkpoint proof and prepared certificates; NEW-VIEW
//        with V and O, verified by recomputing O; the f+1 rule (TOCS §4.5.2) to join a view change
//   §4.5/TOCS §6.2 state transfer: committed blocks with their commit certificates, verified
//   at-most-once execution per request id; replies after execution
//   status messages with retransmission of VIEW-CHANGE / NEW-VIEW (concord-bft#704)
//
// REQUIRES: external synchronization (one thread drives a replica).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "consensus/messages.h"

namespace attestnet::consensus {

struct ReplicaConfig {
  std::string chain_id = "attestnet-devnet";
  uint64_t epoch = 0;
  std::vector<crypto::PublicKey> committee;  // n = 3f+1 members; primary(v) = v mod n
  ReplicaId self = 0;

  // Epochs (docs/trust.md): a replica runs ONE epoch, heights base_height+1 .. last_height.
  // It starts from the state its predecessor ended with (executed and stable at base_height)
  // and stops proposing, voting and changing views once last_height is executed; the host then
  // starts the next epoch's replica with the committee that block named.
  Seq base_height = 0;
  Hash32 base_state_digest{};
  uint64_t base_block_time = 0;
  Seq last_height = UINT64_MAX;

  uint32_t batch_max = 100;    // B: requests per block
  uint64_t batch_wait_ms = 5;  // T: the primary proposes a partial batch after this
  // The primary keeps at most this many proposed blocks above the last executed one (0: the
  // window is the only bound). While they are in flight, requests gather into the next batch:
  // fewer, fuller blocks when each block costs synced writes on every replica.
  uint32_t max_inflight_blocks = 0;
  // A block beyond the first in flight is proposed only once this many requests wait (0: any):
  // under moderate load the primary batches behind the block in flight instead of pipelining
  // many small blocks; under heavy load full batches are still pipelined.
  uint32_t pipeline_min_batch = 0;
  // Behind a backlogged proposal (its oldest request had waited for the block before it), a
  // batch that is not full is proposed no sooner than this after it (0: at once). Each block
  // costs every replica signatures, messages and a synced write whatever it holds: under
  // moderate load, proposing as soon as the previous block executed made many small blocks,
  // and their cost alone kept a small host busy. A request that finds the primary idle (its
  // last proposal was not backlogged) is proposed at once, so a lone client never waits.
  uint64_t min_block_interval_ms = 0;
  uint64_t checkpoint_interval = 16;  // K
  uint64_t window = 64;               // L: high watermark = stable + L (L >= 2K)
  uint64_t view_change_timeout_ms = 1000;
  uint32_t max_timeout_doublings = 4;  // the timeout grows 2^k up to this k
  uint64_t status_interval_ms = 250;
  uint64_t max_clock_skew_ms = 2000;   // |block_time - local clock| bound checked before prepare
  uint32_t state_transfer_batch = 64;  // blocks per StateReply
  // Prepare leases (PersistRecord): a lease covers this many sequence numbers ahead, and is
  // renewed when half of it is left. 0: off, every pre-prepare and prepare waits for a synced
  // write of its records (classic PBFT persistence).
  uint32_t prepare_lease = 32;
  size_t max_pending_requests = 200000;
  size_t max_future_messages = 4096;  // buffered messages for views not yet entered
  // Executed requests are remembered (at-most-once: a retransmission gets the reply again and is
  // never proposed again) while their block is within this many heights of the stable
  // checkpoint. A copy that arrives later is treated as new: it may be committed again, and the
  // ledger records it once (LedgerBuilder skips a request already on it). Bounds the table:
  // before, it held every request since the epoch began.
  uint64_t executed_request_retention = 1024;

  // TEST ONLY. Quorums of f+1 instead of 2f+1: breaks safety on purpose, so the simulator can
  // show that its checker catches a broken protocol.
  bool unsafe_quorum = false;

  size_t n() const { return committee.size(); }
  size_t f() const { return (committee.size() - 1) / 3; }
  size_t quorum() const { return unsafe_quorum ? f() + 1 : 2 * f() + 1; }
  ReplicaId primary(View v) const { return static_cast<ReplicaId>(v % committee.size()); }
};

// What the host must write to its store. Records are replayed, in order, by Replica::recover.
// `seq` lets the host drop message records (and leases) at or below a stable checkpoint
// (TruncateAction); committed blocks are the ledger and are never truncated.
//
// Persist before send: every record emitted before a SendAction with `durable` set must be
// durable (synced) before that message leaves. A send without `durable` may leave before the
// records ahead of it are synced; the replica emits such sends only for pre-prepares and
// prepares covered by a durable lease (below), and for header votes.
//
// A lease (kLease, view v, seq s; bytes: the epoch, u64) says "this replica may have signed
// pre-prepares or prepares in view v for sequence numbers up to s". Once the host reports it
// durable (on_lease_durable), pre-prepares and prepares in v up to s leave unsynced; their
// records become durable with the replica's commit for the slot, which is a durable send. After
// a restart the replica signs no pre-prepare or prepare that its recovered lease covers and
// its recovered records do not hold, so records lost with their unsynced writes can never make
// it sign two digests for one slot (docs/consensus.md, "Prepare leases and one sync per block").
struct PersistRecord {
  enum class Kind : uint8_t { kMessage = 1, kCommitted = 2, kStable = 3, kLease = 4 };
  Kind kind = Kind::kMessage;
  Seq seq = 0;  // for messages: the slot (0 for view-change traffic, kept until superseded)
  View view = 0;
  Bytes bytes;  // Envelope, CommittedBlock, StateReply-encoded stable proof, or a lease's epoch
};

// A stable checkpoint as a kStable record holds it: the height, the state digest after it and
// the 2f+1 signed checkpoints that prove it.
struct StableCheckpoint {
  Seq seq = 0;
  Hash32 digest{};
  std::vector<Envelope> proof;
};
// nullopt for a record of another kind, or one without a proof.
std::optional<StableCheckpoint> stable_checkpoint(const PersistRecord& rec);
// Keeps in `newest` the newest stable checkpoint at or below `at_most` among the records seen:
// where a restarted replica whose ledger reached `at_most` can resume (Replica::resume_at).
void keep_newest_checkpoint(std::optional<StableCheckpoint>& newest, const PersistRecord& rec,
                            Seq at_most);

struct SendAction {
  std::optional<ReplicaId> to;  // nullopt: every other committee member
  MsgType type = MsgType::kStatus;
  std::shared_ptr<const Bytes> bytes;
  bool durable = true;  // false: may leave before the records emitted ahead of it are synced
};
struct PersistAction {
  PersistRecord record;
};
struct DeliverAction {  // a block committed and executed, in height order
  std::shared_ptr<const CommittedBlock> block;
  Hash32 state_digest{};
  uint64_t block_time = 0;  // effective (monotonic) block time
};
struct ReplyAction {
  uint64_t client_id = 0;
  Hash32 request_id{};
  Seq height = 0;
  View view = 0;
};
struct TruncateAction {
  Seq stable_seq = 0;
};
// 2f+1 members signed the same header digest for this height (after on_executed).
struct HeaderCertifiedAction {
  Seq height = 0;
  View view = 0;
  Hash32 header_digest{};
  crypto::QuorumCertificate cert;  // signatures over header_vote_message(...)
};
// Two messages signed by one member for one slot that conflict (two pre-prepares or two votes of
// one type for one (view, seq) with different digests): a transferable proof of misbehaviour
// the host submits to the ledger (state/trust.h).
// Or (kBadHeaderVote) a member's header vote for a digest other than the header this replica
// built at that height: `first` is the vote (judged against the ledger at execution).
struct MisbehaviourAction {
  enum Kind : uint8_t { kEquivocation = 1, kBadHeaderVote = 2 };
  Kind kind = kEquivocation;
  Envelope first;
  Envelope second;
};
using Action = std::variant<SendAction, PersistAction, DeliverAction, ReplyAction, TruncateAction,
                            HeaderCertifiedAction, MisbehaviourAction>;
using Actions = std::vector<Action>;

struct ReplicaHooks {
  // Deterministic validation of one request (appraisal plugs in here). Called once per request
  // per replica: on arrival, or before preparing a block that carries a request not seen yet.
  std::function<Status(const Request&)> validate;
  // Signature verification; the node and the simulator may pass a cached or batched one.
  crypto::VerifyFn verify;
  // A block this replica executed, read back from where the host persisted it (the
  // PersistAction of kind kCommitted): null if it is not there. With it, the replica keeps only
  // the executed blocks of the last `window` heights below its stable checkpoint in memory and
  // serves older ones to lagging peers from here; without it, it keeps every executed block.
  std::function<std::shared_ptr<const CommittedBlock>(Seq)> load_block;
};

struct ReplicaCounters {
  uint64_t dropped_malformed = 0;
  uint64_t dropped_non_member = 0;
  uint64_t dropped_other_epoch = 0;
  uint64_t dropped_bad_signature = 0;
  uint64_t dropped_old_view = 0;
  uint64_t dropped_out_of_window = 0;
  uint64_t dropped_not_primary = 0;
  uint64_t dropped_conflicting = 0;    // a second, different message from one sender for one slot
  uint64_t misbehaviour_proofs = 0;    // conflicting pairs reported as MisbehaviourAction
  uint64_t dropped_invalid_block = 0;  // validation before prepare failed
  uint64_t dropped_invalid_view_change = 0;
  uint64_t dropped_invalid_new_view = 0;
  uint64_t dropped_invalid_state = 0;
  uint64_t dropped_requests = 0;
  uint64_t refused_equivocation = 0;  // must stay 0 for an honest replica
  // Pre-prepares or prepares not signed after a restart: the recovered lease covered the slot
  // and the recovered records did not say what was signed there.
  uint64_t refused_after_restart = 0;
  uint64_t view_changes = 0;
  uint64_t complaints = 0;  // request timers that expired in an active view (Complaint sent)
  uint64_t blocks_executed = 0;
  uint64_t requests_executed = 0;
  uint64_t state_transfer_blocks = 0;
  uint64_t state_blocks_loaded = 0;  // blocks served to a peer through hooks.load_block
  uint64_t checkpoints_stable = 0;
  uint64_t headers_certified = 0;
  uint64_t execution_divergence = 0;  // must stay 0: our execution differs from a quorum's
};

// The replica's state digest after executing `block_digest` at `seq` (DeliverAction::state_digest):
// a host that stored a committed block but crashed before executing it recomputes it from the
// previous header's state root.
Hash32 next_state_digest(const Hash32& prev, Seq seq, const Hash32& block_digest);

class Replica {
 public:
  Replica(ReplicaConfig cfg, crypto::SecretKey key, ReplicaHooks hooks);

  // Rebuilds a replica from what it persisted; returns no actions (timers re-arm on the next
  // tick). Records must be in the order they were persisted.
  static std::unique_ptr<Replica> recover(ReplicaConfig cfg, crypto::SecretKey key,
                                          ReplicaHooks hooks,
                                          const std::vector<PersistRecord>& records);
  // The same in steps, for a host that reads its records one at a time (so that they are never
  // all in memory): a replica in recovery, replay() for each record in order, then
  // finish_recovery(). recover() is exactly these steps.
  static std::unique_ptr<Replica> start_recovery(ReplicaConfig cfg, crypto::SecretKey key,
                                                 ReplicaHooks hooks);
  void replay(const PersistRecord& rec);
  void finish_recovery();
  // Between start_recovery() and the first replay(): continue from a stable checkpoint of this
  // epoch, as if every block up to it had been replayed, with the state digest its proof
  // carries and `block_time` (the latest block time up to it: its ledger header's). replay()
  // then executes only the committed blocks above it, and the host need not read those below
  // (so a restart's time no longer grows with the epoch). What the skipped blocks would have
  // left behind is left behind by make_stable anyway (executed blocks and request ids far below
  // a checkpoint), except the executed request ids of the last executed_request_retention
  // heights below it: a copy of such a request that arrives later is new to this replica, as
  // one beyond the retention is (the ledger still records it once). The proof is checked; on an
  // error the replica is unchanged and every record must be replayed.
  Status resume_at(const StableCheckpoint& cp, uint64_t block_time);

  Actions on_request(const Request& req, uint64_t now_ms);
  Actions on_message(ByteView envelope_bytes, uint64_t now_ms);
  Actions on_tick(uint64_t now_ms);
  // The host executed the block at `height` (delivered earlier) into a ledger header whose
  // digest is `header_digest`: sign it and gather 2f+1 matching signatures. Execution is
  // deterministic, so every correct replica signs the same digest; a replica whose digest
  // differs from a 2f+1 quorum's counts it as `execution_divergence`.
  Actions on_executed(Seq height, const Hash32& header_digest, uint64_t now_ms);
  // The host synced the lease record (view v, up to seq): pre-prepares and prepares it covers
  // may leave without waiting for a synced write.
  void on_lease_durable(View v, Seq upto);

  // Introspection (tests, status, metrics).
  View view() const { return view_; }
  bool in_view_change() const { return !active_; }
  Seq last_executed() const { return last_executed_; }
  Seq stable_seq() const { return stable_; }
  const Hash32& state_digest() const { return state_digest_; }
  bool is_primary() const { return cfg_.primary(view_) == cfg_.self; }
  // The epoch's last block is executed: the replica no longer proposes, votes or changes view
  // (it still answers state requests and gathers header votes for its blocks).
  bool finished() const { return last_executed_ >= cfg_.last_height; }
  // Requests that arrived but were not executed, in arrival order: carried to the next epoch.
  std::vector<Request> pending() const;
  const ReplicaConfig& config() const { return cfg_; }
  const ReplicaCounters& counters() const { return counters_; }
  size_t pending_requests() const { return pending_count_; }
  // Proposal candidates remembered in arrival order (some executed or proposed since): within a
  // constant factor of pending_requests(), at a backup too.
  size_t pending_order_size() const { return pending_order_.size(); }
  // The primary holds a partial batch back for min_block_interval_ms: the time at which an
  // on_tick proposes it (0: nothing is held back), so that the host can wake then.
  uint64_t proposal_due_ms() const { return proposal_due_ms_; }
  // The host may change min_block_interval_ms as its load changes (node/host_load.h): it only
  // decides when this primary proposes, never what a valid proposal is.
  void set_min_block_interval_ms(uint64_t ms) { cfg_.min_block_interval_ms = ms; }
  // An executed block: from memory, or (below what the replica keeps) from hooks.load_block.
  std::shared_ptr<const CommittedBlock> committed_block(Seq height) const;
  // What the replica holds in memory (bounded by the stable checkpoint, see ReplicaConfig).
  size_t blocks_in_memory() const { return ledger_.size(); }
  size_t requests_in_memory() const { return requests_.size(); }

 private:
  struct VoteRecord {
    Hash32 digest{};
    Envelope env;
  };
  struct Entry {  // one slot of the current view
    std::optional<Envelope> pre_prepare;
    std::shared_ptr<Block> block;  // moved into the CommittedBlock once the slot commits
    uint64_t block_time = 0;
    Hash32 digest{};
    std::map<ReplicaId, VoteRecord> prepares;
    std::map<ReplicaId, VoteRecord> commits;
    std::vector<Hash32> request_ids;  // ids of block->requests, computed once
    bool prepared = false;
    bool committed = false;
  };
  struct StoredPrepared {
    View view = 0;
    Hash32 digest{};
    PreparedCertificate cert;
  };
  struct RequestState {
    std::unique_ptr<Request> req;  // set while pending
    uint64_t arrival_ms = 0;
    bool executed = false;
    Seq height = 0;
    View view = 0;
  };
  struct ValidViewChange {
    Envelope env;
    ViewChange vc;
  };

  // Dispatch after the envelope's signature checked out.
  void handle(const Envelope& env);
  void handle_pre_prepare(const Envelope& env, PrePrepare pp, bool from_new_view);
  void handle_vote(const Envelope& env, const Vote& v);
  void handle_checkpoint(const Envelope& env, const Checkpoint& c);
  void handle_view_change(const Envelope& env, ViewChange vc);
  void handle_new_view(const Envelope& env, const NewView& nv);
  void handle_status(const Envelope& env, const StatusMsg& s);
  void handle_state_request(const Envelope& env, const StateRequest& r);
  void handle_state_reply(const Envelope& env, const StateReply& r);
  void handle_header_vote(const Envelope& env, const HeaderVote& v);
  void check_header_certified(Seq height);

  // Normal case.
  void try_propose();
  void check_prepared(Seq seq);
  void check_committed(Seq seq);
  void try_execute();
  void execute(const std::shared_ptr<const CommittedBlock>& cb);
  Status validate_block(const Block& b, Seq seq, const std::vector<Hash32>& request_ids);

  // Garbage collection.
  void make_stable(Seq seq, const Hash32& digest, std::vector<Envelope> proof);
  Status verify_checkpoint_proof(Seq seq, const Hash32& digest, const std::vector<Envelope>& proof);

  // View change.
  void start_view_change(View v);
  // Our request timer expired in an active view: tell the others (complain). A complaint of
  // ours or one that arrives (handle_complaint) is noted for the view, and f+1 within two
  // timeouts start the view change (note_complaint). REQUIRES for note_complaint: active.
  void complain();
  void handle_complaint(const Envelope& env, const Complaint& c);
  void note_complaint(ReplicaId from);
  Status verify_view_change(const ViewChange& vc);
  Status verify_prepared_certificate(const PreparedCertificate& pc, Seq low, Seq high,
                                     View below_view, Hash32* digest, PrePrepare* pp);
  struct NewViewPlan {
    Seq min_s = 0;
    Hash32 min_digest{};
    std::vector<Envelope> min_proof;
    ReplicaId min_holder = 0;
    std::vector<Block> blocks;  // for seq min_s+1 .. max_s
  };
  NewViewPlan plan_new_view(const std::vector<ValidViewChange>& vcs) const;
  void check_new_view_quorum();
  void enter_view(View v, const Envelope& nv_env, const std::vector<Envelope>& pre_prepares,
                  const NewViewPlan& plan);
  void arm_request_timer();
  void requeue_pending();
  // The pending, not yet proposed request with this id, or null.
  const RequestState* pending_request(const Hash32& id) const;
  void trim_pending_order();
  void remember_own_view_change(View v, const Envelope& env);
  void report_conflict(const Envelope& first, const Envelope& second);
  void report_bad_header_vote(ReplicaId from, const HeaderVote& v, const crypto::Signature& sig);
  Seq high_mark() const { return std::min(stable_ + cfg_.window, cfg_.last_height); }

  // State transfer.
  void request_state(ReplicaId from);

  // Output helpers.
  Envelope sign(MsgType type, Bytes body);
  bool record_signature(MsgType type, View v, Seq seq, const Hash32& digest);
  void persist_message(const Envelope& env, Seq seq, View v);
  void send(const Envelope& env, std::optional<ReplicaId> to = std::nullopt, bool durable = true);
  // Prepare leases: whether the pre-prepare or prepare for (v, seq) may leave unsynced (a
  // durable lease covers it); renews the lease ahead of need, or emits one the send must wait
  // for.
  bool leased(View v, Seq seq);
  bool refused_after_restart(View v, Seq seq) const;
  struct Lease {
    View view = 0;
    Seq upto = 0;
    bool any = false;
    bool covers(View v, Seq s) const { return any && view == v && s <= upto; }
    bool before(const Lease& o) const {
      return !any || (o.any && (view < o.view || (view == o.view && upto < o.upto)));
    }
  };
  Lease lease_emitted_, lease_durable_, lease_recovered_;
  bool verify_envelope(const Envelope& env);
  bool verify_sig(const crypto::PublicKey& pk, ByteView msg, const crypto::Signature& sig);
  Actions take_actions();

  ReplicaConfig cfg_;
  crypto::SecretKey key_;
  ReplicaHooks hooks_;
  ReplicaCounters counters_;
  Actions out_;
  bool replaying_ = false;
  uint64_t now_ = 0;

  // View.
  View view_ = 0;
  bool active_ = true;
  std::optional<Envelope> new_view_env_;  // the NEW-VIEW that started view_ (retransmitted)
  std::optional<Envelope> own_view_change_;
  static constexpr size_t kOwnViewChangesKept = 16;
  std::map<View, Envelope> own_view_changes_;  // ours for recent views, retransmitted on demand
  std::map<View, std::map<ReplicaId, ValidViewChange>> view_changes_;
  uint32_t timeout_doublings_ = 0;
  std::optional<uint64_t> vc_deadline_;
  // Complaints about view complaints_view_: sender -> when it last arrived (our own included).
  // One counts for two timeouts; a replica that still suspects sends it again every timeout.
  View complaints_view_ = 0;
  std::map<ReplicaId, uint64_t> complaints_;
  std::deque<Envelope> future_;

  // Log of the current view, and prepared certificates that survive view changes.
  std::map<Seq, Entry> log_;
  std::map<Seq, StoredPrepared> prepared_;
  std::map<std::tuple<uint8_t, View, Seq>, Hash32> signed_;  // what this replica signed

  // Execution.
  Seq last_executed_ = 0;
  Hash32 state_digest_{};
  uint64_t last_block_time_ = 0;
  std::map<Seq, std::shared_ptr<const CommittedBlock>> committed_;  // waiting for execution
  std::map<Seq, std::vector<Hash32>> request_ids_;                  // ids for committed_
  std::map<Seq, std::shared_ptr<const CommittedBlock>> ledger_;     // executed (served to peers)
  std::deque<std::pair<Seq, Hash32>> executed_order_;               // executed requests, by height
  uint64_t last_progress_ms_ = 0;

  // Header certificates: votes by height (bounded to the window above what we executed).
  struct HeaderVotes {
    std::optional<Hash32> own;
    View view = 0;
    bool certified = false;
    std::map<ReplicaId, std::pair<HeaderVote, crypto::Signature>> votes;
  };
  std::map<Seq, HeaderVotes> header_votes_;
  Seq headers_certified_below_ = 0;  // every height <= this is certified here

  // Checkpoints.
  Seq stable_ = 0;
  Hash32 stable_digest_{};
  std::vector<Envelope> stable_proof_;
  std::map<Seq, std::map<ReplicaId, std::pair<Hash32, Envelope>>> checkpoints_;
  std::map<Seq, Hash32> own_checkpoint_digests_;

  // Requests and proposals.
  // Every request this replica knows: pending (holding the request) or executed (at-most-once,
  // with the height for repeated replies). One table, so each step costs one lookup.
  std::unordered_map<Hash32, RequestState, Hash32Hasher> requests_;
  size_t pending_count_ = 0;
  std::deque<Hash32> pending_order_;
  std::unordered_set<Hash32, Hash32Hasher> proposed_;  // request ids pre-prepared in this view
  Seq next_seq_ = 1;
  uint64_t last_proposed_time_ = 0;
  uint64_t last_proposal_ms_ = 0;  // now_ at the last proposal (min_block_interval_ms)
  uint64_t proposal_due_ms_ = 0;
  bool last_proposal_backlogged_ = false;  // its oldest request had waited (see try_propose)
  // Header certificates of this epoch not yet seen in an executed block; the primary attaches
  // those above attach_floor_ to its next proposal.
  std::map<Seq, CertifiedHeader> to_attach_;
  Seq attach_floor_ = 0;

  uint64_t next_status_ms_ = 0;
  uint64_t last_state_request_ms_ = 0;
  bool have_ticked_ = false;
};

}  // namespace attestnet::consensus
