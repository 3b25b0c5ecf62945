#include "node/host_load.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>

namespace attestnet::node {

std::optional<CpuTimes> parse_proc_stat(std::string_view text) {
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (guest time is
  // already counted in user and nice).
  if (!text.starts_with("cpu ")) return std::nullopt;
  text.remove_prefix(4);
  uint64_t f[8] = {};
  int n = 0;
  while (n < 8) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (text.empty() || text.front() == '\n') break;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), f[n]);
    if (ec != std::errc()) return std::nullopt;
    text.remove_prefix(static_cast<size_t>(end - text.data()));
    ++n;
  }
  if (n < 4) return std::nullopt;  // user nice system idle at the least
  CpuTimes t;
  t.busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  t.total = t.busy + f[3] + f[4];
  return t;
}

std::optional<CpuTimes> read_cpu_times() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  return parse_proc_stat(line);
}

double busy_fraction(const CpuTimes& before, const CpuTimes& after) {
  if (after.total <= before.total || after.busy < before.busy) return 0;
  return std::min(1.0, static_cast<double>(after.busy - before.busy) /
                           static_cast<double>(after.total - before.total));
}

uint64_t block_interval_for(double busy, uint64_t lo_ms, uint64_t hi_ms) {
  if (hi_ms <= lo_ms) return lo_ms;
  constexpr double kFrom = 0.8, kTo = 0.95;
  double x = std::clamp((busy - kFrom) / (kTo - kFrom), 0.0, 1.0);
  return lo_ms + static_cast<uint64_t>(std::lround(x * static_cast<double>(hi_ms - lo_ms)));
}

}  // namespace attestnet::node
