// `attestnet sim`: the deterministic simulator (sim/) from the command line, and `--bench`,
// the protocol's CPU cost with real signatures.
#include <time.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "sim/epoch_sim.h"
#include "sim/simulator.h"

namespace attestnet::cli {
namespace {

int g_exit = 0;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct SimArgs {
  uint32_t replicas = 4;
  uint64_t seed = 1;
  uint64_t seeds = 0;
  uint32_t requests = 40;
  std::string faults = "none";
  bool unsafe_quorum = false;
  bool trace = false;
  bool bench = false;
  bool story = false;
  std::string store_dir;
  bool replicas_given = false;
  bool batch_given = false;
  bool quiet = false;
  bool attest = false;
  uint32_t batch = 8;
  uint64_t min_block_interval_ms = 0;
  // --epochs: the epoch and committee-rotation simulator (sim/epoch_sim.h).
  uint64_t epochs = 0;
  uint32_t registered = 16;
  uint32_t seats = 7;
  uint32_t byzantine = 2;
  uint64_t epoch_length = 8;
  std::string behaviour = "mixed";
  bool silent = false;
  bool no_net_faults = false;
  bool json = false;
  std::string out_dir;
};

int run_epochs(const SimArgs& a) {
  sim::EpochSimOptions o;
  o.registered = a.registered;
  o.seats = a.seats;
  o.epochs = a.epochs;
  o.epoch_length = a.epoch_length;
  o.byzantine = a.byzantine;
  o.trace = a.trace;
  o.net_faults = !a.no_net_faults;
  o.silent_from_epoch = a.silent ? 2 : UINT64_MAX;
  o.out_dir = a.out_dir;
  if (a.behaviour == "equivocate") {
    o.behaviour = sim::ByzBehaviour::kEquivocate;
  } else if (a.behaviour == "bad-vote") {
    o.behaviour = sim::ByzBehaviour::kBadHeaderVote;
  } else if (a.behaviour == "mixed") {
    o.behaviour = sim::ByzBehaviour::kMixed;
  } else {
    std::fprintf(stderr, "unknown --behaviour '%s': use equivocate, bad-vote or mixed\n",
                 a.behaviour.c_str());
    return 2;
  }
  if (a.seats < 4 || (a.seats - 1) % 3 != 0 || a.seats > a.registered) {
    std::fprintf(stderr, "--seats must be 3f+1 (4, 7, 10, ...) and at most --registered\n");
    return 2;
  }
  if (a.byzantine > (a.seats - 1) / 3) {
    std::fprintf(stderr, "--byzantine %u exceeds f = %u for %u seats\n", a.byzantine,
                 (a.seats - 1) / 3, a.seats);
    return 2;
  }
  if (a.epoch_length % o.checkpoint_interval != 0) {
    std::fprintf(stderr, "--epoch-length must be a multiple of %llu\n",
                 static_cast<unsigned long long>(o.checkpoint_interval));
    return 2;
  }
  uint64_t first = a.seed, count = a.seeds == 0 ? 1 : a.seeds;
  uint64_t violations = 0, seated = 0, excluded = 0, over_f = 0, proofs = 0, proven = 0;
  uint64_t unproven_seated = 0;
  std::vector<std::string> unproven_runs;
  uint64_t vc = 0, newcomer = 0, silent_lost = 0, silent_sum = 0, silent_max = 0;
  double in_sum = 0, ho_sum = 0, vc_sum = 0;
  uint64_t in_n = 0, ho_n = 0, vc_n = 0;
  sim::EpochSimResult last;
  std::map<std::string, uint64_t> by_invariant;
  double c0 = cpu_seconds();
  for (uint64_t s = first; s < first + count; ++s) {
    o.seed = s;
    sim::EpochSimResult r = sim::run_epoch_simulation(o);
    if (!r.ok) {
      ++violations;
      ++by_invariant[r.invariant];
      if (violations <= 5) {
        std::printf("VIOLATION seed=%llu invariant=%s\n  %s\n  last events:\n",
                    static_cast<unsigned long long>(s), r.invariant.c_str(), r.detail.c_str());
        for (const auto& e : r.last_events) std::printf("    %s\n", e.c_str());
        std::printf(
            "  replay: attestnet sim --epochs %llu --registered %u --seats %u "
            "--byzantine %u --epoch-length %llu --behaviour %s%s --seed %llu\n",
            static_cast<unsigned long long>(a.epochs), a.registered, a.seats, a.byzantine,
            static_cast<unsigned long long>(a.epoch_length), a.behaviour.c_str(),
            a.silent ? " --silent" : "", static_cast<unsigned long long>(s));
      }
    }
    seated += r.byz_seated_while_excluded;
    excluded += r.byz_excluded_epochs;
    over_f += r.committees_over_f;
    proofs += r.proofs_accepted;
    proven += r.byzantine_proven;
    unproven_seated += r.byzantine_unproven_seated;
    if (!r.unproven_nodes.empty()) {
      std::string nodes;
      for (uint32_t i : r.unproven_nodes) nodes += (nodes.empty() ? "" : ",") + std::to_string(i);
      unproven_runs.push_back("seed " + std::to_string(s) + ": node " + nodes +
                              (r.byzantine_unproven_seated > 0
                                   ? " (" + std::to_string(r.byzantine_unproven_seated) +
                                         " of them sat while misbehaving)"
                                   : " never sat again after epoch 0, so never voted"));
    }
    vc += r.view_changes;
    newcomer += r.newcomer_seated;
    if (r.silent_lost_seat_after >= 0) {
      ++silent_lost;
      silent_sum += static_cast<uint64_t>(r.silent_lost_seat_after);
      silent_max = std::max(silent_max, static_cast<uint64_t>(r.silent_lost_seat_after));
    }
    in_sum += r.block_interval_ms * static_cast<double>(r.blocks);
    in_n += r.blocks;
    ho_sum += r.handover_interval_ms * static_cast<double>(r.handover_samples);
    ho_n += r.handover_samples;
    vc_sum += r.view_change_interval_ms * static_cast<double>(r.view_change_samples);
    vc_n += r.view_change_samples;
    last = r;
    if (count >= 20 && (s - first + 1) % 20 == 0 && !a.quiet) {
      std::fprintf(stderr, "  ... %llu/%llu seeds, %llu violation(s)\n",
                   static_cast<unsigned long long>(s - first + 1),
                   static_cast<unsigned long long>(count),
                   static_cast<unsigned long long>(violations));
    }
  }
  double c1 = cpu_seconds();
  double in_ms = in_n ? in_sum / static_cast<double>(in_n) : 0;
  double ho_ms = ho_n ? ho_sum / static_cast<double>(ho_n) : 0;
  double vc_ms = vc_n ? vc_sum / static_cast<double>(vc_n) : 0;
  std::printf(
      "sim --epochs %llu: registered=%u seats=%u byzantine=%u (%s)%s epoch_length=%llu "
      "seeds=%llu..%llu: %llu violation(s)\n",
      static_cast<unsigned long long>(a.epochs), a.registered, a.seats, a.byzantine,
      a.behaviour.c_str(), a.silent ? " +1 silent" : "",
      static_cast<unsigned long long>(a.epoch_length), static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(first + count - 1),
      static_cast<unsigned long long>(violations));
  std::printf("  misbehaviour proofs committed: %llu; Byzantine nodes proven: %llu of %llu\n",
              static_cast<unsigned long long>(proofs), static_cast<unsigned long long>(proven),
              static_cast<unsigned long long>(a.byzantine * count));
  for (const auto& u : unproven_runs) std::printf("    not proven: %s\n", u.c_str());
  std::printf("  epochs a proven Byzantine node sat during its exclusion: %llu of %llu (%.1f%%)\n",
              static_cast<unsigned long long>(seated), static_cast<unsigned long long>(excluded),
              excluded ? 100.0 * static_cast<double>(seated) / static_cast<double>(excluded) : 0.0);
  std::printf("  committees with more than f Byzantine members: %llu\n",
              static_cast<unsigned long long>(over_f));
  std::printf("  runs where a newcomer earned a seat: %llu of %llu\n",
              static_cast<unsigned long long>(newcomer), static_cast<unsigned long long>(count));
  if (a.silent) {
    std::printf(
        "  silent member lost its seat in %llu of %llu runs, after %.1f epochs on "
        "average (at most %llu)\n",
        static_cast<unsigned long long>(silent_lost), static_cast<unsigned long long>(count),
        silent_lost ? static_cast<double>(silent_sum) / static_cast<double>(silent_lost) : 0.0,
        static_cast<unsigned long long>(silent_max));
  }
  std::printf(
      "  simulated block interval: %.1f ms within an epoch, %.1f ms across a hand-over, "
      "%.1f ms after a view change (%llu view changes)\n",
      in_ms, ho_ms, vc_ms, static_cast<unsigned long long>(vc));
  if (last.response_bytes) {
    std::printf(
        "  light client (last seed, %llu epochs): response %zu bytes, verified from "
        "genesis in %.0f us; from a checkpoint at epoch %llu: %zu bytes, %.0f us\n",
        static_cast<unsigned long long>(last.epochs_completed), last.response_bytes,
        last.verify_from_genesis_us,
        static_cast<unsigned long long>((last.epochs_completed - 1) / 2),
        last.response_from_checkpoint_bytes, last.verify_from_checkpoint_us);
  }
  std::printf("  %.1f s CPU\n", c1 - c0);
  for (const auto& [inv, n] : by_invariant)
    std::printf("  %s violations: %llu\n", inv.c_str(), static_cast<unsigned long long>(n));
  if (a.json) {
    std::printf(
        "{\"violations\":%llu,\"seeds\":%llu,\"byz_seated_while_excluded\":%llu,"
        "\"byz_excluded_epochs\":%llu,\"committees_over_f\":%llu,\"proven\":%llu,"
        "\"block_interval_ms\":%.2f,\"handover_interval_ms\":%.2f,"
        "\"view_change_interval_ms\":%.2f}\n",
        static_cast<unsigned long long>(violations), static_cast<unsigned long long>(count),
        static_cast<unsigned long long>(seated), static_cast<unsigned long long>(excluded),
        static_cast<unsigned long long>(over_f), static_cast<unsigned long long>(proven), in_ms,
        ho_ms, vc_ms);
  }
  // What the scenarios promise, beyond the invariants: every Byzantine node that sits while it
  // misbehaves (on every vote from epoch 1) is proven, and a silent member loses its seat. One
  // that never sits again after epoch 0 casts no vote, so it has nothing to be proven of.
  bool detected = unproven_seated == 0;
  bool silenced = !a.silent || silent_lost == count;
  if (!detected)
    std::printf("  FAIL: %llu Byzantine node(s) sat while misbehaving and were never proven\n",
                static_cast<unsigned long long>(unproven_seated));
  if (!silenced) std::printf("  FAIL: the silent member kept its seat in some run\n");
  return violations == 0 && detected && silenced ? 0 : 1;
}

void print_violation(const sim::SimResult& r, const SimArgs& a) {
  std::printf("VIOLATION seed=%llu invariant=%s\n  %s\n", static_cast<unsigned long long>(r.seed),
              r.invariant.c_str(), r.detail.c_str());
  std::printf("  byzantine: %s; healed at %llu ms; stopped at %llu ms\n",
              r.byzantine_kinds.empty() ? "none" : r.byzantine_kinds.c_str(),
              static_cast<unsigned long long>(r.heal_time_ms),
              static_cast<unsigned long long>(r.end_time_ms));
  std::printf("  last events:\n");
  for (const auto& e : r.last_events) std::printf("    %s\n", e.c_str());
  std::printf(
      "  replay: attestnet sim --replicas %u --faults %s --requests %u --batch %u%s%s --seed "
      "%llu\n",
      a.replicas, a.faults.c_str(), a.requests, a.batch, a.unsafe_quorum ? " --unsafe-quorum" : "",
      a.min_block_interval_ms
          ? (" --min-block-interval-ms " + std::to_string(a.min_block_interval_ms)).c_str()
          : "",
      static_cast<unsigned long long>(r.seed));
}

int run_bench(const std::vector<uint32_t>& ns, const std::vector<uint32_t>& batches) {
  std::printf(
      "Protocol cost, no faults, real Ed25519 signatures on every message, request\n"
      "appraisal switched off. protocol_us/req is CPU inside the replicas (all n of them)\n"
      "per committed request; process_us/req adds the simulator's own network, clients\n"
      "and checker.\n\n");
  std::printf("%8s %6s %9s %15s %14s %15s %16s %8s\n", "replicas", "batch", "requests",
              "protocol_us/req", "(of it ingress)", "process_us/req", "protocol_req/s", "blocks");
  for (uint32_t n : ns) {
    for (uint32_t batch : batches) {
      sim::SimOptions o;
      o.replicas = n;
      o.seed = 1;
      o.batch_max = batch;
      o.requests = batch == 1 ? 200 : batch * 20;
      o.clients = 8;
      o.client_window = batch == 1 ? 4 : batch;  // enough in flight to fill batches
      o.cache_signatures = false;
      o.validate_requests = false;
      o.payload_bytes = 64;
      o.faults = sim::FaultMode::kNone;
      o.measure_replica_cpu = true;
      double c0 = cpu_seconds();
      sim::SimResult r = sim::run_simulation(o);
      double c1 = cpu_seconds();
      if (!r.ok) {
        std::printf("bench run failed: %s %s\n", r.invariant.c_str(), r.detail.c_str());
        return 1;
      }
      double reqs = static_cast<double>(r.committed_requests);
      double proto_us = r.replica_cpu_seconds * 1e6 / reqs;
      double proc_us = (c1 - c0) * 1e6 / reqs;
      double ingress_us = r.replica_request_seconds * 1e6 / reqs;
      std::printf("%8u %6u %9llu %15.2f %14.2f %15.2f %16.0f %8llu\n", n, batch,
                  static_cast<unsigned long long>(r.committed_requests), proto_us, ingress_us,
                  proc_us, 1e6 / proto_us, static_cast<unsigned long long>(r.blocks));
      std::fflush(stdout);
    }
  }
  return 0;
}

int run_sim(const SimArgs& a) {
  if (a.epochs) return run_epochs(a);
  if (a.bench) {
    std::vector<uint32_t> ns = {4, 7, 10, 16}, batches = {1, 100, 1000};
    if (a.replicas_given) ns = {a.replicas};
    if (a.batch_given) batches = {a.batch};
    return run_bench(ns, batches);
  }
  sim::SimOptions o;
  if (!sim::parse_fault_mode(a.faults, &o.faults)) {
    std::fprintf(stderr, "unknown --faults '%s': use none, net, crash, byzantine or all\n",
                 a.faults.c_str());
    return 2;
  }
  if (a.replicas < 4 || (a.replicas - 1) % 3 != 0) {
    std::fprintf(stderr, "--replicas must be 3f+1 with f >= 1 (4, 7, 10, 13, 16, ...), got %u\n",
                 a.replicas);
    return 2;
  }
  o.replicas = a.replicas;
  o.requests = a.requests;
  o.unsafe_quorum = a.unsafe_quorum;
  o.trace = a.trace;
  o.batch_max = a.batch;
  o.min_block_interval_ms = a.min_block_interval_ms;
  o.store_dir = a.store_dir;
  o.attest = a.attest;
  if (a.story) {
    o.byzantine_primary_story = true;
    o.requests = 8;
    o.clients = 2;
    o.narrate = [](const std::string& line) { std::printf("  %s\n", line.c_str()); };
  }
  uint64_t first = a.seed, count = a.seeds == 0 ? 1 : a.seeds;
  uint64_t violations = 0, live = 0, views = 0, msgs = 0, crashes = 0, byz_runs = 0, lost = 0,
           loaded = 0, resumed = 0;
  uint64_t affirming = 0, contraindicated = 0;
  std::map<std::string, uint64_t> by_invariant;
  double c0 = cpu_seconds();
  for (uint64_t s = first; s < first + count; ++s) {
    o.seed = s;
    sim::SimResult r = sim::run_simulation(o);
    views += r.view_changes;
    affirming += r.records_affirming;
    contraindicated += r.records_contraindicated;
    msgs += r.messages;
    crashes += r.crashes;
    lost += r.unsynced_records_lost;
    loaded += r.blocks_loaded;
    resumed += r.resumed_at_checkpoint;
    byz_runs += r.byzantine > 0;
    if (r.ok) {
      ++live;
      if (count == 1 && !a.quiet) {
        std::printf(
            "seed %llu: ok; %llu requests committed in %llu blocks; %llu view changes "
            "(highest view %llu); %llu messages; %llu crashes; byzantine: %s; healed at "
            "%llu ms, done at %llu ms; %llu header certificates (replica x height)\n",
            static_cast<unsigned long long>(s),
            static_cast<unsigned long long>(r.committed_requests),
            static_cast<unsigned long long>(r.blocks),
            static_cast<unsigned long long>(r.view_changes),
            static_cast<unsigned long long>(r.max_view),
            static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.crashes),
            r.byzantine_kinds.empty() ? "none" : r.byzantine_kinds.c_str(),
            static_cast<unsigned long long>(r.heal_time_ms),
            static_cast<unsigned long long>(r.end_time_ms),
            static_cast<unsigned long long>(r.headers_certified));
      }
    } else {
      ++violations;
      ++by_invariant[r.invariant];
      if (violations <= 5) print_violation(r, a);
    }
    if (count >= 1000 && (s - first + 1) % 1000 == 0 && !a.quiet) {
      std::fprintf(stderr, "  ... %llu/%llu seeds, %llu violation(s)\n",
                   static_cast<unsigned long long>(s - first + 1),
                   static_cast<unsigned long long>(count),
                   static_cast<unsigned long long>(violations));
    }
  }
  double c1 = cpu_seconds();
  std::printf(
      "sim: replicas=%u faults=%s%s seeds=%llu..%llu: %llu violation(s), %llu/%llu live; "
      "%llu view changes, %llu crashes (%llu unsynced records lost, %llu restarts resumed at a "
      "stable checkpoint), %llu runs with Byzantine replicas, %llu messages, %llu blocks served "
      "from disk; %.1f s CPU\n",
      a.replicas, a.faults.c_str(), a.unsafe_quorum ? " (UNSAFE QUORUM f+1)" : "",
      static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count - 1),
      static_cast<unsigned long long>(violations), static_cast<unsigned long long>(live),
      static_cast<unsigned long long>(count), static_cast<unsigned long long>(views),
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(resumed), static_cast<unsigned long long>(byz_runs),
      static_cast<unsigned long long>(msgs), static_cast<unsigned long long>(loaded), c1 - c0);
  if (a.attest)
    std::printf("records (appraised by the policy engine): %llu affirming, %llu contraindicated\n",
                static_cast<unsigned long long>(affirming),
                static_cast<unsigned long long>(contraindicated));
  for (const auto& [inv, n] : by_invariant) {
    std::printf("  %s violations: %llu\n", inv.c_str(), static_cast<unsigned long long>(n));
  }
  return violations == 0 ? 0 : 1;
}

}  // namespace

