// The simulator as the main test of consensus: many seeds of every fault mode, the checker
// proven against a deliberately broken protocol, and exact replay of a seed.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace attestnet::sim {
namespace {

uint64_t seeds(uint64_t dflt) {
  const char* s = std::getenv("ATTESTNET_SIM_SEEDS");
  return s ? std::strtoull(s, nullptr, 10) : dflt;
}

void run_seeds(uint32_t n, FaultMode m, uint64_t first, uint64_t count) {
  for (uint64_t seed = first; seed < first + count; ++seed) {
    SimOptions o;
    o.replicas = n;
    o.faults = m;
    o.seed = seed;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << " violates " << r.invariant << ": " << r.detail
                      << "\nreplay: attestnet sim --replicas " << n << " --faults "
                      << fault_mode_name(m) << " --seed " << seed;
    EXPECT_EQ(r.committed_requests, o.requests) << "seed " << seed;
  }
}

TEST(Simulator, NoFaultsCommitsEverything) {
  run_seeds(4, FaultMode::kNone, 1, seeds(20));
}
TEST(Simulator, NetworkFaultsN4) {
  run_seeds(4, FaultMode::kNet, 1000, seeds(100));
}
TEST(Simulator, CrashRestartN4) {
  run_seeds(4, FaultMode::kCrash, 2000, seeds(100));
}
TEST(Simulator, ByzantineN4) {
  run_seeds(4, FaultMode::kByzantine, 3000, seeds(100));
}
TEST(Simulator, AllFaultsN4Seeds1To200) {
  run_seeds(4, FaultMode::kAll, 1, seeds(200));
}
TEST(Simulator, AllFaultsN7Seeds1To100) {
  run_seeds(7, FaultMode::kAll, 1, seeds(200) / 2);
}
TEST(Simulator, AllFaultsN7Seeds101To200) {
  run_seeds(7, FaultMode::kAll, 1 + seeds(200) / 2, seeds(200) / 2);
}
TEST(Simulator, AllFaultsN10) {
  run_seeds(10, FaultMode::kAll, 1, seeds(200) / 10);
}

// Long runs with crashes: replicas keep only the blocks of the last window below their stable
// checkpoint in memory, so a replica that was down long catches up on blocks its peers read
// back from their disks (in memory, and in real RocksDB stores); retransmitted requests older
// than the retention are committed again and recorded once (the at-most-once invariant).
TEST(Simulator, LongCrashRunsServeOldBlocksFromDisk) {
  uint64_t loaded = 0, resumed = 0;
  for (uint64_t seed = 1; seed <= seeds(200) / 10; ++seed) {
    SimOptions o;
    o.faults = FaultMode::kCrash;
    o.seed = seed;
    o.requests = 400;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << " violates " << r.invariant << ": " << r.detail
                      << "\nreplay: attestnet sim --faults crash --requests 400 --seed " << seed;
    EXPECT_EQ(r.committed_requests, o.requests) << "seed " << seed;
    loaded += r.blocks_loaded;
    resumed += r.resumed_at_checkpoint;
  }
  EXPECT_GT(loaded, 0u) << "no run made a replica serve a block from disk";
  EXPECT_GT(resumed, 0u) << "no restart resumed at a stable checkpoint";
}
TEST(Simulator, LongCrashRunsServeOldBlocksFromRocksDb) {
  uint64_t loaded = 0, resumed = 0;
  std::string dir = ::testing::TempDir() + "attestnet-sim-store";
  for (uint64_t seed = 3; seed <= 4; ++seed) {
    SimOptions o;
    o.faults = FaultMode::kCrash;
    o.seed = seed;
    o.requests = 400;
    o.store_dir = dir;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << " violates " << r.invariant << ": " << r.detail
                      << "\nreplay: attestnet sim --faults crash --requests 400 --store DIR --seed "
                      << seed;
    loaded += r.blocks_loaded;
    resumed += r.resumed_at_checkpoint;
  }
  EXPECT_GT(loaded, 0u) << "no run made a replica serve a block from its store";
  EXPECT_GT(resumed, 0u) << "no restart resumed at a stable checkpoint of its store";
}

// The checker must catch a broken protocol: quorums of f+1 let an equivocating primary split
// the committee, and the agreement invariant must say so within 200 seeds.
TEST(Simulator, CheckerFindsAgreementViolationWithUnsafeQuorums) {
  bool found = false;
  for (uint64_t seed = 1; seed <= 200 && !found; ++seed) {
    SimOptions o;
    o.replicas = 4;
    o.faults = FaultMode::kByzantine;
    o.unsafe_quorum = true;
    o.seed = seed;
    SimResult r = run_simulation(o);
    if (!r.ok) {
      EXPECT_EQ(r.invariant, "agreement") << r.detail;
      EXPECT_FALSE(r.last_events.empty());
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no violation in 200 seeds: the checker is blind";
}

TEST(Simulator, ASeedReplaysExactly) {
  SimOptions o;
  o.replicas = 4;
  o.faults = FaultMode::kAll;
  o.seed = 77;
  SimResult a = run_simulation(o);
  SimResult b = run_simulation(o);
  EXPECT_EQ(a.messages, b.messages);
  EXPECT_EQ(a.end_time_ms, b.end_time_ms);
  EXPECT_EQ(a.view_changes, b.view_changes);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_EQ(a.byzantine_kinds, b.byzantine_kinds);
}

TEST(Simulator, ByzantinePrimaryStoryEndsWithAViewChangeAndAllCommitted) {
  SimOptions o;
  o.byzantine_primary_story = true;
  o.requests = 8;
  o.clients = 2;
  std::vector<std::string> story;
  o.narrate = [&](const std::string& s) { story.push_back(s); };
  SimResult r = run_simulation(o);
  ASSERT_TRUE(r.ok) << r.invariant << ": " << r.detail;
  EXPECT_GE(r.max_view, 1u);
  EXPECT_EQ(r.committed_requests, 8u);
  bool equivocated = false, entered = false;
  for (const auto& s : story) {
    equivocated |= s.find("different blocks") != std::string::npos;
    entered |= s.find("entered view 1") != std::string::npos;
  }
  EXPECT_TRUE(equivocated);
  EXPECT_TRUE(entered);
}

}  // namespace
}  // namespace attestnet::sim
