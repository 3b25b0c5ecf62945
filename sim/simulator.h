// Deterministic simulator (TigerBeetle's VOPR in spirit): n real Replica state machines, clients,
// a simulated network and clock and a per-replica "disk", all driven by one seed. After every
// step the checker tests the invariants; a violation reports the seed, the invariant and the
// last events, and `attestnet sim --seed S` replays it exactly.
//
// Invariants (docs/consensus.md §Testing):
//   agreement     no two honest replicas deliver different blocks at one height, ever
//   validity      honest replicas deliver only requests that clients sent and that validate
//   certificate   every delivered block carries 2f+1 valid commit signatures
//   continuity    each honest replica delivers heights 1, 2, 3, ... with no gap
//   ledger-agreement  honest replicas execute each block into the same ledger header
//   no-equivocation  no honest replica signs two different pre-prepares/prepares/commits for
//                 one (view, seq), across crashes and restarts
//   liveness      once the last fault heals, every request commits within a bound
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace attestnet::sim {

enum class FaultMode { kNone, kNet, kCrash, kByzantine, kAll };
const char* fault_mode_name(FaultMode m);
bool parse_fault_mode(const std::string& s, FaultMode* out);

struct SimOptions {
  uint32_t replicas = 4;
  uint64_t seed = 1;
  uint32_t requests = 40;
  uint32_t clients = 4;
  uint32_t client_window = 4;  // outstanding requests per client
  FaultMode faults = FaultMode::kNone;
  bool unsafe_quorum = false;
  uint32_t batch_max = 8;
  uint64_t min_block_interval_ms = 0;   // ReplicaConfig's (the node's default is 12)
  uint64_t liveness_bound_ms = 120000;  // after the last fault heals
  bool cache_signatures = true;         // share verified signatures across replicas (same results)
  bool validate_requests = true;        // client signatures checked by the validation hook
  uint32_t payload_bytes = 32;
  bool trace = false;  // print every event
  // When set, each replica persists to a real RocksDB store under this directory (created
  // fresh), and a crash closes it and a restart reopens it; otherwise an in-memory list.
  std::string store_dir;
  bool measure_replica_cpu = false;                 // time the replicas' own work (the bench)
  std::function<void(const std::string&)> narrate;  // human-readable story (the demo)
  // Forced scenario for the demo and named tests: replica 0 is a Byzantine primary that
  // equivocates from the start.
  bool byzantine_primary_story = false;
  // Requests are real AttestationRequests (state/attestation.h) with sim evidence, appraised
  // by the policy engine at execution; one client in four boots a kernel the policy does not
  // list. Records then carry real verdicts.
  bool attest = false;
};

struct SimResult {
  bool ok = true;
  std::string invariant;  // empty when ok
  std::string detail;
  std::vector<std::string> last_events;
  uint64_t seed = 0;
  uint64_t end_time_ms = 0;
  uint64_t heal_time_ms = 0;
  uint64_t committed_requests = 0;  // requests completed at the clients (f+1 replies)
  uint64_t blocks = 0;              // highest height delivered by an honest replica
  uint64_t view_changes = 0;
  uint64_t max_view = 0;
  uint64_t messages = 0;
  uint64_t dropped_by_replicas = 0;
  uint64_t crashes = 0;
  uint64_t unsynced_records_lost = 0;  // records a crash dropped because no sync covered them
  uint64_t headers_certified = 0;      // (height, replica) pairs that gathered a header certificate
  // Blocks a replica served to a lagging peer from its disk: below what it keeps in memory.
  uint64_t blocks_loaded = 0;
  uint64_t resumed_at_checkpoint = 0;  // restarts that resumed at a stable checkpoint
  uint32_t byzantine = 0;
  // With attest: verdicts of the records executed by the lowest-numbered honest replica.
  uint64_t records_affirming = 0;
  uint64_t records_contraindicated = 0;
  std::string byzantine_kinds;
  double replica_cpu_seconds = 0;      // time inside Replica entry points (measure_replica_cpu)
  double replica_request_seconds = 0;  // of which on_request (request ingress)
};

SimResult run_simulation(const SimOptions& opts);

}  // namespace attestnet::sim