int exit_code() {
  return g_exit;
}
void set_exit_code(int code) {
  g_exit = code;
}

void add_sim_command(CLI::App& app) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* sub = app.add_subcommand(
      "sim",
      "Run the deterministic PBFT simulator: n replicas, clients, seeded faults, and an "
      "invariant checker after every step");
  sub->add_option("--replicas", args->replicas, "Committee size n = 3f+1 (4, 7, 10, 16)");
  sub->add_option("--seed", args->seed, "First (or only) seed; a failing seed replays exactly");
  sub->add_option("--seeds", args->seeds, "Run this many consecutive seeds starting at --seed");
  sub->add_option("--requests", args->requests, "Client requests per run");
  sub->add_option("--batch", args->batch, "Maximum requests per block");
  sub->add_option("--min-block-interval-ms", args->min_block_interval_ms,
                  "Behind a backlogged block, a partial batch waits this long (the node's 12)");
  sub->add_option("--faults", args->faults, "none | net | crash | byzantine | all");
  sub->add_flag("--unsafe-quorum", args->unsafe_quorum,
                "TEST ONLY: quorums of f+1 instead of 2f+1, to show the checker catches it");
  sub->add_flag("--story", args->story,
                "Narrated run: replica 0 is a Byzantine primary that equivocates from the start");
  sub->add_option(
      "--store", args->store_dir,
      "Persist each replica to a real RocksDB store under this directory (wiped first)");
  sub->add_flag("--trace", args->trace, "Print every event to stderr");
  sub->add_flag("--quiet", args->quiet, "Only the summary");
  sub->add_flag("--attest", args->attest,
                "Requests are VM-signed AttestationRequests with sim evidence, appraised by the "
                "policy engine into the records (one client in four boots an unapproved kernel)");
  sub->add_option("--epochs", args->epochs,
                  "Run the epoch simulator for this many epochs: registered nodes, a rotating "
                  "committee, reputation, misbehaviour proofs (docs/trust.md)");
  sub->add_option("--registered", args->registered, "With --epochs: registered nodes");
  sub->add_option("--seats", args->seats, "With --epochs: committee seats (3f+1)");
  sub->add_option("--byzantine", args->byzantine,
                  "With --epochs: Byzantine members of the genesis committee (<= f)");
  sub->add_option("--epoch-length", args->epoch_length, "With --epochs: blocks per epoch");
  sub->add_option("--behaviour", args->behaviour,
                  "With --epochs: equivocate | bad-vote | mixed (what the Byzantine nodes do)");
  sub->add_flag("--silent", args->silent,
                "With --epochs: an honest genesis member goes silent at epoch 2 (needs "
                "--byzantine < f)");
  sub->add_flag("--no-net-faults", args->no_net_faults, "With --epochs: no drops or delays");
  sub->add_flag("--json", args->json, "With --epochs: also a JSON summary line");
  sub->add_option("--out", args->out_dir,
                  "With --epochs: write genesis.json, response.json (the last record, with its "
                  "hand-over chain) and checkpoint.json here, for attestnet verify");
  sub->add_flag(
      "--bench", args->bench,
      "Measure protocol CPU per committed request for n=4,7,10,16 and batches 1,100,1000");
  sub->callback([args, sub] {
    args->replicas_given = sub->count("--replicas") > 0;
    args->batch_given = sub->count("--batch") > 0;
    set_exit_code(run_sim(*args));
  });
}

}  // namespace attestnet::cli
