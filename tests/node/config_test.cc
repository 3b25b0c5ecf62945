// node.toml parsing ([node] cpus, [consensus] min_block_interval_ms) and pinning a process to CPUs.
#include "node/config.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>

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

TEST(NodeConfig, MinBlockIntervalDefaultsTo12AndIsChecked) {
  ConfigFile f;
  auto none = load_config(f.write(""));
  ASSERT_TRUE(none.ok()) << none.error().reason;
  EXPECT_EQ(none->min_block_interval_ms, 12u);
  auto off = load_config(f.write("[consensus]\nmin_block_interval_ms = 0"));
  ASSERT_TRUE(off.ok()) << off.error().reason;
  EXPECT_EQ(off->min_block_interval_ms, 0u);
  auto bad = load_config(f.write("[consensus]\nmin_block_interval_ms = -1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().reason.find("[consensus] min_block_interval_ms"), std::string::npos)
      << bad.error().reason;
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
