// node.toml parsing ([node] cpus, [consensus] min_block_interval_ms and busy_block_interval_ms),
// the host load that sets the block interval, and pinning a process to CPUs.
#include "node/config.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>

#include "node/host_load.h"
#include "node/node.h"

namespace attestnet::node {
namespace {

namespace fs = std::filesystem;

struct ConfigFile {
  fs::path dir = fs::temp_directory_path() / ("atn-config-test-" + std::to_string(::getpid()));
  ConfigFile() { fs::create_directories(dir); }
  ~ConfigFile() { fs::remove_all(dir); }
  std::string write(const std::string& node_table) {
    auto p = dir / "node.toml";
    std::ofstream(p) << "[node]\nkey = \"k\"\ngenesis = \"g.json\"\ndata_dir = \"d\"\n"
                     << "ordering_only = true\n"
                     << node_table << "\n[listen]\napi = \"127.0.0.1:8100\"\n";
    return p.string();
  }
};

TEST(NodeConfig, CpusAreOptionalAndParsed) {
  ConfigFile f;
  auto none = load_config(f.write(""));
  ASSERT_TRUE(none.ok()) << none.error().reason;
  EXPECT_TRUE(none->cpus.empty());
  auto two = load_config(f.write("cpus = [1, 0]"));
  ASSERT_TRUE(two.ok()) << two.error().reason;
  EXPECT_EQ(two->cpus, (std::vector<uint32_t>{1, 0}));
}

TEST(NodeConfig, BadCpusSayWhatIsExpected) {
  ConfigFile f;
  for (const char* bad :
       {"cpus = 0", "cpus = []", "cpus = [-1]", "cpus = [\"a\"]", "cpus = [4096]"}) {
    auto c = load_config(f.write(bad));
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.error().reason.find("[node] cpus"), std::string::npos) << c.error().reason;
  }
}

// A [consensus] interval in ms: its default when absent, 0 accepted, a bad value named.
void ExpectIntervalKey(const std::string& key, uint64_t NodeConfig::*field, uint64_t dflt) {
  ConfigFile f;
  auto none = load_config(f.write(""));
  ASSERT_TRUE(none.ok()) << none.error().reason;
  EXPECT_EQ((*none).*field, dflt) << key;
  auto zero = load_config(f.write("[consensus]\n" + key + " = 0"));
  ASSERT_TRUE(zero.ok()) << zero.error().reason;
  EXPECT_EQ((*zero).*field, 0u) << key;
  for (const char* bad : {"-1", "\"x\""}) {
    auto c = load_config(f.write("[consensus]\n" + key + " = " + bad));
    ASSERT_FALSE(c.ok()) << key << " = " << bad;
    EXPECT_NE(c.error().reason.find("[consensus] " + key), std::string::npos) << c.error().reason;
  }
}

TEST(NodeConfig, MinBlockIntervalDefaultsTo12AndIsChecked) {
  ExpectIntervalKey("min_block_interval_ms", &NodeConfig::min_block_interval_ms, 12);
}

TEST(NodeConfig, BusyBlockIntervalDefaultsTo20AndIsChecked) {
  ExpectIntervalKey("busy_block_interval_ms", &NodeConfig::busy_block_interval_ms, 20);
}

TEST(HostLoad, ParsesProcStatAndMeasuresTheBusyShare) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  auto a = parse_proc_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->busy, 150u);
  EXPECT_EQ(a->total, 1000u);
  auto b = parse_proc_stat("cpu  400 0 110 840 50 10 20 10 0 0");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->busy, 550u);
  EXPECT_DOUBLE_EQ(busy_fraction(*a, *b), 400.0 / 440.0);
  EXPECT_EQ(busy_fraction(*b, *a), 0.0);  // a counter that went back is no reading
  EXPECT_EQ(busy_fraction(*a, *a), 0.0);
  // An old kernel's four fields are enough; anything else is not this line.
  EXPECT_TRUE(parse_proc_stat("cpu  1 2 3 4").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu  1 2 3").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu0 1 2 3 4 5").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu  1 x 3 4").has_value());
  EXPECT_FALSE(parse_proc_stat("").has_value());
  // This host's own /proc/stat reads.
  auto here = read_cpu_times();
  ASSERT_TRUE(here.has_value());
  EXPECT_GE(here->total, here->busy);
}

TEST(HostLoad, TheIntervalGrowsFrom80To95PercentBusy) {
  EXPECT_EQ(block_interval_for(0.0, 12, 20), 12u);
  EXPECT_EQ(block_interval_for(0.8, 12, 20), 12u);
  EXPECT_EQ(block_interval_for(0.875, 12, 20), 16u);
  EXPECT_EQ(block_interval_for(0.95, 12, 20), 20u);
  EXPECT_EQ(block_interval_for(1.0, 12, 20), 20u);
  // busy_block_interval_ms at or below min_block_interval_ms (or 0): fixed.
  EXPECT_EQ(block_interval_for(1.0, 12, 0), 12u);
  EXPECT_EQ(block_interval_for(1.0, 12, 12), 12u);
  EXPECT_EQ(block_interval_for(1.0, 0, 0), 0u);
}

TEST(PinToCpus, PinsTheThreadAndRefusesACpuTheHostLacks) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  EXPECT_TRUE(pin_to_cpus({}).ok());  // nothing asked: nothing changes
  ASSERT_TRUE(pin_to_cpus({0}).ok());
  cpu_set_t now;
  ASSERT_EQ(sched_getaffinity(0, sizeof(now), &now), 0);
  EXPECT_EQ(CPU_COUNT(&now), 1);
  EXPECT_TRUE(CPU_ISSET(0, &now));
  auto st = pin_to_cpus({1000});  // no test host has 1,001 CPUs
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().reason.find("cannot run on CPU(s) 1000"), std::string::npos)
      << st.error().reason;
  ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

}  // namespace
}  // namespace attestnet::node
