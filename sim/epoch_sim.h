// Deterministic simulation of epochs and committee rotation (issue 5, docs/trust.md): more
// registered nodes than seats, every node running the real TrustState, LedgerBuilder and, while
// it sits, a real PBFT Replica for that epoch; nodes outside the committee follow the ledger by
// commit notices and fetches (verifying each block's commit certificate against the committee
// they computed themselves) and endorse what they re-executed. Byzantine members equivocate or
// vote for headers the ledger did not build; honest nodes turn what they see into misbehaviour
// proofs on the ledger. One seed drives everything; `attestnet sim --epochs N --seed S` replays.
//
// Invariants, checked after every step:
//   agreement         honest nodes execute the same block and build the same header per height
//   handover          every hand-over (the last header of an epoch, certified by that epoch's
//                     committee, with the next committee) verifies from the previous committee
//   excluded          a node never sits during its exclusion after a committed proof
//   over-f            no committee holds more than f Byzantine members (counted; must stay 0)
//   liveness          the epochs complete within a bound of simulated time
// At the end the light client verifies a response for the last record from genesis alone and
// from a checkpoint pinned half-way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attestnet::sim {

enum class ByzBehaviour { kEquivocate, kBadHeaderVote, kMixed };

struct EpochSimOptions {
  uint64_t seed = 1;
  uint32_t registered = 16;
  uint32_t seats = 7;
  uint64_t epochs = 20;
  uint64_t epoch_length = 8;  // blocks per epoch (a multiple of checkpoint_interval)
  uint64_t checkpoint_interval = 4;
  uint32_t byzantine = 2;  // among the genesis committee (the worst case: they start seated)
  ByzBehaviour behaviour = ByzBehaviour::kMixed;
  // Byzantine members start misbehaving in this epoch (before it they behave).
  uint64_t misbehave_from_epoch = 1;
  // An honest genesis member that goes silent (crashes for good) at this epoch; UINT64_MAX: none.
  uint64_t silent_from_epoch = 2;
  bool net_faults = true;  // drops (2%) and delays (1-20 ms, sometimes 150 ms)
  uint32_t outstanding_requests = 8;
  bool trace = false;
  // When set: genesis.json, response.json (the last record's response, hand-overs from
  // genesis) and checkpoint.json (the committee half-way) are written here, for
  // `attestnet verify response.json --genesis genesis.json [--checkpoint checkpoint.json]`.
  std::string out_dir;
};

struct EpochSimResult {
  bool ok = true;
  std::string invariant;
  std::string detail;
  uint64_t seed = 0;
  uint64_t epochs_completed = 0;
  uint64_t blocks = 0;
  uint64_t requests_committed = 0;
  uint64_t sim_time_ms = 0;
  uint64_t view_changes = 0;
  uint64_t proofs_accepted = 0;  // misbehaviour proofs committed (at the observer)
  // Epochs, after a Byzantine node's first committed proof and before its exclusion ends, in
  // which it sat (must be 0), out of all such epochs.
  uint64_t byz_seated_while_excluded = 0;
  uint64_t byz_excluded_epochs = 0;
  uint64_t committees_over_f = 0;
  uint64_t byzantine_proven = 0;  // Byzantine nodes with at least one committed proof
  // Byzantine nodes never proven, and of them those that sat, misbehaving, in an epoch that was
  // followed by at least one more whole epoch (time enough for the proof to commit). A Byzantine
  // node that never sits again after epoch 0 never votes, so there is nothing to prove.
  std::vector<uint32_t> unproven_nodes;  // their indices
  uint64_t byzantine_unproven_seated = 0;
  int64_t silent_lost_seat_after = -1;  // epochs from going silent to losing the seat (-1: no)
  bool newcomer_seated = false;         // a node outside the genesis committee earned a seat
  // Latencies in simulated ms between consecutive committed blocks: within an epoch in one
  // view; across a hand-over whose first block came in view 0; and where a view change came
  // between them (the timeout that detects a failed primary included).
  double block_interval_ms = 0;
  double handover_interval_ms = 0;
  double view_change_interval_ms = 0;
  uint64_t handover_samples = 0;
  uint64_t view_change_samples = 0;
  // Light client at the end.
  size_t response_bytes = 0;
  double verify_from_genesis_us = 0;
  size_t response_from_checkpoint_bytes = 0;
  double verify_from_checkpoint_us = 0;
  std::vector<std::string> last_events;
};

EpochSimResult run_epoch_simulation(const EpochSimOptions& o);

}  // namespace attestnet::sim
