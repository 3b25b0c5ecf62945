// How busy the host's CPUs are, for the primary's block interval (docs/operations.md,
// "Batching"): on a busy host a block's fixed cost (its messages, signature checks and synced
// write, the same for 5 requests as for 50) is what fills the CPUs, so blocks should hold more
// requests; on an idle one, a request should not wait for company.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace attestnet::node {

// Aggregate CPU time from /proc/stat's first line, in clock ticks since boot.
struct CpuTimes {
  uint64_t busy = 0;   // user + nice + system + irq + softirq + steal
  uint64_t total = 0;  // busy + idle + iowait
};

// Parses the "cpu  ..." line of /proc/stat's text; nullopt if it is not there.
std::optional<CpuTimes> parse_proc_stat(std::string_view text);
// Reads /proc/stat (Linux); nullopt where there is none.
std::optional<CpuTimes> read_cpu_times();

// The busy fraction between two readings (0 when no time passed).
double busy_fraction(const CpuTimes& before, const CpuTimes& after);

// The block interval for a busy fraction: `lo_ms` up to 80% busy, `hi_ms` from 95%, linear in
// between. hi_ms <= lo_ms: always lo_ms.
uint64_t block_interval_for(double busy, uint64_t lo_ms, uint64_t hi_ms);

}  // namespace attestnet::node
